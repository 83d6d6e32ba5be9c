"""Klaviyo's per-endpoint fixed-window rate limits: a burst window (1 s) and a steady one (1 min).

Windows are aligned to the clock, like Klaviyo's; a request over either window is refused with the
whole seconds until that window resets. Refused requests do not count against the windows.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable


class RateLimiter:
    """Counts requests per key in the current second and minute; thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, list[int]] = {}

    def acquire(self, key: str, burst: int, steady: int) -> tuple[int | None, int]:
        """Count one request; return (seconds to wait if refused else None, steady remaining)."""
        now = self._clock()
        second, minute = math.floor(now), math.floor(now / 60)
        with self._lock:
            window = self._windows.setdefault(key, [second, 0, minute, 0])
            if window[0] != second:
                window[0], window[1] = second, 0
            if window[2] != minute:
                window[2], window[3] = minute, 0

            waits = []
            if window[1] >= burst:
                waits.append(math.ceil(second + 1 - now))
            if window[3] >= steady:
                waits.append(math.ceil((minute + 1) * 60 - now))
            if waits:
                return max(1, *waits), max(0, steady - window[3])

            window[1] += 1
            window[3] += 1
            return None, steady - window[3]

    def reset_in(self) -> int:
        """Seconds until the current steady window resets (for `RateLimit-Reset`)."""
        now = self._clock()
        return math.ceil((math.floor(now / 60) + 1) * 60 - now)
