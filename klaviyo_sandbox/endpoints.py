"""What each list endpoint accepts and answers: parameters, filters, sorting, pages, links.

Every rule here comes from the reference (revision 2026-07-15): which filter fields and operators
an endpoint takes, its sort fields, its `page[size]` range, its sparse fieldset names, and the
campaigns rules (a channel filter is required; archived items only on `equals(archived,true)`,
which flows share). Anything outside those rules is a 400, so a connector bug shows up here rather
than as silently different data.

Pagination is keyset: a cursor carries the sort key of the page edge, signed with a key derived
from the seed, so pages stay correct while data changes and a tampered cursor is detected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice
from typing import Any
from urllib.parse import quote, urlencode

from klaviyo_sandbox import filters as f
from klaviyo_sandbox.data import CHANNELS, RESOURCE_TYPES, Dataset, EventRef, Record, micros_of
from klaviyo_sandbox.errors import ApiError

REVISION = "2026-07-15"
_RANGE = {op: f.DATETIME for op in f.COMPARISONS}
_DATES = {"equals": f.DATETIME, **_RANGE}
_MAX_MICROS = 1 << 62
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Endpoint:
    """One list endpoint; `page_size` is (min, max, default) or None when not accepted."""

    kind: str
    scope: str
    burst: int
    steady: int
    filters: f.FilterSpec | None
    sorts: tuple[str, ...]
    page_size: tuple[int, int, int] | None
    fixed_page: int
    fields: tuple[str, ...]
    default_sort: str = "id"


ENDPOINTS: dict[str, Endpoint] = {
    "/api/campaigns": Endpoint(
        kind="campaigns",
        scope="campaigns:read",
        burst=10,
        steady=150,
        filters={
            "id": {"any": f.STRING_LIST},
            "messages.channel": {"equals": f.STRING},
            "name": {"contains": f.STRING},
            "status": {"any": f.STRING_LIST, "equals": f.STRING},
            "archived": {"equals": f.BOOLEAN},
            "created_at": _RANGE,
            "scheduled_at": _RANGE,
            "updated_at": _RANGE,
        },
        sorts=("created_at", "id", "name", "scheduled_at", "updated_at"),
        page_size=(1, 100, 100),
        fixed_page=100,
        fields=(
            "name",
            "status",
            "archived",
            "audiences",
            "send_options",
            "tracking_options",
            "send_strategy",
            "created_at",
            "scheduled_at",
            "updated_at",
            "send_time",
        ),
    ),
    "/api/events": Endpoint(
        kind="events",
        scope="events:read",
        burst=350,
        steady=3500,
        filters={
            "metric_id": {"equals": f.STRING_OR_LIST},
            "profile_id": {"equals": f.STRING},
            "profile": {"has": f.NOTHING},
            "metric": {"has": f.NOTHING},
            "datetime": _RANGE,
            "timestamp": {op: f.NUMBER for op in f.COMPARISONS},
        },
        sorts=("datetime", "timestamp"),
        page_size=(1, 1000, 200),
        fixed_page=200,
        fields=("datetime", "event_properties", "id", "timestamp", "uuid"),
        default_sort="datetime",
    ),
    "/api/flows": Endpoint(
        kind="flows",
        scope="flows:read",
        burst=3,
        steady=60,
        filters={
            "id": {"any": f.STRING_LIST},
            "name": {op: f.STRING for op in ("contains", "ends-with", "equals", "starts-with")},
            "status": {"equals": f.STRING},
            "archived": {"equals": f.BOOLEAN},
            "created": _DATES,
            "updated": _DATES,
            "trigger_type": {"equals": f.STRING},
        },
        sorts=("created", "id", "name", "status", "trigger_type", "updated"),
        page_size=(1, 50, 50),
        fixed_page=50,
        fields=("archived", "created", "id", "name", "status", "trigger_type", "updated"),
    ),
    "/api/metrics": Endpoint(
        kind="metrics",
        scope="metrics:read",
        burst=10,
        steady=150,
        filters={
            "integration.name": {"equals": f.STRING},
            "integration.category": {"equals": f.STRING},
        },
        sorts=(),
        page_size=None,
        fixed_page=200,
        fields=("created", "id", "integration", "name", "updated"),
    ),
    "/api/accounts": Endpoint(
        kind="accounts",
        scope="accounts:read",
        burst=1,
        steady=15,
        filters=None,
        sorts=(),
        page_size=None,
        fixed_page=200,
        fields=(
            "test_account",
            "contact_information",
            "industry",
            "timezone",
            "preferred_currency",
            "public_api_key",
            "locale",
        ),
    ),
}


@dataclass(frozen=True)
class Cursor:
    """A decoded `page[cursor]`: which way to read from which edge key, for which sort."""

    kind: str
    sort: str
    direction: str
    key: Key


class CursorCodec:
    """Signs cursors so tampering is detected; the key depends on the seed only (determinism)."""

    def __init__(self, seed: int) -> None:
        self._secret = hashlib.sha256(f"klaviyo-sandbox-cursor:{seed}".encode()).digest()

    def encode(self, cursor: Cursor) -> str:
        payload = json.dumps([cursor.kind, cursor.sort, cursor.direction, list(cursor.key)])
        raw = payload.encode()
        mac = hmac.new(self._secret, raw, hashlib.sha256).digest()[:8]
        return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")

    def decode(self, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, payload = raw[:8], raw[8:]
            expected = hmac.new(self._secret, payload, hashlib.sha256).digest()[:8]
            if not hmac.compare_digest(mac, expected):
                raise ValueError("bad signature")
            kind, sort, direction, key = json.loads(payload)
            return Cursor(kind, sort, direction, tuple(key))
        except (ValueError, TypeError) as exc:
            raise invalid_cursor() from exc


def invalid_cursor() -> ApiError:
    return ApiError(400, "Invalid cursor provided.", pointer="/data/")


def list_page(
    dataset: Dataset,
    codec: CursorCodec,
    endpoint: Endpoint,
    pairs: list[tuple[str, str]],
    link_base: str,
) -> bytes:
    """Answer one GET on a list endpoint: the encoded JSON:API document for the page."""
    params = _single_params(pairs, endpoint)
    conditions = _conditions(endpoint, params.get("filter"))
    sort = params.get("sort", "")
    sort_field, ascending = _sort(endpoint, sort)
    limit = _page_size(endpoint, params.get("page[size]"))
    wanted = _sparse_fields(endpoint, params)

    cursor = None
    if "page[cursor]" in params:
        cursor = codec.decode(params["page[cursor]"])
        if (
            cursor.kind != endpoint.kind
            or cursor.sort != sort
            or cursor.direction
            not in (
                "next",
                "prev",
            )
        ):
            raise invalid_cursor()

    if endpoint.kind == "events":
        iterate = _event_iterator(dataset, conditions)
    else:
        iterate = _record_iterator(dataset, endpoint.kind, conditions, sort_field)
    try:
        items, next_key, prev_key = _paginate(iterate, ascending, cursor, limit)
    except (TypeError, ValueError) as exc:  # a signed key of the wrong shape cannot come from us
        raise invalid_cursor() from exc

    if endpoint.kind == "events":
        parts = [dataset.event_json(ref, wanted) for ref in items]
    else:
        parts = [_dumps(_sparse(dataset.render(endpoint.kind, r), wanted)) for r in items]
    links = {
        "self": _link(link_base, pairs, None),
        "next": _page_link(codec, endpoint, sort, "next", next_key, link_base, pairs),
        "prev": _page_link(codec, endpoint, sort, "prev", prev_key, link_base, pairs),
    }
    meta = ',"meta":{"agent_hints":{"next_steps":[]}}' if endpoint.kind == "metrics" else ""
    return f'{{"data":[{",".join(parts)}],"links":{_dumps(links)}{meta}}}'.encode()


def _page_link(
    codec: CursorCodec,
    endpoint: Endpoint,
    sort: str,
    direction: str,
    key: Key | None,
    base: str,
    pairs: list[tuple[str, str]],
) -> str | None:
    if key is None:
        return None
    return _link(base, pairs, codec.encode(Cursor(endpoint.kind, sort, direction, key)))


def _link(base: str, pairs: list[tuple[str, str]], cursor: str | None) -> str:
    """`base` with every original parameter, percent-encoded, and the page cursor replaced."""
    kept = [(k, v) for k, v in pairs if k != "page[cursor]" or cursor is None]
    if cursor is not None:
        kept.append(("page[cursor]", cursor))
    return f"{base}?{urlencode(kept, quote_via=quote, safe='')}" if kept else base


def _single_params(pairs: list[tuple[str, str]], endpoint: Endpoint) -> dict[str, str]:
    allowed = {f"fields[{RESOURCE_TYPES[endpoint.kind]}]"}
    if endpoint.kind != "accounts":
        allowed.add("page[cursor]")
    if endpoint.filters is not None:
        allowed.add("filter")
    if endpoint.sorts:
        allowed.add("sort")
    if endpoint.page_size is not None:
        allowed.add("page[size]")

    params: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            raise ApiError(
                400, f"'{name}' is not a valid query parameter for this endpoint.", parameter=name
            )
        if name in params:
            raise ApiError(400, f"The '{name}' parameter may not be repeated.", parameter=name)
        params[name] = value
    return params


def _conditions(endpoint: Endpoint, text: str | None) -> list[f.Condition]:
    conditions: list[f.Condition] = []
    if text is not None:
        assert endpoint.filters is not None
        try:
            conditions = f.parse_filter(text)
            f.validate(conditions, endpoint.filters, RESOURCE_TYPES[endpoint.kind])
        except f.FilterError as exc:
            raise ApiError(400, str(exc), parameter="filter") from exc
        _reject_future(conditions)

    if endpoint.kind == "campaigns":
        channels = [
            c.value for c in conditions if c.field == "messages.channel" and c.op == "equals"
        ]
        if not channels:
            detail = "A channel filter is required, e.g. equals(messages.channel,'email')."
            raise ApiError(400, detail, parameter="filter")
        for channel in channels:
            if channel not in CHANNELS:
                detail = f"'{channel}' is not a valid channel; use one of {', '.join(CHANNELS)}."
                raise ApiError(400, detail, parameter="filter")
    if endpoint.kind in ("campaigns", "flows") and not any(
        c.field == "archived" for c in conditions
    ):
        conditions.append(f.Condition("equals", "archived", False))
    return conditions


def _reject_future(conditions: list[f.Condition]) -> None:
    now = micros_of(datetime.now(timezone.utc))
    latest = f.latest_bound(conditions)
    if latest is not None and latest.micros > now:
        raise ApiError(400, f"End date may not be in the future: {latest.text}", parameter="filter")
    for condition in conditions:
        if condition.field == "timestamp" and condition.value * 1_000_000 > now:
            raise ApiError(
                400, f"End date may not be in the future: {condition.value}", parameter="filter"
            )


def _sort(endpoint: Endpoint, sort: str) -> tuple[str, bool]:
    if not sort:
        return endpoint.default_sort, True
    field = sort.removeprefix("-")
    if field not in endpoint.sorts:
        allowed = ", ".join(endpoint.sorts) or "none"
        raise ApiError(
            400, f"'{sort}' is not a valid sort field; allowed: {allowed}.", parameter="sort"
        )
    return field, not sort.startswith("-")


def _page_size(endpoint: Endpoint, text: str | None) -> int:
    if endpoint.page_size is None or text is None:
        return endpoint.page_size[2] if endpoint.page_size else endpoint.fixed_page
    low, high, _ = endpoint.page_size
    if not text.isdigit() or not low <= int(text) <= high:
        detail = f"Page size must be an integer between {low} and {high}."
        raise ApiError(400, detail, parameter="page[size]")
    return int(text)


def _sparse_fields(endpoint: Endpoint, params: dict[str, str]) -> set[str] | None:
    name = f"fields[{RESOURCE_TYPES[endpoint.kind]}]"
    if name not in params:
        return None
    wanted = params[name].split(",")
    for field in wanted:
        if field not in endpoint.fields:
            raise ApiError(400, f"'{field}' is not a valid field for {name}.", parameter=name)
    return set(wanted)


def _sparse(resource: dict[str, Any], wanted: set[str] | None) -> dict[str, Any]:
    if wanted is None:
        return resource
    attributes = {k: v for k, v in resource["attributes"].items() if k in wanted}
    return {**resource, "attributes": attributes}


Iterate = Callable[[bool, Key | None], Iterator[tuple[Key, Any]]]


def _paginate(
    iterate: Iterate, ascending: bool, cursor: Cursor | None, limit: int
) -> tuple[list[Any], Key | None, Key | None]:
    """One page from a keyed iterator, plus the keys the next and prev cursors start from."""
    if cursor is None or cursor.direction == "next":
        found = list(islice(iterate(ascending, cursor.key if cursor else None), limit + 1))
        page = found[:limit]
        has_next, has_prev = len(found) > limit, cursor is not None
    else:
        found = list(islice(iterate(not ascending, cursor.key), limit + 1))
        page = found[:limit][::-1]
        has_next, has_prev = True, len(found) > limit
    next_key = page[-1][0] if has_next and page else None
    prev_key = page[0][0] if has_prev and page else None
    return [item for _, item in page], next_key, prev_key


def _record_iterator(
    dataset: Dataset, kind: str, conditions: list[f.Condition], sort_field: str
) -> Iterate:
    records = [r for r in dataset.records(kind) if f.matches(conditions, r.values)]

    def key(record: Record) -> Key:
        value = record.values.get(sort_field)
        return (1, 0, record.id) if value is None else (0, value, record.id)

    keyed = sorted(((key(r), r) for r in records), key=lambda pair: pair[0])

    def iterate(ascending: bool, beyond: Key | None) -> Iterator[tuple[Key, Any]]:
        ordered: Iterable[tuple[Key, Record]] = keyed if ascending else reversed(keyed)
        for item_key, record in ordered:
            if beyond is None or (item_key > beyond if ascending else item_key < beyond):
                yield item_key, record

    return iterate


def _event_iterator(dataset: Dataset, conditions: list[f.Condition]) -> Iterate:
    """Turn datetime/timestamp bounds into a micros range and the rest into a predicate."""
    lo, hi = 0, _MAX_MICROS
    metrics: set[int] | None = None
    profiles: list[int | None] = []
    needs_profile = False
    for c in conditions:
        if c.field == "datetime":
            micros = c.value.micros
            lo, hi = _narrow(lo, hi, c.op, micros, micros + 1)
        elif c.field == "timestamp":
            low_s, high_s = math.ceil(c.value), math.floor(c.value) + 1
            if c.op == "greater-than":
                lo = max(lo, high_s * 1_000_000)
            elif c.op == "greater-or-equal":
                lo = max(lo, low_s * 1_000_000)
            elif c.op == "less-than":
                hi = min(hi, low_s * 1_000_000)
            else:
                hi = min(hi, high_s * 1_000_000)
        elif c.field == "metric_id":
            ids = c.value if isinstance(c.value, list) else [c.value]
            found = {i: dataset.metric_index(i) for i in ids}
            missing = [i for i, position in found.items() if position is None]
            if missing:
                raise ApiError(400, f"Metric IDs {missing} do not exist.", parameter="filter")
            chosen = {p for p in found.values() if p is not None}
            metrics = chosen if metrics is None else metrics & chosen
        elif c.field == "profile_id":
            profiles.append(dataset.profile_index(c.value))
        elif c.field == "profile":
            needs_profile = True

    def keep(ref: EventRef) -> bool:
        if metrics is not None and ref.metric not in metrics:
            return False
        if needs_profile and ref.profile is None:
            return False
        return all(ref.profile == p and p is not None for p in profiles)

    unfiltered = metrics is None and not needs_profile and not profiles

    def iterate(ascending: bool, beyond: Key | None) -> Iterator[tuple[Key, Any]]:
        edge = None if beyond is None else (int(beyond[0]), int(beyond[1]))
        for ref in dataset.iter_events(lo, hi, ascending=ascending, beyond=edge):
            if unfiltered or keep(ref):
                yield ref.key, ref

    return iterate


def _narrow(lo: int, hi: int, op: str, inclusive: int, exclusive: int) -> tuple[int, int]:
    if op == "greater-than":
        return max(lo, exclusive), hi
    if op == "greater-or-equal":
        return max(lo, inclusive), hi
    if op == "less-than":
        return lo, min(hi, inclusive)
    return lo, min(hi, exclusive)
