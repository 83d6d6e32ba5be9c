"""`KlaviyoEntrypoint`: the CDK's entrypoint, with a fast path for pages of records.

`spec`, `check` and `discover` take the CDK's own code path, except that a config is validated
by the connector's rules (`KlaviyoConfig`), whose errors name the field. For `read`, the
entrypoint switches its source to emit `RecordPage`s, counts each page by its length for the
record counts stamped on STATE messages, and writes each page as consecutive JSON lines; every
other message goes through the CDK's serialiser unchanged. See `record_pages` for why.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.logger import PRINT_BUFFER, is_platform_debug_log_enabled
from airbyte_cdk.models import AirbyteMessage, ConnectorSpecification
from airbyte_cdk.sources.connector_state_manager import HashableStreamDescriptor
from airbyte_cdk.sources.utils.schema_helpers import split_config
from airbyte_cdk.utils.constants import ENV_REQUEST_CACHE_PATH

from source_klaviyo.config import KlaviyoConfig
from source_klaviyo.record_pages import RecordPage
from source_klaviyo.source import SourceKlaviyo


class KlaviyoEntrypoint(AirbyteEntrypoint):
    """Runs `spec`, `check`, `discover` as the CDK does, and `read` with record pages."""

    def __init__(self, source: SourceKlaviyo) -> None:
        super().__init__(source)
        self.source: SourceKlaviyo = source

    def run(self, parsed_args: argparse.Namespace) -> Iterable[str]:
        if parsed_args.command != "read":
            yield from super().run(parsed_args)
            return
        yield from self._run_read(parsed_args)

    def _run_read(self, parsed_args: argparse.Namespace) -> Iterator[str]:
        """The CDK's `run` for the read command, with `RecordPage`s written as JSON lines."""
        debug = parsed_args.debug or is_platform_debug_log_enabled()
        self.logger.setLevel(logging.DEBUG if debug else logging.INFO)
        spec: ConnectorSpecification = self.source.spec(self.logger)
        self.source.emit_record_pages = True
        try:
            with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as temp_dir:
                os.environ[ENV_REQUEST_CACHE_PATH] = temp_dir
                config = self.source.configure(
                    self.source.read_config(parsed_args.config), temp_dir
                )
                yield from self._queued_lines()
                catalog = self.source.read_catalog(parsed_args.catalog)
                state = self.source.read_state(parsed_args.state)
                for message in self.read(spec, config, catalog, state):
                    if isinstance(message, RecordPage):
                        if message.records:
                            yield message.to_lines()
                    else:
                        yield AirbyteEntrypoint.airbyte_message_to_string(message)
        finally:
            yield from self._queued_lines()

    def read(
        self, source_spec: ConnectorSpecification, config: Any, catalog: Any, state: list[Any]
    ) -> Iterable[AirbyteMessage]:
        """The CDK's `read`, counting a `RecordPage` as its number of records."""
        self.set_up_secret_filter(config, source_spec.connectionSpecification)
        if self.source.check_config_against_spec:
            self.validate_connection(source_spec, config)
        counts: defaultdict[HashableStreamDescriptor, float] = defaultdict(float)
        for message in self.source.read(self.logger, config, catalog, state):
            if isinstance(message, RecordPage):
                counts[HashableStreamDescriptor(name=message.stream, namespace=None)] += len(
                    message.records
                )
                yield message  # type: ignore[misc]
            else:
                yield self.handle_record_counts(message, counts)
            self._memory_monitor.check_memory_usage()
        for message in self._emit_queued_messages(self.source):
            yield self.handle_record_counts(message, counts)

    @staticmethod
    def validate_connection(source_spec: ConnectorSpecification, config: Any) -> None:
        """Validate the config by the connector's own rules, whose errors name the field and
        the expected form (the CDK's JSON-schema messages name neither)."""
        KlaviyoConfig.parse(split_config(config)[0])

    def _queued_lines(self) -> Iterator[str]:
        for message in self._emit_queued_messages(self.source):
            yield AirbyteEntrypoint.airbyte_message_to_string(message)


def launch(source: SourceKlaviyo, args: list[str]) -> None:
    """Like the CDK's `launch`, through `KlaviyoEntrypoint`."""
    entrypoint = KlaviyoEntrypoint(source)
    parsed_args = entrypoint.parse_args(args)
    with PRINT_BUFFER:
        for text in entrypoint.run(parsed_args):
            # One write per message (or page), newline included, so concurrent writers never
            # interleave inside a line.
            sys.stdout.write(f"{text}\n")
