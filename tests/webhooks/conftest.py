from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from webhook_support import INSIDER_TOKEN, SECRET, FakeDeadLetters, FakeOffboardTrigger, FakeTrigger

from creator_sync.offboard.webhook import OffboardEvents
from creator_sync.store import OffboardingState, StateStore
from creator_sync.store.webhooks import WebhookStore, make_engine
from creator_sync.webhooks.app import Receiver, create_app


@pytest.fixture
def store(tmp_path):
    return WebhookStore(make_engine(f"sqlite:///{tmp_path / 'state.db'}"))


@pytest.fixture
def trigger():
    return FakeTrigger()


@pytest.fixture
def dead_letters():
    return FakeDeadLetters()


@pytest.fixture
def offboard_trigger():
    return FakeOffboardTrigger()


@pytest.fixture
def offboarding(store, offboard_trigger):
    """Offboarding state in the receiver's own state DB, with a substituted creator_offboard trigger."""
    return OffboardEvents(OffboardingState(StateStore(engine=store.engine)), offboard_trigger)


@pytest.fixture
def receiver(store, trigger, dead_letters, offboarding):
    return Receiver(
        store=store,
        trigger=trigger,
        insightiq_secret=lambda: SECRET,
        insider_token=lambda: INSIDER_TOKEN,
        dead_letter_sink=dead_letters,
        debounce_s=30,
        background=False,
        offboarding=offboarding,
    )


@pytest.fixture
def client(receiver):
    with TestClient(create_app(receiver)) as c:
        yield c
