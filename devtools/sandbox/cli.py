"""``python -m devtools.sandbox``: build the data set and run the three sandboxes in one asyncio loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
from datetime import UTC, datetime

import uvicorn

from devtools.sandbox.data import Dataset
from devtools.sandbox.faults import KINDS
from devtools.sandbox.insider import InsiderService, create_insider_app
from devtools.sandbox.insightiq import InsightIQService
from devtools.sandbox.insightiq_items import create_insightiq_app
from devtools.sandbox.readings import DISCONNECTED_DATA, parse_reading_args
from devtools.sandbox.web_push import WebPushService, create_web_push_app

TARGETS = ("insightiq", "insider", "web_push")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devtools.sandbox", description=__doc__)
    a = p.add_argument
    a("--host", default="127.0.0.1")
    a("--insightiq-port", type=int, default=8901)
    a("--insider-port", type=int, default=8902)
    a("--web-push-port", type=int, default=8903)
    a("--seed", type=int, default=42)
    a("--creators", type=int, default=1000)
    a("--now", default=None, help="ISO timestamp anchoring generated dates (default: this UTC hour)")
    a("--insightiq-client-id", default="sandbox-client-id")
    a("--insightiq-client-secret", default="sandbox-client-secret")
    a("--insider-partner", default="mybrand")
    a("--insider-tokens", default="1a2b3c4e5d6f,1a2b3c4d5e6f")
    a("--web-push-key", default="1a2b3c4d5e6f")
    a("--insightiq-rate", type=float, default=10)
    a("--insightiq-window", type=float, default=1)
    a("--insightiq-concurrency", type=int, default=8)
    a("--insider-upsert-rate", type=float, default=25000)
    a("--insider-upsert-window", type=float, default=60)
    a("--insider-profile-quota", type=float, default=1000)
    a("--insider-profile-window", type=float, default=60)
    a(
        "--insider-ingestion-lag",
        type=float,
        default=0.0,
        help="seconds after processing before the Profile API sees an upsert (config ingestion_lag_seconds)",
    )
    a(
        "--insider-complete-after-disconnect",
        action="store_true",
        help="process an Insider request whose client has disconnected (config complete_after_disconnect)",
    )
    a("--web-push-rate", type=float, default=30)
    a("--web-push-window", type=float, default=60)
    for kind in KINDS:
        a(f"--fault-{kind.replace('_', '-')}", type=float, default=0.0, help="probability 0..1")
    a("--slow-seconds", type=float, default=5.0)
    a("--fault-targets", default=",".join(TARGETS))
    a("--log-level", default="warning")
    a(
        "--disconnected-data",
        choices=DISCONNECTED_DATA,
        default=None,
        help="InsightIQ: a disconnected account's items listed (default), hidden, or its requests refused "
        "(the reading disconnected_data; devtools/sandbox/readings.py)",
    )
    a(
        "--reading",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="an alternative reading of the vendor docs (devtools/sandbox/readings.py), e.g. bare_429",
    )
    return p.parse_args(argv)


def anchor(now: str | None) -> int:
    if now:
        moment = datetime.fromisoformat(now.replace("Z", "+00:00"))
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    return int(datetime.now(UTC).replace(minute=0, second=0, microsecond=0).timestamp())


def build(args: argparse.Namespace) -> dict:
    """The three ASGI apps, keyed by target name."""
    targets = {t.strip() for t in args.fault_targets.split(",") if t.strip()}
    rates = {k: getattr(args, f"fault_{k}") for k in KINDS}

    def faults(target: str) -> dict:
        return {"faults": rates if target in targets else None, "slow_seconds": args.slow_seconds}

    ds = Dataset(args.seed, args.creators, anchor(args.now))
    iq = InsightIQService(
        ds,
        args.insightiq_client_id,
        args.insightiq_client_secret,
        args.insightiq_rate,
        args.insightiq_window,
        args.insightiq_concurrency,
        **faults("insightiq"),
    )
    insider = InsiderService(
        args.seed,
        args.insider_partner,
        args.insider_tokens.split(","),
        args.insider_upsert_rate,
        args.insider_upsert_window,
        args.insider_profile_quota,
        args.insider_profile_window,
        ingestion_lag_seconds=args.insider_ingestion_lag,
        complete_after_disconnect=args.insider_complete_after_disconnect,
        **faults("insider"),
    )
    push = WebPushService(
        args.seed, args.web_push_key, args.web_push_rate, args.web_push_window, **faults("web_push")
    )
    readings = parse_reading_args(args.reading)
    if args.disconnected_data:
        readings["disconnected_data"] = args.disconnected_data
    for svc in (iq, insider, push):
        svc.readings.configure(readings)
    return {
        "insightiq": create_insightiq_app(iq),
        "insider": create_insider_app(insider),
        "web_push": create_web_push_app(push),
    }


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # signals are handled once for all three servers in serve_all
        yield


async def serve_all(args: argparse.Namespace, apps: dict) -> None:
    ports = {"insightiq": args.insightiq_port, "insider": args.insider_port, "web_push": args.web_push_port}
    servers, socks = [], []
    for name, app in apps.items():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, ports[name]))
        ports[name] = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level=args.log_level,
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            backlog=1024,
        )
        servers.append(_Server(config))
        socks.append(sock)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: [setattr(s, "should_exit", True) for s in servers])
    tasks = [asyncio.create_task(s.serve(sockets=[sock])) for s, sock in zip(servers, socks, strict=True)]
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            await asyncio.gather(*tasks)
            raise SystemExit("a sandbox server failed to start")
        await asyncio.sleep(0.01)
    print(json.dumps({n: f"http://{args.host}:{ports[n]}" for n in apps}), flush=True)
    await asyncio.gather(*tasks)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    apps = build(args)
    try:
        asyncio.run(serve_all(args, apps))
    except KeyboardInterrupt:
        sys.exit(0)
