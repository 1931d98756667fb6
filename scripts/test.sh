#!/usr/bin/env bash
# Sets up whatever is missing, then runs the linter and the whole test suite
# (unit tests of the pure core and end-to-end tests on OVS + Mininet + ryu-manager).
# Extra arguments go to pytest, e.g. scripts/test.sh -k fattree
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "[test] ruff"
.venv/bin/ruff check sdn_app topologies scripts tests
echo "[test] pytest"
exec .venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
