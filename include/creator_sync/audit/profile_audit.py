"""Read back a sample of the users a sync sent, through Insider's User Profile API, and compare.

Input: the creator_sync Asset event's ``users_path`` (JSON Lines, one Upsert ``users[]`` element a line).
For each sampled user one Profile request asks for exactly the attributes that were sent (custom ones
with the ``c_`` prefix) and the sent events in their time range; the answer is compared:

* attribute ``missing`` (not in the profile) or ``different`` (scalar not equal; for a list, a sent item
  absent from the profile's list - Insider appends lists unless ``not_append``);
* event ``missing``: no profile event of that name at that second with the sent params.

Quota: every answer carries ``quota.cost``; the audit stops before the units spent would pass
``max_quota_units`` (the pool ``insider_profile`` and the hook's limiter keep the per-minute rate).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from creator_sync.progress import track

PROFILE_PAGE_COST_GUESS = 1.0


def iter_users(path: str) -> Iterator[dict]:
    """Users of a JSON Lines file: a local path, ``file://`` URL or any Airflow ObjectStoragePath URL."""
    if path.startswith("file://"):
        path = urlparse(path).path
    if "://" in path:
        from airflow.sdk import ObjectStoragePath

        handle = ObjectStoragePath(path).open("r")
    else:
        handle = Path(path).open(encoding="utf-8")  # noqa: SIM115 - closed by the with below
    with handle as lines:
        for line in lines:
            if line.strip():
                user = json.loads(line)
                if isinstance(user, dict):
                    yield user


def sample_users(path: str, size: int, seed: str | int = 0) -> list[dict]:
    """A reproducible uniform sample (reservoir: one pass, ``size`` users in memory)."""
    rng = random.Random(str(seed))
    sample: list[dict] = []
    for n, user in enumerate(iter_users(path)):
        if len(sample) < size:
            sample.append(user)
        elif (j := rng.randint(0, n)) < size:
            sample[j] = user
    return sample


def lookup_identifiers(user: dict) -> dict:
    ids = {k: v for k, v in (user.get("identifiers") or {}).items() if k != "custom" and v}
    return {"uuid": ids["uuid"]} if "uuid" in ids else ids


def _epoch(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())


def _flat_params(event: dict) -> dict:
    params = dict(event.get("event_params") or {})
    custom = params.pop("custom", None) or {}
    return {**params, **custom}


def _scalar_params(event: dict) -> dict:
    return {k: v for k, v in _flat_params(event).items() if not isinstance(v, dict | list)}


def profile_request(user: dict) -> dict:
    """Keyword arguments for ``InsiderHook.get_profile`` that read back what ``user`` sent."""
    attributes = dict(user.get("attributes") or {})
    custom = attributes.pop("custom", None) or {}
    names = sorted(attributes) + [f"c_{name}" for name in sorted(custom)]
    request: dict[str, Any] = {"identifiers": lookup_identifiers(user), "attributes": names or ["uuid"]}
    events = [e for e in user.get("events") or [] if e.get("event_name") and e.get("timestamp")]
    if events:
        wanted: dict[str, set[str]] = {}
        for event in events:
            wanted.setdefault(event["event_name"], set()).update(_scalar_params(event))
        moments = [_epoch(e["timestamp"]) for e in events]
        request["events"] = {
            "start_date": min(moments) - 1,
            "end_date": max(moments) + 1,
            "wanted": [{"event_name": n, "params": sorted(p)} for n, p in sorted(wanted.items())],
        }
    return request


