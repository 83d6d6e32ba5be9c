"""Klaviyo's events pages, decoded straight into the few fields the events stream emits.

An events page holds up to 1,000 events, each with several links and relationship objects the
stream never reads. Decoding into these typed structs skips building those objects at all and
replaces dictionary look-ups by attribute access: it halves the cost per event of the stream's
hottest path. Attributes keep any JSON type (Klaviyo's are documented as nullable); the JSON:API
structure itself (`data` a list of objects with `attributes` and `relationships` objects) must
hold, or the page is malformed like any other unreadable body.
"""

from __future__ import annotations

from typing import Any

import msgspec

from source_klaviyo.jsonapi import TOO_DEEP, MalformedDocument, Page, next_link


class _Identifier(msgspec.Struct):
    id: Any = None


class _Related(msgspec.Struct):
    data: _Identifier | None = None


class _Relationships(msgspec.Struct):
    metric: _Related | None = None
    profile: _Related | None = None


class EventAttributes(msgspec.Struct):
    """An event's attributes, every one nullable as Klaviyo documents them."""

    timestamp: Any = None
    event_properties: Any = None
    datetime: Any = None
    uuid: Any = None


class EventResource(msgspec.Struct):
    """One event as the stream needs it: id, attributes and the related metric and profile."""

    id: Any = None
    attributes: EventAttributes | None = None
    relationships: _Relationships | None = None

    def related_id(self, name: str) -> Any:
        """`relationships.<name>.data.id`, or `None` when Klaviyo gave none."""
        related = getattr(self.relationships, name, None)
        data = related.data if related is not None else None
        return data.id if data is not None else None


class _Links(msgspec.Struct):
    next: Any = None


class _EventsDocument(msgspec.Struct):
    data: list[EventResource]
    links: _Links | None = None


_DECODER = msgspec.json.Decoder(_EventsDocument)


def decode_events_page(body: bytes) -> Page:
    """Decode an events list document into a `Page` of `EventResource`s."""
    try:
        document = _DECODER.decode(body)
    except RecursionError:
        raise MalformedDocument(TOO_DEEP, retryable=False) from None
    except msgspec.ValidationError as error:
        # Valid JSON in the wrong shape: Klaviyo's answer, not a cut connection; no retry.
        raise MalformedDocument(
            f"the body is not an events list document ({error})", retryable=False
        ) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise MalformedDocument(f"the body is not an events list document ({error})") from None
    return Page(document.data, next_link(document.links))
