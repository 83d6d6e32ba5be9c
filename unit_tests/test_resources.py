"""Events pages decoded into typed structs: lenient on attributes, strict on JSON:API shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from source_klaviyo.event_resources import decode_events_page
from source_klaviyo.jsonapi import MalformedDocument


def body(resources: list[Any], links: Any = None) -> bytes:
    return json.dumps({"data": resources, "links": links, "meta": {"unknown": True}}).encode()


def test_events_decode_with_ids_attributes_and_related_ids() -> None:
    event = {
        "type": "event",
        "id": "e1",
        "attributes": {"timestamp": 1, "event_properties": {"n": 10**30}, "datetime": "x"},
        "relationships": {
            "metric": {"data": {"type": "metric", "id": "M1"}, "links": {"self": "a"}},
            "profile": {"data": None},
        },
        "links": {"self": "http://127.0.0.1:9/api/events/e1/"},
    }

    page = decode_events_page(body([event], {"next": "http://127.0.0.1:9/api/events?p=2"}))

    decoded = page.resources[0]
    assert page.next == "http://127.0.0.1:9/api/events?p=2"
    assert (decoded.id, decoded.attributes.timestamp, decoded.attributes.event_properties) == (
        "e1",
        1,
        {"n": 10**30},
    )
    assert (decoded.related_id("metric"), decoded.related_id("profile")) == ("M1", None)


@pytest.mark.parametrize(
    "event",
    [
        {"id": "e2"},
        {"id": "e2", "attributes": None, "relationships": None},
        {"id": "e2", "attributes": {"datetime": 5, "uuid": ["odd"]}, "relationships": {}},
    ],
)
def test_missing_or_oddly_typed_attributes_decode_as_given(event: dict[str, Any]) -> None:
    page = decode_events_page(body([event]))

    decoded = page.resources[0]
    assert decoded.id == "e2"
    assert decoded.related_id("metric") is None
    assert page.next is None


@pytest.mark.parametrize(
    "document",
    [
        b'{"data": {"id": "e1"}}',
        b'{"data": ["e1"]}',
        b'{"data": [{"id": "e1", "relationships": {"metric": "M1"}}]}',
        b'{"data": [{"id": "e1", "attributes": "x"}]}',
        b'{"data": [], "links": "next"}',
        b'{"data": [',
        b"<html>proxy</html>",
    ],
)
def test_a_body_that_breaks_the_json_api_shape_is_malformed(document: bytes) -> None:
    with pytest.raises(MalformedDocument) as raised:
        decode_events_page(document)

    assert str(raised.value).startswith("the body is not an events list document")
