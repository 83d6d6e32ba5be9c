#!/usr/bin/env bash
# The one-command demo: install, start the local Klaviyo sandbox, then run check, discover, a
# full read of all four streams and an incremental read with the state it emitted.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
python scripts/demo.py "$@"
