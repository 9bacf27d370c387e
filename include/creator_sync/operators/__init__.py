"""Operators for creator-sync, one module per vendor task:

- ``insightiq``: ``InsightIQFetchOperator`` (a list resource -> Parquet) and the creator_sync fetch family
  (``InsightIQCreatorsFetchOperator``, ``InsightIQContentsFetchOperator``,
  ``InsightIQAccountShardFetchOperator``)
- ``onboarding``: ``InsightIQOnboardCreatorOperator`` (user + SDK token)
- ``webhooks``: ``InsightIQWebhookSetupOperator`` (register our receiver)
- ``insider``: ``InsiderUpsertOperator`` (the one exactly-once sender), ``InsiderProfileOperator``
- ``profile_audit``: ``InsiderProfileAuditOperator`` (read back what a run sent)
- ``web_push``: ``InsiderWebPushOperator`` (Single Push campaign)
- ``data_governance``: ``InsiderAnonymizeOperator`` (erase an offboarded creator's personal data)

Imported lazily (PEP 562): a DAG file that uses one operator does not pay, at parse time, for the heavy
libraries another operator's module needs (the upsert operator's file helpers import pandas and pyarrow).
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF = {
    "InsiderAnonymizeOperator": "data_governance",
    "InsiderProfileAuditOperator": "profile_audit",
    "InsiderProfileOperator": "insider",
    "InsiderUpsertOperator": "insider",
    "InsiderWebPushOperator": "web_push",
    "InsightIQAccountShardFetchOperator": "insightiq",
    "InsightIQContentsFetchOperator": "insightiq",
    "InsightIQCreatorsFetchOperator": "insightiq",
    "InsightIQFetchOperator": "insightiq",
    "InsightIQOnboardCreatorOperator": "onboarding",
    "InsightIQWebhookSetupOperator": "webhooks",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
