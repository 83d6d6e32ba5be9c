"""Airbyte's acceptance suite, in CI without Docker and without secrets.

`TestAcceptance` runs the CDK's standard connector tests (`airbyte_cdk.test.standard_tests`) over
the scenarios of `acceptance-test-config.yml`, in-process, against the local Klaviyo sandbox. The
functions below check what the standard tests do not: the `incremental` section's
`future_state` (the CDK does not collect it), the recorded `expected_records.jsonl` (the CDK
rejects `expect_records`), and exact `spec` and `discover` contracts.

Against a real account, point `KLAVIYO_ACCEPTANCE_CONFIG` at a config file:

    KLAVIYO_ACCEPTANCE_CONFIG=secrets/config.json .venv/bin/python -m pytest \\
        integration_tests/test_acceptance.py

Every scenario that uses `integration_tests/sandbox_config.json` then uses that file, no sandbox
starts and `KLAVIYO_API_URL` is removed, so requests go to Klaviyo. Only the comparison with the
sandbox's recorded records is skipped in that mode.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airbyte_cdk.models import (
    AirbyteStateMessageSerializer,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteCatalogSerializer,
    Level,
    SyncMode,
)
from airbyte_cdk.test import entrypoint_wrapper
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput
from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import SourceTestSuiteBase
from airbyte_cdk.test.standard_tests._assertions import assert_config_matches_spec
from airbyte_cdk.test.standard_tests._catalog_checks import find_catalog_problems
from airbyte_cdk.test.standard_tests._spec_lint import assert_spec_is_valid, get_single_spec
from freezegun import freeze_time

from integration_tests.acceptance_sandbox import (
    ABNORMAL_STATE,
    CONFIGURED_CATALOG,
    EXPECTED_RECORDS,
    INVALID_CONFIG,
    ROOT,
    SAMPLE_CONFIG,
    SANDBOX_CONFIG,
    SIZES,
    acceptance_dataset,
    comparable_records,
    load_json,
    read_expected_records,
)
from integration_tests.connector_process import run_connector
from integration_tests.oracle import comparable, expected_records
from klaviyo_sandbox import SandboxServer
from source_klaviyo.api import API_URL_ENV
from source_klaviyo.source import SourceKlaviyo

NAME = "source-klaviyo"
REAL_CONFIG_ENV = "KLAVIYO_ACCEPTANCE_CONFIG"
REAL_ACCOUNT_SKIP = "the recorded records belong to the sandbox account, not to a real one"


def real_config() -> Path | None:
    """The real-account config selected by `KLAVIYO_ACCEPTANCE_CONFIG`, or None for the sandbox.

    A path that does not exist fails loudly: asking for a real run and silently getting the
    sandbox would pass for the wrong reason.
    """
    value = os.environ.get(REAL_CONFIG_ENV)
    if not value:
        return None
    path = Path(value)
    if not (ROOT / path).is_file():
        raise FileNotFoundError(f"{REAL_CONFIG_ENV}={value}: no such file below {ROOT}")
    return path


def suite_config() -> dict[str, Any]:
    """The config the scenarios read with: the real one if selected, else the sandbox's."""
    result: dict[str, Any] = load_json(real_config() or SANDBOX_CONFIG)
    return result


@pytest.fixture(scope="module", autouse=True)
def klaviyo_api() -> Iterator[SandboxServer | None]:
    """Point the in-process connector at the acceptance sandbox, or at Klaviyo in real mode."""
    with pytest.MonkeyPatch.context() as patch:
        if real_config() is not None:
            patch.delenv(API_URL_ENV, raising=False)
            yield None
            return
        with SandboxServer(acceptance_dataset()) as server:
            patch.setenv(API_URL_ENV, server.api_url)
            yield server


