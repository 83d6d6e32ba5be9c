"""The small sandbox account behind the acceptance suite, and its recorded records.

`integration_tests/expected_records.jsonl` holds what a full read of this account emits, in the
Airbyte form CAT used for `expect_records` (`{"stream", "data", "emitted_at"}` per line, sorted by
stream and id). The account is tiny on purpose (25 records) so the file stays reviewable, yet it
carries the sandbox's awkward values: U+2028 in names, control characters and 30-digit integers
in JSON text, archived campaigns and flows, all three campaign channels.

Regenerate the file after a deliberate change of the record contract, then review the diff:

    .venv/bin/python -m integration_tests.acceptance_sandbox
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from integration_tests.connector_process import run_connector
from klaviyo_sandbox import Dataset, SandboxServer

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_CONFIG = Path("integration_tests/sandbox_config.json")
INVALID_CONFIG = Path("integration_tests/invalid_config.json")
SAMPLE_CONFIG = Path("integration_tests/sample_config.json")
CONFIGURED_CATALOG = Path("integration_tests/configured_catalog.json")
ABNORMAL_STATE = Path("integration_tests/abnormal_state.json")
EXPECTED_RECORDS = Path("integration_tests/expected_records.jsonl")

SEED = 3
SIZES = {"campaigns": 8, "events": 10, "flows": 4, "metrics": 3}


def acceptance_dataset() -> Dataset:
    """The account every acceptance test reads; one seed and sizes always give the same data."""
    return Dataset.generate(SEED, **SIZES)


def load_json(relative: Path) -> Any:
    """Read one of the connector's JSON fixtures, addressed relative to the repository root."""
    return json.loads((ROOT / relative).read_text(encoding="utf-8"))


def comparable_records(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`{"stream", "data"}` pairs sorted by stream and id: emitted_at and order do not count.

    Order does not count because concurrent event windows may finish in any order; emitted_at is
    the wall clock of the read.
    """
    pairs = [{"stream": record["stream"], "data": dict(record["data"])} for record in records]
    return sorted(pairs, key=lambda pair: (pair["stream"], pair["data"]["id"]))


def read_expected_records() -> list[dict[str, Any]]:
    """The recorded lines of `expected_records.jsonl`, parsed (the file is ASCII: `\\uXXXX`)."""
    text = (ROOT / EXPECTED_RECORDS).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def record_expected_records() -> int:
    """Run a full read of the acceptance account with the real CLI and write the file.

    Returns how many records were written. Fails if the read reports an error, so a broken
    connector can never be recorded as the expected behaviour.
    """
    with SandboxServer(acceptance_dataset()) as server, tempfile.TemporaryDirectory() as work:
        run = run_connector(
            "read",
            Path(work),
            server.api_url,
            config=load_json(SANDBOX_CONFIG),
            catalog=load_json(CONFIGURED_CATALOG),
        )
    if run.returncode != 0 or run.errors():
        raise RuntimeError(f"the read failed: {run.errors()} {run.stderr[-2000:]}")

    emitted = {
        (message["record"]["stream"], message["record"]["data"]["id"]): message["record"]
        for message in run.of_type("RECORD")
    }
    lines = [json.dumps(emitted[key]) for key in sorted(emitted)]
    (ROOT / EXPECTED_RECORDS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


if __name__ == "__main__":
    print(f"wrote {record_expected_records()} records to {EXPECTED_RECORDS}")
