"""In-memory Insider user store with the documented upsert semantics.

- a user is found by any matching identifier (email, phone_number, uuid, custom.<key>) or insider_id;
  identifiers matching two different stored users -> unification error (user not written);
- unknown insider_id in a request -> a new user with that insider_id;
- attributes merge; array attributes (also under ``custom``) append (no de-duplication) unless the user
  (or request) sets ``not_append: true`` / ``append: false`` - ``append`` wins when both are present;
- events append; an event equal to a stored one (name, timestamp instant, params) counts as a duplicate.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter

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


class UserStore:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.users: dict[str, dict] = {}
        self.index: dict[tuple[str, str], str] = {}
        self.events_stored = 0
        self.duplicate_events = 0
        self.events_by_skip_hook: Counter[str] = Counter({"true": 0, "false": 0})

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
        stored = self.users.setdefault(
            iid, {"insider_id": iid, "identifiers": {}, "attributes": {}, "events": [], "_event_keys": set()}
        )
        for key, value in identifier_keys(identifiers):
            self.index[(key, value)] = iid
        canonical = {DEFAULT_IDENTIFIERS[k]: v for k, v in identifiers.items() if k != "custom"}
        merge(stored["identifiers"], {**canonical, "custom": identifiers.get("custom") or {}}, append=False)
        merge(stored["attributes"], canonical, append=False)
        append = _append_flag(user, request_append)
        merge(stored["attributes"], user.get("attributes") or {}, append)
        for name in drop:
            stored["attributes"].pop(name, None)
            stored["attributes"].get("custom", {}).pop(name, None)
        for event in user.get("events") or []:
            self._add_event(stored, event, skip_hook)
        return iid

    def _add_event(self, stored: dict, event: dict, skip_hook: bool) -> None:
        params = event.get("event_params") or {}
        moment = parse_rfc3339(event["timestamp"])
        key = (event["event_name"], moment.timestamp(), json.dumps(params, sort_keys=True, default=str))
        if key in stored["_event_keys"]:
            self.duplicate_events += 1
        stored["_event_keys"].add(key)
        stored["events"].append(
            {
                "event_name": event["event_name"],
                "timestamp": event["timestamp"],
                "epoch": moment.timestamp(),
                "params": params,
                "skip_hook": skip_hook,
            }
        )
        self.events_stored += 1
        self.events_by_skip_hook["true" if skip_hook else "false"] += 1

    def delete_attributes(self, iid: str, spec: dict) -> None:
        attrs = self.users[iid]["attributes"]
        _delete(attrs, spec)
        if isinstance(spec.get("custom"), dict):
            _delete(attrs.setdefault("custom", {}), spec["custom"])

    def public(self, iid: str) -> dict:
        user = self.users[iid]
        return {k: v for k, v in user.items() if not k.startswith("_")} | {
            "events": [{k: v for k, v in e.items() if k != "epoch"} for e in user["events"]]
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
