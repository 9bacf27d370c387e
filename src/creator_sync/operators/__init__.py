"""Operators for creator-sync (no Python needed in a DAG)."""

from creator_sync.operators.insider import (
    InsiderProfileOperator,
    InsiderUpsertOperator,
    InsiderWebPushOperator,
)
from creator_sync.operators.insightiq import (
    InsightIQAccountShardFetchOperator,
    InsightIQContentsFetchOperator,
    InsightIQCreatorsFetchOperator,
    InsightIQFetchOperator,
)

__all__ = [
    "InsiderProfileOperator",
    "InsiderUpsertOperator",
    "InsiderWebPushOperator",
    "InsightIQAccountShardFetchOperator",
    "InsightIQContentsFetchOperator",
    "InsightIQCreatorsFetchOperator",
    "InsightIQFetchOperator",
]
