"""InsightIQ sandbox control: a creator connects a brand-new account.

``POST /_sandbox/accounts {"user_id", "work_platform_id"?}`` adds a CONNECTED account of the creator on
the platform (default: the first platform with contents the creator has no account on), with a past
generated the way the generated accounts' is (data.Dataset.add_account). InsightIQ holds only the default
window of that past (`history_default_days`) until fetch-historic jobs ask for more (data.History), as for
``POST /_sandbox/connect``. The webhooks InsightIQ sends for a new connection go to the subscribers:
``ACCOUNTS.CONNECTED``, ``PROFILES.ADDED`` (its profile), and the item-list ``*.ADDED`` events of what its
first sync lists (at most 100 ids each). Every list holds the account from then on (users' accounts,
profiles, contents and income, their filters, paging, search and item reads); the sandbox's reset drops it.

The answer: ``{"account_id", "user_id", "profile_id", "work_platform_id", "connected_at", "hidden_before",
"items", "event_ids"}``, `items` counting the account's whole past per collection (hidden ones included).
"""

from __future__ import annotations

import time

from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse

from devtools.sandbox import ids
from devtools.sandbox.data import PLATFORMS
from devtools.sandbox.records import iso

# collections a first sync announces, with their event and id kind
ANNOUNCED = {
    "contents": ("CONTENTS.ADDED", ids.CONTENT),
    "social_transactions": ("TRANSACTIONS.ADDED", ids.SOCIAL_TX),
    "social_payouts": ("PAYOUTS.ADDED", ids.SOCIAL_PAYOUT),
}
MAX_ITEMS_PER_EVENT = 100


def dispatch_items(hub, event: str, data: dict, found: list[str]) -> list[str]:
    """One item-list webhook per 100 ids (the vendor's limit); returns the delivery ids."""
    return [
        hub.dispatch(
            {
                "event": event,
                "name": event.lower().replace(".", " "),
                "data": {**data, "items": found[k : k + MAX_ITEMS_PER_EVENT]},
            }
        )[0]
        for k in range(0, len(found), MAX_ITEMS_PER_EVENT)
    ]


def _platform(ds, creator: int, wanted) -> tuple[int | None, str | None]:
    """The platform index of the new account, or an error."""
    held = {int(ds.acc_platform[a]) for a in ds.accounts_of(creator)}
    if wanted is None:
        free = [i for i, p in enumerate(PLATFORMS) if p[2] and i not in held]
        return (free[0], None) if free else (None, "the creator has an account on every platform")
    index = next((i for i, p in enumerate(PLATFORMS) if p[0] == wanted), None)
    if index is None:
        return None, f"unknown work_platform_id {wanted!r}"
    if index in held:
        return None, "the creator already has an account on this platform"
    return index, None


def add_new_account_routes(app: FastAPI, svc) -> None:
    """Register on the InsightIQ sandbox ``app`` of service ``svc`` (an InsightIQService)."""
    ds = svc.ds

    @app.post("/_sandbox/accounts")
    async def new_account(body: dict = Body(...)):  # noqa: B008
        creator = svc.creator(str(body.get("user_id") or ""))
        if creator is None:
            return JSONResponse({"error": "body field 'user_id' must name a generated user"}, 400)
        platform, error = _platform(ds, creator, body.get("work_platform_id"))
        if error:
            return JSONResponse({"error": error}, 400)
        now = int(max(time.time(), ds.now))
        a = ds.add_account(creator, platform, now)
        data = {
            "account_id": ds.codec.make(ids.ACCOUNT, a),
            "user_id": ds.codec.make(ids.USER, creator),
            "last_updated_time": iso(now).replace("T", " "),
        }
        profile_id = ds.codec.make(ids.PROFILE, a)
        event_ids = {
            "ACCOUNTS.CONNECTED": [
                svc.hub.dispatch({"event": "ACCOUNTS.CONNECTED", "name": "accounts connected", "data": data})[
                    0
                ]
            ],
            "PROFILES.ADDED": [
                svc.hub.dispatch(
                    {
                        "event": "PROFILES.ADDED",
                        "name": "profiles added",
                        "data": {**data, "profile_id": profile_id},
                    }
                )[0]
            ],
        }
        hidden = {}
        for name, (event, kind) in ANNOUNCED.items():
            listed = [ds.codec.make(kind, i) for i in ds.list_items(name, a, None, None, 0, 2**40)]
            event_ids[event] = dispatch_items(svc.hub, event, data, listed)
            bound = ds.hidden(name, a).get(a)
            if bound is not None and ds.count(name, a):
                hidden[name] = iso(bound + ds.base)
        return {
            "account_id": data["account_id"],
            "user_id": data["user_id"],
            "profile_id": profile_id,
            "work_platform_id": PLATFORMS[platform][0],
            "connected_at": iso(now),
            "hidden_before": hidden,
            "items": {name: ds.count(name, a) for name in ds.collections if ds.count(name, a)},
            "event_ids": {event: found for event, found in event_ids.items() if found},
        }
