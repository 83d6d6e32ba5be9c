"""Klaviyo's JSON:API error document, and the exception the request handlers raise to send one.

Bodies copy Klaviyo's shape exactly: `{"errors": [{id, status, code, title, detail, source,
meta}]}` with an integer `status` and a fresh UUID `id`, so a connector's error parsing is tested
against the real thing.
"""

from __future__ import annotations

import uuid
from typing import Any

_CODES: dict[int, tuple[str, str]] = {
    400: ("invalid", "Invalid input."),
    401: ("authentication_failed", "Incorrect authentication credentials."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    410: ("gone", "Gone."),
    429: ("throttled", "Request was throttled."),
    500: ("error", "A server error occurred."),
    502: ("bad_gateway", "Bad gateway."),
    503: ("service_unavailable", "Service temporarily unavailable."),
    504: ("gateway_timeout", "Gateway timeout."),
}


class ApiError(Exception):
    """Answer the current request with this Klaviyo error (and optional extra headers)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        parameter: str | None = None,
        pointer: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.parameter = parameter
        self.pointer = pointer
        self.headers = headers or {}

    def document(self) -> dict[str, Any]:
        return error_document(
            self.status, self.detail, parameter=self.parameter, pointer=self.pointer
        )


def error_document(
    status: int, detail: str, *, parameter: str | None = None, pointer: str | None = None
) -> dict[str, Any]:
    """One-error document; `source` names the query parameter, else a JSON pointer."""
    code, title = _CODES.get(status, ("error", "An error occurred."))
    source = {"parameter": parameter} if parameter is not None else {"pointer": pointer or "/data/"}
    error = {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
        "source": source,
        "meta": {},
    }
    return {"errors": [error]}


def throttled(retry_after: int) -> ApiError:
    """The 429 Klaviyo sends when a rate-limit window is full."""
    detail = f"Request was throttled. Expected available in {retry_after} second(s)."
    return ApiError(429, detail, pointer="/data/", headers={"Retry-After": str(retry_after)})
