"""Cursor pagination: every record exactly once, links that carry the query, tamper detection."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from klaviyo_sandbox import Dataset, SandboxServer
from sandbox_tests.helpers import error, get, headers, walk


@pytest.mark.parametrize("size", [1, 7, 200, 599, 600, 1000])
def test_event_walk_returns_every_event_once_in_order(
    server: SandboxServer, dataset: Dataset, session: requests.Session, size: int
) -> None:
    expected = [event["id"] for event in dataset.resources("events")]

    records = walk(session, server.api_url + "events", {"page[size]": size, "sort": "datetime"})

    assert len(expected) == 600
    assert [record["id"] for record in records] == expected


def test_event_walk_descending_is_the_reverse(
    server: SandboxServer, dataset: Dataset, session: requests.Session
) -> None:
    expected = [event["id"] for event in dataset.resources("events")][::-1]

    records = walk(session, server.api_url + "events", {"page[size]": 150, "sort": "-datetime"})

    assert [record["id"] for record in records] == expected


def test_served_events_equal_dataset_resources(server: SandboxServer, dataset: Dataset) -> None:
    response = get(server, "events", {"page[size]": 1000})

    assert response.json()["data"] == dataset.resources("events")


def test_filtered_walk_returns_exactly_the_window(
    server: SandboxServer, dataset: Dataset, session: requests.Session
) -> None:
    everything = dataset.resources("events")
    low, high = (
        everything[100]["attributes"]["timestamp"],
        everything[400]["attributes"]["timestamp"],
    )
    expected = [e["id"] for e in everything if low <= e["attributes"]["timestamp"] < high]
    params = {
        "filter": f"and(greater-or-equal(timestamp,{low}),less-than(timestamp,{high}))",
        "page[size]": 33,
    }

    records = walk(session, server.api_url + "events", params)

    assert [r["id"] for r in records] == expected
    assert len(expected) == 300


def test_next_link_carries_every_original_parameter(server: SandboxServer) -> None:
    params = {
        "filter": "and(greater-or-equal(datetime,2022-01-01T00:00:00+00:00),has(profile))",
        "sort": "-datetime",
        "page[size]": "5",
        "fields[event]": "datetime,uuid",
    }

    response = get(server, "events", params)

    next_url = response.json()["links"]["next"]
    parts = urlsplit(next_url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == server.api_url + "events"
    assert {k: v for k, v in query.items() if k != "page[cursor]"} == {
        k: [v] for k, v in params.items()
    }
    assert len(query["page[cursor]"]) == 1
    assert "%2B00%3A00" in next_url and "+" not in next_url


def test_next_link_preserves_trailing_slash_and_host(server: SandboxServer) -> None:
    url = f"http://localhost:{server.port}/api/flows/"

    response = requests.get(url, params={"page[size]": 2}, headers=headers(), timeout=10)

    assert response.json()["links"]["next"].startswith(
        f"http://localhost:{server.port}/api/flows/?"
    )


def test_prev_link_returns_the_previous_page(
    server: SandboxServer, session: requests.Session
) -> None:
    first = session.get(
        server.api_url + "events", params={"page[size]": 10}, headers=headers()
    ).json()
    second = session.get(first["links"]["next"], headers=headers()).json()

    back = session.get(second["links"]["prev"], headers=headers()).json()

    assert first["links"]["prev"] is None
    assert [e["id"] for e in back["data"]] == [e["id"] for e in first["data"]]


def test_last_page_has_null_next(server: SandboxServer) -> None:
    response = get(server, "events", {"page[size]": 1000})

    assert response.json()["links"]["next"] is None
    assert len(response.json()["data"]) == 600


@pytest.mark.parametrize(
    ("path", "params", "expected_count"),
    [
        ("campaigns", {"filter": "equals(messages.channel,'email')", "page[size]": 3}, 12),
        ("campaigns", {"filter": "equals(messages.channel,'sms')", "sort": "-updated_at"}, 11),
        ("flows", {"page[size]": 1, "sort": "name"}, 10),
        ("flows", {"filter": "equals(archived,true)", "page[size]": 1}, 2),
        ("metrics", None, 8),
    ],
)
def test_small_collection_walks_return_each_item_once(
    server: SandboxServer,
    session: requests.Session,
    path: str,
    params: dict[str, object] | None,
    expected_count: int,
) -> None:
    records = walk(session, server.api_url + path, params)

    ids = [record["id"] for record in records]
    assert len(ids) == expected_count
    assert len(set(ids)) == expected_count


def test_metrics_come_in_pages_of_200(session: requests.Session) -> None:
    dataset = Dataset.generate(seed=3, campaigns=0, events=10, flows=0, metrics=450)
    with SandboxServer(dataset) as server:
        first = session.get(server.api_url + "metrics", headers=headers()).json()
        records = walk(session, server.api_url + "metrics")

    assert len(first["data"]) == 200
    assert first["meta"] == {"agent_hints": {"next_steps": []}}
    assert sorted(r["id"] for r in records) == sorted(m["id"] for m in dataset.resources("metrics"))


def test_tampered_cursor_is_rejected(server: SandboxServer) -> None:
    next_url = get(server, "events", {"page[size]": 5}).json()["links"]["next"]
    cursor = parse_qs(urlsplit(next_url).query)["page[cursor]"][0]
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")

    response = get(server, "events", {"page[size]": 5, "page[cursor]": tampered})

    assert response.status_code == 400
    assert error(response)["detail"] == "Invalid cursor provided."
    assert error(response)["code"] == "invalid"


def test_cursor_from_another_sort_is_rejected(server: SandboxServer) -> None:
    next_url = get(server, "events", {"page[size]": 5}).json()["links"]["next"]
    cursor = parse_qs(urlsplit(next_url).query)["page[cursor]"][0]

    response = get(server, "events", {"sort": "-datetime", "page[cursor]": cursor})

    assert response.status_code == 400
    assert error(response)["detail"] == "Invalid cursor provided."


@pytest.mark.parametrize("cursor", ["", "not-base64!", "AAAA", "eyJ4Ijog"])
def test_garbage_cursor_is_rejected(server: SandboxServer, cursor: str) -> None:
    response = get(server, "flows", {"page[cursor]": cursor})

    assert response.status_code == 400
    assert error(response)["detail"] == "Invalid cursor provided."
