"""Exact resume: a run killed at step k and resumed ends bit-identical (CPU) to the uninterrupted run."""

import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import ddp_worker as w
import pytest
import torch
from torch import nn

from diffuse_edu.checkpoint import (
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from diffuse_edu.train import train, train_iter

WORKER = Path(__file__).with_name("ddp_worker.py")


def _assert_equal_runs(a, b):
    assert a.losses == b.losses  # every float, bit for bit
    for name, sa, sb in (("model", a.model, b.model), ("ema", a.ema_model, b.ema_model)):
        for (k, u), v in zip(sa.state_dict().items(), sb.state_dict().values(), strict=True):
            assert torch.equal(u, v), f"{name}.{k}"


@pytest.fixture(scope="module")
def uninterrupted():
    model, loss_fn, batches, kwargs = w.noisy_setup()
    return train(model, loss_fn, batches, **kwargs)


def test_killed_run_resumes_bit_identically(tmp_path, uninterrupted):
    # A separate process trains with a checkpoint every step and is SIGKILLed right after step 5.
    env = {**os.environ, "PYTHONPATH": str(WORKER.parents[1])}
    proc = subprocess.run(
        [sys.executable, str(WORKER), "kill", "--out", str(tmp_path), "--kill-at", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 5)
    # The same script, started again with resume="latest", continues from step 5 to step 14.
    model, loss_fn, batches, kwargs = w.noisy_setup()
    res = train(model, loss_fn, batches, checkpoint_dir=tmp_path, resume="latest", **kwargs)
    assert res.resumed_from == checkpoint_path(tmp_path, 5) and res.step == 14 and len(res.losses) == 14
    _assert_equal_runs(res, uninterrupted)
    # The optimiser's moments too: a third run resumed from the final checkpoint has nothing left to do.
    model, loss_fn, batches, kwargs = w.noisy_setup()
    again = train(model, loss_fn, batches, checkpoint_dir=tmp_path, resume="latest", **kwargs)
    assert again.step == 14 and again.losses == uninterrupted.losses


def test_resume_within_one_process_and_the_state_it_restores(tmp_path, uninterrupted):
    model, loss_fn, batches, kwargs = w.noisy_setup()
    for state in train_iter(model, loss_fn, batches, checkpoint_dir=tmp_path, checkpoint_every=4, **kwargs):
        if state.step == 9:
            break  # like a kill: steps 10.. never happen; the newest checkpoint is step 8
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 8)
    model2, loss_fn2, batches2, kwargs2 = w.noisy_setup()
    res = train(model2, loss_fn2, batches2, resume=checkpoint_path(tmp_path, 8), **kwargs2)
    _assert_equal_runs(res, uninterrupted)
    assert res.resumed_from == checkpoint_path(tmp_path, 8)
    # The data stream was put back at step 8 and ran on: 14 batches of 24, 10 per epoch -> epoch 2, row 96.
    assert (batches2.epoch, batches2.state_dict()["position"]) == (2, 24 * 4)
    assert res.ema_model is not None


def test_resume_without_the_loss_generator_warns_and_differs(tmp_path, uninterrupted):
    # Negative control: the resume is exact only because generators= restores the noise generator.
    model, loss_fn, batches, kwargs = w.noisy_setup()
    for state in train_iter(model, loss_fn, batches, checkpoint_dir=tmp_path, checkpoint_every=5, **kwargs):
        if state.step == 5:
            break
    model2, loss_fn2, batches2, kwargs2 = w.noisy_setup()
    del kwargs2["generators"]
    with pytest.warns(UserWarning, match="loss_fn holds a torch.Generator"):
        res = train(model2, loss_fn2, batches2, checkpoint_dir=tmp_path, resume="latest", **kwargs2)
    assert res.losses[:5] == uninterrupted.losses[:5] and res.losses[5:] != uninterrupted.losses[5:]


def test_stateless_iterator_warns_on_resume(tmp_path):
    x = torch.randn(32, 3)
    kw = dict(steps=4, device="cpu", progress=False, checkpoint_dir=tmp_path)
    train(nn.Linear(3, 3), lambda m, b: m(b).pow(2).mean(), iter([x] * 4), **{**kw, "steps": 2})

    def batches():
        while True:
            yield x

    with pytest.warns(UserWarning) as caught:
        res = train(nn.Linear(3, 3), lambda m, b: m(b).pow(2).mean(), batches(), resume="latest", **kw)
    messages = " | ".join(str(c.message) for c in caught)
    assert "cannot be put back where the run was killed" in messages and "steps: 2 -> 4" in messages
    assert res.step == 4 and len(res.losses) == 4


def test_resume_latest_in_an_empty_folder_starts_fresh(tmp_path, capsys):
    x = torch.randn(8, 3)
    res = train(
        nn.Linear(3, 3),
        lambda m, b: m(b).pow(2).mean(),
        lambda: x,
        steps=3,
        device="cpu",
        progress=False,
        checkpoint_dir=tmp_path / "run",
        checkpoint_every=2,
        keep_checkpoints=None,
        resume="latest",
    )
    assert "starting from step 0" in capsys.readouterr().out and res.resumed_from is None
    # checkpoint_every=2 plus the last step; keep_checkpoints=None keeps both; rank 0 is the only writer.
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "step_00000002.json",
        "step_00000002.safetensors",
        "step_00000003.json",
        "step_00000003.safetensors",
    ]
    assert res.checkpoint == checkpoint_path(tmp_path / "run", 3)


