"""Coalescing: many webhook events -> one targeted ``creator_sync`` run.

Events only mark their account pending (``webhook_pending_accounts``). A flush, at most once per debounce
window (counted from the oldest pending event), claims every pending account into one batch and either
merges it into the previous webhook run while that run is still queued, or triggers one new run for the
batch. So a burst of N events for one account gives one run, and there is at most one queued webhook run
per CREATOR_SYNC_MAX_ACCOUNTS_PER_RUN accounts (a run names at most that many: a larger burst becomes
several runs, one per flush).

The flush runs on a daemon thread of the API-server process (woken by each accepted event, and every
``sweep_s`` to retry a failed trigger or pick up accounts left pending by a restart). Pending accounts and
unsent batches live in the DB, so nothing is lost when the process dies.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from creator_sync.store.engine import now as utcnow
from creator_sync.store.webhooks import WebhookStore
from creator_sync.sync.run_context import max_accounts_per_run
from creator_sync.webhooks.trigger import SyncTrigger

log = logging.getLogger(__name__)

RUN_ID_PREFIX = "insightiq_webhook__"


class Coalescer:
    def __init__(
        self,
        store: WebhookStore,
        trigger: SyncTrigger,
        debounce_s: float = 30.0,
        sweep_s: float = 60.0,
        background: bool = True,
    ):
        self.store = store
        self.trigger = trigger
        self.debounce = timedelta(seconds=debounce_s)
        self.sweep_s = sweep_s
        self.background = background
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- flushing -----------------------------------------------------------------------------------
    def due_in(self, now: datetime | None = None) -> float | None:
        """Seconds until the pending accounts are due (0 = now), None when nothing is pending."""
        oldest = self.store.oldest_pending()
        if oldest is None:
            return None
        return max(0.0, (oldest + self.debounce - (now or utcnow())).total_seconds())

    def flush(self, now: datetime | None = None, force: bool = False) -> str | None:
        """Claim the pending accounts and start (or extend) their run. Returns the run id, or None."""
        now = now or utcnow()
        with self._lock:
            wait = self.due_in(now)
            if wait and not force:
                return None
            limit = max_accounts_per_run()
            batch = self.store.claim_pending(now, limit=limit)
            if batch is None:
                return None
            last = self.store.last_sent_batch()
            if last and last.run_id and len(set(last.account_ids) | set(batch.account_ids)) <= limit:
                try:
                    merged = self.trigger.extend_queued(last.run_id, batch.account_ids)
                except Exception:
                    log.exception("Could not check run %s; triggering a new run", last.run_id)
                    merged = False
                if merged:
                    self.store.mark_merged(batch, last, now)
                    log.info("Added %d account(s) to queued run %s", len(batch.account_ids), last.run_id)
                    return last.run_id
            run_id = f"{RUN_ID_PREFIX}{batch.batch_id}"
            try:
                run_id = self.trigger.trigger(run_id, batch.account_ids)
            except Exception as exc:
                self.store.mark_failed(batch, repr(exc))
                log.exception("Triggering creator_sync for %d account(s) failed", len(batch.account_ids))
                return None
            self.store.mark_sent(batch, run_id, now)
            log.info("Triggered creator_sync run %s for %d account(s)", run_id, len(batch.account_ids))
            return run_id

    # -- background thread --------------------------------------------------------------------------
    def poke(self) -> None:
        """An event was accepted: make sure a flush happens when it is due."""
        if not self.background:
            return
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._loop, name="creator-sync-webhook-flusher", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.due_in()
                if wait == 0 or (wait is None and self.store.has_unsent()):
                    self.flush()
                    wait = self.due_in()
                self._wake.wait(self.sweep_s if wait is None else min(wait, self.sweep_s))
                self._wake.clear()
            except Exception:  # keep the thread alive; the DB holds the state
                log.exception("Webhook flusher failed; retrying in %.0f s", self.sweep_s)
                self._stop.wait(self.sweep_s)
