"""In-memory Insider user store with the documented upsert semantics.

- a user is found by any matching identifier (email, phone_number, uuid, custom.<key>) or insider_id;
  identifiers matching two different stored users -> unification error (user not written);
- unknown insider_id in a request -> a new user with that insider_id;
- attributes merge; array attributes (also under ``custom``) append (no de-duplication) unless the user
  (or request) sets ``not_append: true`` / ``append: false`` - ``append`` wins when both are present;
- events append; an event equal to a stored one (name, timestamp instant, params) counts as a duplicate.

Ingestion lag (``lag_seconds`` > 0): every write is stored at once (the inspection views, duplicate counts
and statistics see it) but the Profile API reads it only ``lag_seconds`` after it was processed:
- each event carries ``visible_at`` (``time.monotonic()`` when processed + the lag at that moment);
- each attribute write (an upsert's identifiers/attributes/drop, an attribute delete) is applied to the
  true attributes at once and queued per user with its ``visible_at``; the Profile API's view of the
  attributes replays the queue in processing order, up to the first write that is not visible yet (one
  user's writes become visible in the order they were processed);
- a user first stored by a lagged write has ``_visible_from``: until then the Profile API does not know it.
With ``lag_seconds`` 0 and nothing queued, no per-write bookkeeping is kept (the view is the true state).
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable

from devtools.sandbox.insider_validate import DEFAULT_IDENTIFIERS, parse_rfc3339


class UnificationError(Exception):
    pass


def identifier_keys(identifiers: dict | None) -> list[tuple[str, str]]:
    keys = []
    for key, value in (identifiers or {}).items():
        if key == "custom":
            keys += [(f"custom.{k}", str(v)) for k, v in (value or {}).items()]
        else:
            keys.append((DEFAULT_IDENTIFIERS[key], value))
    return keys


def merge(target: dict, values: dict, append: bool) -> None:
    for key, value in values.items():
        if key == "custom" and isinstance(value, dict):
            merge(target.setdefault("custom", {}), value, append)
        elif isinstance(value, list) and append and isinstance(target.get(key), list):
            target[key] = target[key] + value
        else:
            target[key] = value


HIDDEN_EVENT_KEYS = ("epoch", "visible_at")  # bookkeeping, not part of the stored event
AttributeWrite = Callable[[dict], None]


class UserStore:
    def __init__(self, lag_seconds: float = 0.0) -> None:
        self.lag_seconds = float(lag_seconds)
        self.reset()

    def reset(self) -> None:
        self.users: dict[str, dict] = {}
        self.index: dict[tuple[str, str], str] = {}
        self.events_stored = 0
        self.duplicate_events = 0
        self.events_by_skip_hook: Counter[str] = Counter({"true": 0, "false": 0})
        self._lagged: list[float] = []  # visible_at of every lagged write not yet seen as visible

    def find(self, identifiers: dict | None, insider_id: str | None) -> set[str]:
        found = {self.index[k] for k in identifier_keys(identifiers) if k in self.index}
        if insider_id and insider_id in self.users:
            found.add(insider_id)
        return found

    def upsert(self, user: dict, skip_hook: bool, request_append: bool | None, drop: set[str]) -> str:
        identifiers, insider_id = user.get("identifiers") or {}, user.get("insider_id")
        found = self.find(identifiers, insider_id)
        if len(found) > 1:
            raise UnificationError(f"identifiers match {len(found)} different users: {sorted(found)}")
        iid = found.pop() if found else (insider_id or uuid.uuid4().hex)
        visible_at = self._visible_at()
        stored = self.users.get(iid)
        if stored is None:
            stored = self.users[iid] = {
                "insider_id": iid,
                "identifiers": {},
                "attributes": {},
                "events": [],
                "_event_keys": set(),
            }
            if visible_at is not None:
                stored["_visible_from"] = visible_at
        for key, value in identifier_keys(identifiers):
            self.index[(key, value)] = iid
        canonical = {DEFAULT_IDENTIFIERS[k]: v for k, v in identifiers.items() if k != "custom"}
        merge(stored["identifiers"], {**canonical, "custom": identifiers.get("custom") or {}}, append=False)
        append = _append_flag(user, request_append)
        attributes = user.get("attributes") or {}
        if visible_at is not None or stored.get("_pending"):  # the Profile API's view applies it later
            canonical, attributes, drop = copy.deepcopy((canonical, attributes, set(drop)))

        def write(attrs: dict) -> None:
            merge(attrs, canonical, append=False)
            merge(attrs, attributes, append)
            for name in drop:
                attrs.pop(name, None)
                attrs.get("custom", {}).pop(name, None)

        self._write_attributes(stored, write, visible_at)
        for event in user.get("events") or []:
            self._add_event(stored, event, skip_hook, visible_at)
        return iid

    def _visible_at(self) -> float | None:
        """When a write processed now becomes visible to the Profile API; None: at once."""
        if self.lag_seconds <= 0:
            return None
        visible_at = time.monotonic() + self.lag_seconds
        self._lagged.append(visible_at)
        return visible_at

    def _write_attributes(self, stored: dict, write: AttributeWrite, visible_at: float | None) -> None:
        """Apply ``write`` to the true attributes; queue it for the Profile API's view when lagged (or when
        earlier lagged writes of this user are still queued: one user's writes become visible in order)."""
        pending = stored.get("_pending")
        if visible_at is not None or pending:
            if not pending:
                stored["_visible_attributes"] = copy.deepcopy(stored["attributes"])
                pending = stored["_pending"] = []
            pending.append((visible_at if visible_at is not None else time.monotonic(), write))
        write(stored["attributes"])

    def visible(self, iid: str, now: float | None = None) -> bool:
        """Whether the Profile API knows user ``iid`` yet."""
        visible_from = self.users[iid].get("_visible_from")
        return visible_from is None or visible_from <= (time.monotonic() if now is None else now)

    def visible_attributes(self, iid: str, now: float | None = None) -> dict:
        """The user's attributes as the Profile API sees them at ``now`` (monotonic clock)."""
        stored = self.users[iid]
        pending = stored.get("_pending")
        if not pending:
            return stored["attributes"]
        now = time.monotonic() if now is None else now
        view = stored["_visible_attributes"]
        applied = 0
        while applied < len(pending) and pending[applied][0] <= now:
            pending[applied][1](view)
            applied += 1
        del pending[:applied]
        if pending:
            return view
        self.flush(iid)  # every write applied: the view equals the true attributes again
        return stored["attributes"]

    def flush(self, iid: str) -> None:
        """Make everything stored for ``iid`` visible to the Profile API at once (data governance calls)."""
        stored = self.users[iid]
        for key in ("_pending", "_visible_attributes", "_visible_from"):
            stored.pop(key, None)
        for event in stored["events"]:
            event.pop("visible_at", None)

    def pending_writes(self, now: float | None = None) -> int:
        """How many lagged writes (events, attribute writes) the Profile API cannot see yet."""
        now = time.monotonic() if now is None else now
        self._lagged = [t for t in self._lagged if t > now]
        return len(self._lagged)

    def _add_event(self, stored: dict, event: dict, skip_hook: bool, visible_at: float | None) -> None:
        params = event.get("event_params") or {}
        moment = parse_rfc3339(event["timestamp"])
        key = (event["event_name"], moment.timestamp(), json.dumps(params, sort_keys=True, default=str))
        if key in stored["_event_keys"]:
            self.duplicate_events += 1
        stored["_event_keys"].add(key)
        row = {
            "event_name": event["event_name"],
            "timestamp": event["timestamp"],
            "epoch": moment.timestamp(),
            "params": params,
            "skip_hook": skip_hook,
        }
        if visible_at is not None:
            row["visible_at"] = visible_at
        stored["events"].append(row)
        self.events_stored += 1
        self.events_by_skip_hook["true" if skip_hook else "false"] += 1

    def delete_attributes(self, iid: str, spec: dict) -> None:
        visible_at = self._visible_at()
        if visible_at is not None or self.users[iid].get("_pending"):
            spec = copy.deepcopy(spec)

        def write(attrs: dict) -> None:
            _delete(attrs, spec)
            if isinstance(spec.get("custom"), dict):
                _delete(attrs.setdefault("custom", {}), spec["custom"])

        self._write_attributes(self.users[iid], write, visible_at)

    def public(self, iid: str) -> dict:
        user = self.users[iid]
        return {k: v for k, v in user.items() if not k.startswith("_")} | {
            "events": [{k: v for k, v in e.items() if k not in HIDDEN_EVENT_KEYS} for e in user["events"]]
        }


def _append_flag(user: dict, request_append: bool | None) -> bool:
    if "append" in user:
        return bool(user["append"])
    if "not_append" in user:
        return not user["not_append"]
    return True if request_append is None else request_append


def _delete(attrs: dict, spec: dict) -> None:
    for name in spec.get("whole") or []:
        attrs.pop(name, None)
    for name, values in (spec.get("partial") or {}).items():
        if isinstance(attrs.get(name), list):
            attrs[name] = [v for v in attrs[name] if v not in values]
