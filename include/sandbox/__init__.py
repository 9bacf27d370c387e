"""Vendor sandboxes (InsightIQ, Insider unification, Insider web push) for tests, demos and benchmarks.

Start all three with ``python -m include.sandbox``;
from tests use ``include.sandbox.launcher.SandboxServers``.
"""
