"""Hostile input through the real `source-klaviyo` process: config, state, catalog and answers.

Every run uses a canary API key and must never print it. Config mistakes must fail before any
request with one error naming the field; broken state must fail its stream, never restart it
silently; answers the sandbox never gives (broken documents, foreign links, loops, huge or deep
bodies) come from `hostile_helpers.CannedApi` on 127.0.0.1. Each CLI run costs seconds of start-up,
so one module fixture starts every run at once on a small thread pool and each test waits for its
own; each run gets its own server, so request counts belong to exactly one case.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from integration_tests.connector_process import ConnectorRun, configured_catalog, run_connector
from integration_tests.hostile_helpers import (
    CANARY_KEY,
    CannedApi,
    Reply,
    SeenRequest,
    canary_leaks,
    document,
    event,
    json_reply,
    metric,
    non_log_messages,
)
from integration_tests.oracle import expected_records
from klaviyo_sandbox import ALL_SCOPES, Dataset, SandboxServer

pytestmark = pytest.mark.slow

SEED = 23
PARALLEL_RUNS = 4
RUN_TIMEOUT = 120.0
START_DATE = "2023-01-01T00:00:00Z"
EVENTS_CONFIG = {"api_key": CANARY_KEY, "start_date": "2024-01-01", "num_workers": 1}
LOOP_CAP = 25
# Nesting about 1000 deep makes the parser raise RecursionError: the page counts as malformed and
# is retried 8 times (about 2 minutes) before the stream fails, too slow to run here.
DEEP_OK = 900
HUGE_PROPERTY_BYTES = 5_000_000
GENERIC_CRASH = "Something went wrong in the connector. See the logs for more details."


@dataclass
class Outcome:
    """One CLI run and what the server(s) it talked to saw."""

    run: ConnectorRun
    requests: int
    seen: list[SeenRequest] = field(default_factory=list)
    foreign: list[SeenRequest] = field(default_factory=list)


Job = Callable[[Path], Outcome]
JOBS: dict[str, Job] = {}


def job(name: str) -> Callable[[Job], Job]:
    def register(function: Job) -> Job:
        JOBS[name] = function
        return function

    return register


def canary_config(**options: Any) -> dict[str, Any]:
    return {"api_key": CANARY_KEY, **options}


def dataset() -> Dataset:
    """The small account every sandbox run reads (30 campaigns, so states have work to do)."""
    return Dataset.generate(SEED, campaigns=30, events=40, flows=4, metrics=3)


def new_sandbox() -> SandboxServer:
    server = SandboxServer(dataset())
    server.keys[CANARY_KEY] = ALL_SCOPES
    return server


def sandbox_run(
    workdir: Path, command: str, *, streams: list[str] | None = None, **kwargs: Any
) -> Outcome:
    """Run `command` against a fresh sandbox that knows the canary key."""
    catalog = configured_catalog(streams) if streams is not None else kwargs.pop("catalog", None)
    with new_sandbox() as server:
        run = run_connector(
            command, workdir, server.api_url, catalog=catalog, timeout=RUN_TIMEOUT, **kwargs
        )
        return Outcome(run, server.stats["requests"])


def canned_run(
    workdir: Path,
    reply: Callable[[str, str], Reply],
    *,
    command: str = "read",
    streams: tuple[str, ...] = ("metrics",),
    config: Mapping[str, Any] | None = None,
    foreign_reply: Reply | None = None,
) -> Outcome:
    """Run against a `CannedApi` answering `reply(target, origin)`, with `--debug`.

    With `foreign_reply`, a second server on 127.0.0.2 stands for another host; `reply` gets its
    origin instead of the API's own.
    """
    with CannedApi(lambda target: foreign_reply or Reply(), host="127.0.0.2") as foreign:
        origin: list[str] = []
        with CannedApi(lambda target: reply(target, origin[0])) as api:
            origin.append(foreign.origin if foreign_reply else api.origin)
            run = run_connector(
                command,
                workdir,
                api.api_url,
                config=dict(config or canary_config()),
                catalog=configured_catalog(list(streams)) if command == "read" else None,
                extra_args=["--debug"],
                timeout=RUN_TIMEOUT,
            )
            return Outcome(run, len(api.requests), list(api.requests), list(foreign.requests))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Outcome]]]:
    """Start every registered run at once; a test waits only for its own."""
    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        futures = {
            name: pool.submit(function, tmp_path_factory.mktemp(name))
            for name, function in JOBS.items()
        }
        yield futures
        for future in futures.values():
            future.cancel()


def outcome(outcomes: Mapping[str, Future[Outcome]], name: str) -> Outcome:
    return outcomes[name].result()


def only_error(run: ConnectorRun) -> dict[str, Any]:
    """The run's single TRACE error (a failing run must say one thing, once)."""
    errors = run.errors()
    assert len(errors) == 1, [error["message"] for error in errors]
    return errors[0]


def warnings(run: ConnectorRun) -> list[str]:
    return [
        message["log"]["message"]
        for message in run.of_type("LOG")
        if message["log"]["level"] in ("WARN", "WARNING")
    ]


