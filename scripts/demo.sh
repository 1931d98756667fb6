#!/usr/bin/env bash
# The main job: sets up whatever is missing, then runs an emulated network with loops
# under our controller (discovery, all-pairs reachability, a link failure and repair)
# and prints a report.  Options: see scripts/demo.py --help (e.g. --topo leafspine,2,4,2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
