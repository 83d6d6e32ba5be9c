"""Specification of `KlaviyoCallBudget`: per-endpoint pacing over two windows, with a fake clock."""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from collections.abc import Iterator

import pytest
import requests

from source_klaviyo.api import Tier
from source_klaviyo.rate_limiting import KlaviyoCallBudget

API = "http://127.0.0.1:9/api/"
LOGGER = logging.getLogger("unit_tests.rate_limiting")
GRID = 1024


class FakeClock:
    """A monotonic clock that only moves when a caller sleeps; safe to share between threads.

    `oversleep` makes each sleep last a little longer than asked, as real sleeps do, and keeps
    every reading on a grid of 1/1024 s.
    """

    def __init__(self, yield_on_read: bool = False, oversleep: bool = False) -> None:
        self.now = 0.0
        self._yield_on_read = yield_on_read
        self._oversleep = oversleep
        self.sleeps: list[float] = []
        self._lock = threading.Lock()
        self._last_read: dict[int, float] = {}

    def __call__(self) -> float:
        with self._lock:
            self._last_read[threading.get_ident()] = self.now
            now = self.now
        if self._yield_on_read:
            os.sched_yield()  # give another thread the chance to act between read and use
        return now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if self._oversleep:
                self.now += (math.floor(seconds * GRID) + 1) / GRID
            else:
                self.now += seconds

    def last_read_by_this_thread(self) -> float:
        with self._lock:
            return self._last_read[threading.get_ident()]


def budget(clock: FakeClock, **tiers: Tier) -> KlaviyoCallBudget:
    return KlaviyoCallBudget(tiers, LOGGER, clock=clock, sleep=clock.sleep)


def get(path: str) -> requests.PreparedRequest:
    return requests.Request("GET", API + path).prepare()


def call(calls: KlaviyoCallBudget, clock: FakeClock, path: str, times: int) -> list[float]:
    """Acquire `times` calls one after another; return the clock at each grant."""
    granted = []
    for _ in range(times):
        calls.acquire_call(get(path))
        granted.append(clock())
    return granted


def test_calls_within_both_limits_do_not_sleep() -> None:
    clock = FakeClock()
    calls = budget(clock, events=Tier(per_second=3, per_minute=60))

    granted = call(calls, clock, "events", 3)

    assert granted == [0.0, 0.0, 0.0]
    assert clock.sleeps == []


def test_the_call_beyond_the_per_second_limit_waits_for_the_widened_window() -> None:
    clock = FakeClock()
    calls = budget(clock, events=Tier(per_second=3, per_minute=60))

    granted = call(calls, clock, "events", 4)

    assert granted == [0.0, 0.0, 0.0, 1.1]
    assert clock.sleeps == [1.1]


def test_the_wait_counts_from_the_oldest_call_in_the_window() -> None:
    clock = FakeClock()
    calls = budget(clock, events=Tier(per_second=2, per_minute=60))
    calls.acquire_call(get("events"))
    clock.sleep(0.5)
    calls.acquire_call(get("events"))
    clock.sleeps.clear()

    calls.acquire_call(get("events"))

    assert clock.sleeps == [pytest.approx(0.6)]
    assert clock() == pytest.approx(1.1)


def test_calls_after_the_window_has_passed_do_not_sleep() -> None:
    clock = FakeClock()
    calls = budget(clock, events=Tier(per_second=2, per_minute=60))
    call(calls, clock, "events", 2)
    clock.sleep(1.1)
    clock.sleeps.clear()

    granted = call(calls, clock, "events", 2)

    assert granted == [1.1, 1.1]
    assert clock.sleeps == []


def test_the_per_minute_limit_holds_once_the_second_windows_are_spent() -> None:
    clock = FakeClock()
    calls = budget(clock, flows=Tier(per_second=3, per_minute=5))

    granted = call(calls, clock, "flows", 6)

    assert granted == [0.0, 0.0, 0.0, 1.1, 1.1, 66.0]
    assert clock.sleeps == [1.1, pytest.approx(64.9)]


