"""Concurrent reading of time windows, with a cursor that never skips a window.

A backfill of events is split into consecutive time windows. A pool of worker threads reads the
windows (each worker follows `links.next` inside its window) and hands whole pages to the
consuming thread through one bounded queue, so memory is bounded by the worker count and the
page size whatever the account holds. Workers only fetch; the consuming thread turns pages into
records. Python runs one thread's code at a time, so a worker that parsed its own page would
wait its turn before asking for the next one: with Klaviyo's latency, that wait is what limits
a concurrent backfill.

Pages of different windows arrive interleaved, so the safe cursor is not "the newest record
seen" but `WindowProgress.cursor`: the end of the last contiguous run of finished windows, or,
inside the first unfinished window (whose pages arrive in cursor order), the cursor value of
its last emitted record. A crash can therefore cause re-reads, never a gap.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")

_PAGE, _DONE, _FAILED = "page", "done", "failed"
_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Window:
    """A half-open time window `[start, end)`."""

    start: datetime
    end: datetime


def split_range(start: datetime, end: datetime, count: int, minimum: timedelta) -> list[Window]:
    """Split `[start, end)` into at most `count` windows of whole seconds, each at least
    `minimum` long (the last one absorbs the remainder)."""
    total = end - start
    if total <= timedelta(0):
        return []
    pieces = max(1, min(count, int(total / minimum) if minimum > timedelta(0) else count))
    pieces = max(1, min(pieces, int(total.total_seconds())))
    step = timedelta(seconds=max(1, int(total.total_seconds() // pieces)))
    edges = [start + step * index for index in range(pieces)] + [end]
    return [Window(edges[i], edges[i + 1]) for i in range(pieces) if edges[i] < edges[i + 1]]


@dataclass
class WindowProgress:
    """Which windows are finished and how far the first unfinished one has been emitted."""

    windows: Sequence[Window]
    finished: set[int] = field(default_factory=set)
    emitted_up_to: dict[int, Any] = field(default_factory=dict)

    def cursor(self) -> Any:
        """The value below which every record has been emitted (`None`: nothing yet)."""
        for index, window in enumerate(self.windows):
            if index not in self.finished:
                if index in self.emitted_up_to:
                    return self.emitted_up_to[index]
                return window.start if index > 0 else None
        return self.windows[-1].end if self.windows else None


class WindowedReader(Generic[Item]):
    """Read `windows` with `workers` threads; iterate to get `(window index, page)` pairs.

    `read_window(window)` must yield the window's pages in cursor order. A failure in any
    worker stops the others and is re-raised in the consuming thread. Closing the iterator
    early stops the workers too.
    """

    def __init__(
        self,
        windows: Sequence[Window],
        read_window: Callable[[Window], Iterator[Item]],
        workers: int,
    ) -> None:
        self.windows = windows
        self.progress = WindowProgress(windows)
        self._read_window = read_window
        self._workers = max(1, min(workers, len(windows) or 1))
        self._pages: queue.Queue[tuple[str, int, Any]] = queue.Queue(maxsize=self._workers)
        self._stop = threading.Event()
        self._started = False

    def __iter__(self) -> Iterator[tuple[int, Item]]:
        if self._started:
            raise RuntimeError("a WindowedReader reads its windows once")
        self._started = True
        if not self.windows:
            return
        pending: queue.SimpleQueue[tuple[int, Window]] = queue.SimpleQueue()
        for item in enumerate(self.windows):
            pending.put(item)
        # Daemon threads, joined only after a complete read: after a failure (or an early close)
        # a worker may be sleeping out a Retry-After of minutes, or retrying its page for up to
        # an hour. The failure is reported at once; the worker stops at its next page, whose
        # records nobody reads, and never holds up the end of the process.
        threads = [
            threading.Thread(
                target=self._run, args=(pending,), name=f"klaviyo-window-{n}", daemon=True
            )
            for n in range(self._workers)
        ]
        for thread in threads:
            thread.start()
        complete = False
        try:
            remaining = len(self.windows)
            while remaining:
                kind, index, payload = self._pages.get()
                if kind == _FAILED:
                    raise payload
                if kind == _DONE:
                    self.progress.finished.add(index)
                    remaining -= 1
                    continue
                yield index, payload
            complete = True
        finally:
            self._stop.set()
            if complete:
                for thread in threads:
                    thread.join()

    def mark_emitted(self, index: int, cursor_value: Any) -> None:
        """Record that window `index` has been emitted up to `cursor_value` (its last record)."""
        self.progress.emitted_up_to[index] = cursor_value

    def _run(self, pending: queue.SimpleQueue[tuple[int, Window]]) -> None:
        while not self._stop.is_set():
            try:
                index, window = pending.get_nowait()
            except queue.Empty:
                return
            self._work(index, window)

    def _work(self, index: int, window: Window) -> None:
        try:
            for page in self._read_window(window):
                if not self._put((_PAGE, index, page)):
                    return
            self._put((_DONE, index, None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            self._put((_FAILED, index, error))

    def _put(self, item: tuple[str, int, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._pages.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
