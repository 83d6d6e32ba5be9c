"""The generated account: deterministic, awkward on purpose, cheap at a million events, mutable."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import requests

from klaviyo_sandbox import Dataset, SandboxServer
from sandbox_tests.helpers import get, headers, walk


def test_same_seed_gives_the_same_data() -> None:
    first = Dataset.generate(seed=11, campaigns=30, events=300, flows=9, metrics=5)
    second = Dataset.generate(seed=11, campaigns=30, events=300, flows=9, metrics=5)
    other = Dataset.generate(seed=12, campaigns=30, events=300, flows=9, metrics=5)

    for kind in ("campaigns", "events", "flows", "metrics", "accounts"):
        assert first.resources(kind) == second.resources(kind)
    assert first.resources("events") != other.resources("events")


def test_same_seed_serves_byte_equal_pages() -> None:
    bodies = []
    for _ in range(2):
        with SandboxServer(Dataset.generate(seed=5, events=50), port=0) as server:
            url = server.api_url + "events?page%5Bsize%5D=20"
            page = requests.get(url, headers=headers(), timeout=10)
            bodies.append(page.content.replace(str(server.port).encode(), b"PORT"))

    assert bodies[0] == bodies[1]


def test_event_datetimes_never_decrease_and_share_seconds(dataset: Dataset) -> None:
    stamps = [e["attributes"]["timestamp"] for e in dataset.resources("events")]

    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 200  # groups of three events share a second
    assert stamps[0] == 1_609_459_200  # 2021-01-01T00:00:00Z


def test_million_events_are_cheap_and_the_last_page_is_right() -> None:
    dataset = Dataset.generate(seed=7, events=1_000_000)

    with SandboxServer(dataset) as server:
        body = get(server, "events", {"sort": "-datetime", "page[size]": 1000}).json()
        first = get(server, "events", {"page[size]": 1}).json()

    assert dataset.event_count == 1_000_000
    assert len(body["data"]) == 1000
    assert body["data"][0]["attributes"]["timestamp"] == dataset.event_micros(999_999) // 10**6
    assert body["data"][0]["attributes"]["datetime"].startswith("2024-12-31")
    assert body["data"][-1]["id"] > first["data"][0]["id"]
    assert body["links"]["next"] is not None


def test_generated_data_is_awkward(dataset: Dataset) -> None:
    campaigns = [c["attributes"] for c in dataset.resources("campaigns")]
    flows = [f["attributes"] for f in dataset.resources("flows")]
    events = dataset.resources("events")
    raw_events = json.dumps(events, ensure_ascii=False, separators=(",", ":"))
    by_id = {r.id: r.values for r in dataset.records("campaigns")}
    metrics = dataset.resources("metrics")

    assert {v["messages.channel"] for v in by_id.values()} == {"email", "sms", "mobile_push"}
    assert {c["archived"] for c in campaigns} == {True, False}
    assert {c["send_strategy"]["method"] for c in campaigns} == {
        "static",
        "smart_send_time",
        "throttled",
        "immediate",
        "ab_test_campaign",
        "unsupported",
    }
    assert any(c["tracking_options"] is None for c in campaigns)
    assert any(c["scheduled_at"] is None for c in campaigns)
    assert any(c["send_time"] is None for c in campaigns)
    stamps = [c["created_at"] for c in campaigns] + [c["updated_at"] for c in campaigns]
    assert any("T" in s and "." not in s for s in stamps)
    assert any("T" in s and "." in s for s in stamps)
    assert any(" " in s for s in stamps)
    assert {f["trigger_type"] for f in flows} == {
        "Metric",
        "Added to List",
        "Unconfigured",
        "Date Based",
        "Price Drop",
        "Low Inventory",
    }
    assert {f["status"] for f in flows} == {"live", "manual", "draft"}
    assert any(e["relationships"]["profile"]["data"] is None for e in events)
    assert "123456789012345678901234567890" in raw_events
    for fragment in ("🎉", "שלום", "\u2028", '"empty":{}', '"$value":null'):
        assert fragment in raw_events
    assert any(" " in e["attributes"]["datetime"] for e in events)
    assert all(m["attributes"]["integration"]["object"] == "integration" for m in metrics)


def test_late_events_appear_in_order_for_a_running_server(
    server: SandboxServer, dataset: Dataset, session: requests.Session
) -> None:
    at = datetime(2022, 6, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    window = {
        "filter": "and(greater-or-equal(datetime,2022-06-01T12:00:00Z),"
        "less-than(datetime,2022-06-01T12:00:01Z))",
    }
    before = walk(session, server.api_url + "events", window)

    added = dataset.add_events(3, at=at)
    after = walk(session, server.api_url + "events", window)
    everything = walk(session, server.api_url + "events", {"page[size]": 1000})

    assert before == []
    assert [e["id"] for e in after] == [e["id"] for e in added]
    assert after[0]["attributes"]["datetime"] in (
        "2022-06-01 12:00:00.123456+00:00",
        "2022-06-01T12:00:00.123456+00:00",
    )
    assert len(everything) == 603
    stamps = [e["attributes"]["timestamp"] for e in everything]
    assert stamps == sorted(stamps)


def test_touch_moves_a_campaign_into_a_later_window(
    server: SandboxServer, dataset: Dataset
) -> None:
    email = next(
        r
        for r in dataset.records("campaigns")
        if r.values["messages.channel"] == "email" and not r.values["archived"]
    )
    window = (
        "and(equals(messages.channel,'email'),greater-or-equal(updated_at,2026-01-01T00:00:00Z))"
    )

    before = get(server, "campaigns", {"filter": window}).json()["data"]
    touched = dataset.touch("campaigns", email.id, updated_at=datetime(2026, 2, 3, 4, 5, 6, 700000))
    after = get(server, "campaigns", {"filter": window}).json()["data"]

    assert before == []
    assert after == [touched]
    assert touched["attributes"]["updated_at"] == "2026-02-03T04:05:06.700000+00:00"
    assert touched["attributes"]["name"].endswith(" (edited)")


def test_touch_changes_a_flow(dataset: Dataset) -> None:
    flow = dataset.resources("flows")[0]

    touched = dataset.touch("flows", flow["id"], updated_at=datetime(2026, 3, 1), name="Renamed")

    assert touched["attributes"]["updated"] == "2026-03-01T00:00:00+00:00"
    assert touched["attributes"]["name"] == "Renamed"
    assert dataset.resources("flows")[0] == touched


def test_add_creates_new_items_served_immediately(server: SandboxServer, dataset: Dataset) -> None:
    at = datetime(2026, 4, 1, 9, 30, tzinfo=timezone.utc)

    campaign = dataset.add("campaigns", at=at, channel="sms", name="Brand new")
    flow = dataset.add("flows", at=at, trigger_type="Metric")
    metric = dataset.add("metrics", at=at, name="Custom metric")
    sms = get(server, "campaigns", {"filter": "equals(messages.channel,'sms')"}).json()["data"]
    flows = get(server, "flows").json()["data"]
    metrics = get(server, "metrics").json()["data"]

    assert campaign in sms
    assert campaign["attributes"]["created_at"].replace(" ", "T") == "2026-04-01T09:30:00+00:00"
    assert campaign["attributes"]["archived"] is False
    assert flow in flows
    assert metric in metrics
    assert len(metrics) == 9