def ids(run: ConnectorRun, stream: str) -> list[str]:
    return sorted(record["id"] for record in run.records(stream))


# ---------------------------------------------------------------------------------------------
# Config: `check` must answer one FAILED status naming the field, before any request.

NON_LATIN1_KEY = CANARY_KEY + "\u4e2d"
NUL_KEY = CANARY_KEY + "\x00"

# case id, config, the field the message must name first
BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("key_missing", {}, "api_key"),
    ("key_empty", {"api_key": ""}, "api_key"),
    ("key_inner_space", {"api_key": "pk_CANARY hostile"}, "api_key"),
    ("key_number", {"api_key": 1234567890123}, "api_key"),
    ("key_list", {"api_key": [CANARY_KEY]}, "api_key"),
    ("unknown_option", canary_config(region="eu"), "region"),
    ("start_number", canary_config(start_date=20240101), "start_date"),
    ("start_words", canary_config(start_date="yesterday"), "start_date"),
    ("start_slashes", canary_config(start_date="2024/01/01"), "start_date"),
    ("start_feb_30", canary_config(start_date="2024-02-30"), "start_date"),
    ("start_offset_25h", canary_config(start_date="2024-01-01T00:00:00+25:00"), "start_date"),
    ("start_future", canary_config(start_date="2999-01-01T00:00:00Z"), "start_date"),
    ("channel_unknown", canary_config(campaign_channels=["fax"]), "campaign_channels"),
    ("channel_empty", canary_config(campaign_channels=[]), "campaign_channels"),
    ("channel_string", canary_config(campaign_channels="email"), "campaign_channels"),
    ("channel_repeated", canary_config(campaign_channels=["email", "email"]), "campaign_channels"),
    ("workers_0", canary_config(num_workers=0), "num_workers"),
    ("workers_17", canary_config(num_workers=17), "num_workers"),
    ("workers_string", canary_config(num_workers="4"), "num_workers"),
    ("workers_bool", canary_config(num_workers=True), "num_workers"),
    ("lookback_negative", canary_config(events_lookback_window=-1), "events_lookback_window"),
    ("lookback_huge", canary_config(events_lookback_window=10**30), "events_lookback_window"),
    ("metric_quote", canary_config(event_metric_ids=["ab'c"]), "event_metric_ids"),
    ("metric_number", canary_config(event_metric_ids=[123]), "event_metric_ids"),
]
# Keys no HTTP header can carry as typed: they must be config errors too.
BAD_KEY_CHARACTERS: list[tuple[str, dict[str, Any], str]] = [
    ("key_non_latin1", {"api_key": NON_LATIN1_KEY}, "api_key"),
    ("key_nul", {"api_key": NUL_KEY}, "api_key"),
]

for _name, _config, _ in BAD_CONFIGS + BAD_KEY_CHARACTERS:
    job(f"check_{_name}")(partial(sandbox_run, command="check", config=_config))


def names_field(message: str, field_name: str) -> bool:
    """The config error names `field_name` first (`'campaign_channels.0'` names an item)."""
    prefix = f"Invalid Klaviyo config: '{field_name}"
    return message.startswith((prefix + "' ", prefix + "."))


def assert_config_failure_before_any_request(result: Outcome, field_name: str, key: str) -> None:
    status = non_log_messages(result.run)
    assert result.run.returncode == 0, result.run.stderr[-2000:]
    assert len(status) == 1, status
    assert status[0]["type"] == "CONNECTION_STATUS"
    assert status[0]["connectionStatus"]["status"] == "FAILED"
    assert names_field(status[0]["connectionStatus"]["message"], field_name)
    assert result.requests == 0
    assert canary_leaks(result.run, key) == []


@pytest.mark.parametrize("name, config, field_name", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_check_rejects_a_bad_config_value_naming_the_field_before_any_request(
    outcomes: dict[str, Future[Outcome]], name: str, config: dict[str, Any], field_name: str
) -> None:
    result = outcome(outcomes, f"check_{name}")

    assert_config_failure_before_any_request(result, field_name, CANARY_KEY)


@pytest.mark.parametrize(
    "name, config, field_name", BAD_KEY_CHARACTERS, ids=[case[0] for case in BAD_KEY_CHARACTERS]
)
def test_check_rejects_a_key_no_header_can_carry_before_any_request(
    outcomes: dict[str, Future[Outcome]], name: str, config: dict[str, Any], field_name: str
) -> None:
    result = outcome(outcomes, f"check_{name}")

    assert_config_failure_before_any_request(result, field_name, config["api_key"])


READ_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("key_list", {"api_key": [CANARY_KEY]}, "api_key"),
]
for _name, _config, _ in READ_CONFIGS:
    job(f"read_{_name}")(
        partial(
            sandbox_run,
            command="read",
            config=_config,
            streams=["metrics"],
            extra_args=["--debug"],
        )
    )


