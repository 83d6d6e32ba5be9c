"""Nothing lost: the real `source-klaviyo read` process under injected faults, kills and churn.

Every scenario reads all four streams from a fresh sandbox and judges the union of what every
run delivered against the oracle: exactly the sandbox's records, duplicates only where the
README's at-least-once boundary allows them (a resumed cursor, a full-refresh stream read
again), and a final state whose every partition ends at the run's upper bound. Each scenario
prints one `scenario=... expected=... delivered=... unique=... duplicates=...` line.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from integration_tests.conftest import ALL_STREAMS, SEED, sandbox_config
from integration_tests.fault_helpers import (
    CURSOR_FIELDS,
    FAULT_SIZES,
    KillPoint,
    Records,
    Tally,
    TimedRun,
    assert_resumed_at_cursor,
    assert_union_equals,
    delivered,
    duplicated_ids,
    expected_all,
    last_states,
    parse_cursor,
    read,
    read_watched,
    report,
    upper_bound_of,
)
from integration_tests.oracle import comparable
from klaviyo_sandbox import Dataset, Fault, SandboxServer

pytestmark = pytest.mark.slow

KILL_SIZES = {"campaigns": 260, "events": 30000, "flows": 130, "metrics": 210}
KILLS_PER_SCENARIO = 6
SHORT_TIMEOUT = {"KLAVIYO_REQUEST_TIMEOUT_SECONDS": "2"}

# name, faults, env, faults the sandbox must have applied (each costs exactly one retry)
RETRIED_FAULTS: list[tuple[str, list[Fault], dict[str, str], int]] = [
    (
        "429_retry_after_0",
        [Fault(path="*", status=429, retry_after=0, on="first_page", times=2)],
        {},
        2,
    ),
    (
        "429_retry_after_1_repeated_and_next_pages",
        [
            Fault(path="/api/flows", status=429, retry_after=1, on="first_page", times=2),
            Fault(path="*", status=429, retry_after=1, on="next_pages", times=3),
        ],
        {},
        5,
    ),
    ("429_storm_every_request", [Fault(path="*", status=429, retry_after=0, times=6)], {}, 6),
    (
        "5xx_first_pages",
        [
            Fault(path="/api/campaigns", status=500, on="first_page", after=1),
            # The first events request is the probe for the oldest event; the third, a window.
            Fault(path="/api/events", status=502, on="first_page"),
            Fault(path="/api/events", status=502, on="first_page", after=1),
            Fault(path="/api/flows", status=503, on="first_page"),
            Fault(path="/api/metrics", status=504, on="first_page"),
        ],
        {},
        5,
    ),
    (
        "5xx_next_pages",
        [
            Fault(path="/api/campaigns", status=500, on="next_pages"),
            Fault(path="/api/events", status=502, on="next_pages", after=2),
            Fault(path="/api/events", status=503, on="next_pages", after=5),
            Fault(path="/api/flows", status=503, on="next_pages", after=1),
            Fault(path="/api/metrics", status=504, on="next_pages"),
        ],
        {},
        5,
    ),
    (
        "reset_mid_body",
        [
            Fault(path="/api/campaigns", action="reset", on="next_pages"),
            Fault(path="/api/events", action="reset", on="next_pages", times=2),
            Fault(path="/api/flows", action="reset", on="first_page"),
            Fault(path="/api/metrics", action="reset", on="next_pages"),
        ],
        {},
        5,
    ),
    (
        "hang_past_read_timeout",
        [
            Fault(path="/api/campaigns", action="hang", hang_seconds=6, on="first_page"),
            Fault(path="/api/events", action="hang", hang_seconds=6, on="next_pages", after=1),
        ],
        SHORT_TIMEOUT,
        2,
    ),
    (
        "truncated_json_200",
        [
            Fault(path="/api/campaigns", status=200, body="truncated", on="next_pages"),
            Fault(path="/api/events", status=200, body="truncated", on="next_pages", after=3),
            Fault(path="/api/flows", status=200, body="truncated", on="first_page"),
        ],
        {},
        3,
    ),
    (
        "invalid_json_200",
        [
            Fault(path="/api/events", status=200, body="invalid_json", on="first_page", after=1),
            Fault(path="/api/flows", status=200, body="invalid_json", on="next_pages"),
            Fault(path="/api/metrics", status=200, body="invalid_json", on="next_pages"),
        ],
        {},
        3,
    ),
    (
        "html_403_from_a_proxy",
        [
            Fault(path="/api/campaigns", status=403, body="html", on="first_page"),
            Fault(path="/api/events", status=403, body="html", on="next_pages", after=1),
            Fault(path="/api/metrics", status=403, body="html", on="next_pages"),
        ],
        {},
        3,
    ),
]


def retry_warnings(timed: TimedRun) -> list[str]:
    """The connector's one WARN line per retry or rate-limit wait."""
    return [
        message["log"]["message"]
        for message in timed.run.of_type("LOG")
        if message["log"]["level"] == "WARN"
        and (
            " retrying in " in message["log"]["message"]
            or " as asked " in message["log"]["message"]
        )
    ]


