# Sourced by the other scripts: make sure .venv holds the locked dependencies and the connector.
# Needs only Python 3.10+ on PATH (override with PYTHON=...). Safe to run again: pip skips what
# is already installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "==> installing locked dependencies (${LOCK_FILE:-requirements-dev.lock})"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "${LOCK_FILE:-requirements-dev.lock}" 2> >(grep -v "is ignored" >&2)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e . 2> >(grep -v -e "is ignored" -e "BuildBackendWarning" >&2)
export PATH="$VENV/bin:$PATH"
