"""Console entry point: `source-klaviyo spec|check|discover|read ...`."""

from __future__ import annotations

import sys

from source_klaviyo.entrypoint import launch
from source_klaviyo.source import SourceKlaviyo


def run() -> None:
    launch(SourceKlaviyo(), sys.argv[1:])
