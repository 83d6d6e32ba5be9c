"""Client-side pacing so that our own concurrency never causes a storm of 429s.

Klaviyo limits each endpoint by tier with two fixed windows, one second and one minute, per
account. `KlaviyoCallBudget` keeps, per endpoint, the send times of recent calls and blocks a
caller until one more call fits in both windows. The windows are counted over a little more
than a second and a minute (`WINDOW_MARGIN`), so that calls whose arrival is delayed on the
way still fit Klaviyo's fixed windows. One budget is shared by every stream and worker of a
sync. Other clients of the same account share Klaviyo's quota too, so 429s can still happen;
the backoff strategy honours their `Retry-After`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from airbyte_cdk.sources.streams.call_rate import AbstractAPIBudget, AbstractCallRatePolicy

from source_klaviyo.api import Tier

WINDOW_MARGIN = 1.1


class _Window:
    """Send times of the last `limit` calls within `span` seconds."""

    def __init__(self, limit: int, span: float) -> None:
        self.limit = limit
        self.span = span
        self.calls: deque[float] = deque()

    def wait_for(self, now: float) -> float:
        # One expression decides both eviction and the wait, so rounding cannot disagree.
        while self.calls and self.calls[0] + self.span - now <= 0:
            self.calls.popleft()
        if len(self.calls) < self.limit:
            return 0.0
        return self.calls[0] + self.span - now


class KlaviyoCallBudget(AbstractAPIBudget):
    """A thread-safe call budget keyed by the Klaviyo endpoint in the request path.

    Requests to a path without a configured tier pass unthrottled.
    """

    def __init__(
        self,
        tiers: Mapping[str, Tier],
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._windows = {
            path: (
                _Window(tier.per_second, 1.0 * WINDOW_MARGIN),
                _Window(tier.per_minute, 60.0 * WINDOW_MARGIN),
            )
            for path, tier in tiers.items()
        }
        self._lock = threading.Lock()
        self._logger = logger
        self._clock = clock
        self._sleep = sleep

    def acquire_call(self, request: Any, block: bool = True, timeout: float | None = None) -> None:
        endpoint = _endpoint_of(request)
        windows = self._windows.get(endpoint)
        if windows is None:
            return
        while True:
            with self._lock:
                now = self._clock()
                wait = max(window.wait_for(now) for window in windows)
                if wait <= 0:
                    for window in windows:
                        window.calls.append(now)
                    return
            self._logger.debug("Pacing %s: waiting %.2f s for Klaviyo's rate limit", endpoint, wait)
            self._sleep(wait)

    def get_matching_policy(self, request: Any) -> AbstractCallRatePolicy | None:
        return None

    def update_from_response(self, request: Any, response: Any) -> None:
        return None


def _endpoint_of(request: Any) -> str:
    url = getattr(request, "url", None) or ""
    path = urlsplit(url).path.rstrip("/")
    return path.rsplit("/", 1)[-1]
