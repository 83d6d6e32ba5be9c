"""Starting and stopping: 127.0.0.1 only, nothing left behind, and the command line contract."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import requests

from klaviyo_sandbox import Dataset, SandboxServer
from sandbox_tests.helpers import get, headers

ROOT = Path(__file__).resolve().parent.parent


def sandbox_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("klaviyo-sandbox")]


def test_binds_loopback_and_leaves_no_threads(dataset: Dataset) -> None:
    with requests.Session() as session, SandboxServer(dataset) as server:
        session.get(server.api_url + "flows", headers=headers(), timeout=10)  # keep-alive open
        running = sandbox_threads()
        url = server.api_url

    assert url.startswith("http://127.0.0.1:") and url.endswith("/api/")
    assert "klaviyo-sandbox" in running and "klaviyo-sandbox-connection" in running
    assert sandbox_threads() == []


def test_stats_count_paths_statuses_and_concurrency(server: SandboxServer) -> None:
    get(server, "flows")
    get(server, "flows/")
    get(server, "events", key="pk_unknown")

    stats = server.stats

    assert stats == {
        "requests": 3,
        "by_path": {"/api/flows": 2, "/api/events": 1},
        "by_status": {"200": 2, "401": 1},
        "throttled": 0,
        "max_concurrent": 1,
        "faults_applied": 0,
    }


def test_cli_prints_the_url_serves_and_stops_on_sigterm() -> None:
    command = [sys.executable, "-m", "klaviyo_sandbox", "--seed", "7", "--events", "300"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        api_url = line.removeprefix("KLAVIYO_API_URL=")
        page = requests.get(api_url + "events", headers=headers(), timeout=10)
        stats = requests.get(api_url.replace("/api/", "/__sandbox/stats"), timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)

    assert line.startswith("KLAVIYO_API_URL=http://127.0.0.1:")
    assert len(page.json()["data"]) == 200
    assert stats.json()["requests"] == 1
    assert process.returncode == 0
    assert out == ""
    assert json.loads(err)["by_status"] == {"200": 1}
