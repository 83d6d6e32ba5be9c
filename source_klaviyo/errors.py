"""How the connector reacts to each answer Klaviyo (or something in between) can give.

`KlaviyoErrorHandler` decides, per response, between success, retry, rate-limit wait and
failure; `KlaviyoBackoffStrategy` decides how long each wait is. Between them they encode the
rules from Klaviyo's docs and from experience: a 429 is waited out exactly as `Retry-After`
says (unless the wait is absurd), 5xx and network faults are retried with jittered exponential
backoff, 401/403 are configuration problems that no retry fixes, and a body that is not
Klaviyo's JSON:API (a proxy's HTML page, a truncated 200) is never trusted nor parsed twice.
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.error_handlers import (
    BackoffStrategy,
    ErrorHandler,
    ErrorResolution,
    ResponseAction,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_klaviyo.jsonapi import MalformedDocument, error_detail, is_jsonapi_error, read_outline

MAX_RETRIES = 8
MAX_RETRY_TIME = timedelta(hours=1)
# Klaviyo's daily quotas can ask for waits of hours; beyond this the sync stops with a transient
# error and resumes from its last state on the next attempt instead of holding a worker.
MAX_RATE_LIMIT_WAIT_SECONDS = 600.0
MIN_RATE_LIMIT_WAIT_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0

_RETRY_IN_DETAIL = re.compile(r"available in (\d+) second")


class KlaviyoErrorHandler(ErrorHandler):
    """Map one Klaviyo answer to an `ErrorResolution` for the stream reading `endpoint`.

    A 2xx answer is only a success once its body parsed as a list document (`read_outline`):
    a truncated or garbled page is retried here, in the worker that fetched it. Building the
    page's records is left to the consuming thread, so the worker can ask for its next page.
    """

    def __init__(self, stream_name: str, endpoint_path: str, scope: str) -> None:
        self._stream_name = stream_name
        self._endpoint_path = endpoint_path
        self._scope = scope

    @property
    def max_retries(self) -> int:
        return MAX_RETRIES

    @property
    def max_time(self) -> int:
        return int(MAX_RETRY_TIME.total_seconds())

    def interpret_response(
        self, response_or_exception: requests.Response | Exception | None = None
    ) -> ErrorResolution:
        if isinstance(response_or_exception, Exception) or response_or_exception is None:
            return _retry(
                f"Could not reach Klaviyo's {self._endpoint_path} endpoint: "
                f"{type(response_or_exception).__name__}."
            )
        return self._interpret_status(response_or_exception)

    def _interpret_status(self, response: requests.Response) -> ErrorResolution:
        status = response.status_code
        if 200 <= status < 300:
            try:
                read_outline(response)
            except MalformedDocument as error:
                message = f"Klaviyo's {self._endpoint_path} answered {status} but {error}."
                if error.retryable:
                    return _retry(message)
                return _fail(message, FailureType.system_error)
            return ErrorResolution(response_action=ResponseAction.SUCCESS)
        if 300 <= status < 400:
            target = urlsplit(response.headers.get("Location", "")).netloc or "nowhere"
            return _fail(
                f"Klaviyo's {self._endpoint_path} answered a redirect ({status}) to {target}; "
                "the connector follows no redirect, so the API key stays with Klaviyo.",
                FailureType.system_error,
            )

        if status == 429:
            return ErrorResolution(
                response_action=ResponseAction.RATE_LIMITED,
                failure_type=FailureType.transient_error,
                error_message=f"Klaviyo rate-limited {self._endpoint_path} too often in a row.",
            )
        if status == 401:
            return _fail(
                "Klaviyo rejected the API key (401). Check that it is a valid private API key "
                "that has not been revoked.",
                FailureType.config_error,
            )
        if status == 403 and is_jsonapi_error(response):
            return _fail(
                f"The API key may not read {self._stream_name} (403): it lacks the "
                f"'{self._scope}' scope. Create a key with that scope, or deselect the stream.",
                FailureType.config_error,
            )
        if status == 408 or status >= 500 or status == 403:
            # A 403 without Klaviyo's error document comes from a proxy or CDN challenge page.
            return _retry(f"Klaviyo's {self._endpoint_path} answered {status}.")
        return _fail(
            f"Klaviyo refused the {self._stream_name} request ({status}): {error_detail(response)}",
            FailureType.system_error,
        )


class KlaviyoBackoffStrategy(BackoffStrategy):
    """Choose the wait before a retry; the CDK adds one second to every value returned.

    429: exactly `Retry-After` (or the seconds named in Klaviyo's detail), at least one second,
    failing the sync with a transient error when the wait is beyond the cap. Anything else:
    exponential from one second, capped, with jitter so parallel workers do not retry in step.
    """

    def __init__(
        self,
        logger: logging.Logger,
        endpoint_path: str,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._logger = logger
        self._endpoint_path = endpoint_path
        self._jitter = jitter

    def backoff_time(
        self,
        response_or_exception: requests.Response | requests.RequestException | None,
        attempt_count: int,
    ) -> float | None:
        if isinstance(response_or_exception, requests.Response):
            code = response_or_exception.status_code
            status = f"{code} with an unreadable body" if 200 <= code < 300 else str(code)
            if code == 429:
                return self._rate_limit_wait(response_or_exception, attempt_count)
        else:
            status = type(response_or_exception).__name__

        ceiling = min(MAX_BACKOFF_SECONDS, 2.0 ** max(attempt_count - 1, 0))
        wait = ceiling * (0.5 + self._jitter() / 2)
        self._logger.warning(
            "Klaviyo %s answered %s; retrying in %.1f s (attempt %d)",
            self._endpoint_path,
            status,
            wait + 1,
            attempt_count,
        )
        return wait

    def _rate_limit_wait(self, response: requests.Response, attempt_count: int) -> float:
        asked = retry_after_seconds(response)
        if asked is not None and asked > MAX_RATE_LIMIT_WAIT_SECONDS:
            message = (
                f"Klaviyo rate-limited {self._endpoint_path} and asked to wait {asked:.0f} s, "
                f"longer than the {MAX_RATE_LIMIT_WAIT_SECONDS:.0f} s this connector waits. The "
                "sync stopped; the next attempt resumes from the last saved state."
            )
            raise AirbyteTracedException(
                message=message, internal_message=message, failure_type=FailureType.transient_error
            )
        wait = max(asked if asked is not None else 0.0, MIN_RATE_LIMIT_WAIT_SECONDS)
        self._logger.warning(
            "Klaviyo %s answered 429; waiting %.0f s as asked (attempt %d)",
            self._endpoint_path,
            wait + 1,
            attempt_count,
        )
        return wait


def retry_after_seconds(response: requests.Response) -> float | None:
    """Seconds Klaviyo asks us to wait: `Retry-After`, else the number in the 429's detail."""
    header = response.headers.get("Retry-After")
    if header is not None:
        try:
            seconds = float(header)
        except ValueError:
            seconds = math.nan
        if not math.isnan(seconds):
            return max(seconds, 0.0)
    match = _RETRY_IN_DETAIL.search(response.text[:2000])
    return float(match.group(1)) if match else None


def _retry(message: str) -> ErrorResolution:
    return ErrorResolution(
        response_action=ResponseAction.RETRY,
        failure_type=FailureType.transient_error,
        error_message=message,
    )


def _fail(message: str, failure_type: FailureType) -> ErrorResolution:
    return ErrorResolution(
        response_action=ResponseAction.FAIL, failure_type=failure_type, error_message=message
    )
