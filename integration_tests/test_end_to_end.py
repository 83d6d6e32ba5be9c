"""The real `source-klaviyo` process against the local Klaviyo sandbox, record by record."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from integration_tests.conftest import ALL_STREAMS, SIZES, sandbox_config
from integration_tests.connector_process import ConnectorRun, configured_catalog, run_connector
from integration_tests.oracle import comparable, expected_records
from klaviyo_sandbox import FULL_KEY, NO_EVENTS_KEY, SandboxServer

pytestmark = pytest.mark.slow


def assert_records_match(run: ConnectorRun, server: SandboxServer, stream: str) -> int:
    """Every sandbox record exactly once, equal field by field; returns how many were compared."""
    emitted = run.records(stream)
    ids = [record["id"] for record in emitted]
    assert len(ids) == len(set(ids)), f"{stream}: duplicated ids"
    expected = expected_records(server.dataset, stream)
    assert sorted(ids) == sorted(expected), f"{stream}: missing or extra records"
    for record in emitted:
        assert comparable(stream, record) == comparable(stream, expected[record["id"]])
    return len(emitted)


def assert_state_counts_match_records(run: ConnectorRun) -> None:
    """Each STATE's `sourceStats.recordCount` is the number of that stream's RECORD lines since
    its previous STATE: the platform checks these counts."""
    since_last: dict[str, int] = {}
    checked = 0
    for message in run.messages:
        if message["type"] == "RECORD":
            stream = message["record"]["stream"]
            since_last[stream] = since_last.get(stream, 0) + 1
        elif message["type"] == "STATE":
            stream = message["state"]["stream"]["stream_descriptor"]["name"]
            assert message["state"]["sourceStats"]["recordCount"] == since_last.pop(stream, 0)
            checked += 1
    assert checked > 0


def cursor_of(run: ConnectorRun, stream: str) -> datetime:
    state = run.stream_state(stream)
    value = min(entry["cursor"][next(iter(entry["cursor"]))] for entry in state["states"])
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_spec_prints_the_connection_specification(tmp_path: Path) -> None:
    run = run_connector("spec", tmp_path, "http://127.0.0.1:9/api/")

    assert run.returncode == 0
    spec = run.of_type("SPEC")[0]["spec"]["connectionSpecification"]
    assert sorted(spec["properties"]) == [
        "api_key",
        "campaign_channels",
        "event_metric_ids",
        "events_lookback_window",
        "num_workers",
        "start_date",
    ]
    assert spec["required"] == ["api_key"]
    assert spec["properties"]["api_key"]["airbyte_secret"] is True


@pytest.mark.parametrize(
    "key, status, message",
    [
        (FULL_KEY, "SUCCEEDED", None),
        (
            "pk_wrong_key",
            "FAILED",
            "Klaviyo rejected the API key (401). Check the private API key.",
        ),
        (
            NO_EVENTS_KEY,
            "FAILED",
            "The API key lacks the scope(s) events:read. Create a private key with read access "
            "to campaigns, events, flows and metrics.",
        ),
    ],
)
def test_check_reports_the_key_and_its_scopes(
    shared_sandbox: SandboxServer, tmp_path: Path, key: str, status: str, message: str | None
) -> None:
    run = run_connector(
        "check", tmp_path, shared_sandbox.api_url, config=sandbox_config(api_key=key)
    )

    assert run.returncode == 0
    connection = run.of_type("CONNECTION_STATUS")[0]["connectionStatus"]
    assert connection.get("status") == status
    assert connection.get("message") == message


def test_discover_lists_the_four_streams_with_keys_and_cursors(
    shared_sandbox: SandboxServer, tmp_path: Path
) -> None:
    run = run_connector("discover", tmp_path, shared_sandbox.api_url, config=sandbox_config())

    assert run.returncode == 0
    streams = run.of_type("CATALOG")[0]["catalog"]["streams"]
    assert [
        (
            s["name"],
            s["supported_sync_modes"],
            s.get("default_cursor_field"),
            s["source_defined_primary_key"],
        )
        for s in streams
    ] == [
        ("campaigns", ["full_refresh", "incremental"], ["updated_at"], [["id"]]),
        ("events", ["full_refresh", "incremental"], ["datetime"], [["id"]]),
        ("flows", ["full_refresh", "incremental"], ["updated"], [["id"]]),
        ("metrics", ["full_refresh"], None, [["id"]]),
    ]


def test_full_read_returns_every_sandbox_record_exactly(
    shared_sandbox: SandboxServer, tmp_path: Path
) -> None:
    run = run_connector(
        "read",
        tmp_path,
        shared_sandbox.api_url,
        config=sandbox_config(),
        catalog=configured_catalog(ALL_STREAMS),
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.errors() == []
    compared = {stream: assert_records_match(run, shared_sandbox, stream) for stream in ALL_STREAMS}
    assert compared == SIZES
    assert_state_counts_match_records(run)
    print(f"full read compared {sum(compared.values())} records: {compared}")


def test_incremental_read_with_the_emitted_state_returns_only_new_or_changed_records(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    catalog = configured_catalog(ALL_STREAMS)
    first = run_connector(
        "read", tmp_path, sandbox.api_url, config=sandbox_config(), catalog=catalog
    )
    assert first.returncode == 0, first.stderr[-2000:]
    unchanged = run_connector(
        "read",
        tmp_path,
        sandbox.api_url,
        config=sandbox_config(),
        catalog=catalog,
        state=first.final_states(),
    )
    dataset = sandbox.dataset
    campaign_id = dataset.resources("campaigns")[0]["id"]
    flow_id = dataset.resources("flows")[0]["id"]
    # Exactly at the cursor the second run saved: that run's bound excluded the instant
    # (less-than), the next run includes it (greater-or-equal), and the next run's own upper
    # bound is at least a second later, since starting a run alone takes longer than that.
    changed_at = cursor_of(unchanged, "events")
    new_events = dataset.add_events(3, at=changed_at)
    dataset.touch("campaigns", campaign_id, updated_at=changed_at)
    dataset.touch("flows", flow_id, updated_at=changed_at)
    new_metric = dataset.add("metrics", at=changed_at)
    changed = run_connector(
        "read",
        tmp_path,
        sandbox.api_url,
        config=sandbox_config(),
        catalog=catalog,
        state=unchanged.final_states(),
    )

    assert unchanged.returncode == 0 and changed.returncode == 0, changed.stderr[-2000:]
    assert [len(unchanged.records(s)) for s in ("campaigns", "events", "flows")] == [0, 0, 0]
    slices = [
        m["log"]["message"] for m in changed.of_type("LOG") if "records for" in m["log"]["message"]
    ]
    assert sorted(r["id"] for r in changed.records("events")) == sorted(
        e["id"] for e in new_events
    ), f"changes stamped {changed_at.isoformat()}; the run read {slices}"
    assert [r["id"] for r in changed.records("campaigns")] == [campaign_id]
    assert [r["name"] for r in changed.records("flows")] == [
        dataset.resources("flows")[0]["attributes"]["name"]
    ]
    assert len(changed.records("metrics")) == SIZES["metrics"] + 1
    assert new_metric["id"] in {r["id"] for r in changed.records("metrics")}
    for stream in ("campaigns", "events", "flows"):
        assert cursor_of(changed, stream) > changed_at


def test_lookback_window_rereads_late_events(sandbox: SandboxServer, tmp_path: Path) -> None:
    catalog = configured_catalog(["events"])
    config = sandbox_config(events_lookback_window=2)
    first = run_connector("read", tmp_path, sandbox.api_url, config=config, catalog=catalog)
    late = sandbox.dataset.add_events(2, at=cursor_of(first, "events") - timedelta(minutes=30))

    second = run_connector(
        "read",
        tmp_path,
        sandbox.api_url,
        config=config,
        catalog=catalog,
        state=first.final_states(),
    )

    assert second.returncode == 0, second.stderr[-2000:]
    assert {e["id"] for e in late} <= {r["id"] for r in second.records("events")}


def test_state_in_the_future_reads_nothing_and_fails_nothing(
    shared_sandbox: SandboxServer, tmp_path: Path
) -> None:
    future = "2099-01-01T00:00:00.000000Z"
    state = [
        {
            "type": "STREAM",
            "stream": {
                "stream_descriptor": {"name": name},
                "stream_state": {cursor: future},
            },
        }
        for name, cursor in (
            ("campaigns", "updated_at"),
            ("events", "datetime"),
            ("flows", "updated"),
        )
    ]

    run = run_connector(
        "read",
        tmp_path,
        shared_sandbox.api_url,
        config=sandbox_config(),
        catalog=configured_catalog(["campaigns", "events", "flows"]),
        state=state,
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.of_type("RECORD") == []
    assert run.errors() == []
    now = datetime.now(timezone.utc)
    for stream in ("campaigns", "events", "flows"):
        assert cursor_of(run, stream) < now


def test_api_key_never_appears_in_the_output_of_a_failing_sync(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    canary = "pk_canary_SHOULD_NEVER_BE_PRINTED_42"
    sandbox.keys[canary] = frozenset({"metrics:read"})

    run = run_connector(
        "read",
        tmp_path,
        sandbox.api_url,
        config=sandbox_config(api_key=canary),
        catalog=configured_catalog(ALL_STREAMS),
        extra_args=["--debug"],
    )

    assert run.returncode != 0
    assert len(run.errors()) >= 3
    assert canary not in run.stdout
    assert canary not in run.stderr
