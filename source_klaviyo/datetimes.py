"""Datetimes as Klaviyo writes them, and as this connector emits and stores them.

Klaviyo is inconsistent about datetimes: the same field arrives as `2024-04-01T17:33:15+00:00`,
`2024-04-01 17:33:15+00:00` or `2023-11-02T13:09:45.276362+00:00`. Downstream tables and our
own state need one form, so every datetime leaving the connector is RFC 3339 in UTC with exactly
six fractional digits and a `Z` (`2024-04-01T17:33:15.000000Z`). That form has a fixed width, so
two values compare correctly as plain strings, which the cursors rely on.

Filter literals sent to Klaviyo use whole seconds and `Z` (`2024-04-01T17:33:15Z`): no `+` that
could turn into a space, and lower bounds rounded down so nothing is skipped.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*([Zz]|[+-]\d{2}:?\d{2})?$",
    re.ASCII,
)
# Klaviyo's common UTC forms, with every field range-checked except days 29-31 of short months.
_KLAVIYO_UTC = re.compile(
    r"(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]"
    r"((?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d)(?:\.(\d{6}))?\+00:00",
    re.ASCII,
)
EMITTED_LENGTH = len("2024-04-01T17:33:15.000000Z")


def parse_datetime(value: str) -> datetime:
    """Parse an ISO 8601 / RFC 3339 datetime or date into an aware UTC datetime.

    Accepts `T` or a space between date and time, 0-9 fractional digits (beyond microseconds
    they are truncated), `Z`, `±HH:MM` or `±HHMM` offsets, and no offset at all, read as UTC.
    A bare date means midnight UTC. Raises `ValueError` naming the expected form otherwise.
    """
    match = _DATETIME.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"{value!r} is not an ISO 8601 datetime; expected a form like 2024-01-31T00:00:00Z"
        )
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        tz = timezone.utc
        if offset and offset not in ("Z", "z"):
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micros,
            tzinfo=tz,
        ).astimezone(timezone.utc)
    except (ValueError, OverflowError) as error:
        raise ValueError(
            f"{value!r} is not a valid datetime ({error}); expected a form like "
            "2024-01-31T00:00:00Z"
        ) from None
    return parsed


def format_datetime(moment: datetime) -> str:
    """Format an aware datetime in the one form this connector emits and stores."""
    return f"{_whole_seconds(moment)}.{moment.microsecond:06d}Z"


def format_filter_literal(moment: datetime) -> str:
    """Format a datetime for a Klaviyo filter: whole seconds (rounded down), UTC, `Z`."""
    return f"{_whole_seconds(moment)}Z"


def _whole_seconds(moment: datetime) -> str:
    # strftime("%Y") drops the zero padding of years below 1000 on glibc; keep a fixed width.
    utc = moment.astimezone(timezone.utc)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )


def normalize_datetime(value: Any) -> Any:
    """Return `value` in the emitted form; `None` stays `None`.

    Klaviyo's usual shapes (`T` or space, `+00:00`, no fraction or six digits) are matched by one
    range-checking pattern and rewritten by slicing, because this runs once per event; anything
    else goes through `parse_datetime`. A value that is not a datetime at all is returned
    unchanged rather than dropped, so no data is lost; cursors ignore such values (see
    `is_emitted_form`).
    """
    if type(value) is not str:
        return value
    match = _KLAVIYO_UTC.fullmatch(value)
    if match is not None:
        year, month, day, clock, fraction = match.groups()
        if day < "29" or _is_real_day(year, month, day):
            return f"{year}-{month}-{day}T{clock}.{fraction or '000000'}Z"
    try:
        return format_datetime(parse_datetime(value))
    except ValueError:
        return value


def is_emitted_form(value: Any) -> bool:
    """Tell whether `value` is a datetime string in the emitted form (safe to use as a cursor)."""
    return isinstance(value, str) and len(value) == EMITTED_LENGTH and value[-1] == "Z"


def _is_real_day(year: str, month: str, day: str) -> bool:
    try:
        datetime(int(year), int(month), int(day))
    except ValueError:
        return False
    return True
