"""A real S3 API server on 127.0.0.1 for tests: moto's server mode (`python -m moto.server`) as a subprocess.

    with MotoS3Server() as s3:
        s3.create_bucket("creator-sync")
        env = {**s3.connection_env("creator_sync_s3"), "CREATOR_SYNC_DATA_URL": "s3://creator-sync/data",
               "CREATOR_SYNC_DATA_CONN_ID": "creator_sync_s3"}

Its credentials are moto's fixed test values; nothing here reaches AWS.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time

import httpx

from devtools.airflow_stack import free_port

ACCESS_KEY, SECRET_KEY, REGION = "testing", "testing", "us-east-1"


class MotoS3Server:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60, attempts: int = 3) -> MotoS3Server:
        """Start moto on a free port. free_port() only finds a port that WAS free: another server starting
        at the same time (an Airflow stack of a parallel test) can take it first and answer the readiness
        probe. So the probe must be answered by moto's own API while our process is alive, else retry on a
        new port."""
        for attempt in range(attempts):
            if attempt:
                self.port = free_port()
                self.endpoint = f"http://127.0.0.1:{self.port}"
            if self._start_once(timeout):
                return self
        raise RuntimeError(f"moto server did not start on a free port in {attempts} attempts")

    def _is_moto(self) -> bool:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            answer = httpx.get(f"{self.endpoint}/moto-api/data.json", timeout=2)
            return answer.status_code == 200 and isinstance(answer.json(), dict)
        return False

    def _start_once(self, timeout: float) -> bool:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False  # could not bind: the port was taken
            if self._is_moto():
                time.sleep(0.5)  # a process that lost the port race exits right after its bind fails
                if self.process.poll() is None and self._is_moto():
                    return True
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> MotoS3Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return [
            o["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])
        ]

    def connection(self) -> dict:
        """An Airflow `aws` connection to this server (the shape a real one has, with an endpoint_url)."""
        return {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": self.endpoint, "region_name": REGION},
        }

    def connection_env(self, conn_id: str) -> dict[str, str]:
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(self.connection())}
