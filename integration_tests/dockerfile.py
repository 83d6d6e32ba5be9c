"""Read the project's Dockerfile: its instructions, `pip install` steps and copied files.

Shared by the engine-free image tests and `scripts/check_image_install.py`, which replays the
image's install in a fresh virtualenv.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword in upper case and its raw arguments."""

    keyword: str
    arguments: str


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, with comments dropped and continuation lines joined."""
    joined = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, arguments = stripped.partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return instructions


def arguments_of(keyword: str) -> list[str]:
    return [item.arguments for item in dockerfile() if item.keyword == keyword]


def pip_installs() -> list[list[str]]:
    """The arguments of every `pip install` the image runs, in order."""
    commands = []
    for run in arguments_of("RUN"):
        for command in run.split("&&"):
            words = shlex.split(command)
            if words[:2] == ["pip", "install"]:
                commands.append(words[2:])
    return commands


def copies() -> list[tuple[str, str]]:
    """(source, destination) of every source of every COPY."""
    pairs = []
    for arguments in arguments_of("COPY"):
        *sources, destination = shlex.split(arguments)
        pairs += [(source, destination) for source in sources]
    return pairs
