#!/usr/bin/env bash
# The test command: set up from scratch if needed, then run every check and print a timing summary.
#
#   bash scripts/check.sh                   # all stages: setup, lint, tests, notebooks, docs
#   bash scripts/check.sh tests notebooks   # only some stages (setup always runs first)
#   CHECK_FAIL_FAST=1 bash scripts/check.sh # stop at the first failing stage
#
# Stages
#   setup      .venv + torch (DIFFUSE_EDU_TORCH overrides torch==2.13.0) + `pip install -e ".[dev]"`   (scripts/setup.sh)
#   lint       ruff check + ruff format --check on the package, tests, benchmarks, scripts, docs hooks (pyproject.toml,
#              120 columns) and the notebooks (notebooks/ruff.toml: the same rules, 100 columns)
#   tests      pytest tests                                                   (unit tests: the math and the API)
#   notebooks  every notebooks/*.ipynb under nbval in FAST mode (DIFFUSE_EDU_FAST=1), --nbval-lax: any error fails,
#              and the `# NBVAL_CHECK_OUTPUT` cells must reproduce their stored outputs (notebooks/nbval_sanitize.cfg)
#   docs       npm ci (MathJax + widget manager, pinned) and `mkdocs build --strict` (0 warnings allowed)
#
# Every stage runs even if an earlier one failed (unless CHECK_FAIL_FAST=1), so one run reports everything; the exit
# status is non-zero if any stage failed. Budget: <= 20 min on 2 CPU cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export NO_MKDOCS_2_WARNING=1            # silence mkdocs-material's MkDocs-2 banner
export PYTHONDONTWRITEBYTECODE=1
NBVAL_CELL_TIMEOUT="${NBVAL_CELL_TIMEOUT:-300}"
REPORTS="$ROOT/.cache/check"           # junit reports, used for the per-notebook timing table

if [ -t 1 ]; then BOLD=$'\033[1m' RED=$'\033[1;31m' GREEN=$'\033[1;32m' NC=$'\033[0m'; else BOLD="" RED="" GREEN="" NC=""; fi
banner() { printf '\n%s==== %s ====%s\n' "$BOLD" "$*" "$NC"; }

STAGE_NAMES=() STAGE_SECONDS=() STAGE_RESULTS=()
FAILED=0
run_stage() {  # run_stage NAME COMMAND...: time it, record the result, never abort the script
  local name="$1"; shift
  banner "$name"
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  STAGE_NAMES+=("$name") STAGE_SECONDS+=($((SECONDS - t0)))
  if [ "$rc" -eq 0 ]; then
    STAGE_RESULTS+=("ok")
  else
    STAGE_RESULTS+=("FAILED (exit $rc)")
    FAILED=1
    printf '%s[check] stage "%s" FAILED with exit status %s%s\n' "$RED" "$name" "$rc" "$NC" >&2
    if [ "${CHECK_FAIL_FAST:-0}" = 1 ]; then summary; exit 1; fi
  fi
}

summary() {
  banner "summary"
  local i total=0
  printf '%-12s %8s   %s\n' "stage" "seconds" "result"
  for i in "${!STAGE_NAMES[@]}"; do
    printf '%-12s %8s   %s\n' "${STAGE_NAMES[$i]}" "${STAGE_SECONDS[$i]}" "${STAGE_RESULTS[$i]}"
    total=$((total + STAGE_SECONDS[i]))
  done
  printf '%-12s %8s\n' "total" "$total"
  if [ "$FAILED" -ne 0 ]; then
    printf '%s[check] FAILED%s: see the stages marked FAILED above.\n' "$RED" "$NC" >&2
  else
    printf '%s[check] all stages passed%s\n' "$GREEN" "$NC"
  fi
}

junit_times() {  # print seconds per file from a junit xml report (per notebook for nbval)
  python - "$1" <<'PY'
import collections, sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    sys.exit(0)
per_file = collections.OrderedDict()
for case in root.iter("testcase"):
    name = case.get("file") or case.get("classname", "?")
    per_file[name] = per_file.get(name, 0.0) + float(case.get("time", 0))
for name, secs in per_file.items():
    print(f"  {secs:7.1f} s  {name}")
PY
}

LINT_PATHS=(diffuse_edu tests benchmarks scripts docs_hooks notebooks)
stage_lint() {
  python -m ruff check "${LINT_PATHS[@]}" || return
  python -m ruff format --check "${LINT_PATHS[@]}"
}

stage_tests() {
  mkdir -p "$REPORTS" || return
  MPLBACKEND=Agg python -m pytest tests -q --durations=10 --junitxml="$REPORTS/tests.xml"
}

stage_notebooks() {
  shopt -s nullglob
  local nbs=(notebooks/*.ipynb)
  shopt -u nullglob
  if [ "${#nbs[@]}" -eq 0 ]; then
    echo "[check] no notebooks in notebooks/ yet: nothing to run"
    return 0
  fi
  mkdir -p "$REPORTS" || return
  local rc=0
  DIFFUSE_EDU_FAST=1 python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout="$NBVAL_CELL_TIMEOUT" \
    --nbval-sanitize-with notebooks/nbval_sanitize.cfg -q -p no:cacheprovider \
    --junitxml="$REPORTS/notebooks.xml" notebooks/ || rc=$?
  echo "[check] FAST-mode time per notebook (sum of its cells; add ~4 s of kernel start each):"
  junit_times "$REPORTS/notebooks.xml"
  if [ "$rc" -eq 5 ]; then  # pytest: no tests collected
    echo "[check] nbval collected nothing in notebooks/"
    return 0
  fi
  return "$rc"
}

# Stage functions run inside `cmd || rc=$?`, where bash ignores `set -e`: chain with `|| return` explicitly.
stage_docs() {
  bash scripts/setup.sh --npm-only || return
  python -m mkdocs build --strict
}

main() {
  local stages=("$@")
  [ "${#stages[@]}" -eq 0 ] && stages=(lint tests notebooks docs)
  local s
  for s in "${stages[@]}"; do
    case "$s" in lint|tests|notebooks|docs) ;; *) echo "unknown stage '$s' (lint, tests, notebooks, docs)" >&2; exit 2 ;; esac
  done

  run_stage setup bash scripts/setup.sh
  if [ "$FAILED" -ne 0 ]; then summary; exit 1; fi  # nothing else can run without the environment
  # shellcheck disable=SC1091
  source "${DIFFUSE_EDU_VENV:-$ROOT/.venv}/bin/activate"

  for s in "${stages[@]}"; do
    run_stage "$s" "stage_$s"
  done
  summary
  exit "$FAILED"
}

main "$@"
