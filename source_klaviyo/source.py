"""`SourceKlaviyo`: wires a validated config to the four streams and checks the connection.

The source parses the config once (a bad value fails before any request), fixes the sync's
upper time bound once so every stream agrees on it, and shares one rate-limit budget between
all streams. `check` makes one cheap call to each endpoint, so a key that lacks any of the four
read scopes is reported with every missing scope named, not discovered mid-sync.
"""

from __future__ import annotations

import json
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
    AirbyteStateMessageSerializer,
    AirbyteStreamStatus,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteCatalogSerializer,
    ConfiguredAirbyteStream,
    FailureType,
    Status,
    SyncMode,
    Type,
)
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.streams import Stream
from airbyte_cdk.sources.utils.schema_helpers import InternalConfig
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets
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
    # `KlaviyoConfig.parse` validates every config before use, with messages that name the
    # field; the CDK's JSON-schema pass before it would only repeat it less clearly.
    check_config_against_spec = False

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """Report `check_connection`'s reason as written (the CDK's default quotes it)."""
        succeeded, reason = self.check_connection(logger, config)
        if succeeded:
            return AirbyteConnectionStatus(status=Status.SUCCEEDED)
        # Klaviyo's error details are quoted; never let one echo the key back to the user.
        return AirbyteConnectionStatus(status=Status.FAILED, message=filter_secrets(str(reason)))

    @classmethod
    def read_state(cls, state_path: str) -> list[AirbyteStateMessage]:
        """Read `--state`: a JSON array of per-stream state objects.

        Whole STATE messages, as `read` prints them (`{"type": "STATE", "state": {...}}`), are
        accepted too, so the last STATE line of each stream can be passed back as it is.
        """
        if not state_path:
            return []
        raw = _read_json_argument(state_path, "--state")
        if raw in (None, [], {}):
            return []
        if not isinstance(raw, list):
            raise config_error(
                f"The --state file {state_path} must hold a JSON array of per-stream states, "
                'e.g. [{"type": "STREAM", "stream": {...}}]; see README "How incremental syncs '
                'stay exact".'
            )
        unwrapped = [
            item["state"] if isinstance(item, dict) and item.get("type") == "STATE" else item
            for item in raw
        ]
        for item in unwrapped:
            if not isinstance(item, dict) or item.get("type", "STREAM") != "STREAM":
                kind = item.get("type") if isinstance(item, dict) else type(item).__name__
                raise config_error(
                    f"The --state file {state_path} holds a {kind} state; this connector keeps "
                    'per-stream state: a JSON array of {"type": "STREAM", "stream": {...}}.'
                )
        try:
            return [AirbyteStateMessageSerializer.load(item) for item in unwrapped]
        except Exception as error:  # serpyco's errors name the field that did not fit
            raise config_error(
                f"The --state file {state_path} is not a list of Airbyte state messages: {error}"
            ) from None

    @classmethod
    def read_catalog(cls, catalog_path: str) -> ConfiguredAirbyteCatalog:
        raw = _read_json_argument(catalog_path, "--catalog")
        try:
            return ConfiguredAirbyteCatalogSerializer.load(raw)
        except Exception as error:
            raise config_error(
                f"The --catalog file {catalog_path} is not a configured Airbyte catalog: {error}"
            ) from None

    @staticmethod
    def read_config(config_path: str) -> MutableMapping[str, Any]:
        raw = _read_json_argument(config_path, "--config")
        if not isinstance(raw, dict):
            raise config_error(f"The --config file {config_path} must hold a JSON object.")
        return raw

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
        streams = self._build_streams(config)
        events = next(stream for stream in streams if isinstance(stream, Events))
        with session:
            probes = [(stream, *_probe(session, stream)) for stream in streams]
            unknown_metrics = [
                metric_id
                for metric_id in parsed.event_metric_ids
                if _probe(session, events, f"equals(metric_id,'{metric_id}')")[0] == 400
            ]
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
        if unknown_metrics:
            return False, (
                f"'event_metric_ids' lists metric id(s) Klaviyo does not know: "
                f"{', '.join(unknown_metrics)}. Take ids from the metrics stream."
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
        """The CDK's read, with a final error that summarises the failed streams readably.

        The CDK ends a sync in which streams failed with one error quoting each exception's
        internal message (URLs, response bodies, headers). Each stream's own error has already
        been emitted; the final one lists them by their user-facing messages instead.
        """
        self._validate_catalog(logger, config, catalog)
        failures: dict[str, AirbyteTracedException] = {}
        try:
            for message in super().read(logger, config, catalog, state):
                trace = message.trace if message.type == Type.TRACE else None
                error = trace.error if trace is not None else None
                if error is not None and error.stream_descriptor is not None:
                    failures[error.stream_descriptor.name] = AirbyteTracedException(
                        message=error.message, failure_type=error.failure_type
                    )
                yield message
        except AirbyteTracedException:
            if not failures:
                raise
            raise _summary_error(failures) from None

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
        names = [configured.stream.name for configured in catalog.streams]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise config_error(
                f"The configured catalog lists stream(s) {', '.join(repeated)} more than once."
            )
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


def _summary_error(failures: Mapping[str, AirbyteTracedException]) -> AirbyteTracedException:
    """One error naming every failed stream; its type is the one that needs acting on first."""
    kinds = {failure.failure_type for failure in failures.values()}
    failure_type = next(
        kind
        for kind in (
            FailureType.config_error,
            FailureType.transient_error,
            FailureType.system_error,
        )
        if kind in kinds or kind == FailureType.system_error
    )
    details = "; ".join(f"{name}: {failure.message}" for name, failure in failures.items())
    message = f"{len(failures)} stream(s) did not sync. {details}"
    return AirbyteTracedException(
        message=message, internal_message=message, failure_type=failure_type
    )


def _read_json_argument(path: str, option: str) -> Any:
    """Load the JSON file given to `option`, or fail with a config error saying what is wrong.

    The file's content is never quoted: a config file holds the API key.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as error:
        raise config_error(f"Cannot read the {option} file {path}: {error.strerror}.") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise config_error(f"The {option} file {path} is not valid JSON ({where}).") from None
    except (ValueError, UnicodeDecodeError):
        raise config_error(f"The {option} file {path} is not valid UTF-8 JSON.") from None


def _upper_bound() -> datetime:
    """The sync's exclusive upper time bound: a few whole seconds before now."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return now - timedelta(seconds=api.UPPER_BOUND_MARGIN_SECONDS)


def _probe(
    session: requests.Session, stream: KlaviyoStream, condition: str | None = None
) -> tuple[int, str]:
    """Send one minimal request to the stream's endpoint and return (status, detail).

    A 429 or 5xx is tried once more after a short wait; `check` should not fail on one blip.
    """
    params: MutableMapping[str, Any] = {}
    if isinstance(stream, Campaigns):
        params["filter"] = "equals(messages.channel,'email')"
    if condition is not None:
        params["filter"] = condition
    if stream.endpoint.max_page_size is not None:
        params["page[size]"] = 1
    for attempt in (1, 2):
        try:
            response = session.get(
                stream.url_base + stream.endpoint.path,
                params=params,
                headers=dict(stream.request_headers(stream_state=None)),
                timeout=(10.0, api.request_timeout()),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            return 0, f"the request failed ({type(error).__name__})"
        if attempt == 1 and (response.status_code == 429 or response.status_code >= 500):
            time.sleep(min(retry_after_seconds(response) or 1.0, CHECK_RETRY_WAIT))
            continue
        break
    return response.status_code, error_detail(response) if response.status_code != 200 else ""
