"""The floor for the events benchmark: the least work that fetches, parses and prints the records.

A single-threaded loop, in its own process, that reads `GET /api/events` from the local sandbox
exactly as the connector does (`greater-or-equal`/`less-than` on `datetime`, `sort=datetime`,
`page[size]=1000`, then `links.next` verbatim), builds the same flat records (`id`, `timestamp`,
`event_properties` as compact JSON text, `datetime` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, `uuid`,
`metric_id`, `profile_id`; null fields left out, as the connector's output does) and writes each
as one Airbyte RECORD line on stdout, then one STATE line. No retries, no rate limiting, no
validation: whatever the connector spends beyond this loop is its own overhead.

JSON is parsed and written with msgspec, like the connector: it keeps integers of any size exact,
so the records are the same. `--orjson-only` parses with orjson instead, which turns integers
wider than 64 bits into floats, to show what a fast but lossy loop would cost.

Run by `scripts/benchmark.py`; only ever pointed at the sandbox on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import msgspec
import orjson
import requests

SANDBOX_KEY = "pk_sandbox_full"
REVISION = "2026-07-15"
DECODER = msgspec.json.Decoder()
ENCODER = msgspec.json.Encoder()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api-url", required=True, help="the sandbox's KLAVIYO_API_URL")
    parser.add_argument("--start", default="2012-01-01T00:00:00Z", help="filter lower bound")
    parser.add_argument("--end", help="filter upper bound (default: 5 s before now)")
    parser.add_argument("--orjson-only", action="store_true", help="lossy: orjson for every page")
    args = parser.parse_args(argv)

    host = urlsplit(args.api_url).hostname
    if host not in ("127.0.0.1", "localhost"):
        parser.error(f"the floor only talks to the local sandbox, not {host!r}")
    end = args.end or (datetime.now(timezone.utc) - timedelta(seconds=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    read_events(args.api_url, args.start, end, exact_integers=not args.orjson_only)
    return 0


def read_events(api_url: str, start: str, end: str, *, exact_integers: bool) -> None:
    """Page through events in `[start, end)` and write one RECORD line per event, then STATE."""
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the sandbox is local
    session.headers.update(
        {
            "Authorization": f"Klaviyo-API-Key {SANDBOX_KEY}",
            "revision": REVISION,
            "Accept": "application/vnd.api+json",
        }
    )
    url: str | None = api_url.rstrip("/") + "/events"
    params: dict[str, Any] | None = {
        "filter": f"greater-or-equal(datetime,{start}),less-than(datetime,{end})",
        "sort": "datetime",
        "page[size]": 1000,
    }
    out = sys.stdout.buffer
    encode = ENCODER.encode

    while url:
        response = session.get(url, params=params, timeout=(10, 120))
        response.raise_for_status()
        body = response.content
        document = DECODER.decode(body) if exact_integers else orjson.loads(body)

        emitted_at = int(time.time() * 1000)
        for resource in document["data"]:
            data = to_record(resource)
            message = {
                "type": "RECORD",
                "record": {"stream": "events", "data": data, "emitted_at": emitted_at},
            }
            out.write(encode(message) + b"\n")

        url = (document.get("links") or {}).get("next")
        params = None  # links.next already carries filter, sort and cursor

    cursor = f"{end[:19]}.000000Z"  # the filter bound, in the form records and states use
    state = {
        "type": "STATE",
        "state": {
            "type": "STREAM",
            "stream": {
                "stream_descriptor": {"name": "events"},
                "stream_state": {"states": [{"partition": {}, "cursor": {"datetime": cursor}}]},
            },
        },
    }
    out.write(encode(state) + b"\n")
    out.flush()


def to_record(resource: dict[str, Any]) -> dict[str, Any]:
    """Flatten one event like the connector; null fields are left out of the record."""
    attributes = resource.get("attributes") or {}
    relationships = resource.get("relationships") or {}
    record = {
        "id": resource["id"],
        "timestamp": attributes.get("timestamp"),
        "event_properties": dump_json(attributes.get("event_properties")),
        "datetime": normalize_datetime(attributes.get("datetime")),
        "uuid": attributes.get("uuid"),
        "metric_id": related_id(relationships, "metric"),
        "profile_id": related_id(relationships, "profile"),
    }
    return {key: value for key, value in record.items() if value is not None}


def dump_json(value: Any) -> str | None:
    """Compact JSON text, integers of any size exact."""
    if value is None:
        return None
    return ENCODER.encode(value).decode()


def normalize_datetime(value: Any) -> Any:
    """`2021-01-01 00:00:00[.ffffff]+00:00` and other ISO forms to `...T00:00:00.ffffffZ`."""
    if not isinstance(value, str):
        return value
    if value.endswith("+00:00"):
        if len(value) == 25:
            return f"{value[:10]}T{value[11:19]}.000000Z"
        if len(value) == 32:
            return f"{value[:10]}T{value[11:26]}Z"
    moment = datetime.fromisoformat(value.replace(" ", "T"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def related_id(relationships: dict[str, Any], name: str) -> str | None:
    """`relationships.<name>.data.id`, or None when the relationship is empty."""
    data = (relationships.get(name) or {}).get("data")
    return data.get("id") if isinstance(data, dict) else None


if __name__ == "__main__":
    sys.exit(main())
