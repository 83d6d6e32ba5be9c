"""Run the real `source-klaviyo` console script as a child process and read what it prints.

End-to-end tests, the demo and the benchmark all go through here, so they exercise exactly what
a user runs: the installed entry point, its argument parsing, and its stdout protocol.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONNECTOR = Path(sys.executable).with_name("source-klaviyo")


@dataclass
class ConnectorRun:
    """The outcome of one connector command: exit code, parsed messages and stderr."""

    returncode: int
    messages: list[dict[str, Any]]
    stderr: str
    stdout: str = field(repr=False, default="")

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [message for message in self.messages if message.get("type") == kind]

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [
            message["record"]["data"]
            for message in self.of_type("RECORD")
            if message["record"]["stream"] == stream
        ]

    def states(self) -> list[dict[str, Any]]:
        return [message["state"] for message in self.of_type("STATE")]

    def final_states(self) -> list[dict[str, Any]]:
        """The last STATE message of each stream, ready to pass back as `--state`."""
        last: dict[str, dict[str, Any]] = {}
        for state in self.states():
            last[state["stream"]["stream_descriptor"]["name"]] = state
        return list(last.values())

    def stream_state(self, stream: str) -> Any:
        for state in reversed(self.states()):
            if state["stream"]["stream_descriptor"]["name"] == stream:
                return state["stream"]["stream_state"]
        return None

    def errors(self) -> list[dict[str, Any]]:
        return [
            message["trace"]["error"]
            for message in self.of_type("TRACE")
            if message["trace"].get("type") == "ERROR"
        ]


def run_connector(
    command: str,
    workdir: Path,
    api_url: str,
    *,
    config: Mapping[str, Any] | None = None,
    catalog: Mapping[str, Any] | None = None,
    state: Sequence[Mapping[str, Any]] | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> ConnectorRun:
    """Run `source-klaviyo <command>` against the API at `api_url`; files go to `workdir`."""
    args = [str(CONNECTOR), command]
    for name, content in (("config", config), ("catalog", catalog), ("state", state)):
        if content is not None:
            path = workdir / f"{name}.json"
            path.write_text(json.dumps(content))
            args += [f"--{name}", str(path)]
    child_env = {**os.environ, "KLAVIYO_API_URL": api_url, **(env or {})}
    child_env.pop("DEPLOYMENT_MODE", None)
    completed = subprocess.run(
        [*args, *extra_args],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=timeout,
        check=False,
    )
    return ConnectorRun(
        returncode=completed.returncode,
        messages=parse_messages(completed.stdout),
        stderr=completed.stderr,
        stdout=completed.stdout,
    )


def parse_messages(stdout: str) -> list[dict[str, Any]]:
    """Parse the protocol's one-JSON-object-per-line output; a non-JSON line is an error.

    Lines end at `\n` only: records may hold U+2028 and other characters that `splitlines`
    would also break at.
    """
    messages = []
    for number, line in enumerate(stdout.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            messages.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise AssertionError(f"stdout line {number} is not JSON: {line[:200]!r}") from error
    return messages


def configured_catalog(streams: Sequence[str], incremental: bool = True) -> dict[str, Any]:
    """A configured catalog selecting `streams` (metrics always full refresh)."""
    cursors = {"campaigns": "updated_at", "events": "datetime", "flows": "updated"}
    entries = []
    for name in streams:
        cursor = cursors.get(name)
        mode = "incremental" if incremental and cursor else "full_refresh"
        entries.append(
            {
                "stream": {
                    "name": name,
                    "json_schema": {},
                    "supported_sync_modes": ["full_refresh", "incremental"]
                    if cursor
                    else ["full_refresh"],
                    "source_defined_cursor": bool(cursor),
                    "default_cursor_field": [cursor] if cursor else [],
                    "source_defined_primary_key": [["id"]],
                },
                "sync_mode": mode,
                "destination_sync_mode": "append_dedup" if mode == "incremental" else "overwrite",
                "cursor_field": [cursor] if cursor else [],
                "primary_key": [["id"]],
            }
        )
    return {"streams": entries}