@pytest.mark.parametrize("name, config, field_name", READ_CONFIGS, ids=[c[0] for c in READ_CONFIGS])
def test_read_with_a_bad_config_fails_with_one_config_error_before_any_request(
    outcomes: dict[str, Future[Outcome]], name: str, config: dict[str, Any], field_name: str
) -> None:
    result = outcome(outcomes, f"read_{name}")

    error = only_error(result.run)
    assert result.run.returncode == 1
    assert error["failure_type"] == "config_error"
    assert names_field(error["message"], field_name)
    assert result.requests == 0
    assert canary_leaks(result.run) == []


# ---------------------------------------------------------------------------------------------
# Files given on the command line: missing, unreadable, not JSON, not the right JSON.

FILE_CASES: list[tuple[str, str, str | None]] = [
    # case id, which option gets the hostile file, its content (None: a missing file)
    ("config_not_json", "--config", '{api_key: "' + CANARY_KEY + '"'),
    ("config_json_list", "--config", json.dumps([{"api_key": CANARY_KEY}])),
    ("config_directory", "--config", "<directory>"),
    ("state_missing", "--state", None),
    ("state_not_json", "--state", "[{" + CANARY_KEY),
]


def file_case_job(option: str, content: str | None) -> Job:
    """A read whose `option` names the hostile file (a directory for `<directory>`)."""

    def run(workdir: Path) -> Outcome:
        hostile = workdir / "hostile.json"
        if content == "<directory>":
            hostile.mkdir()
        elif content is not None:
            hostile.write_text(content)
        config = None if option == "--config" else canary_config()
        return sandbox_run(
            workdir, "read", config=config, streams=["metrics"], extra_args=[option, str(hostile)]
        )

    return run


for _name, _option, _content in FILE_CASES:
    job(f"file_{_name}")(file_case_job(_option, _content))


@pytest.mark.parametrize("name, option, content", FILE_CASES, ids=[case[0] for case in FILE_CASES])
def test_a_hostile_file_argument_fails_with_one_config_error_naming_the_option(
    outcomes: dict[str, Future[Outcome]], name: str, option: str, content: str | None
) -> None:
    result = outcome(outcomes, f"file_{name}")

    error = only_error(result.run)
    assert result.run.returncode == 1
    assert error["failure_type"] == "config_error"
    assert f"{option} file" in error["message"], error["message"]
    assert result.requests == 0
    assert canary_leaks(result.run) == []


# ---------------------------------------------------------------------------------------------
# State: the documented shapes resume exactly; anything else fails the stream, never re-reads.

CAMPAIGN_PARTITIONS = (
    {"channel": "email", "archived": False},
    {"channel": "email", "archived": True},
)
JUNE = "2024-06-01T00:00:00.000000Z"


def campaigns_state(blob: Any) -> list[dict[str, Any]]:
    return [
        {
            "type": "STREAM",
            "stream": {"stream_descriptor": {"name": "campaigns"}, "stream_state": blob},
        }
    ]


def both_partitions(cursor: Any, *extra: dict[str, Any]) -> dict[str, Any]:
    entries = [
        {"partition": dict(p), "cursor": {"updated_at": cursor}} for p in CAMPAIGN_PARTITIONS
    ]
    return {"states": [*entries, *extra]}


def expected_campaign_ids(since: str) -> list[str]:
    """Email campaigns (both archived flags) with `updated_at` at or after `since`."""
    records = expected_records(dataset(), "campaigns")
    return sorted(
        record_id
        for record_id, record in records.items()
        if record["channel"] == "email" and record["updated_at"] >= since
    )


# case id, state messages, the cursor the read must resume from
RESUMING_STATES: list[tuple[str, list[dict[str, Any]], str]] = [
    ("cursor_rfc3339", campaigns_state(both_partitions("2024-06-01T00:00:00Z")), JUNE),
    ("cursor_space", campaigns_state(both_partitions("2024-06-01 00:00:00")), JUNE),
    ("cursor_offset", campaigns_state(both_partitions("2024-06-01T05:30:00+05:30")), JUNE),
    ("cursor_date_only", campaigns_state(both_partitions("2024-06-01")), JUNE),
    ("cursor_before_start", campaigns_state(both_partitions("2015-01-01T00:00:00Z")), START_DATE),
    ("legacy_flat", campaigns_state({"updated_at": "2024-06-01T00:00:00Z"}), JUNE),
    (
        "unconfigured_partition",
        campaigns_state(
            both_partitions(
                "2024-06-01T00:00:00Z",
                {
                    "partition": {"channel": "sms", "archived": False},
                    "cursor": {"updated_at": JUNE},
                },
            )
        ),
        JUNE,
    ),
    (
        "streams_not_in_catalog",
        [
            *campaigns_state(both_partitions("2024-06-01T00:00:00Z")),
            {
                "type": "STREAM",
                "stream": {
                    "stream_descriptor": {"name": "flows"},
                    "stream_state": {"updated": JUNE},
                },
            },
            {
                "type": "STREAM",
                "stream": {"stream_descriptor": {"name": "profiles"}, "stream_state": {"x": 1}},
            },
        ],
        JUNE,
    ),
]
FUTURE_STATE = campaigns_state(both_partitions("2099-01-01T00:00:00Z"))
STATE_CONFIG = canary_config(start_date=START_DATE)


