"""The offboarding section of the state store: the skip list, the purge, the erasure log - no PII kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from creator_sync.store import OffboardingState, StateStore, creator_hash

EMAIL = "ann@example.com"


@pytest.fixture
def store(tmp_path):
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _user(uuid: str, email: str) -> dict:
    return {"identifiers": {"uuid": uuid, "email": email}, "attributes": {"name": "Ann"}}


def _seed(store: StateStore) -> None:
    store.record_batch(
        run_id="r1",
        batch_key="r1:b1",
        events=[("ev-1", "u1"), ("ev-2", "u2")],
        hashes=[("u1", "h1"), ("u2", "h2")],
        failures=[
            {"user_key": "u1", "reason": "vendor_rejected", "detail": "x", "payload": _user("u1", EMAIL)}
        ],
    )
    store.add_dead_letters(
        "insider-callback:abc",
        [{"user_key": "u2", "reason": "unification_error", "detail": "", "payload": _user("u2", "b@x.io")}],
    )
    store.mark_in_flight(
        "r2",
        "r2:b2",
        {
            "events": [["ev-3", "u1"], ["ev-4", "u2"]],
            "hashes": [["u1", "h1b"], ["u2", "h2b"]],
            "probes": [
                {
                    "user_key": "u1",
                    "identifiers": {"uuid": "u1", "email": EMAIL},
                    "event_name": "e",
                    "timestamp": "t",
                },
                {
                    "user_key": "u2",
                    "identifiers": {"uuid": "u2", "email": "b@x.io"},
                    "event_name": "e",
                    "timestamp": "t",
                },
            ],
        },
    )


def _seed_income(store: StateStore) -> None:
    """Income items and totals of u1 and u2, and a dead letter of u1's invalid income item."""
    from creator_sync.store.income import TRANSACTION, IncomeItem

    items = [
        IncomeItem(u, TRANSACTION, "t1", "a1", 5_000_000, "USD", 10**15, "COMPLETED", True)
        for u in ("u1", "u2")
    ]
    store.income_totals(items, ["u1", "u2"], as_of_us=10**15, window_us=10**12)
    letter = {"id": "t9", "user.id": "u1", "amount": None, "currency": "USD"}
    store.add_dead_letters(
        "r3",
        [
            {
                "user_key": "income:transactions:x",
                "reason": "invalid_income_item",
                "detail": "",
                "payload": letter,
            }
        ],
    )


def test_purge_removes_the_creator_and_only_them(store):
    _seed(store)
    _seed_income(store)
    state = OffboardingState(store)
    assert state.purge("u1", dry_run=True) == {
        "attribute_hashes": 1,
        "in_flight_batches": 1,
        "dead_letters": 2,
        "income_items": 1,
    }
    assert store.attribute_hashes(["u1"])  # a dry run changes nothing
    counts = state.purge("u1")
    assert counts == {"attribute_hashes": 1, "in_flight_batches": 1, "dead_letters": 2, "income_items": 1}
    assert [i.user_key for i in store.income_items_of(["u1", "u2"])] == ["u2"]
    assert store.income_totals([], ["u1", "u2"], as_of_us=10**15, window_us=10**12).keys() == {"u2"}
    assert store.attribute_hashes(["u1", "u2"]).keys() == {"u2"}
    assert [d.user_key for d in store.dead_letters(pending_only=False)] == ["u2"]
    ((_, _, record),) = store.in_flight()
    assert EMAIL not in json.dumps(record)  # the probe keeps only the uuid
    assert record["hashes"] == [["u2", "h2b"]]  # a confirmed batch will not mark u1 unchanged
    assert record["probes"][0]["identifiers"] == {"uuid": "u1"}
    assert store.acknowledged(["ev-1", "ev-3"]) == {"ev-1"}  # acknowledged keys stay (no PII)
    assert state.purge("u1") == {
        "attribute_hashes": 0,
        "in_flight_batches": 0,
        "dead_letters": 0,
        "income_items": 0,
    }


def test_no_table_holds_the_email_after_the_purge(store):
    _seed(store)
    OffboardingState(store).purge("u1")
    with store.engine.connect() as conn:
        for table in ("dead_letters", "in_flight_batches", "user_attribute_hashes", "acknowledged_events"):
            rows = conn.exec_driver_sql(f"select * from {table}").fetchall()
            assert EMAIL not in repr(rows), table


