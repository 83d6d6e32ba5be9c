"""What the connector must emit for a sandbox account, computed independently of its code.

The end-to-end tests compare the connector's records with these, field by field. The rules are
the README's stream contract, written again here on purpose with different tools (the standard
library's `datetime.fromisoformat` and `json`), so a mistake in the connector is not mirrored.
JSON-text fields are compared as parsed values (exact: the standard library keeps big integers);
fields that are null are absent, as the CDK serializes them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from klaviyo_sandbox import Dataset

JSON_FIELDS = {
    "campaigns": ("audiences", "send_options", "tracking_options", "send_strategy"),
    "events": ("event_properties",),
    "flows": (),
    "metrics": ("integration",),
}


def utc(value: str | None) -> str | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value.replace(" ", "T").replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def expected_records(dataset: Dataset, stream: str) -> dict[str, dict[str, Any]]:
    """Every record of `stream` keyed by id, as the connector must emit it."""
    build = {
        "campaigns": _campaigns,
        "events": _events,
        "flows": _flows,
        "metrics": _metrics,
    }[stream]
    return build(dataset)


def comparable(stream: str, record: dict[str, Any]) -> dict[str, Any]:
    """Parse JSON-text fields so that equal JSON compares equal."""
    result = dict(record)
    for name in JSON_FIELDS[stream]:
        if result.get(name) is not None:
            assert isinstance(result[name], str), f"{stream}.{name} is not JSON text"
            result[name] = json.loads(result[name])
    return result


def _drop_nulls(record: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if value is not None}


def _campaigns(dataset: Dataset) -> dict[str, dict[str, Any]]:
    channels = {
        record.id: record.values["messages.channel"] for record in dataset.records("campaigns")
    }
    result = {}
    for resource in dataset.resources("campaigns"):
        a = resource["attributes"]
        result[resource["id"]] = _drop_nulls(
            {
                "id": resource["id"],
                "name": a["name"],
                "status": a["status"],
                "archived": a["archived"],
                "audiences": text(a["audiences"]),
                "send_options": text(a["send_options"]),
                "tracking_options": text(a["tracking_options"]),
                "send_strategy": text(a["send_strategy"]),
                "created_at": utc(a["created_at"]),
                "scheduled_at": utc(a["scheduled_at"]),
                "updated_at": utc(a["updated_at"]),
                "send_time": utc(a["send_time"]),
                "channel": channels[resource["id"]],
            }
        )
    return result


def _events(dataset: Dataset) -> dict[str, dict[str, Any]]:
    result = {}
    for resource in dataset.iter_resources("events"):
        a = resource["attributes"]
        relationships = resource.get("relationships", {})
        metric = (relationships.get("metric") or {}).get("data") or {}
        profile = (relationships.get("profile") or {}).get("data") or {}
        result[resource["id"]] = _drop_nulls(
            {
                "id": resource["id"],
                "timestamp": a["timestamp"],
                "event_properties": text(a["event_properties"]),
                "datetime": utc(a["datetime"]),
                "uuid": a["uuid"],
                "metric_id": metric.get("id"),
                "profile_id": profile.get("id"),
            }
        )
    return result


def _flows(dataset: Dataset) -> dict[str, dict[str, Any]]:
    result = {}
    for resource in dataset.resources("flows"):
        a = resource["attributes"]
        result[resource["id"]] = _drop_nulls(
            {
                "id": resource["id"],
                "name": a["name"],
                "status": a["status"],
                "archived": a["archived"],
                "created": utc(a["created"]),
                "updated": utc(a["updated"]),
                "trigger_type": a["trigger_type"],
            }
        )
    return result


def _metrics(dataset: Dataset) -> dict[str, dict[str, Any]]:
    result = {}
    for resource in dataset.resources("metrics"):
        a = resource["attributes"]
        result[resource["id"]] = _drop_nulls(
            {
                "id": resource["id"],
                "name": a["name"],
                "created": utc(a["created"]),
                "updated": utc(a["updated"]),
                "integration": text(a["integration"]),
            }
        )
    return result
