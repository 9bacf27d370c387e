"""The history path's part of the state store: one ``account_history`` row per account the path knows.

An account's row goes ``pending`` (first seen: its past is owed) -> ``requested`` (fetch-historic jobs asked
for at InsightIQ) -> ``sent`` (its past reached Insider), or ``skipped`` with its ``reason`` when its past is
not to be sent: its creator is offboarded (``creator_offboarded``), or InsightIQ no longer has the account
(``account_not_found``, a 404: deleted or erased there), which must not hold back the accounts behind it.
``known`` rows are the accounts that were there when the path first ran (the baseline): their past is not the
path's to send (a backfill sends it). A row is inserted once (the primary key), so an account is selected for
its history once whatever announces it (the directory snapshot, an ``ACCOUNTS.CONNECTED`` webhook, both,
again).

An ``ACCOUNTS.CONNECTED`` for an account whose row was taken over in an earlier hour (a reconnect under the
same id) owes its history again up to the reconnect's hour (``reconnect_update``): what was published while
it was disconnected is listed only after the reconnect, dated where neither path reads it.

A ``sent`` row goes back to ``requested`` when a later run reads an item of the account dated before its
``takeover_at`` that the event ledger does not hold (``history_reopen``): InsightIQ listed it after the
history path's read (a fetch-historic job slower than the job wait), and only a history read sends it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from creator_sync.store.engine import StoreBase, aware, chunks, now
from creator_sync.store.schema import account_history

KNOWN, PENDING, REQUESTED, SENT, SKIPPED = "known", "pending", "requested", "sent", "skipped"
# the reasons of a skipped row
CREATOR_OFFBOARDED = "creator_offboarded"  # on the offboarding skip list: nothing of theirs is asked for
ACCOUNT_NOT_FOUND = "account_not_found"  # InsightIQ answers 404 for the account: it is gone
WEBHOOK = "webhook"  # a row the receiver wrote on ACCOUNTS.CONNECTED
# the row the path's first discovery writes beside the baseline's accounts (no InsightIQ account has this id):
# the baseline is taken even when it holds no account
BASELINE_MARK = "(baseline)"


def hour_floor(moment: datetime) -> datetime:
    """The start of `moment`'s hour (UTC)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def takeover_hour(first_seen: datetime) -> datetime:
    """An account's `takeover_at`: the start of the hour after the one it was first seen in (by the webhook
    receiver or the snapshot). Its events before it are the history path's, from it on the hourly runs'.

    Every item published before the account was first seen is before it, so the history windows hold them
    all, whenever InsightIQ's first sync of the account lists them: an item posted at 10:10 for a connect at
    10:59 that InsightIQ lists only at 11:04 is after the read of the hourly run of [10:00, 11:00) and outside
    the interval of the run of [11:00, 12:00); with the takeover at 10:00 no path would send it. What the
    history path and the hourly runs both send (the items from the start of that hour on that the hourly run
    of it read) the event ledger sends once: both name an item by the same key."""
    return hour_floor(first_seen) + timedelta(hours=1)


@dataclass(frozen=True)
class HistoryAccount:
    account_id: str
    source: str
    first_seen_at: datetime
    takeover_at: datetime | None
    status: str
    requested_at: datetime | None
    attempts: int
    reason: str | None = None  # why a skipped row's past is not sent


def _row(row) -> HistoryAccount:
    return HistoryAccount(
        account_id=row["account_id"],
        source=row["source"],
        first_seen_at=aware(row["first_seen_at"]),
        takeover_at=aware(row["takeover_at"]),
        status=row["status"],
        requested_at=aware(row["requested_at"]),
        attempts=int(row["attempts"] or 0),
        reason=row["reason"],
    )