@pytest.mark.parametrize(
    "name, faults, env, applied",
    RETRIED_FAULTS,
    ids=[row[0] for row in RETRIED_FAULTS],
)
def test_retried_fault_loses_and_repeats_no_record(
    tmp_path: Path, name: str, faults: list[Fault], env: dict[str, str], applied: int
) -> None:
    """Each faulted request is retried once; the page is then read exactly once, so a clean
    full read still delivers every record exactly once and ends at the upper bound."""
    dataset = Dataset.generate(SEED, **FAULT_SIZES)
    with SandboxServer(dataset) as server:
        for fault in faults:
            server.add_fault(fault)

        timed = read(server, tmp_path, sandbox_config(num_workers=2), env=env)

    # After `stop()`: a hanging answer is counted when it ends, after the client gave up.
    stats = server.stats
    assert timed.run.returncode == 0, timed.run.stderr[-2000:]
    assert timed.run.errors() == []
    assert stats["faults_applied"] == applied
    assert len(retry_warnings(timed)) == applied, retry_warnings(timed)
    tally = assert_union_equals(expected_all(dataset), delivered([timed]))
    assert tally.duplicates == 0
    upper_bound_of(timed, ALL_STREAMS)
    report(name, tally)


def test_rate_limit_wait_beyond_the_cap_fails_events_and_the_state_resumes(
    tmp_path: Path,
) -> None:
    """Retry-After 100000 s on an events page fails that stream with a transient error naming
    the endpoint; the other streams finish, and a second run with the emitted state completes
    the data, re-reading nothing from before the saved cursor."""
    dataset = Dataset.generate(SEED, **FAULT_SIZES)
    with SandboxServer(dataset) as server:
        server.add_fault(
            Fault(path="/api/events", status=429, retry_after=100000, on="next_pages", after=3)
        )
        config = sandbox_config(num_workers=2)

        failed = read(server, tmp_path, config)
        resumed = read(server, tmp_path, config, state=last_states([failed]))

    message = (
        "Klaviyo rate-limited /api/events and asked to wait 100000 s, longer than the 600 s "
        "this connector waits. The sync stopped; the next attempt resumes from the last saved "
        "state."
    )
    assert failed.run.returncode == 1
    errors = failed.run.errors()
    assert [(e["message"], e["failure_type"]) for e in errors[:1]] == [(message, "transient_error")]
    assert [e["message"] for e in errors[1:]] == [f"1 stream(s) did not sync. events: {message}"]
    saved = failed.run.stream_state("events")["states"][0]["cursor"]["datetime"]
    assert saved < "2025-01-01T00:00:00.000000Z"
    failed_bound = upper_bound_of(failed, ("campaigns", "flows"))
    assert resumed.run.returncode == 0, resumed.run.stderr[-2000:]
    assert resumed.run.errors() == []
    assert [len(resumed.run.records(s)) for s in ("campaigns", "flows")] == [0, 0]
    assert_resumed_at_cursor(resumed)
    tally = assert_union_equals(expected_all(dataset), delivered([failed, resumed]))
    assert tally.by_stream["metrics"] == FAULT_SIZES["metrics"]
    assert [duplicated_ids(t.run.records("events")) for t in (failed, resumed)] == [[], []]
    assert upper_bound_of(resumed, ALL_STREAMS) > failed_bound
    report("429_over_cap_then_resume", tally, f"events_duplicates={tally.by_stream['events']}")


