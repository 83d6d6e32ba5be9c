"""Klaviyo's list pages, decoded straight into the fields each stream emits.

A page holds up to 1,000 resources (events), each with links and relationship objects the
streams never read. Decoding into these typed structs skips building those objects at all and
replaces dictionary look-ups by attribute access. Members that records carry as JSON text
(`event_properties`, a campaign's `audiences`...) stay Klaviyo's own text (`msgspec.Raw`, written
out by `raw_json_text`) instead of being built as Python objects and serialised again: no number
changes on the way, and the events stream's hottest path costs under half of a plain decode.

Attributes keep any JSON type (Klaviyo documents most as nullable) and unknown members are
ignored; the JSON:API structure itself (`data` a list of objects, `attributes` and
`relationships` objects) must hold, or the page is malformed like any other unreadable body.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from source_klaviyo.jsonapi import (
    JSON_NULL,
    TOO_DEEP,
    MalformedDocument,
    Page,
    PageDecoder,
    next_link,
)

Attributes = TypeVar("Attributes")
Item = TypeVar("Item")


class CampaignAttributes(msgspec.Struct):
    """What the campaigns stream reads of a campaign; JSON-text members stay raw."""

    name: Any = None
    status: Any = None
    archived: Any = None
    audiences: msgspec.Raw = JSON_NULL
    send_options: msgspec.Raw = JSON_NULL
    tracking_options: msgspec.Raw = JSON_NULL
    send_strategy: msgspec.Raw = JSON_NULL
    created_at: Any = None
    scheduled_at: Any = None
    updated_at: Any = None
    send_time: Any = None


class EventAttributes(msgspec.Struct):
    """What the events stream reads of an event; `event_properties` stays raw."""

    timestamp: Any = None
    event_properties: msgspec.Raw = JSON_NULL
    datetime: Any = None
    uuid: Any = None


class FlowAttributes(msgspec.Struct):
    """What the flows stream reads of a flow."""

    name: Any = None
    status: Any = None
    archived: Any = None
    created: Any = None
    updated: Any = None
    trigger_type: Any = None


class MetricAttributes(msgspec.Struct):
    """What the metrics stream reads of a metric; `integration` stays raw."""

    name: Any = None
    created: Any = None
    updated: Any = None
    integration: msgspec.Raw = JSON_NULL


class Resource(msgspec.Struct, Generic[Attributes]):
    """One resource: its id and the attributes its stream reads."""

    id: Any = None
    attributes: Attributes | None = None


class _Identifier(msgspec.Struct):
    id: Any = None


class _Related(msgspec.Struct):
    data: _Identifier | None = None


class _EventRelationships(msgspec.Struct):
    metric: _Related | None = None
    profile: _Related | None = None


class EventResource(msgspec.Struct):
    """One event: id, attributes and the related metric and profile."""

    id: Any = None
    attributes: EventAttributes | None = None
    relationships: _EventRelationships | None = None

    def related_id(self, name: str) -> Any:
        """`relationships.<name>.data.id`, or `None` when Klaviyo gave none."""
        related = getattr(self.relationships, name, None)
        data = related.data if related is not None else None
        return data.id if data is not None else None


class _Links(msgspec.Struct):
    next: Any = None


class _Document(msgspec.Struct, Generic[Item]):
    data: list[Item]
    links: _Links | None = None


def page_decoder(resource: Any, name: str) -> PageDecoder:
    """A decoder of list documents of `name` into `Page`s of `resource` structs."""
    decoder = msgspec.json.Decoder(_Document[resource])

    def decode(body: bytes) -> Page:
        try:
            document = decoder.decode(body)
        except RecursionError:
            raise MalformedDocument(TOO_DEEP, retryable=False) from None
        except msgspec.ValidationError as error:
            # Valid JSON in the wrong shape: Klaviyo's answer, not a cut connection; no retry.
            raise MalformedDocument(
                f"the body is not a list of {name} ({error})", retryable=False
            ) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as error:
            raise MalformedDocument(f"the body is not a list of {name} ({error})") from None
        return Page(document.data, next_link(document.links))

    return decode


decode_campaigns_page = page_decoder(Resource[CampaignAttributes], "campaigns")
decode_events_page = page_decoder(EventResource, "events")
decode_flows_page = page_decoder(Resource[FlowAttributes], "flows")
decode_metrics_page = page_decoder(Resource[MetricAttributes], "metrics")
