"""`check`, catalog validation and failure handling of the whole source."""

from __future__ import annotations

import json
import tempfile
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import requests_mock as rm
from airbyte_cdk.models import FailureType, Status, SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_klaviyo import SourceKlaviyo
from source_klaviyo.entrypoint import KlaviyoEntrypoint
from unit_tests.conftest import (
    API,
    API_KEY,
    catalog,
    config,
    event,
    flow,
    klaviyo_error,
    metric,
    page,
)

pytestmark = pytest.mark.usefixtures("frozen_now")

ENDPOINTS = ("campaigns", "events", "flows", "metrics")
HTML_403 = {
    "status_code": 403,
    "text": "<html><body>Checking your browser before accessing</body></html>",
    "headers": {"Content-Type": "text/html", "cf-mitigated": "challenge"},
}


def check(config_: dict[str, Any]) -> Any:
    """Run `check` through the connector's own entrypoint, as the CLI does."""
    entrypoint = KlaviyoEntrypoint(SourceKlaviyo())
    lines = list(entrypoint.run(entrypoint.parse_args(["check", "--config", _write(config_)])))
    statuses = [json.loads(line) for line in lines if '"CONNECTION_STATUS"' in line]
    return SimpleNamespace(**statuses[0]["connectionStatus"])


def _write(config_: dict[str, Any]) -> str:
    handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(config_, handle)
    handle.close()
    return handle.name


def first_error(output: EntrypointOutput) -> Any:
    return output.errors[0].trace.error


def everything_printed(output: EntrypointOutput) -> str:
    return "\n".join(str(message) for message in output._messages)


def test_check_succeeds_with_one_cheap_call_per_endpoint(requests_mock: rm.Mocker) -> None:
    for name in ENDPOINTS:
        requests_mock.get(API + name, **page([]))

    status = check(config())

    assert status.status == Status.SUCCEEDED.value
    assert sorted((r.path, r.query) for r in requests_mock.request_history) == [
        ("/api/campaigns", "filter=equals%28messages.channel%2c%27email%27%29&page%5bsize%5d=1"),
        ("/api/events", "page%5bsize%5d=1"),
        ("/api/flows", "page%5bsize%5d=1"),
        ("/api/metrics", ""),
    ]


def test_check_names_every_missing_scope(requests_mock: rm.Mocker) -> None:
    for name in ENDPOINTS:
        if name in ("events", "flows"):
            requests_mock.get(API + name, **klaviyo_error(403, "permission_denied", "No."))
        else:
            requests_mock.get(API + name, **page([]))

    status = check(config())

    assert status.status == Status.FAILED.value
    assert status.message == (
        "The API key lacks the scope(s) events:read, flows:read. Create a private key with read "
        "access to campaigns, events, flows and metrics."
    )


def test_check_names_event_metric_ids_klaviyo_does_not_know(requests_mock: rm.Mocker) -> None:
    def events(request: Any, context: Any) -> dict[str, Any]:
        if "nope" in request.url:
            context.status_code = 400
            return klaviyo_error(400, "invalid", "Metric IDs ['nope'] do not exist.")["json"]
        return page([])["json"]

    for name in ENDPOINTS:
        requests_mock.get(API + name, **page([]))
    requests_mock.get(API + "events", json=events)

    status = check(config(event_metric_ids=["UqmHb6", "nope"]))

    assert status.status == Status.FAILED.value
    assert status.message == (
        "'event_metric_ids' lists metric id(s) Klaviyo does not know: nope. Take ids from the "
        "metrics stream."
    )


def test_check_reports_a_rejected_key(requests_mock: rm.Mocker) -> None:
    for name in ENDPOINTS:
        requests_mock.get(
            API + name, **klaviyo_error(401, "authentication_failed", "Missing or invalid")
        )

    status = check(config())

    assert status.status == Status.FAILED.value
    assert status.message == "Klaviyo rejected the API key (401). Check the private API key."


def test_check_reports_a_bad_config_without_any_request(requests_mock: rm.Mocker) -> None:
    status = check(config(start_date="31/01/2024"))

    assert status.status == Status.FAILED.value
    assert status.message.startswith("Invalid Klaviyo config: 'start_date' ")
    assert requests_mock.request_history == []


