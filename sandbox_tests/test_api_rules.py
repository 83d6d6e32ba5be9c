"""Klaviyo's request rules: auth, scopes, revision, parameters, filters and campaign partitions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
import requests

from klaviyo_sandbox import (
    FULL_KEY,
    METRICS_ONLY_KEY,
    NO_EVENTS_KEY,
    REVISION,
    Dataset,
    SandboxServer,
)
from klaviyo_sandbox.filters import parse_datetime_literal
from sandbox_tests.helpers import error, get, headers

EMAIL = "equals(messages.channel,'email')"


@pytest.mark.parametrize("key", [None, "pk_unknown"])
def test_missing_or_unknown_key_is_401(server: SandboxServer, key: str | None) -> None:
    response = get(server, "metrics", key=key)

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/vnd.api+json"
    body = error(response)
    assert {k: body[k] for k in ("status", "code", "title", "detail")} == {
        "status": 401,
        "code": "authentication_failed",
        "title": "Incorrect authentication credentials.",
        "detail": "Missing or invalid authorization",
    }
    assert set(body) == {"id", "status", "code", "title", "detail", "source", "meta"}
    assert len(body["id"]) == 36


@pytest.mark.parametrize(
    ("key", "path", "status"),
    [
        (FULL_KEY, "events", 200),
        (NO_EVENTS_KEY, "events", 403),
        (NO_EVENTS_KEY, "flows", 200),
        (METRICS_ONLY_KEY, "metrics", 200),
        (METRICS_ONLY_KEY, "accounts", 403),
        (METRICS_ONLY_KEY, "flows", 403),
    ],
)
def test_scopes_decide_each_endpoint(
    server: SandboxServer, key: str, path: str, status: int
) -> None:
    response = get(server, path, key=key)

    assert response.status_code == status
    if status == 403:
        assert error(response)["code"] == "permission_denied"


def test_custom_keys_replace_the_defaults(dataset: Dataset) -> None:
    with SandboxServer(dataset, keys={"pk_mine": {"flows:read"}}) as server:
        mine = get(server, "flows", key="pk_mine")
        default = get(server, "flows", key=FULL_KEY)

    assert (mine.status_code, default.status_code) == (200, 401)


@pytest.mark.parametrize(
    ("revision", "detail"),
    [
        (None, "The 'revision' header is required."),
        ("2024-10-15", "Revision '2024-10-15' is not served by this sandbox; use '2026-07-15'."),
    ],
)
def test_revision_header_is_required_and_pinned(
    server: SandboxServer, revision: str | None, detail: str
) -> None:
    response = get(server, "flows", revision=revision)

    assert response.status_code == 400
    assert error(response)["detail"] == detail


def test_success_headers(server: SandboxServer) -> None:
    response = get(server, "flows")

    assert response.headers["Content-Type"] == "application/vnd.api+json"
    assert response.headers["X-Klaviyo-API-Revision"] == REVISION


@pytest.mark.parametrize("path", ["events/", "flows/", "metrics/", "accounts/"])
def test_trailing_slash_is_accepted(server: SandboxServer, path: str) -> None:
    assert get(server, path).status_code == 200


def test_unknown_path_is_404_json_api(server: SandboxServer) -> None:
    response = get(server, "profiles")

    assert response.status_code == 404
    assert error(response)["code"] == "not_found"


def test_non_get_is_405(server: SandboxServer) -> None:
    response = requests.post(server.api_url + "events", headers=headers(), timeout=10)

    assert response.status_code == 405


def test_campaigns_require_a_channel_filter(server: SandboxServer) -> None:
    response = get(server, "campaigns", {"filter": "equals(archived,false)"})

    assert response.status_code == 400
    assert error(response)["source"] == {"parameter": "filter"}
    assert get(server, "campaigns").status_code == 400


def test_campaigns_reject_an_unknown_channel(server: SandboxServer) -> None:
    response = get(server, "campaigns", {"filter": "equals(messages.channel,'fax')"})

    assert response.status_code == 400


@pytest.mark.parametrize("channel", ["email", "sms", "mobile_push"])
def test_channel_and_archived_partition_campaigns(
    server: SandboxServer, dataset: Dataset, channel: str
) -> None:
    by_id = {r.id: r.values for r in dataset.records("campaigns")}
    base = f"equals(messages.channel,'{channel}')"

    default = get(server, "campaigns", {"filter": base}).json()["data"]
    live = get(server, "campaigns", {"filter": f"and({base},equals(archived,false))"}).json()[
        "data"
    ]
    archived = get(server, "campaigns", {"filter": f"{base},equals(archived,true)"}).json()["data"]

    assert [c["id"] for c in default] == [c["id"] for c in live]
    assert all(by_id[c["id"]]["messages.channel"] == channel for c in default + archived)
    assert all(c["attributes"]["archived"] is False for c in default)
    assert len(archived) == 2
    assert all(c["attributes"]["archived"] is True for c in archived)
    assert "relationships" in default[0] and "data" not in default[0]["relationships"]["tags"]


def test_flows_list_archived_only_when_asked(server: SandboxServer) -> None:
    default = get(server, "flows").json()["data"]
    archived = get(server, "flows", {"filter": "equals(archived,true)"}).json()["data"]

    assert (len(default), len(archived)) == (10, 2)
    assert {f["attributes"]["archived"] for f in archived} == {True}


def test_future_bound_is_rejected(server: SandboxServer) -> None:
    future = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")

    response = get(server, "events", {"filter": f"less-than(datetime,{future})"})

    assert response.status_code == 400
    assert error(response)["detail"] == f"End date may not be in the future: {future}"
    assert error(response)["source"] == {"parameter": "filter"}


def test_past_bound_a_few_seconds_ago_is_accepted(server: SandboxServer) -> None:
    past = (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat()
    response = get(server, "events", {"filter": f"less-than(datetime,{past})"})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "filter_text",
    [
        "greater-than(datetime,'2024-01-01T00:00:00Z')",  # quoted datetime
        "greater-than(datetime,2024-01-01T00:00:00 00:00)",  # an unencoded '+'
        "equals(metric_id,abc)",  # unquoted string
        "equals(email,'a@b.c')",  # unknown field
        "equals(datetime,2024-01-01T00:00:00Z)",  # unknown operator for the field
        "greater-than(datetime,2024-01-01T00:00:00Z",  # malformed
        "equals(metric_id,'nope00')",  # a metric that does not exist
    ],
)
def test_invalid_event_filters_are_400(server: SandboxServer, filter_text: str) -> None:
    response = get(server, "events", {"filter": filter_text})

    assert response.status_code == 400
    body = error(response)
    assert (body["code"], body["title"], body["source"]) == (
        "invalid",
        "Invalid input.",
        {"parameter": "filter"},
    )


def test_unencoded_plus_in_a_raw_url_is_400(server: SandboxServer) -> None:
    url = server.api_url + "events?filter=greater-than(datetime,2024-01-01T00:00:00+00:00)"

    response = requests.get(url, headers=headers(), timeout=10)

    assert response.status_code == 400


def test_metric_filter_selects_one_metric(server: SandboxServer, dataset: Dataset) -> None:
    metric_id = dataset.resources("metrics")[0]["id"]
    expected = [
        e["id"]
        for e in dataset.resources("events")
        if e["relationships"]["metric"]["data"]["id"] == metric_id
    ]

    response = get(
        server, "events", {"filter": f"equals(metric_id,'{metric_id}')", "page[size]": 1000}
    )

    assert [e["id"] for e in response.json()["data"]] == expected
    assert 40 < len(expected) < 120


def test_profile_filters(server: SandboxServer, dataset: Dataset) -> None:
    events = dataset.resources("events")
    with_profile = [e["id"] for e in events if e["relationships"]["profile"]["data"] is not None]
    profile_id = next(
        e["relationships"]["profile"]["data"]["id"] for e in events if e["id"] in with_profile
    )
    of_profile = [
        e["id"]
        for e in events
        if (e["relationships"]["profile"]["data"] or {}).get("id") == profile_id
    ]

    has = get(server, "events", {"filter": "has(profile)", "page[size]": 1000}).json()["data"]
    one = get(server, "events", {"filter": f"equals(profile_id,'{profile_id}')"}).json()["data"]

    assert [e["id"] for e in has] == with_profile
    assert 0 < len(events) - len(with_profile) < 60  # some events have a null profile
    assert [e["id"] for e in one] == of_profile


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("events", {"page[size]": "0"}, "page[size]"),
        ("events", {"page[size]": "1001"}, "page[size]"),
        ("events", {"page[size]": "ten"}, "page[size]"),
        ("campaigns", {"filter": EMAIL, "page[size]": "101"}, "page[size]"),
        ("flows", {"page[size]": "51"}, "page[size]"),
        ("metrics", {"page[size]": "10"}, "page[size]"),
        ("metrics", {"sort": "name"}, "sort"),
        ("events", {"sort": "uuid"}, "sort"),
        ("flows", {"sort": "-archived"}, "sort"),
        ("campaigns", {"filter": EMAIL, "sort": "send_time"}, "sort"),
        ("events", {"fields[event]": "datetime,metric_id"}, "fields[event]"),
        ("events", {"include": "profile"}, "include"),
        ("events", {"foo": "bar"}, "foo"),
        ("accounts", {"filter": "equals(id,'x')"}, "filter"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    server: SandboxServer, path: str, params: dict[str, str], parameter: str
) -> None:
    response = get(server, path, params)

    assert response.status_code == 400
    assert error(response)["source"] == {"parameter": parameter}


@pytest.mark.parametrize(
    ("path", "sort", "attribute"),
    [
        ("flows", "name", "name"),
        ("flows", "-updated", "updated"),
        ("campaigns", "created_at", "created_at"),
    ],
)
def test_sorting_orders_by_the_field(
    server: SandboxServer, path: str, sort: str, attribute: str
) -> None:
    params = {"sort": sort}
    if path == "campaigns":
        params["filter"] = EMAIL

    data = get(server, path, params).json()["data"]

    values = [r["attributes"][attribute] for r in data]
    keys = values if attribute == "name" else [instant(v) for v in values]
    assert len(keys) > 5
    assert keys == sorted(keys, reverse=sort.startswith("-"))


def instant(text: str) -> int:
    """Epoch microseconds of a served `...+00:00` datetime, `T` or space."""
    return parse_datetime_literal(text.removesuffix("+00:00")).micros


def test_sparse_fieldset_keeps_only_listed_attributes(server: SandboxServer) -> None:
    data = get(server, "events", {"fields[event]": "datetime,uuid", "page[size]": 3}).json()["data"]

    assert [sorted(e["attributes"]) for e in data] == [["datetime", "uuid"]] * 3
    assert "relationships" in data[0]


def test_accounts_returns_the_one_account(server: SandboxServer) -> None:
    body = get(server, "accounts").json()

    assert len(body["data"]) == 1
    assert body["data"][0]["type"] == "account"
    assert body["links"]["next"] is None


def test_metric_filter_accepts_the_list_form(server: SandboxServer, dataset: Dataset) -> None:
    chosen = [m["id"] for m in dataset.resources("metrics")[:2]]
    expected = [
        e["id"]
        for e in dataset.resources("events")
        if e["relationships"]["metric"]["data"]["id"] in chosen
    ]
    params = {"filter": f"equals(metric_id,['{chosen[0]}','{chosen[1]}'])", "page[size]": 1000}

    response = get(server, "events", params)

    assert [e["id"] for e in response.json()["data"]] == expected
    assert len(expected) == 151


@pytest.mark.parametrize(
    ("operator", "offset", "keep"),
    [
        ("greater-than", 0.5, lambda stamp, bound: stamp > bound),
        ("greater-or-equal", 0, lambda stamp, bound: stamp >= bound),
        ("less-than", 0, lambda stamp, bound: stamp < bound),
        ("less-or-equal", 0.5, lambda stamp, bound: stamp <= bound),
    ],
)
def test_timestamp_bounds_compare_epoch_seconds(
    server: SandboxServer,
    dataset: Dataset,
    operator: str,
    offset: float,
    keep: Callable[[int, float], bool],
) -> None:
    events = dataset.resources("events")
    bound = events[300]["attributes"]["timestamp"] + offset
    expected = [e["id"] for e in events if keep(e["attributes"]["timestamp"], bound)]

    response = get(
        server, "events", {"filter": f"{operator}(timestamp,{bound})", "page[size]": 1000}
    )

    assert [e["id"] for e in response.json()["data"]] == expected
    assert 290 <= len(expected) <= 310
