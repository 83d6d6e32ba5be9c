"""Reading Klaviyo's JSON:API documents and writing the JSON text our records carry.

Two rules shape this module. First, no number may change on its way through: msgspec parses
and writes integers of any size exactly (orjson, otherwise as fast, silently turns integers
wider than 64 bits into floats), nested values stay Klaviyo's own text, and it runs once per
event, so its speed matters. Second, a body that is not the document we expect is reported,
never guessed at.

A page is read in two steps. `read_outline`, in the worker that fetched it, parses the whole
body but builds only `links.next`: a garbled page is retried there, and the worker can ask for
the next page at once. `read_page`, in the consuming thread, decodes the resources with the
stream's own decoder (`source_klaviyo.resources`).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import msgspec
import requests

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
_format = msgspec.json.format
# What a `msgspec.Raw` field holds when Klaviyo leaves the member out.
JSON_NULL = msgspec.Raw(b"null")
_PAGE_ATTRIBUTE = "_klaviyo_page"
Decoded = TypeVar("Decoded")


class MalformedDocument(ValueError):
    """The body of a 2xx response is not a JSON:API list document.

    `retryable` is false when asking again cannot help: JSON nested deeper than the parser goes,
    or resources that break JSON:API's shape. Bodies that are not JSON at all, or lack `data`,
    come from proxies and cut connections: those are worth a retry.
    """

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


TOO_DEEP = "the body nests JSON deeper than this connector can read (about 1,000 levels)"


def load_json(body: bytes) -> Any:
    """Parse JSON, keeping integers of any size exact; raises `ValueError` if it is not JSON."""
    return _DECODER.decode(body)


def raw_json_text(raw: msgspec.Raw) -> str | None:
    """Klaviyo's own JSON text of a nested value, compacted; `None` for JSON null.

    The value is never built as Python objects: no number can change on the way (not even a
    decimal with more digits than a float holds), and it costs a fraction of a parse and dump.
    """
    text = _format(raw, indent=-1)
    if text == b"null":
        return None
    try:
        return text.decode()
    except UnicodeDecodeError:
        raise MalformedDocument("a nested JSON value is not UTF-8 text", retryable=False) from None


def encode_json(value: Any) -> bytes:
    """Serialise a value as compact UTF-8 JSON bytes, integers of any size exact."""
    return _ENCODER.encode(value)


@dataclass(frozen=True)
class Page:
    """One list page: its resources, in order, and `links.next` (`None` on the last page).

    Resources are the typed structs of `source_klaviyo.resources`.
    """

    resources: Sequence[Any]
    next: str | None


PageDecoder = Callable[[bytes], Page]


class _Outline(msgspec.Struct):
    data: msgspec.Raw
    links: Any = None


_OUTLINE_DECODER = msgspec.json.Decoder(_Outline)
_OUTLINE_ATTRIBUTE = "_klaviyo_outline"


# A `\uD800`-`\uDFFF` escape without its other half is valid JSON grammar but no Unicode text
# (a string cut inside an emoji, say); msgspec refuses it, as UTF-8 destinations would. Escaped
# backslashes match first, so the text `\\ud83d` is left alone, and valid pairs are kept.
_ESCAPED_SURROGATE = re.compile(
    rb"\\\\"  # an escaped backslash
    rb"|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"  # a pair
    rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"  # a lone half
)
_REPLACEMENT_ESCAPE = b"\\ufffd"
_utf8_decoder = codecs.getincrementaldecoder("utf-8")


@dataclass(frozen=True)
class Outline:
    """What a worker needs of a list page before asking for the next one: `links.next`.

    `repaired` is the body with each lone UTF-16 surrogate escape replaced by U+FFFD, and
    `replaced` how many there were, when the body needed that to be read at all.
    """

    next: str | None
    repaired: bytes | None = None
    replaced: int = 0


def decode_outline(body: bytes) -> Outline:
    """Check that a body is a JSON:API list document and return its `links.next`.

    The whole body is parsed (so a truncated or garbled page is caught here, where it can still
    be retried), but its resources are skipped, not built: about a tenth of the cost of
    decoding them. String escapes of half a surrogate pair are replaced (see `Outline`).
    Raises `MalformedDocument`: retryable, unless the body nests too deep or is not UTF-8 text.
    """
    try:
        outline = _OUTLINE_DECODER.decode(body)
    except RecursionError:
        raise MalformedDocument(TOO_DEEP, retryable=False) from None
    except msgspec.ValidationError:
        raise MalformedDocument("the body is JSON but has no 'data' list") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        replaced = 0

        def swap(match: re.Match[bytes]) -> bytes:
            nonlocal replaced
            if len(match.group()) != 6:
                return match.group()
            replaced += 1
            return _REPLACEMENT_ESCAPE

        repaired = _ESCAPED_SURROGATE.sub(swap, body)
        if replaced:
            return replace(decode_outline(repaired), repaired=repaired, replaced=replaced)
        try:  # bytes that are not UTF-8 before the end are not a cut connection: no retry
            _utf8_decoder().decode(body, final=False)
        except UnicodeDecodeError:
            raise MalformedDocument("the body is not UTF-8 text", retryable=False) from None
        raise MalformedDocument(f"the body is not valid JSON ({type(error).__name__})") from None
    if memoryview(outline.data)[:1].tobytes() != b"[":
        raise MalformedDocument("the body is JSON but has no 'data' list")
    if outline.links is not None and not isinstance(outline.links, dict):
        raise MalformedDocument("the body's 'links' member is not an object")
    return Outline(next_link(outline.links))


def read_outline(response: requests.Response) -> Outline:
    """Return the response's outline, checking its body at most once per response."""
    return _once(response, _OUTLINE_ATTRIBUTE, lambda: decode_outline(response.content))


