"""Airbyte source connector for Klaviyo: campaigns, events, flows and metrics."""

from source_klaviyo.source import SourceKlaviyo

__all__ = ["SourceKlaviyo"]
