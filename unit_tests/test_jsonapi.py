"""Specification of `source_klaviyo.jsonapi`: exact numbers, strict documents, plain errors."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
import requests

from source_klaviyo import jsonapi
from source_klaviyo.jsonapi import (
    MalformedDocument,
    Outline,
    Page,
    encode_json,
    error_detail,
    is_jsonapi_error,
    load_json,
    next_link,
    raw_json_text,
    read_outline,
    read_page,
)
from source_klaviyo.resources import decode_events_page

LIST_BODY = b'{"data":[{"type":"event","id":"e1"}],"links":{"next":"http://127.0.0.1:9/api/x"}}'


def response(body: bytes, status: int = 200, content_type: str | None = None) -> requests.Response:
    built = requests.Response()
    built.status_code = status
    built._content = body
    if content_type is not None:
        built.headers["Content-Type"] = content_type
    return built


@pytest.mark.parametrize(
    "wide_integer",
    [
        123456789012345678901234567890,
        -(10**30),
        18446744073709551616,
        -18446744073709551616,
        10**100,
    ],
)
def test_integers_beyond_64_bits_survive_load_and_encode_exactly(wide_integer: int) -> None:
    body = b'{"data":[{"attributes":{"value":%d}}]}' % wide_integer

    loaded = load_json(body)
    encoded = encode_json(loaded["data"][0]["attributes"])

    assert loaded["data"][0]["attributes"]["value"] == wide_integer
    assert type(loaded["data"][0]["attributes"]["value"]) is int
    assert encoded == b'{"value":%d}' % wide_integer


@pytest.mark.parametrize("edge", [18446744073709551615, -9223372036854775808, 9223372036854775807])
def test_integers_at_the_64_bit_edges_stay_exact(edge: int) -> None:
    loaded = load_json(b"[%d]" % edge)

    assert loaded == [edge]
    assert type(loaded[0]) is int


@pytest.mark.parametrize("below_int64", [-9223372036854775809, -9999999999999999999])
def test_negative_19_digit_integers_below_int64_stay_exact(below_int64: int) -> None:
    loaded = load_json(b"[%d]" % below_int64)

    assert loaded == [below_int64]
    assert type(loaded[0]) is int


def test_load_json_agrees_with_the_standard_library_on_an_ordinary_document() -> None:
    body = b'{"data":[{"id":"01HQ","n":1711992795,"p":{"$value":19.99,"items":["a",null]}}]}'

    loaded = load_json(body)

    assert loaded == json.loads(body)


def test_read_page_returns_the_resources_and_the_next_link() -> None:
    page = response(LIST_BODY)

    decoded = read_page(page, decode_events_page)

    assert [resource.id for resource in decoded.resources] == ["e1"]
    assert decoded.next == "http://127.0.0.1:9/api/x"


def test_read_page_decodes_each_response_once() -> None:
    page = response(LIST_BODY)
    decoded: list[bytes] = []

    def counting_decoder(body: bytes) -> Page:
        decoded.append(body)
        return decode_events_page(body)

    first = read_page(page, counting_decoder)
    second = read_page(page, counting_decoder)

    assert second is first
    assert decoded == [LIST_BODY]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "the body is not valid JSON"),
        (b'{"data":[{"type":"event","id":"e1"},{"ty', "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b'{"data":["caf\xc3', "the body is not valid JSON"),  # cut inside a character
        (b'{"errors":[]}', "the body is JSON but has no 'data' list"),
        (b'{"data":{"type":"event","id":"e1"}}', "the body is JSON but has no 'data' list"),
        (b'{"data":null}', "the body is JSON but has no 'data' list"),
        (b'[{"data":[]}]', "the body is JSON but has no 'data' list"),
        (b'{"data":[],"links":"next"}', "the body's 'links' member is not an object"),
        (b'{"data":[],"links":[]}', "the body's 'links' member is not an object"),
    ],
)
def test_bodies_that_are_not_list_documents_are_rejected_with_the_reason(
    body: bytes, reason: str
) -> None:
    page = response(body)

    with pytest.raises(MalformedDocument) as raised:
        read_outline(page)

    assert str(raised.value).startswith(reason)
    assert raised.value.retryable is True


def test_read_outline_returns_the_next_link_without_building_the_resources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = response(LIST_BODY)
    checked: list[bytes] = []
    check = jsonapi.decode_outline
    monkeypatch.setattr(jsonapi, "decode_outline", lambda body: checked.append(body) or check(body))

    first = read_outline(page)
    second = read_outline(page)

    assert first == Outline("http://127.0.0.1:9/api/x")
    assert second is first
    assert checked == [LIST_BODY]


def test_read_outline_checks_the_syntax_inside_the_resources_it_skips() -> None:
    page = response(b'{"data":[{"type":"event","id":"e1","attributes":{"x":[1,,2]}}]}')

    with pytest.raises(MalformedDocument) as raised:
        read_outline(page)

    assert str(raised.value) == "the body is not valid JSON (DecodeError)"


def test_read_outline_rejects_a_deeply_nested_body_without_retry() -> None:
    page = response(b'{"data":' + b"[" * 100_000 + b"1" + b"]" * 100_000 + b"}")

    with pytest.raises(MalformedDocument) as raised:
        read_outline(page)

    assert (str(raised.value), raised.value.retryable) == (jsonapi.TOO_DEEP, False)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b'{"a": 1, "b": [true, null, 2.50]}', '{"a":1,"b":[true,null,2.50]}'),
        (
            b'{"price":0.1000000000000000055511151231257827}',
            '{"price":0.1000000000000000055511151231257827}',
        ),
        (b'{"wide":123456789012345678901234567890}', '{"wide":123456789012345678901234567890}'),
        (
            rb'{"name":"caf\u00e9 \ud83d\ude00","raw":"\u2028"}',
            r'{"name":"caf\u00e9 \ud83d\ude00","raw":"\u2028"}',
        ),
        (b'{"line":"a\xe2\x80\xa8b"}', '{"line":"a\u2028b"}'),
        (b"[]", "[]"),
        (b'"plain"', '"plain"'),
    ],
)
def test_raw_json_text_keeps_klaviyos_own_text_compacted(raw: bytes, text: str) -> None:
    value = msgspec.json.decode(b'{"v":%s}' % raw, type=dict[str, msgspec.Raw])["v"]

    written = raw_json_text(value)

    assert written == text


@pytest.mark.parametrize("raw", [jsonapi.JSON_NULL, msgspec.Raw(b"null")])
def test_raw_json_text_of_null_is_none(raw: msgspec.Raw) -> None:
    written = raw_json_text(raw)

    assert written is None


def test_raw_json_text_rejects_a_value_that_is_not_utf8() -> None:
    value = msgspec.json.decode(b'{"v":["\xff"]}', type=dict[str, msgspec.Raw])["v"]

    with pytest.raises(MalformedDocument) as raised:
        raw_json_text(value)

    assert (str(raised.value), raised.value.retryable) == (
        "a nested JSON value is not UTF-8 text",
        False,
    )


def test_read_outline_does_not_cache_a_rejected_body() -> None:
    page = response(b'{"data":[],"links":"next"}')
    with pytest.raises(MalformedDocument):
        read_outline(page)

    with pytest.raises(MalformedDocument) as raised_again:
        read_outline(page)

    assert str(raised_again.value) == "the body's 'links' member is not an object"


def test_read_page_rejects_a_deeply_nested_body_as_malformed() -> None:
    deep = b"[" * 100_000 + b"1" + b"]" * 100_000
    page = response(b'{"data":[{"id":"e1","attributes":{"event_properties":%s}}]}' % deep)

    with pytest.raises(MalformedDocument) as raised:
        read_page(page, decode_events_page)

    assert (str(raised.value), raised.value.retryable) == (jsonapi.TOO_DEEP, False)


@pytest.mark.parametrize(
    "document",
    [
        {"data": [], "links": {"next": None}},
        {"data": [], "links": {"next": ""}},
        {"data": [], "links": {}},
        {"data": [], "links": None},
        {"data": []},
    ],
)
def test_next_link_is_none_on_the_last_page(document: dict[str, Any]) -> None:
    found = next_link(document.get("links"))

    assert found is None


@pytest.mark.parametrize("value", [7, ["x"], {"href": "x"}, True])
def test_next_link_that_is_not_a_url_is_malformed_rather_than_the_last_page(value: Any) -> None:
    with pytest.raises(MalformedDocument) as raised:
        next_link({"next": value})

    assert str(raised.value) == "the body's 'links.next' is neither a URL nor null"


def test_next_link_returns_the_link_verbatim() -> None:
    url = "http://127.0.0.1:9/api/events?page%5Bcursor%5D=bmV4dA&filter=x"

    found = next_link({"next": url})

    assert found == url


def test_error_detail_joins_every_klaviyo_detail() -> None:
    body = {
        "errors": [
            {"code": "invalid", "title": "Invalid input.", "detail": "'page' is not valid."},
            {"code": "invalid", "title": "Invalid input.", "detail": None},
            {"code": "throttled"},
            "not an object",
        ]
    }
    page = response(json.dumps(body).encode(), 400, "application/vnd.api+json")

    detail = error_detail(page)

    assert detail == "'page' is not valid. Invalid input. throttled"


def test_error_detail_describes_an_html_body_without_quoting_it() -> None:
    html = b"<html><title>Just a moment...</title><script>secret()</script></html>"
    page = response(html, 403, "text/html; charset=UTF-8")

    detail = error_detail(page)

    assert detail == f"a non-JSON:API body (text/html; charset=UTF-8, {len(html)} bytes)"
    assert "Just a moment" not in detail


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        (b"", None, "a non-JSON:API body (no content type, 0 bytes)"),
        (b'{"errors":[]}', "application/json", "a non-JSON:API body (application/json, 13 bytes)"),
        (
            b'{"message":"no"}',
            "application/json",
            "a non-JSON:API body (application/json, 16 bytes)",
        ),
    ],
)
def test_error_detail_describes_bodies_without_klaviyo_errors(
    body: bytes, content_type: str | None, detail: str
) -> None:
    page = response(body, 500, content_type)

    described = error_detail(page)

    assert described == detail


@pytest.mark.parametrize(
    ("body", "is_klaviyo"),
    [
        (b'{"errors":[{"detail":"x"}]}', True),
        (b'{"errors":[]}', True),
        (b'{"errors":{}}', False),
        (b"<html>Forbidden</html>", False),
        (b"", False),
    ],
)
def test_is_jsonapi_error_recognises_only_klaviyo_error_documents(
    body: bytes, is_klaviyo: bool
) -> None:
    page = response(body, 403)

    recognised = is_jsonapi_error(page)

    assert recognised is is_klaviyo


def test_lone_surrogate_escapes_become_replacement_characters_and_the_rest_is_untouched() -> None:
    body = (
        rb'{"data":[{"id":"a","attributes":{"cut":"\ud83d end","low":"\uDC00",'
        rb'"pair":"\ud83d\ude00","text":"\\ud83d"}}],"links":null}'
    )

    outline = read_outline(response(body))

    assert outline.replaced == 2
    assert outline.repaired == (
        rb'{"data":[{"id":"a","attributes":{"cut":"\ufffd end","low":"\ufffd",'
        rb'"pair":"\ud83d\ude00","text":"\\ud83d"}}],"links":null}'
    )
    assert json.loads(outline.repaired)["data"][0]["attributes"] == {
        "cut": "\ufffd end",
        "low": "\ufffd",
        "pair": "\U0001f600",
        "text": "\\ud83d",
    }


def test_read_page_decodes_the_repaired_body() -> None:
    page = response(rb'{"data":[{"id":"e1","attributes":{"event_properties":{"n":"\ud83d"}}}]}')

    read_outline(page)
    decoded = read_page(page, decode_events_page)

    assert raw_json_text(decoded.resources[0].attributes.event_properties) == r'{"n":"\ufffd"}'


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe{}", b'{"data":[],"links":{"self":"\xe9"}}', b'\xe9{"data":[]}'],
)
def test_a_body_that_is_not_utf8_before_its_end_is_rejected_without_retry(body: bytes) -> None:
    with pytest.raises(MalformedDocument) as raised:
        read_outline(response(body))

    assert (str(raised.value), raised.value.retryable) == ("the body is not UTF-8 text", False)
