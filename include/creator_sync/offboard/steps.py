"""The creator_offboard DAG's task bodies: collect (who is gone), purge (local copies), report.

The erase step between collect and purge is ``InsiderAnonymizeOperator``. Files under
``<data dir>/offboard/<run>/`` carry the work between tasks (XCom holds paths and counts); they hold InsightIQ
user ids, never PII, and the report step removes them once nothing is left to retry.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from creator_sync import vendor_ids
from creator_sync.errors import CreatorSyncConfigError
from creator_sync.hooks.data_governance import ALREADY_GONE, ERASED, FAILED
from creator_sync.http.errors import VendorError, VendorNotFoundError
from creator_sync.offboard import rule
from creator_sync.offboard.run_files import purge_run_files
from creator_sync.store import OffboardingState, StateStore, creator_hash

log = logging.getLogger(__name__)

DAG_ID = "creator_offboard"
WEBHOOK, OPERATOR = "webhook", "operator"


@dataclass
class OffboardRun:
    run_id: str
    dry_run: bool
    user_ids: list[str] = field(default_factory=list)
    external_ids: list[str] = field(default_factory=list)
    reason: str = ""

    @classmethod
    def from_params(cls, run_id: str, params: dict[str, Any]) -> OffboardRun:
        def ids(name: str) -> list[str]:
            value = params.get(name) or []
            if isinstance(value, str):
                value = value.split(",")
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise CreatorSyncConfigError(f"Param {name} must be a list of id strings, got {value!r}")
            return list(dict.fromkeys(v.strip() for v in value if v.strip()))

        user_ids, external_ids = ids("user_ids"), ids("external_ids")
        bad = [v for v in user_ids if not vendor_ids.is_record_id(v)]
        if bad:
            raise CreatorSyncConfigError(
                f"Param user_ids holds {len(bad)} invalid id(s), e.g. {repr(bad[0])[:80]}: each must match "
                f"{vendor_ids.RECORD_ID_PATTERN}"
            )
        for value in external_ids:
            vendor_ids.external_id(value)
        return cls(
            run_id=run_id,
            dry_run=bool(params.get("dry_run")),
            user_ids=user_ids,
            external_ids=external_ids,
            reason=str(params.get("reason") or "").strip(),
        )


def offboard_root() -> Path:
    """``<data dir>/offboard``: the parent of every run's work directory."""
    from creator_sync.sync.run_context import data_base, local_dir

    return local_dir(data_base() / "offboard")


def work_dir(run_id: str) -> Path:
    """The run's own work directory below offboard_root(), named by run_dir_name (never the root itself)."""
    from creator_sync import storage
    from creator_sync.sync.run_context import run_dir_name

    directory = storage.child(offboard_root(), run_dir_name(run_id))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def remove_work_dir(run_id: str) -> None:
    from creator_sync import storage

    storage.remove_tree(work_dir(run_id), parent=offboard_root())


def data_dir() -> Path:
    from creator_sync.sync.run_context import data_base, local_dir

    return local_dir(data_base())


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    tmp.replace(path)


def _read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not str(path) or not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- collect -------------------------------------------------------------------------------------------


def collect(insightiq, run: OffboardRun, store: StateStore, directory: Path) -> dict[str, Any]:
    """Who is gone: the operator's ids (queued, so a failure is retried by later runs) and the requests the
    webhook receiver queued, each decided by the rule. Gone creators are put on the skip list at once (so no
    creator_sync sends them while they are being erased) and written to ``candidates.jsonl``; creators who
    are not gone leave the queue. Dry run: decides and lists, writes nothing to the state store."""
    state = OffboardingState(store)
    rules = rule.enabled_rules()
    unresolved: list[dict] = []
    requests = _requests(insightiq, run, state, unresolved)
    candidates, kept = [], []
    for request in requests:
        user_id = _user_of(insightiq, request, run, state, unresolved)
        if user_id is None:
            continue
        candidate = _decide(insightiq, request, user_id, run, state, rules, unresolved, kept)
        if candidate is not None:
            candidates.append(candidate)
    path = directory / "candidates.jsonl"
    _write_jsonl(path, candidates)
    log.info(
        "offboarding: %d gone, %d still here, %d unresolved%s",
        len(candidates),
        len(kept),
        len(unresolved),
        " (DRY RUN)" if run.dry_run else "",
    )
    return {
        "candidates_path": str(path),
        "results_path": str(directory / "results.jsonl"),
        "gone": len(candidates),
        "kept": kept,
        "unresolved": unresolved,
        "dry_run": run.dry_run,
    }


