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
    ConfiguredAirbyteCatalog,
    Status,
    SyncMode,
)
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams import Stream
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_klaviyo import api
from source_klaviyo.config import KlaviyoConfig, config_error
from source_klaviyo.errors import retry_after_seconds
from source_klaviyo.jsonapi import error_detail
from source_klaviyo.rate_limiting import KlaviyoCallBudget
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
    """Airbyte source for Klaviyo campaigns, events, flows and metrics."""

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
        self._validate_catalog(config, catalog)
        yield from super().read(logger, config, catalog, state)

    def _validate_catalog(
        self, config: Mapping[str, Any], catalog: ConfiguredAirbyteCatalog
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
                raise config_error(
                    f"Stream '{name}' supports full refresh only; set its sync mode accordingly."
                )

    def _build_streams(self, config: Mapping[str, Any]) -> list[KlaviyoStream]:
        parsed = KlaviyoConfig.parse(config)
        authenticator = KlaviyoAuthenticator(parsed.api_key.get_secret_value())
        budget = KlaviyoCallBudget(
            {cls.endpoint.path: cls.endpoint.tier for cls in STREAM_CLASSES},
            logging.getLogger("airbyte"),
        )
        upper_bound = _upper_bound()
        return [cls(parsed, authenticator, budget, upper_bound) for cls in STREAM_CLASSES]


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
