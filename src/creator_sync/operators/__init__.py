"""Operators for creator-sync (no Python needed in a DAG)."""

from creator_sync.operators.insider import (
    InsiderProfileOperator,
    InsiderUpsertOperator,
    InsiderWebPushOperator,
)
from creator_sync.operators.insightiq import InsightIQFetchOperator

__all__ = [
    "InsiderProfileOperator",
    "InsiderUpsertOperator",
    "InsiderWebPushOperator",
    "InsightIQFetchOperator",
]
