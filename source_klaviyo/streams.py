"""The four Klaviyo streams and the base they share.

`KlaviyoStream` owns everything that is the same for every endpoint: authentication headers, the
pinned `revision`, JSON:API `links.next` pagination, error handling and backoff. The stream
classes below it only say which endpoint they read, which query the first page sends and how one
Klaviyo resource becomes one flat record.

Incremental streams (`KlaviyoIncrementalStream`) keep one cursor per partition (for campaigns a
channel and archived flag, for flows an archived flag, for events a metric id when the user
filters by metric). Each partition is read as one slice bounded by `[cursor, upper bound)`, sorted
ascending on the cursor field, so after any emitted page the saved cursor is exactly "every
record before this value has been emitted". Events backfills split the slice into time windows
read concurrently; `windows` keeps that promise across them. The upper bound is a few seconds
before the sync started: Klaviyo rejects later bounds, and a cursor can never run ahead of the
data it covers.

State, per stream::

    {"states": [{"partition": {"channel": "email", "archived": false},
                 "cursor": {"updated_at": "2026-01-31T12:00:00.000000Z"}}]}

A cursor resumes with `greater-or-equal`, so records that share the cursor's instant are read
again rather than skipped (at-least-once; deduplicate by `id`). A legacy flat state such as
`{"updated_at": "..."}` is accepted and applied to every partition.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit

import requests
from airbyte_cdk.models import (
    AirbyteMessage,
    AirbyteStateBlob,
    AirbyteStateMessage,
    AirbyteStateType,
    AirbyteStreamState,
    FailureType,
    StreamDescriptor,
    SyncMode,
    Type,
)
from airbyte_cdk.sources.streams import CheckpointMixin
from airbyte_cdk.sources.streams.call_rate import AbstractAPIBudget
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.streams.http import HttpStream
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from source_klaviyo import api
from source_klaviyo.config import MAX_WORKERS, KlaviyoConfig
from source_klaviyo.datetimes import (
    format_datetime,
    format_filter_literal,
    is_emitted_form,
    normalize_datetime,
    parse_datetime,
)
from source_klaviyo.errors import KlaviyoBackoffStrategy, KlaviyoErrorHandler
from source_klaviyo.jsonapi import MalformedDocument, Page, raw_json_text, read_outline, read_page
from source_klaviyo.record_pages import RecordPage
from source_klaviyo.resources import (
    CampaignAttributes,
    EventAttributes,
    EventResource,
    FlowAttributes,
    MetricAttributes,
    Resource,
    decode_campaigns_page,
    decode_events_page,
    decode_flows_page,
    decode_metrics_page,
)
from source_klaviyo.windows import Window, WindowedReader, split_range

# Event ranges up to this long are read as one window with no probe: small incremental syncs
# stay one or two requests.
SINGLE_WINDOW_RANGE = timedelta(days=1)
MIN_WINDOW = timedelta(hours=1)
WINDOWS_PER_WORKER = 4

Partition = Mapping[str, Any]
PartitionKey = tuple[tuple[str, Any], ...]


class KlaviyoAuthenticator(AuthBase):
    """Sets `Authorization: Klaviyo-API-Key <key>`; its repr never shows the key."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Klaviyo-API-Key {api_key}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "KlaviyoAuthenticator(api_key=****)"


