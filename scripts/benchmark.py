"""Benchmark the events backfill of the real `source-klaviyo read` against its floor.

Starts the local Klaviyo sandbox as a separate process (its CPU is not the connector's), runs the
installed `source-klaviyo read` process on the events stream, and in the same sandbox the floor
(`scripts/benchmark_floor.py`: a single-threaded loop that fetches, parses and prints the same
records). For each it measures wall time, CPU time (user + sys of that child alone, from
`wait4`), peak RSS (the child's `VmHWM`, sampled), requests and 429s (sandbox counters, reset before
each run), and checks that every event was delivered and the last STATE is sound. Start-up cost
(a read that finds no events, and `spec`) is measured separately, so CPU per event is shown both
in total and without it. Issue 6 asks for ratios, not absolute times: these machines are noisy.

    .venv/bin/python scripts/benchmark.py                      # scenario "custom": 100k, 0 ms
    .venv/bin/python scripts/benchmark.py --scenario latency   # one of issue 6's checks
    .venv/bin/python scripts/benchmark.py --all                # the four checks of issue 6

Everything it starts listens on or talks to 127.0.0.1 only, and is stopped at the end, on errors
and on Ctrl-C. Results are also written as JSON under `benchmark-results/` (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration_tests.connector_process import CONNECTOR, configured_catalog  # noqa: E402
from klaviyo_sandbox import FULL_KEY, Dataset  # noqa: E402

FLOOR = ROOT / "scripts" / "benchmark_floor.py"
PROFILER = ROOT / "scripts" / "profile_threads.py"
SOURCE_DIR = ROOT / "source_klaviyo"
RESULTS_DIR = ROOT / "benchmark-results"
RECORD_PREFIX = b'{"type":"RECORD"'
ID_MARK = b'"id":"'
SANDBOX_SEED = 7
STARTUP_REPEATS = 3
SCENARIOS = ("custom", "cpu", "latency", "memory", "ratelimit")
# Scenario "ratelimit" also syncs the small streams, with collections large enough that their
# tight tiers (campaigns/metrics 10/s, flows 3/s) are actually reached by the connector.
RATELIMIT_SMALL_STREAMS = {"campaigns": 1500, "flows": 1000, "metrics": 300}


class BenchmarkError(RuntimeError):
    """A child failed, timed out or delivered the wrong records; the message says which."""


# ---- measuring one child process -----------------------------------------------------------


@dataclass
class Output:
    """What a child wrote on stdout: records per stream, unique event ids, STATE and errors."""

    records: dict[str, int] = field(default_factory=dict)
    event_ids: set[bytes] = field(default_factory=set)
    last_state: dict[str, Any] | None = None
    last_state_per_stream: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    other_lines: int = 0


class OutputReader:
    """Consume protocol lines as they arrive, keeping only counts and the last STATE.

    RECORD lines are recognised by prefix and not parsed (the benchmark shares two cores with the
    child and the sandbox, so it must stay cheap); any other line is parsed in full. A line that
    is not JSON is an error: the protocol is one JSON object per line.
    """

    def __init__(self) -> None:
        self.output = Output()
        self._carry = b""

    def feed(self, chunk: bytes) -> None:
        lines = (self._carry + chunk).split(b"\n")
        self._carry = lines.pop()
        for line in lines:
            self._line(line)

    def close(self) -> Output:
        if self._carry.strip():
            self._line(self._carry)
        self._carry = b""
        return self.output

    def _line(self, line: bytes) -> None:
        output = self.output
        if line.startswith(RECORD_PREFIX):
            stream_at = line.find(b'"stream":"')
            stream = line[stream_at + 10 : line.find(b'"', stream_at + 10)].decode()
            self._record(stream, line)
            return
        if not line.strip():
            return
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            output.errors.append(f"stdout line is not JSON: {line[:200]!r}")
            return
        kind = message.get("type")
        if kind == "RECORD":  # same message, keys in another order
            self._record(message["record"]["stream"], orjson.dumps(message["record"]["data"]))
        elif kind == "STATE":
            output.last_state = message["state"]
            descriptor = message["state"].get("stream", {}).get("stream_descriptor", {})
            output.last_state_per_stream[descriptor.get("name", "?")] = message["state"]
        elif kind == "TRACE" and message["trace"].get("type") == "ERROR":
            output.errors.append(str(message["trace"]["error"].get("message")))
        else:
            output.other_lines += 1

    def _record(self, stream: str, line: bytes) -> None:
        output = self.output
        output.records[stream] = output.records.get(stream, 0) + 1
        if stream == "events":
            at = line.find(ID_MARK) + len(ID_MARK)
            output.event_ids.add(line[at : line.find(b'"', at)])


@dataclass
class Measurement:
    """Figures of one child process; CPU and RSS are the child's own, from `wait4`."""

    label: str
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    ru_maxrss_mb: float
    returncode: int
    output: Output
    stderr_tail: str
    requests: int = 0
    throttled: int = 0
    max_concurrent: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    sandbox_cpu_s: float = 0.0

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def measure(
    label: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    workdir: Path,
) -> Measurement:
    """Run `argv`, consume its stdout as it comes, and return its own rusage and output.

    The child's stderr goes to a file (a full pipe would stall it); a watchdog kills it after
    `timeout` seconds. `wait4` gives the rusage of this child alone, so neither the sandbox nor
    the benchmark itself is counted.
    """
    stderr_path = workdir / f"{label.replace(' ', '_')}.stderr"
    reader = OutputReader()
    timed_out = threading.Event()
    with open(stderr_path, "wb") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=stderr, env=dict(env))
        _CHILDREN.add(child)

        def kill_on_timeout() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                child.kill()

        watchdog = threading.Timer(timeout, kill_on_timeout)
        watchdog.daemon = True
        watchdog.start()
        done = threading.Event()
        peak_kb = [0]
        sampler = threading.Thread(
            target=_sample_peak_rss, args=(child.pid, done, peak_kb), daemon=True
        )
        sampler.start()
        try:
            stdout = child.stdout
            assert isinstance(stdout, io.BufferedReader)
            while chunk := stdout.read1(1 << 20):
                reader.feed(chunk)
            done.set()
            sampler.join()
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - started
        finally:
            done.set()
            watchdog.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.close()
        _CHILDREN.discard(child)

    tail = _tail(stderr_path)
    if timed_out.is_set():
        raise BenchmarkError(f"{label}: timed out after {timeout:.0f} s\n{tail}")
    result = Measurement(
        label=label,
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        peak_rss_mb=peak_kb[0] / 1024,
        ru_maxrss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        returncode=child.returncode,
        output=reader.close(),
        stderr_tail=tail,
    )
    if child.returncode != 0 or result.output.errors:
        errors = "\n".join(result.output.errors[:5])
        raise BenchmarkError(
            f"{label}: exit code {child.returncode}\n{errors}\n--- stderr tail ---\n{tail}"
        )
    return result


