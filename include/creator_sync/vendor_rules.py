"""Field rules from the vendor docs that both a hook checks and a DAG's trigger form shows.

Light on purpose (no HTTP stack): DAG files import it at parse time.
"""

from __future__ import annotations

# Insider One Web Push (insider-web-push.md): campaign title, language code.
WEB_PUSH_MAX_TITLE = 100
WEB_PUSH_LANGUAGE_PATTERN = r"^(?:[a-z]{2}_[A-Z]{2}|all_ALL)$"  # e.g. en_US; all_ALL = every language

# InsightIQ SDK token products (insightiq-api.md, "Create an SDK token").
INSIGHTIQ_PRODUCTS = ("IDENTITY", "IDENTITY.AUDIENCE", "ENGAGEMENT", "ENGAGEMENT.AUDIENCE", "INCOME")

# Insider One Data Governance (insider-data-governance.md section 0, "Identifier model"): the identifiers an
# account may unify on; every request body carries the configured one.
UNIFIER_IDENTIFIERS = ("uuid", "email", "phone_number")
