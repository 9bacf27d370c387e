"""Airflow provider metadata for creator-sync (entry point ``apache_airflow_provider``).

Registered through ``[project.entry-points.apache_airflow_provider]`` in pyproject.toml, so installing the
package (``make install``: editable; the Docker image: the wheel) makes Airflow list ``creator-sync`` as a
provider and offer the three connection types in the UI with their own form.

The connection forms are declarative (Airflow 3.2+ ``conn-fields`` / ``ui-field-behaviour`` in the provider
info): the hooks do not implement the deprecated ``get_ui_field_behaviour`` / ``get_connection_form_widgets``,
and the API server builds the forms without importing the hook classes.

Field mapping (docs/development.md, "Connections"):

* ``insightiq``: host = base URL (empty: derived from the ``environment`` extra), login = client id,
  password = client secret, extra ``environment`` = ``sandbox`` | ``production``, optional extra
  ``contents_read`` = ``auto`` | ``all_accounts`` | ``per_account`` (creator_sync.sync.contents_read).
* ``insider``: host = unification base URL, login = partner name, password = request token, optional
  extra ``unifier_identifier`` = ``uuid`` | ``email`` | ``phone_number`` (empty: identifiers as given)
  (creator_sync.hooks.data_governance).
* ``insider_web_push``: host = web push base URL, login = partner id, password = API key.
* every type, optional extras: ``timeout`` = seconds per request attempt (default 30, connect 10),
  ``retries`` = client retries of an idempotent request after its first attempt (default 4); the hook
  reads them (creator_sync.hooks.base) and arguments passed to the hook win.

Secrets always live in the standard ``password`` field: Airflow encrypts it with the Fernet key, renders it
as a password input and masks it in logs. No secret is stored in a plain ``extra`` field.
"""

from __future__ import annotations

from creator_sync.vendor_rules import UNIFIER_IDENTIFIERS

PACKAGE_NAME = "creator-sync"
VERSION = "0.1.0"  # keep equal to [project].version in pyproject.toml (tests/deploy/test_provider.py checks)

INSIGHTIQ_DOCS = "https://docs.insightiq.ai/"
INSIDER_DOCS = "https://academy.insiderone.com/"

# Standard form fields the vendor APIs never use: the base URL carries scheme and port.
_UNUSED_STANDARD_FIELDS = ["schema", "port"]


def _behaviour(relabeling: dict[str, str], placeholders: dict[str, str]) -> dict:
    return {
        "hidden-fields": list(_UNUSED_STANDARD_FIELDS),
        "relabeling": relabeling,
        "placeholders": placeholders,
    }


# Optional extras every connection type offers (read by creator_sync.hooks.base.VendorHook).
CLIENT_FIELDS = {
    "timeout": {
        "label": "Timeout (s)",
        "description": "Seconds one request attempt may take (empty: 30, connect 10).",
        "schema": {"type": ["number", "null"], "minimum": 0.001},
    },
    "retries": {
        "label": "Retries",
        "description": (
            "How often the client retries an idempotent request after a transient failure (empty: 4). "
            "Creates and upserts are never re-sent after an answer was lost, whatever this says."
        ),
        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
    },
}

CONNECTION_TYPES = [
    {
        "connection-type": "insightiq",
        "hook-class-name": "creator_sync.hooks.insightiq.InsightIQHook",
        "hook-name": "InsightIQ",
        "ui-field-behaviour": _behaviour(
            relabeling={"host": "Base URL", "login": "Client ID", "password": "Client secret"},
            placeholders={
                "host": "empty = from Environment (https://api.sandbox.insightiq.ai / https://api.insightiq.ai)",
                "login": "InsightIQ client id",
                "password": "InsightIQ client secret",
            },
        ),
        "conn-fields": {
            "environment": {
                "label": "Environment",
                "description": (
                    "InsightIQ environment the client id and secret belong to. Used for the base URL when "
                    "Base URL is empty: sandbox -> https://api.sandbox.insightiq.ai, "
                    "production -> https://api.insightiq.ai."
                ),
                "schema": {"type": "string", "enum": ["sandbox", "production"], "default": "sandbox"},
            },
            "contents_read": {
                "label": "Contents read",
                "description": (
                    "How GET /v1/social/contents is read (the sources disagree on whether account_id is "
                    "required): auto (default) = once over all accounts until InsightIQ answers a 400 asking "
                    "for account_id, then per account from then on; all_accounts or per_account force one."
                ),
                "schema": {"type": ["string", "null"], "enum": [None, "auto", "all_accounts", "per_account"]},
            },
            **CLIENT_FIELDS,
        },
    },
    {
        "connection-type": "insider",
        "hook-class-name": "creator_sync.hooks.insider.InsiderHook",
        "hook-name": "Insider One",
        "ui-field-behaviour": _behaviour(
            relabeling={"host": "Base URL", "login": "Partner name", "password": "Request token"},
            placeholders={
                "host": "https://unification.useinsider.com",
                "login": "partner name, lower case (X-PARTNER-NAME)",
                "password": "API request token (X-REQUEST-TOKEN)",
            },
        ),
        "conn-fields": {
            "unifier_identifier": {
                "label": "Unifier identifier",
                "description": (
                    f"The identifier the Insider account unifies on (InOne settings): one of "
                    f"{', '.join(UNIFIER_IDENTIFIERS)}. Every Data Governance request carries it (looked up "
                    "through the Profile API when a request lacks it). Empty: identifiers go as given (uuid)."
                ),
                "schema": {"type": ["string", "null"], "enum": [None, *UNIFIER_IDENTIFIERS]},
            },
            **CLIENT_FIELDS,
        },
    },
    {
        "connection-type": "insider_web_push",
        "hook-class-name": "creator_sync.hooks.web_push.InsiderWebPushHook",
        "hook-name": "Insider One Web Push",
        "ui-field-behaviour": _behaviour(
            relabeling={"host": "Base URL", "login": "Partner ID", "password": "API key"},
            placeholders={
                "host": "https://web-push.api.useinsider.com",
                "login": "Insider partner id",
                "password": "Web push API key (Bearer token)",
            },
        ),
        "conn-fields": dict(CLIENT_FIELDS),
    },
]


def get_provider_info() -> dict:
    """Provider info as Airflow's ProvidersManager expects it (airflow/provider_info.schema.json)."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Creator Sync",
        "description": "InsightIQ creator data into Insider One: connection types and hooks for both APIs.",
        "versions": [VERSION],
        "integrations": [
            {"integration-name": "InsightIQ", "external-doc-url": INSIGHTIQ_DOCS, "tags": ["service"]},
            {"integration-name": "Insider One", "external-doc-url": INSIDER_DOCS, "tags": ["service"]},
        ],
        "hooks": [
            {"integration-name": "InsightIQ", "python-modules": ["creator_sync.hooks.insightiq"]},
            {
                "integration-name": "Insider One",
                "python-modules": ["creator_sync.hooks.insider", "creator_sync.hooks.web_push"],
            },
        ],
        "connection-types": [dict(conn) for conn in CONNECTION_TYPES],
    }
