"""Reading Klaviyo's JSON:API documents and writing the JSON strings our records carry.

Two rules shape this module. First, no number may change on its way through: msgspec parses
and writes integers of any size exactly (orjson, otherwise as fast, silently turns integers
wider than 64 bits into floats), and it runs once per event, so its speed matters. Second, a
body that is not the document we expect is reported, never guessed at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import requests

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
_PAGE_ATTRIBUTE = "_klaviyo_page"


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


def dump_json(value: Any) -> str | None:
    """Serialise a nested value as compact JSON text; `None` stays `None` (JSON null)."""
    if value is None:
        return None
    return _ENCODER.encode(value).decode()


def encode_json(value: Any) -> bytes:
    """Serialise a value as compact UTF-8 JSON bytes, integers of any size exact."""
    return _ENCODER.encode(value)


@dataclass(frozen=True)
class Page:
    """One list page: its resources, in order, and `links.next` (`None` on the last page).

    Resources are plain dicts, or typed structs where a stream decodes its pages itself (events).
    """

    resources: Sequence[Any]
    next: str | None


PageDecoder = Callable[[bytes], Page]


def decode_page(body: bytes) -> Page:
    """Decode a JSON:API list document into a `Page` of dict resources.

    Raises `MalformedDocument` when the body is not JSON or has no `data` list; the error
    handler turns that into a retry, since proxies and cut connections produce such bodies.
    """
    try:
        document = load_json(body)
    except RecursionError:
        raise MalformedDocument(TOO_DEEP, retryable=False) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedDocument(f"the body is not valid JSON ({type(error).__name__})") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise MalformedDocument("the body is JSON but has no 'data' list")
    links = document.get("links")
    if links is not None and not isinstance(links, dict):
        raise MalformedDocument("the body's 'links' member is not an object")
    for resource in document["data"]:
        if type(resource) is dict and type(resource.get("attributes") or {}) is not dict:
            raise MalformedDocument(
                "a resource's 'attributes' member is not an object", retryable=False
            )
    return Page(document["data"], next_link(links))


def read_page(response: requests.Response, decode: PageDecoder = decode_page) -> Page:
    """Return the response's page, decoding its body at most once per response."""
    cached = getattr(response, _PAGE_ATTRIBUTE, None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    page = decode(response.content)
    setattr(response, _PAGE_ATTRIBUTE, page)
    return page


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
