"""The exactly-once sender against the Insider sandbox, through a network that loses what a real one does.

``Net`` is the hook's httpx transport: every request reaches the real sandbox over loopback, and a plan per
upsert decides what the network does with it: ``ok``; ``lost`` (processed, then the answer is lost: a read
timeout); ``refused`` (never reaches Insider); ``kill_before`` / ``kill_after`` (the task process dies before
the request goes out / after Insider processed it, without any clean-up: ``Dying`` turns every later state
store call into the same death, so no ``finally`` writes anything); ``stall`` (the request waits on an event
before it goes out: an attempt the scheduler gave up on, still sending); ``vanished`` (lost on its way:
never processed, and the client cannot tell: a read timeout); ``throttled`` (a 429 with ``Retry-After: 1``,
refused before processing). ``Insider`` reads back what the
sandbox stores (its inspection API: the truth, never lagged).
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from dataclasses import dataclass, field

import httpx

from creator_sync.hooks.insider import InsiderHook
from creator_sync.http.client import RetrySettings
from creator_sync.http.limiter import UnlimitedLimiter
from creator_sync.limits import INSIDER_PROFILE_POOL, INSIDER_UPSERT_POOL
from creator_sync.pipeline.keys import event_key
from creator_sync.pipeline.mapping import load_mapping

OUTCOMES = ("ok", "lost", "vanished", "refused", "kill_before", "kill_after")


class Killed(BaseException):
    """The task process died here."""


class Dying:
    """A StateStore whose process is dead once ``dead`` is set: every call dies too (nothing is written)."""

    def __init__(self, store) -> None:
        self._store, self.dead = store, False

    def __getattr__(self, name):
        if self.dead:
            raise Killed(f"state store call {name} after the process died")
        return getattr(self._store, name)


@dataclass
class Net(httpx.BaseTransport):
    plan: deque = field(default_factory=deque)
    state: Dying | None = None
    stall: threading.Event | None = None
    upserts: int = 0
    processed: int = 0

    def __post_init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.plan = deque(self.plan)

    def _die(self) -> None:
        if self.state is not None:
            self.state.dead = True
        raise Killed("task process killed")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/upsert"):
            return self.inner.handle_request(request)
        self.upserts += 1
        outcome = self.plan.popleft() if self.plan else "ok"
        if outcome == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if outcome == "vanished":
            raise httpx.ReadTimeout("the request was lost on its way", request=request)
        if outcome == "throttled":
            body = {"error": "rejected: too many requests"}
            return httpx.Response(429, headers={"Retry-After": "1"}, json=body, request=request)
        if outcome == "kill_before":
            self._die()
        if outcome == "stall" and self.stall is not None:
            self.stall.wait(30)
        response = self.inner.handle_request(request)
        response.read()
        self.processed += 1
        if outcome == "lost":
            raise httpx.ReadTimeout("the answer was lost", request=request)
        if outcome == "kill_after":
            self._die()
        return response


def hook(net: Net, attempts: int = 3) -> InsiderHook:
    return InsiderHook(
        transport=net,
        retry=RetrySettings(max_attempts=attempts, backoff_initial=0, backoff_max=0, jitter=0),
        limiters={INSIDER_UPSERT_POOL: UnlimitedLimiter(), INSIDER_PROFILE_POOL: UnlimitedLimiter()},
    )


def content_event(item: str, timestamp: str, title: str = "post") -> dict:
    return {
        "event_name": "content_published",
        "timestamp": timestamp,
        "event_params": {"name": title, "custom": {"content_id": item, "platform": "instagram"}},
    }


def user(uuid: str, events: list[dict], name: str = "Creator") -> dict:
    return {"identifiers": {"uuid": uuid}, "attributes": {"name": name}, "events": events}


def expected_keys(users: list[dict]) -> dict[str, str]:
    """event key -> uuid of every event of ``users`` (the ledger's keys)."""
    m = load_mapping()
    return {
        event_key(u["identifiers"]["uuid"], e, m.key_params(e["event_name"])): u["identifiers"]["uuid"]
        for u in users
        for e in u["events"]
    }


class Insider:
    """What the sandbox holds, per user: Counter of (event name, content id, timestamp)."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox

    def events(self, uuids: list[str]) -> dict[str, Counter]:
        found = httpx.post(
            f"{self.sandbox.insider_url}/_sandbox/users/lookup", json={"uuids": uuids}, timeout=60
        ).json()["data"]
        out = {}
        for uuid, stored in found.items():
            out[uuid] = Counter(
                (e["event_name"], (e["params"].get("custom") or {}).get("content_id"), e["timestamp"])
                for e in (stored or {}).get("events", [])
            )
        return out


def event_identity(e: dict) -> tuple:
    return (e["event_name"], e["event_params"]["custom"]["content_id"], e["timestamp"])


def check_delivery(insider: Insider, state, users: list[dict], rejected: set[str]) -> list[str]:
    """The invariant after a completed send: every valid event at Insider exactly once, nothing of a rejected
    user, every rejected user a dead letter, every acknowledged ledger entry at Insider. Returns problems."""
    problems = []
    stored = insider.events([u["identifiers"]["uuid"] for u in users])
    letters = {dl.user_key for dl in state.dead_letters(pending_only=False)}
    for u in users:
        uuid = u["identifiers"]["uuid"]
        held = stored.get(uuid, Counter())
        if uuid in rejected:
            if sum(held.values()):
                problems.append(f"{uuid}: rejected by Insider, yet {sum(held.values())} event(s) stored")
            if uuid not in letters:
                problems.append(f"{uuid}: rejected by Insider and no dead letter")
            continue
        for e in u["events"]:
            n = held.get(event_identity(e), 0)
            if n != 1:
                problems.append(f"{uuid}: event {event_identity(e)} stored {n} times")
    problems += check_ledger(insider, state, users)
    return problems


def check_ledger(insider: Insider, state, users: list[dict]) -> list[str]:
    """Every acknowledged event key is at Insider (the ledger never claims what Insider does not hold),
    except events held as unsettled (dead-lettered: an operator checks them)."""
    keys = expected_keys(users)
    by_key = {
        k: (uuid, e)
        for u in users
        for e in u["events"]
        for k, uuid in [(_key(u, e), u["identifiers"]["uuid"])]
    }
    acked = state.acknowledged(keys)
    unsettled = {
        dl.user_key for dl in state.dead_letters(reasons=["unsettled_lost_answer"], pending_only=False)
    }
    stored = insider.events(sorted(set(keys.values())))
    problems = []
    for key in acked:
        uuid, e = by_key[key]
        if uuid not in unsettled and stored.get(uuid, Counter()).get(event_identity(e), 0) < 1:
            problems.append(f"{uuid}: ledger acknowledges {event_identity(e)}, Insider does not hold it")
    return problems


def _key(u: dict, e: dict) -> str:
    m = load_mapping()
    return event_key(u["identifiers"]["uuid"], e, m.key_params(e["event_name"]))


def duplicates(insider: Insider, users: list[dict]) -> int:
    stored = insider.events([u["identifiers"]["uuid"] for u in users])
    return sum(n - 1 for held in stored.values() for n in held.values() if n > 1)


def write_users(path, users: list[dict]) -> None:
    path.write_text("".join(json.dumps(u) + "\n" for u in users))