def test_dead_letter_found_by_payload_when_its_key_differs(store):
    store.add_dead_letters(
        "cb",
        [{"user_key": EMAIL, "reason": "unification_error", "detail": "", "payload": _user("u1", EMAIL)}],
    )
    store.add_dead_letters(
        "cb",
        [{"user_key": "u11", "reason": "unification_error", "detail": "", "payload": _user("u11", "c@x.io")}],
    )
    assert OffboardingState(store).purge("u1")["dead_letters"] == 1
    assert [d.user_key for d in store.dead_letters(pending_only=False)] == ["u11"]


def test_skip_list_is_hashed_and_reenable_respects_event_order(store):
    state = OffboardingState(store)
    left = datetime(2026, 11, 10, 12, tzinfo=UTC)
    state.mark_offboarded("u1", "all_accounts_disconnected", left_at=left)
    assert state.offboarded_hashes() == {creator_hash("u1")}
    with store.engine.connect() as conn:
        assert "u1" not in repr(conn.exec_driver_sql("select * from offboarded_creators").fetchall())
    assert not state.reenable("u1", datetime(2026, 11, 10, 11, tzinfo=UTC))
    assert state.is_offboarded("u1")
    assert state.reenable("u1", datetime(2026, 11, 10, 13, tzinfo=UTC))
    assert not state.is_offboarded("u1")
    assert not state.reenable("u1")  # nothing left to re-enable
    state.mark_offboarded("u1", "operator_request")  # leaving again puts them back on the list
    assert state.is_offboarded("u1")


def test_requests_queue_idempotently_and_finish(store):
    state = OffboardingState(store)
    state.queue(user_id="u1", account_id="a1", reason="accounts_disconnected", source="webhook")
    state.queue(user_id="u1", account_id="a2", reason="accounts_disconnected", source="webhook")
    key = state.queue(user_id=None, account_id="a9", reason="accounts_disconnected", source="webhook")
    assert key == "account:a9"
    assert [r["request_key"] for r in state.requests()] == ["u1", "account:a9"]
    state.failed("u1", "boom")
    assert state.requests()[0]["attempts"] == 1 and state.requests()[0]["last_error"] == "boom"
    assert state.cancel("u1") == 1
    state.finish("account:a9")
    assert state.requests() == []
    with pytest.raises(ValueError, match="user_id or an account_id"):
        state.queue(user_id=None, account_id=None, reason="x", source="webhook")


def test_erasure_log_holds_hash_reason_outcome_counts(store):
    state = OffboardingState(store)
    state.log(
        run_id="r", user_id="u1", reason="operator_request", outcome="erased", purged={"dead_letters": 2}
    )
    (entry,) = state.erasure_log()
    assert entry["user_hash"] == creator_hash("u1") and entry["outcome"] == "erased"
    assert entry["purged"] == {"dead_letters": 2} and entry["at"].tzinfo is not None
    assert "u1" not in json.dumps({k: v for k, v in entry.items() if k != "at"})


def test_the_purge_strips_the_creator_from_an_unanswered_batch_of_the_sender(store):
    """The sender's markers hold each user as sent (identifiers included): the purge keeps the uuid and the
    events (a probe still finds them), drops the email and the attribute hash, and leaves the others."""
    from creator_sync.pipeline.settle import RECORD_VERSION, marker_user

    event = {"event_name": "content_published", "timestamp": "2026-12-01T10:00:00Z", "event_params": {}}
    users = [
        marker_user("u1", {**_user("u1", EMAIL), "events": [event]}, "h1", [{"key": "k1"}]),
        marker_user("u2", _user("u2", "b@x.io"), "h2", []),
    ]
    store.mark_in_flight("r3", "r3:b", {"v": RECORD_VERSION, "users": users})
    assert OffboardingState(store).purge("u1")["in_flight_batches"] == 1
    ((_, _, record),) = store.in_flight()
    assert EMAIL not in json.dumps(record)
    u1, u2 = record["users"]
    assert u1["user"] == {"identifiers": {"uuid": "u1"}, "events": [event]} and u1["attr_hash"] == ""
    assert u2 == users[1]
