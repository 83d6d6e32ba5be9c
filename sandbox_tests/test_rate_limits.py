"""Klaviyo's fixed-window rate limits, driven by a fake clock so no test waits or races."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from klaviyo_sandbox import Dataset, SandboxServer
from klaviyo_sandbox.ratelimit import RateLimiter
from sandbox_tests.helpers import error, get


class FakeClock:
    """Seconds that only move when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(600.25)  # a quarter second into a minute


@pytest.fixture
def limited(dataset: Dataset, clock: FakeClock) -> Iterator[SandboxServer]:
    with SandboxServer(dataset, enforce_rate_limits=True, clock=clock) as running:
        yield running


def test_burst_over_the_second_is_429_with_retry_after(limited: SandboxServer) -> None:
    seen = [get(limited, "flows").status_code for _ in range(4)]

    response = get(limited, "flows")

    assert seen == [200, 200, 200, 429]
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert error(response)["detail"] == "Request was throttled. Expected available in 1 second(s)."
    assert limited.stats["throttled"] == 2


def test_admitted_responses_carry_ratelimit_headers(limited: SandboxServer) -> None:
    get(limited, "flows")

    response = get(limited, "flows")

    assert {k: v for k, v in response.headers.items() if k.startswith("RateLimit")} == {
        "RateLimit-Limit": "3, 3;w=1, 60;w=60",
        "RateLimit-Remaining": "58",
        "RateLimit-Reset": "60",
    }


def test_next_second_opens_the_burst_window(limited: SandboxServer, clock: FakeClock) -> None:
    for _ in range(3):
        get(limited, "flows")

    clock.now += 1

    assert get(limited, "flows").status_code == 200


def test_steady_window_waits_for_the_minute(limited: SandboxServer, clock: FakeClock) -> None:
    for second in range(15):
        clock.now = 600.25 + second
        assert get(limited, "accounts").status_code == 200

    clock.now = 615.25
    response = get(limited, "accounts")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "45"  # 660 - 615.25, rounded up


def test_endpoints_have_separate_windows(limited: SandboxServer) -> None:
    for _ in range(3):
        get(limited, "flows")

    assert get(limited, "flows").status_code == 429
    assert get(limited, "metrics").status_code == 200


def test_without_enforcement_nothing_is_throttled(server: SandboxServer) -> None:
    assert {get(server, "accounts").status_code for _ in range(5)} == {200}


@pytest.mark.parametrize(
    ("burst", "steady", "allowed"),
    [(10, 150, 10), (350, 3500, 350), (3, 60, 3), (1, 15, 1)],
)
def test_limiter_admits_exactly_the_burst(burst: int, steady: int, allowed: int) -> None:
    limiter = RateLimiter(lambda: 42.5)

    results = [limiter.acquire("k", burst, steady)[0] for _ in range(allowed + 2)]

    assert results == [None] * allowed + [1, 1]
