"""DDP on the CPU: ``torchrun --nproc_per_node=2`` (gloo) against one process with the doubled batch.

One launch of tests/ddp_worker.py (two ranks, per-rank batch 16, 30 steps of a small TimeMLP with a deterministic
regression loss, checkpoints every 10 steps, then a second run resumed from step 20). The one-process reference runs
here with batch 32 on the same stream: rank r's batch is exactly rows [16r, 16r + 16) of the reference batch, so the
rank-averaged gradient equals the reference gradient up to float rounding.

Tolerance: losses within 1e-6 relative, final weights within 1e-5 absolute (measured: 2.3e-7 and 1.3e-7, the
rounding of a different summation order). Ranks and resumed runs: bit-identical.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import ddp_worker as w
import pytest
import torch
from safetensors.torch import load_file

from diffuse_edu.train import train

WORKER = Path(__file__).with_name("ddp_worker.py")
LOSS_RTOL, WEIGHT_ATOL = 1e-6, 1e-5


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(WORKER.parents[1]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER), "ddp"]
    start = time.perf_counter()
    proc = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"torchrun --nproc_per_node=2: {seconds:.1f} s")
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    tensors = [load_file(str(out / f"rank{r}.safetensors")) for r in range(2)]
    return out, reports, tensors, seconds


@pytest.fixture(scope="module")
def reference():
    loss = w.RecordingLoss()
    return train(w.make_model(), loss, **w.ddp_kwargs(2 * w.DDP_BATCH)), loss


def test_two_processes_match_one_process_with_the_doubled_batch(launched, reference):
    _, reports, tensors, seconds = launched
    ref, ref_loss = reference
    r0, r1 = reports
    assert r0["world_size"] == r1["world_size"] == 2
    # Logged losses are averaged over the ranks: the same list on both.
    assert r0["losses"] == r1["losses"] and len(r0["losses"]) == w.DDP_STEPS
    rel = max(abs(a - b) / abs(b) for a, b in zip(r0["losses"], ref.losses, strict=True))
    dw = max((tensors[0][f"model.{k}"] - v).abs().max().item() for k, v in ref.model.state_dict().items())
    print(f"DDP vs one process: max relative loss difference {rel:.2e}, max weight difference {dw:.2e}")
    assert rel < LOSS_RTOL and dw < WEIGHT_ATOL
    # The data: rank 0 took the first half of the reference's first batch, rank 1 the second half.
    assert torch.equal(torch.cat([tensors[0]["first_x"], tensors[1]["first_x"]]), ref_loss.first_x)
    # The noise: rank 0 draws what one process draws (seed 0), rank 1 its own stream.
    assert r0["draws"] == ref_loss.draws[:3] and r1["draws"] != r0["draws"]
    assert seconds < 60


def test_ranks_hold_identical_weights_and_ema(launched):
    _, _, (t0, t1), _ = launched
    assert t0.keys() == t1.keys()
    for k in t0:
        if k != "first_x":
            assert torch.equal(t0[k], t1[k]), k


def test_a_loss_calling_a_model_method_is_synchronised(launched):
    # loss_fn(model, batch) = model.loss(batch) bypasses model(...): DDP still averages the gradients, because the whole
    # loss runs inside DDP's forward (train's LossModule).
    _, (r0, r1), (t0, t1), _ = launched
    assert r0["method_losses"] == r1["method_losses"] and len(r0["method_losses"]) == 3
    assert all(torch.equal(t0[k], t1[k]) for k in t0 if k.startswith("method."))


def test_identical_batches_on_every_rank_are_reported_by_rank_0(launched):
    _, (r0, r1), _, _ = launched
    assert any("every DDP rank drew the same first batch" in m for m in r0["warnings"])
    assert not any("same first batch" in m for m in r1["warnings"])


def test_only_rank_0_wrote_files(launched):
    out, (r0, r1), _, _ = launched
    assert r1["writes"] == []
    assert r0["writes"] and all(p.startswith(str(out)) for _, p in r0["writes"])
    # keep_checkpoints=2 of steps 10, 20, 30; the resumed run wrote only its final step; no temporaries left.
    names = sorted(p.name for p in (out / "ck").iterdir())
    assert names == [f"step_000000{s}.{e}" for s in (20, 30) for e in ("json", "safetensors")]
    assert sorted(p.name for p in (out / "ck_resumed").iterdir()) == ["step_00000030.json", "step_00000030.safetensors"]


def test_resumed_ddp_run_is_bit_identical(launched):
    out, reports, tensors, _ = launched
    for r, t in zip(reports, tensors, strict=True):
        assert r["resumed_from"] == str(out / "ck" / "step_00000020")
        assert r["resumed_losses"] == r["losses"]
        for k in [k for k in t if k.startswith("model.")]:
            assert torch.equal(t["resumed." + k[len("model.") :]], t[k]), k
            assert torch.equal(t["resumed_ema." + k[len("model.") :]], t["ema." + k[len("model.") :]]), k
