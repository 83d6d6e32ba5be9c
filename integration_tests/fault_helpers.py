"""Helpers for the fault suite: run the real connector, kill it, and judge what it delivered.

A fault scenario is judged the way a destination would see it: every RECORD line the platform
read, from every attempt, is one delivery. The union of deliveries must equal the sandbox's data
exactly (`oracle.expected_records`); an id delivered twice must be the same record both times,
and only the at-least-once boundary of a resumed sync may cause that. Each scenario adds one
line `scenario=... expected=... delivered=... unique=... duplicates=...` to `SCENARIO_LINES`,
which `conftest.pytest_terminal_summary` prints at the end of the session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from integration_tests.conftest import ALL_STREAMS
from integration_tests.connector_process import (
    CONNECTOR,
    ConnectorRun,
    configured_catalog,
    run_connector,
)
from integration_tests.oracle import comparable, expected_records
from klaviyo_sandbox import Dataset, SandboxServer

# Big enough that every stream has `links.next` pages: campaigns (page size 100) in the email
# partition, events in each of the 8 windows of `num_workers=2`, flows (50), metrics (200).
FAULT_SIZES = {"campaigns": 450, "events": 12000, "flows": 130, "metrics": 210}
CURSOR_FIELDS = {"campaigns": "updated_at", "events": "datetime", "flows": "updated"}
CHANNELS = ("email", "sms", "mobile_push")
UPPER_BOUND_MARGIN = timedelta(seconds=5)
PROCESS_TIMEOUT_SECONDS = 300.0

SCENARIO_LINES: list[str] = []

Records = dict[str, list[dict[str, Any]]]


@dataclass
class TimedRun:
    """One connector process: what the platform read from it and when it ran.

    `killed` is true when the test sent SIGKILL; `run.messages` then holds only the lines read
    before the kill, which is all a platform would have delivered.
    """

    run: ConnectorRun
    started: datetime
    finished: datetime
    killed: bool = False
    state_in: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Tally:
    """Counts of one scenario, over every run it made."""

    expected: int
    delivered: int
    unique: int
    duplicates: int
    by_stream: dict[str, int]


def expected_partitions(stream: str) -> list[dict[str, Any]]:
    """The partitions of `stream` for `sandbox_config()` (all three campaign channels)."""
    if stream == "campaigns":
        return [
            {"channel": channel, "archived": archived}
            for channel in CHANNELS
            for archived in (False, True)
        ]
    if stream == "flows":
        return [{"archived": False}, {"archived": True}]
    return [{}]


def read(
    server: SandboxServer,
    workdir: Path,
    config: Mapping[str, Any],
    *,
    streams: Sequence[str] = ALL_STREAMS,
    state: Sequence[Mapping[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
) -> TimedRun:
    """Run `source-klaviyo read` to completion through `run_connector`, timing it."""
    started = datetime.now(timezone.utc)
    run = run_connector(
        "read",
        workdir,
        server.api_url,
        config=config,
        catalog=configured_catalog(streams),
        state=state,
        env=env,
    )
    return TimedRun(run, started, datetime.now(timezone.utc), state_in=list(state or []))


def read_watched(
    server: SandboxServer,
    workdir: Path,
    config: Mapping[str, Any],
    watch: Callable[[dict[str, Any]], bool],
    *,
    streams: Sequence[str] = ALL_STREAMS,
    state: Sequence[Mapping[str, Any]] | None = None,
) -> TimedRun:
    """Run `source-klaviyo read` with `subprocess.Popen`, showing `watch` each message read.

    When `watch` returns True the process gets SIGKILL at once and the rest of its stdout is
    dropped unread: those lines never reached the platform. Lines split at `\\n` only.
    """
    args = [str(CONNECTOR), "read"]
    for name, content in (
        ("config", config),
        ("catalog", configured_catalog(streams)),
        ("state", list(state) if state else None),
    ):
        if content is not None:
            path = workdir / f"{name}.json"
            path.write_text(json.dumps(content))
            args += [f"--{name}", str(path)]
    env = {**os.environ, "KLAVIYO_API_URL": server.api_url}
    env.pop("DEPLOYMENT_MODE", None)

    messages: list[dict[str, Any]] = []
    killed = False
    started = datetime.now(timezone.utc)
    with (workdir / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, env=env)
        assert process.stdout is not None
        try:
            for line in process.stdout:
                if not line.strip():
                    continue
                message = json.loads(line)
                messages.append(message)
                if watch(message):
                    process.send_signal(signal.SIGKILL)
                    killed = True
                    break
        finally:
            process.stdout.close()
            if process.poll() is None and not killed:
                process.kill()
            returncode = process.wait(timeout=PROCESS_TIMEOUT_SECONDS)
    run = ConnectorRun(
        returncode=returncode,
        messages=messages,
        stderr=(workdir / "stderr.txt").read_text(errors="replace"),
    )
    return TimedRun(run, started, datetime.now(timezone.utc), killed, list(state or []))


@dataclass
class KillPoint:
    """Where to SIGKILL a run: right after its `states`-th STATE line (`records == 0`), or on
    the `records`-th RECORD line after that many STATE lines, i.e. in the middle of a page."""

    states: int
    records: int
    _states_seen: int = 0
    _records_since_state: int = 0

    def __call__(self, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if kind == "STATE":
            self._states_seen += 1
            self._records_since_state = 0
            return self.records == 0 and self._states_seen >= self.states
        if kind == "RECORD":
            self._records_since_state += 1
            return (
                self.records > 0
                and self._states_seen >= self.states
                and self._records_since_state == self.records
            )
        return False


def last_states(runs: Sequence[TimedRun]) -> list[dict[str, Any]]:
    """The last STATE message of each stream over `runs`, as the platform would pass it back."""
    latest: dict[str, dict[str, Any]] = {}
    for timed in runs:
        for state in timed.run.final_states():
            latest[state["stream"]["stream_descriptor"]["name"]] = state
    return list(latest.values())


def expected_all(dataset: Dataset, streams: Sequence[str] = ALL_STREAMS) -> Records:
    """The oracle's records per stream, as lists (ids are keys of `oracle.expected_records`)."""
    return {stream: list(expected_records(dataset, stream).values()) for stream in streams}


