"""Show the connector working end to end against the local Klaviyo sandbox.

Starts the sandbox on 127.0.0.1, runs the real `source-klaviyo` process for check, discover, a
full read and an incremental read (after adding and changing some records), prints a summary per
stream, and stops everything it started. Run through `bash scripts/demo.sh`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from integration_tests.connector_process import (  # noqa: E402
    ConnectorRun,
    configured_catalog,
    run_connector,
)
from klaviyo_sandbox import FULL_KEY, Dataset, SandboxServer  # noqa: E402

STREAMS = ("campaigns", "events", "flows", "metrics")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000, help="events in the sandbox")
    args = parser.parse_args()

    step("1/6", f"starting the local Klaviyo sandbox ({args.events} events)")
    dataset = Dataset.generate(7, campaigns=40, events=args.events, flows=12, metrics=8)
    with SandboxServer(dataset) as server, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"    listening at {server.api_url}")
        config = {"api_key": FULL_KEY, "campaign_channels": ["email", "sms", "mobile_push"]}
        catalog = configured_catalog(STREAMS)

        step("2/6", "source-klaviyo check")
        check = run_connector("check", workdir, server.api_url, config=config)
        status = check.of_type("CONNECTION_STATUS")[0]["connectionStatus"]
        print(f"    {status['status']} {status.get('message') or ''}".rstrip())

        step("3/6", "source-klaviyo discover")
        discover = run_connector("discover", workdir, server.api_url, config=config)
        for stream in discover.of_type("CATALOG")[0]["catalog"]["streams"]:
            cursor = (stream.get("default_cursor_field") or ["-"])[0]
            modes = stream["supported_sync_modes"]
            print(f"    {stream['name']:<10} cursor={cursor:<11} modes={modes}")

        step("4/6", "source-klaviyo read (full, all four streams)")
        full = timed_read(workdir, server.api_url, config, catalog, None)

        step("5/6", "changing the account: 25 new events, 2 edited campaigns, 1 edited flow")
        # At the saved cursor: the full read's bound excluded it, the next read includes it.
        changed_at = latest_cursor(full)
        dataset.add_events(25, at=changed_at)
        for resource in dataset.resources("campaigns")[:2]:
            dataset.touch("campaigns", resource["id"], updated_at=changed_at)
        dataset.touch("flows", dataset.resources("flows")[0]["id"], updated_at=changed_at)

        step("6/6", "source-klaviyo read (incremental, with the state the full read emitted)")
        timed_read(workdir, server.api_url, config, catalog, full.final_states())
    print("\nDone: the sandbox is stopped and nothing is left running.")
    return 0 if status["status"] == "SUCCEEDED" else 1


def step(number: str, text: str) -> None:
    print(f"\n==> [{number}] {text}", flush=True)


def timed_read(
    workdir: Path,
    api_url: str,
    config: dict[str, object],
    catalog: dict[str, object],
    state: object,
) -> ConnectorRun:
    started = time.monotonic()
    run = run_connector(
        "read",
        workdir,
        api_url,
        config=config,
        catalog=catalog,
        state=state,  # type: ignore[arg-type]
    )
    elapsed = time.monotonic() - started
    if run.returncode != 0 or run.errors():
        print(run.stderr[-3000:])
        raise SystemExit(f"read failed: {[e.get('message') for e in run.errors()]}")
    print(f"    {'stream':<10} {'records':>8}  state")
    for stream in STREAMS:
        state_value = run.stream_state(stream)
        print(f"    {stream:<10} {len(run.records(stream)):>8}  {summarize(state_value)}")
    print(f"    took {elapsed:.1f} s (process start included)")
    return run


def summarize(state: object) -> str:
    if not isinstance(state, dict) or "states" not in state:
        return "full refresh (no cursor)"
    cursors = sorted({next(iter(entry["cursor"].values())) for entry in state["states"]})
    return f"{len(state['states'])} partition(s), cursor {', '.join(cursors)}"


def latest_cursor(run: ConnectorRun) -> datetime:
    values = [
        next(iter(entry["cursor"].values()))
        for stream in ("campaigns", "events", "flows")
        for entry in run.stream_state(stream)["states"]
    ]
    return datetime.fromisoformat(max(values).replace("Z", "+00:00"))


if __name__ == "__main__":
    raise SystemExit(main())
