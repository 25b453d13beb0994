"""scripts/run_notebook.py, the runner of scripts/gpu_check.sh: figures survive a non-interactive MPLBACKEND (a GPU run
once came back without a single figure because the kernel inherited MPLBACKEND=Agg), and a deadline saves the
notebook as far as it ran."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "run_notebook.py"


def _run(tmp_path, cells, deadline_s, env_extra):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    src, dst = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    env = {**os.environ, **env_extra}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(dst), "--deadline", str(time.time() + deadline_s)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return proc, nbformat.read(dst, as_version=4)


def test_figures_are_kept_under_a_non_interactive_backend(tmp_path):
    cells = ["import matplotlib.pyplot as plt", "plt.plot([0, 1], [1, 0])\nplt.show()", "print('done')"]
    proc, out = _run(tmp_path, cells, 90, {"MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert any("image/png" in o.get("data", {}) for o in out.cells[1].outputs)
    assert out.cells[2].outputs[0]["text"] == "done\n"
    assert out.metadata["diffuse_edu_run"]["status"] == "ok"


def test_deadline_saves_the_notebook_as_far_as_it_ran(tmp_path):
    cells = ["x = 1\nprint(x)", "import time\ntime.sleep(60)", "print('never')"]
    proc, out = _run(tmp_path, cells, 8, {})
    assert proc.returncode == 1
    assert "deadline" in proc.stdout
    assert out.cells[0].outputs[0]["text"] == "1\n"  # what ran before the deadline is kept
    assert out.cells[2].outputs == []  # a cell never reached holds no (stale) output
    assert out.metadata["diffuse_edu_run"]["status"] == "deadline"
