"""Print the `--state` file for the next incremental read from a read's output.

    .venv/bin/python scripts/last_state.py messages.jsonl > state.json

Keeps the last STATE message of each stream (the one that covers the most) and prints them as a
JSON array, the shape `source-klaviyo read --state` takes.
"""

from __future__ import annotations

import json
import sys


def main(path: str) -> int:
    last: dict[str, object] = {}
    with open(path, encoding="utf-8") as messages:
        for line in messages:
            if '"STATE"' not in line:
                continue
            message = json.loads(line)
            if message.get("type") == "STATE":
                state = message["state"]
                last[state["stream"]["stream_descriptor"]["name"]] = state
    json.dump(list(last.values()), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: last_state.py MESSAGES.jsonl > state.json")
    raise SystemExit(main(sys.argv[1]))