def test_incremental_read_under_faults_delivers_exactly_what_changed(tmp_path: Path) -> None:
    """After a clean full read, 1500 events arrive at one instant (two pages whose boundary
    falls inside the tie), campaigns and flows are edited and a metric is added; the
    incremental read with the emitted state, under a reset, a 429 and 5xx on first and next
    pages, delivers exactly those records once and ends at its own upper bound."""
    dataset = Dataset.generate(SEED, **FAULT_SIZES)
    config = sandbox_config(num_workers=2)
    with SandboxServer(dataset) as server:
        full = read(server, tmp_path, config)
        at = upper_bound_of(full, ALL_STREAMS) + timedelta(seconds=1)
        events = dataset.add_events(1500, at=at)
        campaign_ids = [r["id"] for r in dataset.resources("campaigns")[:3]]
        flow_ids = [r["id"] for r in dataset.resources("flows")[:2]]
        for campaign_id in campaign_ids:
            dataset.touch("campaigns", campaign_id, updated_at=at)
        for flow_id in flow_ids:
            dataset.touch("flows", flow_id, updated_at=at)
        metric = dataset.add("metrics", at=at)
        for fault in (
            Fault(path="/api/campaigns", status=429, retry_after=0, on="first_page", after=1),
            Fault(path="/api/events", action="reset", on="first_page"),
            Fault(path="/api/events", status=503, on="next_pages"),
            Fault(path="/api/flows", status=502, on="first_page"),
            Fault(path="/api/metrics", status=500, on="next_pages"),
        ):
            server.add_fault(fault)

        incremental = read(server, tmp_path, config, state=last_states([full]))

    stats = server.stats
    assert full.run.returncode == 0 and incremental.run.returncode == 0, incremental.run.stderr
    assert incremental.run.errors() == []
    assert stats["faults_applied"] == 5
    assert upper_bound_of(incremental, ALL_STREAMS) > at
    got = {s: sorted(r["id"] for r in incremental.run.records(s)) for s in ALL_STREAMS}
    assert got == {
        "campaigns": sorted(campaign_ids),
        "events": sorted(e["id"] for e in events),
        "flows": sorted(flow_ids),
        "metrics": sorted([r["id"] for r in dataset.resources("metrics")]),
    }
    assert metric["id"] in got["metrics"]
    changed = {
        s: [r for r in records if r["id"] in got[s]] for s, records in expected_all(dataset).items()
    }
    tally = assert_union_equals(changed, delivered([incremental]))
    assert tally.duplicates == 0
    report("incremental_under_faults", tally, "(expected = changed records + all metrics)")


def kill_plan(seed: int, max_states: int, max_records: int) -> list[KillPoint]:
    """Alternate kills right after a STATE line and in the middle of a page, seeded."""
    rng = random.Random(seed)
    return [
        KillPoint(
            states=rng.randint(1, max_states),
            records=0 if index % 2 == 0 else rng.randint(1, max_records),
        )
        for index in range(KILLS_PER_SCENARIO)
    ]


KILL_SCENARIOS = [
    ("kill_resume_events_4_workers", ("events",), 4, 101, 4, 999),
    ("kill_resume_events_1_worker", ("events",), 1, 202, 4, 999),
    ("kill_resume_all_streams_4_workers", ALL_STREAMS, 4, 303, 14, 40),
]


@pytest.mark.parametrize(
    "name, streams, workers, seed, max_states, max_records",
    KILL_SCENARIOS,
    ids=[row[0] for row in KILL_SCENARIOS],
)
def test_sigkill_and_resume_from_the_last_state_skips_no_window(
    tmp_path: Path,
    name: str,
    streams: Sequence[str],
    workers: int,
    seed: int,
    max_states: int,
    max_records: int,
) -> None:
    """SIGKILL a long sync at seeded points, restart each time with the last STATE per stream
    it emitted: the union of every run equals the data, and a resumed run re-reads only from
    its saved cursors on (at-least-once), never a window before them."""
    dataset = Dataset.generate(SEED, **KILL_SIZES)
    config = sandbox_config(num_workers=workers)
    plan = kill_plan(seed, max_states, max_records)
    runs: list[TimedRun] = []
    with SandboxServer(dataset) as server:
        for point in [*plan, None]:
            workdir = tmp_path / f"run{len(runs)}"
            workdir.mkdir()
            state = last_states(runs) or None
            if point is None:
                runs.append(read(server, workdir, config, streams=streams, state=state))
            else:
                runs.append(
                    read_watched(server, workdir, config, point, streams=streams, state=state)
                )
            if not runs[-1].killed:
                break

    *killed, final = runs
    assert [t.killed for t in killed] == [True] * KILLS_PER_SCENARIO
    assert [t.run.returncode for t in killed] == [-9] * KILLS_PER_SCENARIO
    assert final.run.returncode == 0, final.run.stderr[-2000:]
    assert final.run.errors() == []
    for number, timed in enumerate(runs):
        repeated = {s: duplicated_ids(timed.run.records(s)) for s in streams}
        assert repeated == {s: [] for s in streams}, (number, timed.state_in)
        assert_resumed_at_cursor(timed)
    tally = assert_union_equals(expected_all(dataset, streams), delivered(runs, streams))
    upper_bound_of(final, streams)
    points = ",".join(f"{p.states}s+{p.records}r" for p in plan)
    report(
        name,
        tally,
        f"runs={len(runs)} kills={points} duplicates_by_stream={tally.by_stream}",
    )


