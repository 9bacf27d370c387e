"""The state store, the bottom floor of the package: one module per concern, one database.

- ``engine``: where the database is, the engine (SQLite pragmas, PostgreSQL) and the write transaction;
- ``schema``: every table; ``migrate`` + ``migrations/``: Alembic owns the schema;
- ``ledger``: acknowledged events and attribute hashes; ``claims``: claims, fencing and in-flight markers;
- ``dead_letters``; ``runs``: per-user outcomes, client counters, run reports;
- ``history``: which accounts had their past requested and sent (creator_sync_history);
- ``income``: the creators' income items, once each, and the totals the income attributes come from;
- ``offboarding``: requests, the skip list, the purge, the erasure log; ``webhooks``: the receiver's tables.

``StateStore`` is the one object the pipeline holds: every part on one engine.
"""

from __future__ import annotations

from creator_sync.store.claims import Claims, FencedOut, InFlight
from creator_sync.store.dead_letters import DeadLetter, DeadLetters, dead_letter_id
from creator_sync.store.engine import STATE_URL_ENV, default_data_dir, state_url
from creator_sync.store.history import AccountHistory, HistoryAccount
from creator_sync.store.income import Income, IncomeItem
from creator_sync.store.ledger import Ledger
from creator_sync.store.offboarding import OffboardingState, creator_hash, offboarded_ids
from creator_sync.store.runs import (
    OUTCOME_CLAIMED_ELSEWHERE,
    OUTCOME_OFFBOARDED,
    OUTCOME_SENT,
    OUTCOME_UNCHANGED,
    Runs,
)


class StateStore(Ledger, Claims, DeadLetters, Runs, AccountHistory, Income):
    """The state database: ledger, claims and markers, dead letters, run records, the accounts' history
    records and the creators' income items and totals on one engine."""


__all__ = [
    "OUTCOME_CLAIMED_ELSEWHERE",
    "OUTCOME_OFFBOARDED",
    "OUTCOME_SENT",
    "OUTCOME_UNCHANGED",
    "STATE_URL_ENV",
    "AccountHistory",
    "DeadLetter",
    "FencedOut",
    "HistoryAccount",
    "InFlight",
    "Income",
    "IncomeItem",
    "OffboardingState",
    "StateStore",
    "creator_hash",
    "dead_letter_id",
    "default_data_dir",
    "offboarded_ids",
    "state_url",
]
