"""The four streams read through the real entrypoint against mocked Klaviyo pages.

The CDK's message serializer leaves fields whose value is null out of a RECORD message, so the
expected records below omit them; destinations read an absent field as null.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests_mock as rm
from airbyte_cdk.models import FailureType
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.test.state_builder import StateBuilder

from source_klaviyo import SourceKlaviyo
from unit_tests.conftest import (
    API,
    API_KEY,
    UPPER,
    UPPER_EMITTED,
    campaign,
    catalog,
    config,
    event,
    flow,
    klaviyo_error,
    metric,
    page,
)

pytestmark = pytest.mark.usefixtures("frozen_now")

EVENTS_NEXT = API + "events?page%5Bcursor%5D=bmV4dA%3D%3D&sort=datetime"


def query(request: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query, keep_blank_values=True)


def records(output: EntrypointOutput, stream: str) -> list[dict[str, Any]]:
    return [m.record.data for m in output.records if m.record.stream == stream]


def final_state(output: EntrypointOutput) -> dict[str, Any]:
    return dict(output.most_recent_state.stream_state.__dict__)


def error_messages(output: EntrypointOutput) -> list[str]:
    return [m.trace.error.message for m in output.errors]


def test_events_first_page_sends_filter_sort_and_page_size(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(API + "events", **page([]))

    read(SourceKlaviyo(), config(num_workers=1), catalog("events"))

    assert [query(r) for r in requests_mock.request_history] == [
        {
            "filter": [
                f"greater-or-equal(datetime,2024-01-01T00:00:00Z),less-than(datetime,{UPPER})"
            ],
            "sort": ["datetime"],
            "page[size]": ["1000"],
        }
    ]


def test_later_pages_request_links_next_verbatim_without_extra_params(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(
        API + "events", [page([event("e1", "2024-04-01T17:33:15+00:00")], EVENTS_NEXT)]
    )
    requests_mock.get(EVENTS_NEXT, **page([event("e2", "2024-04-02T17:33:15+00:00")]))

    read(SourceKlaviyo(), config(num_workers=1), catalog("events"))

    second = requests_mock.request_history[1]
    assert second.url == EVENTS_NEXT
    assert query(second) == {"page[cursor]": ["bmV4dA=="], "sort": ["datetime"]}


def test_every_request_carries_auth_revision_accept_and_user_agent(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(API + "metrics", **page([]))

    read(SourceKlaviyo(), config(), catalog("metrics"))

    headers = requests_mock.request_history[0].headers
    assert headers["Authorization"] == f"Klaviyo-API-Key {API_KEY}"
    assert headers["revision"] == "2026-07-15"
    assert headers["Accept"] == "application/vnd.api+json"
    assert headers["User-Agent"].startswith("airbyte-source-klaviyo/")


def test_events_records_are_flat_with_ids_json_text_and_one_datetime_form(
    requests_mock: rm.Mocker,
) -> None:
    awkward = {"Items": [{"SKU": "a\u2028b", "price": 19.99}], "n": 123456789012345678901234567890}
    requests_mock.get(
        API + "events",
        **page(
            [
                event("e1", "2024-04-01 17:33:15+00:00", awkward),
                event("e2", "2024-04-01T17:33:15.276362+00:00", {}, profile_id=None),
            ]
        ),
    )

    output = read(SourceKlaviyo(), config(num_workers=1), catalog("events"))

    assert records(output, "events") == [
        {
            "id": "e1",
            "timestamp": 1711992795,
            # Klaviyo's own text (here with the escapes the mock wrote), compacted.
            "event_properties": '{"Items":[{"SKU":"a\\u2028b","price":19.99}],'
            '"n":123456789012345678901234567890}',
            "datetime": "2024-04-01T17:33:15.000000Z",
            "uuid": "uuid-e1",
            "metric_id": "MtrcA1",
            "profile_id": "01PROFILE",
        },
        {
            "id": "e2",
            "timestamp": 1711992795,
            "event_properties": "{}",
            "datetime": "2024-04-01T17:33:15.276362Z",
            "uuid": "uuid-e2",
            "metric_id": "MtrcA1",
        },
    ]


def test_full_read_state_is_the_upper_bound_of_every_partition(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(API + "events", **page([event("e1", "2024-04-01T17:33:15+00:00")]))

    output = read(SourceKlaviyo(), config(num_workers=1), catalog("events"))

    assert final_state(output) == {
        "states": [{"partition": {}, "cursor": {"datetime": UPPER_EMITTED}}]
    }


def test_incremental_read_starts_at_the_saved_cursor_with_greater_or_equal(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(API + "events", **page([]))
    state = (
        StateBuilder()
        .with_stream_state(
            "events",
            {"states": [{"partition": {}, "cursor": {"datetime": "2026-12-04T08:30:15.500000Z"}}]},
        )
        .build()
    )

    read(SourceKlaviyo(), config(num_workers=4), catalog("events"), state)

    assert [query(r)["filter"] for r in requests_mock.request_history] == [
        [f"greater-or-equal(datetime,2026-12-04T08:30:15Z),less-than(datetime,{UPPER})"]
    ]


def test_events_lookback_window_rereads_hours_behind_the_cursor(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(API + "events", **page([]))
    state = StateBuilder().with_stream_state("events", {"datetime": "2026-12-04T10:00:00Z"}).build()

    read(SourceKlaviyo(), config(events_lookback_window=3), catalog("events"), state)

    assert query(requests_mock.request_history[0])["filter"] == [
        f"greater-or-equal(datetime,2026-12-04T07:00:00Z),less-than(datetime,{UPPER})"
    ]


def test_cursor_older_than_start_date_starts_at_start_date(requests_mock: rm.Mocker) -> None:
    requests_mock.get(API + "flows", **page([]))
    state = StateBuilder().with_stream_state("flows", {"updated": "2020-01-01T00:00:00Z"}).build()

    read(SourceKlaviyo(), config(start_date="2026-12-01T00:00:00Z"), catalog("flows"), state)

    assert [query(r)["filter"] for r in requests_mock.request_history] == [
        [
            "equals(archived,false),greater-or-equal(updated,2026-12-01T00:00:00Z),"
            f"less-than(updated,{UPPER})"
        ],
        [
            "equals(archived,true),greater-or-equal(updated,2026-12-01T00:00:00Z),"
            f"less-than(updated,{UPPER})"
        ],
    ]


def test_future_state_sends_no_request_and_is_lowered_to_the_upper_bound(
    requests_mock: rm.Mocker,
) -> None:
    state = StateBuilder().with_stream_state("events", {"datetime": "2099-01-01T00:00:00Z"}).build()

    output = read(SourceKlaviyo(), config(), catalog("events"), state)

    assert requests_mock.request_history == []
    assert records(output, "events") == []
    assert error_messages(output) == []
    assert final_state(output) == {
        "states": [{"partition": {}, "cursor": {"datetime": UPPER_EMITTED}}]
    }


def test_future_dated_record_does_not_move_the_cursor_past_the_upper_bound(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(
        API + "events",
        [
            page(
                [event("e1", "2026-12-04T11:00:00+00:00"), event("e2", "2030-01-01T00:00:00+00:00")]
            )
        ],
    )

    output = read(SourceKlaviyo(), config(num_workers=1), catalog("events"))

    assert [r["id"] for r in records(output, "events")] == ["e1", "e2"]
    states = [m.state.stream.stream_state.__dict__ for m in output.state_messages]
    cursors = [s["states"][0]["cursor"]["datetime"] for s in states]
    assert max(cursors) == UPPER_EMITTED


@pytest.mark.parametrize(
    "bad_state, problem",
    [
        ({"states": "nope"}, "'states' is not a list"),
        ({"states": [{"cursor": {"datetime": "2024-01-01"}}]}, "each entry of 'states' must be"),
        ({"datetime": "yesterday"}, "cursor datetime: 'yesterday' is not an ISO 8601 datetime"),
        ({"datetime": 12}, "cursor datetime: 12 is not an ISO 8601 datetime"),
        ({"updated_at": "2024-01-01"}, "expected {'states': [...]} or {'datetime': '<datetime>'}"),
    ],
)
def test_invalid_state_fails_the_stream_with_a_config_error_naming_the_problem(
    requests_mock: rm.Mocker, bad_state: dict[str, Any], problem: str
) -> None:
    state = StateBuilder().with_stream_state("events", bad_state).build()

    output = read(SourceKlaviyo(), config(), catalog("events"), state)

    first = output.errors[0].trace.error
    assert first.failure_type == FailureType.config_error
    assert first.message.startswith(f"The saved state of stream events is invalid: {problem}")
    assert first.message.endswith(
        "Fix the state or reset the stream to sync it from the start date."
    )
    assert requests_mock.request_history == []


def test_campaigns_read_every_channel_and_archived_partition_tagged_with_channel(
    requests_mock: rm.Mocker,
) -> None:
    def by_partition(request: Any, context: Any) -> dict[str, Any]:
        condition = query(request)["filter"][0]
        channel = condition.split("'")[1]
        archived = "equals(archived,true)" in condition
        item = campaign(f"{channel}-{archived}", "2024-05-01T00:00:00+00:00", archived=archived)
        return page([item])["json"]

    requests_mock.get(API + "campaigns", json=by_partition)

    output = read(SourceKlaviyo(), config(campaign_channels=["email", "sms"]), catalog("campaigns"))

    assert [(r["id"], r["channel"], r["archived"]) for r in records(output, "campaigns")] == [
        ("email-False", "email", False),
        ("email-True", "email", True),
        ("sms-False", "sms", False),
        ("sms-True", "sms", True),
    ]
    assert [query(r) for r in requests_mock.request_history][0] == {
        "filter": [
            "equals(messages.channel,'email'),equals(archived,false),"
            f"greater-or-equal(updated_at,2024-01-01T00:00:00Z),less-than(updated_at,{UPPER})"
        ],
        "sort": ["updated_at"],
        "page[size]": ["100"],
    }
    assert final_state(output) == {
        "states": [
            {"partition": {"channel": c, "archived": a}, "cursor": {"updated_at": UPPER_EMITTED}}
            for c in ("email", "sms")
            for a in (False, True)
        ]
    }


def test_campaign_record_has_json_text_fields_and_null_stays_null(
    requests_mock: rm.Mocker,
) -> None:
    item = campaign(
        "01CMP",
        "2024-05-01 09:00:00.5+00:00",
        send_strategy={
            "method": "static",
            "datetime": "2024-05-02T10:00:00+00:00",
            "options": None,
        },
        scheduled_at="2024-05-02T09:00:00+00:00",
    )
    requests_mock.get(API + "campaigns", [page([item]), page([])])

    output = read(SourceKlaviyo(), config(), catalog("campaigns"))

    assert records(output, "campaigns") == [
        {
            "id": "01CMP",
            "name": "Campaign 01CMP",
            "status": "Sent",
            "archived": False,
            "audiences": '{"included":["LstA"],"excluded":null}',
            "send_options": '{"use_smart_sending":true}',
            "send_strategy": '{"method":"static","datetime":"2024-05-02T10:00:00+00:00",'
            '"options":null}',
            "created_at": "2024-02-01T10:00:00.000000Z",
            "scheduled_at": "2024-05-02T09:00:00.000000Z",
            "updated_at": "2024-05-01T09:00:00.500000Z",
            "channel": "email",
        }
    ]


def test_interrupted_partition_keeps_the_last_emitted_cursor(requests_mock: rm.Mocker) -> None:
    next_url = API + "flows?page%5Bcursor%5D=p2"
    requests_mock.get(
        API + "flows",
        **page(
            [flow("f1", "2024-03-01T00:00:00+00:00"), flow("f2", "2024-03-02T00:00:00+00:00")],
            next_url,
        ),
    )
    requests_mock.get(next_url, **klaviyo_error(400, "invalid", "Invalid cursor provided."))

    output = read(SourceKlaviyo(), config(), catalog("flows"))

    assert [r["id"] for r in records(output, "flows")] == ["f1", "f2"]
    assert final_state(output) == {
        "states": [
            {"partition": {"archived": False}, "cursor": {"updated": "2024-03-02T00:00:00.000000Z"}}
        ]
    }
    assert "Invalid cursor provided." in error_messages(output)[0]


def test_metrics_read_every_page_in_full(requests_mock: rm.Mocker) -> None:
    next_url = API + "metrics?page%5Bcursor%5D=m2"
    requests_mock.get(API + "metrics", **page([metric("M1", "Placed Order")], next_url))
    requests_mock.get(next_url, **page([metric("M2", "Clicked Email")]))

    output = read(SourceKlaviyo(), config(), catalog("metrics"))

    assert records(output, "metrics") == [
        {
            "id": mid,
            "name": name,
            "created": "2022-05-31T06:36:45.000000Z",
            "updated": "2022-05-31T06:36:45.500000Z",
            "integration": '{"object":"integration","id":"0eMvjm","key":"api","name":"API"}',
        }
        for mid, name in (("M1", "Placed Order"), ("M2", "Clicked Email"))
    ]
    assert query(requests_mock.request_history[0]) == {}


def test_links_next_to_another_origin_is_refused(requests_mock: rm.Mocker) -> None:
    requests_mock.get(
        API + "metrics", **page([metric("M1", "x")], "http://127.0.0.2:9/api/metrics")
    )

    output = read(SourceKlaviyo(), config(), catalog("metrics"))

    assert len(requests_mock.request_history) == 1
    assert "points to another origin (127.0.0.2:9)" in error_messages(output)[0]


def test_an_events_page_of_the_wrong_shape_fails_once_without_retry_and_keeps_earlier_state(
    requests_mock: rm.Mocker,
) -> None:
    broken = {**event("e2", "2024-04-02T00:00:00+00:00"), "attributes": "not an object"}
    requests_mock.get(
        API + "events",
        [
            page([event("e1", "2024-04-01T00:00:00+00:00")], API + "events?page%5Bcursor%5D=2"),
            page([broken]),
        ],
    )

    output = read(SourceKlaviyo(), config(num_workers=1), catalog("events"))

    assert len(requests_mock.request_history) == 2
    assert [r["id"] for r in records(output, "events")] == ["e1"]
    assert final_state(output) == {
        "states": [{"partition": {}, "cursor": {"datetime": "2024-04-01T00:00:00.000000Z"}}]
    }
    assert error_messages(output)[0] == (
        "Klaviyo's /api/events answered 200 but the body is not a list of events "
        "(Expected `object | null`, got `str` - at `$.data[0].attributes`)."
    )


def test_half_a_surrogate_pair_is_read_as_a_replacement_character_with_a_warning(
    requests_mock: rm.Mocker,
) -> None:
    body = (
        r'{"data":[{"type":"metric","id":"M1","attributes":{"name":"Clicked \ud83d",'
        r'"integration":{"name":"cut \ud83d"}}}],"links":{"next":null}}'
    )
    requests_mock.get(API + "metrics", text=body)

    output = read(SourceKlaviyo(), config(), catalog("metrics"))

    assert len(requests_mock.request_history) == 1
    assert records(output, "metrics") == [
        {"id": "M1", "name": "Clicked \ufffd", "integration": r'{"name":"cut \ufffd"}'}
    ]
    assert [m.log.message for m in output.logs if m.log.level.value == "WARN"] == [
        "Klaviyo's /api/metrics sent 2 string escape(s) of half a UTF-16 surrogate pair, which "
        "no UTF-8 text can hold; each became U+FFFD (the replacement character)"
    ]


def test_backfill_is_split_into_windows_between_the_oldest_and_newest_events(
    requests_mock: rm.Mocker,
) -> None:
    def answer(request: Any, context: Any) -> dict[str, Any]:
        params = query(request)
        if params["page[size]"] == ["1"]:
            edge = {
                "datetime": "2026-11-30T00:00:00.9+00:00",
                "-datetime": "2026-12-02T07:59:59+00:00",
            }
            return page([event("probe", edge[params["sort"][0]])])["json"]
        lower = params["filter"][0].split(",")[1].rstrip(")")
        return page([event(f"at-{lower}", lower.replace("Z", "+00:00"))])["json"]

    requests_mock.get(API + "events", json=answer)

    output = read(SourceKlaviyo(), config(num_workers=2), catalog("events"))

    probes = sorted(query(r)["sort"][0] for r in requests_mock.request_history[:2])
    filters = sorted(query(r)["filter"][0] for r in requests_mock.request_history[2:])
    assert probes == ["-datetime", "datetime"]
    assert [query(r)["page[size]"] for r in requests_mock.request_history[:2]] == [["1"], ["1"]]
    assert filters == [
        f"greater-or-equal(datetime,{lower}),less-than(datetime,{upper})"
        for lower, upper in [
            ("2026-11-30T00:00:00Z", "2026-11-30T07:00:00Z"),
            ("2026-11-30T07:00:00Z", "2026-11-30T14:00:00Z"),
            ("2026-11-30T14:00:00Z", "2026-11-30T21:00:00Z"),
            ("2026-11-30T21:00:00Z", "2026-12-01T04:00:00Z"),
            ("2026-12-01T04:00:00Z", "2026-12-01T11:00:00Z"),
            ("2026-12-01T11:00:00Z", "2026-12-01T18:00:00Z"),
            ("2026-12-01T18:00:00Z", "2026-12-02T01:00:00Z"),
            ("2026-12-02T01:00:00Z", "2026-12-02T08:00:00Z"),
            ("2026-12-02T08:00:00Z", UPPER),
        ]
    ]
    assert sorted(r["id"] for r in records(output, "events")) == sorted(
        "at-" + f.split(",")[1].rstrip(")") for f in filters
    )
    assert final_state(output) == {
        "states": [{"partition": {}, "cursor": {"datetime": UPPER_EMITTED}}]
    }


def test_a_backfill_of_an_account_without_events_costs_the_two_probes_only(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.get(API + "events", **page([]))

    output = read(SourceKlaviyo(), config(num_workers=4), catalog("events"))

    assert sorted(query(r)["sort"][0] for r in requests_mock.request_history) == [
        "-datetime",
        "datetime",
    ]
    assert records(output, "events") == []
    assert final_state(output) == {
        "states": [{"partition": {}, "cursor": {"datetime": UPPER_EMITTED}}]
    }


def test_a_newest_event_without_a_readable_datetime_keeps_the_windows_up_to_the_end(
    requests_mock: rm.Mocker,
) -> None:
    def answer(request: Any, context: Any) -> dict[str, Any]:
        params = query(request)
        if params["page[size]"] == ["1"]:
            edge = {"datetime": "2026-12-02T12:00:00+00:00", "-datetime": "yesterday"}
            return page([event("probe", edge[params["sort"][0]])])["json"]
        return page([])["json"]

    requests_mock.get(API + "events", json=answer)

    read(SourceKlaviyo(), config(num_workers=2), catalog("events"))

    filters = sorted(query(r)["filter"][0] for r in requests_mock.request_history[2:])
    assert filters[0] == (
        "greater-or-equal(datetime,2026-12-02T12:00:00Z),less-than(datetime,2026-12-02T17:59:59Z)"
    )
    assert filters[-1].endswith(f"less-than(datetime,{UPPER})")
    assert len(filters) == 8


@pytest.mark.parametrize(
    ("oldest", "newest"),
    [
        (None, "2026-12-02T12:00:00+00:00"),  # the probes disagree: read everything
        ("2026-12-02T12:00:00+00:00", "9999-12-31T23:59:59+00:00"),  # past the end
        ("9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59+00:00"),
        ("yesterday", "yesterday"),  # events exist, their datetimes are unreadable
    ],
)
def test_probes_that_make_no_sense_never_shrink_the_range_to_nothing(
    requests_mock: rm.Mocker, oldest: str | None, newest: str
) -> None:
    def answer(request: Any, context: Any) -> dict[str, Any]:
        params = query(request)
        if params["page[size]"] == ["1"]:
            edge = {"datetime": oldest, "-datetime": newest}[params["sort"][0]]
            return page([event("probe", edge)] if edge else [])["json"]
        lower = params["filter"][0].split(",")[1].rstrip(")")
        return page([event(f"at-{lower}", lower.replace("Z", "+00:00"))])["json"]

    requests_mock.get(API + "events", json=answer)

    output = read(SourceKlaviyo(), config(num_workers=2), catalog("events"))

    filters = sorted(query(r)["filter"][0] for r in requests_mock.request_history[2:])
    first = (
        "2026-12-02T12:00:00Z" if oldest == "2026-12-02T12:00:00+00:00" else "2024-01-01T00:00:00Z"
    )
    assert filters[0].startswith(f"greater-or-equal(datetime,{first})")
    assert filters[-1].endswith(f"less-than(datetime,{UPPER})")
    assert error_messages(output) == []
    assert len(records(output, "events")) == len(filters)


def test_event_metric_ids_read_one_partition_per_metric(requests_mock: rm.Mocker) -> None:
    requests_mock.get(API + "events", **page([]))

    output = read(
        SourceKlaviyo(),
        config(event_metric_ids=["AbC123", "XyZ789"], num_workers=1),
        catalog("events"),
    )

    assert [query(r)["filter"][0] for r in requests_mock.request_history] == [
        f"equals(metric_id,'{mid}'),greater-or-equal(datetime,2024-01-01T00:00:00Z),"
        f"less-than(datetime,{UPPER})"
        for mid in ("AbC123", "XyZ789")
    ]
    assert final_state(output) == {
        "states": [
            {"partition": {"metric_id": mid}, "cursor": {"datetime": UPPER_EMITTED}}
            for mid in ("AbC123", "XyZ789")
        ]
    }
