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
_DIGITS = frozenset("0123456789")
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

    The common Klaviyo shapes (`T` or space, `+00:00`, no fraction or six digits) are rewritten
    by slicing after a range check, because this runs once per event; anything else goes through
    `parse_datetime`. A value that is not a datetime at all is returned unchanged rather than
    dropped, so no data is lost; cursors ignore such values (see `is_emitted_form`).
    """
    if value is None or not isinstance(value, str):
        return value
    size = len(value)
    if (size == 25 or (size == 32 and value[19] == ".")) and value.endswith("+00:00"):
        if value[10] in "T " and _is_valid_utc_prefix(value):
            fraction = value[20:26] if size == 32 else "000000"
            return f"{value[:10]}T{value[11:19]}.{fraction}Z"
    try:
        return format_datetime(parse_datetime(value))
    except ValueError:
        return value


def is_emitted_form(value: Any) -> bool:
    """Tell whether `value` is a datetime string in the emitted form (safe to use as a cursor)."""
    return isinstance(value, str) and len(value) == EMITTED_LENGTH and value[-1] == "Z"


def _is_valid_utc_prefix(value: str) -> bool:
    digits = value[0:4] + value[5:7] + value[8:10] + value[11:13] + value[14:16] + value[17:19]
    if value[19] == ".":
        digits += value[20:26]
    if not _DIGITS.issuperset(digits) or value[4] + value[7] + value[13] + value[16] != "--::":
        return False
    try:
        datetime(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return False
    return int(value[11:13]) < 24 and int(value[14:16]) < 60 and int(value[17:19]) < 60
