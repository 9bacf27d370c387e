"""The InsightIQ sandbox's readings of what InsightIQ does with a disconnected account's data, on which the
docs are silent (devtools/sandbox/readings.py, ``disconnected_data``): ``listed`` (its items stay listed),
``hidden`` (absent from every list, search and item read while it is disconnected, back on reconnect) and
``refused`` (a request naming it is a 400 in the InsightIQ error body), through the HTTP API."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def reading(sandbox):
    sandbox.reset("insightiq")
    yield lambda value: sandbox.configure("insightiq", {"disconnected_data": value})
    sandbox.configure("insightiq", {"disconnected_data": "listed"})
    sandbox.reset("insightiq")


def _connected_with_contents(iq) -> dict:
    """A CONNECTED account with contents, of a creator all of whose accounts are CONNECTED."""
    for account in iq.get("/v1/accounts", params={"limit": 100}).json()["data"]:
        mine = iq.get("/v1/accounts", params={"user_id": account["user"]["id"]}).json()["data"]
        contents = iq.get("/v1/social/contents", params={"account_id": account["id"], "limit": 5})
        if all(a["status"] == "CONNECTED" for a in mine) and contents.json()["data"]:
            return account
    raise AssertionError("no connected account with contents in the data set")


def _disconnect(iq, account: dict) -> None:
    assert iq.post(f"/_sandbox/creators/{account['user']['id']}/disconnect").status_code == 200


def _reconnect(iq, account: dict) -> None:
    assert iq.post(f"/_sandbox/creators/{account['user']['id']}/connect").status_code == 200


def _seen(iq, account: dict, day: str) -> dict:
    """What the API shows of the account's items: its contents by account_id, those published on `day` in
    the list of every account's, the latter by id through the search, its profiles."""
    aid = account["id"]
    by_account = iq.get("/v1/social/contents", params={"account_id": aid, "limit": 100})
    ids = [c["id"] for c in by_account.json()["data"]] if by_account.status_code == 200 else []
    every, offset = [], 0
    while True:
        params = {"limit": 100, "offset": offset, "from_date": day, "to_date": day}
        page = iq.get("/v1/social/contents", params=params).json()["data"]
        every += [c["id"] for c in page if c["account"]["id"] == aid]
        if len(page) < 100:
            break
        offset += 100
    searched = iq.post("/v1/social/contents/search", json={"ids": every}).json()["data"] if every else []
    profiles = iq.get("/v1/profiles", params={"limit": 100, "user_id": account["user"]["id"]}).json()
    return {
        "by_account": ids,
        "unfiltered": every,
        "searched": [c["id"] for c in searched],
        "profiles": [p["account"]["id"] for p in profiles["data"]],
    }


def _day(iq, account: dict) -> str:
    first = iq.get("/v1/social/contents", params={"account_id": account["id"], "limit": 1}).json()["data"]
    return first[0]["published_at"][:10]


def test_listed_keeps_a_disconnected_accounts_items(iq, reading):
    assert reading("listed")["disconnected_data"] == "listed"
    account = _connected_with_contents(iq)
    day = _day(iq, account)
    before = _seen(iq, account, day)
    assert before["by_account"] and before["unfiltered"] and account["id"] in before["profiles"]
    _disconnect(iq, account)
    assert _seen(iq, account, day) == before


def test_hidden_drops_the_items_while_disconnected_and_brings_them_back(iq, reading):
    account = _connected_with_contents(iq)
    day = _day(iq, account)
    reading("hidden")
    before = _seen(iq, account, day)  # connected: the reading changes nothing yet
    assert before["by_account"] and set(before["searched"]) == set(before["unfiltered"])
    item = before["unfiltered"][0]
    _disconnect(iq, account)
    assert _seen(iq, account, day) == {"by_account": [], "unfiltered": [], "searched": [], "profiles": []}
    assert iq.get(f"/v1/social/contents/{item}").status_code == 404
    assert iq.post("/v1/social/contents/search", json={"ids": [item]}).json()["data"] == []
    assert iq.get("/v1/audience", params={"account_id": account["id"]}).status_code == 404
    # the account itself is still there, with its status
    assert iq.get(f"/v1/accounts/{account['id']}").json()["status"] == "NOT_CONNECTED"
    _reconnect(iq, account)
    assert _seen(iq, account, day) == before
    assert iq.get(f"/v1/social/contents/{item}").status_code == 200


def test_hidden_applies_to_the_generated_disconnected_accounts(iq, reading):
    """An account generated NOT_CONNECTED or SESSION_EXPIRED: its profile listed, then hidden."""
    accounts = iq.get("/v1/accounts", params={"limit": 100}).json()["data"]
    lapsed = [a for a in accounts if a["status"] != "CONNECTED"]
    counts = {}
    for value in ("listed", "hidden"):
        reading(value)
        counts[value] = sum(
            len(iq.get("/v1/profiles", params={"account_id": a["id"]}).json()["data"]) for a in lapsed
        )
    assert lapsed and counts == {"listed": len(lapsed), "hidden": 0}


REFUSED = [
    ("GET", "/v1/social/contents", "params"),
    ("GET", "/v1/profiles", "params"),
    ("GET", "/v1/audience", "params"),
    ("POST", "/v1/social/contents/fetch-historic", "json"),
    ("POST", "/v1/social/contents/refresh", "json"),
]


def test_refused_answers_400_for_requests_naming_a_disconnected_account(iq, reading):
    account = _connected_with_contents(iq)
    day = _day(iq, account)
    reading("refused")
    aid = account["id"]

    def ask(method, path, where):
        payload = {"account_id": aid, "from_date": "2025-01-01"} if where == "json" else {"account_id": aid}
        return iq.request(method, path, **{where: payload})

    assert {path: ask(*spec).status_code for spec in REFUSED for path in [spec[1]]} == {
        path: 200 if method == "GET" else 202 for method, path, _ in REFUSED
    }
    _disconnect(iq, account)
    for spec in REFUSED:
        answer = ask(*spec)
        error = answer.json()["error"]
        assert answer.status_code == 400, spec
        assert (error["code"], error["status_code"], error["type"]) == (
            "account_not_connected",
            400,
            "invalid_request_error",
        )
    # the account itself stays readable, and a list that names no account still lists its items
    assert iq.get(f"/v1/accounts/{aid}").json()["status"] == "NOT_CONNECTED"
    on_day = iq.get("/v1/social/contents", params={"from_date": day, "to_date": day, "limit": 100})
    assert aid in {c["account"]["id"] for c in on_day.json()["data"]}
    _reconnect(iq, account)
    assert all(ask(*spec).status_code in (200, 202) for spec in REFUSED)


def test_an_unknown_reading_value_is_a_400(sandbox, reading):
    import httpx

    answer = httpx.post(f"{sandbox.insightiq_url}/_sandbox/config", json={"disconnected_data": "gone"})
    assert answer.status_code == 400 and "disconnected_data must be one of" in answer.text


@pytest.mark.parametrize(("argv", "value"), [([], "listed"), (["--disconnected-data", "refused"], "refused")])
def test_the_command_line_option_sets_the_reading(argv, value):
    from devtools.sandbox.cli import build, parse_args

    apps = build(parse_args(["--creators", "5", *argv]))
    assert apps["insightiq"].service.readings.disconnected_data == value
