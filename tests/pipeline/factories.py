"""Builders for Parquet fixtures in the fetch contract shape (json_normalize(sep="."), lists as JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

START = datetime(2024, 5, 1, tzinfo=UTC)
END = datetime(2024, 5, 2, tzinfo=UTC)
SANDBOX_NOW = "2026-01-15T12:00:00Z"  # the small sandbox's data anchor: generated items are dated before it


def write_resource(path: Path, records: list[dict]) -> Path:
    """Write records the way the fetch step does (docs/development.md)."""
    frame = pd.json_normalize(records, sep=".")
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, list | dict)).any():
            frame[col] = frame[col].map(lambda v: json.dumps(v) if isinstance(v, list | dict) else v)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def profile(user: str, account: str, platform: str, updated: str, **fields) -> dict:
    base = {
        "id": f"p-{account}",
        "user": {"id": user, "name": f"name-{user}"},
        "account": {"id": account},
        "work_platform": {"name": platform},
        "updated_at": updated,
        "reputation": {"follower_count": 100, "following_count": 10, "content_count": 5},
    }
    base.update(fields)
    return base


def content(cid: str, user: str, published: str, platform: str = "Instagram", **fields) -> dict:
    base = {
        "id": cid,
        "user": {"id": user},
        "account": {"id": f"a-{user}"},
        "work_platform": {"name": platform},
        "title": f"title {cid}",
        "format": "VIDEO",
        "type": "REELS",
        "url": f"https://example.com/{cid}",
        "published_at": published,
        "engagement": {"like_count": 10, "comment_count": 2, "view_count": 1000, "share_count": 1},
    }
    base.update(fields)
    return base


def transaction(tid: str, user: str, at: str, amount: float = 12.5) -> dict:
    return {
        "id": tid,
        "user": {"id": user},
        "account": {"id": f"a-{user}"},
        "work_platform": {"name": "YouTube"},
        "amount": amount,
        "currency": "usd",
        "type": "AD_REVENUE",
        "transaction_at": at,
    }


class FakeBatch:
    def __init__(self, users, indices, rejected=False, reason=None):
        self.users, self.indices, self.rejected, self.reason = users, indices, rejected, reason


class FakeResult:
    def __init__(self, failed):
        self.failed, self.unattributed_errors = failed, {}


@dataclass
class FakeProfile:
    found: bool
    events: dict


class FakeInsiderHook:
    """The InsiderHook upsert interface without HTTP: records every request it 'sends'."""

    def __init__(self, *, per_batch=2, max_bytes=5_000_000, fail=None, crash_after=None, lost_answer=False):
        self.per_batch, self.max_bytes, self.fail, self.crash_after = per_batch, max_bytes, fail, crash_after
        self.lost_answer = lost_answer  # the crashing request reached Insider; only its answer was lost
        self.requests: list[list[dict]] = []
        self.skip_hooks: list[bool] = []
        self.profile_calls = 0

    def plan_batches(self, users, *, skip_hook=False, error_callback_endpoint=None):
        users_, idx = [], []
        for i, user in enumerate(users):
            if len(json.dumps(user)) > self.max_bytes:
                yield FakeBatch([user], [i], rejected=True, reason="too big")
                continue
            users_.append(user)
            idx.append(i)
            if len(users_) == self.per_batch:
                yield FakeBatch(users_, idx)
                users_, idx = [], []
        if users_:
            yield FakeBatch(users_, idx)

    def upsert_batch(self, batch, *, skip_hook, error_callback_endpoint=None, before_attempt=None):
        if before_attempt is not None:
            before_attempt()
        if self.crash_after is not None and len(self.requests) >= self.crash_after:
            if self.lost_answer:
                self.requests.append(json.loads(json.dumps(batch.users)))
            raise ConnectionError("worker died before the response")
        self.requests.append(json.loads(json.dumps(batch.users)))
        self.skip_hooks.append(skip_hook)
        failed = {}
        for i, user in enumerate(batch.users):
            if self.fail and (messages := self.fail(user)):
                failed[i] = messages
        return FakeResult(failed)

    def get_profile(
        self, identifiers=None, insider_id=None, attributes=None, events=None, quota=True, before_attempt=None
    ):
        """Answers from what this fake (and any hook passed as `stored_by`) received, as Insider's Profile
        API does: per wanted event, the rows' wanted params (custom params included)."""
        if before_attempt is not None:
            before_attempt()
        self.profile_calls += 1
        out = {}
        for wanted in events["wanted"]:
            rows = [
                {p: flat[p] for p in wanted["params"] if p in flat}
                for u in self.sent_users() + getattr(self, "stored_by_others", [])
                if u["identifiers"].get("uuid") == identifiers.get("uuid")
                for e in u.get("events", [])
                if e["event_name"] == wanted["event_name"]
                for flat in [{**e.get("event_params", {}), **(e.get("event_params", {}).get("custom") or {})}]
            ]
            if rows:
                out[wanted["event_name"]] = rows
        return FakeProfile(found=True, events=out)

    def sent_users(self) -> list[dict]:
        return [u for request in self.requests for u in request]

    def sent_events(self) -> list[tuple[str, str, str, str]]:
        return [
            (
                u["identifiers"]["uuid"],
                e["event_name"],
                e["timestamp"],
                json.dumps(e["event_params"]["custom"]),
            )
            for u in self.sent_users()
            for e in u.get("events", [])
        ]
