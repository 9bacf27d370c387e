"""Vendor sandboxes (InsightIQ, Insider unification, Insider web push) for tests, demos and benchmarks.

Start all three with ``python -m devtools.sandbox``;
from tests use ``devtools.sandbox.launcher.SandboxServers``.
"""
