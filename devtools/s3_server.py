"""A real S3 API server on 127.0.0.1 for tests: moto's threaded server in a child process
(`python -m devtools.s3_server`), on a port the kernel picks and the child reports.

    with MotoS3Server() as s3:
        s3.create_bucket("creator-sync")
        env = {**s3.connection_env("creator_sync_s3"), "CREATOR_SYNC_DATA_URL": "s3://creator-sync/data",
               "CREATOR_SYNC_DATA_CONN_ID": "creator_sync_s3"}

Its credentials are moto's fixed test values; nothing here reaches AWS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

ACCESS_KEY, SECRET_KEY, REGION = "testing", "testing", "us-east-1"


class MotoS3Server:
    def __init__(self) -> None:
        self.port: int | None = None
        self.endpoint = ""
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> MotoS3Server:
        """Start moto in a child process that binds port 0 and prints the port the kernel gave it. Picking a
        free port first and passing it in races with every other server starting on the machine (a parallel
        test's moto or Airflow stack can take it, and then answer our readiness probe)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.s3_server"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        line = ready[0].strip() if ready else ""
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"moto server did not report its port within {timeout:.0f} s (got {line!r})")
        self.port = int(line)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
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


def _serve() -> None:
    """Child process: moto on 127.0.0.1, port chosen by the kernel, printed once; runs until stdin closes
    (the parent exited or stopped us) or a signal ends the process."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    _serve()
