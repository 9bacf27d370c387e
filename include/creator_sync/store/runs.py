"""What each run did: per-user outcomes over its task attempts, per-attempt client counters, and the run
reports the UI and the retention DAG read."""

from __future__ import annotations

import json
from collections.abc import Iterable

import sqlalchemy as sa

from creator_sync.store.engine import StoreBase, aware, chunks, now
from creator_sync.store.schema import dead_letters, run_client_stats, run_reports, run_users

OUTCOME_SENT = "sent"
OUTCOME_UNCHANGED = "unchanged"
OUTCOME_CLAIMED_ELSEWHERE = "claimed_elsewhere"
OUTCOME_OFFBOARDED = "offboarded"  # on the offboarding skip list when its chunk was claimed: never sent


class Runs(StoreBase):
    def save_run_report(self, dag_id: str, run_id: str, figures: dict, text: str, ok: bool) -> None:
        """Store (or replace, on a retried report task) the report of one run."""
        row = {"figures": json.dumps(figures, default=str), "text": text, "ok": ok, "created_at": now()}
        with self.write() as conn:
            done = conn.execute(
                run_reports.update()
                .where(run_reports.c.dag_id == dag_id, run_reports.c.run_id == run_id)
                .values(**row)
            )
            if not done.rowcount:
                conn.execute(run_reports.insert().values(dag_id=dag_id, run_id=run_id, **row))

    def run_reports(self, dag_id: str | None = None, limit: int = 50) -> list[dict]:
        """The newest run reports first: ``{"dag_id", "run_id", "figures", "text", "ok", "created_at"}``."""
        query = sa.select(run_reports).order_by(run_reports.c.created_at.desc()).limit(limit)
        if dag_id:
            query = query.where(run_reports.c.dag_id == dag_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {**row, "figures": json.loads(row["figures"]), "created_at": aware(row["created_at"])}
            for row in rows
        ]

    def record_outcomes(self, run_id: str, rows: list[tuple[str, str, int]], conn=None) -> None:
        """(user_key, outcome, events) of this run; an existing "sent" stays (its events are acknowledged)."""
        if not rows:
            return
        at = now()
        values = [
            {"run_id": run_id, "user_key": k, "outcome": o, "events": int(n), "updated_at": at}
            for k, o, n in rows
        ]
        with self._maybe_write(conn) as c:
            self.insert_rows(c, run_users, _as_row_by_row(values), _unless_sent)

    def run_user_outcomes(self, run_id: str, user_keys: Iterable[str]) -> dict[str, str]:
        """``{user_key: outcome}`` of these users in one run (users the run never reached are absent)."""
        keys, found = list(dict.fromkeys(user_keys)), {}
        t = run_users
        with self.engine.connect() as conn:
            for part in chunks(keys):
                rows = conn.execute(
                    sa.select(t.c.user_key, t.c.outcome).where(t.c.run_id == run_id, t.c.user_key.in_(part))
                )
                found.update(dict(rows.all()))
        return found

    def run_outcomes(self, run_id: str) -> dict[str, dict[str, int]]:
        """``{outcome: {"users": n, "events": n}}`` of one run, over all its task attempts."""
        t = run_users
        query = (
            sa.select(t.c.outcome, sa.func.count(), sa.func.coalesce(sa.func.sum(t.c.events), 0))
            .where(t.c.run_id == run_id)
            .group_by(t.c.outcome)
        )
        with self.engine.connect() as conn:
            return {o: {"users": int(n), "events": int(e)} for o, n, e in conn.execute(query)}

    def callback_errors(self, run_id: str, reason: str = "unification_error") -> int:
        """Users this run sent that Insider later reported through the error callback (dead letters with
        `reason` written after the run recorded the user as sent)."""
        u, d = run_users, dead_letters
        query = (
            sa.select(sa.func.count(sa.distinct(d.c.user_key)))
            .select_from(d.join(u, d.c.user_key == u.c.user_key))
            .where(
                u.c.run_id == run_id,
                u.c.outcome == OUTCOME_SENT,
                d.c.reason == reason,
                d.c.created_at >= u.c.updated_at,
            )
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def save_client_stats(
        self, run_id: str, task_key: str, try_number: int, vendor: str, counters: dict
    ) -> None:
        """Store (replace) one task attempt's client counters for a vendor."""
        t = run_client_stats
        row = {
            "run_id": run_id,
            "task_key": task_key,
            "try_number": int(try_number),
            "vendor": vendor,
            "counters": json.dumps({k: v for k, v in counters.items() if isinstance(v, int | float)}),
            "updated_at": now(),
        }
        with self.write() as conn:
            stmt = self._insert(t)
            stmt = stmt.on_conflict_do_update(
                index_elements=[t.c.run_id, t.c.task_key, t.c.try_number, t.c.vendor],
                set_={"counters": stmt.excluded.counters, "updated_at": stmt.excluded.updated_at},
            )
            conn.execute(stmt, [row])

    def run_client_totals(self, run_id: str) -> dict[str, dict[str, float]]:
        """``{vendor: {counter: sum over every task attempt of the run}}``."""
        t = run_client_stats
        totals: dict[str, dict[str, float]] = {}
        with self.engine.connect() as conn:
            for vendor, counters in conn.execute(
                sa.select(t.c.vendor, t.c.counters).where(t.c.run_id == run_id)
            ):
                into = totals.setdefault(vendor, {})
                for key, value in json.loads(counters).items():
                    into[key] = into.get(key, 0) + value
        return totals

    def latest_client_stats(self, run_id: str, vendor: str) -> dict:
        """The counters of the run's latest task attempt for `vendor` (per-attempt views of a figure)."""
        t = run_client_stats
        query = (
            sa.select(t.c.counters)
            .where(t.c.run_id == run_id, t.c.vendor == vendor)
            .order_by(t.c.try_number.desc(), t.c.updated_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).scalar()
        return json.loads(row) if row else {}


def _unless_sent(stmt):
    return stmt.on_conflict_do_update(
        index_elements=[run_users.c.run_id, run_users.c.user_key],
        set_={k: stmt.excluded[k] for k in ("outcome", "events", "updated_at")},
        where=run_users.c.outcome != OUTCOME_SENT,
    )


def _as_row_by_row(values: list[dict]) -> list[dict]:
    """One row per user: what writing `values` one by one leaves. A "sent" stays once written, so a user's
    first "sent" row, else the user's last row."""
    kept: dict[str, dict] = {}
    for row in values:
        if kept.get(row["user_key"], {}).get("outcome") != OUTCOME_SENT:
            kept[row["user_key"]] = row
    return list(kept.values())
