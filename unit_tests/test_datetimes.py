"""Specification of `source_klaviyo.datetimes`: every Klaviyo form becomes one emitted form."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from source_klaviyo.datetimes import (
    EMITTED_LENGTH,
    format_datetime,
    format_filter_literal,
    is_emitted_form,
    normalize_datetime,
    parse_datetime,
)

EXPECTED_FORM = "expected a form like 2024-01-31T00:00:00Z"

# Every shape Klaviyo (or a user typing a start date) writes, and the one form we emit for it.
KLAVIYO_FORMS = [
    ("2024-04-01T17:33:15+00:00", "2024-04-01T17:33:15.000000Z"),
    ("2024-04-01 17:33:15+00:00", "2024-04-01T17:33:15.000000Z"),
    ("2023-11-02T13:09:45.276362+00:00", "2023-11-02T13:09:45.276362Z"),
    ("2023-11-02 13:09:45.276362+00:00", "2023-11-02T13:09:45.276362Z"),
    ("2022-05-31 06:36:45.5+00:00", "2022-05-31T06:36:45.500000Z"),
    ("2024-04-01T17:33:15.123456789Z", "2024-04-01T17:33:15.123456Z"),
    ("2024-04-01T17:33:15.999999999+00:00", "2024-04-01T17:33:15.999999Z"),
    ("2024-04-01T17:33:15Z", "2024-04-01T17:33:15.000000Z"),
    ("2024-04-01t17:33:15z", "2024-04-01T17:33:15.000000Z"),
    ("2024-04-01T17:33:15,25Z", "2024-04-01T17:33:15.250000Z"),
    ("2024-04-01T12:33:15-05:00", "2024-04-01T17:33:15.000000Z"),
    ("2024-04-01T23:03:15+0530", "2024-04-01T17:33:15.000000Z"),
    ("2024-04-01T23:03:15+05:30", "2024-04-01T17:33:15.000000Z"),
    ("2024-03-31T23:33:15-18:00", "2024-04-01T17:33:15.000000Z"),
    ("2024-04-01T17:33:15 +00:00", "2024-04-01T17:33:15.000000Z"),
    ("2024-04-01T17:33:15", "2024-04-01T17:33:15.000000Z"),
    ("2024-04-01T17:33", "2024-04-01T17:33:00.000000Z"),
    ("2024-04-01", "2024-04-01T00:00:00.000000Z"),
    ("  2024-04-01T17:33:15Z  ", "2024-04-01T17:33:15.000000Z"),
    ("2024-02-29T23:59:59.999999+00:00", "2024-02-29T23:59:59.999999Z"),
    ("2023-12-31T19:00:00-05:00", "2024-01-01T00:00:00.000000Z"),
]

INVALID_VALUES = [
    "2024-13-01T00:00:00+00:00",
    "2024-02-30T00:00:00+00:00",
    "2023-02-29",
    "2024-04-01T24:00:00+00:00",
    "2024-04-01T17:60:00+00:00",
    "2024-04-01T17:33:60+00:00",
    "2024-04-01X17:33:15+00:00",
    "2024-4-1",
    "2024-04-01T17:33:15.1234567890Z",
    "2024-04-01T17:33:15+5",
    "not a date",
    "yesterday",
    "",
    " ",
]


@pytest.mark.parametrize(("klaviyo_value", "emitted"), KLAVIYO_FORMS)
def test_normalize_datetime_rewrites_every_klaviyo_form_to_the_emitted_form(
    klaviyo_value: str, emitted: str
) -> None:
    normalized = normalize_datetime(klaviyo_value)

    assert normalized == emitted


@pytest.mark.parametrize(("klaviyo_value", "emitted"), KLAVIYO_FORMS)
def test_parse_datetime_returns_the_instant_in_utc(klaviyo_value: str, emitted: str) -> None:
    parsed = parse_datetime(klaviyo_value)

    assert parsed.tzinfo is timezone.utc
    assert format_datetime(parsed) == emitted


@pytest.mark.parametrize(
    "fast_path_value",
    [
        "2024-04-01T17:33:15+00:00",
        "2024-04-01 17:33:15+00:00",
        "2023-11-02T13:09:45.276362+00:00",
        "2023-11-02 13:09:45.000001+00:00",
        "2024-02-29T00:00:00+00:00",
        "1999-12-31T23:59:59.999999+00:00",
    ],
)
def test_fast_path_and_full_parser_agree(fast_path_value: str) -> None:
    through_parser = format_datetime(parse_datetime(fast_path_value))

    normalized = normalize_datetime(fast_path_value)

    assert normalized == through_parser


@pytest.mark.parametrize(
    "invalid_value",
    [
        "2024-13-01T00:00:00+00:00",
        "2024-02-30T00:00:00+00:00",
        "2024-04-01T24:00:00+00:00",
        "2024-04-01T17:60:00+00:00",
        "2024-04-01T17:33:60+00:00",
        "2024-04-01X17:33:15+00:00",
        "2024-0a-01T17:33:15+00:00",
        "2024-04-01T17:33:15.27636a+00:00",
    ],
)
def test_fast_path_shaped_but_invalid_values_are_returned_unchanged(invalid_value: str) -> None:
    normalized = normalize_datetime(invalid_value)

    assert normalized == invalid_value


@pytest.mark.parametrize("invalid_value", INVALID_VALUES)
def test_normalize_datetime_returns_invalid_values_unchanged(invalid_value: str) -> None:
    normalized = normalize_datetime(invalid_value)

    assert normalized == invalid_value


@pytest.mark.parametrize("non_string", [None, 1711992795, 17.5, ["2024-04-01"], {"a": 1}])
def test_normalize_datetime_returns_non_strings_unchanged(non_string: object) -> None:
    normalized = normalize_datetime(non_string)

    assert normalized is non_string


@pytest.mark.parametrize(
    "malformed_value",
    [
        "2024-04-01X17:33:15+00:00",
        "2024-4-1",
        "2024-04-01T17:33:15.1234567890Z",
        "2024-04-01T17:33:15+5",
        "not a date",
        "",
    ],
)
def test_parse_datetime_rejects_malformed_values_naming_the_expected_form(
    malformed_value: str,
) -> None:
    with pytest.raises(ValueError) as raised:
        parse_datetime(malformed_value)

    assert str(raised.value) == f"{malformed_value!r} is not an ISO 8601 datetime; {EXPECTED_FORM}"


@pytest.mark.parametrize(
    ("impossible_value", "reason"),
    [
        ("2024-13-01T00:00:00+00:00", "month must be in 1..12"),
        ("2024-02-30", "day is out of range for month"),
        ("2023-02-29T00:00:00Z", "day is out of range for month"),
        ("2024-04-01T24:00:00Z", "hour must be in 0..23"),
    ],
)
def test_parse_datetime_rejects_impossible_dates_naming_the_value(
    impossible_value: str, reason: str
) -> None:
    with pytest.raises(ValueError) as raised:
        parse_datetime(impossible_value)

    assert str(raised.value) == (
        f"{impossible_value!r} is not a valid datetime ({reason}); {EXPECTED_FORM}"
    )


def test_parse_datetime_rejects_a_non_string() -> None:
    with pytest.raises(ValueError) as raised:
        parse_datetime(20240401)  # type: ignore[arg-type]

    assert str(raised.value) == f"20240401 is not an ISO 8601 datetime; {EXPECTED_FORM}"


def test_parse_datetime_rejects_an_offset_of_24_hours_naming_the_expected_form() -> None:
    with pytest.raises(ValueError) as raised:
        parse_datetime("2024-04-01T17:33:15+24:00")

    assert "expected a form like 2024-01-31T00:00:00Z" in str(raised.value)


@pytest.mark.parametrize("out_of_range", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_normalize_datetime_returns_values_outside_the_utc_range_unchanged(
    out_of_range: str,
) -> None:
    normalized = normalize_datetime(out_of_range)

    assert normalized == out_of_range


def test_years_below_1000_keep_the_fixed_width_form() -> None:
    normalized = normalize_datetime("0999-01-01T00:00:00Z")

    assert normalized == "0999-01-01T00:00:00.000000Z"


def test_parse_datetime_rejects_non_ascii_digits() -> None:
    arabic_indic_year = "\u0662\u0660\u0662\u0664-04-01"

    with pytest.raises(ValueError):
        parse_datetime(arabic_indic_year)


@pytest.mark.parametrize(
    ("moment", "literal"),
    [
        (datetime(2024, 4, 1, 17, 33, 15, tzinfo=timezone.utc), "2024-04-01T17:33:15Z"),
        (datetime(2024, 4, 1, 17, 33, 15, 999999, tzinfo=timezone.utc), "2024-04-01T17:33:15Z"),
        (datetime(2024, 4, 1, 17, 33, 15, 1, tzinfo=timezone.utc), "2024-04-01T17:33:15Z"),
        (
            datetime(2024, 4, 1, 12, 33, 15, 500000, tzinfo=timezone(timedelta(hours=-5))),
            "2024-04-01T17:33:15Z",
        ),
        (
            datetime(
                2024, 1, 1, 5, 29, 59, 900000, tzinfo=timezone(timedelta(hours=5, minutes=30))
            ),
            "2023-12-31T23:59:59Z",
        ),
    ],
)
def test_format_filter_literal_rounds_down_to_whole_seconds_in_utc(
    moment: datetime, literal: str
) -> None:
    formatted = format_filter_literal(moment)

    assert formatted == literal


def test_format_datetime_always_writes_six_fractional_digits_and_z() -> None:
    moment = datetime(2024, 4, 1, 23, 3, 15, tzinfo=timezone(timedelta(hours=5, minutes=30)))

    formatted = format_datetime(moment)

    assert formatted == "2024-04-01T17:33:15.000000Z"
    assert len(formatted) == EMITTED_LENGTH


def test_emitted_strings_sort_in_the_same_order_as_the_instants() -> None:
    klaviyo_values = [
        "2024-04-01T17:33:15.5+00:00",
        "2024-04-01 17:33:15+00:00",
        "2024-04-01T12:33:15.25-05:00",
        "2024-04-01",
        "2023-12-31T23:59:59.999999999Z",
        "2024-04-01T23:03:16+0530",
        "2024-04-01T17:33:15.000001+00:00",
        "2010-01-01T00:00:00Z",
    ]
    by_instant = sorted(klaviyo_values, key=parse_datetime)

    by_string = sorted(klaviyo_values, key=normalize_datetime)

    assert by_string == by_instant
    assert by_instant == [
        "2010-01-01T00:00:00Z",
        "2023-12-31T23:59:59.999999999Z",
        "2024-04-01",
        "2024-04-01 17:33:15+00:00",
        "2024-04-01T17:33:15.000001+00:00",
        "2024-04-01T12:33:15.25-05:00",
        "2024-04-01T17:33:15.5+00:00",
        "2024-04-01T23:03:16+0530",
    ]


def test_emitted_form_has_a_fixed_width_so_string_comparison_matches_time() -> None:
    earlier = normalize_datetime("2024-04-01T17:33:15.5+00:00")
    later = normalize_datetime("2024-04-01T17:33:15.25-00:01")

    assert earlier == "2024-04-01T17:33:15.500000Z"
    assert later == "2024-04-01T17:34:15.250000Z"
    assert earlier < later


@pytest.mark.parametrize(
    ("value", "is_cursor"),
    [
        ("2024-04-01T17:33:15.000000Z", True),
        ("2024-04-01T17:33:15Z", False),
        ("2024-04-01T17:33:15+00:00", False),
        ("2024-04-01T17:33:15.000000+", False),
        (None, False),
        (1711992795, False),
    ],
)
def test_is_emitted_form_accepts_only_the_fixed_width_form(value: object, is_cursor: bool) -> None:
    accepted = is_emitted_form(value)

    assert accepted is is_cursor
