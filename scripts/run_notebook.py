"""Execute one notebook top to bottom and save it, within a wall-clock deadline.

    python scripts/run_notebook.py notebooks/04_joint_text_image.ipynb OUT.ipynb [--deadline UNIX_TIME]

The kernel is ``python3`` and the working directory ``notebooks/`` (as in JupyterLab). Cells run one at a time; each
cell may use the time left before ``--deadline`` (default: 15 minutes from now). When a cell fails or the deadline
comes, the notebook is saved as far as it ran — the failing cell keeps its traceback, later cells keep no outputs —
and the exit status is 1; the notebook's metadata records the outcome (``diffuse_edu_run``). ``scripts/gpu_check.sh``
uses it so that a run cut short by the device machine's time limit still brings back what it computed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError


def run(src: str, dst: str, deadline: float) -> str:
    # The kernel inherits this environment: a non-interactive MPLBACKEND (e.g. Agg, set for scripts) would silence
    # every plt.show() and the saved notebook would hold no figures. The kernel picks its inline backend without it.
    os.environ.pop("MPLBACKEND", None)
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:  # stale outputs of the stored run must not survive in cells this run does not reach
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    root = Path(src).resolve().parent
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(root)}})
    start, status, done = time.time(), "ok", 0
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    try:
        with client.setup_kernel():
            info = client.wait_for_reply(client.kc.kernel_info())
            nb.metadata["language_info"] = info["content"]["language_info"]
            for n, index in enumerate(code):
                left = deadline - time.time()
                if left < 2:
                    status = f"deadline: stopped before code cell {n + 1} of {len(code)}"
                    break
                client.timeout = int(left)
                client.execute_cell(nb.cells[index], index, execution_count=n + 1)
                done = n + 1
            client.set_widgets_metadata()
    except CellTimeoutError:
        status = f"deadline: code cell {done + 1} of {len(code)} was still running"
    except CellExecutionError as err:
        status = f"FAILED in code cell {done + 1} of {len(code)}: {str(err)[-1500:]}"
    except Exception as err:  # kernel died, etc.: keep the partial notebook
        status = f"FAILED: {type(err).__name__}: {str(err)[-1500:]}"
    seconds = time.time() - start
    outcome = dict(status=status.split(":")[0], cells=f"{done}/{len(code)}", seconds=round(seconds))
    nb.metadata["diffuse_edu_run"] = outcome
    nbformat.write(nb, dst)
    return f"{src}: {status} ({done}/{len(code)} code cells) in {seconds:.0f} s"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--deadline", type=float, default=None, help="UNIX time by which to stop (default: now + 15 min)")
    args = p.parse_args()
    line = run(args.src, args.dst, args.deadline or time.time() + 900)
    print(line, flush=True)
    return 0 if ": ok " in line else 1


if __name__ == "__main__":
    sys.exit(main())
