"""The connector's configuration: parsed once, validated before any request is sent.

`KlaviyoConfig.parse` turns the raw config mapping into typed values or raises a config error
that names the offending field and the form it expects. The API key is held as a `SecretStr` so
that no repr, log line or validation message can print it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from source_klaviyo.datetimes import parse_datetime

# Klaviyo was founded in 2012; no account holds data from before then.
ACCOUNT_HISTORY_START = datetime(2012, 1, 1, tzinfo=timezone.utc)
MAX_LOOKBACK_HOURS = 24 * 30
MAX_WORKERS = 16

Channel = Literal["email", "sms", "mobile_push"]


class KlaviyoConfig(BaseModel):
    """Validated connector configuration; see `spec.json` for the user-facing descriptions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr
    start_date: datetime = ACCOUNT_HISTORY_START
    campaign_channels: tuple[Channel, ...] = ("email",)
    events_lookback_window: int = Field(default=0, ge=0, le=MAX_LOOKBACK_HOURS, strict=True)
    num_workers: int = Field(default=4, ge=1, le=MAX_WORKERS, strict=True)
    event_metric_ids: tuple[str, ...] = ()

    @field_validator("api_key")
    @classmethod
    def _key_not_blank(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if not key.strip():
            raise ValueError("must be a non-empty Klaviyo private API key (pk_...)")
        if key != key.strip() or any(ch.isspace() for ch in key):
            raise ValueError("must not contain spaces or line breaks; paste the key exactly")
        if not (key.isascii() and key.isprintable()):
            raise ValueError("must contain only printable ASCII characters, as Klaviyo keys do")
        return value

    @field_validator("start_date", mode="before")
    @classmethod
    def _parse_start_date(cls, value: Any) -> datetime:
        if value is None or value == "":
            return ACCOUNT_HISTORY_START
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 string such as 2024-01-31T00:00:00Z")
        parsed = parse_datetime(value)
        if parsed > datetime.now(timezone.utc):
            raise ValueError(f"{value!r} is in the future; use a past date or leave it empty")
        return max(parsed, ACCOUNT_HISTORY_START)

    @field_validator("campaign_channels", mode="before")
    @classmethod
    def _channels_list(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError("must list at least one of email, sms, mobile_push")
            if not all(isinstance(item, str) for item in value):
                raise ValueError("must be a list of channel names: email, sms, mobile_push")
            if len(set(value)) != len(value):
                raise ValueError("must not repeat a channel")
        return value

    @field_validator("event_metric_ids", mode="before")
    @classmethod
    def _metric_ids_list(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, (list, tuple)):
            for item in value:
                if not isinstance(item, str) or not item.strip() or "'" in item:
                    raise ValueError(
                        "must be a list of Klaviyo metric ids (non-empty strings without quotes)"
                    )
            if len(set(value)) != len(value):
                raise ValueError("must not repeat a metric id")
        return value

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> KlaviyoConfig:
        """Validate `raw` (keys starting with `_` are the CDK's own and are ignored)."""
        if not isinstance(raw, Mapping):
            raise config_error("The config must be a JSON object.")
        fields = {key: value for key, value in raw.items() if not str(key).startswith("_")}
        try:
            return cls.model_validate(fields)
        except ValidationError as error:
            raise config_error(_describe(error)) from None


def config_error(message: str) -> AirbyteTracedException:
    """Build the exception the CDK reports as a configuration error (not retried)."""
    return AirbyteTracedException(
        message=message, internal_message=message, failure_type=FailureType.config_error
    )


def _describe(error: ValidationError) -> str:
    """Turn pydantic's errors into one sentence per field, never quoting the submitted values."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "config"
        if item["type"] == "extra_forbidden":
            problems.append(f"'{field}' is not a known option of this connector")
        elif item["type"] == "missing":
            problems.append(f"'{field}' is required")
        else:
            problems.append(f"'{field}' {_expected(item['msg'])}")
    return "Invalid Klaviyo config: " + "; ".join(problems) + "."


def _expected(message: str) -> str:
    text = message.removeprefix("Value error, ")
    if text.startswith(("must", "is ")) or text.startswith("'"):
        return text
    return f"is invalid: {text[0].lower()}{text[1:]}"
