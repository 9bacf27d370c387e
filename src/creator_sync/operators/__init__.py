"""Operators for creator-sync, one module per vendor task:

- ``insightiq``: ``InsightIQFetchOperator`` (a list resource -> Parquet)
- ``onboarding``: ``InsightIQOnboardCreatorOperator`` (user + SDK token)
- ``webhooks``: ``InsightIQWebhookSetupOperator`` (register our receiver)
- ``insider``: ``InsiderUpsertOperator``, ``InsiderProfileOperator``
- ``profile_audit``: ``InsiderProfileAuditOperator`` (read back what a run sent)
- ``web_push``: ``InsiderWebPushOperator`` (Single Push campaign)
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use, so a DAG file importing one operator module does not load every vendor's stack.
_MODULE_OF = {
    "InsiderProfileAuditOperator": "profile_audit",
    "InsiderProfileOperator": "insider",
    "InsiderUpsertOperator": "insider",
    "InsiderWebPushOperator": "web_push",
    "InsightIQFetchOperator": "insightiq",
    "InsightIQOnboardCreatorOperator": "onboarding",
    "InsightIQWebhookSetupOperator": "webhooks",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