def state_job(state: list[dict[str, Any]]) -> Job:
    return lambda workdir: sandbox_run(
        workdir,
        "read",
        config=STATE_CONFIG,
        streams=["campaigns"],
        state=state,
        extra_args=["--debug"],
    )


for _name, _state, _ in RESUMING_STATES:
    job(f"state_{_name}")(state_job(_state))
job("state_future")(state_job(FUTURE_STATE))


def final_partitions(run: ConnectorRun) -> list[dict[str, Any]]:
    return [entry["partition"] for entry in run.stream_state("campaigns")["states"]]


@pytest.mark.parametrize(
    "name, state, since", RESUMING_STATES, ids=[case[0] for case in RESUMING_STATES]
)
def test_a_documented_state_form_resumes_exactly_from_its_cursor(
    outcomes: dict[str, Future[Outcome]], name: str, state: list[dict[str, Any]], since: str
) -> None:
    result = outcome(outcomes, f"state_{name}")

    assert result.run.returncode == 0, result.run.stderr[-2000:]
    assert ids(result.run, "campaigns") == expected_campaign_ids(since)
    assert final_partitions(result.run) == [dict(p) for p in CAMPAIGN_PARTITIONS]
    assert {state["stream"]["stream_descriptor"]["name"] for state in result.run.states()} == {
        "campaigns"
    }
    assert canary_leaks(result.run) == []


def test_a_cursor_in_the_future_is_lowered_with_a_warning_and_reads_nothing(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "state_future")

    cursors = [
        entry["cursor"]["updated_at"] for entry in result.run.stream_state("campaigns")["states"]
    ]
    lowered = [text for text in warnings(result.run) if "is after this sync's upper bound" in text]
    assert result.run.returncode == 0, result.run.stderr[-2000:]
    assert result.run.of_type("RECORD") == []
    assert result.requests == 0
    assert len(lowered) == 2
    assert cursors[0] == cursors[1] < datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert canary_leaks(result.run) == []


STATE_ERROR_SUFFIX = ". Fix the state or reset the stream to sync it from the start date."
# case id, state messages, the problem the stream's error must state
INVALID_STREAM_STATES: list[tuple[str, list[dict[str, Any]], str]] = [
    (
        "wrong_shape",
        campaigns_state({"cursor": "2024-06-01"}),
        "expected {'states': [...]} or {'updated_at': '<datetime>'}",
    ),
    ("states_not_a_list", campaigns_state({"states": "email"}), "'states' is not a list"),
    (
        "cursor_number",
        campaigns_state(both_partitions(1717200000)),
        "cursor updated_at: 1717200000 is not an ISO 8601 datetime; expected a form like "
        "2024-01-31T00:00:00Z",
    ),
    (
        "cursor_garbage",
        campaigns_state(both_partitions("last tuesday")),
        "cursor updated_at: 'last tuesday' is not an ISO 8601 datetime; expected a form like "
        "2024-01-31T00:00:00Z",
    ),
    (
        "partition_value_list",
        campaigns_state(
            {"states": [{"partition": {"channel": ["email"]}, "cursor": {"updated_at": JUNE}}]}
        ),
        "partition values must be strings or booleans",
    ),
]
for _name, _state, _ in INVALID_STREAM_STATES:
    job(f"state_{_name}")(state_job(_state))


@pytest.mark.parametrize(
    "name, state, problem", INVALID_STREAM_STATES, ids=[case[0] for case in INVALID_STREAM_STATES]
)
def test_an_invalid_stream_state_fails_that_stream_saying_what_is_wrong(
    outcomes: dict[str, Future[Outcome]], name: str, state: list[dict[str, Any]], problem: str
) -> None:
    result = outcome(outcomes, f"state_{name}")

    message = f"The saved state of stream campaigns is invalid: {problem}{STATE_ERROR_SUFFIX}"
    errors = result.run.errors()
    assert result.run.returncode == 1
    assert errors[0]["message"] == message
    assert errors[0]["failure_type"] == "config_error"
    assert errors[-1]["message"] == f"1 stream(s) did not sync. campaigns: {message}"
    assert result.run.of_type("RECORD") == []
    assert result.requests == 0
    assert canary_leaks(result.run) == []


# case id, state messages: whole-file shapes that are no per-stream state at all
FOREIGN_STATE_SHAPES: list[tuple[str, list[Any]]] = [
    ("json_list_of_garbage", [1, "x", None]),
    (
        "global_with_shared_state",
        [
            {
                "type": "GLOBAL",
                "global": {
                    "shared_state": {"cursor": JUNE},
                    "stream_states": [
                        {
                            "stream_descriptor": {"name": "campaigns"},
                            "stream_state": {"updated_at": JUNE},
                        }
                    ],
                },
            }
        ],
    ),
    ("legacy_message", [{"type": "LEGACY", "data": {"campaigns": {"updated_at": JUNE}}}]),
]
for _name, _state in FOREIGN_STATE_SHAPES:
    job(f"state_{_name}")(state_job(_state))


