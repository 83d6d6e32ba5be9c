"""Injected faults: which requests they hit, how many times, and what the client receives."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from klaviyo_sandbox import Dataset, Fault, SandboxServer
from sandbox_tests.helpers import error, get, headers


def statuses(server: SandboxServer, path: str, count: int) -> list[int]:
    return [get(server, path).status_code for _ in range(count)]


def test_fault_applies_exactly_times(server: SandboxServer) -> None:
    server.add_fault(Fault(path="/api/flows", status=503, times=2))

    seen = statuses(server, "flows", 4)

    assert seen == [503, 503, 200, 200]
    assert server.stats["faults_applied"] == 2


def test_fault_after_skips_matching_requests_first(server: SandboxServer) -> None:
    server.add_fault(Fault(path="/api/flows/", status=500, after=2, times=1))

    seen = statuses(server, "flows", 4)

    assert seen == [200, 200, 500, 200]


def test_fault_with_times_none_never_ends(server: SandboxServer) -> None:
    server.add_fault(Fault(path="*", status=502, times=None))

    assert statuses(server, "metrics", 3) + statuses(server, "events", 2) == [502] * 5


def test_fault_only_hits_its_path(server: SandboxServer) -> None:
    server.add_fault(Fault(path="/api/events", status=500, times=1))

    assert statuses(server, "flows", 1) + statuses(server, "events", 2) == [200, 500, 200]


def test_faults_are_consumed_exactly_under_concurrency(server: SandboxServer) -> None:
    server.add_fault(Fault(path="/api/events", status=503, times=7))

    with ThreadPoolExecutor(max_workers=8) as pool:
        seen = list(pool.map(lambda _: get(server, "events").status_code, range(40)))

    assert sorted(seen) == [200] * 33 + [503] * 7
    assert server.stats["by_status"] == {"200": 33, "503": 7}


@pytest.mark.parametrize(
    ("on", "expected"), [("first_page", [500, 200]), ("next_pages", [200, 500])]
)
def test_fault_on_first_or_next_pages(server: SandboxServer, on: str, expected: list[int]) -> None:
    next_url = get(server, "events", {"page[size]": 5}).json()["links"]["next"]
    server.add_fault(Fault(path="/api/events", status=500, on=on, times=None))

    first = get(server, "events", {"page[size]": 5})
    second = requests.get(next_url, headers=headers(), timeout=10)

    assert [first.status_code, second.status_code] == expected


def test_429_fault_has_retry_after_and_klaviyo_detail(server: SandboxServer) -> None:
    server.add_fault(Fault(path="/api/events", status=429, retry_after=3))

    response = get(server, "events")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    body = error(response)
    assert (body["code"], body["title"], body["detail"]) == (
        "throttled",
        "Request was throttled.",
        "Request was throttled. Expected available in 3 second(s).",
    )
    assert server.stats["throttled"] == 1


def test_html_fault_body(server: SandboxServer) -> None:
    server.add_fault(Fault(path="*", status=403, body="html"))

    response = get(server, "flows")

    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("body", ["truncated", "invalid_json"])
def test_spoiled_200_body_is_not_json(server: SandboxServer, body: str) -> None:
    server.add_fault(Fault(path="/api/events", status=200, body=body))

    spoiled = get(server, "events")
    healthy = get(server, "events")

    assert spoiled.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(spoiled.content)
    assert len(healthy.json()["data"]) == 200


def test_reset_breaks_the_connection_mid_body(server: SandboxServer) -> None:
    server.add_fault(Fault(path="/api/events", action="reset"))

    broken = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
    with pytest.raises(broken):
        get(server, "events")

    assert get(server, "events").status_code == 200


def test_hang_delays_then_answers_and_times_out_a_client(server: SandboxServer) -> None:
    server.add_fault(Fault(path="/api/flows", action="hang", hang_seconds=2.0))

    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.api_url + "flows", headers=headers(), timeout=0.2)

    assert get(server, "flows").status_code == 200


def test_stop_wakes_hanging_requests(dataset: Dataset) -> None:
    server = SandboxServer(dataset).start()
    server.add_fault(Fault(path="*", action="hang", hang_seconds=600))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.api_url + "flows", headers=headers(), timeout=0.2)

    server.stop()

    assert server.stats["requests"] == 1


def test_admin_endpoints_control_faults_and_stats(server: SandboxServer) -> None:
    faults = [{"path": "/api/metrics", "status": 500, "times": 1}]

    added = requests.post(server.url + "/__sandbox/faults", json=faults, timeout=10)
    seen = statuses(server, "metrics", 2)
    stats = requests.get(server.url + "/__sandbox/stats", timeout=10).json()
    reset = requests.post(server.url + "/__sandbox/reset-stats", timeout=10)

    assert added.json() == {"added": 1}
    assert seen == [500, 200]
    assert stats["requests"] == 2
    assert stats["by_path"] == {"/api/metrics": 2}
    assert stats["by_status"] == {"200": 1, "500": 1}
    assert reset.status_code == 200
    assert server.stats["requests"] == 0


def test_admin_rejects_unknown_fault_fields(server: SandboxServer) -> None:
    response = requests.post(
        server.url + "/__sandbox/faults", json=[{"path": "*", "colour": "red"}], timeout=10
    )

    assert response.status_code == 400
    assert "colour" in response.json()["error"]