def _requests(insightiq, run: OffboardRun, state: OffboardingState, unresolved: list[dict]) -> list[dict]:
    """The operator's ids (external ids resolved at InsightIQ) queued, then every queued request."""
    operator_ids = list(run.user_ids)
    for external_id in run.external_ids:
        try:
            operator_ids.append(str(insightiq.get_user_by_external_id(external_id)["id"]))
        except VendorNotFoundError:
            unresolved.append(
                {"external_id": external_id, "detail": "InsightIQ has no user with this external id"}
            )
    requests = [
        {
            "request_key": uid,
            "user_id": uid,
            "account_id": None,
            "reason": rule.OPERATOR_REQUEST,
            "source": OPERATOR,
            "event_time": None,
        }
        for uid in dict.fromkeys(operator_ids)
    ]
    if not run.dry_run:
        for r in requests:
            state.queue(user_id=r["user_id"], account_id=None, reason=r["reason"], source=OPERATOR)
        return state.requests()
    queued = {r["request_key"] for r in requests}
    return requests + [r for r in state.requests() if r["request_key"] not in queued]


def _user_of(insightiq, request: dict, run: OffboardRun, state: OffboardingState, unresolved: list[dict]):
    """The request's InsightIQ user id (a webhook may carry only an account id); None when unknown."""
    if request["user_id"]:
        return request["user_id"]
    try:
        return str(insightiq.get_record("accounts", request["account_id"])["user"]["id"])
    except (VendorNotFoundError, KeyError, TypeError):
        unresolved.append({"account_id": request["account_id"], "detail": "account unknown at InsightIQ"})
        if not run.dry_run:
            state.failed(request["request_key"], "account unknown at InsightIQ")
        return None


def _decide(insightiq, request, user_id, run, state, rules, unresolved, kept) -> dict | None:
    """The rule's verdict for one creator: a candidate when gone (on the skip list unless a dry run)."""
    operator = request["source"] == OPERATOR
    try:
        verdict = rule.decide(insightiq, user_id, operator=operator, rules=rules)
    except VendorError as exc:  # InsightIQ could not say: keep the request for a later run
        unresolved.append({"user_id": user_id, "detail": f"rule not decided: {exc.vendor_message or exc}"})
        if not run.dry_run:
            state.failed(request["request_key"], f"rule not decided: {type(exc).__name__}")
        return None
    if not verdict.gone:
        kept.append({"user_id": user_id, "detail": verdict.detail})
        if not run.dry_run:
            state.finish(request["request_key"])
        return None
    candidate = {
        "request_key": request["request_key"],
        "user_id": user_id,
        "rule": verdict.rule,
        "detail": verdict.detail,
        "identifiers": {"uuid": user_id},  # creator_sync's Insider uuid is the InsightIQ user id
    }
    if run.dry_run:
        candidate["would_purge"] = {
            **state.purge(user_id, dry_run=True),
            **purge_run_files(data_dir(), user_id, dry_run=True),
        }
    else:
        state.mark_offboarded(user_id, verdict.rule or "", left_at=request.get("event_time"))
    return candidate


# -- purge ---------------------------------------------------------------------------------------------


