"""Specification of `source_klaviyo.errors`: what each answer means and how long each wait is."""

from __future__ import annotations

import json
import logging

import pytest
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.error_handlers import ResponseAction
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_klaviyo.errors import (
    MAX_RETRIES,
    KlaviyoBackoffStrategy,
    KlaviyoErrorHandler,
    retry_after_seconds,
)
from source_klaviyo.jsonapi import Outline, Page, read_outline, read_page
from source_klaviyo.resources import decode_events_page

from .conftest import klaviyo_error, raw_page

LOGGER_NAME = "unit_tests.errors"
JSONAPI = "application/vnd.api+json"
HTML = b"<html><head><title>Attention Required!</title></head><body>blocked</body></html>"


def response(
    status: int,
    body: bytes = b"",
    content_type: str | None = JSONAPI,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    built = requests.Response()
    built.status_code = status
    built._content = body
    if content_type is not None:
        built.headers["Content-Type"] = content_type
    built.headers.update(headers or {})
    return built


def error_body(status: int, detail: str) -> bytes:
    return json.dumps(klaviyo_error(status, "some_code", detail)["json"]).encode()


def handler() -> KlaviyoErrorHandler:
    return KlaviyoErrorHandler("events", "events", "events:read")


def strategy(jitter: float = 1.0) -> KlaviyoBackoffStrategy:
    return KlaviyoBackoffStrategy(logging.getLogger(LOGGER_NAME), "events", jitter=lambda: jitter)


@pytest.mark.parametrize(
    ("answer", "action", "failure_type", "message"),
    [
        pytest.param(
            response(200, raw_page([{"type": "event", "id": "e1"}])),
            ResponseAction.SUCCESS,
            None,
            None,
            id="200-valid",
        ),
        pytest.param(
            response(200, b'{"data":[{"type":"event"'),
            ResponseAction.RETRY,
            FailureType.transient_error,
            "Klaviyo's events answered 200 but the body is not valid JSON",
            id="200-truncated",
        ),
        pytest.param(
            response(200, HTML, "text/html"),
            ResponseAction.RETRY,
            FailureType.transient_error,
            "Klaviyo's events answered 200 but the body is not valid JSON",
            id="200-html",
        ),
        pytest.param(
            response(200, b'{"links":{}}'),
            ResponseAction.RETRY,
            FailureType.transient_error,
            "Klaviyo's events answered 200 but the body is JSON but has no 'data' list.",
            id="200-without-data",
        ),
        pytest.param(
            response(400, error_body(400, "'sort' is not a valid field for the resource 'event'.")),
            ResponseAction.FAIL,
            FailureType.system_error,
            "Klaviyo refused the events request (400): "
            "'sort' is not a valid field for the resource 'event'.",
            id="400",
        ),
        pytest.param(
            response(401, error_body(401, "Incorrect authentication credentials.")),
            ResponseAction.FAIL,
            FailureType.config_error,
            "Klaviyo rejected the API key (401). Check that it is a valid private API key that "
            "has not been revoked.",
            id="401",
        ),
        pytest.param(
            response(403, error_body(403, "You do not have permission to perform this action.")),
            ResponseAction.FAIL,
            FailureType.config_error,
            "The API key may not read events (403): it lacks the 'events:read' scope. Create a "
            "key with that scope, or deselect the stream.",
            id="403-jsonapi",
        ),
        pytest.param(
            response(403, HTML, "text/html"),
            ResponseAction.RETRY,
            FailureType.transient_error,
            "Klaviyo's events answered 403.",
            id="403-html",
        ),
        pytest.param(
            response(404, error_body(404, "Not found.")),
            ResponseAction.FAIL,
            FailureType.system_error,
            "Klaviyo refused the events request (404): Not found.",
            id="404",
        ),
        pytest.param(
            response(408, b""),
            ResponseAction.RETRY,
            FailureType.transient_error,
            "Klaviyo's events answered 408.",
            id="408",
        ),
        pytest.param(
            response(429, error_body(429, "Request was throttled.")),
            ResponseAction.RATE_LIMITED,
            FailureType.transient_error,
            "Klaviyo rate-limited events too often in a row.",
            id="429",
        ),
        pytest.param(
            response(500, error_body(500, "A server error occurred.")),
            ResponseAction.RETRY,
            FailureType.transient_error,
            "Klaviyo's events answered 500.",
            id="500",
        ),
        pytest.param(
            response(502, HTML, "text/html"),
            ResponseAction.RETRY,
            FailureType.transient_error,
            "Klaviyo's events answered 502.",
            id="502",
        ),
        pytest.param(
            response(503, b""),
            ResponseAction.RETRY,
            FailureType.transient_error,
            "Klaviyo's events answered 503.",
            id="503",
        ),
        pytest.param(
            response(504, HTML, "text/html"),
            ResponseAction.RETRY,
            FailureType.transient_error,
            "Klaviyo's events answered 504.",
            id="504",
        ),
    ],
)
def test_each_answer_maps_to_an_action_and_failure_type(
    answer: requests.Response,
    action: ResponseAction,
    failure_type: FailureType | None,
    message: str | None,
) -> None:
    resolution = handler().interpret_response(answer)

    assert resolution.response_action == action
    assert resolution.failure_type == failure_type
    if message is None:
        assert resolution.error_message is None
    else:
        assert resolution.error_message is not None
        assert resolution.error_message.startswith(message)


@pytest.mark.parametrize(
    ("fault", "name"),
    [
        (requests.ConnectionError("refused"), "ConnectionError"),
        (requests.ConnectTimeout("connect timed out"), "ConnectTimeout"),
        (requests.ReadTimeout("read timed out"), "ReadTimeout"),
        (requests.exceptions.ChunkedEncodingError("cut"), "ChunkedEncodingError"),
        (None, "NoneType"),
    ],
)
def test_network_faults_are_retried(fault: Exception | None, name: str) -> None:
    resolution = handler().interpret_response(fault)

    assert resolution.response_action == ResponseAction.RETRY
    assert resolution.failure_type == FailureType.transient_error
    assert resolution.error_message == f"Could not reach Klaviyo's events endpoint: {name}."


def test_a_successful_page_is_checked_and_its_records_are_left_for_the_consumer() -> None:
    page = response(200, raw_page([{"type": "event", "id": "e1"}]))
    decoded: list[bytes] = []

    def decoder(body: bytes) -> Page:
        decoded.append(body)
        return decode_events_page(body)

    resolution = handler().interpret_response(page)
    outline = read_outline(page)
    resources = read_page(page, decoder).resources

    assert resolution.response_action == ResponseAction.SUCCESS
    assert outline == Outline(None)
    assert [resource.id for resource in resources] == ["e1"]
    assert decoded == [page.content]


def test_the_400_message_does_not_quote_an_html_body() -> None:
    page = response(400, HTML, "text/html")

    resolution = handler().interpret_response(page)

    assert resolution.error_message == (
        f"Klaviyo refused the events request (400): a non-JSON:API body (text/html, "
        f"{len(HTML)} bytes)"
    )


def test_retry_limits_are_eight_tries_within_an_hour() -> None:
    errors = handler()

    assert (errors.max_retries, errors.max_time) == (MAX_RETRIES, 3600)
    assert MAX_RETRIES == 8


@pytest.mark.parametrize(
    ("headers", "body", "wait"),
    [
        ({"Retry-After": "0"}, b"", 1.0),
        ({"Retry-After": "1"}, b"", 1.0),
        ({"Retry-After": "30"}, b"", 30.0),
        ({"Retry-After": "2.5"}, b"", 2.5),
        ({"Retry-After": "-4"}, b"", 1.0),
        ({"Retry-After": "600"}, b"", 600.0),
        ({}, error_body(429, "Request was throttled. Expected available in 7 second(s)."), 7.0),
        ({}, error_body(429, "Request was throttled. Expected available in 42 seconds."), 42.0),
        ({"Retry-After": "3"}, error_body(429, "Expected available in 7 seconds."), 3.0),
        ({"Retry-After": "soon"}, error_body(429, "Expected available in 9 seconds."), 9.0),
        ({}, b"", 1.0),
    ],
)
def test_a_429_waits_exactly_as_klaviyo_asks_and_at_least_a_second(
    headers: dict[str, str], body: bytes, wait: float
) -> None:
    throttled = response(429, body, headers=headers)

    waited = strategy().backoff_time(throttled, attempt_count=1)

    assert waited == wait


@pytest.mark.parametrize("huge", ["86400", "601", "inf"])
def test_a_429_asking_for_an_absurd_wait_stops_the_sync_as_transient(huge: str) -> None:
    throttled = response(429, b"", headers={"Retry-After": huge})

    with pytest.raises(AirbyteTracedException) as raised:
        strategy().backoff_time(throttled, attempt_count=1)

    assert raised.value.failure_type == FailureType.transient_error
    assert raised.value.message == (
        f"Klaviyo rate-limited events and asked to wait {float(huge):.0f} s, longer than the "
        "600 s this connector waits. The sync stopped; the next attempt resumes from the last "
        "saved state."
    )


def test_a_429_with_a_nan_retry_after_waits_the_minimum() -> None:
    throttled = response(429, b"", headers={"Retry-After": "nan"})

    waited = strategy().backoff_time(throttled, attempt_count=1)

    assert waited == 1.0


def test_retry_after_seconds_is_none_without_header_or_detail() -> None:
    throttled = response(429, error_body(429, "Request was throttled."))

    asked = retry_after_seconds(throttled)

    assert asked is None


@pytest.mark.parametrize(
    ("attempt", "wait"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 32.0), (7, 60.0), (8, 60.0)],
)
def test_server_errors_back_off_exponentially_up_to_a_minute(attempt: int, wait: float) -> None:
    failed = response(503, b"")

    waited = strategy(jitter=1.0).backoff_time(failed, attempt_count=attempt)

    assert waited == wait


