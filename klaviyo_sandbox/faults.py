"""Injected failures: what a `Fault` describes and the book that hands them out in request order.

A fault matches requests by path and page (`on`), lets `after` matching requests through, then
applies to the next `times` of them. Matching and counting happen under one lock, so with
concurrent workers exactly `times` requests are faulted, the earliest to arrive.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import Any

BODIES = ("json", "html", "truncated", "invalid_json")
ACTIONS = ("status", "reset", "hang")
PAGES = ("any", "first_page", "next_pages")


@dataclass(frozen=True)
class Fault:
    """One injected failure.

    - `path`: an API path such as "/api/events" (trailing slash ignored) or "*" for every one.
    - `action`: "status" answers `status` with `body` instead of the real response; "reset"
      sends the real headers and half the body, then resets the connection; "hang" waits
      `hang_seconds` (cut short when the server stops) and then answers normally.
    - `body`: "json" (Klaviyo error document), "html" (a proxy's error page), "truncated" (the
      real or error body cut in half), "invalid_json" (not JSON). With `status=200`, "truncated"
      and "invalid_json" spoil a successful page.
    - `retry_after`: sent as the `Retry-After` header when not None (and quoted in a 429 detail).
    - `on`: "any", "first_page" (no `page[cursor]`) or "next_pages" (with one).
    - `after`: let this many matching requests through first; `times`: then fault this many
      (None = every later one).
    """

    path: str = "*"
    status: int = 500
    retry_after: int | None = None
    body: str = "json"
    action: str = "status"
    times: int | None = 1
    on: str = "any"
    after: int = 0
    hang_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.body not in BODIES:
            raise ValueError(f"body must be one of {BODIES}, not {self.body!r}")
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, not {self.action!r}")
        if self.on not in PAGES:
            raise ValueError(f"on must be one of {PAGES}, not {self.on!r}")
        if (self.times is not None and self.times < 0) or self.after < 0:
            raise ValueError("times and after must not be negative")

    @classmethod
    def from_json(cls, obj: Any) -> Fault:
        """Build a fault from a JSON object with the same field names; reject unknown keys."""
        if not isinstance(obj, dict):
            raise ValueError("a fault must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(obj) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**obj)

    def matches(self, path: str, has_cursor: bool) -> bool:
        if self.path != "*" and self.path.rstrip("/") != path:
            return False
        if self.on == "first_page":
            return not has_cursor
        if self.on == "next_pages":
            return has_cursor
        return True


class _Entry:
    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.seen = 0
        self.applied = 0


class FaultBook:
    """The active faults of one server, consumed thread-safely in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._entries.append(_Entry(fault))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def take(self, path: str, has_cursor: bool) -> Fault | None:
        """The first fault that applies to this request, counting it as used."""
        with self._lock:
            chosen = None
            for entry in self._entries:
                fault = entry.fault
                if not fault.matches(path, has_cursor):
                    continue
                if fault.times is not None and entry.applied >= fault.times:
                    continue
                entry.seen += 1
                if entry.seen <= fault.after:
                    continue
                entry.applied += 1
                chosen = fault
                break
            self._entries = [
                e for e in self._entries if e.fault.times is None or e.applied < e.fault.times
            ]
            return chosen
