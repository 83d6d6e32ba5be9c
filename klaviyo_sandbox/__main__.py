"""Command line: run the sandbox until SIGTERM/SIGINT, for a connector running in another process.

Prints exactly one line, `KLAVIYO_API_URL=http://127.0.0.1:PORT/api/`, once the server accepts
requests, and a one-line JSON stats summary on stderr when it stops. Control it over HTTP with
`GET /__sandbox/stats`, `POST /__sandbox/faults` and `POST /__sandbox/reset-stats`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from klaviyo_sandbox.data import Dataset
from klaviyo_sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m klaviyo_sandbox", description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--campaigns", type=int, default=40)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--flows", type=int, default=12)
    parser.add_argument("--metrics", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--enforce-rate-limits", action="store_true")
    parser.add_argument("--port", type=int, default=0, help="0 lets the OS pick a free port")
    args = parser.parse_args(argv)

    dataset = Dataset.generate(
        args.seed,
        campaigns=args.campaigns,
        events=args.events,
        flows=args.flows,
        metrics=args.metrics,
    )
    server = SandboxServer(
        dataset,
        latency_ms=args.latency_ms,
        enforce_rate_limits=args.enforce_rate_limits,
        port=args.port,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    with server:
        print(f"KLAVIYO_API_URL={server.api_url}", flush=True)
        while not stop.wait(1.0):
            pass
        summary = server.stats
    print(json.dumps(summary, sort_keys=True), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