class TestAcceptance(SourceTestSuiteBase):
    """The CDK's standard source tests over `acceptance-test-config.yml`."""

    connector = SourceKlaviyo

    @classmethod
    def get_scenarios(cls) -> list[ConnectorTestScenario]:
        """The file's scenarios, with the sandbox config swapped for a real one if selected."""
        scenarios = super().get_scenarios()
        real = real_config()
        if real is None:
            return scenarios
        return [
            scenario.model_copy(update={"config_path": real})
            if scenario.config_path == SANDBOX_CONFIG
            else scenario
            for scenario in scenarios
        ]


def incremental_catalog() -> ConfiguredAirbyteCatalog:
    """The configured catalog's incremental streams, as CAT's incremental tests select them."""
    catalog = load_json(CONFIGURED_CATALOG)
    catalog["streams"] = [
        stream for stream in catalog["streams"] if stream["sync_mode"] == SyncMode.incremental.value
    ]
    return ConfiguredAirbyteCatalogSerializer.load(catalog)


def cursors_by_partition(output: entrypoint_wrapper.EntrypointOutput) -> dict[str, list[Any]]:
    """The last state of each stream as sorted (partition, cursor) pairs, easy to compare."""
    final = {
        message.state.stream.stream_descriptor.name: message.state.stream.stream_state.__dict__
        for message in output.state_messages
    }
    return {
        name: sorted(
            (sorted(entry["partition"].items()), sorted(entry["cursor"].items()))
            for entry in value["states"]
        )
        for name, value in final.items()
    }


def test_the_acceptance_file_lists_the_fixtures_these_tests_check() -> None:
    text = (ROOT / "acceptance-test-config.yml").read_text(encoding="utf-8")

    acceptance = yaml.safe_load(text)

    assert acceptance["connector_image"] == "airbyte/source-klaviyo:dev"
    assert acceptance["acceptance_tests"]["incremental"]["tests"] == [
        {
            "config_path": str(SANDBOX_CONFIG),
            "configured_catalog_path": str(CONFIGURED_CATALOG),
            "future_state": {"future_state_path": str(ABNORMAL_STATE)},
        }
    ]
    assert acceptance["acceptance_tests"]["connection"]["tests"] == [
        {"config_path": str(SANDBOX_CONFIG), "status": "succeed"},
        {"config_path": str(INVALID_CONFIG), "status": "failed"},
    ]
    assert str(EXPECTED_RECORDS) in text


@freeze_time("2026-12-04T12:00:00Z")
def test_incremental_read_with_abnormal_state_returns_no_record_and_no_error(
    klaviyo_api: SandboxServer | None,
) -> None:
    config = suite_config()
    state = [AirbyteStateMessageSerializer.load(message) for message in load_json(ABNORMAL_STATE)]
    if klaviyo_api is not None:
        klaviyo_api.reset_stats()

    output = entrypoint_wrapper.read(SourceKlaviyo(), config, incremental_catalog(), state)

    assert output.records == []
    assert output.errors == []
    upper = "2026-12-04T11:59:55.000000Z"
    assert cursors_by_partition(output) == {
        "campaigns": sorted(
            ([("archived", archived), ("channel", channel)], [("updated_at", upper)])
            for channel in config.get("campaign_channels", ["email"])
            for archived in (False, True)
        ),
        "events": [([], [("datetime", upper)])],
        "flows": [
            ([("archived", False)], [("updated", upper)]),
            ([("archived", True)], [("updated", upper)]),
        ],
    }
    warnings = [log.log.message for log in output.logs if log.log.level == Level.WARN]
    assert sorted(set(warnings)) == [
        f"Saved {stream} cursor 2099-12-31T23:59:59.000000Z is after this sync's upper bound; "
        f"lowering it to {upper}"
        for stream in ("campaigns", "events", "flows")
    ]
    if klaviyo_api is not None:
        assert klaviyo_api.stats["requests"] == 0


