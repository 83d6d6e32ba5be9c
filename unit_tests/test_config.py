"""Specification of `KlaviyoConfig.parse`: typed defaults, and config errors that name the field."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_klaviyo.config import KlaviyoConfig

CANARY_KEY = "pk_SECRET_canary_123"
PREFIX = "Invalid Klaviyo config: "


def with_key(**fields: Any) -> dict[str, Any]:
    return {"api_key": CANARY_KEY, **fields}


BAD_CONFIGS = [
    pytest.param({}, "'api_key' is required.", id="missing-key"),
    pytest.param(
        {"api_key": ""},
        "'api_key' must be a non-empty Klaviyo private API key (pk_...).",
        id="empty-key",
    ),
    pytest.param(
        {"api_key": "   "},
        "'api_key' must be a non-empty Klaviyo private API key (pk_...).",
        id="whitespace-key",
    ),
    pytest.param(
        {"api_key": f" {CANARY_KEY}\n"},
        "'api_key' must not contain spaces or line breaks; paste the key exactly.",
        id="key-with-surrounding-whitespace",
    ),
    pytest.param(
        {"api_key": CANARY_KEY.replace("_canary", " canary")},
        "'api_key' must not contain spaces or line breaks; paste the key exactly.",
        id="key-with-inner-space",
    ),
    pytest.param(
        {"api_key": 123456}, "'api_key' is invalid: input should be a valid string.", id="int-key"
    ),
    pytest.param(
        {"api_key": [CANARY_KEY]},
        "'api_key' is invalid: input should be a valid string.",
        id="list-key",
    ),
    pytest.param(
        with_key(start_date="last tuesday"),
        "'start_date' 'last tuesday' is not an ISO 8601 datetime; "
        "expected a form like 2024-01-31T00:00:00Z.",
        id="start-date-garbage",
    ),
    pytest.param(
        with_key(start_date="2024-02-30"),
        "'start_date' '2024-02-30' is not a valid datetime (day is out of range for month); "
        "expected a form like 2024-01-31T00:00:00Z.",
        id="start-date-impossible",
    ),
    pytest.param(
        with_key(start_date="2999-01-01T00:00:00Z"),
        "'start_date' '2999-01-01T00:00:00Z' is in the future; use a past date or leave it empty.",
        id="start-date-future",
    ),
    pytest.param(
        with_key(start_date=20240101),
        "'start_date' must be an ISO 8601 string such as 2024-01-31T00:00:00Z.",
        id="start-date-int",
    ),
    pytest.param(
        with_key(campaign_channels=["fax"]),
        "'campaign_channels.0' is invalid: input should be 'email', 'sms' or 'mobile_push'.",
        id="unknown-channel",
    ),
    pytest.param(
        with_key(campaign_channels=[]),
        "'campaign_channels' must list at least one of email, sms, mobile_push.",
        id="empty-channels",
    ),
    pytest.param(
        with_key(campaign_channels=["sms", "email", "sms"]),
        "'campaign_channels' must not repeat a channel.",
        id="repeated-channel",
    ),
    pytest.param(
        with_key(campaign_channels="email"),
        "'campaign_channels' is invalid: input should be a valid tuple.",
        id="channels-not-a-list",
    ),
    pytest.param(
        with_key(events_lookback_window=-1),
        "'events_lookback_window' is invalid: input should be greater than or equal to 0.",
        id="lookback-negative",
    ),
    pytest.param(
        with_key(events_lookback_window=721),
        "'events_lookback_window' is invalid: input should be less than or equal to 720.",
        id="lookback-too-large",
    ),
    pytest.param(
        with_key(events_lookback_window="24"),
        "'events_lookback_window' is invalid: input should be a valid integer.",
        id="lookback-string",
    ),
    pytest.param(
        with_key(events_lookback_window=24.0),
        "'events_lookback_window' is invalid: input should be a valid integer.",
        id="lookback-float",
    ),
    pytest.param(
        with_key(events_lookback_window=True),
        "'events_lookback_window' is invalid: input should be a valid integer.",
        id="lookback-bool",
    ),
    pytest.param(
        with_key(num_workers=0),
        "'num_workers' is invalid: input should be greater than or equal to 1.",
        id="workers-zero",
    ),
    pytest.param(
        with_key(num_workers=17),
        "'num_workers' is invalid: input should be less than or equal to 16.",
        id="workers-17",
    ),
    pytest.param(
        with_key(num_workers="4"),
        "'num_workers' is invalid: input should be a valid integer.",
        id="workers-string",
    ),
    pytest.param(
        with_key(page_size=100),
        "'page_size' is not a known option of this connector.",
        id="unknown-option",
    ),
    pytest.param(
        with_key(event_metric_ids=["MtrcA1", ""]),
        "'event_metric_ids' must be a list of Klaviyo metric ids "
        "(non-empty strings without quotes).",
        id="metric-id-empty",
    ),
    pytest.param(
        with_key(event_metric_ids=["  "]),
        "'event_metric_ids' must be a list of Klaviyo metric ids "
        "(non-empty strings without quotes).",
        id="metric-id-blank",
    ),
    pytest.param(
        with_key(event_metric_ids=["Mtrc'A1"]),
        "'event_metric_ids' must be a list of Klaviyo metric ids "
        "(non-empty strings without quotes).",
        id="metric-id-quote",
    ),
    pytest.param(
        with_key(event_metric_ids=[42]),
        "'event_metric_ids' must be a list of Klaviyo metric ids "
        "(non-empty strings without quotes).",
        id="metric-id-int",
    ),
    pytest.param(
        with_key(event_metric_ids="MtrcA1"),
        "'event_metric_ids' is invalid: input should be a valid tuple.",
        id="metric-ids-not-a-list",
    ),
    pytest.param(
        with_key(event_metric_ids=["MtrcA1", "MtrcA1"]),
        "'event_metric_ids' must not repeat a metric id.",
        id="metric-id-repeated",
    ),
    pytest.param(
        {"api_key": "", "num_workers": 0},
        "'api_key' must be a non-empty Klaviyo private API key (pk_...); "
        "'num_workers' is invalid: input should be greater than or equal to 1.",
        id="two-fields-wrong",
    ),
]


def test_defaults_apply_when_only_the_api_key_is_given() -> None:
    parsed = KlaviyoConfig.parse({"api_key": CANARY_KEY})

    assert parsed.api_key.get_secret_value() == CANARY_KEY
    assert parsed.start_date == datetime(2012, 1, 1, tzinfo=timezone.utc)
    assert parsed.campaign_channels == ("email",)
    assert parsed.events_lookback_window == 0
    assert parsed.num_workers == 4
    assert parsed.event_metric_ids == ()


def test_every_option_is_read_into_its_typed_value() -> None:
    raw = with_key(
        start_date="2024-01-31 05:30:00+05:30",
        campaign_channels=["sms", "mobile_push"],
        events_lookback_window=720,
        num_workers=16,
        event_metric_ids=["MtrcA1", "MtrcB2"],
    )

    parsed = KlaviyoConfig.parse(raw)

    assert parsed.start_date == datetime(2024, 1, 31, tzinfo=timezone.utc)
    assert parsed.campaign_channels == ("sms", "mobile_push")
    assert parsed.events_lookback_window == 720
    assert parsed.num_workers == 16
    assert parsed.event_metric_ids == ("MtrcA1", "MtrcB2")


@pytest.mark.parametrize("empty_start", [None, ""])
def test_an_empty_start_date_means_the_start_of_account_history(empty_start: Any) -> None:
    parsed = KlaviyoConfig.parse(with_key(start_date=empty_start))

    assert parsed.start_date == datetime(2012, 1, 1, tzinfo=timezone.utc)


def test_a_start_date_before_2012_is_raised_to_2012() -> None:
    parsed = KlaviyoConfig.parse(with_key(start_date="2005-06-01T00:00:00Z"))

    assert parsed.start_date == datetime(2012, 1, 1, tzinfo=timezone.utc)


def test_null_metric_ids_mean_every_metric() -> None:
    parsed = KlaviyoConfig.parse(with_key(event_metric_ids=None))

    assert parsed.event_metric_ids == ()


def test_keys_starting_with_an_underscore_are_ignored() -> None:
    raw = with_key(_limit=5, __injected_declarative_manifest={"x": 1}, num_workers=2)

    parsed = KlaviyoConfig.parse(raw)

    assert parsed.num_workers == 2
    assert parsed.model_dump(exclude={"api_key"}) == {
        "start_date": datetime(2012, 1, 1, tzinfo=timezone.utc),
        "campaign_channels": ("email",),
        "events_lookback_window": 0,
        "num_workers": 2,
        "event_metric_ids": (),
    }


def test_the_api_key_never_appears_in_the_repr() -> None:
    parsed = KlaviyoConfig.parse(with_key())

    assert CANARY_KEY not in repr(parsed)
    assert CANARY_KEY not in str(parsed)


@pytest.mark.parametrize(("raw", "problem"), BAD_CONFIGS)
def test_bad_config_is_a_config_error_naming_the_field(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(AirbyteTracedException) as raised:
        KlaviyoConfig.parse(raw)

    assert raised.value.failure_type == FailureType.config_error
    assert raised.value.message == PREFIX + problem
    assert raised.value.internal_message == PREFIX + problem


@pytest.mark.parametrize(("raw", "problem"), BAD_CONFIGS)
def test_bad_config_message_never_contains_the_api_key(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(AirbyteTracedException) as raised:
        KlaviyoConfig.parse(raw)

    trace = raised.value.as_airbyte_message().trace
    assert trace is not None and trace.error is not None
    assert CANARY_KEY not in str(raised.value)
    assert CANARY_KEY not in (raised.value.message or "")
    assert CANARY_KEY not in (raised.value.internal_message or "")
    assert CANARY_KEY not in (trace.error.stack_trace or "")


@pytest.mark.parametrize("not_a_mapping", [[CANARY_KEY], CANARY_KEY, None])
def test_a_config_that_is_not_an_object_is_a_config_error(not_a_mapping: Any) -> None:
    with pytest.raises(AirbyteTracedException) as raised:
        KlaviyoConfig.parse(not_a_mapping)

    assert raised.value.failure_type == FailureType.config_error
    assert raised.value.message == "The config must be a JSON object."


def test_an_unhashable_channel_is_a_config_error() -> None:
    with pytest.raises(AirbyteTracedException) as raised:
        KlaviyoConfig.parse(with_key(campaign_channels=[["email"]]))

    assert raised.value.failure_type == FailureType.config_error


def test_a_start_date_outside_the_utc_range_is_a_config_error() -> None:
    with pytest.raises(AirbyteTracedException) as raised:
        KlaviyoConfig.parse(with_key(start_date="0001-01-01T00:00:00+01:00"))

    assert raised.value.failure_type == FailureType.config_error