def read_page(response: requests.Response, decode: PageDecoder) -> Page:
    """Return the response's page, decoding its body at most once per response.

    The body decoded is the outline's repaired one when the outline needed a repair.
    """

    def decode_body() -> Page:
        outline: Outline | None = getattr(response, _OUTLINE_ATTRIBUTE, None)
        repaired = outline.repaired if outline is not None else None
        return decode(response.content if repaired is None else repaired)

    return _once(response, _PAGE_ATTRIBUTE, decode_body)


def _once(response: requests.Response, attribute: str, make: Callable[[], Decoded]) -> Decoded:
    """`make()`, kept on the response; a body that fails is not kept, so it fails again."""
    cached: Decoded | None = getattr(response, attribute, None)
    if cached is None:
        cached = make()
        setattr(response, attribute, cached)
    return cached


def next_link(links: Any) -> str | None:
    """Return `links.next`, or `None` when it is null, empty or absent (the last page).

    Any other value would silently end the pagination and lose the rest, so it is malformed.
    """
    link = links.get("next") if isinstance(links, dict) else getattr(links, "next", None)
    if link is not None and not isinstance(link, str):
        raise MalformedDocument("the body's 'links.next' is neither a URL nor null")
    return link or None


def error_detail(response: requests.Response) -> str:
    """Return Klaviyo's error `detail` (joined when several), or a short note on the body."""
    try:
        body = load_json(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        details = [
            str(item.get("detail") or item.get("title") or item.get("code"))
            for item in body["errors"]
            if isinstance(item, dict)
        ]
        if details:
            return " ".join(details)
    kind = response.headers.get("Content-Type", "no content type")
    return f"a non-JSON:API body ({kind}, {len(response.content)} bytes)"


def is_jsonapi_error(response: requests.Response) -> bool:
    """Tell whether the body is Klaviyo's own error document (not a proxy's HTML page)."""
    try:
        body = load_json(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(body, dict) and isinstance(body.get("errors"), list)
