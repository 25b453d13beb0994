#!/usr/bin/env bash
# Prepare .whl/: the wheels a bare GPU machine needs to run scripts/gpu_check.sh (the Jupyter kernel stack and the
# data packages its image lacks), for CPython 3.12 on x86-64 Linux. Run here, with network access to PyPI:
#
#   bash scripts/gpu_wheels.sh          # writes .whl/ (git-ignored through .git/info/exclude)
#
# The GPU image already has torch, numpy, pandas, matplotlib, scikit-learn, scipy, tqdm, safetensors, pytest and
# hypothesis; we drop the wheels it has (packaging, psutil, attrs, typing_extensions, python_dateutil, tzdata, pygments)
# and everything must stay under the 64 MiB that travels with the working tree (measured 2026-11-30: 64 MB with the repository; check with du -cb .whl).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
"$PY" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" -d .whl \
  nbclient nbformat ipykernel ipywidgets
# pure-Python packages that ship as sdists only are built into wheels here
"$PY" -m pip wheel -q --no-deps -w .whl names==0.3.0
# notebook 05 and bench_tabular.py: the metric libraries (sdmetrics + plotly, xgboost-cpu; ≈ 16 MB) and, unless
# GPU_WHEELS_PEERS=0, SDV's synthesizers with their dependencies (≈ 19 MB, botocore 17 MB of it). Measured 2026-11:
# 35 MB together. Without them notebook 05 and bench_tabular.py cannot score tables on the GPU machine.
if [ "${GPU_WHEELS_TABULAR:-1}" = 1 ]; then
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
    -d .whl palmerpenguins sdmetrics==0.32.0 copulas==0.14.1 plotly narwhals xgboost-cpu==3.2.0 ||
    echo "[gpu_wheels] tabular metric wheels not all fetched (notebook 05 and bench_tabular.py need them)"
  if [ "${GPU_WHEELS_PEERS:-1}" = 1 ]; then
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      "${PLATFORMS[@]}" -d .whl sdv==2.0.0 rdt==2.0.0 ctgan==0.12.1 deepecho faker graphviz cloudpickle \
      platformdirs boto3 botocore s3transfer jmespath pyyaml ||
      echo "[gpu_wheels] SDV wheels not all fetched (bench_tabular.py then skips the peers)"
    # SDV's rdt needs pandas < 3; the GPU image's pandas is newer (measured 2026-11-30: rdt's UniformEncoder raised
    # "OverflowError: Range exceeds valid bounds" in notebook 05 there). Carry the pandas we test with.
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      "${PLATFORMS[@]}" -d .whl pandas==2.3.3 || echo "[gpu_wheels] pandas 2.3.3 not fetched (SDV peers will fail)"
  fi
fi
# The UCI Adult files (notebook 05, bench_tabular.py): the GPU machine reaches no registry, so they travel in
# .whl/adult/ and gpu_check.sh points $DIFFUSE_EDU_ADULT_DIR there (the checksums are verified on load).
# Gzipped (6 MB -> 1 MB); gpu_check.sh unpacks them into /tmp/adult.
ADULT="$("$PY" -c 'from diffuse_edu.data.adult import fetch_adult; print(fetch_adult())' | tail -1)"
mkdir -p .whl/adult && for f in adult.data adult.test; do gzip -9c "$ADULT/$f" > ".whl/adult/$f.gz"; done
# The 32-px shape judges of levels 1-5 (notebook 04's GPU setting): trained here once (about 30 s each on one core,
# then kept in the local cache) and carried, so that the GPU machine spends no device time on them (measured there:
# 33 s for the level-5 one, CPU-bound rendering). gpu_check.sh copies .whl/cache into the cache root. GPU_WHEELS_JUDGES=0 skips.
if [ "${GPU_WHEELS_JUDGES:-1}" = 1 ]; then
  "$PY" - <<'PY'
import shutil
from pathlib import Path

from diffuse_edu.cache import cache_dir_for
from diffuse_edu.recipes.judges import judge_config, shape_judge

for level in range(1, 6):
    shape_judge(level, 32)
    src = cache_dir_for("judges/shapes", judge_config(level, 32))
    shutil.copytree(src, Path(".whl/cache/judges/shapes") / src.name, dirs_exist_ok=True)
PY
fi
cd .whl
rm -f packaging-* psutil-* attrs-* typing_extensions-* python_dateutil-* tzdata-* pygments-* numpy-* six-*
# Not needed to execute notebooks (and the 64 MiB limit is close): ipykernel's debugger backend (optional, it
# checks for it), the classic notebook's widget extension and the code-completion library.
rm -f debugpy-* widgetsnbextension-*
# IPython imports jedi (and parso) only to complete code, which an executed notebook never asks for.
rm -f jedi-* parso-*
cd ..
du -sh .whl
echo "[gpu_wheels] $(ls .whl | wc -l) wheels in .whl/; pass carry=['.whl'] to the device run"
