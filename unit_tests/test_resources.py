"""Pages decoded into typed structs: lenient on attributes, strict on JSON:API shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from source_klaviyo.jsonapi import MalformedDocument, raw_json_text
from source_klaviyo.resources import (
    decode_campaigns_page,
    decode_events_page,
    decode_flows_page,
    decode_metrics_page,
)


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
    assert (decoded.id, decoded.attributes.timestamp) == ("e1", 1)
    assert bytes(decoded.attributes.event_properties) == b'{"n": %d}' % 10**30
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

    assert str(raised.value).startswith("the body is not a list of events")


def test_campaigns_decode_with_json_members_kept_as_klaviyos_text() -> None:
    campaign = {
        "type": "campaign",
        "id": "c1",
        "attributes": {
            "name": "Sale \u2028 now",
            "archived": False,
            "audiences": {"included": ["L1"], "excluded": []},
            "send_options": {"use_smart_sending": True, "rate": 0.1000000000000000055},
            "updated_at": "2024-01-02T03:04:05+00:00",
            "not_read": {"x": 1},
        },
    }

    page = decode_campaigns_page(body([campaign]))

    decoded = page.resources[0]
    assert (decoded.id, decoded.attributes.name, decoded.attributes.archived) == (
        "c1",
        "Sale \u2028 now",
        False,
    )
    assert raw_json_text(decoded.attributes.audiences) == '{"included":["L1"],"excluded":[]}'
    assert raw_json_text(decoded.attributes.send_options) == (
        '{"use_smart_sending":true,"rate":0.1}'
    )
    assert raw_json_text(decoded.attributes.tracking_options) is None
    assert decoded.attributes.updated_at == "2024-01-02T03:04:05+00:00"


def test_a_decimal_klaviyo_writes_with_more_digits_than_a_float_keeps_them_all() -> None:
    document = (
        b'{"data":[{"type":"metric","id":"m1","attributes":'
        b'{"integration":{"fee":0.1000000000000000055511151231257827,"n":10000000000000000000001}}}]}'
    )

    page = decode_metrics_page(document)

    assert raw_json_text(page.resources[0].attributes.integration) == (
        '{"fee":0.1000000000000000055511151231257827,"n":10000000000000000000001}'
    )


def test_flows_decode_scalars_as_given_and_ignore_members_they_do_not_read() -> None:
    flow = {
        "type": "flow",
        "id": "f1",
        "attributes": {"name": "Welcome", "status": "live", "trigger_type": None, "x": [1]},
        "relationships": {"tags": {"data": []}},
    }

    page = decode_flows_page(body([flow], {"next": None}))

    decoded = page.resources[0]
    assert (decoded.id, decoded.attributes.name, decoded.attributes.status) == (
        "f1",
        "Welcome",
        "live",
    )
    assert decoded.attributes.trigger_type is None
    assert page.next is None


@pytest.mark.parametrize(
    ("decode", "name"),
    [
        (decode_campaigns_page, "campaigns"),
        (decode_flows_page, "flows"),
        (decode_metrics_page, "metrics"),
    ],
)
def test_attributes_that_are_not_an_object_are_malformed_without_retry(
    decode: Any, name: str
) -> None:
    with pytest.raises(MalformedDocument) as raised:
        decode(b'{"data":[{"id":"x","attributes":"text"}]}')

    assert str(raised.value) == (
        f"the body is not a list of {name} "
        "(Expected `object | null`, got `str` - at `$.data[0].attributes`)"
    )
    assert raised.value.retryable is False