@pytest.mark.parametrize(
    "name, state",
    [
        pytest.param(*FOREIGN_STATE_SHAPES[0]),
        pytest.param(*FOREIGN_STATE_SHAPES[1]),
        pytest.param(*FOREIGN_STATE_SHAPES[2]),
    ],
    ids=[case[0] for case in FOREIGN_STATE_SHAPES],
)
def test_a_state_file_of_another_shape_fails_with_a_config_error_and_reads_nothing(
    outcomes: dict[str, Future[Outcome]], name: str, state: list[Any]
) -> None:
    result = outcome(outcomes, f"state_{name}")

    error = only_error(result.run)
    assert result.run.returncode == 1
    assert error["failure_type"] == "config_error"
    assert error["message"] != GENERIC_CRASH
    assert result.run.of_type("RECORD") == []
    assert result.requests == 0
    assert canary_leaks(result.run) == []


# ---------------------------------------------------------------------------------------------
# Catalog.


def metrics_catalog(**changes: Any) -> dict[str, Any]:
    catalog = configured_catalog(["metrics"])
    catalog["streams"][0].update(changes)
    return catalog


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


UNKNOWN_STREAM = configured_catalog(["metrics"])
UNKNOWN_STREAM["streams"][0]["stream"]["name"] = "profiles"
# case id, catalog, exact error message
BAD_CATALOGS: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown_stream",
        UNKNOWN_STREAM,
        "The catalog selects stream 'profiles', which this source does not have (it has "
        "campaigns, events, flows, metrics). Refresh the source schema.",
    ),
    (
        "no_stream",
        {"streams": []},
        "The configured catalog selects no stream; select at least one.",
    ),
]
for _name, _catalog, _ in BAD_CATALOGS:
    job(f"catalog_{_name}")(
        partial(sandbox_run, command="read", config=canary_config(), catalog=_catalog)
    )
job("catalog_not_json")(
    lambda workdir: sandbox_run(
        workdir,
        "read",
        config=canary_config(),
        extra_args=["--catalog", str(_write(workdir / "bad.json", '{"streams": ['))],
    )
)
job("catalog_incremental_metrics")(
    lambda workdir: sandbox_run(
        workdir, "read", config=canary_config(), catalog=metrics_catalog(sync_mode="incremental")
    )
)
job("catalog_stream_twice")(
    lambda workdir: sandbox_run(
        workdir, "read", config=canary_config(), catalog=configured_catalog(["metrics", "metrics"])
    )
)


@pytest.mark.parametrize(
    "name, catalog, message", BAD_CATALOGS, ids=[case[0] for case in BAD_CATALOGS]
)
def test_a_catalog_selecting_nothing_readable_fails_before_any_request(
    outcomes: dict[str, Future[Outcome]], name: str, catalog: dict[str, Any], message: str
) -> None:
    result = outcome(outcomes, f"catalog_{name}")

    error = only_error(result.run)
    assert result.run.returncode == 1
    assert (error["failure_type"], error["message"]) == ("config_error", message)
    assert result.requests == 0


def test_a_catalog_that_is_not_json_fails_with_a_config_error_naming_the_option(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "catalog_not_json")

    error = only_error(result.run)
    assert result.run.returncode == 1
    assert error["failure_type"] == "config_error"
    assert "--catalog file" in error["message"], error["message"]
    assert result.requests == 0


def test_incremental_metrics_are_read_in_full_with_a_warning(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "catalog_incremental_metrics")

    expected = sorted(expected_records(dataset(), "metrics"))
    assert result.run.returncode == 0, result.run.stderr[-2000:]
    assert ids(result.run, "metrics") == expected
    assert warnings(result.run) == ["Stream metrics supports full refresh only; reading it in full"]


def test_a_stream_listed_twice_fails_with_a_config_error_before_any_request(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "catalog_stream_twice")

    error = only_error(result.run)
    assert result.run.returncode == 1
    assert error["failure_type"] == "config_error"
    assert "metrics" in error["message"]
    assert result.requests == 0


# ---------------------------------------------------------------------------------------------
# Answers the sandbox never gives, from a canned server.

NEXT_PAGE = "/api/metrics?page%5Bcursor%5D=2"


def first_then(first: Reply, then: Reply) -> Callable[[str, str], Reply]:
    """`first` for the first request, `then` for every later one."""
    served: list[str] = []

    def reply(target: str, origin: str) -> Reply:
        served.append(target)
        return first if len(served) == 1 else then

    return reply


GOOD_PAGE = json_reply(document([metric("A")]))


@job("answer_foreign_next")
def _foreign_next(workdir: Path) -> Outcome:
    return canned_run(
        workdir,
        lambda target, origin: json_reply(document([metric("A")], origin + NEXT_PAGE)),
        foreign_reply=json_reply(document([metric("X")])),
    )


