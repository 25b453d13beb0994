#!/usr/bin/env bash
# The GPU check: on a machine with CUDA, run the gpu-marked tests, every notebook in full mode and every benchmark's
# CUDA section, writing executed notebooks and logs to one folder. Budget: <= 8 minutes on one H200.
#
#   bash scripts/gpu_check.sh                 # results in $OUT (the device tool sets it) or ./gpu_check_out
#
# On a bare machine without Jupyter, first prepare the wheels here (bash scripts/gpu_wheels.sh) and carry .whl/:
# they are installed into /tmp/site. Stored outputs are then copied back with scripts/gpu_store.sh (see
# docs/howto/gpu.md). Results: gpu_check.log (everything, in order), NN_*.ipynb (executed in full mode on CUDA),
# bench.tar.gz (benchmarks/results written by the CUDA runs). At most 8 files come back from the device machine.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/gpu_check_out}"
mkdir -p "$OUT" "$OUT/.work"
LOG="$OUT/gpu_check.log"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1 DIFFUSE_EDU_FAST=0 MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1
unset CI
PY="${PYTHON:-python3}"
t0=$SECONDS
stamp() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - t0))" "$*"; }

if [ -d .whl ] && ! "$PY" -c "import nbclient, ipykernel, names" 2>/dev/null; then
  stamp "installing the carried wheels into /tmp/site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { stamp "wheel install FAILED"; exit 1; }
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$ROOT:${PYTHONPATH:-}"
"$PY" - <<'PY' || { stamp "no CUDA: nothing to check here"; exit 1; }
import torch, diffuse_edu
assert torch.cuda.is_available(), "torch.cuda.is_available() is False"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}; "
      f"diffuse_edu {diffuse_edu.__version__}; {diffuse_edu.hardware_summary()}")
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
FAILED=0

stamp "1/3 gpu-marked tests"
"$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py || FAILED=1

stamp "2/3 notebooks in full mode (three at a time)"
run_nb() {  # run_nb NOTEBOOK: execute a copy in full mode, store it in $OUT
  local nb="$1" name out
  name="$(basename "$nb")"
  out="$OUT/$name"
  "$PY" - "$nb" "$out" <<'PY' > "$OUT/.work/$name.log" 2>&1
import sys, time, nbformat
from nbclient import NotebookClient
src, dst = sys.argv[1], sys.argv[2]
nb = nbformat.read(src, as_version=4)
start = time.time()
client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": "notebooks"}})
try:
    client.execute()
    status = "ok"
except Exception as err:  # keep the partial notebook for the traceback
    status = f"FAILED: {type(err).__name__}: {str(err)[-2000:]}"
nbformat.write(nb, dst)
print(f"{src}: {status} in {time.time() - start:.0f} s")
sys.exit(0 if status == "ok" else 1)
PY
}
pids=() names=()
for nb in notebooks/[0-9][0-9]_*.ipynb; do
  while [ "$(jobs -rp | wc -l)" -ge 3 ]; do sleep 2; done
  run_nb "$nb" & pids+=($!) names+=("$nb")
done
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then stamp "ok: ${names[$i]}"; else stamp "FAILED: ${names[$i]}"; FAILED=1; fi
  cat "$OUT/.work/$(basename "${names[$i]}").log"
done

stamp "3/3 benchmarks, CUDA sections"
mkdir -p "$OUT/.work/bench"
for b in benchmarks/bench_*.py; do
  stamp "$b"
  timeout 300 "$PY" "$b" --device cuda --out "$OUT/.work/bench" || { stamp "FAILED: $b"; FAILED=1; }
done
tar -czf "$OUT/bench.tar.gz" -C "$OUT/.work" bench
rm -rf "$OUT/.work"
stamp "done: $([ "$FAILED" = 0 ] && echo 'all passed' || echo 'SOME FAILED') in $((SECONDS - t0)) s"
exit "$FAILED"
