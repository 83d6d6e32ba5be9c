#!/usr/bin/env bash
# Install everything, then run lint, type checks and the whole test suite (what CI runs).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k campaigns`.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
echo "==> ruff check" && ruff check .
echo "==> ruff format --check" && ruff format --check .
echo "==> mypy" && mypy
echo "==> pytest" && python -m pytest "$@"
