"""Klaviyo's `filter` query grammar: parse it, check it against one endpoint, evaluate it.

The grammar is `op(field,value)` conditions joined by commas or wrapped in `and(...)`; every
condition is ANDed, so a parsed filter is a flat list of `Condition`. Literals follow Klaviyo's
rules: strings are quoted, datetimes and numbers and booleans are not, lists are `['a','b']`.
A quoted datetime is just a string, and the field check rejects it like Klaviyo does.

The parser sees the value after `parse_qs` decoding. A client that did not percent-encode a `+`
in an offset hands us a space there, which leaves `00:00` dangling after the datetime: that is a
syntax error here, as it is an invalid filter at Klaviyo.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

COMPARISONS = ("greater-than", "greater-or-equal", "less-than", "less-or-equal")
OPERATORS = frozenset(
    {*COMPARISONS, "equals", "contains", "starts-with", "ends-with", "any", "has"}
)

# Value kinds a (field, operator) pair accepts.
STRING = "string"
STRING_LIST = "string list"
STRING_OR_LIST = "string or string list"
DATETIME = "datetime"
NUMBER = "number"
BOOLEAN = "boolean"
NOTHING = "no value"

FilterSpec = Mapping[str, Mapping[str, str]]

_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})?"
)
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_DELIMITERS = ",)] \t"


class FilterError(ValueError):
    """A filter Klaviyo would answer with 400 `invalid`; the message is the error `detail`."""


@dataclass(frozen=True)
class DateTimeValue:
    """An unquoted datetime literal: its instant in epoch microseconds and the text as written."""

    micros: int
    text: str


@dataclass(frozen=True)
class Condition:
    """One `op(field,value)` term; `value` is None for `has(field)`."""

    op: str
    field: str
    value: Any


def parse_datetime_literal(text: str) -> DateTimeValue:
    """Parse a whole string as a filter datetime literal (naive means UTC)."""
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        raise FilterError(f"Invalid datetime: {text!r}")
    return _datetime_from_match(match)


def parse_filter(text: str) -> list[Condition]:
    """Parse a filter expression into its ANDed conditions; raise FilterError if malformed."""
    parser = _Parser(text)
    conditions = parser.conditions()
    parser.skip_space()
    if not parser.at_end():
        raise parser.error("unexpected text")
    return conditions


def validate(conditions: list[Condition], spec: FilterSpec, resource: str) -> None:
    """Check every condition's field, operator and value kind against one endpoint's spec."""
    for condition in conditions:
        operators = spec.get(condition.field)
        if operators is None:
            raise FilterError(
                f"'{condition.field}' is not a valid field for the resource '{resource}'."
            )
        kind = operators.get(condition.op)
        if kind is None:
            raise FilterError(f"'{condition.op}' is not a valid operator for '{condition.field}'.")
        if not _has_kind(condition.value, kind):
            raise FilterError(
                f"Invalid value for '{condition.op}({condition.field},...)': expected {kind}."
            )


def latest_bound(conditions: list[Condition]) -> DateTimeValue | None:
    """The latest datetime literal in the filter, used for the future-bound check."""
    values = [c.value for c in conditions if isinstance(c.value, DateTimeValue)]
    return max(values, key=lambda v: v.micros) if values else None


def matches(conditions: list[Condition], values: Mapping[str, Any]) -> bool:
    """True if a record whose filterable values are `values` satisfies every condition.

    Datetime fields in `values` are epoch microseconds (None when the attribute is null); a null
    never satisfies a comparison.
    """
    return all(_matches_one(c, values.get(c.field)) for c in conditions)


def _matches_one(condition: Condition, actual: Any) -> bool:
    op, expected = condition.op, condition.value
    if isinstance(expected, DateTimeValue):
        expected = expected.micros
    if op == "has":
        return actual is not None
    if op == "any":
        return actual in expected
    if op == "equals":
        return actual in expected if isinstance(expected, list) else actual == expected
    if actual is None:
        return False
    if op == "contains":
        return expected in actual
    if op == "starts-with":
        return bool(actual.startswith(expected))
    if op == "ends-with":
        return bool(actual.endswith(expected))
    if op == "greater-than":
        return bool(actual > expected)
    if op == "greater-or-equal":
        return bool(actual >= expected)
    if op == "less-than":
        return bool(actual < expected)
    if op == "less-or-equal":
        return bool(actual <= expected)
    raise FilterError(f"'{op}' is not a supported operator.")


def _has_kind(value: Any, kind: str) -> bool:
    if kind == NOTHING:
        return value is None
    if kind == STRING:
        return isinstance(value, str)
    if kind == STRING_LIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == STRING_OR_LIST:
        return _has_kind(value, STRING) or _has_kind(value, STRING_LIST)
    if kind == DATETIME:
        return isinstance(value, DateTimeValue)
    if kind == NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == BOOLEAN:
        return isinstance(value, bool)
    raise AssertionError(kind)


def _datetime_from_match(match: re.Match[str]) -> DateTimeValue:
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone.utc,
        )
    except ValueError as exc:
        raise FilterError(f"Invalid datetime: {match.group(0)!r}") from exc
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        moment -= sign * timedelta(hours=hours, minutes=minutes)
    delta = moment - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    micros += int((fraction or "").ljust(6, "0") or 0)
    return DateTimeValue(micros, match.group(0))


class _Parser:
    """Recursive descent over the filter text, one character position at a time."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> FilterError:
        return FilterError(f"Invalid filter provided: {what} at position {self.pos}.")

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_space(self) -> None:
        while not self.at_end() and self.text[self.pos] in " \t":
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return "" if self.at_end() else self.text[self.pos]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.error(f"expected {char!r}")
        self.pos += 1

    def name(self) -> str:
        self.skip_space()
        match = _NAME_RE.match(self.text, self.pos)
        if match is None:
            raise self.error("expected a name")
        self.pos = match.end()
        return match.group(0)

    def conditions(self) -> list[Condition]:
        found = self.term()
        while self.peek() == ",":
            self.pos += 1
            found.extend(self.term())
        return found

    def term(self) -> list[Condition]:
        op = self.name()
        self.expect("(")
        if op == "and":
            inner = self.conditions()
            self.expect(")")
            return inner
        if op not in OPERATORS:
            raise FilterError(f"'{op}' is not a valid filter operator.")

        field = self.name()
        value: Any = None
        if self.peek() == ",":
            self.pos += 1
            value = self.value()
        self.expect(")")
        return [Condition(op, field, value)]

    def value(self) -> Any:
        char = self.peek()
        if char == "[":
            return self.list_value()
        if char in "'\"":
            return self.string()

        match = _DATETIME_RE.match(self.text, self.pos)
        if match is not None and self.delimited(match.end()):
            self.pos = match.end()
            return _datetime_from_match(match)
        match = _NUMBER_RE.match(self.text, self.pos)
        if match is not None and self.delimited(match.end()):
            self.pos = match.end()
            literal = match.group(0)
            return float(literal) if any(c in literal for c in ".eE") else int(literal)
        for word, boolean in (("true", True), ("false", False)):
            if self.text.startswith(word, self.pos) and self.delimited(self.pos + len(word)):
                self.pos += len(word)
                return boolean
        raise self.error("expected a quoted string, a list, a datetime, a number or a boolean")

    def delimited(self, end: int) -> bool:
        return end >= len(self.text) or self.text[end] in _DELIMITERS

    def list_value(self) -> list[Any]:
        self.expect("[")
        items = [self.value()]
        while self.peek() == ",":
            self.pos += 1
            items.append(self.value())
        self.expect("]")
        return items

    def string(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        chars: list[str] = []
        while not self.at_end():
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and not self.at_end():
                chars.append(self.text[self.pos])
                self.pos += 1
            elif char == quote:
                return "".join(chars)
            else:
                chars.append(char)
        raise self.error("unterminated string")
