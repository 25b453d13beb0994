"""Recipes for the text experiments (notebook 02 and ``benchmarks/bench_discrete.py``): same-size models, one budget.

Three character models of the surname corpus share one transformer trunk (width, depth, heads) and one training
budget (steps × batch size):

* ``"masked"``: :class:`~diffuse_edu.masked.MaskedProcess` + bidirectional :class:`DiffusionTransformer`;
* ``"uniform"``: :class:`~diffuse_edu.uniform.UniformProcess` + the same denoiser (without the mask symbol), wrapped in
  :class:`UniformBayesDenoiser`;
* ``"ar"``: :class:`CausalTransformer`, the exact-likelihood baseline.

:func:`train_text_models` trains them one after the other (or loads them from a checkpoint folder when the settings
match), and :func:`bits_per_char_table` scores them on a test split next to the unigram floor.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import load_checkpoint, save_checkpoint
from .data.batching import infinite_batches
from .masked import MaskedProcess
from .metrics.text import BitsPerChar, ar_bits_per_char, nelbo_bits_per_char, unigram_bits_per_char
from .nets.transformer import CausalTransformer, DiffusionTransformer
from .schedules import get_schedule
from .train import train_iter
from .uniform import UniformProcess

__all__ = [
    "UniformBayesDenoiser",
    "TextSetup",
    "TrainedText",
    "discrete_loss_fn",
    "ar_loss_fn",
    "build_text_models",
    "text_cache_dir",
    "train_text_models",
    "bits_per_char_table",
]

KINDS = ("masked", "uniform", "ar")


class UniformBayesDenoiser(nn.Module):
    r"""Uniform-diffusion denoiser that applies Bayes' rule for the observed token analytically.

    The exact posterior of one clean token given the noisy string factorises as
    :math:`p(x_0^i \mid x_t) \propto q(x_t^i \mid x_0^i)\, p(x_0^i \mid x_t^{-i})`, with
    :math:`q(x_t^i \mid x_0^i) = \alpha_t \mathbb{1}[x_t^i = x_0^i] + (1-\alpha_t)/V`. The network supplies the
    context term (logits); we add :math:`\log q(x_t^i \mid \cdot)`. As t → 0 the output then collapses onto
    :math:`x_t^i`, as the exact posterior does — which the uniform ELBO demands: its integrand charges about
    1/t for any probability left on other letters near t = 0, so a plain network starts with a NELBO worse than
    "know nothing" and trains with huge loss spikes. (The masked analogue is MDLM's carry-over of unmasked tokens.)

    Args:
        net: ``net(x_t (B, L) long, t (B,)) -> logits (B, L, V)``.
        vocab_size: V.  schedule: name of the uniform process's schedule (same α(t)).
    """

    def __init__(self, net: nn.Module, vocab_size: int, schedule: str = "log-linear"):
        super().__init__()
        self.net = net
        self.vocab_size = vocab_size
        self.schedule_name = schedule
        self.schedule = get_schedule(schedule)

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable (used by :mod:`diffuse_edu.checkpoint`)."""
        return {"net": self.net.config(), "vocab_size": self.vocab_size, "schedule": self.schedule_name}

    @classmethod
    def from_config(cls, config: dict) -> "UniformBayesDenoiser":
        """Rebuild from :meth:`config` (the inner network is a :class:`DiffusionTransformer`)."""
        return cls(DiffusionTransformer.from_config(config["net"]), config["vocab_size"], config["schedule"])

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        """Logits of p(x_0 | x_t), shape (B, L, V), for ``x_t`` long (B, L) and ``t`` (B,)."""
        logits = self.net(x_t, t)
        t = torch.as_tensor(t, dtype=torch.float64, device=x_t.device).expand(x_t.shape[0])
        a = self.schedule.alpha(t).reshape(-1, *([1] * x_t.ndim))  # (B, 1, 1)
        # log q(x_t^i | x_0^i = y) for every y: log(α·1[y = x_t^i] + (1 − α)/V)
        # (clamped so that t = 0, where the other letters are impossible, still gives finite logits)
        log_lik = torch.log((a * F.one_hot(x_t, self.vocab_size) + (1 - a) / self.vocab_size).clamp_min(1e-30))
        return logits + log_lik.to(logits.dtype)

    def num_params(self) -> int:
        return self.net.num_params()


def discrete_loss_fn(process, generator: torch.Generator | None = None):
    """``loss_fn(model, x0)`` for :func:`~diffuse_edu.train.train`: the NELBO integrand at stratified times, in nats
    per token (mean over the batch, divided by L). ``x0`` long shape (B, L)."""

    def fn(model: nn.Module, x0: Tensor) -> Tensor:
        t = process.sample_times(x0.shape[0], generator=generator, device=x0.device)
        x_t = process.corrupt(x0, t, generator)
        return process.loss(model(x_t, t), x0, x_t, t).mean() / x0.shape[1]

    return fn


def ar_loss_fn(model: CausalTransformer, x0: Tensor) -> Tensor:
    """``loss_fn(model, x0)``: the autoregressive NLL in nats per token (mean over the batch)."""
    return model.loss(x0)


@dataclass
class TextSetup:
    """Everything that defines one run of the three text models (saved next to the checkpoints).

    Attributes:
        vocab_size: V (clean tokens, PAD included).  max_len: L.
        width, depth, heads: the shared trunk.  masked_time: time conditioning of the masked denoiser.
        uniform_time: time conditioning of the uniform denoiser (it needs t: its noise level is not visible).
        steps, batch_size, lr, warmup, ema_decay: the shared training budget and optimiser.
        schedule: name of the noise schedule of both diffusion processes.  seed: initialisation and batches.
    """

    vocab_size: int
    max_len: int
    width: int = 128
    depth: int = 4
    heads: int = 4
    masked_time: str = "none"
    uniform_time: str = "add"
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    warmup: int = 100
    ema_decay: float = 0.995
    schedule: str = "log-linear"
    seed: int = 0


@dataclass
class TrainedText:
    """What :func:`train_text_models` returns: per kind, the EMA model, the loss curve, the wall time."""

    setup: TextSetup
    models: dict[str, nn.Module]
    processes: dict[str, object]
    losses: dict[str, list[float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    loaded: bool = False


def build_text_models(setup: TextSetup) -> tuple[dict[str, nn.Module], dict[str, object]]:
    """The three networks (same trunk) and the two processes for ``setup``, freshly initialised (seeded)."""
    torch.manual_seed(setup.seed)
    V, L = setup.vocab_size, setup.max_len
    size = dict(width=setup.width, depth=setup.depth, heads=setup.heads)
    models = {
        "masked": DiffusionTransformer(V + 1, V, L, time_conditioning=setup.masked_time, **size),
        "uniform": UniformBayesDenoiser(
            DiffusionTransformer(V, V, L, time_conditioning=setup.uniform_time, **size), V, setup.schedule
        ),
        "ar": CausalTransformer(V, L, **size),
    }
    processes = {"masked": MaskedProcess(V, setup.schedule), "uniform": UniformProcess(V, setup.schedule)}
    return models, processes


def text_cache_dir(setup: TextSetup) -> Path:
    """Checkpoint folder for ``setup``: ``$DIFFUSE_EDU_CACHE`` (or ``~/.cache/diffuse_edu``) / text / <hash of setup>."""
    root = Path(os.environ.get("DIFFUSE_EDU_CACHE") or Path.home() / ".cache" / "diffuse_edu")
    key = hashlib.sha256(json.dumps(asdict(setup), sort_keys=True).encode()).hexdigest()[:12]
    return root / "text" / key


def _setup_matches(folder: Path, setup: TextSetup) -> bool:
    meta = folder / "setup.json"
    return (
        meta.is_file()
        and json.loads(meta.read_text()) == asdict(setup)
        and all((folder / f"{k}.safetensors").is_file() for k in KINDS)
    )


def train_text_models(
    setup: TextSetup,
    train_tokens: Tensor,
    kinds: tuple[str, ...] = KINDS,
    cache_dir: str | Path | None = None,
    reuse: bool = True,
    device=None,
    progress: bool = True,
) -> TrainedText:
    """Train the models of ``kinds`` with the same budget, or load them from ``cache_dir`` if it holds this setup.

    Each model sees the same sequence of batches (same seed). Returns the EMA weights (in eval mode).

    Args:
        setup: sizes and budget.  train_tokens: long shape (N, L).
        kinds: a subset of ``("masked", "uniform", "ar")``.
        cache_dir: folder for ``<kind>.safetensors/.json`` and ``setup.json`` (e.g. :func:`text_cache_dir`);
            None: no saving.
        reuse: load the models from ``cache_dir`` when it holds all three for this exact setup (else train).
        device: where to train (default: :func:`~diffuse_edu.config.get_device`).
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"kinds must be among {KINDS}; got {sorted(unknown)}.")
    models, processes = build_text_models(setup)
    folder = Path(cache_dir) if cache_dir is not None else None
    if reuse and folder is not None and set(kinds) == set(KINDS) and _setup_matches(folder, setup):
        out = TrainedText(setup, {}, processes, loaded=True)
        for k in KINDS:
            ck = load_checkpoint(folder / k, device=device)
            out.models[k] = ck.ema_model if ck.ema_model is not None else ck.model.eval()
            out.losses[k] = ck.config.get("losses", [])
            out.seconds[k] = ck.config.get("seconds", float("nan"))
        return out
    out = TrainedText(setup, {}, processes)
    for k in kinds:
        loss_fn = ar_loss_fn if k == "ar" else discrete_loss_fn(processes[k])
        batches = infinite_batches(
            train_tokens, batch_size=setup.batch_size, generator=torch.Generator().manual_seed(setup.seed)
        )
        start = time.perf_counter()
        state = None
        for state in train_iter(
            models[k],
            loss_fn,
            batches,
            steps=setup.steps,
            lr=setup.lr,
            warmup=setup.warmup,
            lr_decay="cosine",
            ema_decay=setup.ema_decay,
            device=device,
            progress=progress,
            seed=setup.seed,
        ):
            pass
        out.seconds[k] = time.perf_counter() - start
        out.losses[k] = list(state.losses)
        out.models[k] = state.ema.module
        if folder is not None:
            save_checkpoint(
                folder / k, state.model, {"losses": out.losses[k], "seconds": out.seconds[k]}, ema=state.ema
            )
    if folder is not None and set(kinds) == set(KINDS):
        (folder / "setup.json").write_text(json.dumps(asdict(setup), indent=2, sort_keys=True))
    return out


def bits_per_char_table(
    trained: TrainedText,
    train_tokens: Tensor,
    test_tokens: Tensor,
    n_samples: int = 8,
    batch_size: int = 1024,
    generator: torch.Generator | None = None,
) -> dict[str, BitsPerChar]:
    """Bits/char on ``test_tokens`` (N, L): the diffusion NELBOs (with Monte-Carlo s.e.), AR (exact), unigram (exact)."""
    V = trained.setup.vocab_size
    table: dict[str, BitsPerChar] = {}
    for k, model in trained.models.items():
        if k == "ar":
            table[k] = ar_bits_per_char(model, test_tokens, batch_size=batch_size)
        else:
            table[k] = nelbo_bits_per_char(
                trained.processes[k],
                model,
                test_tokens,
                n_samples=n_samples,
                batch_size=batch_size,
                generator=generator,
            )
    table["unigram"] = unigram_bits_per_char(train_tokens, test_tokens, V)
    return table
