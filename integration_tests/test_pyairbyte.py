"""PyAirbyte runs the installed `source-klaviyo` command as a local executable.

PyAirbyte (the `airbyte` package) is large and not a project dependency, so this module is
skipped where it is not importable: the one optional test of the suite. To run it, install
`airbyte` next to pytest in a separate virtualenv and point it at this checkout:

    /tmp/pyairbyte/bin/python -m pytest --noconftest -m pyairbyte \\
        integration_tests/test_pyairbyte.py

(`--noconftest`: the root conftest loads the CDK's standard-test hooks, which PyAirbyte's own
CDK need not have.) The connector command it runs is the project's `.venv/bin/source-klaviyo`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration_tests.acceptance_sandbox import (
    ROOT,
    SANDBOX_CONFIG,
    acceptance_dataset,
    load_json,
)
from klaviyo_sandbox import SandboxServer

# Set before PyAirbyte is imported, which reads them once: offline mode keeps it from fetching
# Airbyte's connector registry (a local executable needs none), and DO_NOT_TRACK from sending
# usage telemetry. Tests reach nothing but 127.0.0.1.
os.environ["AIRBYTE_OFFLINE_MODE"] = "1"
os.environ["DO_NOT_TRACK"] = "1"

airbyte = pytest.importorskip("airbyte", reason="PyAirbyte (`airbyte`) is not installed")
DuckDBCache = pytest.importorskip("airbyte.caches").DuckDBCache

pytestmark = pytest.mark.pyairbyte

CONNECTOR = ROOT / ".venv" / "bin" / "source-klaviyo"


METRICS = [
    ("7b7iPc", "Clicked Email"),
    ("nKmatJ", "Placed Order"),
    ("y6xY3D", "Opened Email"),
]


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """A PyAirbyte source running the project's command against the acceptance sandbox."""
    monkeypatch.chdir(tmp_path)
    with SandboxServer(acceptance_dataset()) as server:
        monkeypatch.setenv("KLAVIYO_API_URL", server.api_url)
        yield airbyte.get_source(
            "source-klaviyo",
            local_executable=str(CONNECTOR),
            config=load_json(SANDBOX_CONFIG),
        )


def test_pyairbyte_checks_and_discovers_through_the_local_executable(source: Any) -> None:
    source.check()

    streams = source.get_available_streams()

    assert streams == ["campaigns", "events", "flows", "metrics"]


def test_pyairbyte_reads_the_sandbox_metrics_into_a_cache(source: Any, tmp_path: Path) -> None:
    cache = DuckDBCache(db_path=tmp_path / "klaviyo.duckdb")
    source.select_streams(["metrics"])

    result = source.read(cache=cache)

    assert sorted((record["id"], record["name"]) for record in result["metrics"]) == METRICS


def test_pyairbyte_streams_the_sandbox_metrics_without_a_cache(source: Any) -> None:
    records = list(source.get_records("metrics"))

    assert sorted((record["id"], record["name"]) for record in records) == METRICS
