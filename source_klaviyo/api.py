"""The Klaviyo API contract this connector is written against, pinned in one place.

Everything a reader needs to know about the remote side lives here: where the API is, which
revision we speak, which scope each endpoint needs, how large a page may be and how fast each
endpoint may be called. Streams, the connection check, the rate limiter and the tests read these
values; nothing else spells them out again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata

DEFAULT_API_URL = "https://a.klaviyo.com/api/"
API_URL_ENV = "KLAVIYO_API_URL"
REQUEST_TIMEOUT_ENV = "KLAVIYO_REQUEST_TIMEOUT_SECONDS"

# 2026-07-15 is the newest revision that still returns the classic campaign shape (a flat
# `attributes` object); 2026-10-15 wraps campaigns in `definition`.
REVISION = "2026-07-15"

# Klaviyo answers 400 to a datetime bound that is "now" or later, so every upper bound is this
# far behind the moment the sync started.
UPPER_BOUND_MARGIN_SECONDS = 5

DEFAULT_REQUEST_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Tier:
    """A Klaviyo rate-limit tier: calls allowed per one-second burst and per one-minute window."""

    per_second: int
    per_minute: int


@dataclass(frozen=True)
class Endpoint:
    """One list endpoint: its path below the API root, scope, largest page and rate tier."""

    path: str
    scope: str
    max_page_size: int | None
    tier: Tier


TIER_S = Tier(per_second=3, per_minute=60)
TIER_M = Tier(per_second=10, per_minute=150)
TIER_XL = Tier(per_second=350, per_minute=3500)

CAMPAIGNS = Endpoint(path="campaigns", scope="campaigns:read", max_page_size=100, tier=TIER_M)
EVENTS = Endpoint(path="events", scope="events:read", max_page_size=1000, tier=TIER_XL)
FLOWS = Endpoint(path="flows", scope="flows:read", max_page_size=50, tier=TIER_S)
# Get Metrics takes no page[size]; it answers pages of at most 200.
METRICS = Endpoint(path="metrics", scope="metrics:read", max_page_size=None, tier=TIER_M)

CAMPAIGN_CHANNELS = ("email", "sms", "mobile_push")


def api_url() -> str:
    """Return the API root, honouring the `KLAVIYO_API_URL` testing override.

    The override exists for the local sandbox and tests; it is deliberately not a spec field, so
    no connection configured in the Airbyte UI can send the API key anywhere but Klaviyo.
    """
    url = os.environ.get(API_URL_ENV) or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


def request_timeout() -> float:
    """Return the per-request read timeout in seconds (tests shorten it through the env)."""
    raw = os.environ.get(REQUEST_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_REQUEST_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{REQUEST_TIMEOUT_ENV} must be a number of seconds, got {raw!r}"
        ) from None
    if value <= 0:
        raise ValueError(f"{REQUEST_TIMEOUT_ENV} must be positive, got {raw!r}")
    return value


def connector_version() -> str:
    """Return the installed package version, used in the User-Agent header."""
    try:
        return metadata.version("source-klaviyo")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def user_agent() -> str:
    return f"airbyte-source-klaviyo/{connector_version()}"
