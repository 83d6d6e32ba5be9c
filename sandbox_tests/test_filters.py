"""The filter grammar: what parses to which conditions, and what Klaviyo would reject."""

from __future__ import annotations

import pytest

from klaviyo_sandbox.endpoints import ENDPOINTS
from klaviyo_sandbox.filters import (
    Condition,
    DateTimeValue,
    FilterError,
    matches,
    parse_filter,
    validate,
)

JAN_1 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in epoch microseconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "equals(messages.channel,'email')",
            [Condition("equals", "messages.channel", "email")],
        ),
        (
            'equals(messages.channel,"sms"),equals(archived,true)',
            [
                Condition("equals", "messages.channel", "sms"),
                Condition("equals", "archived", True),
            ],
        ),
        (
            "and(greater-or-equal(updated_at,2024-01-01T00:00:00Z),equals(archived,false))",
            [
                Condition(
                    "greater-or-equal", "updated_at", DateTimeValue(JAN_1, "2024-01-01T00:00:00Z")
                ),
                Condition("equals", "archived", False),
            ],
        ),
        (
            "greater-than(datetime,2024-01-01 02:00:00+02:00)",
            [
                Condition(
                    "greater-than", "datetime", DateTimeValue(JAN_1, "2024-01-01 02:00:00+02:00")
                )
            ],
        ),
        (
            "less-than(datetime,2024-01-01T00:00:00.5)",
            [
                Condition(
                    "less-than", "datetime", DateTimeValue(JAN_1 + 500_000, "2024-01-01T00:00:00.5")
                )
            ],
        ),
        (
            "less-than(datetime,2023-12-31T19:00:00.000001-05:00)",
            [
                Condition(
                    "less-than",
                    "datetime",
                    DateTimeValue(JAN_1 + 1, "2023-12-31T19:00:00.000001-05:00"),
                )
            ],
        ),
        ("any(id,['a','b'])", [Condition("any", "id", ["a", "b"])]),
        ("has(profile)", [Condition("has", "profile", None)]),
        (
            "greater-or-equal(timestamp,1700000000)",
            [Condition("greater-or-equal", "timestamp", 1700000000)],
        ),
        ("equals(name,'it\\'s, (odd)')", [Condition("equals", "name", "it's, (odd)")]),
        (
            "and(and(equals(a,1)), equals(b,2.5))",
            [Condition("equals", "a", 1), Condition("equals", "b", 2.5)],
        ),
    ],
)
def test_parse_valid_filters(text: str, expected: list[Condition]) -> None:
    conditions = parse_filter(text)

    assert conditions == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "equals(status,Draft)",  # unquoted string
        "equals(name,'open",  # unterminated string
        "equals(archived,true",  # missing parenthesis
        "equals(archived,true))",  # trailing text
        "greater-than(datetime,2024-01-01T00:00:00 00:00)",  # a '+' decoded as a space
        "greater-than(datetime,2024-01-01)",  # a date without time
        "greater-than(datetime,2024-13-01T00:00:00Z)",  # no month 13
        "greater-than(datetime,2024-01-01T00:00:00.1234567Z)",  # more than microseconds
        "or(equals(a,1),equals(b,2))",  # only AND exists
        "not-an-operator(id,'x')",
        "equals(id,'x');equals(id,'y')",
        "any(id,[])",
    ],
)
def test_parse_rejects_malformed_filters(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


@pytest.mark.parametrize(
    ("endpoint", "text"),
    [
        ("/api/events", "greater-than(datetime,'2024-01-01T00:00:00Z')"),  # quoted datetime
        ("/api/events", "equals(datetime,2024-01-01T00:00:00Z)"),  # no equals on datetime
        ("/api/events", "greater-than(timestamp,2024-01-01T00:00:00Z)"),  # timestamp is a number
        ("/api/events", "has(profile,'x')"),
        ("/api/events", "equals(uuid,'x')"),  # unknown field
        ("/api/campaigns", "equals(archived,'true')"),  # a quoted boolean
        ("/api/campaigns", "equals(created_at,2024-01-01T00:00:00Z)"),
        ("/api/campaigns", "any(status,'Draft')"),  # any needs a list
        ("/api/flows", "contains(status,'live')"),
        ("/api/metrics", "equals(name,'Placed Order')"),
    ],
)
def test_validate_rejects_what_the_endpoint_does_not_offer(endpoint: str, text: str) -> None:
    spec = ENDPOINTS[endpoint].filters
    assert spec is not None

    with pytest.raises(FilterError):
        validate(parse_filter(text), spec, "resource")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("equals(messages.channel,'sms')", True),
        ("equals(messages.channel,'email')", False),
        ("contains(name,'Sale')", True),
        ("contains(name,'sale')", False),
        ("any(status,['Draft','Sent'])", True),
        ("greater-than(updated_at,2024-01-01T00:00:00Z)", False),
        ("less-or-equal(updated_at,2024-01-01T00:00:00Z)", True),
        ("greater-than(scheduled_at,2020-01-01T00:00:00Z)", False),  # null never compares
    ],
)
def test_matches_evaluates_every_condition(text: str, expected: bool) -> None:
    values = {
        "messages.channel": "sms",
        "name": "Summer Sale",
        "status": "Sent",
        "updated_at": JAN_1,
        "scheduled_at": None,
    }

    assert matches(parse_filter(text), values) is expected
