"""What every creator-sync DAG shares: owner, start date and default_args (retry policy and backoff).

Light on purpose: DAG files import it at parse time.
"""

from __future__ import annotations

import pendulum

from creator_sync.retry import DEFAULT_RETRY_ARGS, VENDOR_RETRY_POLICY

OWNER = "creator-sync"
START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")

DEFAULT_ARGS = {"owner": OWNER, **DEFAULT_RETRY_ARGS, "retry_policy": VENDOR_RETRY_POLICY}
