"""Request helpers shared by the sandbox tests: Klaviyo headers, GET, walking `links.next`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from klaviyo_sandbox import FULL_KEY, REVISION, SandboxServer


def headers(key: str | None = FULL_KEY, revision: str | None = REVISION) -> dict[str, str]:
    """Klaviyo request headers; pass None to leave one out."""
    sent = {"accept": "application/vnd.api+json"}
    if key is not None:
        sent["Authorization"] = f"Klaviyo-API-Key {key}"
    if revision is not None:
        sent["revision"] = revision
    return sent


def get(
    server: SandboxServer,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    key: str | None = FULL_KEY,
    revision: str | None = REVISION,
) -> requests.Response:
    """GET `path` (relative to the API root) the way a connector would."""
    return requests.get(
        server.api_url + path, params=params, headers=headers(key, revision), timeout=10
    )


def walk(
    session: requests.Session, url: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Follow `links.next` verbatim from the first page to the last; return every record."""
    records: list[dict[str, Any]] = []
    response = session.get(url, params=params, headers=headers(), timeout=10)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        records.extend(body["data"])
        if body["links"]["next"] is None:
            return records
        response = session.get(body["links"]["next"], headers=headers(), timeout=10)


def error(response: requests.Response) -> dict[str, Any]:
    """The single error object of a Klaviyo error document."""
    errors = response.json()["errors"]
    assert len(errors) == 1
    found: dict[str, Any] = errors[0]
    return found
