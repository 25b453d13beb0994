"""Helper for tests/test_distributed.py and tests/test_checkpoint_resume.py: one setup, run in- and out-of-process.

Modes (``python tests/ddp_worker.py MODE --out DIR ...``):

- ``ddp``: launched by ``torchrun --nproc_per_node=2``. Trains a small TimeMLP with a deterministic regression loss
  (so a 2-process run can be compared with a 1-process run on the same global batches), checkpointing into
  ``DIR/ck``; then a second run resumes from the middle checkpoint into ``DIR/ck_resumed``. Every rank records what
  it wrote under those folders (Python audit hooks: opens for writing, renames, removals, mkdirs), the first batch
  and the first global-RNG draw it saw, and its final weights (``DIR/rank{r}.safetensors``, ``DIR/rank{r}.json``).
- ``kill``: one process trains with a checkpoint every step and SIGKILLs itself right after step ``--kill-at``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffuse_edu.data.batching import infinite_batches  # noqa: E402
from diffuse_edu.nets.mlp import TimeMLP  # noqa: E402
from diffuse_edu.train import train, train_iter  # noqa: E402

# ------------------------------------------------------------------------------------------ shared with the tests
DDP_STEPS, DDP_BATCH, DDP_EVERY = 30, 16, 10  # per-rank batch 16: the 1-process reference uses 32


def make_data(n: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x shape (n, 2), t shape (n,), y shape (n, 2): a smooth target the MLP can fit."""
    g = torch.Generator().manual_seed(123)
    x = torch.randn(n, 2, generator=g)
    t = torch.rand(n, generator=g)
    y = torch.stack([torch.sin(2 * x[:, 0]) * t, x[:, 1] * (1 - t)], dim=1)
    return x, t, y


def make_model() -> TimeMLP:
    torch.manual_seed(0)
    return TimeMLP(dim=2, hidden=32, depth=2, time_dim=16)


class RecordingLoss:
    """Deterministic regression loss; remembers the first batch it saw and one global-RNG draw per call."""

    def __init__(self):
        self.first_x = None
        self.draws: list[float] = []

    def __call__(self, model, batch):
        x, t, y = batch
        if self.first_x is None:
            self.first_x = x.detach().clone()
        # Not used by the loss: shows which global-RNG stream this rank draws its diffusion noise from.
        self.draws.append(float(torch.rand(())))
        return (model(x, t) - y).pow(2).mean()


def ddp_kwargs(batch: int, seed_stream: int = 0) -> dict:
    x, t, y = make_data()
    return dict(
        batches=infinite_batches(x, t, y, batch_size=batch, generator=torch.Generator().manual_seed(seed_stream)),
        steps=DDP_STEPS,
        lr=1e-2,
        warmup=5,
        lr_decay="cosine",
        ema_decay=0.9,
        seed=0,
        device="cpu",
        progress=False,
    )


def noisy_setup():
    """A diffusion-like run for the resume tests: global RNG (times), a listed generator (noise), a data stream."""
    x, _, _ = make_data()
    model = make_model()
    g_noise = torch.Generator().manual_seed(7)

    def loss_fn(m, x0):
        t = torch.rand(x0.shape[0])  # global generator
        eps = torch.randn(x0.shape, generator=g_noise)
        x_t = (1 - t)[:, None] * x0 + t[:, None] * eps
        return (m(x_t, t) - eps).pow(2).mean()

    batches = infinite_batches(x, batch_size=24, generator=torch.Generator().manual_seed(3))  # 10 batches/epoch
    kwargs = dict(
        steps=14,
        lr=5e-3,
        warmup=3,
        lr_decay="cosine",
        min_lr=1e-4,
        ema_decay=0.8,
        grad_clip=0.5,
        seed=11,
        generators={"noise": g_noise},
        device="cpu",
        progress=False,
    )
    return model, loss_fn, batches, kwargs


# ---------------------------------------------------------------------------------------------------- the modes
def _audit(root: Path, log: list) -> None:
    """Record every write-like file operation under ``root`` (this process only)."""
    root = str(root.resolve())

    def under(p) -> bool:
        try:
            return os.path.abspath(os.fsdecode(p)).startswith(root)
        except TypeError:
            return False

    def hook(event, args):
        if event == "open" and args[0] is not None and under(args[0]):
            mode, flags = args[1], args[2]
            writing = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if writing:
                log.append(["open", os.fsdecode(args[0])])
        elif event in ("os.rename", "os.remove", "os.mkdir") and under(args[0]):
            log.append([event, os.fsdecode(args[0])])

    sys.addaudithook(hook)


class MethodLossNet(torch.nn.Module):
    """A network whose loss is a method (like CausalTransformer.loss): loss_fn calls model.loss, not model(...)."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.lin(x)

    def loss(self, batch):
        x, _, y = batch
        return (self(x) - y).pow(2).mean()


def run_ddp(out: Path) -> None:
    from safetensors.torch import save_file

    rank = int(os.environ["RANK"])
    writes: list = []
    _audit(out / "ck", writes)
    _audit(out / "ck_resumed", writes)
    loss = RecordingLoss()
    res = train(make_model(), loss, **ddp_kwargs(DDP_BATCH), checkpoint_dir=out / "ck", checkpoint_every=DDP_EVERY)
    # The second run continues the first from its step-20 checkpoint, on both ranks.
    resumed = train(
        make_model(),
        RecordingLoss(),
        **ddp_kwargs(DDP_BATCH),
        checkpoint_dir=out / "ck_resumed",
        resume=out / "ck" / "step_00000020",
    )
    # A loss that calls a method of the model, and a data callable every rank draws identically (a warning).
    torch.manual_seed(1)
    method = train(MethodLossNet(), lambda m, b: m.loss(b), **{**ddp_kwargs(DDP_BATCH), "steps": 3, "warmup": 0})
    x, t, y = make_data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(
            MethodLossNet(),
            lambda m, b: m.loss(b),
            lambda: (x[:8], t[:8], y[:8]),
            steps=1,
            device="cpu",
            progress=False,
        )
    tensors = {f"model.{k}": v for k, v in res.model.state_dict().items()}
    tensors |= {f"method.{k}": v for k, v in method.model.state_dict().items()}
    tensors |= {f"ema.{k}": v for k, v in res.ema_model.state_dict().items()}
    tensors |= {f"resumed.{k}": v for k, v in resumed.model.state_dict().items()}
    tensors |= {f"resumed_ema.{k}": v for k, v in resumed.ema_model.state_dict().items()}
    tensors["first_x"] = loss.first_x
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / f"rank{rank}.safetensors"))
    report = {
        "rank": rank,
        "world_size": res.world_size,
        "losses": res.losses,
        "resumed_losses": resumed.losses,
        "resumed_from": str(resumed.resumed_from),
        "draws": loss.draws[:3],
        "method_losses": method.losses,
        "warnings": [str(w.message) for w in caught],
        "writes": writes,
        "seconds": res.seconds,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(report))


def run_kill(out: Path, kill_at: int) -> None:
    model, loss_fn, batches, kwargs = noisy_setup()
    for state in train_iter(model, loss_fn, batches, checkpoint_dir=out, checkpoint_every=1, **kwargs):
        if state.step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ddp", "kill"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kill-at", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.mode == "ddp":
        run_ddp(args.out)
    else:
        run_kill(args.out, args.kill_at)
