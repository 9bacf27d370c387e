"""InsightIQ sandbox controls for offboarding: a creator disconnects (or reconnects) all their accounts.

``POST /_sandbox/creators/{user_id}/disconnect`` sets every account of the creator to ``NOT_CONNECTED`` and
delivers one signed ``ACCOUNTS.DISCONNECTED`` webhook per account (``data``: account_id, user_id,
last_updated_time); ``POST /_sandbox/creators/{user_id}/connect`` sets them ``CONNECTED`` and delivers
``ACCOUNTS.CONNECTED``. Both answer ``{"user_id", "account_ids", "event_ids", "webhooks"}``.
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from devtools.sandbox import ids
from devtools.sandbox.records import iso

EVENTS = {
    "disconnect": ("NOT_CONNECTED", "ACCOUNTS.DISCONNECTED"),
    "connect": ("CONNECTED", "ACCOUNTS.CONNECTED"),
}


def add_offboarding_routes(app: FastAPI, svc) -> None:
    """Register on the InsightIQ sandbox ``app`` of service ``svc`` (an InsightIQService)."""
    ds = svc.ds

    def change(user_id: str, action: str):
        creator = svc.creator(user_id)
        if creator is None:
            return JSONResponse({"error": f"unknown user id {user_id!r}"}, status_code=404)
        status, event = EVENTS[action]
        now = max(time.time(), ds.now + 1)
        accounts, event_ids, webhooks = [], [], 0
        for a in ds.accounts_of(creator):
            ds.account_overrides.setdefault(a, {})["status"] = status
            account_id = ds.codec.make(ids.ACCOUNT, a)
            accounts.append(account_id)
            event_id, count = svc.hub.dispatch(
                {
                    "event": event,
                    "name": event.lower().replace(".", " "),
                    "data": {"account_id": account_id, "user_id": user_id, "last_updated_time": iso(now)},
                }
            )
            event_ids.append(event_id)
            webhooks += count
        return {"user_id": user_id, "account_ids": accounts, "event_ids": event_ids, "webhooks": webhooks}

    @app.post("/_sandbox/creators/{user_id}/disconnect")
    async def disconnect_creator(user_id: str):
        return change(user_id, "disconnect")

    @app.post("/_sandbox/creators/{user_id}/connect")
    async def connect_creator(user_id: str):
        return change(user_id, "connect")