class ChangesDuringSync:
    """Edits the sandbox from the test's reading loop while the first run is in progress.

    On the first events record (campaigns are finished, so their last STATE is the run's upper
    bound `bound`): a campaign and a flow are edited at `bound + 1 s` (what Klaviyo does: the
    edit time is now, after the bound), another flow at `bound - 1 h` (ahead of every page the
    run has read), events arrive at `bound + 1 s` and late ones inside the range still to be
    read, and a metric is created. On the first flows record, while flows pages are being read,
    the flow just delivered and the last non-archived flow are edited at `bound + 1 s`.
    """

    def __init__(self, dataset: Dataset, before: Records) -> None:
        self.dataset = dataset
        self.campaign_id = before["campaigns"][0]["id"]
        self.newer_flow_id, self.older_flow_id = (r["id"] for r in before["flows"][:2])
        live = [r for r in before["flows"] if not r["archived"] and r["id"] != self.older_flow_id]
        self.last_flow_id = max(live, key=lambda r: (r["updated"], r["id"]))["id"]
        self.seen_flow_id = ""
        self.bound = datetime.min.replace(tzinfo=timezone.utc)
        self.fresh: list[dict[str, Any]] = []
        self.late: list[dict[str, Any]] = []
        self.metric: dict[str, Any] = {}

    @property
    def at(self) -> datetime:
        return self.bound + timedelta(seconds=1)

    def __call__(self, message: dict[str, Any]) -> bool:
        if message["type"] == "STATE":
            stream = message["state"]["stream"]
            if stream["stream_descriptor"]["name"] == "campaigns":
                cursors = [e["cursor"]["updated_at"] for e in stream["stream_state"]["states"]]
                self.bound = parse_cursor(max(cursors))
        if message["type"] != "RECORD":
            return False
        stream, record = message["record"]["stream"], message["record"]["data"]
        if stream == "events" and not self.fresh:
            self.dataset.touch("campaigns", self.campaign_id, updated_at=self.at)
            self.dataset.touch("flows", self.newer_flow_id, updated_at=self.at)
            older = self.bound - timedelta(hours=1)
            self.dataset.touch("flows", self.older_flow_id, updated_at=older)
            self.fresh = self.dataset.add_events(3, at=self.at)
            self.late = self.dataset.add_events(
                3, at=self.bound - timedelta(minutes=30)
            ) + self.dataset.add_events(2, at=datetime(2024, 10, 1, 12, tzinfo=timezone.utc))
            # No campaign or flow is added: the sandbox would rewrite existing events (see
            # test_sandbox_adding_a_campaign_leaves_existing_events_unchanged).
            self.metric = self.dataset.add("metrics", at=self.bound - timedelta(days=1))
        if stream == "flows" and not self.seen_flow_id:
            self.seen_flow_id = record["id"]
            self.dataset.touch("flows", self.seen_flow_id, updated_at=self.at)
            self.dataset.touch("flows", self.last_flow_id, updated_at=self.at)
        return False