@job("answer_foreign_redirect")
def _foreign_redirect(workdir: Path) -> Outcome:
    return canned_run(
        workdir,
        lambda target, origin: Reply(302, b"", {"Location": origin + "/api/metrics"}),
        foreign_reply=json_reply(document([metric("X")])),
    )


@job("answer_next_loop")
def _next_loop(workdir: Path) -> Outcome:
    served: list[str] = []

    def reply(target: str, origin: str) -> Reply:
        served.append(target)
        if len(served) > LOOP_CAP:
            return json_reply({"errors": [{"detail": "test server: loop cap reached"}]}, 400)
        return json_reply(document([metric("A")], origin + NEXT_PAGE))

    return canned_run(workdir, reply)


job("answer_next_not_a_string")(
    lambda workdir: canned_run(
        workdir,
        first_then(
            json_reply({"data": [metric("A")], "links": {"next": 12345}}),
            json_reply(document([metric("A"), metric("B")])),
        ),
    )
)
job("answer_id_missing")(
    lambda workdir: canned_run(
        workdir, lambda t, o: json_reply(document([{"type": "metric", "attributes": {}}]))
    )
)
job("answer_id_number")(
    lambda workdir: canned_run(
        workdir, lambda t, o: json_reply(document([{"type": "metric", "id": 7, "attributes": {}}]))
    )
)
job("answer_attributes_string")(
    lambda workdir: canned_run(
        workdir,
        lambda t, o: json_reply(document([{"type": "metric", "id": "A", "attributes": "x"}])),
    )
)
job("answer_odd_attribute_types")(
    lambda workdir: canned_run(
        workdir,
        lambda t, o: json_reply(
            document(
                [metric("A", name=5, created=17, updated=["x"], integration="txt", new={"a": 1})]
            )
        ),
    )
)
job("answer_links_absent")(
    lambda workdir: canned_run(workdir, lambda t, o: json_reply({"data": [metric("A")]}))
)
job("answer_links_null")(
    lambda workdir: canned_run(
        workdir, lambda t, o: json_reply({"data": [metric("A")], "links": None})
    )
)

# case id, a 200 answer that is not a JSON:API list document (retried once, then a good page)
MALFORMED_200: list[tuple[str, Reply]] = [
    ("data_missing", json_reply({"links": {"next": None}})),
    ("data_not_a_list", json_reply({"data": {"id": "A"}})),
    ("links_a_string", json_reply({"data": [], "links": "next"})),
    (
        "html_page",
        Reply(200, b"<html><body>Just a moment...</body></html>", {"Content-Type": "text/html"}),
    ),
]
for _name, _reply in MALFORMED_200:
    job(f"answer_{_name}")(partial(canned_run, reply=first_then(_reply, GOOD_PAGE)))
# JSON whose strings are not UTF-8 parses as JSON: the page is checked for syntax before the next
# request, its text only when records are built, too late for a retry (and no retry mends it).
job("answer_not_utf8")(
    partial(
        canned_run,
        reply=first_then(
            Reply(200, b'{"data": [{"type": "metric", "id": "\xff\xfe"}], "links": {}}'),
            GOOD_PAGE,
        ),
    )
)


def _bad_page_then_long_waits(target: str, origin: str) -> Reply:
    """A campaigns page whose second campaign is unreadable, linking to a page that only ever
    answers 429 with a 10 s `Retry-After`."""
    if "page%5Bcursor%5D" in target:
        return Reply(429, b'{"errors":[]}', {"Retry-After": "10"})
    good = '{"type":"campaign","id":"C1","attributes":{"updated_at":"2024-01-02T00:00:00+00:00"}}'
    bad = '{"type":"campaign","id":"C2","attributes":{"tracking_options":{"n":"\xe9"}}}'
    link = f"{origin}/api/campaigns?page%5Bcursor%5D=2"
    body = f'{{"data":[{good},{bad}],"links":{{"next":"{link}"}}}}'.encode("latin-1")
    return Reply(200, body)


job("answer_bad_page_then_long_waits")(
    partial(canned_run, reply=_bad_page_then_long_waits, streams=("campaigns",))
)


def assert_failed_stream(result: Outcome, message: str) -> None:
    errors = result.run.errors()
    assert result.run.returncode == 1
    assert errors[0]["message"] == message
    assert errors[-1]["message"] == f"1 stream(s) did not sync. metrics: {message}"


def test_a_links_next_to_another_host_is_refused_and_that_host_gets_nothing(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "answer_foreign_next")

    host = result.run.errors()[0]["message"].split("(")[1].split(")")[0]
    assert host.startswith("127.0.0.2:")
    assert_failed_stream(
        result,
        f"Klaviyo's links.next for metrics points to another origin ({host}); refusing to send "
        "the API key there.",
    )
    assert ids(result.run, "metrics") == ["A"]
    assert result.foreign == []
    assert canary_leaks(result.run) == []


