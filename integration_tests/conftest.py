"""Fixtures that start the project's local Klaviyo sandbox on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from klaviyo_sandbox import FULL_KEY, Dataset, SandboxServer

SEED = 11
SIZES = {"campaigns": 30, "events": 2500, "flows": 10, "metrics": 6}
ALL_STREAMS = ("campaigns", "events", "flows", "metrics")


def sandbox_config(**overrides: object) -> dict[str, object]:
    """A config for the sandbox: every channel, so campaigns of all three are read."""
    return {
        "api_key": FULL_KEY,
        "campaign_channels": ["email", "sms", "mobile_push"],
        **overrides,
    }


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[SandboxServer]:
    """One sandbox per module for tests that only read."""
    with SandboxServer(Dataset.generate(SEED, **SIZES)) as server:
        yield server


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A fresh sandbox for tests that change data or inject faults."""
    with SandboxServer(Dataset.generate(SEED, **SIZES)) as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the fault suite's per-scenario counts (`fault_helpers.SCENARIO_LINES`) at the end,
    so one table shows what every scenario expected, delivered and duplicated."""
    from integration_tests.fault_helpers import SCENARIO_LINES

    if SCENARIO_LINES:
        terminalreporter.section("fault scenarios")
        for line in SCENARIO_LINES:
            terminalreporter.write_line(line)
