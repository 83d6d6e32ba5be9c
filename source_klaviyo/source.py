"""`SourceKlaviyo`: wires a validated config to the four streams and checks the connection.

The source parses the config once (a bad value fails before any request), fixes the sync's
upper time bound once so every stream agrees on it, and shares one rate-limit budget between
all streams. `check` makes one cheap call to each endpoint, so a key that lacks any of the four
read scopes is reported with every missing scope named, not discovered mid-sync.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, MutableMapping
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteStateMessage,
    AirbyteStreamStatus,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    Status,
    SyncMode,
    Type,
)
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.streams import Stream
from airbyte_cdk.sources.utils.schema_helpers import InternalConfig
from airbyte_cdk.utils.stream_status_utils import (
    as_airbyte_message as stream_status_as_airbyte_message,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_klaviyo import api
from source_klaviyo.config import KlaviyoConfig, config_error
from source_klaviyo.errors import retry_after_seconds
from source_klaviyo.jsonapi import error_detail
from source_klaviyo.rate_limiting import KlaviyoCallBudget
from source_klaviyo.record_pages import RecordPage
from source_klaviyo.streams import (
    Campaigns,
    Events,
    Flows,
    KlaviyoAuthenticator,
    KlaviyoStream,
    Metrics,
)

CHECK_RETRY_WAIT = 10.0
STREAM_CLASSES: tuple[type[KlaviyoStream], ...] = (Campaigns, Events, Flows, Metrics)


class SourceKlaviyo(AbstractSource):
    """Airbyte source for Klaviyo campaigns, events, flows and metrics.

    `emit_record_pages` is switched on by `KlaviyoEntrypoint` only, which knows how to write
    `RecordPage`s; every other caller gets one message per record.
    """

    emit_record_pages = False

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """Report `check_connection`'s reason as written (the CDK's default quotes it)."""
        succeeded, reason = self.check_connection(logger, config)
        if succeeded:
            return AirbyteConnectionStatus(status=Status.SUCCEEDED)
        return AirbyteConnectionStatus(status=Status.FAILED, message=str(reason))

    def check_connection(
        self, logger: logging.Logger, config: Mapping[str, Any]
    ) -> tuple[bool, Any]:
        try:
            parsed = KlaviyoConfig.parse(config)
        except AirbyteTracedException as error:
            return False, error.message
        session = requests.Session()
        session.auth = KlaviyoAuthenticator(parsed.api_key.get_secret_value())
        missing_scopes: list[str] = []
        with session:
            probes = [(stream, *_probe(session, stream)) for stream in self._build_streams(config)]
        for stream, status, detail in probes:
            if status == 401:
                return False, "Klaviyo rejected the API key (401). Check the private API key."
            if status == 403:
                missing_scopes.append(stream.endpoint.scope)
            elif status != 200:
                return False, f"Klaviyo's {stream.endpoint_path} answered {status}: {detail}"
        if missing_scopes:
            return False, (
                "The API key lacks the scope(s) "
                + ", ".join(missing_scopes)
                + ". Create a private key with read access to campaigns, events, flows and metrics."
            )
        return True, None

    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        return list(self._build_streams(config))

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: list[AirbyteStateMessage] | None = None,
    ) -> Iterator[AirbyteMessage]:
        self._validate_catalog(logger, config, catalog)
        yield from super().read(logger, config, catalog, state)

    def _read_stream(
        self,
        logger: logging.Logger,
        stream_instance: Stream,
        configured_stream: ConfiguredAirbyteStream,
        state_manager: ConnectorStateManager,
        internal_config: InternalConfig,
    ) -> Iterator[AirbyteMessage]:
        """Read one stream: the CDK's per-stream loop, taught to pass `RecordPage`s through.

        Same steps as `AbstractSource._read_stream` (incoming state, RUNNING status at the first
        record, queued messages), but a page of records is counted by its length and handed on
        whole rather than converted record by record; see `record_pages`.
        """
        name = configured_stream.stream.name
        state = state_manager.get_stream_state(name, stream_instance.namespace)
        stream_instance.state = state  # type: ignore[attr-defined]
        logger.info("Syncing stream %s from state %s", name, state)
        messages = stream_instance.read(
            configured_stream, logger, self._slice_logger, state, state_manager, internal_config
        )
        records = 0
        for item in messages:
            if isinstance(item, RecordPage):
                message: Any = item
                count = len(item.records)
            else:
                message = self._get_message(item, stream_instance)
                count = 1 if message.type == Type.RECORD else 0
            if count and not records:
                logger.info("Marking stream %s as RUNNING", name)
                yield stream_status_as_airbyte_message(
                    configured_stream.stream, AirbyteStreamStatus.RUNNING
                )
            records += count
            yield from self._emit_queued_messages()
            yield message
        logger.info("Read %d records from %s stream", records, name)

    def _validate_catalog(
        self, logger: logging.Logger, config: Mapping[str, Any], catalog: ConfiguredAirbyteCatalog
    ) -> None:
        streams = {stream.name: stream for stream in self._build_streams(config)}
        if not catalog.streams:
            raise config_error("The configured catalog selects no stream; select at least one.")
        for configured in catalog.streams:
            name = configured.stream.name
            stream = streams.get(name)
            if stream is None:
                raise config_error(
                    f"The catalog selects stream '{name}', which this source does not have "
                    f"(it has {', '.join(sorted(streams))}). Refresh the source schema."
                )
            if configured.sync_mode == SyncMode.incremental and not stream.supports_incremental:
                # PyAirbyte, for one, asks every stream for incremental; a stream without a
                # cursor is then read in full rather than failing the sync.
                logger.warning("Stream %s supports full refresh only; reading it in full", name)

    def _build_streams(self, config: Mapping[str, Any]) -> list[KlaviyoStream]:
        parsed = KlaviyoConfig.parse(config)
        authenticator = KlaviyoAuthenticator(parsed.api_key.get_secret_value())
        budget = KlaviyoCallBudget(
            {cls.endpoint.path: cls.endpoint.tier for cls in STREAM_CLASSES},
            logging.getLogger("airbyte"),
        )
        upper_bound = _upper_bound()
        streams = [cls(parsed, authenticator, budget, upper_bound) for cls in STREAM_CLASSES]
        for stream in streams:
            stream.emit_record_pages = self.emit_record_pages
        return streams


def _upper_bound() -> datetime:
    """The sync's exclusive upper time bound: a few whole seconds before now."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return now - timedelta(seconds=api.UPPER_BOUND_MARGIN_SECONDS)


def _probe(session: requests.Session, stream: KlaviyoStream) -> tuple[int, str]:
    """Send one minimal request to the stream's endpoint and return (status, detail).

    A 429 or 5xx is tried once more after a short wait; `check` should not fail on one blip.
    """
    params: MutableMapping[str, Any] = {}
    if isinstance(stream, Campaigns):
        params["filter"] = "equals(messages.channel,'email')"
    if stream.endpoint.max_page_size is not None:
        params["page[size]"] = 1
    for attempt in (1, 2):
        try:
            response = session.get(
                stream.url_base + stream.endpoint.path,
                params=params,
                headers=dict(stream.request_headers(stream_state=None)),
                timeout=(10.0, api.request_timeout()),
            )
        except requests.RequestException as error:
            return 0, f"the request failed ({type(error).__name__})"
        if attempt == 1 and (response.status_code == 429 or response.status_code >= 500):
            time.sleep(min(retry_after_seconds(response) or 1.0, CHECK_RETRY_WAIT))
            continue
        break
    return response.status_code, error_detail(response) if response.status_code != 200 else ""
