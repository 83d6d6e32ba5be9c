"""Shared fixtures: a fixed clock, a loopback API root, and builders for Klaviyo pages."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from airbyte_cdk.models import ConfiguredAirbyteCatalog, SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from freezegun import freeze_time

from source_klaviyo.rate_limiting import KlaviyoCallBudget

# Unit tests never leave the process: the API root points at a closed loopback port, and every
# request is answered by requests-mock.
API = "http://127.0.0.1:9/api/"
API_KEY = "pk_unit_test_0123456789abcdef"
NOW = "2026-12-04T12:00:00Z"
# The sync's upper bound: NOW minus the 5 s margin.
UPPER = "2026-12-04T11:59:55Z"
UPPER_EMITTED = "2026-12-04T11:59:55.000000Z"


@pytest.fixture(autouse=True)
def _loopback_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLAVIYO_API_URL", API)


@pytest.fixture
def frozen_now() -> Iterator[None]:
    with freeze_time(NOW):
        yield


@pytest.fixture(autouse=True)
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every backoff sleep instead of waiting (the backoff library's own zero-second
    sleeps, which precede the CDK's real wait, are left out)."""
    waits: list[float] = []

    def record(seconds: float) -> None:
        if seconds:
            waits.append(seconds)

    monkeypatch.setattr("time.sleep", record)
    return waits


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def pacing(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Run the client-side rate limiter on a fake clock, so pacing never waits for real."""
    fake = FakeClock()
    monkeypatch.setattr(
        "source_klaviyo.source.KlaviyoCallBudget",
        functools.partial(KlaviyoCallBudget, clock=fake.clock, sleep=fake.sleep),
    )
    return fake


def config(**overrides: Any) -> dict[str, Any]:
    return {"api_key": API_KEY, "start_date": "2024-01-01T00:00:00Z", **overrides}


def catalog(*streams: str, mode: SyncMode = SyncMode.incremental) -> ConfiguredAirbyteCatalog:
    """A catalog of `streams` in `mode`; metrics, which has no cursor, is always full refresh."""
    builder = CatalogBuilder()
    for name in streams:
        builder.with_stream(name, SyncMode.full_refresh if name == "metrics" else mode)
    return builder.build()


def page(resources: list[Mapping[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    return {
        "json": {
            "data": resources,
            "links": {"self": API + "x", "next": next_url, "prev": None},
        },
        "headers": {"Content-Type": "application/vnd.api+json"},
    }


def raw_page(resources: list[Mapping[str, Any]], next_url: str | None = None) -> bytes:
    return json.dumps({"data": resources, "links": {"self": API, "next": next_url}}).encode()


def klaviyo_error(status: int, code: str, detail: str) -> dict[str, Any]:
    return {
        "status_code": status,
        "json": {
            "errors": [
                {
                    "id": "8f4b0f27-1c1b-4e07-9a0b-1d1d3b3c0a11",
                    "status": status,
                    "code": code,
                    "title": "Klaviyo error",
                    "detail": detail,
                    "source": {"parameter": "filter"},
                    "meta": {},
                }
            ]
        },
        "headers": {"Content-Type": "application/vnd.api+json"},
    }


def event(
    event_id: str,
    when: str,
    properties: Any = None,
    metric_id: str | None = "MtrcA1",
    profile_id: str | None = "01PROFILE",
) -> dict[str, Any]:
    return {
        "type": "event",
        "id": event_id,
        "attributes": {
            "timestamp": 1711992795,
            "event_properties": properties if properties is not None else {"$value": 1},
            "datetime": when,
            "uuid": f"uuid-{event_id}",
        },
        "relationships": {
            "metric": {"data": {"type": "metric", "id": metric_id} if metric_id else None},
            "profile": {"data": {"type": "profile", "id": profile_id} if profile_id else None},
        },
        "links": {"self": f"{API}events/{event_id}/"},
    }


def campaign(campaign_id: str, updated_at: str, **attributes: Any) -> dict[str, Any]:
    base = {
        "name": f"Campaign {campaign_id}",
        "status": "Sent",
        "archived": False,
        "audiences": {"included": ["LstA"], "excluded": None},
        "send_options": {"use_smart_sending": True},
        "tracking_options": None,
        "send_strategy": {"method": "immediate"},
        "created_at": "2024-02-01T10:00:00+00:00",
        "scheduled_at": None,
        "updated_at": updated_at,
        "send_time": None,
    }
    base.update(attributes)
    return {
        "type": "campaign",
        "id": campaign_id,
        "attributes": base,
        "relationships": {"campaign-messages": {"links": {"self": "x", "related": "y"}}},
        "links": {"self": f"{API}campaigns/{campaign_id}/"},
    }


def flow(flow_id: str, updated: str, archived: bool = False) -> dict[str, Any]:
    return {
        "type": "flow",
        "id": flow_id,
        "attributes": {
            "name": f"Flow {flow_id}",
            "status": "live",
            "archived": archived,
            "created": "2023-05-31T06:48:46+00:00",
            "updated": updated,
            "trigger_type": "Metric",
        },
        "links": {"self": f"{API}flows/{flow_id}/"},
    }


def metric(metric_id: str, name: str) -> dict[str, Any]:
    return {
        "type": "metric",
        "id": metric_id,
        "attributes": {
            "name": name,
            "created": "2022-05-31T06:36:45+00:00",
            "updated": "2022-05-31 06:36:45.5+00:00",
            "integration": {"object": "integration", "id": "0eMvjm", "key": "api", "name": "API"},
        },
        "links": {"self": f"{API}metrics/{metric_id}/"},
    }
