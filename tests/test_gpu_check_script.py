"""scripts/gpu_check.sh, rehearsed on the CPU (``GPU_CHECK_REHEARSE=1``): the script itself must work before a GPU
session spends device time on it. (Its first version called three benchmarks with arguments they do not take, which
no CPU run noticed.) The notebook stage's runner has its own tests (test_run_notebook.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(sys.platform == "win32", reason="a bash script")
def test_gpu_check_rehearsal_runs_its_stages_and_writes_its_files(tmp_path):
    env = {
        **os.environ,
        "GPU_CHECK_REHEARSE": "1",
        "GPU_CHECK_BUDGET": "240",
        "GPU_CHECK_BENCH_TRAIN": "0",
        "OUT": str(tmp_path),
        "PYTHON": sys.executable,
        "DIFFUSE_EDU_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "tests", "bench"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    log = (tmp_path / "gpu_check.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    assert "stages: tests bench" in log and "done: all passed" in log
    with tarfile.open(tmp_path / "bench.tar.gz") as tar:
        names = tar.getnames()
    assert "bench/text_image.md" in names, names
    bad = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "nonsense"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 1 and "unknown stage nonsense" in bad.stdout