@pytest.mark.parametrize(("jitter", "wait"), [(0.0, 4.0), (0.5, 6.0), (1.0, 8.0)])
def test_jitter_spreads_the_wait_between_half_and_the_full_ceiling(
    jitter: float, wait: float
) -> None:
    failed = response(500, b"")

    waited = strategy(jitter=jitter).backoff_time(failed, attempt_count=4)

    assert waited == wait


def test_a_network_fault_backs_off_like_a_server_error() -> None:
    fault = requests.ReadTimeout("read timed out")

    waited = strategy(jitter=1.0).backoff_time(fault, attempt_count=3)

    assert waited == 4.0


@pytest.mark.parametrize(
    ("answer", "attempt", "logged"),
    [
        (
            response(429, b"", headers={"Retry-After": "30"}),
            2,
            "Klaviyo events answered 429; waiting 31 s as asked (attempt 2)",
        ),
        (
            response(429, b"", headers={"Retry-After": "0"}),
            1,
            "Klaviyo events answered 429; waiting 2 s as asked (attempt 1)",
        ),
        (
            response(502, b""),
            3,
            "Klaviyo events answered 502; retrying in 5.0 s (attempt 3)",
        ),
        (
            requests.ConnectionError("refused"),
            1,
            "Klaviyo events answered ConnectionError; retrying in 2.0 s (attempt 1)",
        ),
    ],
)
def test_each_wait_logs_one_warning_with_status_seconds_and_attempt(
    caplog: pytest.LogCaptureFixture,
    answer: requests.Response | requests.RequestException,
    attempt: int,
    logged: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)

    strategy(jitter=1.0).backoff_time(answer, attempt_count=attempt)

    records = [record for record in caplog.records if record.name == LOGGER_NAME]
    assert [(record.levelno, record.getMessage()) for record in records] == [
        (logging.WARNING, logged)
    ]


def test_an_absurd_wait_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    throttled = response(429, b"", headers={"Retry-After": "86400"})

    with pytest.raises(AirbyteTracedException):
        strategy().backoff_time(throttled, attempt_count=1)

    assert [record for record in caplog.records if record.name == LOGGER_NAME] == []
