"""The test S3 server (devtools/s3_server.py): servers started at the same time never share a port, so a
test never talks to another test's moto."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools.s3_server import MotoS3Server

pytestmark = pytest.mark.slow


def test_servers_started_together_each_answer_on_their_own_port():
    servers = [MotoS3Server() for _ in range(3)]
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda s: s.start(), servers))
    try:
        assert len({s.port for s in servers}) == len(servers)
        servers[0].create_bucket("only-in-the-first")
        assert servers[0].client().list_buckets()["Buckets"][0]["Name"] == "only-in-the-first"
        for other in servers[1:]:
            assert other.client().list_buckets()["Buckets"] == []
    finally:
        for s in servers:
            s.stop()
    assert all(s.process is None for s in servers)


def test_stop_ends_the_child_process():
    server = MotoS3Server().start()
    process = server.process
    server.stop()
    assert process.poll() is not None
