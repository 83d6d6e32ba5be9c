"""Shared fixtures: a small deterministic dataset and a fresh sandbox server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from klaviyo_sandbox import Dataset, SandboxServer


@pytest.fixture
def dataset() -> Dataset:
    return Dataset.generate(seed=7, campaigns=40, events=600, flows=12, metrics=8)


@pytest.fixture
def server(dataset: Dataset) -> Iterator[SandboxServer]:
    with SandboxServer(dataset) as running:
        yield running


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        yield opened