class AccountHistory(StoreBase):
    def history_started(self) -> bool:
        """Has the history path's discovery run yet (its baseline is recorded)? Rows the webhook receiver
        wrote do not count."""
        q = sa.select(account_history.c.account_id).where(account_history.c.source != WEBHOOK).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def history_known(self, account_ids: Iterable[str]) -> set[str]:
        """Which of the accounts have a row (of any status)."""
        ids, found = sorted(set(account_ids)), set()
        with self.engine.connect() as conn:
            for part in chunks(ids):
                q = sa.select(account_history.c.account_id).where(account_history.c.account_id.in_(part))
                found.update(conn.execute(q).scalars())
        return found

    def note_accounts(
        self,
        account_ids: Iterable[str],
        *,
        source: str,
        takeover_at: datetime | None,
        status: str = PENDING,
        at: datetime | None = None,
    ) -> int:
        """Insert a row for each account without one; returns how many were new."""
        at = at or now()
        rows = [
            {
                "account_id": a,
                "source": source,
                "first_seen_at": at,
                "takeover_at": takeover_at,
                "status": status,
                "attempts": 0,
            }
            for a in sorted(set(account_ids))
        ]
        added = 0
        with self.write() as conn:
            for part in chunks(rows):
                stmt = self._insert(account_history).values(part).on_conflict_do_nothing()
                added += conn.execute(stmt).rowcount or 0
        return added

    def history_accounts(self, account_ids: Iterable[str] | None = None) -> list[HistoryAccount]:
        """The rows of these accounts (default: all), the baseline mark left out."""
        q = (
            sa.select(account_history)
            .where(account_history.c.account_id != BASELINE_MARK)
            .order_by(account_history.c.account_id)
        )
        if account_ids is not None:
            q = q.where(account_history.c.account_id.in_(sorted(set(account_ids))))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q).mappings()]

    def history_due(self, limit: int) -> list[HistoryAccount]:
        """Accounts whose history is owed (pending or requested), oldest first after those with fewer failed
        attempts (an account InsightIQ keeps refusing never holds back the ones behind it), at most
        `limit`."""
        t = account_history.c
        q = (
            sa.select(account_history)
            .where(t.status.in_([PENDING, REQUESTED]))
            .order_by(t.attempts, t.first_seen_at, t.account_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q).mappings()]

    def history_requested(self, account_ids: Iterable[str], at: datetime | None = None) -> None:
        """The fetch-historic jobs of these pending accounts were asked for at `at`."""
        self._history_update(account_ids, [PENDING], status=REQUESTED, requested_at=at or now())

    def history_sent(
        self,
        account_ids: Iterable[str],
        run_id: str,
        at: datetime | None = None,
        requested: dict[str, datetime] | None = None,
    ) -> None:
        """These accounts' past reached Insider (their events are in the ledger) in `run_id`. `requested`
        (account -> the `requested_at` the run's read saw): a row whose `requested_at` differs was reopened
        since that read (``history_reopen``) and stays owed: the read did not cover its late item."""
        owed, values = [PENDING, REQUESTED], {"status": SENT, "sent_at": at or now(), "run_id": run_id}
        if requested is None:
            self._history_update(account_ids, owed, **values)
            return
        t = account_history.c
        with self.write() as conn:
            for part in chunks(sorted(set(account_ids) & set(requested))):
                rows = conn.execute(
                    sa.select(t.account_id, t.requested_at).where(t.account_id.in_(part), t.status.in_(owed))
                ).all()
                for account, stored in rows:  # compare-and-set: the stored value, bound as read
                    if stored is not None and aware(stored) == requested[account]:
                        conn.execute(_row_at(account, owed, stored).values(**values))

    def history_skipped(self, account_ids: Iterable[str], reason: str, at: datetime | None = None) -> None:
        """These owed accounts' past is not to be sent, for `reason` (CREATOR_OFFBOARDED, ACCOUNT_NOT_FOUND):
        they leave the owed rows, kept with the reason."""
        owed = [PENDING, REQUESTED]
        self._history_update(account_ids, owed, status=SKIPPED, reason=reason, sent_at=at or now())

    def history_sent_takeovers(
        self, account_ids: Iterable[str], statuses: Iterable[str] = (SENT,)
    ) -> dict[str, datetime]:
        """The `takeover_at` of those of the accounts whose history is `sent` (or in `statuses`; one query
        per chunk)."""
        ids, found = sorted(set(account_ids)), {}
        t = account_history.c
        with self.engine.connect() as conn:
            for part in chunks(ids):
                q = sa.select(t.account_id, t.takeover_at).where(
                    t.account_id.in_(part), t.status.in_(list(statuses)), t.takeover_at.is_not(None)
                )
                found.update({a: aware(at) for a, at in conn.execute(q)})
        return found

    def history_reopen(self, account_ids: Iterable[str], due_from: datetime) -> int:
        """These `sent` accounts' past is owed again (an item of it was listed after the history read):
        `requested`, with `requested_at` = `due_from` (the caller makes it due at once). A `requested` row
        may be in a history run between its read and its ``history_sent``, a read that did not cover the
        item: its `requested_at` moves 1 us back (due as before, or 1 us sooner), so that run's
        ``history_sent`` leaves it owed. Rows of any other status are left as they are. Returns how many
        `sent` rows it reopened."""
        t, reopened = account_history.c, 0
        with self.write() as conn:
            for part in chunks(sorted(set(account_ids))):
                query = sa.select(t.account_id, t.status, t.requested_at)
                rows = conn.execute(query.where(t.account_id.in_(part), t.status.in_([SENT, REQUESTED])))
                for account, status, stored in rows.all():
                    if status == SENT:
                        update = _row_at(account, [SENT], stored).values(
                            status=REQUESTED, requested_at=due_from
                        )
                        reopened += conn.execute(update).rowcount or 0
                    elif stored is not None:  # compare-and-set, as history_sent's
                        moved = aware(stored) - timedelta(microseconds=1)
                        conn.execute(_row_at(account, [REQUESTED], stored).values(requested_at=moved))
        return reopened

    def history_failed(self, account_ids: Iterable[str]) -> None:
        """One more attempt that did not finish these accounts (they stay owed)."""
        ids = sorted(set(account_ids))
        with self.write() as conn:
            for part in chunks(ids):
                conn.execute(
                    account_history.update()
                    .where(account_history.c.account_id.in_(part))
                    .values(attempts=account_history.c.attempts + 1)
                )

    def _history_update(self, account_ids: Iterable[str], current: list[str], **values) -> int:
        ids, changed = sorted(set(account_ids)), 0
        with self.write() as conn:
            for part in chunks(ids):
                changed += (
                    conn.execute(
                        account_history.update()
                        .where(account_history.c.account_id.in_(part), account_history.c.status.in_(current))
                        .values(**values)
                    ).rowcount
                    or 0
                )
        return changed