def test_a_full_minute_window_blocks_even_when_its_oldest_calls_expire_right_now() -> None:
    clock = FakeClock()
    calls = budget(clock, events=Tier(per_second=10, per_minute=2))
    clock.now = 1.1
    call(calls, clock, "events", 2)
    clock.now = 67.1

    granted = call(calls, clock, "events", 3)

    assert granted == pytest.approx([67.1, 67.1, 133.1])


def test_endpoints_have_independent_budgets() -> None:
    clock = FakeClock()
    calls = budget(
        clock,
        events=Tier(per_second=1, per_minute=60),
        flows=Tier(per_second=1, per_minute=60),
    )
    calls.acquire_call(get("events"))

    calls.acquire_call(get("flows"))
    calls.acquire_call(get("campaigns"))

    assert clock.sleeps == []


@pytest.mark.parametrize(
    "unknown_url",
    [API + "profiles", API + "events/01HQ/", API, "http://127.0.0.1:9/", ""],
)
def test_paths_without_a_tier_pass_unthrottled(unknown_url: str) -> None:
    clock = FakeClock()
    calls = budget(clock, events=Tier(per_second=1, per_minute=1))
    request = requests.Request("GET", unknown_url) if unknown_url else object()

    for _ in range(5):
        calls.acquire_call(request)

    assert clock.sleeps == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/api/events?x=1",
        "http://127.0.0.1:9/api/events/",
        "http://127.0.0.1:9/api/events/?page%5Bcursor%5D=abc&filter=less-than(datetime,x)",
        "http://127.0.0.1:9/api/events",
    ],
)
def test_the_endpoint_is_the_last_segment_of_the_url_path(url: str) -> None:
    clock = FakeClock()
    calls = budget(clock, events=Tier(per_second=1, per_minute=60))
    calls.acquire_call(get("events"))

    calls.acquire_call(requests.Request("GET", url).prepare())

    assert clock.sleeps == [1.1]


def test_a_wait_is_logged_at_debug_with_the_endpoint(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER.name)
    clock = FakeClock()
    calls = budget(clock, events=Tier(per_second=1, per_minute=60))

    call(calls, clock, "events", 2)

    records = [record for record in caplog.records if record.name == LOGGER.name]
    assert [(record.levelno, record.getMessage()) for record in records] == [
        (logging.DEBUG, "Pacing events: waiting 1.10 s for Klaviyo's rate limit")
    ]


def test_the_budget_has_no_cdk_policy_and_ignores_responses() -> None:
    calls = budget(FakeClock(), events=Tier(per_second=1, per_minute=60))

    policy = calls.get_matching_policy(get("events"))
    updated = calls.update_from_response(get("events"), requests.Response())

    assert (policy, updated) == (None, None)


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads as often as possible, so that an unguarded check-then-append would race."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_threads_sharing_a_budget_never_exceed_either_limit() -> None:
    per_second, per_minute, threads, calls_each = 3, 20, 8, 5
    clock = FakeClock(yield_on_read=True, oversleep=True)
    calls = budget(clock, events=Tier(per_second=per_second, per_minute=per_minute))
    granted: list[float] = []
    granted_lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        for _ in range(calls_each):
            calls.acquire_call(get("events"))
            with granted_lock:
                granted.append(clock.last_read_by_this_thread())

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)

    assert not any(thread.is_alive() for thread in pool)
    times = sorted(granted)
    assert len(times) == threads * calls_each
    assert times[:per_second] == [0.0] * per_second
    assert all(
        times[i + per_second] - times[i] >= 1.1 - 1e-9 for i in range(len(times) - per_second)
    )
    assert all(
        times[i + per_minute] - times[i] >= 66.0 - 1e-9 for i in range(len(times) - per_minute)
    )
