"""Attacks on the sender's ledger read by (user_key, event_key) (Ledger.acknowledged_of): for what the
ledger's writers produce, it answers what the read by event key answers, and no event is sent twice, on
SQLite and PostgreSQL. The data: user keys that arrays, quoting, collation or Unicode could change (braces,
quotes, commas, ``NULL``, spaces, NFC against NFD, 255 characters), keys of email- and phone-only users,
pairs across statement boundaries, events recorded by the settlement of an unanswered batch (this release's
marker and the previous release's), a store taken back to 0007 and upgraded again, and a user key longer
than the column with trailing spaces (PostgreSQL stores it cut). The control reads by a wrong user key:
PostgreSQL's read misses the row, so the planner would send the event again."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync.pipeline.keys import event_key
from creator_sync.pipeline.send import send_users
from creator_sync.pipeline.settle import PROBE_BACKOFF_ENV, PROBE_ROUNDS_ENV, SETTLE_ENV
from creator_sync.store import OffboardingState, StateStore, ledger, migrate
from creator_sync.store.schema import acknowledged_events
from tests.exactly_once.harness import content_event, expected_keys, user
from tests.pipeline.factories import FakeInsiderHook

from .stores import dialect_store

BACKENDS = ["sqlite", "postgresql"]
T = "2026-12-01T10:00:00Z"
NFC = unicodedata.normalize("NFC", "José")
TRICKY = [
    "NULL", "{a,b}", 'q"u\\o\'te', " lead", "trail ", "a,b", "tab\tnew\nline", NFC,
    unicodedata.normalize("NFD", NFC), "JOSÉ", "🙂", "x" * 255, "y" * 254 + " ",
]  # fmt: skip
KEY = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=255)


@contextmanager
def _store(dialect: str, tmp_path, name: str) -> Iterator[StateStore]:
    with dialect_store(dialect, tmp_path, name, "the ledger read by user") as store:
        yield store


def _clear(store: StateStore) -> None:
    with store.write() as conn:
        conn.execute(acknowledged_events.delete())


def _events(n: int) -> list[dict]:
    return [content_event(f"c{j}", T) for j in range(n)]


@pytest.mark.parametrize("dialect", BACKENDS)
def test_the_read_by_user_answers_as_the_read_by_event_for_what_record_batch_writes(
    dialect, tmp_path, monkeypatch
):
    """Hypothesis: any user keys (three statements' worth of pairs: KEY_CHUNK lowered to 3), recorded by
    record_batch as the sender records them; the read by user finds what the read by event key finds, a pair
    never recorded finds nothing, and (the control) a recorded event paired with another user key is missed
    on PostgreSQL only."""
    monkeypatch.setattr(ledger, "KEY_CHUNK", 3)
    with _store(dialect, tmp_path, "cs_ledger_attack_prop") as store:

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            keys=st.lists(st.one_of(st.sampled_from(TRICKY), KEY), min_size=1, max_size=6),
            n=st.integers(1, 3),
        )
        def check(keys: list[str], n: int) -> None:
            _clear(store)
            acked = [(event_key(k, e, None), k) for k in keys for e in _events(n)]
            store.record_batch(run_id="r1", batch_key="b1", events=acked, hashes=[], failures=[])
            asked = [(k, e) for e, k in acked] * 2 + [
                (k, event_key(k, content_event("new", T), None)) for k in keys
            ]
            expected = store.acknowledged_by(e for _, e in asked)
            assert expected == {e: "r1" for e, _ in acked}
            assert store.acknowledged_of(asked) == expected
            wrong = [(_other(k), e) for k, e in asked]  # guard off: the same events under other user keys
            assert store.acknowledged_of(wrong) == ({} if dialect == "postgresql" else expected)

        check()


def _other(key: str) -> str:
    """Another user key, no longer than the column: the key's first 254 characters and a zero-width one."""
    return key[:254] + ("\u200c" if key[254:] == "\u200b" else "\u200b")


def _ids(u: dict) -> str:
    return json.dumps(u["identifiers"], sort_keys=True)


def _sent(hook: FakeInsiderHook) -> Counter:
    return Counter(
        (_ids(u), json.dumps(e, sort_keys=True)) for u in hook.sent_users() for e in u.get("events", [])
    )


def _tricky_users() -> list[dict]:
    users = [user(k, _events(2)) for k in TRICKY]
    users += [
        {"identifiers": {"email": "only@example.com"}, "events": _events(1)},
        {"identifiers": {"uuid": "", "email": "blank-uuid@example.com"}, "events": _events(1)},
        {"identifiers": {"phone_number": "+905551112233"}, "events": _events(1)},
    ]
    return users


@pytest.mark.parametrize("dialect", BACKENDS)
def test_a_second_run_sends_nothing_for_tricky_and_contact_only_user_keys(dialect, tmp_path):
    users = _tricky_users()
    with _store(dialect, tmp_path, "cs_ledger_attack_e2e") as store:
        hook = FakeInsiderHook(per_batch=4)
        first = send_users(users, state=store, hook=hook, run_id="run-1", read_chunk=5)
        second = send_users(users, state=store, hook=hook, run_id="run-2", read_chunk=5)
    total = sum(len(u["events"]) for u in users)
    assert first.events_sent == total and second.events_sent == 0
    assert second.events_already_acknowledged == total
    assert len(_sent(hook)) == total and set(_sent(hook).values()) == {1}


@pytest.fixture
def quick_probes(monkeypatch):
    """Leases and probe waits short enough that a later run settles an unanswered batch at once."""
    monkeypatch.setenv("CREATOR_SYNC_CLAIM_LEASE_S", "0.2")
    monkeypatch.setenv(SETTLE_ENV, "0.01")
    monkeypatch.setenv(PROBE_ROUNDS_ENV, "1")
    monkeypatch.setenv(PROBE_BACKOFF_ENV, "0.01")


@pytest.mark.parametrize("dialect", BACKENDS)
def test_events_a_later_run_settles_from_an_unanswered_batch_are_not_sent_again(
    dialect, tmp_path, quick_probes
):
    """The second batch (a uuid user and an email-only user) reaches Insider and its answer is lost; run-2
    settles the marker with the Profile API and records its events under the marker's user keys; run-3
    sends none of them."""
    users = [user("u-a", _events(1)), user("u-b", _events(1)), user("u-c", _events(2))]
    users.append({"identifiers": {"email": "lost@example.com"}, "events": _events(1)})
    with _store(dialect, tmp_path, "cs_ledger_attack_lost") as store:
        lost = FakeInsiderHook(per_batch=2, crash_after=1, lost_answer=True)
        with pytest.raises(ConnectionError):
            send_users(users, state=store, hook=lost, run_id="run-1")
        assert len(store.in_flight_markers()) == 1
        later = FakeInsiderHook(per_batch=2)
        later.stored_by_others = lost.sent_users()
        settled = send_users(users, state=store, hook=later, run_id="run-2")
        last = FakeInsiderHook(per_batch=2)
        third = send_users(users, state=store, hook=last, run_id="run-3")
    assert settled.in_flight_confirmed == 2 and later.requests == []
    assert last.requests == [] and third.events_already_acknowledged == 5
    assert set((_sent(lost) + _sent(later)).values()) == {1}


@pytest.mark.parametrize("dialect", BACKENDS)
def test_events_held_from_a_previous_release_marker_are_not_sent(dialect, tmp_path, quick_probes):
    """A marker of the previous release (event keys and hashes, no users): its events are held under the
    marker's user key (dead-lettered, never guessed), and the run that settles it does not send them."""
    legacy = user("u-legacy", _events(2))
    keys = list(expected_keys([legacy]))
    record = {"events": [[k, "u-legacy"] for k in keys], "hashes": [["u-legacy", "h0"]]}
    with _store(dialect, tmp_path, "cs_ledger_attack_legacy") as store:
        store.mark_in_flight("run-0", "run-0:legacy", record, fence="run-0#1#x", lease_s=0.0)
        hook = FakeInsiderHook()
        report = send_users([legacy], state=store, hook=hook, run_id="run-1")
        assert store.acknowledged_of([("u-legacy", k) for k in keys]) == dict.fromkeys(keys, "run-0")
    assert report.events_already_acknowledged == 2 and _sent(hook) == Counter()


def test_a_store_taken_back_to_0007_and_upgraded_again_finds_what_the_sender_recorded(tmp_path):
    """PostgreSQL: rows the sender wrote at head; downgraded to 0007 (the index dropped) and upgraded by a
    new StateStore (the index built over them), the next run sends nothing."""
    users = _tricky_users()
    with _store("postgresql", tmp_path, "cs_ledger_attack_mig") as store:
        hook = FakeInsiderHook(per_batch=4)
        send_users(users, state=store, hook=hook, run_id="run-1")
        cfg = migrate.config()
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007_account_history_reason")
        indexes = sa.inspect(store.engine).get_indexes("acknowledged_events")
        assert "ix_acknowledged_events_user_key" not in {i["name"] for i in indexes}
        again = StateStore(store.engine.url.render_as_string(hide_password=False))
        try:
            report = send_users(users, state=again, hook=hook, run_id="run-2")
            indexes = sa.inspect(again.engine).get_indexes("acknowledged_events")
        finally:
            again.engine.dispose()
    assert "ix_acknowledged_events_user_key" in {i["name"] for i in indexes}
    assert report.events_sent == 0 and set(_sent(hook).values()) == {1}


@pytest.mark.parametrize("dialect", BACKENDS)
def test_a_user_key_longer_than_the_column_with_trailing_spaces_is_not_sent_twice(dialect, tmp_path):
    """PostgreSQL stores a varchar(255) value whose excess characters are all spaces cut to 255 characters
    (no error), so the ledger row's user key is not the sender's. Validation refuses such a uuid and the
    claims never hold it (claims=False here: the one-writer mode); the read still must not miss the row."""
    long = user("x" * 250 + " " * 10, _events(1))
    with _store(dialect, tmp_path, "cs_ledger_attack_long") as store:
        hook = FakeInsiderHook()
        send_users([long], state=store, hook=hook, run_id="run-1", claims=False)
        second = send_users([long], state=store, hook=hook, run_id="run-2", claims=False)
    assert second.events_already_acknowledged == 1 and set(_sent(hook).values()) == {1}


@pytest.mark.parametrize("dialect", BACKENDS)
def test_a_creator_offboarded_purged_and_reenabled_gets_no_acknowledged_event_again(dialect, tmp_path):
    """The purge keeps the creator's acknowledged event keys (their user key included): after a re-enable
    the next run sends only the event Insider does not hold yet."""
    sent = user("u-gone", _events(2))
    with _store(dialect, tmp_path, "cs_ledger_attack_offb") as store:
        hook = FakeInsiderHook()
        send_users([sent], state=store, hook=hook, run_id="run-1")
        offboarding = OffboardingState(store)
        offboarding.mark_offboarded("u-gone", "test")
        offboarding.purge("u-gone")
        assert offboarding.reenable("u-gone")
        back = user("u-gone", _events(3), name="Back")
        report = send_users([back], state=store, hook=hook, run_id="run-2")
    assert report.events_already_acknowledged == 2 and report.events_sent == 1
    assert len(_sent(hook)) == 3 and set(_sent(hook).values()) == {1}