def delivered(runs: Sequence[TimedRun], streams: Sequence[str] = ALL_STREAMS) -> Records:
    """Every record every run delivered, per stream, in delivery order."""
    return {
        stream: [record for timed in runs for record in timed.run.records(stream)]
        for stream in streams
    }


def assert_union_equals(expected: Records, got: Records) -> Tally:
    """The delivered ids equal the expected ids per stream, and every delivery, duplicates
    included, equals the expected record field by field. Returns the counts."""
    by_stream = {}
    total_expected = total_delivered = total_unique = 0
    for stream, records in expected.items():
        wanted = {record["id"]: comparable(stream, record) for record in records}
        ids = [record["id"] for record in got[stream]]
        missing = sorted(set(wanted) - set(ids))
        extra = sorted(set(ids) - set(wanted))
        assert (missing[:5], extra[:5], len(missing), len(extra)) == ([], [], 0, 0), stream
        for record in got[stream]:
            assert comparable(stream, record) == wanted[record["id"]], (stream, record["id"])
        by_stream[stream] = len(ids) - len(set(ids))
        total_expected += len(wanted)
        total_delivered += len(ids)
        total_unique += len(set(ids))
    return Tally(
        total_expected,
        total_delivered,
        total_unique,
        total_delivered - total_unique,
        by_stream,
    )


def duplicated_ids(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Ids that occur more than once in `records`, sorted."""
    counts = Counter(record["id"] for record in records)
    return sorted(record_id for record_id, count in counts.items() if count > 1)


def report(name: str, tally: Tally, detail: str = "") -> None:
    """Print the scenario's summary line and keep it for the end-of-session table."""
    line = (
        f"scenario={name} expected={tally.expected} delivered={tally.delivered} "
        f"unique={tally.unique} duplicates={tally.duplicates}"
    )
    print(line + (f" {detail}" if detail else ""))
    SCENARIO_LINES.append(line + (f" {detail}" if detail else ""))


def parse_cursor(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def upper_bound_of(timed: TimedRun, streams: Sequence[str]) -> datetime:
    """The one cursor every partition of every incremental stream in `streams` ends at.

    Asserts the state is complete (one entry per configured partition, no other) and that it
    is this run's upper bound: whole seconds, five seconds before a moment during the run.
    """
    cursors = set()
    for stream in streams:
        if stream not in CURSOR_FIELDS:
            continue
        entries = timed.run.stream_state(stream)["states"]
        assert [entry["partition"] for entry in entries] == expected_partitions(stream), stream
        for entry in entries:
            assert list(entry["cursor"]) == [CURSOR_FIELDS[stream]], stream
            cursors.add(entry["cursor"][CURSOR_FIELDS[stream]])
    assert len(cursors) == 1, f"partitions end at different cursors: {sorted(cursors)}"
    value = cursors.pop()
    bound = parse_cursor(value)
    assert value.endswith(".000000Z"), value
    earliest = timed.started.replace(microsecond=0) - UPPER_BOUND_MARGIN
    latest = timed.finished - UPPER_BOUND_MARGIN
    assert earliest <= bound <= latest, (value, timed.started, timed.finished)
    return bound


def resumed_cursors(state: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], datetime]:
    """(stream, partition as sorted JSON) -> cursor of a `--state` list."""
    cursors = {}
    for message in state:
        stream = message["stream"]["stream_descriptor"]["name"]
        if stream not in CURSOR_FIELDS:
            continue
        for entry in message["stream"]["stream_state"]["states"]:
            key = (stream, json.dumps(entry["partition"], sort_keys=True))
            cursors[key] = parse_cursor(entry["cursor"][CURSOR_FIELDS[stream]])
    return cursors


def partition_of(stream: str, record: Mapping[str, Any]) -> str:
    """The partition a record was read under, in the form `resumed_cursors` keys use."""
    if stream == "campaigns":
        partition: dict[str, Any] = {"channel": record["channel"], "archived": record["archived"]}
    elif stream == "flows":
        partition = {"archived": record["archived"]}
    else:
        partition = {}
    return json.dumps(partition, sort_keys=True)


def assert_resumed_at_cursor(timed: TimedRun) -> None:
    """A resumed run re-reads nothing from before its saved cursors (rounded down to the
    second, the precision of Klaviyo's filter): the only duplicates at-least-once allows."""
    cursors = resumed_cursors(timed.state_in)
    for stream, cursor_field in CURSOR_FIELDS.items():
        for record in timed.run.records(stream):
            cursor = cursors.get((stream, partition_of(stream, record)))
            if cursor is None:
                continue
            floor = cursor.replace(microsecond=0)
            assert parse_cursor(record[cursor_field]) >= floor, (stream, record["id"], cursor)


def now_utc() -> datetime:
    """The wall clock, for comparisons with the connector's own."""
    return datetime.fromtimestamp(time.time(), timezone.utc)
