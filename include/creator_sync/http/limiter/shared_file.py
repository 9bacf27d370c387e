"""Sliding window in one SQLite file shared by every process of a machine: the ``file:///dir`` backend."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from creator_sync.http.limiter.base import Reservation, WindowLimiter
from creator_sync.http.limiter.window import decide


class SqliteLimiter(WindowLimiter):
    """Sends of every process using the same directory (wall clock, one transaction per decision)."""

    def __init__(
        self,
        limit: float,
        window: float,
        *,
        name: str,
        directory: str | os.PathLike,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        pace: bool = True,
        burst: float = 1.0,
    ) -> None:
        super().__init__(limit, window, name=name, sleep=sleep, pace=pace, burst=burst)
        self._clock = clock
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.path = Path(directory) / "creator_sync_rate_limits.sqlite"
        self._local = threading.local()
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS sends (bucket TEXT, id TEXT PRIMARY KEY, at REAL, cost REAL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS sends_bucket_at ON sends (bucket, at)")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _tx(self):
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")

    def acquire(self, cost: float = 1.0) -> Reservation:
        while True:
            with self._tx() as db:
                now = self._clock()
                db.execute("DELETE FROM sends WHERE bucket = ? AND at <= ?", (self.name, now - self.window))
                rows = db.execute(
                    "SELECT at, cost FROM sends WHERE bucket = ? ORDER BY at", (self.name,)
                ).fetchall()
                wait = decide(
                    rows, now, cost, limit=self.limit, window=self.window, pace=self.pace, burst=self.burst
                )
                if wait <= 0:
                    res = Reservation(uuid.uuid4().hex, cost, now)
                    db.execute("INSERT INTO sends VALUES (?, ?, ?, ?)", (self.name, res.id, now, cost))
                    self.stats.acquired += 1
                    return res
            self._waited(wait)
            self._sleep(wait)

    def settle(self, reservation: Reservation, actual_cost: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE sends SET cost = ? WHERE id = ?", (float(actual_cost), reservation.id))
        reservation.cost = float(actual_cost)