@pytest.mark.parametrize(
    "streams, problem",
    [
        ([("tags", SyncMode.full_refresh)], "The catalog selects stream 'tags'"),
        ([], "The configured catalog selects no stream"),
    ],
)
def test_bad_catalog_fails_before_any_request(
    requests_mock: rm.Mocker, streams: list[tuple[str, SyncMode]], problem: str
) -> None:
    builder = CatalogBuilder()
    for name, mode in streams:
        builder.with_stream(name, mode)

    output = read(SourceKlaviyo(), config(), builder.build())

    assert first_error(output).failure_type == FailureType.config_error
    assert first_error(output).message.startswith(problem)
    assert requests_mock.request_history == []


def test_incremental_request_for_metrics_reads_it_in_full_with_a_warning(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(API + "metrics", **page([metric("M1", "Placed Order")]))
    builder = CatalogBuilder().with_stream("metrics", SyncMode.incremental)

    output = read(SourceKlaviyo(), config(), builder.build())

    assert [m.record.data["id"] for m in output.records] == ["M1"]
    assert output.errors == []
    assert output.is_in_logs("Stream metrics supports full refresh only; reading it in full")


def test_rejected_key_is_a_config_error(requests_mock: rm.Mocker) -> None:
    requests_mock.get(API + "metrics", **klaviyo_error(401, "authentication_failed", "Missing"))

    output = read(SourceKlaviyo(), config(), catalog("metrics"))

    assert first_error(output).failure_type == FailureType.config_error
    assert first_error(output).message.startswith("Klaviyo rejected the API key (401).")
    assert len(requests_mock.request_history) == 1


def test_missing_scope_fails_that_stream_and_the_others_still_sync(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(API + "events", **klaviyo_error(403, "permission_denied", "No access"))
    requests_mock.get(API + "metrics", **page([metric("M1", "Placed Order")]))

    output = read(SourceKlaviyo(), config(num_workers=1), catalog("events", "metrics"))

    assert first_error(output).failure_type == FailureType.config_error
    assert first_error(output).message == (
        "The API key may not read events (403): it lacks the 'events:read' scope. Create a key "
        "with that scope, or deselect the stream."
    )
    assert [m.record.data["id"] for m in output.records] == ["M1"]


def test_bad_request_fails_with_klaviyos_detail(requests_mock: rm.Mocker) -> None:
    requests_mock.get(
        API + "flows",
        **klaviyo_error(400, "invalid", "End date may not be in the future: 2026-12-04"),
    )

    output = read(SourceKlaviyo(), config(), catalog("flows"))

    assert first_error(output).failure_type == FailureType.system_error
    assert first_error(output).message == (
        "Klaviyo refused the flows request (400): End date may not be in the future: 2026-12-04"
    )


@pytest.mark.parametrize(
    "failure",
    [
        HTML_403,
        {"status_code": 500, "text": "oops"},
        {"status_code": 502, "text": "<html>Bad gateway</html>"},
        {"status_code": 503, "json": {"errors": []}},
        {"status_code": 504, "text": ""},
        {"status_code": 200, "text": '{"data": [{"type": "flow", "id": "f1"'},
        {"status_code": 200, "text": "<html>maintenance</html>"},
        {"status_code": 200, "json": {"errors": [], "links": {}}},
        {"exc": requests.exceptions.ConnectTimeout},
    ],
)
def test_transient_failure_is_retried_and_no_record_is_lost(
    requests_mock: rm.Mocker, failure: dict[str, Any], slept: list[float]
) -> None:
    requests_mock.get(
        API + "flows",
        [failure, page([flow("f1", "2024-03-01T00:00:00+00:00")]), page([])],
    )

    output = read(SourceKlaviyo(), config(), catalog("flows"))

    assert [m.record.data["id"] for m in output.records] == ["f1"]
    assert output.errors == []
    assert len(requests_mock.request_history) == 3
    assert len(slept) == 1


@pytest.mark.parametrize(
    "retry_after, expected_sleep",
    [("0", 2.0), ("1", 2.0), ("30", 31.0), (None, 2.0)],
)
def test_rate_limit_waits_what_retry_after_says_plus_the_cdk_margin(
    requests_mock: rm.Mocker, slept: list[float], retry_after: str | None, expected_sleep: float
) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    throttled = klaviyo_error(429, "throttled", "Request was throttled.") | {"headers": headers}
    requests_mock.get(API + "metrics", [throttled, page([metric("M1", "Opened Email")])])

    output = read(SourceKlaviyo(), config(), catalog("metrics"))

    assert [m.record.data["id"] for m in output.records] == ["M1"]
    assert slept == [expected_sleep]


def test_rate_limit_wait_beyond_the_cap_fails_transiently_naming_the_endpoint(
    requests_mock: rm.Mocker, slept: list[float]
) -> None:
    throttled = klaviyo_error(429, "throttled", "Request was throttled.") | {
        "headers": {"Retry-After": "86400"}
    }
    requests_mock.get(API + "events", [throttled])

    output = read(SourceKlaviyo(), config(num_workers=1), catalog("events"))

    assert first_error(output).failure_type == FailureType.transient_error
    assert first_error(output).message.startswith(
        "Klaviyo rate-limited /api/events and asked to wait 86400 s, longer than the 600 s"
    )
    assert slept == []


def test_exhausted_retries_fail_the_stream_after_a_bounded_number_of_tries(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(API + "metrics", status_code=503, text="busy")

    output = read(SourceKlaviyo(), config(), catalog("metrics"))

    assert len(requests_mock.request_history) == 9
    assert output.records == []
    assert first_error(output).failure_type == FailureType.transient_error


def test_api_key_never_appears_in_any_output(requests_mock: rm.Mocker) -> None:
    echo = {"errors": [{"detail": f"bad key {API_KEY}", "status": 400, "code": "invalid"}]}
    requests_mock.get(API + "events", status_code=400, json=echo)
    requests_mock.get(API + "metrics", status_code=401, json=echo)
    requests_mock.get(API + "flows", **HTML_403)

    output = read(
        SourceKlaviyo(),
        config(num_workers=1),
        catalog("events", "metrics", "flows"),
        debug=True,
    )

    assert len(output.errors) >= 3
    assert API_KEY not in everything_printed(output)


def test_records_of_a_stream_are_not_lost_when_a_later_stream_fails(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(API + "events", **page([event("e1", "2024-04-01T17:33:15+00:00")]))
    requests_mock.get(API + "flows", **klaviyo_error(403, "permission_denied", "No"))

    output = read(SourceKlaviyo(), config(num_workers=1), catalog("events", "flows"))

    assert [m.record.data["id"] for m in output.records] == ["e1"]
    assert [e.trace.error.stream_descriptor.name for e in output.errors[:1]] == ["flows"]


def test_final_error_lists_each_failed_stream_by_its_own_message(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(API + "events", **klaviyo_error(401, "authentication_failed", "Missing"))
    requests_mock.get(API + "metrics", **page([metric("M1", "Placed Order")]))

    output = read(SourceKlaviyo(), config(num_workers=1), catalog("events", "metrics"))

    final = output.errors[-1].trace.error
    assert final.failure_type == FailureType.config_error
    assert final.message == (
        "1 stream(s) did not sync. events: Klaviyo rejected the API key (401). Check that it is "
        "a valid private API key that has not been revoked."
    )


def test_state_file_may_hold_whole_state_messages_as_read_prints_them(tmp_path: Any) -> None:
    stream_state = {"states": [{"partition": {}, "cursor": {"datetime": "2024-01-01T00:00:00Z"}}]}
    state = {
        "type": "STREAM",
        "stream": {"stream_descriptor": {"name": "events"}, "stream_state": stream_state},
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps([{"type": "STATE", "state": state}]))

    parsed = SourceKlaviyo.read_state(str(path))

    assert [(m.stream.stream_descriptor.name, m.stream.stream_state.__dict__) for m in parsed] == [
        ("events", stream_state)
    ]


@pytest.mark.parametrize(
    "content, problem",
    [
        ('{"api_key": "pk_secret_in_file"', "is not valid JSON (line 1, column 32)."),
        ('["pk_secret_in_file"]', "must hold a JSON object."),
    ],
)
def test_config_file_that_is_not_an_object_is_a_config_error_that_never_quotes_it(
    tmp_path: Any, content: str, problem: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)

    with pytest.raises(AirbyteTracedException) as raised:
        SourceKlaviyo.read_config(str(path))

    assert raised.value.failure_type == FailureType.config_error
    assert raised.value.message == f"The --config file {path} {problem}"
    assert "pk_secret_in_file" not in str(raised.value.message)
