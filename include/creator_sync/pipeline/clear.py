"""Send clears.jsonl (creator_sync.pipeline.clearing) to Insider's Delete User Attribute API after the upsert.

Batches of at most the hook's MAX_USERS_PER_REQUEST users go through `InsiderHook.delete_attributes`, whose
requests spend the upsert pool's limiter: Insider's 25,000 requests/minute are shared by Upsert and Delete
User Attribute. The answer has Upsert's shape (`data.fail.errors` keyed `users.<n>...`), so a user Insider
reports failing, and every user of a request that failed as a whole (retries exhausted, an answer lost: the
hook never re-sends a delete blindly), is kept as a dead letter with reason `clear_failed`, the vendor's
message and the request element as payload. A delete is idempotent at Insider (removing an absent attribute
changes nothing), so the next run's clears (a level, not an edge) send it again; the dead letter records
that this run's did not land.

A last payout's attributes (creator_sync.pipeline.income.cleared) are listed when the run's transform found
the creator's last payout gone; a run beside it (a backfill's runs run beside the scheduled ones) may have
kept and sent a newer counted payout since, and Insider applies requests in the order they arrive: a delete
after that upsert would remove a payout that counts. So before each request the pass re-reads the stored
income totals of the batch's creators with last_payout_* names and keeps those names only where the totals
still say `payout_gone` (`still_gone`); a creator left with nothing to clear is not sent (`users_superseded`).
When the totals got a counted payout back while the request was on its way, the delete may have landed after
that payout's upsert: the creator's acknowledged attribute hash is dropped (`Ledger.forget_attribute_hashes`),
so the next run that writes the creator sends the last payout again instead of skipping it as unchanged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from creator_sync.files import exists, open_input
from creator_sync.hooks.insider import MAX_USERS_PER_REQUEST, InsiderHook, parse_upsert_errors
from creator_sync.http.errors import VendorError
from creator_sync.pipeline.income import PAYOUT_ATTRIBUTES
from creator_sync.reasons import CLEAR_FAILED

log = logging.getLogger(__name__)


@dataclass
class ClearReport:
    """One clear pass: users / attributes planned, cleared (confirmed) and failed (dead letters)."""

    users: int = 0
    attributes: int = 0
    users_cleared: int = 0
    attributes_cleared: int = 0
    users_failed: int = 0
    users_superseded: int = 0  # listed for a last payout only, which counts again: nothing sent for them
    requests: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def counters(self) -> dict[str, int]:
        """The figures the run's report reads (stored with the upsert attempt's client counters)."""
        return {
            "clear_users": self.users,
            "clear_attributes": self.attributes,
            "clear_users_cleared": self.users_cleared,
            "attributes_cleared": self.attributes_cleared,
            "clear_users_failed": self.users_failed,
            "clear_users_superseded": self.users_superseded,
            "clear_requests": self.requests,
        }


def _batches(path: str | Path, size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    with open_input(path) as fh:
        for raw in fh:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            if line.strip():
                batch.append(json.loads(line))
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


def _names(user: dict[str, Any]) -> int:
    return len((user.get("custom") or {}).get("whole") or [])


def _letter(user: dict[str, Any], detail: str) -> dict[str, Any]:
    return {
        "user_key": str((user.get("identifiers") or {}).get("uuid")),
        "reason": CLEAR_FAILED,
        "detail": detail,
        "payload": user,
    }


def clear_file(
    path: str | Path | None,
    *,
    hook: InsiderHook,
    state,
    run_id: str,
    dry_run: bool = False,
    max_users: int = MAX_USERS_PER_REQUEST,
) -> ClearReport:
    """Delete the attributes `path` lists (None or no file: nothing to clear); failures -> dead letters."""
    report = ClearReport(dry_run=dry_run)
    if not path or not exists(path):
        return report
    for batch in _batches(path, min(max_users, MAX_USERS_PER_REQUEST)):
        report.users += len(batch)
        report.attributes += sum(map(_names, batch))
        if dry_run:
            report.requests += 1
            continue
        listed = len(batch)
        batch, payout_users = _current(state, batch)
        report.users_superseded += listed - len(batch)
        if not batch:
            continue
        failed = _send(hook, batch)
        report.requests += 1
        _forget_if_back(state, payout_users)
        letters = [_letter(batch[i], why) for i, why in failed.items()]
        if letters:
            state.add_dead_letters(run_id, letters)
        report.users_failed += len(letters)
        done = [user for i, user in enumerate(batch) if i not in failed]
        report.users_cleared += len(done)
        report.attributes_cleared += sum(map(_names, done))
    return report


def _payout_names(user: dict[str, Any]) -> list[str]:
    return [n for n in (user.get("custom") or {}).get("whole") or [] if n in PAYOUT_ATTRIBUTES]


def still_gone(state, uuids: set[str]) -> set[str]:
    """Those of `uuids` whose stored income totals still say `payout_gone` (a test switches it off)."""
    totals = state.stored_income_totals(uuids)
    return {u for u in uuids if (totals.get(u) or {}).get("payout_gone")}


def _uuid(user: dict[str, Any]) -> str:
    return str((user.get("identifiers") or {}).get("uuid"))


def _current(state, batch: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], set[str]]:
    """The batch without the last_payout_* names of creators whose last payout counts again (a user left
    with no name is dropped), and the creators whose last_payout_* names it still sends."""
    listed = {_uuid(u) for u in batch if _payout_names(u)}
    if not listed:
        return batch, set()
    gone = still_gone(state, listed)
    out = []
    for user in batch:
        if _uuid(user) in listed and _uuid(user) not in gone:
            names = [n for n in user["custom"]["whole"] if n not in PAYOUT_ATTRIBUTES]
            if not names:
                continue
            user = {**user, "custom": {**user["custom"], "whole": names}}
        out.append(user)
    return out, listed & gone


def _forget_if_back(state, payout_users: set[str]) -> None:
    """After a request that deleted last_payout_* of `payout_users`: those whose totals got a counted payout
    back meanwhile are sent whole by the next run that writes them (see the module)."""
    back = payout_users - still_gone(state, payout_users) if payout_users else set()
    if back:
        log.warning(
            "clear: %d creator(s) got a counted payout back during their clear: sent again", len(back)
        )
        state.forget_attribute_hashes(back)


def _send(hook: InsiderHook, batch: list[dict[str, Any]]) -> dict[int, str]:
    """Batch-local index -> why it failed; {} when Insider confirmed every user."""
    try:
        answer = hook.delete_attributes(batch)
    except VendorError as exc:  # retries exhausted, or an answer lost (never re-sent blindly)
        log.warning("clear: a Delete User Attribute request of %d users failed: %s", len(batch), exc)
        return dict.fromkeys(range(len(batch)), f"Delete User Attribute failed: {exc}")
    result = parse_upsert_errors(answer if isinstance(answer, dict) else {}, len(batch))
    failed = {i: "; ".join(messages) for i, messages in result.failed.items()}
    if result.unattributed_errors:  # errors naming no user: the request's users are not confirmed
        detail = f"Insider answered errors naming no user: {result.unattributed_errors}"
        failed = {i: failed.get(i, detail) for i in range(len(batch))}
    return failed
