"""Helpers shared by the webhook tests (imported as a top-level module: tests/ is not a package)."""

from __future__ import annotations

SECRET = "sandbox-client-secret"
INSIDER_TOKEN = "1a2b3c4e5d6f"


class FakeTrigger:
    """Stands in for Airflow: records triggered runs; ``queued`` runs can be extended."""

    def __init__(self):
        self.runs: dict[str, list[str]] = {}
        self.started: set[str] = set()
        self.fail = False

    def trigger(self, run_id, account_ids):
        if self.fail:
            raise RuntimeError("airflow is down")
        self.runs.setdefault(run_id, sorted(account_ids))
        return run_id

    def extend_queued(self, run_id, account_ids):
        if run_id in self.started or run_id not in self.runs:
            return False
        self.runs[run_id] = sorted(set(self.runs[run_id]) | set(account_ids))
        return True


class FakeOffboardTrigger:
    """Stands in for Airflow's creator_offboard trigger: records the run ids asked for."""

    def __init__(self):
        self.runs: list[str] = []
        self.fail = False

    def trigger(self, run_id):
        if self.fail:
            raise RuntimeError("airflow is down")
        self.runs.append(run_id)
        return run_id


class FakeDeadLetters:
    def __init__(self):
        self.rows: list[tuple[dict, str]] = []

    def __call__(self, users, reason, raw):
        self.rows.extend((user, reason) for user in users)
        return len(users)


class Capture:
    """A tiny HTTP server that records every POST (headers + raw body) and answers 200."""

    def __init__(self):
        import http.server
        import threading

        self.requests: list[tuple[dict, bytes]] = []
        captured = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                captured.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count: int = 1, timeout: float = 15.0) -> list[tuple[dict, bytes]]:
        import time

        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.requests) >= count, f"got {len(self.requests)} of {count} deliveries"
        return self.requests

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class AppServer:
    """Serves a FastAPI app with uvicorn on a free local port, in a thread."""

    def __init__(self, app):
        import socket
        import threading
        import time

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start"
        self.url = f"http://127.0.0.1:{port}"

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)