def test_a_redirect_to_another_host_never_carries_the_api_key(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "answer_foreign_redirect")

    assert [seen.headers.get("Authorization") for seen in result.foreign] in ([], [None])
    assert canary_leaks(result.run) == []


def test_a_redirect_to_another_host_is_refused(outcomes: dict[str, Future[Outcome]]) -> None:
    result = outcome(outcomes, "answer_foreign_redirect")

    assert result.foreign == []
    assert result.run.returncode == 1
    assert result.run.of_type("RECORD") == []


def test_a_links_next_pointing_back_to_the_same_page_stops_the_stream(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "answer_next_loop")

    assert result.run.returncode == 1
    assert result.requests == 2
    assert ids(result.run, "metrics") == ["A", "A"]


def test_a_links_next_loop_fails_with_a_clear_error_and_leaks_nothing(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "answer_next_loop")

    assert_failed_stream(
        result,
        "Klaviyo's links.next for metrics points back to the page just read; following it "
        "would loop forever.",
    )
    assert canary_leaks(result.run) == []


def test_a_links_next_that_is_not_a_string_is_not_taken_for_the_last_page(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "answer_next_not_a_string")

    assert result.run.returncode == 0
    assert result.requests == 2
    assert ids(result.run, "metrics") == ["A", "B"]


@pytest.mark.parametrize("name", ["id_missing", "id_number"])
def test_a_resource_without_a_string_id_fails_the_stream(
    outcomes: dict[str, Future[Outcome]], name: str
) -> None:
    result = outcome(outcomes, f"answer_{name}")

    assert_failed_stream(
        result,
        "Klaviyo's /api/metrics returned a resource without a string id; the page cannot be "
        "read without losing records.",
    )
    assert result.run.of_type("RECORD") == []
    assert canary_leaks(result.run) == []


def test_attributes_that_are_not_an_object_fail_the_stream_with_a_clear_error(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "answer_attributes_string")

    errors = result.run.errors()
    assert result.run.returncode == 1
    assert errors[0]["message"] == (
        "Klaviyo's /api/metrics answered 200 but the body is not a list of metrics "
        "(Expected `object | null`, got `str` - at `$.data[0].attributes`)."
    )


def test_a_200_whose_strings_are_not_utf8_fails_the_stream_once_with_a_clear_error(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "answer_not_utf8")

    assert_failed_stream(
        result,
        "Klaviyo's /api/metrics answered 200 but the body is not a list of metrics "
        "(Invalid UTF-8 encoded string).",
    )
    assert result.requests == 1
    assert result.run.of_type("RECORD") == []
    assert canary_leaks(result.run) == []