def purge(
    run: OffboardRun, collected: dict[str, Any], results_path: str, store: StateStore
) -> dict[str, Any]:
    """For every creator Insider no longer holds PII of (erased / already gone): their rows in run files,
    then in one pass of the state store their attribute hash, unanswered-batch entries and dead letters, an
    erasure-log entry and the end of their request. Failed creators stay queued (and on the skip list)."""
    if not collected:  # collect failed: nothing was decided, nothing is purged
        return {"outcomes": {}, "failures": [], "collect_failed": True}
    state = OffboardingState(store)
    rows = {r["request_key"]: r for r in _read_jsonl(results_path)}
    outcomes: Counter = Counter()
    failures: list[dict] = []
    for candidate in _read_jsonl(collected["candidates_path"]):
        result = rows.get(candidate["request_key"], {}).get("result") or {
            "outcome": FAILED,
            "detail": "not attempted: the erase task did not reach this creator",
            "retryable": True,
        }
        user_id, reason = candidate["user_id"], candidate["rule"] or ""
        if run.dry_run:
            outcomes["would_erase"] += 1
            continue
        if result["outcome"] in (ERASED, ALREADY_GONE):
            purged = purge_run_files(data_dir(), user_id)
            purged.update(state.purge(user_id))
            state.log(
                run_id=run.run_id,
                user_id=user_id,
                reason=reason,
                outcome=result["outcome"],
                detail=result.get("detail", ""),
                purged=purged,
            )
            state.finish(candidate["request_key"])
            outcomes[result["outcome"]] += 1
        else:
            state.log(
                run_id=run.run_id,
                user_id=user_id,
                reason=reason,
                outcome=FAILED,
                detail=result.get("detail", ""),
            )
            state.failed(candidate["request_key"], result.get("detail", ""))
            outcomes[FAILED] += 1
            failures.append({"user_hash": creator_hash(user_id)[:12], "detail": result.get("detail", "")})
    return {"outcomes": dict(outcomes), "failures": failures}


# -- report --------------------------------------------------------------------------------------------


def report(run: OffboardRun, collected: dict | None, purged: dict | None, store: StateStore) -> dict:
    collected = collected or {"unresolved": [{"detail": "collect failed: see its task log"}]}
    purged = purged or {"failures": [{"user_hash": "?", "detail": "purge failed: see its task log"}]}
    outcomes = purged.get("outcomes") or {}
    figures = {
        "erased": outcomes.get(ERASED, 0),
        "already_gone": outcomes.get(ALREADY_GONE, 0),
        "failed": len(purged.get("failures") or []) + len(collected.get("unresolved") or []),
        "still_connected": len(collected.get("kept") or []),
        "would_erase": outcomes.get("would_erase", 0),
        "dry_run": run.dry_run,
    }
    lines = [
        f"### creator_offboard `{run.run_id}`{' (DRY RUN: nothing erased)' if run.dry_run else ''}",
        "",
        "| | |",
        "|---|---|",
        f"| erased at Insider and locally | {figures['erased']} |",
        f"| already gone at Insider (404), purged locally | {figures['already_gone']} |",
        f"| failed (kept queued, skipped by creator_sync) | {figures['failed']} |",
        f"| not gone (still connected), left alone | {figures['still_connected']} |",
    ]
    if run.dry_run:
        lines += ["", f"Would erase {figures['would_erase']} creator(s):"]
        for c in _read_jsonl(collected.get("candidates_path") or ""):
            what = f"({c['rule']}: {c['detail']}); would purge {c['would_purge']}"
            lines.append(f"- InsightIQ user `{c['user_id']}` {what}")
    for f in purged.get("failures") or []:
        lines.append(f"- failed: creator #{f['user_hash']}: {f['detail']}")
    for u in collected.get("unresolved") or []:
        lines.append(
            f"- failed: {u.get('external_id') or u.get('account_id') or u.get('user_id')}: {u['detail']}"
        )
    for k in collected.get("kept") or []:
        lines.append(f"- not gone: InsightIQ user `{k['user_id']}`: {k['detail']}")
    text = "\n".join(lines)
    log.info("%s", text)
    ok = figures["failed"] == 0
    store.save_run_report(DAG_ID, run.run_id, figures, text, ok)
    if ok and not run.dry_run:
        remove_work_dir(run.run_id)
    return {**figures, "ok": ok, "text": text}
