"""Insider Data Governance endpoints for the Insider sandbox (insider-data-governance.md).

* ``POST /api/user/v1/anonymize`` (by ``identifiers``) and ``POST /api/contact/v1/anonymize`` (by
  ``insider_id``): one user per request, 500 requests/min (limit ``governance``, 429
  ``{"error": "rejected: too many requests"}`` with Retry-After), 404 ``{"error": "no such user for these
  identifiers: no data"}`` when nothing matches, 200 with no body otherwise. The user keeps its profile,
  events, non-PII attributes and non-PII identifiers (``uuid``, custom); every PII attribute and the PII
  identifiers (email, phone number) go, except that the last remaining identifier is kept.
* ``POST /api/user/v1/delete``: the whole user goes; 200 ``{}`` (10,000 requests/min, limit ``delete``).

Under the ``unifier`` reading (readings.py) an identifiers body without the account's unifier identifier is
a 400. Auth and injected faults (all refused before processing) come from the Insider service's gate and the
shared middleware. ``POST /_sandbox/governance {"lose_answers": N}`` makes the next N anonymize requests that
find their user take effect and then answer 502: the "processed, answer lost" outcome.
"""

from __future__ import annotations

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from devtools.sandbox.insider_store import UserStore, identifier_keys
from devtools.sandbox.insider_validate import validate_identifiers
from devtools.sandbox.limits import FixedWindowLimiter
from devtools.sandbox.readings import unifier_missing

NO_SUCH_USER = "no such user for these identifiers: no data"
TOO_MANY = {"error": "rejected: too many requests"}
PII_ATTRIBUTES = ("gender", "birthday", "name", "surname", "age", "email", "phone_number", "city", "country")
PII_IDENTIFIERS = ("email", "phone_number")


def anonymize(store: UserStore, iid: str) -> None:
    """Remove the user's PII in place, keeping the last remaining identifier. Acts at once for the Profile
    API too: whatever ingestion lag still hides for this user becomes visible first (``UserStore.flush``)."""
    store.flush(iid)
    user = store.users[iid]
    ids = user["identifiers"]
    for name in PII_IDENTIFIERS:
        others = [k for k, v in ids.items() if k != name and v not in (None, "", {})]
        if name in ids and others:  # never the last remaining identifier
            store.index.pop((name, ids.pop(name)), None)
    for name in PII_ATTRIBUTES:
        if name not in ids:
            user["attributes"].pop(name, None)


def delete(store: UserStore, iid: str) -> None:
    user = store.users.pop(iid)
    for key in identifier_keys(user["identifiers"]):
        if store.index.get(key) == iid:
            del store.index[key]


def add_data_governance_routes(app: FastAPI, svc) -> None:
    """Register the endpoints on the Insider sandbox ``app`` of service ``svc`` (an InsiderService)."""
    from devtools.sandbox.insider import err, read_json

    svc.limiters.setdefault("governance", FixedWindowLimiter("governance", 500, 60))
    svc.limiters.setdefault("delete", FixedWindowLimiter("delete", 10_000, 60))
    svc.governance = {"anonymized": 0, "deleted": 0, "not_found": 0, "answers_lost": 0, "lose_answers": 0}
    store: UserStore = svc.store

    def limited(name: str) -> JSONResponse | None:
        retry = svc.limiters[name].acquire(svc.partner)
        if retry is None:
            return None
        return JSONResponse(TOO_MANY, status_code=429, headers={"Retry-After": str(retry)})

    def one_user(identifiers, insider_id) -> str | JSONResponse:
        errors: dict[str, list[str]] = {}
        validate_identifiers("body", identifiers, insider_id, errors)
        if errors:
            key, messages = next(iter(errors.items()))
            return err(400, f"{key}: {messages[0]}: bad request")
        found = store.find(identifiers, insider_id)
        if len(found) != 1:
            svc.governance["not_found"] += 1
            return err(404, NO_SUCH_USER)
        return found.pop()

    async def anonymize_by(request: Request, field: str):
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        if (rejected := limited("governance")) is not None:
            return rejected
        if field == "identifiers":
            if not isinstance(body.get("identifiers"), dict) or not body["identifiers"]:
                return err(400, "identifiers must be defined: bad request")
            if (missing := unifier_missing(svc.readings, body["identifiers"])) is not None:
                return err(400, missing)
            iid = one_user(body["identifiers"], None)
        else:
            if not isinstance(body.get("insider_id"), str) or not body["insider_id"]:
                return err(400, "insider_id must be defined: bad request")
            iid = one_user(None, body["insider_id"])
        if isinstance(iid, JSONResponse):
            return iid
        anonymize(store, iid)
        svc.governance["anonymized"] += 1
        if svc.governance["lose_answers"] > 0:
            svc.governance["lose_answers"] -= 1
            svc.governance["answers_lost"] += 1
            message = "sandbox: processed, then the answer was lost"
            return JSONResponse({"success": False, "message": message}, status_code=502)
        return Response(status_code=200)  # no body is documented

    @app.post("/api/user/v1/anonymize")
    async def anonymize_by_identifiers(request: Request):
        return await anonymize_by(request, "identifiers")

    @app.post("/api/contact/v1/anonymize")
    async def anonymize_by_profile_id(request: Request):
        return await anonymize_by(request, "insider_id")

    @app.post("/api/user/v1/delete")
    async def delete_user(request: Request):
        body = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        if (rejected := limited("delete")) is not None:
            return rejected
        if not isinstance(body.get("identifiers"), dict) or not body["identifiers"]:
            return err(400, "identifiers must be defined: bad request")
        if (missing := unifier_missing(svc.readings, body["identifiers"])) is not None:
            return err(400, missing)
        iid = one_user(body["identifiers"], None)
        if isinstance(iid, JSONResponse):
            return iid
        delete(store, iid)
        svc.governance["deleted"] += 1
        return {}

    @app.get("/_sandbox/governance")
    def governance_stats():
        return dict(svc.governance)

    @app.post("/_sandbox/governance")
    def governance_config(body: dict = Body(...)):  # noqa: B008
        svc.governance["lose_answers"] = int(body.get("lose_answers", 0))
        return dict(svc.governance)
