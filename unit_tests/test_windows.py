"""Specification of `source_klaviyo.windows`: splitting, a gap-free cursor, and the reader pool."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from source_klaviyo.windows import Window, WindowedReader, WindowProgress, split_range

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
DEADLINE_SECONDS = 10.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def hours(count: float) -> timedelta:
    return timedelta(hours=count)


def edges(windows: list[Window]) -> list[tuple[float, float]]:
    """Window bounds as seconds after T0, for readable expectations."""
    return [
        ((window.start - T0).total_seconds(), (window.end - T0).total_seconds())
        for window in windows
    ]


def finish_within_deadline(action: Callable[[], Any]) -> tuple[bool, Any]:
    """Run `action` in a helper thread; report whether it finished before the deadline."""
    done = threading.Event()
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(action())
        except BaseException as error:  # handed back to the test
            outcome.append(error)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    finished = done.wait(DEADLINE_SECONDS)
    return finished, outcome[0] if outcome else None


# split_range


@pytest.mark.parametrize(
    ("span", "count", "minimum", "expected"),
    [
        pytest.param(
            hours(10),
            5,
            hours(1),
            [(0, 7200), (7200, 14400), (14400, 21600), (21600, 28800), (28800, 36000)],
            id="even-split",
        ),
        pytest.param(
            hours(10),
            4,
            hours(3),
            [(0, 12000), (12000, 24000), (24000, 36000)],
            id="minimum-limits-the-count",
        ),
        pytest.param(
            hours(2),
            8,
            hours(1),
            [(0, 3600), (3600, 7200)],
            id="never-shorter-than-the-minimum",
        ),
        pytest.param(
            hours(1) - timedelta(seconds=1),
            8,
            hours(1),
            [(0, 3599)],
            id="shorter-than-the-minimum-is-one-window",
        ),
        pytest.param(
            timedelta(seconds=10),
            3,
            timedelta(seconds=1),
            [(0, 3), (3, 6), (6, 10)],
            id="remainder-to-the-last-window",
        ),
        pytest.param(
            timedelta(seconds=10, microseconds=500000),
            2,
            timedelta(seconds=1),
            [(0, 5), (5, 10.5)],
            id="fraction-to-the-last-window",
        ),
        pytest.param(hours(10), 1, hours(1), [(0, 36000)], id="one-window"),
        pytest.param(hours(10), 0, hours(1), [(0, 36000)], id="count-zero-is-one-window"),
        pytest.param(
            timedelta(milliseconds=500),
            4,
            timedelta(seconds=1),
            [(0, 0.5)],
            id="under-one-second",
        ),
    ],
)
def test_split_range_cuts_windows_at_exact_edges(
    span: timedelta, count: int, minimum: timedelta, expected: list[tuple[float, float]]
) -> None:
    windows = split_range(T0, T0 + span, count, minimum)

    assert edges(windows) == expected


@pytest.mark.parametrize("span", [timedelta(0), timedelta(seconds=-1), -hours(5)])
def test_split_range_of_an_empty_or_negative_range_is_empty(span: timedelta) -> None:
    windows = split_range(T0, T0 + span, 4, hours(1))

    assert windows == []


@pytest.mark.parametrize(
    ("start", "span", "count", "minimum"),
    [
        (T0, hours(24 * 365), 64, hours(1)),
        (T0 + timedelta(microseconds=123456), hours(7) + timedelta(seconds=13), 12, hours(1)),
        (T0, timedelta(days=4000, seconds=7), 16, hours(1)),
        (T0, timedelta(seconds=7), 3, timedelta(seconds=1)),
    ],
)
def test_split_range_windows_are_contiguous_and_cover_exactly_the_range(
    start: datetime, span: timedelta, count: int, minimum: timedelta
) -> None:
    windows = split_range(start, start + span, count, minimum)

    assert windows[0].start == start
    assert windows[-1].end == start + span
    assert all(
        left.end == right.start for left, right in zip(windows[:-1], windows[1:], strict=True)
    )
    assert all(window.end - window.start >= minimum for window in windows)
    assert len(windows) <= count


@pytest.mark.parametrize(
    ("span", "minimum", "expected"),
    [
        (timedelta(seconds=2), timedelta(0), [(0, 1), (1, 2)]),
        (timedelta(seconds=2), timedelta(milliseconds=100), [(0, 1), (1, 2)]),
        (timedelta(milliseconds=500), timedelta(0), [(0, 0.5)]),
    ],
)
def test_split_range_never_runs_past_the_end_when_count_exceeds_the_seconds(
    span: timedelta, minimum: timedelta, expected: list[tuple[float, float]]
) -> None:
    windows = split_range(T0, T0 + span, 4, minimum)

    assert edges(windows) == expected


# WindowProgress.cursor

THREE_WINDOWS = [Window(at(0), at(10)), Window(at(10), at(20)), Window(at(20), at(30))]


@pytest.mark.parametrize(
    ("finished", "emitted_up_to", "cursor"),
    [
        pytest.param(set(), {}, None, id="nothing-done"),
        pytest.param(set(), {0: "v0"}, "v0", id="window-0-partly-emitted"),
        pytest.param({0}, {0: "v0"}, at(10), id="window-0-finished-window-1-not-started"),
        pytest.param({0}, {0: "v0", 1: "v1"}, "v1", id="window-1-partly-emitted"),
        pytest.param({1, 2}, {1: "v1", 2: "v2"}, None, id="later-windows-finished-first"),
        pytest.param({0, 2}, {2: "v2"}, at(10), id="only-the-contiguous-prefix-counts"),
        pytest.param({1}, {0: "v0"}, "v0", id="first-window-still-running"),
        pytest.param({0, 1, 2}, {}, at(30), id="all-finished"),
    ],
)
def test_cursor_never_passes_an_unfinished_window(
    finished: set[int], emitted_up_to: dict[int, Any], cursor: Any
) -> None:
    progress = WindowProgress(THREE_WINDOWS, set(finished), dict(emitted_up_to))

    found = progress.cursor()

    assert found == cursor


def test_cursor_without_windows_is_none() -> None:
    progress = WindowProgress([])

    found = progress.cursor()

    assert found is None


# WindowedReader


def paged_windows(count: int) -> list[Window]:
    return [Window(at(10 * index), at(10 * index + 10)) for index in range(count)]


def page_of(window: Window, number: int) -> list[str]:
    start = int((window.start - T0).total_seconds())
    return [f"w{start}-p{number}-r0", f"w{start}-p{number}-r1"]


@pytest.mark.parametrize("workers", [1, 4])
def test_reader_yields_every_page_of_every_window_exactly_once(workers: int) -> None:
    windows = paged_windows(9)
    opened: list[Window] = []
    opened_lock = threading.Lock()

    def read_window(window: Window) -> Iterator[list[str]]:
        with opened_lock:
            opened.append(window)
        for number in range(3):
            yield page_of(window, number)

    reader: WindowedReader[str] = WindowedReader(windows, read_window, workers)
    received = list(reader)

    assert sorted(received) == sorted(
        (index, page_of(window, number))
        for index, window in enumerate(windows)
        for number in range(3)
    )
    assert sorted(opened, key=lambda window: window.start) == windows
    assert reader.progress.finished == set(range(9))
    assert reader.progress.cursor() == at(90)


def test_reader_keeps_the_page_order_inside_each_window() -> None:
    windows = paged_windows(6)

    def read_window(window: Window) -> Iterator[list[str]]:
        for number in range(5):
            yield page_of(window, number)

    received = list(WindowedReader(windows, read_window, workers=4))

    for index, window in enumerate(windows):
        pages = [page for got_index, page in received if got_index == index]
        assert pages == [page_of(window, number) for number in range(5)]


def test_reader_with_one_worker_reads_windows_in_order() -> None:
    windows = paged_windows(3)

    def read_window(window: Window) -> Iterator[list[str]]:
        yield page_of(window, 0)
        yield page_of(window, 1)

    received = list(WindowedReader(windows, read_window, workers=1))

    assert [index for index, _ in received] == [0, 0, 1, 1, 2, 2]


def test_reader_without_windows_reads_nothing() -> None:
    def read_window(window: Window) -> Iterator[list[str]]:
        raise AssertionError("no window to read")

    reader: WindowedReader[str] = WindowedReader([], read_window, workers=4)
    received = list(reader)

    assert received == []
    assert reader.progress.cursor() is None


def test_mark_emitted_moves_the_cursor_inside_the_first_unfinished_window() -> None:
    windows = paged_windows(2)
    reader: WindowedReader[str] = WindowedReader(windows, lambda window: iter([]), workers=1)

    reader.mark_emitted(0, "2024-01-01T00:00:05.000000Z")

    assert reader.progress.cursor() == "2024-01-01T00:00:05.000000Z"


class Endless:
    """`read_window` whose windows never end; records which were opened and which were closed."""

    def __init__(self, failing_index: int | None = None) -> None:
        self.failing_index = failing_index
        self.error = RuntimeError("Klaviyo answered 400 for window 1")
        self.opened: set[int] = set()
        self.closed: set[int] = set()
        self.first_page_ready: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def __call__(self, window: Window) -> Iterator[list[str]]:
        index = int((window.start - T0).total_seconds()) // 10
        with self._lock:
            self.opened.add(index)
        try:
            if index == self.failing_index:
                raise self.error
            number = 0
            while True:
                yield page_of(window, number)
                number += 1
        finally:
            with self._lock:
                self.closed.add(index)


def workers_stopped() -> bool:
    """Wait (up to the deadline) for every reader worker thread to end; tell whether they did."""
    for thread in threading.enumerate():
        if thread.name.startswith("klaviyo-window-"):
            thread.join(DEADLINE_SECONDS)
    return not any(t.name.startswith("klaviyo-window-") for t in threading.enumerate())


def test_a_failing_window_is_reraised_in_the_consumer_and_stops_the_others() -> None:
    read_window = Endless(failing_index=1)
    reader: WindowedReader[str] = WindowedReader(paged_windows(6), read_window, workers=3)

    finished, outcome = finish_within_deadline(lambda: list(reader))

    assert finished, "the reader hung after a window failed"
    assert outcome is read_window.error
    assert workers_stopped()
    assert read_window.closed == read_window.opened
    assert 1 in read_window.opened


def test_closing_the_iterator_early_stops_every_worker() -> None:
    read_window = Endless()
    reader: WindowedReader[str] = WindowedReader(paged_windows(8), read_window, workers=4)
    pages = iter(reader)
    first_index, first_page = next(pages)

    finished, outcome = finish_within_deadline(pages.close)  # type: ignore[attr-defined]

    assert finished, "closing the reader hung"
    assert outcome is None
    assert first_page == page_of(paged_windows(8)[first_index], 0)
    assert workers_stopped()
    assert read_window.closed == read_window.opened
    assert len(read_window.opened) <= 4


def test_a_failure_is_raised_without_waiting_for_a_worker_stuck_in_its_window() -> None:
    # A worker sleeping out a long Retry-After must not delay the failure of its stream.
    release = threading.Event()
    stuck = threading.Event()
    error = RuntimeError("page 1 of window 0 is unreadable")

    def read_window(window: Window) -> Iterator[list[str]]:
        if window.start == at(0):
            yield ["first"]
            return
        stuck.set()
        release.wait(DEADLINE_SECONDS)
        yield ["late"]

    reader: WindowedReader[str] = WindowedReader(paged_windows(2), read_window, workers=2)
    pages = iter(reader)
    assert next(pages) == (0, ["first"])
    assert stuck.wait(DEADLINE_SECONDS)

    finished, outcome = finish_within_deadline(lambda: pages.throw(error))  # type: ignore[attr-defined]
    was_released = release.is_set()
    release.set()

    assert finished, "the failure waited for the stuck worker"
    assert outcome is error
    assert not was_released
    assert workers_stopped()
