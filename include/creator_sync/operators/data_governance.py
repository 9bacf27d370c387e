"""Insider One Data Governance operator: anonymize the users listed in a JSON Lines file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from creator_sync.http.errors import VendorTransientError
from creator_sync.limits import INSIDER_GOVERNANCE_POOL
from creator_sync.operators._common import as_bool, vendor_defaults

FINAL = ("erased", "already_gone")


class AnonymizeIncomplete(VendorTransientError):
    """Some users could not be erased for a reason a later try may not have (rate limit, lost answers)."""


class InsiderAnonymizeOperator(BaseOperator):
    """Remove each listed user's PII at Insider (``InsiderDataGovernanceHook.anonymize``), one request each.

    ``input_path``: JSON Lines, one ``{"request_key", "identifiers": {...}}`` or ``{"request_key",
    "insider_id"}`` per line. ``output_path``: the same rows with ``result`` (erased / already_gone / failed,
    detail) added, rewritten after every user, so a retried try skips users already settled and never sends
    them again. When users are left failed with a retryable reason the task raises after writing the file
    (Airflow retries it with backoff); downstream tasks read the file whatever the outcome. ``dry_run``:
    nothing is sent, every user is listed as ``would_erase``.

    ``claims`` (default on): before erasing a user keyed by ``uuid`` the task claims that key in the state
    store, the same claim a creator_sync upsert takes per chunk of users before it sends them. A creator a
    live sync holds is left ``failed`` (retryable: the task retries after the sync released it), so an
    upsert planned before the creator went on the skip list can never land after their erasure.
    """

    template_fields: Sequence[str] = ("input_path", "output_path", "dry_run")
    ui_color = "#fecaca"

    def __init__(
        self,
        *,
        input_path: Any,
        output_path: Any,
        dry_run: bool | str = False,
        conn_id: str = "insider_default",
        claims: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**vendor_defaults(kwargs, INSIDER_GOVERNANCE_POOL))
        self.input_path = input_path
        self.output_path = output_path
        self.dry_run = dry_run
        self.conn_id = conn_id
        self.claims = claims

    def execute(self, context) -> dict[str, Any]:
        from creator_sync.hooks.data_governance import InsiderDataGovernanceHook

        rows = _read(self.input_path)
        done = {r["request_key"]: r for r in _read(self.output_path) if r["result"]["outcome"] in FINAL}
        dry_run = as_bool(self.dry_run, "dry_run")
        hook = InsiderDataGovernanceHook(self.conn_id)
        claim = _SyncClaim(context, self.task_id) if self.claims and not dry_run else None
        results: list[dict] = []
        try:
            for row in rows:
                key = row["request_key"]
                if key in done:
                    results.append(done[key])
                elif dry_run:
                    results.append({**row, "result": {"outcome": "would_erase", "detail": "dry run"}})
                elif claim and not claim.take(row):
                    results.append({**row, "result": claim.held_elsewhere()})
                else:
                    outcome = hook.anonymize(
                        identifiers=row.get("identifiers"), insider_id=row.get("insider_id")
                    )
                    results.append({**row, "result": outcome.as_dict()})
                    self.log.info(
                        "creator %d/%d: %s (%s)", len(results), len(rows), outcome.outcome, outcome.detail
                    )
                seen = {r["request_key"] for r in results}
                _write(self.output_path, results + [r for k, r in done.items() if k not in seen])
            counts: dict[str, int] = {}
            for r in results:
                counts[r["result"]["outcome"]] = counts.get(r["result"]["outcome"], 0) + 1
            counts_http = hook.stats
        finally:
            hook.close()
            if claim:
                claim.release()
        self.log.info("anonymize: %s; client %s", counts, counts_http)
        retryable = [r for r in results if r["result"].get("retryable")]
        if retryable:
            raise AnonymizeIncomplete(
                f"{len(retryable)} user(s) not erased yet ({retryable[0]['result']['detail']}); "
                "the task retries",
                vendor="Insider",
                method="POST",
                path="/api/user/v1/anonymize",
            )
        return {"output_path": str(self.output_path), **counts}


class _SyncClaim:
    """The erase task's claims on creators' user keys (creator_sync.pipeline.send claims the same keys)."""

    def __init__(self, context: Any, task_id: str):
        from creator_sync.pipeline.send import claim_lease_s
        from creator_sync.store import StateStore

        self.state, self.lease_s = StateStore(), claim_lease_s()
        run_id = (context or {}).get("run_id") or "manual"
        self.owner = f"erase:{task_id}:{run_id}"

    def take(self, row: dict) -> bool:
        """True when this task now holds the row's uuid (rows keyed only by insider_id need no claim)."""
        uuid = (row.get("identifiers") or {}).get("uuid")
        if not uuid:
            return True
        return str(uuid) in self.state.claim(self.owner, [str(uuid)], self.lease_s)

    @staticmethod
    def held_elsewhere() -> dict[str, Any]:
        return {
            "outcome": "failed",
            "detail": "a creator_sync run is sending this creator now; erased on the task's next try",
            "retryable": True,
        }

    def release(self) -> None:
        self.state.release_claims(self.owner)


def _read(path: Any) -> list[dict]:
    p = Path(str(path))
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def _write(path: Any, rows: list[dict]) -> None:
    p = Path(str(path))
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    tmp.replace(p)
