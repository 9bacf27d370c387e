"""Fixtures of the deployment tests; the helpers live in deploy_support.py."""

from __future__ import annotations

import pytest
import yaml
from deploy_support import COMPOSE_FILE, example_env, interpolate


@pytest.fixture(scope="session")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="session")
def compose_raw(compose_text) -> dict:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="session")
def compose(compose_raw) -> dict:
    """The compose file as `docker compose config` would see it with a filled-in .env."""
    return interpolate(compose_raw, example_env())