def _same(sent: Any, got: Any) -> bool:
    if isinstance(sent, bool) or isinstance(got, bool):
        return sent is got
    if isinstance(sent, int | float) and isinstance(got, int | float):
        return math.isclose(float(sent), float(got), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(sent, str) and isinstance(got, str) and sent != got:
        try:  # the same instant written differently (2024-01-01T00:00:00Z vs +00:00)
            return _epoch(sent) == _epoch(got)
        except ValueError:
            return False
    return sent == got


def _attribute_mismatch(name: str, sent: Any, got: Any, present: bool) -> dict | None:
    if not present:
        return {"kind": "attribute_missing", "attribute": name, "sent": sent}
    if isinstance(sent, list) and isinstance(got, list):
        absent = [item for item in sent if not any(_same(item, g) for g in got)]
        if absent:
            return {"kind": "attribute_different", "attribute": name, "sent": sent, "profile": got}
        return None
    if not _same(sent, got):
        return {"kind": "attribute_different", "attribute": name, "sent": sent, "profile": got}
    return None


def compare(user: dict, attributes: dict, events: dict) -> list[dict]:
    """Mismatches between what ``user`` sent and the profile's ``attributes`` / ``events``."""
    mismatches = []
    sent = dict(user.get("attributes") or {})
    custom = sent.pop("custom", None) or {}
    pairs = [(k, k, v) for k, v in sent.items()] + [(f"c_{k}", f"custom.{k}", v) for k, v in custom.items()]
    for requested, label, value in sorted(pairs):
        found = _attribute_mismatch(label, value, attributes.get(requested), requested in attributes)
        if found:
            mismatches.append(found)
    for event in user.get("events") or []:
        name, timestamp = event.get("event_name"), event.get("timestamp")
        if not name or not timestamp:
            continue
        when = datetime.fromtimestamp(_epoch(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        params = _scalar_params(event)
        rows = (events or {}).get(name) or []
        if not any(
            row.get("created_date") == when
            and all(_same(v, row.get(k)) for k, v in params.items() if k in row)
            for row in rows
        ):
            mismatches.append({"kind": "event_missing", "event": name, "timestamp": timestamp})
    return mismatches


def audit_users(hook, users: list[dict], max_quota_units: float = 500.0, log=None) -> dict:
    """Read back ``users`` through ``hook.get_profile`` and compare; returns the summary (XCom-safe)."""
    summary: dict[str, Any] = {
        "sampled": len(users),
        "checked": 0,
        "matched": 0,
        "mismatched_users": 0,
        "not_found": [],
        "skipped_for_quota": 0,
        "quota_units_used": 0.0,
        "mismatches": [],
    }
    last_cost = PROFILE_PAGE_COST_GUESS
    for index, user in enumerate(track(users, "profile audit", total=len(users), unit="users")):
        if summary["quota_units_used"] + last_cost > max_quota_units:
            summary["skipped_for_quota"] = len(users) - index
            break
        request = profile_request(user)
        result = hook.get_profile(quota=True, **request)
        cost = float((result.quota or {}).get("cost") or last_cost)
        last_cost = cost
        summary["quota_units_used"] += cost
        summary["checked"] += 1
        key = json.dumps(request["identifiers"], sort_keys=True)
        if not result.found:
            summary["not_found"].append(request["identifiers"])
            continue
        found = compare(user, result.attributes, result.events)
        if found:
            summary["mismatched_users"] += 1
            summary["mismatches"].append({"identifiers": request["identifiers"], "mismatches": found})
            if log:
                log.warning("Profile mismatch for %s: %s", key, json.dumps(found, default=str))
        else:
            summary["matched"] += 1
    summary["quota_units_used"] = round(summary["quota_units_used"], 3)
    summary["mismatch_count"] = sum(len(m["mismatches"]) for m in summary["mismatches"])
    return summary


def asset_event_extras(triggering_asset_events) -> list[dict]:
    """The ``extra`` of every triggering Asset event (Airflow's accessor maps Asset -> events)."""
    extras = []
    for key in triggering_asset_events or {}:
        for event in triggering_asset_events[key]:
            extra = getattr(event, "extra", None)
            if extra is None and isinstance(event, dict):
                extra = event.get("extra")
            extras.append(dict(extra or {}))
    return extras


def lookup_one(hook, identifier_type: str, identifier: str, attributes: list[str]) -> dict:
    result = hook.get_profile(identifiers={identifier_type: identifier}, attributes=attributes, quota=True)
    return {"identifier": {identifier_type: identifier}, **result.as_dict()}


def audit_run(hook, params: dict, triggering_asset_events=None, run_id: str | None = None) -> dict:
    """The ``insider_profile_audit`` task: one manual lookup, or the audit of the synced users."""
    import logging

    log = logging.getLogger("insider_profile_audit")
    if params.get("identifier"):
        found = lookup_one(hook, params["identifier_type"], params["identifier"], list(params["attributes"]))
        log.info("Insider profile of %s:\n%s", found["identifier"], json.dumps(found, indent=2, default=str))
        return {"mode": "lookup", "found": found["found"], "quota": found["quota"]}
    extras = [e for e in asset_event_extras(triggering_asset_events) if e.get("users_path")]
    if not extras:
        log.info("No creator_sync users event and no identifier: nothing to audit")
        return {"mode": "audit", "events": 0, "checked": 0, "mismatch_count": 0}
    budget = float(params.get("max_quota_units") or 500)
    reports = []
    for extra in extras:
        users = sample_users(
            extra["users_path"], int(params.get("sample_size") or 20), seed=extra.get("run_id", run_id)
        )
        report = audit_users(hook, users, max_quota_units=budget, log=log)
        budget -= report["quota_units_used"]
        reports.append({"sync_run_id": extra.get("run_id"), "users_path": extra["users_path"], **report})
        log.info(
            "Audit of %s: %d checked, %d matched, %d with mismatches (%d mismatches), %d not found, "
            "%.1f quota units",
            extra.get("run_id"),
            report["checked"],
            report["matched"],
            report["mismatched_users"],
            report["mismatch_count"],
            len(report["not_found"]),
            report["quota_units_used"],
        )
    summary = {
        "mode": "audit",
        "events": len(reports),
        "checked": sum(r["checked"] for r in reports),
        "mismatch_count": sum(r["mismatch_count"] for r in reports),
        "quota_units_used": round(sum(r["quota_units_used"] for r in reports), 3),
        "reports": reports,
    }
    if summary["mismatch_count"]:
        log.warning(
            "%d attribute/event mismatches between what was sent and Insider profiles",
            summary["mismatch_count"],
        )
    return summary
