"""Run a Python script under cProfile in every thread, timing each thread's own CPU.

    python scripts/profile_threads.py OUT.prof .venv/bin/source-klaviyo read --config ...

Plain `python -m cProfile` sees only the main thread, which in a windowed events read mostly waits
on the workers' queue, while fetching and parsing happen in the worker threads. Here every thread
started through `threading.Thread.run` (thread pools included) gets its own profiler, and all of
them are merged into OUT.prof. The timer is `time.thread_time`, so the profile shows CPU spent,
not time waited. Used by `scripts/benchmark.py --profile`.
"""

from __future__ import annotations

import cProfile
import pstats
import runpy
import sys
import threading
import time
from typing import Any


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, script = sys.argv[1], sys.argv[2]
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    sys.argv = sys.argv[2:]
    main_profile = cProfile.Profile(time.thread_time)
    code: Any = 0
    main_profile.enable()
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
    finally:
        main_profile.disable()
        stats = pstats.Stats(main_profile)
        with lock:
            for profile in profiles:
                stats.add(profile)
        stats.dump_stats(out)
    return code if isinstance(code, int) else (0 if code is None else 1)


if __name__ == "__main__":
    sys.exit(main())