def test_full_read_emits_exactly_the_recorded_records(
    klaviyo_api: SandboxServer | None, tmp_path: Path
) -> None:
    if klaviyo_api is None:
        pytest.skip(REAL_ACCOUNT_SKIP)

    run = run_connector(
        "read",
        tmp_path,
        klaviyo_api.api_url,
        config=suite_config(),
        catalog=load_json(CONFIGURED_CATALOG),
    )

    assert run.returncode == 0
    assert run.errors() == []
    emitted = comparable_records(message["record"] for message in run.of_type("RECORD"))
    assert emitted == comparable_records(read_expected_records())
    assert len(emitted) == sum(SIZES.values())


def test_recorded_records_agree_with_the_independent_oracle() -> None:
    dataset = acceptance_dataset()

    recorded = read_expected_records()

    for stream in ("campaigns", "events", "flows", "metrics"):
        records = [line["data"] for line in recorded if line["stream"] == stream]
        oracle = expected_records(dataset, stream)
        assert [record["id"] for record in records] == sorted(oracle)
        for record in records:
            assert comparable(stream, record) == comparable(stream, oracle[record["id"]])


def test_spec_of_the_installed_command_passes_the_cdk_spec_checks(tmp_path: Path) -> None:
    run = run_connector("spec", tmp_path, "http://127.0.0.1:9/api/")

    assert run.returncode == 0
    spec = get_single_spec(EntrypointOutput(messages=run.stdout.split("\n")), connector_name=NAME)
    assert_spec_is_valid(spec, connector_name=NAME)
    assert spec.documentationUrl == "https://docs.airbyte.com/integrations/sources/klaviyo"
    for config in (SANDBOX_CONFIG, INVALID_CONFIG, SAMPLE_CONFIG):
        assert_config_matches_spec(
            config=load_json(config),
            spec_result=EntrypointOutput(messages=run.stdout.split("\n")),
            connector_name=NAME,
            scenario_id=config.stem,
        )


def test_discover_lists_exactly_the_four_streams_with_keys_cursors_and_sync_modes() -> None:
    output = entrypoint_wrapper.discover(SourceKlaviyo(), suite_config())

    assert output.errors == []
    catalog = output.catalog.catalog
    assert catalog is not None
    assert find_catalog_problems(catalog) == {}
    assert {
        stream.name: {
            "sync_modes": [mode.value for mode in stream.supported_sync_modes],
            "source_defined_cursor": stream.source_defined_cursor,
            "default_cursor_field": stream.default_cursor_field,
            "primary_key": stream.source_defined_primary_key,
            "is_resumable": stream.is_resumable,
            "fields": sorted(stream.json_schema["properties"]),
        }
        for stream in catalog.streams
    } == {
        "campaigns": {
            "sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": True,
            "default_cursor_field": ["updated_at"],
            "primary_key": [["id"]],
            "is_resumable": True,
            "fields": [
                "archived",
                "audiences",
                "channel",
                "created_at",
                "id",
                "name",
                "scheduled_at",
                "send_options",
                "send_strategy",
                "send_time",
                "status",
                "tracking_options",
                "updated_at",
            ],
        },
        "events": {
            "sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": True,
            "default_cursor_field": ["datetime"],
            "primary_key": [["id"]],
            "is_resumable": True,
            "fields": [
                "datetime",
                "event_properties",
                "id",
                "metric_id",
                "profile_id",
                "timestamp",
                "uuid",
            ],
        },
        "flows": {
            "sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": True,
            "default_cursor_field": ["updated"],
            "primary_key": [["id"]],
            "is_resumable": True,
            "fields": ["archived", "created", "id", "name", "status", "trigger_type", "updated"],
        },
        "metrics": {
            "sync_modes": ["full_refresh"],
            "source_defined_cursor": None,
            "default_cursor_field": None,
            "primary_key": [["id"]],
            "is_resumable": False,
            "fields": ["created", "id", "integration", "name", "updated"],
        },
    }