def test_data_changed_during_a_sync_is_read_now_or_by_the_next_incremental_run(
    tmp_path: Path,
) -> None:
    """Records edited or added while the first run reads pages (`ChangesDuringSync`): the first
    run delivers every record that existed unchanged before it started, plus the changes still
    ahead of its pages; the next incremental run delivers exactly the edits newer than its
    cursor; the latest delivered version of every record equals the sandbox's."""
    dataset = Dataset.generate(SEED, **FAULT_SIZES)
    before = expected_all(dataset)
    changes = ChangesDuringSync(dataset, before)

    with SandboxServer(dataset) as server:
        first = read_watched(server, tmp_path, sandbox_config(), changes)
        second = read(server, tmp_path, sandbox_config(), state=last_states([first]))
    after = expected_all(dataset)

    assert first.run.returncode == 0 and second.run.returncode == 0, second.run.stderr[-2000:]
    assert changes.seen_flow_id not in ("", changes.newer_flow_id, changes.older_flow_id)
    assert upper_bound_of(first, ALL_STREAMS) == changes.bound
    assert upper_bound_of(second, ALL_STREAMS) > changes.at
    for stream in ALL_STREAMS:
        assert duplicated_ids(first.run.records(stream)) == [], stream
    first_ids = {s: sorted(r["id"] for r in first.run.records(s)) for s in ALL_STREAMS}
    # The last flow's old version was delivered only if its page was fetched before the edit.
    first_ids["flows"] = sorted(set(first_ids["flows"]) | {changes.last_flow_id})
    assert first_ids == {
        "campaigns": sorted(r["id"] for r in before["campaigns"]),
        "events": sorted([r["id"] for r in before["events"]] + [e["id"] for e in changes.late]),
        "flows": sorted(r["id"] for r in before["flows"] if r["id"] != changes.newer_flow_id),
        "metrics": sorted([r["id"] for r in before["metrics"]] + [changes.metric["id"]]),
    }
    edited = {changes.campaign_id, changes.newer_flow_id, changes.older_flow_id}
    edited.add(changes.last_flow_id)
    for stream in ALL_STREAMS:
        wanted = {r["id"]: comparable(stream, r) for r in before[stream] if r["id"] not in edited}
        got = {r["id"]: comparable(stream, r) for r in first.run.records(stream)}
        assert {i: got[i] for i in wanted} == wanted, stream
    second_ids = {s: sorted(r["id"] for r in second.run.records(s)) for s in CURSOR_FIELDS}
    assert second_ids == {
        "campaigns": [changes.campaign_id],
        "events": sorted(e["id"] for e in changes.fresh),
        "flows": sorted([changes.newer_flow_id, changes.seen_flow_id, changes.last_flow_id]),
    }
    latest: dict[str, dict[str, Any]] = {s: {} for s in ALL_STREAMS}
    for timed in (first, second):
        for stream in ALL_STREAMS:
            for record in timed.run.records(stream):
                latest[stream][record["id"]] = comparable(stream, record)
    assert latest == {s: {r["id"]: comparable(s, r) for r in after[s]} for s in ALL_STREAMS}
    got_all = delivered([first, second])
    delivered_count = sum(len(records) for records in got_all.values())
    unique = sum(len(ids) for ids in latest.values())
    report(
        "data_changed_during_sync",
        Tally(unique, delivered_count, unique, delivered_count - unique, {}),
        "(duplicates = edited records' new versions + metrics re-read)",
    )


def test_sandbox_adding_a_campaign_leaves_existing_events_unchanged() -> None:
    """Klaviyo events are immutable; creating a campaign must not change any stored event.

    The sandbox picks an event's `$message` (and `$flow`) as `records[hash % len(records)]`, so
    every added campaign or flow re-points existing events to other ids.
    """
    dataset = Dataset.generate(SEED, campaigns=10, events=200, flows=5, metrics=4)
    before = dataset.resources("events")

    dataset.add("campaigns", at=datetime(2024, 1, 1, tzinfo=timezone.utc), channel="sms")

    after = dataset.resources("events")
    assert [e for e in after if e not in before] == []


def test_sandbox_stays_quiet_when_a_client_resets_its_connection(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A killed connector resets its keep-alive connections; that is normal for a server and
    must not print `ConnectionResetError` tracebacks into the test output."""
    dataset = Dataset.generate(SEED, campaigns=1, events=1, flows=1, metrics=1)
    with SandboxServer(dataset) as server:
        client = http.client.HTTPConnection("127.0.0.1", server.port)
        client.request("GET", "/__sandbox/stats")
        response = client.getresponse()
        assert (response.status, response.read()[:1]) == (200, b"{")
        # The whole answer is read, so the server is waiting for the next request: linger 0
        # makes the close a TCP reset, as when the process holding the connection is killed.
        assert client.sock is not None
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()

    assert capfd.readouterr().err == ""
