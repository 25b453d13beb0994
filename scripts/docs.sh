#!/usr/bin/env bash
# The documentation site (mkdocs-material; notebooks rendered from their stored outputs; works offline).
#
#   bash scripts/docs.sh               # = build: set up, then `mkdocs build --strict` into site/
#   bash scripts/docs.sh serve         # set up, then `mkdocs serve` on http://127.0.0.1:8000 (live reload)
#   bash scripts/docs.sh serve -a 0.0.0.0:8000   # extra arguments go to mkdocs (here: reachable from outside)
#   bash scripts/docs.sh render-check  # build, then screenshot pages in headless Chromium and check math/widgets
#
# Set-up is scripts/setup.sh --npm: the Python environment, then `npm ci` for MathJax and the Jupyter widget manager,
# which the site serves itself (docs_hooks/offline_assets.py copies them into the built site).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export NO_MKDOCS_2_WARNING=1

cmd="${1:-build}"
[ $# -gt 0 ] && shift
bash scripts/setup.sh --npm
# shellcheck disable=SC1091
source "${DIFFUSE_EDU_VENV:-$ROOT/.venv}/bin/activate"

case "$cmd" in
  build) exec python -m mkdocs build --strict "$@" ;;
  serve) exec python -m mkdocs serve "$@" ;;
  render-check)
    python -m mkdocs build --strict
    exec python scripts/check_docs_render.py "$@" ;;
  -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
  *) echo "unknown command '$cmd' (build, serve, render-check)" >&2; exit 2 ;;
esac
