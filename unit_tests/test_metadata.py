"""metadata.yaml says what the Airbyte registry publishes; it must agree with the code and docs.

One version lives in three places (pyproject.toml, metadata.yaml's image tag and the README's
changelog, which the docs page links to) and one base image in two (Dockerfile, metadata.yaml).
These tests fail the moment one of them moves alone.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import yaml

from source_klaviyo import api, errors

ROOT = Path(__file__).resolve().parent.parent


def metadata() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "metadata.yaml").read_text())["data"]
    return data


def changelog_rows(markdown: Path) -> list[tuple[str, str]]:
    """(version, date) of each row of the `## Changelog` table, newest first as written."""
    text = markdown.read_text(encoding="utf-8")
    section = text.split("## Changelog", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\|\s*(\d+\.\d+\.\d+)\s*\|\s*([^|]*?)\s*\|", section, flags=re.MULTILINE)


def pyproject_version() -> str:
    """`[project] version` (read with a pattern: `tomllib` needs Python 3.11, we support 3.10)."""
    project = (ROOT / "pyproject.toml").read_text().split("[project]", 1)[1].split("\n[", 1)[0]
    found = re.search(r'^version = "([^"]+)"$', project, flags=re.MULTILINE)
    assert found is not None, "pyproject.toml has no [project] version"
    return found.group(1)


def dockerfile_base_image() -> str:
    froms = re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    assert len(froms) == 1, f"expected one FROM line, found {froms}"
    return str(froms[0])


def test_version_image_tag_and_newest_changelog_rows_agree() -> None:
    version = pyproject_version()

    readme_rows = changelog_rows(ROOT / "README.md")

    assert metadata()["dockerImageTag"] == version
    assert readme_rows[0][0] == version
    assert "../README.md#changelog" in (ROOT / "docs" / "klaviyo.md").read_text(encoding="utf-8")


def test_every_changelog_row_has_an_iso_date() -> None:
    rows = changelog_rows(ROOT / "README.md")

    assert rows
    for version, date in rows:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date), f"{version} has no date: {date!r}"


def test_definition_id_is_a_fixed_uuid() -> None:
    definition_id = metadata()["definitionId"]

    assert str(uuid.UUID(definition_id)) == definition_id
    assert definition_id == "76e234e5-8f72-4644-a919-2863faf26698"


def test_base_image_is_the_dockerfile_from_line_pinned_by_version() -> None:
    base_image = metadata()["connectorBuildOptions"]["baseImage"]

    assert base_image == dockerfile_base_image()
    assert base_image == "docker.io/airbyte/python-connector-base:4.0.0"


def test_registry_fields() -> None:
    data = metadata()

    assert {
        key: data[key]
        for key in (
            "connectorType",
            "connectorSubtype",
            "dockerRepository",
            "license",
            "releaseStage",
            "supportLevel",
            "tags",
            "allowedHosts",
            "connectorTestSuitesOptions",
        )
    } == {
        "connectorType": "source",
        "connectorSubtype": "api",
        "dockerRepository": "airbyte/source-klaviyo",
        "license": "MIT",
        "releaseStage": "alpha",
        "supportLevel": "community",
        "tags": ["language:python", "cdk:python"],
        "allowedHosts": {"hosts": ["a.klaviyo.com"]},
        "connectorTestSuitesOptions": [
            {"suite": "unitTests"},
            {"suite": "integrationTests"},
            {"suite": "acceptanceTests"},
        ],
    }


def test_allowed_host_is_the_api_the_connector_calls() -> None:
    host = re.match(r"https://([^/]+)/", api.DEFAULT_API_URL)

    assert host is not None
    assert metadata()["allowedHosts"]["hosts"] == [host.group(1)]


def test_documentation_url_is_the_one_spec_reports() -> None:
    spec = yaml.safe_load((ROOT / "source_klaviyo" / "spec.json").read_text())

    assert metadata()["documentationUrl"] == spec["documentationUrl"]


def test_max_seconds_between_messages_covers_the_longest_silent_wait() -> None:
    # The CDK sleeps a rate-limit wait plus 1 s; one more request may then run to its timeout.
    longest_silence = errors.MAX_RATE_LIMIT_WAIT_SECONDS + 1 + api.DEFAULT_REQUEST_TIMEOUT_SECONDS

    value = metadata()["maxSecondsBetweenMessages"]

    assert value == 900
    assert value > longest_silence
