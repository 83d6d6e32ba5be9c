"""A local Klaviyo-compatible API (revision 2026-07-15) for testing the source-klaviyo connector.

    from klaviyo_sandbox import Dataset, Fault, SandboxServer

    dataset = Dataset.generate(seed=7, campaigns=40, events=5000, flows=12, metrics=8)
    with SandboxServer(dataset) as server:
        ...  # point the connector at server.api_url with key FULL_KEY

Runtime dependencies: the standard library only.
"""

from __future__ import annotations

from klaviyo_sandbox.data import Dataset
from klaviyo_sandbox.endpoints import REVISION
from klaviyo_sandbox.faults import Fault
from klaviyo_sandbox.server import (
    ALL_SCOPES,
    DEFAULT_KEYS,
    FULL_KEY,
    METRICS_ONLY_KEY,
    NO_EVENTS_KEY,
    SandboxServer,
)

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_KEYS",
    "FULL_KEY",
    "METRICS_ONLY_KEY",
    "NO_EVENTS_KEY",
    "REVISION",
    "Dataset",
    "Fault",
    "SandboxServer",
]
