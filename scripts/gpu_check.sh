#!/usr/bin/env bash
# The GPU check: on a machine with CUDA, run the gpu-marked tests, every notebook in full mode and the benchmarks'
# CUDA throughput rows, writing executed notebooks and logs to one folder, within a fixed wall-clock budget.
#
#   bash scripts/gpu_check.sh                      # every stage: tests notebooks bench
#   bash scripts/gpu_check.sh tests notebooks      # some stages, in this order
#   GPU_CHECK_BUDGET=300 bash scripts/gpu_check.sh bench
#
# GPU_CHECK_BUDGET (seconds, default 540): everything stops by then — a notebook still running is saved as far as it
# got (scripts/run_notebook.py) and marked so in the log. Results go to $OUT (the device tool sets it) or
# ./gpu_check_out: gpu_check.log (everything, in order), NN_*.ipynb (executed in full mode on CUDA) and bench.tar.gz
# (the benchmark reports) — at most 7 files, as the device machine sends back at most 8.
#
# On a bare machine without Jupyter, first prepare the wheels here (bash scripts/gpu_wheels.sh) and carry .whl/:
# they are installed into /tmp/site, and .whl/adult/ (the UCI Adult files, gzipped) is unpacked for
# $DIFFUSE_EDU_ADULT_DIR.
# docs/howto/gpu.md says how to store a run's outputs in the repository.
#
# Rehearsal on a CPU (checks the script, not the GPU): GPU_CHECK_REHEARSE=1 bash scripts/gpu_check.sh — FAST mode,
# CPU device, benchmarks in their --fast sizes.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/gpu_check_out}"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
LOG="$OUT/gpu_check.log"
exec > >(tee -a "$LOG") 2>&1
REHEARSE="${GPU_CHECK_REHEARSE:-0}"
export PYTHONUNBUFFERED=1 DIFFUSE_EDU_FAST="$REHEARSE" MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1  # Agg: scripts only
if [ "$REHEARSE" = 1 ]; then DEV=cpu BENCH_SIZE=--fast; else DEV=cuda BENCH_SIZE=; fi
unset CI
PY="${PYTHON:-python3}"
BUDGET="${GPU_CHECK_BUDGET:-540}"
t0=$SECONDS
END=$(($(date +%s) + BUDGET))
stamp() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - t0))" "$*"; }
left() { local l=$((END - $(date +%s))); echo $((l < 5 ? 5 : l)); }  # never 0: timeout 0 means none
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(tests notebooks bench)

if [ -d .whl ] && ! "$PY" -c "import nbclient, ipykernel, names" 2>/dev/null; then
  stamp "installing the carried wheels into /tmp/site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { stamp "wheel install FAILED"; exit 1; }
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
if [ -d .whl/cache ]; then  # judges trained ahead by gpu_wheels.sh: into the cache root, keeping what is there
  CACHE_ROOT="${DIFFUSE_EDU_CACHE:-$HOME/.cache/diffuse_edu}"
  mkdir -p "$CACHE_ROOT" && cp -rn .whl/cache/. "$CACHE_ROOT"/
fi
if [ -f .whl/adult/adult.data.gz ]; then  # the UCI Adult files, gzipped by gpu_wheels.sh
  mkdir -p /tmp/adult && for f in adult.data adult.test; do gunzip -c ".whl/adult/$f.gz" > "/tmp/adult/$f"; done
  export DIFFUSE_EDU_ADULT_DIR=/tmp/adult
fi
export PYTHONPATH="$ROOT:${PYTHONPATH:-}"
"$PY" - "$REHEARSE" <<'PY' || { stamp "no CUDA: nothing to check here"; exit 1; }
import sys, torch, diffuse_edu
assert torch.cuda.is_available() or sys.argv[1] == "1", "torch.cuda.is_available() is False"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}; diffuse_edu {diffuse_edu.__version__}; "
      f"{diffuse_edu.hardware_summary()}")
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
stamp "stages: ${STAGES[*]}; budget ${BUDGET} s"
FAILED=0

for stage in "${STAGES[@]}"; do
  case "$stage" in
  tests)
    stamp "tests: gpu-marked tests"
    timeout "$(($(left) > 120 ? 120 : $(left)))" "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py \
      || FAILED=1
    ;;
  notebooks)
    # All five at once (the small ones barely load the GPU); the heaviest first. Each kernel gets 3 CPU threads.
    stamp "notebooks: full mode, all at once, until $(left) s from now"
    pids=() names=()
    for nb in notebooks/04_*.ipynb notebooks/05_*.ipynb notebooks/02_*.ipynb notebooks/01_*.ipynb \
      notebooks/03_*.ipynb; do
      [ -f "$nb" ] || continue
      [[ " ${GPU_CHECK_NOTEBOOKS:-01 02 03 04 05} " == *" ${nb:10:2} "* ]] || continue  # e.g. GPU_CHECK_NOTEBOOKS=04
      OMP_NUM_THREADS=3 "$PY" scripts/run_notebook.py "$nb" "$OUT/$(basename "$nb")" --deadline "$((END - 15))" \
        > "$WORK/$(basename "$nb").log" 2>&1 &
      pids+=($!) names+=("$nb")
    done
    for i in "${!pids[@]}"; do
      if wait "${pids[$i]}"; then stamp "ok: ${names[$i]}"; else stamp "NOT COMPLETE: ${names[$i]}"; FAILED=1; fi
      grep -v 'WARNING | Kernel is running over TCP' "$WORK/$(basename "${names[$i]}").log"
    done
    ;;
  bench)
    # Throughput rows alone on the GPU: the text-image recipe loop vs a minimal loop (eager and compiled), then
    # bench_train's precision rows for the text-image and U-Net models.
    # GPU_CHECK_BENCH_SECONDS caps this stage (so that a later stage keeps its time); GPU_CHECK_BENCH_ARGS are extra
    # arguments of bench_text_image.py (e.g. --no-compile); GPU_CHECK_BENCH_TRAIN=0 skips bench_train.py.
    mkdir -p "$WORK/bench"
    bend=$(($(date +%s) + ${GPU_CHECK_BENCH_SECONDS:-$(left)}))
    bleft() { local l=$((bend - $(date +%s))) e; e=$(left); l=$((l < e ? l : e)); echo $((l < 5 ? 5 : l)); }
    stamp "bench: bench_text_image throughput"
    timeout "$(bleft)" "$PY" benchmarks/bench_text_image.py --device $DEV $BENCH_SIZE --sections throughput \
      --out "$WORK/bench" ${GPU_CHECK_BENCH_ARGS:-} || { stamp "FAILED or cut: bench_text_image"; FAILED=1; }
    if [ "${GPU_CHECK_BENCH_TRAIN:-1}" = 1 ]; then
      stamp "bench: bench_train (CUDA rows)"
      timeout "$(bleft)" "$PY" benchmarks/bench_train.py --device $DEV $BENCH_SIZE --no-ddp --models textimage,unet \
        --out "$WORK/bench" || { stamp "FAILED or cut: bench_train"; FAILED=1; }
    fi
    tar -czf "$OUT/bench.tar.gz" -C "$WORK" bench
    ;;
  *) stamp "unknown stage $stage (tests, notebooks, bench)"; FAILED=1 ;;
  esac
done
rm -rf "$WORK"
stamp "done: $([ "$FAILED" = 0 ] && echo 'all passed' || echo 'SOME FAILED OR CUT SHORT') in $((SECONDS - t0)) s"
exit "$FAILED"