def test_resume_refuses_corrupt_and_non_training_checkpoints(tmp_path):
    x = torch.randn(8, 3)
    kw = dict(steps=3, device="cpu", progress=False)
    loss = lambda m, b: m(b).pow(2).mean()
    train(nn.Linear(3, 3), loss, lambda: x, checkpoint_dir=tmp_path / "a", **kw)
    st = tmp_path / "a" / "step_00000003.safetensors"
    st.write_bytes(st.read_bytes()[:-100])  # truncated, e.g. a disk that filled up
    with pytest.raises(CheckpointError, match="truncated"):
        train(nn.Linear(3, 3), loss, lambda: x, checkpoint_dir=tmp_path / "a", resume="latest", **kw)
    save_checkpoint(tmp_path / "weights_only", nn.Linear(3, 3))
    with pytest.raises(ValueError, match="no training state"):
        train(nn.Linear(3, 3), loss, lambda: x, resume=tmp_path / "weights_only", **kw)
    with pytest.raises(FileNotFoundError):
        train(nn.Linear(3, 3), loss, lambda: x, resume=tmp_path / "missing", **kw)
    with pytest.raises(FileNotFoundError, match="without step_"):
        train(nn.Linear(3, 3), loss, lambda: x, resume=tmp_path, **kw)


def test_resume_with_changed_settings_warns(tmp_path):
    x = torch.randn(8, 3)
    loss = lambda m, b: m(b).pow(2).mean()
    kw = dict(device="cpu", progress=False, checkpoint_dir=tmp_path)
    train(nn.Linear(3, 3), loss, lambda: x, steps=2, **kw)
    with pytest.warns(UserWarning, match=r"different settings \(steps: 2 -> 5; lr: 0.001 -> 0.01\)"):
        res = train(nn.Linear(3, 3), loss, lambda: x, steps=5, lr=1e-2, resume="latest", **kw)
    assert res.step == 5 and len(res.losses) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(nn.Linear(3, 3), loss, lambda: x, steps=5, lr=1e-2, resume="latest", **kw)  # same settings: silent


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_resume_is_exact_under_autocast_and_loss_scaling(tmp_path, precision):
    # fp16 adds a GradScaler, whose scale and growth tracker travel in the checkpoint's JSON.
    def run(**kw):
        model, loss_fn, batches, kwargs = w.noisy_setup()
        return model, loss_fn, batches, {**kwargs, "steps": 8, "precision": precision, **kw}

    model, loss_fn, batches, kwargs = run()
    full = train(model, loss_fn, batches, **kwargs)
    model, loss_fn, batches, kwargs = run(checkpoint_dir=tmp_path, checkpoint_every=3)
    for state in train_iter(model, loss_fn, batches, **kwargs):
        if state.step == 4:
            break
    model, loss_fn, batches, kwargs = run(checkpoint_dir=tmp_path, resume="latest")
    res = train(model, loss_fn, batches, **kwargs)
    assert res.resumed_from == checkpoint_path(tmp_path, 3) and res.precision == precision
    _assert_equal_runs(res, full)
    scaler = load_checkpoint(checkpoint_path(tmp_path, 3), w.make_model()).state["scaler"]
    if precision == "fp16":
        assert scaler["scale"] == 65536.0 and scaler["_growth_tracker"] == 3  # three steps without overflow
    else:
        assert scaler is None