def reconnect_update(conn: sa.Connection, account_id: str, takeover: datetime) -> bool:
    """An ``ACCOUNTS.CONNECTED`` for an account with a row taken over before `takeover` (a reconnect under
    the same id): its history is owed again up to `takeover`, `pending` (new fetch-historic jobs).

    While the account was disconnected InsightIQ could not read the platform; its first sync after the
    reconnect lists what was published meanwhile, dated after the first takeover (no history window holds
    it) and before the reconnect's hour (no hourly run's event window holds it beyond the look-back, and the
    late-history check reopens only items before the takeover). The history read of [from_date, takeover)
    holds them; the ledger drops what Insider already acknowledged. A row whose run is between its read and
    its finish loses its `requested_at`, so that run's ``history_sent`` leaves it owed. Known rows (the
    baseline) are owed the gap too; skipped ones stay skipped. Returns whether the row changed."""
    t = account_history.c
    found = conn.execute(
        sa.select(t.status, t.takeover_at).where(t.account_id == account_id, t.status != SKIPPED)
    ).first()
    if found is None or (found.takeover_at is not None and aware(found.takeover_at) >= takeover):
        return False
    stored = t.takeover_at.is_(None) if found.takeover_at is None else t.takeover_at == found.takeover_at
    update = account_history.update().where(t.account_id == account_id, t.status == found.status, stored)
    values = {"status": PENDING, "takeover_at": takeover, "requested_at": None}
    return bool(conn.execute(update.values(**values)).rowcount)


def _row_at(account_id: str, statuses: list[str], requested_at) -> sa.Update:
    """An update of one row that is still in `statuses` with the `requested_at` read (as stored): a row
    changed in between is left alone (PostgreSQL re-checks the condition after the row lock)."""
    t = account_history.c
    return account_history.update().where(
        t.account_id == account_id, t.status.in_(statuses), t.requested_at == requested_at
    )
