"""Operators for creator-sync (no Python needed in a DAG).

Imported lazily (PEP 562): a DAG file that uses one operator does not pay, at parse time, for the heavy
libraries another operator's module needs (the upsert operator's file helpers import pandas and pyarrow).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "InsiderProfileOperator": "creator_sync.operators.insider",
    "InsiderUpsertOperator": "creator_sync.operators.insider",
    "InsiderWebPushOperator": "creator_sync.operators.insider",
    "InsightIQFetchOperator": "creator_sync.operators.insightiq",
    "InsiderAnonymizeOperator": "creator_sync.operators.data_governance",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
