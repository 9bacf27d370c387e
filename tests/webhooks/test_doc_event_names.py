"""Every webhook event name the docs mention is one InsightIQ has (insightiq-webhook-events.md, tables A
and B, as the sandbox's enum holds them)."""

from __future__ import annotations

import re
from pathlib import Path

from creator_sync.webhooks.events import NO_SYNC_EVENTS, SUBSCRIBED_EVENTS
from devtools.sandbox.webhooks import KNOWN_EVENTS

ROOT = Path(__file__).resolve().parents[2]
EVENT = re.compile(r"`([A-Z][A-Z_-]*\.[A-Z][A-Z_]*)`")


def names_in(text: str) -> set[str]:
    return set(EVENT.findall(text))


def test_the_docs_name_only_events_insightiq_has():
    named: dict[str, set[str]] = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        unknown = names_in(path.read_text()) - KNOWN_EVENTS
        if unknown:
            named[path.name] = unknown
    assert named == {}, f"event names no source has: {named}"


def test_the_check_can_fail():
    assert names_in("`ACCOUNTS.SESSION_EXPIRED` and `USERS.DELETED`") - KNOWN_EVENTS == {
        "ACCOUNTS.SESSION_EXPIRED",
        "USERS.DELETED",
    }


def test_the_receiver_subscribes_to_known_events_only():
    assert set(SUBSCRIBED_EVENTS) <= KNOWN_EVENTS and NO_SYNC_EVENTS <= KNOWN_EVENTS