class KlaviyoStream(HttpStream, ABC):
    """Base of every Klaviyo list stream: one endpoint, JSON:API pages, flat records.

    Later pages request `links.next` verbatim: it already carries the filter, sort and cursor, so
    they send no params of their own. The link must stay on the API's own origin; a link to any
    other host is refused so the API key is never sent there.
    """

    endpoint: ClassVar[api.Endpoint]
    primary_key = "id"
    # Set by the source: hand pages to the entrypoint whole (see `record_pages`).
    emit_record_pages = False

    def __init__(
        self,
        config: KlaviyoConfig,
        authenticator: AuthBase,
        api_budget: AbstractAPIBudget | None,
        upper_bound: datetime,
    ) -> None:
        self._config = config
        self._upper_bound = upper_bound
        self._api_url = api.api_url()
        super().__init__(authenticator=authenticator, api_budget=api_budget)  # type: ignore[arg-type]
        # Concurrent event workers share this session; give it a connection per worker.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=MAX_WORKERS)
        for prefix in ("https://", "http://"):
            self._http_client._session.mount(prefix, adapter)

    @property
    def url_base(self) -> str:
        return self._api_url

    @property
    def endpoint_path(self) -> str:
        """The endpoint as users and Klaviyo's docs name it, e.g. `/api/events`."""
        return f"/api/{self.endpoint.path}"

    def path(
        self,
        *,
        stream_state: Mapping[str, Any] | None = None,
        stream_slice: Mapping[str, Any] | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> str:
        if next_page_token:
            return str(next_page_token["next"])
        return self.endpoint.path

    def request_headers(
        self,
        stream_state: Mapping[str, Any] | None,
        stream_slice: Mapping[str, Any] | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        return {
            "revision": api.REVISION,
            "Accept": "application/vnd.api+json",
            "User-Agent": api.user_agent(),
        }

    def request_params(
        self,
        stream_state: Mapping[str, Any] | None,
        stream_slice: Mapping[str, Any] | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> MutableMapping[str, Any]:
        if next_page_token:
            return {}
        return self.first_page_params(stream_slice or {})

    def request_kwargs(
        self,
        stream_state: Mapping[str, Any] | None,
        stream_slice: Mapping[str, Any] | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        # No redirects: a redirected request could carry the key, or read data, off Klaviyo.
        return {"timeout": (10.0, api.request_timeout()), "allow_redirects": False}

    @abstractmethod
    def first_page_params(self, stream_slice: Mapping[str, Any]) -> MutableMapping[str, Any]:
        """Query parameters of a slice's first page (filter, sort, page size)."""

    @abstractmethod
    def to_record(self, resource: Any, stream_slice: Mapping[str, Any]) -> dict[str, Any]:
        """Flatten one Klaviyo resource (a struct from `decode_body`) into this stream's record."""

    def next_page_token(self, response: requests.Response) -> Mapping[str, Any] | None:
        link = read_outline(response).next
        if link is None:
            return None
        if link == response.request.url:
            raise _stream_error(
                f"Klaviyo's links.next for {self.name} points back to the page just read; "
                "following it would loop forever.",
                FailureType.system_error,
            )
        if urlsplit(link)[:2] != urlsplit(self._api_url)[:2]:
            raise _stream_error(
                f"Klaviyo's links.next for {self.name} points to another origin "
                f"({urlsplit(link).netloc or 'no host'}); refusing to send the API key there.",
                FailureType.system_error,
            )
        return {"next": link}

    def parse_response(
        self,
        response: requests.Response,
        *,
        stream_state: Mapping[str, Any],
        stream_slice: Mapping[str, Any] | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Iterable[Mapping[str, Any]]:
        slice_ = stream_slice or {}
        replaced = read_outline(response).replaced
        if replaced:
            self.logger.warning(
                "Klaviyo's %s sent %d string escape(s) of half a UTF-16 surrogate pair, which "
                "no UTF-8 text can hold; each became U+FFFD (the replacement character)",
                self.endpoint_path,
                replaced,
            )
        flattening: Any = None  # the resource being flattened, for the error message
        try:
            for resource in read_page(response, self.decode_body).resources:
                if type(resource.id) is not str:
                    raise _stream_error(
                        f"Klaviyo's {self.endpoint_path} returned a resource without a string "
                        "id; the page cannot be read without losing records.",
                        FailureType.system_error,
                    )
                flattening = resource
                yield self.to_record(resource, slice_)
                flattening = None
        except MalformedDocument as error:
            # The error handler retried what a retry can fix; this page's shape is Klaviyo's.
            where = "" if flattening is None else f" (in {self.name} record {flattening.id})"
            raise _stream_error(
                f"Klaviyo's {self.endpoint_path} answered {response.status_code} but "
                f"{error}{where}.",
                FailureType.system_error,
            ) from None

    @abstractmethod
    def decode_body(self, body: bytes) -> Page:
        """Decode a page body into this stream's typed resources (see `resources`)."""

    def get_error_handler(self) -> KlaviyoErrorHandler:
        return KlaviyoErrorHandler(self.name, self.endpoint_path, self.endpoint.scope)

    def get_backoff_strategy(self) -> KlaviyoBackoffStrategy:
        return KlaviyoBackoffStrategy(self.logger, self.endpoint_path)


class KlaviyoIncrementalStream(KlaviyoStream, CheckpointMixin, ABC):
    """A stream read in `[cursor, upper bound)` slices, one per partition, sorted on the cursor."""

    cursor_field: ClassVar[str]  # type: ignore[misc]
    _state_cache: dict[str, Any] | None

    def __init__(
        self,
        config: KlaviyoConfig,
        authenticator: AuthBase,
        api_budget: AbstractAPIBudget | None,
        upper_bound: datetime,
    ) -> None:
        self._set_cursors({})
        self._upper_bound_text = format_datetime(upper_bound)
        super().__init__(config, authenticator, api_budget, upper_bound)

    @abstractmethod
    def partitions(self) -> list[Partition]:
        """The partitions this sync reads, each with its own cursor, in reading order."""

    def _state_message(self) -> AirbyteMessage:
        """A STATE message for the current cursors, emitted after every page that moved one.

        The CDK itself checkpoints only at the end of each slice; a slice can be thousands of
        pages, so the stream checkpoints its own progress in between.
        """
        return AirbyteMessage(
            type=Type.STATE,
            state=AirbyteStateMessage(
                type=AirbyteStateType.STREAM,
                stream=AirbyteStreamState(
                    stream_descriptor=StreamDescriptor(name=self.name, namespace=self.namespace),
                    stream_state=AirbyteStateBlob(self.state),
                ),
            ),
        )

    def lookback(self) -> timedelta:
        """How far behind its cursor each partition is re-read (late-arriving data)."""
        return timedelta(0)

    @property
    def state(self) -> MutableMapping[str, Any]:
        # The CDK reads the state after every record; rebuild it only when a cursor moved.
        if self._state_cache is None:
            self._state_cache = {
                "states": [
                    {"partition": dict(partition), "cursor": {self.cursor_field: cursor}}
                    for partition in self.partitions()
                    if (cursor := self._cursors.get(_key(partition)))
                ]
            }
        return self._state_cache

    @state.setter
    def state(self, value: MutableMapping[str, Any]) -> None:
        cursors = self._parse_state(value)
        for key, cursor in cursors.items():
            if cursor > self._upper_bound_text:
                self.logger.warning(
                    "Saved %s cursor %s is after this sync's upper bound; lowering it to %s",
                    self.name,
                    cursor,
                    self._upper_bound_text,
                )
                cursors[key] = self._upper_bound_text
        self._set_cursors(cursors)

    def _set_cursors(self, cursors: dict[PartitionKey, str]) -> None:
        self._cursors = cursors
        self._state_cache = None

    def _set_cursor(self, key: PartitionKey, cursor: str) -> None:
        self._cursors[key] = cursor
        self._state_cache = None

    def stream_slices(
        self,
        *,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[StreamSlice | None]:
        if sync_mode == SyncMode.full_refresh:
            self._set_cursors({})
        for partition in self.partitions():
            key = _key(partition)
            lower = self._config.start_date
            saved = self._cursors.get(key)
            if saved is not None:
                lower = max(lower, parse_datetime(saved) - self.lookback())
            if lower >= self._upper_bound:
                continue
            yield StreamSlice(
                partition=dict(partition),
                cursor_slice={
                    "start": format_filter_literal(lower),
                    "end": format_filter_literal(self._upper_bound),
                },
            )

    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_slice: Mapping[str, Any] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[StreamData]:
        slice_ = (
            stream_slice
            if isinstance(stream_slice, StreamSlice)
            else StreamSlice(partition={}, cursor_slice=dict(stream_slice or {}))
        )
        key = _key(slice_.partition)
        start, end = parse_datetime(slice_["start"]), parse_datetime(slice_["end"])
        reader: WindowedReader[requests.Response] = WindowedReader(
            self.windows(slice_, start, end),
            lambda window: self._read_window(slice_, window),
            self.workers(),
        )
        count = 0
        for index, response in reader:
            page = list(self.parse_response(response, stream_state={}, stream_slice=slice_))
            if self.emit_record_pages:
                yield RecordPage(self.name, page)  # type: ignore[misc]
            else:
                yield from page
            count += len(page)
            self._mark_emitted(reader, index, page)
            cursor = reader.progress.cursor()
            if cursor is not None:
                cursor = cursor if isinstance(cursor, str) else format_datetime(cursor)
                if cursor != self._cursors.get(key):
                    self._set_cursor(key, cursor)
                    yield self._state_message()
        # Every window below the upper bound has been read.
        self._set_cursor(key, self._upper_bound_text)
        self.logger.info(
            "Read %d %s records for %s in [%s, %s) over %d window(s)",
            count,
            self.name,
            slice_.partition or "all",
            slice_["start"],
            slice_["end"],
            len(reader.windows),
        )

    def windows(self, stream_slice: StreamSlice, start: datetime, end: datetime) -> list[Window]:
        """The time windows a slice is read in; by default the whole slice at once."""
        return [Window(start, end)]

    def workers(self) -> int:
        """How many windows are read at once."""
        return 1

    def _read_window(
        self, stream_slice: StreamSlice, window: Window
    ) -> Iterator[requests.Response]:
        """Yield the window's pages, following `links.next` until it is null.

        Runs in a worker thread and yields the responses unparsed (their bodies checked by the
        error handler): building records is left to the consuming thread, so the worker asks for
        its next page at once instead of after parsing this one.
        """
        window_slice = StreamSlice(
            partition=stream_slice.partition,
            cursor_slice={
                "start": format_filter_literal(window.start),
                "end": format_filter_literal(window.end),
            },
        )
        token: Mapping[str, Any] | None = None
        followed: set[str] = set()
        while True:
            _, response = self._fetch_next_page(window_slice, {}, token)
            yield response
            token = self.next_page_token(response)
            if not token:
                return
            if token["next"] in followed:
                raise _stream_error(
                    f"Klaviyo's links.next for {self.name} leads back to a page already read; "
                    "following it would loop forever.",
                    FailureType.system_error,
                )
            followed.add(token["next"])

    def _mark_emitted(
        self, reader: WindowedReader[requests.Response], index: int, page: list[Any]
    ) -> None:
        if not page:
            return
        value = page[-1].get(self.cursor_field)
        if not is_emitted_form(value):
            return
        ceiling = format_datetime(reader.windows[index].end)
        reader.mark_emitted(index, min(value, ceiling))

    @abstractmethod
    def partition_filter(self, stream_slice: Mapping[str, Any]) -> list[str]:
        """Filter conditions that select the slice's partition (strings quoted)."""

    def first_page_params(self, stream_slice: Mapping[str, Any]) -> MutableMapping[str, Any]:
        """The partition's conditions and `[start, end)` on the cursor, sorted ascending on it."""
        field = self.cursor_field
        conditions = [
            *self.partition_filter(stream_slice),
            f"greater-or-equal({field},{stream_slice['start']})",
            f"less-than({field},{stream_slice['end']})",
        ]
        return {
            "filter": ",".join(conditions),
            "sort": field,
            "page[size]": self.endpoint.max_page_size,
        }

    def _parse_state(self, value: Any) -> dict[PartitionKey, str]:
        if not value:
            return {}
        if not isinstance(value, Mapping):
            raise self._state_error("it is not a JSON object")
        if "states" not in value:
            if set(value) != {self.cursor_field}:
                raise self._state_error(
                    f"expected {{'states': [...]}} or {{'{self.cursor_field}': '<datetime>'}}"
                )
            cursor = self._parse_cursor(value[self.cursor_field])
            return {_key(partition): cursor for partition in self.partitions()}
        entries = value["states"]
        if not isinstance(entries, list):
            raise self._state_error("'states' is not a list")
        cursors: dict[PartitionKey, str] = {}
        for entry in entries:
            if (
                not isinstance(entry, Mapping)
                or not isinstance(entry.get("partition"), Mapping)
                or not isinstance(entry.get("cursor"), Mapping)
                or self.cursor_field not in entry["cursor"]
            ):
                raise self._state_error(
                    "each entry of 'states' must be "
                    f"{{'partition': {{...}}, 'cursor': {{'{self.cursor_field}': '<datetime>'}}}}"
                )
            if not all(_is_scalar(item) for item in entry["partition"].values()):
                raise self._state_error("partition values must be strings or booleans")
            cursors[_key(entry["partition"])] = self._parse_cursor(
                entry["cursor"][self.cursor_field]
            )
        return cursors

    def _parse_cursor(self, raw: Any) -> str:
        try:
            return format_datetime(parse_datetime(raw))
        except ValueError as error:
            raise self._state_error(f"cursor {self.cursor_field}: {error}") from None

    def _state_error(self, problem: str) -> AirbyteTracedException:
        return _stream_error(
            f"The saved state of stream {self.name} is invalid: {problem}. Fix the state or "
            "reset the stream to sync it from the start date.",
            FailureType.config_error,
        )


class Campaigns(KlaviyoIncrementalStream):
    """Campaigns from `GET /api/campaigns`, one partition per channel and archived flag.

    Klaviyo lists no campaign without `equals(messages.channel,...)` and no archived campaign
    unless asked with `equals(archived,true)`; the resource carries no channel of its own, so
    each record is tagged with the channel it was listed under.
    """

    endpoint = api.CAMPAIGNS
    cursor_field = "updated_at"

    def partitions(self) -> list[Partition]:
        return [
            {"channel": channel, "archived": archived}
            for channel in self._config.campaign_channels
            for archived in (False, True)
        ]

    def partition_filter(self, stream_slice: Mapping[str, Any]) -> list[str]:
        archived = "true" if stream_slice["archived"] else "false"
        return [
            f"equals(messages.channel,'{stream_slice['channel']}')",
            f"equals(archived,{archived})",
        ]

    def decode_body(self, body: bytes) -> Page:
        return decode_campaigns_page(body)

    def to_record(
        self, resource: Resource[CampaignAttributes], stream_slice: Mapping[str, Any]
    ) -> dict[str, Any]:
        attributes = resource.attributes or CampaignAttributes()
        return {
            "id": resource.id,
            "name": attributes.name,
            "status": attributes.status,
            "archived": attributes.archived,
            "audiences": raw_json_text(attributes.audiences),
            "send_options": raw_json_text(attributes.send_options),
            "tracking_options": raw_json_text(attributes.tracking_options),
            "send_strategy": raw_json_text(attributes.send_strategy),
            "created_at": normalize_datetime(attributes.created_at),
            "scheduled_at": normalize_datetime(attributes.scheduled_at),
            "updated_at": normalize_datetime(attributes.updated_at),
            "send_time": normalize_datetime(attributes.send_time),
            "channel": stream_slice["channel"],
        }


class Events(KlaviyoIncrementalStream):
    """Events from `GET /api/events`, oldest first, with their metric and profile ids.

    The ids come from `relationships.metric.data.id` and `relationships.profile.data.id`, which
    Klaviyo fills without `include`. Events arrive late, so each incremental run re-reads
    `events_lookback_window` hours behind the cursor. With `event_metric_ids`, one partition
    (and one query with `equals(metric_id,...)`) per metric.
    """

    endpoint = api.EVENTS
    cursor_field = "datetime"

    def partitions(self) -> list[Partition]:
        if not self._config.event_metric_ids:
            return [{}]
        return [{"metric_id": metric_id} for metric_id in self._config.event_metric_ids]

    def lookback(self) -> timedelta:
        return timedelta(hours=self._config.events_lookback_window)

    def workers(self) -> int:
        return self._config.num_workers

    def windows(self, stream_slice: StreamSlice, start: datetime, end: datetime) -> list[Window]:
        """Split a long range into windows for the workers; short ranges stay one window.

        The range first shrinks to the span of the matching events: two concurrent requests
        with `page[size]=1` find the oldest and the newest. An account whose events start in
        2024 spends no requests on 2012, and one whose events (or one metric's) stopped a year
        ago leaves no worker with empty windows while others still have pages to read. One
        last window, from just after the newest event to the end, reads what arrives meanwhile.
        """
        if self._config.num_workers == 1 or end - start <= SINGLE_WINDOW_RANGE:
            return [Window(start, end)]
        with ThreadPoolExecutor(2, thread_name_prefix="klaviyo-probe") as pool:
            (any_old, oldest), (any_new, newest) = pool.map(
                lambda sort: self._edge_event(stream_slice, sort), ("datetime", "-datetime")
            )
        if not any_old and not any_new:
            return []
        # A probe that found nothing, an unreadable datetime or one out of the range leaves that
        # side where it was.
        low, high = start, end
        if oldest is not None and oldest < end:
            low = max(start, oldest.replace(microsecond=0))
        if newest is not None and newest < end - timedelta(seconds=1):
            high = newest.replace(microsecond=0) + timedelta(seconds=1)
        windows = split_range(low, high, self._config.num_workers * WINDOWS_PER_WORKER, MIN_WINDOW)
        tail_start = windows[-1].end if windows else low
        return windows + ([Window(tail_start, end)] if tail_start < end else [])

    def _edge_event(self, stream_slice: StreamSlice, sort: str) -> tuple[bool, datetime | None]:
        """Whether any event matches, and the `datetime` of the first in `sort` order (`None`
        when it cannot be read)."""
        params = {**self.first_page_params(stream_slice), "sort": sort, "page[size]": 1}
        _, response = self._http_client.send_request(
            http_method="GET",
            url=self._join_url(self.url_base, self.endpoint.path),
            request_kwargs=self.request_kwargs(stream_state=None),
            headers=dict(self.request_headers(stream_state=None)),
            params=params,
        )
        records = list(self.parse_response(response, stream_state={}, stream_slice=stream_slice))
        if not records:
            return False, None
        try:
            return True, parse_datetime(records[0]["datetime"])
        except (KeyError, TypeError, ValueError):
            return True, None

    def partition_filter(self, stream_slice: Mapping[str, Any]) -> list[str]:
        if "metric_id" not in stream_slice:
            return []
        return [f"equals(metric_id,'{stream_slice['metric_id']}')"]

    def decode_body(self, body: bytes) -> Page:
        return decode_events_page(body)

    def to_record(self, resource: EventResource, stream_slice: Mapping[str, Any]) -> dict[str, Any]:
        attributes = resource.attributes or EventAttributes()
        return {
            "id": resource.id,
            "timestamp": attributes.timestamp,
            "event_properties": raw_json_text(attributes.event_properties),
            "datetime": normalize_datetime(attributes.datetime),
            "uuid": attributes.uuid,
            "metric_id": resource.related_id("metric"),
            "profile_id": resource.related_id("profile"),
        }


class Flows(KlaviyoIncrementalStream):
    """Flows from `GET /api/flows`, one partition per archived flag (archived ones are hidden
    unless asked for with `equals(archived,true)`)."""

    endpoint = api.FLOWS
    cursor_field = "updated"

    def partitions(self) -> list[Partition]:
        return [{"archived": False}, {"archived": True}]

    def partition_filter(self, stream_slice: Mapping[str, Any]) -> list[str]:
        return [f"equals(archived,{'true' if stream_slice['archived'] else 'false'})"]

    def decode_body(self, body: bytes) -> Page:
        return decode_flows_page(body)

    def to_record(
        self, resource: Resource[FlowAttributes], stream_slice: Mapping[str, Any]
    ) -> dict[str, Any]:
        attributes = resource.attributes or FlowAttributes()
        return {
            "id": resource.id,
            "name": attributes.name,
            "status": attributes.status,
            "archived": attributes.archived,
            "created": normalize_datetime(attributes.created),
            "updated": normalize_datetime(attributes.updated),
            "trigger_type": attributes.trigger_type,
        }


class Metrics(KlaviyoStream):
    """Metric definitions from `GET /api/metrics`, read in full every sync.

    Klaviyo offers no date filter or sort here, and every event references a metric, so no metric
    is ever dropped for being older than `start_date`. Not resumable: a restart reads them again.
    """

    endpoint = api.METRICS

    @property
    def is_resumable(self) -> bool:
        return False

    def first_page_params(self, stream_slice: Mapping[str, Any]) -> MutableMapping[str, Any]:
        return {}

    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_slice: Mapping[str, Any] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Mapping[str, Any]]:
        count = 0
        records = super().read_records(sync_mode, cursor_field, stream_slice, stream_state)
        for record in cast(Iterable[Mapping[str, Any]], records):
            count += 1
            yield record
        self.logger.info("Read %d metrics records", count)

    def decode_body(self, body: bytes) -> Page:
        return decode_metrics_page(body)

    def to_record(
        self, resource: Resource[MetricAttributes], stream_slice: Mapping[str, Any]
    ) -> dict[str, Any]:
        attributes = resource.attributes or MetricAttributes()
        return {
            "id": resource.id,
            "name": attributes.name,
            "created": normalize_datetime(attributes.created),
            "updated": normalize_datetime(attributes.updated),
            "integration": raw_json_text(attributes.integration),
        }


def _key(partition: Partition) -> PartitionKey:
    return tuple(sorted(partition.items()))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int))


def _stream_error(message: str, failure_type: FailureType) -> AirbyteTracedException:
    return AirbyteTracedException(
        message=message, internal_message=message, failure_type=failure_type
    )