def test_a_bad_page_fails_its_stream_without_waiting_out_the_next_pages_retries(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    # The worker has moved on to the next page, which only ever answers 429; the failure found
    # on the page before must not wait for eight 10 s waits to end.
    result = outcome(outcomes, "answer_bad_page_then_long_waits")

    errors = result.run.errors()
    assert result.run.returncode == 1
    assert errors[0]["message"] == (
        "Klaviyo's /api/campaigns answered 200 but a nested JSON value is not UTF-8 text "
        "(in campaigns record C2)."
    )
    assert result.requests <= 2
    assert ids(result.run, "campaigns") == []
    assert canary_leaks(result.run) == []


def test_odd_attribute_types_pass_through_unchanged_and_unknown_attributes_are_ignored(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "answer_odd_attribute_types")

    assert result.run.returncode == 0, result.run.stderr[-2000:]
    assert result.run.records("metrics") == [
        {"id": "A", "name": 5, "created": 17, "updated": ["x"], "integration": '"txt"'}
    ]


@pytest.mark.parametrize("name", ["links_absent", "links_null"])
def test_a_page_without_links_is_the_last_page(
    outcomes: dict[str, Future[Outcome]], name: str
) -> None:
    result = outcome(outcomes, f"answer_{name}")

    assert result.run.returncode == 0, result.run.stderr[-2000:]
    assert result.requests == 1
    assert ids(result.run, "metrics") == ["A"]


@pytest.mark.parametrize("name, bad", MALFORMED_200, ids=[case[0] for case in MALFORMED_200])
def test_a_200_that_is_not_a_list_document_is_retried_and_loses_nothing(
    outcomes: dict[str, Future[Outcome]], name: str, bad: Reply
) -> None:
    result = outcome(outcomes, f"answer_{name}")

    retries = [
        text
        for text in warnings(result.run)
        if text.startswith("Klaviyo /api/metrics answered 200") and "; retrying in " in text
    ]
    assert result.run.returncode == 0, result.run.stderr[-2000:]
    assert result.requests == 2
    assert ids(result.run, "metrics") == ["A"]
    assert len(retries) == 1
    assert canary_leaks(result.run) == []


# Events: empty pages, a huge event, deep nesting.


def event_pages(pages: list[list[dict[str, Any]] | bytes]) -> Callable[[str, str], Reply]:
    """Page i of `pages` for `page[cursor]=i`, each linking to the next but the last."""

    def reply(target: str, origin: str) -> Reply:
        index = int(target.rsplit("page%5Bcursor%5D=", 1)[1]) if "cursor%5D=" in target else 0
        page = pages[index]
        if isinstance(page, bytes):
            return Reply(200, page)
        more = index + 1 < len(pages)
        link = f"{origin}/api/events?page%5Bcursor%5D={index + 1}" if more else None
        return json_reply(document(page, link))

    return reply


def deep_event_body(depth: int) -> bytes:
    """One event whose `event_properties.d` is `depth` nested empty lists, written by hand
    (the standard library cannot encode what it cannot recurse into)."""
    resource = json.dumps(event("E1", "2024-01-02T03:04:05+00:00", event_properties={"d": 0}))
    nested = "[" * depth + "]" * depth
    return ('{"data": [' + resource.replace('{"d": 0}', '{"d": ' + nested + "}") + "]}").encode()


job("events_empty_pages")(
    lambda workdir: canned_run(
        workdir,
        event_pages([[], [], [event("E1", "2024-01-02T03:04:05+00:00")], []]),
        streams=("events",),
        config=EVENTS_CONFIG,
    )
)
job("events_huge_properties")(
    lambda workdir: canned_run(
        workdir,
        event_pages(
            [
                [
                    event(
                        "E1",
                        "2024-01-02T03:04:05+00:00",
                        event_properties={"x": "y" * HUGE_PROPERTY_BYTES},
                    )
                ]
            ]
        ),
        streams=("events",),
        config=EVENTS_CONFIG,
    )
)
job(f"events_deep_{DEEP_OK}")(
    lambda workdir: canned_run(
        workdir, event_pages([deep_event_body(DEEP_OK)]), streams=("events",), config=EVENTS_CONFIG
    )
)
job("events_odd_datetimes")(
    lambda workdir: canned_run(
        workdir,
        event_pages(
            [
                [
                    event("E1", 1704164645),
                    event("E2", "soon"),
                    event("E3", "2024-01-03T00:00:00+00:00"),
                ]
            ]
        ),
        streams=("events",),
        config=EVENTS_CONFIG,
    )
)


def test_empty_pages_with_a_next_link_are_followed_to_the_end(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "events_empty_pages")

    assert result.run.returncode == 0, result.run.stderr[-2000:]
    assert result.requests == 4
    assert ids(result.run, "events") == ["E1"]
    assert canary_leaks(result.run) == []


def test_a_five_megabyte_event_is_emitted_whole(outcomes: dict[str, Future[Outcome]]) -> None:
    result = outcome(outcomes, "events_huge_properties")

    records = result.run.records("events")
    assert result.run.returncode == 0, result.run.stderr[-2000:]
    assert [record["id"] for record in records] == ["E1"]
    assert records[0]["event_properties"] == '{"x":"' + "y" * HUGE_PROPERTY_BYTES + '"}'


def test_deeply_nested_event_properties_are_emitted_as_exact_json_text(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, f"events_deep_{DEEP_OK}")

    records = result.run.records("events")
    assert result.run.returncode == 0
    assert [record["event_properties"] for record in records] == [
        '{"d":' + "[" * DEEP_OK + "]" * DEEP_OK + "}"
    ]


def test_event_datetimes_that_are_not_datetimes_pass_through_and_never_become_cursors(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "events_odd_datetimes")

    mid_sync = result.run.states()[0]["stream"]["stream_state"]
    assert result.run.returncode == 0, result.run.stderr[-2000:]
    assert [record["datetime"] for record in result.run.records("events")] == [
        1704164645,
        "soon",
        "2024-01-03T00:00:00.000000Z",
    ]
    assert mid_sync == {
        "states": [{"partition": {}, "cursor": {"datetime": "2024-01-03T00:00:00.000000Z"}}]
    }


# ---------------------------------------------------------------------------------------------
# The API key, echoed back by the server in an error detail.


def echo_the_key(target: str, origin: str) -> Reply:
    detail = f"Bad request; you sent Klaviyo-API-Key {CANARY_KEY}"
    return json_reply({"errors": [{"detail": detail}]}, 400)


job("echo_check")(lambda workdir: canned_run(workdir, echo_the_key, command="check"))
job("echo_read")(lambda workdir: canned_run(workdir, echo_the_key))


def test_a_read_never_prints_a_key_the_server_echoes_back(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "echo_read")

    assert_failed_stream(
        result,
        "Klaviyo refused the metrics request (400): Bad request; you sent Klaviyo-API-Key ****",
    )
    assert canary_leaks(result.run) == []


def test_check_never_prints_a_key_the_server_echoes_back(
    outcomes: dict[str, Future[Outcome]],
) -> None:
    result = outcome(outcomes, "echo_check")

    assert non_log_messages(result.run) == [
        {
            "type": "CONNECTION_STATUS",
            "connectionStatus": {
                "status": "FAILED",
                "message": "Klaviyo's /api/campaigns answered 400: Bad request; you sent "
                "Klaviyo-API-Key ****",
            },
        }
    ]
    assert canary_leaks(result.run) == []
