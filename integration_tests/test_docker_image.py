"""The connector image: built and run where a Docker engine answers, checked step by step anywhere.

`test_image_builds_and_prints_one_spec` needs an engine and is marked `image_tests` (deselected
by default in pyproject.toml; run it with `pytest -m image_tests`). Everything else the image does
is checked without one: the Dockerfile is parsed for its base image, user, entrypoint and files.
Replaying its `pip install` steps needs the package registry, so that check is not a test but a
CI step: `scripts/check_image_install.py`, run by `.ci/run`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from integration_tests.connector_process import parse_messages
from integration_tests.dockerfile import (
    ROOT,
    Instruction,
    arguments_of,
    copies,
    dockerfile,
    pip_installs,
)

IMAGE = "source-klaviyo:dev"
COMMAND = "source-klaviyo"
CATALOG_IN_IMAGE = "/integration_tests/configured_catalog.json"


def test_base_image_is_the_metadata_base_image() -> None:
    metadata = yaml.safe_load((ROOT / "metadata.yaml").read_text())["data"]

    base_images = arguments_of("FROM")

    assert base_images == [metadata["connectorBuildOptions"]["baseImage"]]
    assert base_images == ["docker.io/airbyte/python-connector-base:4.0.0"]


def test_image_runs_as_the_non_root_airbyte_user_after_every_install() -> None:
    instructions = dockerfile()

    users = [item for item in instructions if item.keyword == "USER"]

    assert [user.arguments for user in users] == ["airbyte"]
    assert instructions[-1] == Instruction("USER", "airbyte")


def test_entrypoint_is_the_console_script_and_declared_to_the_platform() -> None:
    entrypoints = arguments_of("ENTRYPOINT")
    environment = arguments_of("ENV")

    assert [json.loads(entrypoint) for entrypoint in entrypoints] == [[COMMAND]]
    assert environment == [f'AIRBYTE_ENTRYPOINT="{COMMAND}"']
    assert Path(sys.executable).with_name(COMMAND).is_file()


def test_image_installs_the_lock_then_the_package_without_dependencies() -> None:
    installs = pip_installs()

    assert installs == [
        ["--no-cache-dir", "--disable-pip-version-check", "-r", "requirements.lock"],
        ["--no-cache-dir", "--disable-pip-version-check", "--no-deps", "."],
    ]


def test_image_copies_the_catalog_the_readme_reads() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    copied = copies()

    assert ("integration_tests/configured_catalog.json", CATALOG_IN_IMAGE) in copied
    assert f"--catalog {CATALOG_IN_IMAGE}" in readme


def test_dockerignore_lets_every_copied_source_into_the_context() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}

    sources = [source.rstrip("/").removeprefix("./") for source, _ in copies()]

    assert "*" in lines
    assert sorted(sources) == sorted(allowed - {"Dockerfile"})


def docker_engine_answers() -> bool:
    """Whether `docker info` reaches an engine; the CLI alone is not enough to build."""
    if shutil.which("docker") is None:
        return False
    info = subprocess.run(["docker", "info"], capture_output=True, timeout=60, check=False)
    return info.returncode == 0


@pytest.mark.image_tests
@pytest.mark.skipif(not docker_engine_answers(), reason="no Docker engine answers `docker info`")
def test_image_builds_and_prints_one_spec() -> None:
    subprocess.run(["docker", "build", "-t", IMAGE, str(ROOT)], check=True, timeout=1800)

    spec = subprocess.run(
        ["docker", "run", "--rm", IMAGE, "spec"], capture_output=True, text=True, check=False
    )
    user = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", IMAGE, "-u"],
        capture_output=True,
        text=True,
        check=True,
    )
    catalog = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "cat", IMAGE, CATALOG_IN_IMAGE],
        capture_output=True,
        text=True,
        check=True,
    )

    assert spec.returncode == 0, spec.stderr
    assert [message["type"] for message in parse_messages(spec.stdout)].count("SPEC") == 1
    assert user.stdout.strip() != "0"
    assert json.loads(catalog.stdout) == json.loads(
        (ROOT / "integration_tests" / "configured_catalog.json").read_text()
    )