def _sample_peak_rss(pid: int, done: threading.Event, peak_kb: list[int]) -> None:
    """Keep `peak_kb[0]` at the child's `VmHWM` (its peak RSS so far), read every 50 ms.

    Not `ru_maxrss`: Linux folds the RSS of the process that forked the child (this benchmark,
    which grows while it counts a million ids) into the child's `ru_maxrss` at `exec`. `VmHWM`
    belongs to the child's own address space, and being a high-water mark, sampling it only
    misses growth in the last 50 ms before the child closes its stdout.
    """
    path = f"/proc/{pid}/status"
    while True:
        try:
            with open(path) as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak_kb[0] = max(peak_kb[0], int(line.split()[1]))
                        break
        except (OSError, ValueError):
            return
        if done.wait(0.05):
            return


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


# Every child still running when the benchmark stops (error, Ctrl-C) is killed by `_cleanup`.
_CHILDREN: set[subprocess.Popen[bytes]] = set()


def _cleanup() -> None:
    for child in list(_CHILDREN):
        if child.poll() is None:
            child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)
        _CHILDREN.discard(child)


# ---- the sandbox, in its own process ---------------------------------------------------------


class Sandbox:
    """`python -m klaviyo_sandbox` as a child process; stopped with SIGTERM when leaving."""

    def __init__(
        self,
        events: int,
        latency_ms: float,
        enforce_rate_limits: bool,
        workdir: Path,
        small_streams: Mapping[str, int] | None = None,
    ) -> None:
        self.events = events
        self.small_streams = dict(small_streams or {"campaigns": 40, "flows": 12, "metrics": 8})
        self.argv = [
            sys.executable,
            "-m",
            "klaviyo_sandbox",
            "--seed",
            str(SANDBOX_SEED),
            "--events",
            str(events),
            "--latency-ms",
            str(latency_ms),
            *(f"--{kind}={count}" for kind, count in self.small_streams.items()),
        ]
        if enforce_rate_limits:
            self.argv.append("--enforce-rate-limits")
        self._stderr_path = workdir / f"sandbox-{events}-{latency_ms}.stderr"
        self._process: subprocess.Popen[bytes] | None = None
        self.api_url = ""

    def __enter__(self) -> Sandbox:
        with open(self._stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                self.argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, env=_local_env()
            )
        self._process = process
        _CHILDREN.add(process)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("KLAVIYO_API_URL=http://127.0.0.1:"):
            self.__exit__(None, None, None)
            raise BenchmarkError(
                f"the sandbox did not start (first line {line!r})\n{_tail(self._stderr_path)}"
            )
        self.api_url = line.split("=", 1)[1]
        self.cpu = psutil.Process(process.pid)
        return self

    def __exit__(self, *exc_info: object) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        _CHILDREN.discard(process)
        self._process = None

    def admin(self, method: str, path: str) -> dict[str, Any]:
        """Call an admin route (`/__sandbox/...`); they are neither counted nor rate-limited."""
        root = self.api_url[: -len("api/")]
        request = urllib.request.Request(
            root + path, method=method, data=b"" if method == "POST" else None
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as answer:
            body = answer.read()
        return json.loads(body) if body.strip() else {}

    def sandbox_cpu_s(self) -> float:
        times = self.cpu.cpu_times()
        return float(times.user + times.system)

    def run(self, label: str, argv: Sequence[str], timeout: float, workdir: Path) -> Measurement:
        """Measure one child against this sandbox, with the sandbox's counters for it alone."""
        self.admin("POST", "__sandbox/reset-stats")
        cpu_before = self.sandbox_cpu_s()
        env = {**_local_env(), "KLAVIYO_API_URL": self.api_url}
        result = measure(label, argv, env=env, timeout=timeout, workdir=workdir)
        result.sandbox_cpu_s = self.sandbox_cpu_s() - cpu_before
        stats = self.admin("GET", "__sandbox/stats")
        result.requests = int(stats["requests"])
        result.throttled = int(stats["throttled"])
        result.max_concurrent = int(stats.get("max_concurrent", 0))
        result.by_status = dict(stats["by_status"])
        return result


def source_digest() -> str:
    """A short digest of `source_klaviyo/*.py`, to tell which code a row measured.

    The connector is installed editable, so edits made while the benchmark runs change what the
    next child runs; rows with different digests measured different code.
    """
    digest = hashlib.sha256()
    for path in sorted(SOURCE_DIR.rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def _local_env() -> dict[str, str]:
    """The environment for children: no proxy for 127.0.0.1, no Airbyte deployment mode."""
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    env.pop("DEPLOYMENT_MODE", None)
    return env


# ---- the commands -----------------------------------------------------------------------


def connector_read(
    workdir: Path,
    name: str,
    *,
    workers: int,
    streams: Sequence[str] = ("events",),
    incremental: bool = True,
    state: Sequence[Mapping[str, Any]] | None = None,
    profile_to: Path | None = None,
) -> list[str]:
    """argv of `source-klaviyo read` (optionally under cProfile) with files under `workdir`."""
    config = {
        "api_key": FULL_KEY,
        "num_workers": workers,
        "campaign_channels": ["email", "sms", "mobile_push"],
    }
    files: dict[str, Any] = {
        "config": config,
        "catalog": configured_catalog(streams, incremental=incremental),
    }
    if state is not None:
        files["state"] = list(state)
    argv = [str(CONNECTOR), "read"]
    for kind, content in files.items():
        path = workdir / f"{name}-{kind}.json"
        path.write_text(json.dumps(content))
        argv += [f"--{kind}", str(path)]
    if profile_to is not None:
        argv = [sys.executable, str(PROFILER), str(profile_to), *argv]
    return argv


def floor_read(api_url: str, *, start: str | None = None, orjson_only: bool = False) -> list[str]:
    argv = [sys.executable, str(FLOOR), "--api-url", api_url]
    if start is not None:
        argv += ["--start", start]
    if orjson_only:
        argv.append("--orjson-only")
    return argv


def recent_state() -> list[dict[str, Any]]:
    """An events state one minute old: a read with it makes one request and finds nothing."""
    cursor = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.000000Z"
    )
    return [
        {
            "type": "STREAM",
            "stream": {
                "stream_descriptor": {"name": "events"},
                "stream_state": {"states": [{"partition": {}, "cursor": {"datetime": cursor}}]},
            },
        }
    ]


# ---- checks on what a run delivered --------------------------------------------------------


def check_delivery(run: Measurement, sandbox: Sandbox, streams: Sequence[str]) -> list[str]:
    """Every event exactly once by id, the small streams in full, and a sound last STATE.

    Returns the problems found (empty when all is well); expected counts come from the same
    deterministic dataset the sandbox serves.
    """
    problems = []
    output = run.output
    got = output.records.get("events", 0)
    if got != sandbox.events or len(output.event_ids) != sandbox.events:
        problems.append(
            f"{run.label}: {got} event records, {len(output.event_ids)} distinct ids, "
            f"expected {sandbox.events}"
        )
    small = sandbox.small_streams
    expected = Dataset.generate(
        SANDBOX_SEED,
        events=0,
        campaigns=small["campaigns"],
        flows=small["flows"],
        metrics=small["metrics"],
    )
    for stream in streams:
        if stream != "events":
            want = len(expected.resources(stream))
            if output.records.get(stream, 0) != want:
                problems.append(
                    f"{run.label}: {output.records.get(stream, 0)} {stream} records, "
                    f"expected {want}"
                )
    state = output.last_state_per_stream.get("events")
    if state is None:
        problems.append(f"{run.label}: no STATE for events")
    elif sandbox.events:
        last_event = Dataset.generate(SANDBOX_SEED, events=sandbox.events).event_micros(
            sandbox.events - 1
        )
        last = datetime.fromtimestamp(last_event / 1e6, timezone.utc)
        cursors = [
            entry.get("cursor", {}).get("datetime", "")
            for entry in state["stream"]["stream_state"].get("states", [])
        ]
        wanted = last.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if not cursors or not all(len(c) == 27 and c >= wanted for c in cursors):
            problems.append(f"{run.label}: last STATE cursor {cursors} is before {wanted}")
    return problems


# ---- scenarios ---------------------------------------------------------------------------


@dataclass
class Startup:
    """Fixed cost of a process that reads nothing: median of a few runs."""

    connector_cpu_s: float
    connector_wall_s: float
    connector_rss_mb: float
    connector_spec_cpu_s: float
    floor_cpu_s: float
    floor_wall_s: float
    floor_rss_mb: float


def measure_startup(sandbox: Sandbox, workdir: Path, timeout: float) -> Startup:
    """CPU and wall of a read that finds no events (one request), and of `connector spec`."""
    state = recent_state()
    start = state[0]["stream"]["stream_state"]["states"][0]["cursor"]["datetime"][:19] + "Z"
    connector, floor, spec = [], [], []
    for attempt in range(STARTUP_REPEATS):
        argv = connector_read(workdir, f"startup{attempt}", workers=1, state=state)
        connector.append(sandbox.run("connector start-up", argv, timeout, workdir))
        floor.append(
            sandbox.run(
                "floor start-up", floor_read(sandbox.api_url, start=start), timeout, workdir
            )
        )
        env = {**_local_env(), "KLAVIYO_API_URL": sandbox.api_url}
        spec.append(
            measure("connector spec", [str(CONNECTOR), "spec"], env=env, timeout=timeout,
                    workdir=workdir)
        )  # fmt: skip
    return Startup(
        connector_cpu_s=statistics.median(m.cpu_s for m in connector),
        connector_wall_s=statistics.median(m.wall_s for m in connector),
        connector_rss_mb=statistics.median(m.peak_rss_mb for m in connector),
        connector_spec_cpu_s=statistics.median(m.cpu_s for m in spec),
        floor_cpu_s=statistics.median(m.cpu_s for m in floor),
        floor_wall_s=statistics.median(m.wall_s for m in floor),
        floor_rss_mb=statistics.median(m.peak_rss_mb for m in floor),
    )


@dataclass
class Row:
    """One line of a results table (a median over `--repeat` runs)."""

    label: str
    kind: str  # "connector" or "floor"
    events: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    ru_maxrss_mb: float  # inflated by the benchmark's own RSS at fork; JSON only
    requests: int
    throttled: int
    sandbox_cpu_s: float
    max_concurrent: int
    source_digest: str
    startup_cpu_s: float
    startup_wall_s: float
    records: dict[str, int]

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s else 0.0

    @property
    def events_per_s_excl(self) -> float:
        busy = self.wall_s - self.startup_wall_s
        return self.events / busy if busy > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s * 1e6 / self.events if self.events else 0.0

    @property
    def cpu_us_per_event_excl(self) -> float:
        return max(0.0, self.cpu_s - self.startup_cpu_s) * 1e6 / self.events if self.events else 0


@dataclass
class Check:
    name: str
    value: float
    limit: str
    passed: bool
    note: str = ""


@dataclass
class ScenarioResult:
    name: str
    title: str
    params: dict[str, Any]
    startup: Startup
    rows: list[Row]
    ratios: dict[str, float]
    checks: list[Check]
    problems: list[str]
    note: str = ""


class Runner:
    """Runs scenarios in one temporary directory, with the options of the command line."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.timeout = args.timeout

    def rows(
        self,
        sandbox: Sandbox,
        label: str,
        kind: str,
        argv_for: Callable[[int], list[str]],
        startup: Startup,
        streams: Sequence[str] = ("events",),
    ) -> tuple[Row, list[str]]:
        """Measure `--repeat` runs of one command and keep the median of each figure."""
        runs, problems = [], []
        digest = source_digest()
        for attempt in range(self.args.repeat):
            run = sandbox.run(label, argv_for(attempt), self.timeout, self.workdir)
            problems += check_delivery(run, sandbox, streams)
            runs.append(run)
            print(f"    {label}: {run.wall_s:.2f} s wall, {run.cpu_s:.2f} s CPU", flush=True)
        if kind == "connector" and source_digest() != digest:
            problems.append(f"{label}: source_klaviyo/ changed while this row was measured")
        connector = kind == "connector"
        return (
            Row(
                label=label,
                kind=kind,
                events=sandbox.events,
                wall_s=statistics.median(r.wall_s for r in runs),
                cpu_s=statistics.median(r.cpu_s for r in runs),
                peak_rss_mb=statistics.median(r.peak_rss_mb for r in runs),
                ru_maxrss_mb=statistics.median(r.ru_maxrss_mb for r in runs),
                requests=int(statistics.median(r.requests for r in runs)),
                throttled=max(r.throttled for r in runs),
                sandbox_cpu_s=statistics.median(r.sandbox_cpu_s for r in runs),
                max_concurrent=max(r.max_concurrent for r in runs),
                source_digest=digest,
                startup_cpu_s=startup.connector_cpu_s if connector else startup.floor_cpu_s,
                startup_wall_s=startup.connector_wall_s if connector else startup.floor_wall_s,
                records=runs[-1].output.records,
            ),
            problems,
        )

    def connector_row(
        self,
        sandbox: Sandbox,
        startup: Startup,
        workers: int,
        label: str | None = None,
        streams: Sequence[str] = ("events",),
    ) -> tuple[Row, list[str]]:
        name = label or f"connector w={workers}"

        def argv(attempt: int) -> list[str]:
            return connector_read(
                self.workdir,
                f"{name.replace(' ', '_')}-{attempt}",
                workers=workers,
                streams=streams,
                incremental=self.args.sync_mode == "incremental",
            )

        return self.rows(sandbox, name, "connector", argv, startup, streams)

    def floor_row(
        self, sandbox: Sandbox, startup: Startup, orjson_only: bool = False
    ) -> tuple[Row, list[str]]:
        label = "floor (orjson only)" if orjson_only else "floor"
        return self.rows(
            sandbox,
            label,
            "floor",
            lambda attempt: floor_read(sandbox.api_url, orjson_only=orjson_only),
            startup,
        )

    def sandbox(
        self,
        events: int,
        latency_ms: float,
        rate_limits: bool,
        small: Mapping[str, int] | None = None,
    ) -> Sandbox:
        return Sandbox(events, latency_ms, rate_limits, self.workdir, small)

    # -- the scenarios ----------------------------------------------------------------------

    def custom(self) -> ScenarioResult:
        a = self.args
        events, latency = a.events or 100_000, a.latency_ms
        workers = a.workers or 4
        with self.sandbox(events, latency, a.enforce_rate_limits) as sandbox:
            startup = measure_startup(sandbox, self.workdir, self.timeout)
            rows, problems = self._pair(sandbox, startup, workers)
        return ScenarioResult(
            name="custom",
            title=f"{events} events, {latency:g} ms latency, num_workers={workers}, "
            f"{a.sync_mode}, rate limits {'enforced' if a.enforce_rate_limits else 'off'}",
            params={"events": events, "latency_ms": latency, "workers": workers},
            startup=startup,
            rows=rows,
            ratios=_ratios(rows[0], rows[-1]),
            checks=[],
            problems=problems,
        )

    def cpu(self) -> ScenarioResult:
        """(a) CPU per event at most 2x the floor's, on 100k events with no latency."""
        events, workers = self.args.events or 100_000, self.args.workers or 4
        with self.sandbox(events, 0, False) as sandbox:
            startup = measure_startup(sandbox, self.workdir, self.timeout)
            connector, problems = self.connector_row(sandbox, startup, workers)
            floor, found = self.floor_row(sandbox, startup)  # the check needs it: never skipped
            lossy, more = self.floor_row(sandbox, startup, orjson_only=True)
        rows = [connector, floor]
        problems += found
        ratios = _ratios(connector, floor)
        ratios["cpu_per_event_vs_orjson_only_floor"] = _ratio(
            rows[0].cpu_us_per_event, lossy.cpu_us_per_event
        )
        checks = [
            Check(
                "CPU/event connector/floor, total",
                ratios["cpu_per_event"],
                "<= 2",
                ratios["cpu_per_event"] <= 2,
            ),
            Check(
                "CPU/event connector/floor, excl. start-up",
                ratios["cpu_per_event_excl_startup"],
                "<= 2",
                ratios["cpu_per_event_excl_startup"] <= 2,
            ),
        ]
        return ScenarioResult(
            name="cpu",
            title=f"(a) CPU per event: {events} events, 0 ms latency, num_workers={workers}",
            params={"events": events, "latency_ms": 0, "workers": workers},
            startup=startup,
            rows=[*rows, lossy],
            ratios=ratios,
            checks=checks,
            problems=problems + more,
            note="floor (orjson only) parses every page with orjson, turning integers wider "
            "than 64 bits into floats: not the same records, shown for reference only.",
        )

    def latency(self) -> ScenarioResult:
        """(b) With 300 ms per request, events/s of num_workers=8 at least 5x num_workers=1."""
        events, latency = self.args.latency_events, 300.0
        with self.sandbox(events, latency, False) as sandbox:
            startup = measure_startup(sandbox, self.workdir, self.timeout)
            many, problems = self.connector_row(sandbox, startup, 8)
            one, more = self.connector_row(sandbox, startup, 1)
            floor, most = self.floor_row(sandbox, startup)
        speedup = _ratio(many.events_per_s, one.events_per_s)
        speedup_excl = _ratio(many.events_per_s_excl, one.events_per_s_excl)
        return ScenarioResult(
            name="latency",
            title=f"(b) concurrency: {events} events, {latency:g} ms latency per request",
            params={"events": events, "latency_ms": latency, "workers": [8, 1]},
            startup=startup,
            rows=[many, one, floor],
            ratios={
                "events_per_s_w8_vs_w1": speedup,
                "events_per_s_w8_vs_w1_excl_startup": speedup_excl,
                "events_per_s_w8_vs_floor": _ratio(many.events_per_s, floor.events_per_s),
            },
            checks=[
                Check("events/s w=8 / w=1, total wall", speedup, ">= 5", speedup >= 5),
                Check(
                    "events/s w=8 / w=1, wall excl. start-up",
                    speedup_excl,
                    ">= 5",
                    speedup_excl >= 5,
                ),
            ],
            problems=problems + more + most,
            note=f"{events} events: one 300 ms request per 1000 events; fewer events would let "
            "the ~2 s fixed start-up dominate both runs (see --latency-events).",
        )

    def memory(self) -> ScenarioResult:
        """(c) Peak RSS at 1M events within 20% of that at 100k."""
        small, large = 100_000, self.args.memory_events
        workers = self.args.workers or 4
        rows: list[Row] = []
        problems: list[str] = []
        startup = None
        for events in (small, large):
            with self.sandbox(events, 0, False) as sandbox:
                if startup is None:
                    startup = measure_startup(sandbox, self.workdir, self.timeout)
                label = f"connector {events // 1000}k"
                row, found = self.connector_row(sandbox, startup, workers, label=label)
                rows.append(row)
                problems += found
                if not self.args.no_floor:
                    row, found = self.floor_row(sandbox, startup)
                    row.label = f"floor {events // 1000}k"
                    rows.append(row)
                    problems += found
        assert startup is not None
        connectors = [row for row in rows if row.kind == "connector"]
        growth = _ratio(connectors[1].peak_rss_mb, connectors[0].peak_rss_mb)
        return ScenarioResult(
            name="memory",
            title=f"(c) memory: peak RSS at {large} vs {small} events, num_workers={workers}",
            params={"events": [small, large], "latency_ms": 0, "workers": workers},
            startup=startup,
            rows=rows,
            ratios={"peak_rss_large_vs_small": growth},
            checks=[Check(f"peak RSS {large // 1000}k / 100k", growth, "<= 1.2", growth <= 1.2)],
            problems=problems,
        )

    def ratelimit(self) -> ScenarioResult:
        """(d) Zero 429s when the sandbox enforces Klaviyo's tiers, with every record delivered."""
        events, workers = self.args.events or 100_000, self.args.workers or 8
        small = RATELIMIT_SMALL_STREAMS
        streams = ("campaigns", "events", "flows", "metrics")
        with self.sandbox(events, 0, True, small) as sandbox:
            startup = measure_startup(sandbox, self.workdir, self.timeout)
            rows, problems = self._pair(sandbox, startup, workers)
            everything, more = self.connector_row(
                sandbox, startup, workers, label=f"connector w={workers} 4 streams", streams=streams
            )
        rows.insert(1, everything)
        throttled = sum(row.throttled for row in rows if row.kind == "connector")
        checks = [
            Check("429s received by the connector", throttled, "== 0", throttled == 0),
            Check(
                "records missing or duplicated",
                len(problems + more),
                "== 0",
                not (problems + more),
            ),
        ]
        return ScenarioResult(
            name="ratelimit",
            title=f"(d) rate limits enforced: {events} events, num_workers={workers}; "
            f"then all four streams with {small}",
            params={"events": events, "workers": workers, "small_streams": small},
            startup=startup,
            rows=rows,
            ratios=_ratios(rows[0], rows[-1]),
            checks=checks,
            problems=problems + more,
            note="the events tier (350/s, 3500/min) cannot be reached here: a 1000-event page "
            "costs ~20 ms of sandbox CPU; the small streams' tiers (3/s, 10/s) are reached.",
        )

    def _pair(
        self, sandbox: Sandbox, startup: Startup, workers: int
    ) -> tuple[list[Row], list[str]]:
        connector, problems = self.connector_row(sandbox, startup, workers)
        if self.args.no_floor:
            return [connector], problems
        floor, more = self.floor_row(sandbox, startup)
        return [connector, floor], problems + more


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def _ratios(connector: Row, floor: Row) -> dict[str, float]:
    if floor is connector or floor.kind != "floor":
        return {}
    return {
        "events_per_s": _ratio(connector.events_per_s, floor.events_per_s),
        "cpu_per_event": _ratio(connector.cpu_us_per_event, floor.cpu_us_per_event),
        "cpu_per_event_excl_startup": _ratio(
            connector.cpu_us_per_event_excl, floor.cpu_us_per_event_excl
        ),
        "peak_rss": _ratio(connector.peak_rss_mb, floor.peak_rss_mb),
        "requests": _ratio(connector.requests, floor.requests),
    }


# ---- printing ------------------------------------------------------------------------------

HEADER = (
    f"{'':<24}{'events':>9}{'wall s':>8}{'events/s':>10}{'CPU s':>8}{'CPU µs/ev':>11}"
    f"{'excl.st.':>10}{'RSS MB':>8}{'requests':>9}{'429s':>6}{'sbx CPU s':>10}{'conc':>5}"
)


def print_scenario(result: ScenarioResult) -> None:
    print(f"\n=== {result.name}: {result.title}")
    print(HEADER)
    for row in result.rows:
        print(
            f"{row.label:<24}{row.events:>9}{row.wall_s:>8.2f}{row.events_per_s:>10.0f}"
            f"{row.cpu_s:>8.2f}{row.cpu_us_per_event:>11.1f}{row.cpu_us_per_event_excl:>10.1f}"
            f"{row.peak_rss_mb:>8.1f}{row.requests:>9}{row.throttled:>6}"
            f"{row.sandbox_cpu_s:>10.2f}{row.max_concurrent:>5}"
        )
    digests = sorted({row.source_digest for row in result.rows if row.kind == "connector"})
    print(f"connector code (sha256 of source_klaviyo/*.py): {', '.join(digests)}")
    s = result.startup
    print(
        f"start-up (read of 0 events, median of {STARTUP_REPEATS}): connector "
        f"{s.connector_cpu_s:.2f} s CPU, {s.connector_wall_s:.2f} s wall, "
        f"{s.connector_rss_mb:.0f} MB; floor {s.floor_cpu_s:.2f} s CPU, "
        f"{s.floor_wall_s:.2f} s wall, {s.floor_rss_mb:.0f} MB; "
        f"`spec` {s.connector_spec_cpu_s:.2f} s CPU"
    )
    if result.ratios:
        print("ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in result.ratios.items()))
    for check in result.checks:
        verdict = "PASS" if check.passed else "FAIL"
        print(f"check: {check.name} = {check.value:.2f} (want {check.limit}): {verdict}")
    for problem in result.problems:
        print(f"PROBLEM: {problem}")
    if result.note:
        print(f"note: {result.note}")
    sys.stdout.flush()


def to_json(result: ScenarioResult) -> dict[str, Any]:
    data = asdict(result)
    for row, raw in zip(result.rows, data["rows"], strict=True):
        raw.update(
            events_per_s=row.events_per_s,
            events_per_s_excl_startup=row.events_per_s_excl,
            cpu_us_per_event=row.cpu_us_per_event,
            cpu_us_per_event_excl_startup=row.cpu_us_per_event_excl,
        )
    return data


# ---- profiling -----------------------------------------------------------------------------


def profile_connector(runner: Runner, events: int, out: Path) -> None:
    """Run the connector once under cProfile (not timed) and print its top functions."""
    import pstats

    with runner.sandbox(events, 0, False) as sandbox:
        argv = connector_read(
            runner.workdir, "profile", workers=runner.args.workers or 4, profile_to=out
        )
        run = sandbox.run("connector under cProfile", argv, runner.timeout, runner.workdir)
        for problem in check_delivery(run, sandbox, ("events",)):
            print(f"PROBLEM: {problem}")
    print(f"\n=== CPU profile, all threads, of one connector read of {events} events ({out})")
    for order in ("tottime", "cumulative"):
        stats = pstats.Stats(str(out))
        stats.sort_stats(order).print_stats(20)
    sys.stdout.flush()


# ---- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, help="events in the sandbox (default 100000)")
    parser.add_argument("--latency-ms", type=float, default=0, help="sandbox latency per request")
    parser.add_argument("--workers", type=int, help="connector num_workers (default 4; 8 in d)")
    parser.add_argument("--enforce-rate-limits", action="store_true")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="custom (flags above, default) | cpu (a) | latency (b) | memory (c) | "
        "ratelimit (d); repeatable",
    )
    parser.add_argument("--all", action="store_true", help="cpu, latency, memory, ratelimit")
    parser.add_argument(
        "--sync-mode", choices=("incremental", "full_refresh"), default="incremental"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the median is kept")
    parser.add_argument("--latency-events", type=int, default=300_000, help="events in (b)")
    parser.add_argument("--memory-events", type=int, default=1_000_000, help="large run in (c)")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor where optional")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per child process")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="OUT",
        help="also run the connector once under cProfile (untimed) and print its top functions",
    )
    args = parser.parse_args(argv)
    scenarios = list(SCENARIOS[1:]) if args.all else (args.scenario or ["custom"])

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    started = datetime.now(timezone.utc)
    results: list[ScenarioResult] = []
    failures: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="klaviyo-bench-") as tmp:
            runner = Runner(args, Path(tmp))
            for name in scenarios:
                print(f"\n--- running scenario {name}", flush=True)
                try:
                    result = getattr(runner, name)()
                except BenchmarkError as error:
                    failures.append(f"{name}: {error}")
                    print(f"ERROR in scenario {name}: {error}", file=sys.stderr, flush=True)
                    continue
                results.append(result)
                print_scenario(result)
            if args.profile:
                profile_connector(runner, args.events or 100_000, args.profile)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every child process", file=sys.stderr)
        return 130
    finally:
        _cleanup()

    own = resource.getrusage(resource.RUSAGE_SELF)
    print(f"\nbenchmark process itself: {own.ru_utime + own.ru_stime:.1f} s CPU (not counted)")
    path = write_results(args, started, results, failures)
    print(f"\nresults: {path}")
    checks = [check for result in results for check in result.checks]
    problems = [problem for result in results for problem in result.problems]
    return 1 if failures or problems or not all(check.passed for check in checks) else 0


def write_results(
    args: argparse.Namespace,
    started: datetime,
    results: Sequence[ScenarioResult],
    failures: Sequence[str],
) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"benchmark-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    document = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_1m": os.getloadavg()[0],
        },
        "args": {key: str(value) for key, value in vars(args).items()},
        "scenarios": [to_json(result) for result in results],
        "failures": list(failures),
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
