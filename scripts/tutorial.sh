#!/usr/bin/env bash
# The tutorial: set up (first run: a few minutes), then open the notebooks in JupyterLab.
#
#   bash scripts/tutorial.sh                                   # http://localhost:8888, opens a browser if it can
#   bash scripts/tutorial.sh --no-browser --ip=0.0.0.0 --port=8890   # extra arguments go to `jupyter lab`
#                                                              # (--ip=0.0.0.0: reachable from other machines)
#   DIFFUSE_EDU_FAST=1 bash scripts/tutorial.sh                # every notebook in its small, fast configuration
#
# Notebooks run in full mode by default (minutes on a CPU, much less on a GPU). GPU: install a CUDA build of torch
# first, e.g. DIFFUSE_EDU_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126" (see README).
# The docs site (notebooks with stored outputs, concepts, API): bash scripts/docs.sh serve
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck disable=SC1091
source "${DIFFUSE_EDU_VENV:-$ROOT/.venv}/bin/activate"

args=()
if [ "$(id -u)" -eq 0 ]; then
  args+=(--allow-root)  # jupyter refuses to run as root without it (containers, CI boxes)
fi
echo "[tutorial] notebooks in $ROOT/notebooks (DIFFUSE_EDU_FAST=${DIFFUSE_EDU_FAST:-unset}: full mode unless set to 1)"
exec jupyter lab "$ROOT/notebooks" ${args[@]+"${args[@]}"} "$@"
