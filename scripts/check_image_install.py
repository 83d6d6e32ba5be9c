"""Replay the Docker image's install steps in a fresh virtualenv and run its entrypoint.

No Docker engine runs on our machines, so CI checks what the image does without one: the files
the Dockerfile copies go into a scratch build context, its `pip install` commands run there in
order in a new virtualenv (from the package registry, like the image build), and the installed
`source-klaviyo spec` must print exactly the connector's spec. Run by `.ci/run`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from integration_tests.connector_process import parse_messages  # noqa: E402
from integration_tests.dockerfile import ROOT, arguments_of, copies, pip_installs  # noqa: E402


def main() -> int:
    entrypoint = json.loads(arguments_of("ENTRYPOINT")[0])[0]
    with tempfile.TemporaryDirectory() as scratch:
        context = Path(scratch) / "context"
        context.mkdir()
        for source, destination in copies():
            if destination.startswith("/"):
                continue  # kept outside the install; the engine-free tests check these
            if (ROOT / source).is_dir():
                ignore = shutil.ignore_patterns("__pycache__")
                shutil.copytree(ROOT / source, context / source, ignore=ignore)
            else:
                shutil.copy2(ROOT / source, context / source)
        environment = Path(scratch) / "venv"
        venv.create(environment, with_pip=True)
        for arguments in pip_installs():
            print(f"==> pip install {' '.join(arguments)}", flush=True)
            subprocess.run(
                [str(environment / "bin" / "python"), "-m", "pip", "install", "-q", *arguments],
                cwd=context,
                check=True,
                timeout=1800,
            )
        spec = subprocess.run(
            [str(environment / "bin" / entrypoint), "spec"],
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    printed = [
        m["spec"]["connectionSpecification"]
        for m in parse_messages(spec.stdout)
        if m["type"] == "SPEC"
    ]
    expected = json.loads((ROOT / "source_klaviyo" / "spec.json").read_text())
    if spec.returncode != 0 or printed != [expected["connectionSpecification"]]:
        print(spec.stderr[-3000:], file=sys.stderr)
        print("image install check FAILED: the installed entrypoint did not print the spec")
        return 1
    print(f"image install check passed: `{entrypoint} spec` printed the connector's spec")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
