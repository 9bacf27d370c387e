"""Change generation for the InsightIQ sandbox: new data per type for chosen creators, with the webhooks
InsightIQ would send for it (`POST /_sandbox/mutate`).

Kinds (any subset, at any fleet size):
- `profiles`: new profile values (reputation counts, `updated_at`) -> `PROFILES.UPDATED` per account;
- `contents`: `items_per_account` new content items dated now on each engagement account -> `CONTENTS.ADDED`;
- `transactions`: `items_per_account` new social transactions dated now on each income-synced account ->
  `TRANSACTIONS.ADDED`;
- `payouts`: `items_per_account` new social payouts (PAID) dated now on each income-synced account ->
  `PAYOUTS.ADDED`;
- `accounts`: the creator's first account flips its connection (CONNECTED -> NOT_CONNECTED, otherwise ->
  CONNECTED) -> `ACCOUNTS.DISCONNECTED` / `ACCOUNTS.CONNECTED`;
- `sessions`: the creator's first account's platform session lapses (CONNECTED -> SESSION_EXPIRED) ->
  `SESSION.EXPIRED`; an account that is not connected reconnects instead -> `ACCOUNTS.CONNECTED`.
A status change moves the account's `updated_at` to the change's time (records.Renderer.account).
Item events carry at most 100 ids in `data.items`; more items for one account come as several events, as the
vendor documents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from devtools.sandbox import ids
from devtools.sandbox.data import PLATFORMS, SYNCED, Dataset
from devtools.sandbox.records import iso

KINDS = ("profiles", "contents", "transactions", "payouts", "accounts", "sessions")
MAX_ITEMS_PER_EVENT = 100
MAX_ITEMS_PER_ACCOUNT = 1000


class ChangeError(ValueError):
    """A /_sandbox/mutate body that asks for something the sandbox cannot generate."""


def parse_request(body: dict) -> tuple[tuple[str, ...], int]:
    """(kinds, items_per_account) from a mutate body; default: profiles only, one item per account."""
    kinds = body.get("kinds", ["profiles"])
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        raise ChangeError(f"body field 'kinds' must be a non-empty list of {', '.join(KINDS)}; got {kinds!r}")
    per = body.get("items_per_account", 1)
    if isinstance(per, bool) or not isinstance(per, int) or not 1 <= per <= MAX_ITEMS_PER_ACCOUNT:
        raise ChangeError(f"body field 'items_per_account' must be a whole number 1..{MAX_ITEMS_PER_ACCOUNT}")
    return tuple(dict.fromkeys(kinds)), per


def _chunks(values: list[str], size: int = MAX_ITEMS_PER_EVENT) -> Iterable[list[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def generate(
    ds: Dataset, status_of, creators: Iterable[int], kinds: tuple[str, ...], per: int, now: int
) -> tuple[list[dict], dict]:
    """Apply the changes to the data set; return (webhook payloads, summary). `status_of(a)` is the
    account's current connection status as the API renders it."""
    codec, stamp = ds.codec, iso(now).replace("T", " ")
    payloads: list[dict] = []
    items: dict[str, list[str]] = {
        "contents": [],
        "social_transactions": [],
        "social_payouts": [],
        "profiles": [],
        "accounts": [],
    }

    def event(name: str, data: dict) -> None:
        payloads.append({"event": name, "name": name.lower().replace(".", " "), "data": data})

    for c in creators:
        user_id = codec.make(ids.USER, c)
        if "profiles" in kinds:
            gen = ds.mutations.get(c, (0, 0))[0]
            ds.mutations[c] = (gen + 1, int(now))
        for a in ds.accounts_of(c):
            base = {"account_id": codec.make(ids.ACCOUNT, a), "user_id": user_id, "last_updated_time": stamp}
            platform = PLATFORMS[int(ds.acc_platform[a])]
            if "profiles" in kinds:
                pid = codec.make(ids.PROFILE, a)
                items["profiles"].append(pid)
                event("PROFILES.UPDATED", {**base, "profile_id": pid})
            for kind, name, kind_id, event_name, wanted in (
                ("contents", "contents", ids.CONTENT, "CONTENTS.ADDED", platform[2]),
                (
                    "transactions",
                    "social_transactions",
                    ids.SOCIAL_TX,
                    "TRANSACTIONS.ADDED",
                    platform[3] and int(ds.income_status[a]) == SYNCED,
                ),
                (
                    "payouts",
                    "social_payouts",
                    ids.SOCIAL_PAYOUT,
                    "PAYOUTS.ADDED",
                    platform[3] and int(ds.income_status[a]) == SYNCED,
                ),
            ):
                if kind not in kinds or not wanted:
                    continue
                new = [codec.make(kind_id, ds.add_late(name, a, now, now)) for _ in range(per)]
                items[name] += new
                for chunk in _chunks(new):
                    event(event_name, {**base, "items": chunk})
        first = int(ds.creator_acc[c])
        for kind, lapsed, lapse_event in (
            ("accounts", "NOT_CONNECTED", "ACCOUNTS.DISCONNECTED"),
            ("sessions", "SESSION_EXPIRED", "SESSION.EXPIRED"),
        ):
            if kind not in kinds:
                continue
            connected = status_of(first) == "CONNECTED"
            ds.account_overrides.setdefault(first, {}).update(
                status=lapsed if connected else "CONNECTED", status_at=int(now)
            )
            account_id = codec.make(ids.ACCOUNT, first)
            items["accounts"].append(account_id)
            data = {"account_id": account_id, "user_id": user_id, "last_updated_time": stamp}
            event(lapse_event if connected else "ACCOUNTS.CONNECTED", data)
    summary = {
        "events": dict(Counter(p["event"] for p in payloads)),
        "items": {name: values for name, values in items.items() if values},
    }
    return payloads, summary
