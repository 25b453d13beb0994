"""The text experiment (notebook 02, ``benchmarks/bench_discrete.py``): three same-size models, one budget.

Three character models of the surname corpus share one transformer trunk (width, depth, heads) and one training
budget (steps × batch size):

* ``"masked"``: :class:`~diffuse_edu.masked.MaskedProcess` + bidirectional
  :class:`~diffuse_edu.nets.transformer.DiffusionTransformer`;
* ``"uniform"``: :class:`~diffuse_edu.uniform.UniformProcess` + the same denoiser (without the mask symbol), wrapped
  in :class:`~diffuse_edu.nets.uniform_bayes.UniformBayesDenoiser`;
* ``"ar"``: :class:`~diffuse_edu.nets.transformer.CausalTransformer`, the exact-likelihood baseline.

:func:`train_text_models` trains them one after the other (or loads them from the cache, keyed by the
:class:`TextSetup`, so the benchmark reuses the notebook's models), and :func:`bits_per_char_table` scores them on a
test split next to the unigram floor. Evaluation runs on each model's device.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from ..cache import cache_dir_for
from ..config import get_device
from ..data.batching import infinite_batches
from ..masked import MaskedProcess
from ..metrics.text import BitsPerChar, ar_bits_per_char, nelbo_bits_per_char, unigram_bits_per_char
from ..nets.transformer import CausalTransformer, DiffusionTransformer
from ..nets.uniform_bayes import UniformBayesDenoiser
from ..process import Process
from ..train import train
from ..uniform import UniformProcess
from ._cache import load_trained, save_trained

__all__ = [
    "KINDS",
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


def discrete_loss_fn(process: Process, generator: torch.Generator | None = None):
    """``loss_fn(model, x0)`` for :func:`~diffuse_edu.train.train`: the process's NELBO integrand at stratified times
    (:meth:`~diffuse_edu.process.Process.loss_fn`), in nats per token (divided by L). ``x0`` long shape (B, L)."""
    per_sequence = process.loss_fn(generator=generator)

    def fn(model: nn.Module, x0: Tensor) -> Tensor:
        return per_sequence(model, x0) / x0.shape[1]

    return fn


def ar_loss_fn(model: CausalTransformer, x0: Tensor) -> Tensor:
    """``loss_fn(model, x0)``: the autoregressive NLL in nats per token (mean over the batch)."""
    return model.loss(x0)


@dataclass
class TextSetup:
    """Everything that defines one run of the three text models (its hash keys the cache).

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
    """What :func:`train_text_models` returns: per kind, the EMA model, the loss curve, the training wall time.

    Attributes:
        loaded: the kinds that came from the cache (their losses and seconds are those of the run that trained them).
    """

    setup: TextSetup
    models: dict[str, nn.Module]
    processes: dict[str, Process]
    losses: dict[str, list[float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    loaded: tuple[str, ...] = ()


def build_text_models(setup: TextSetup) -> tuple[dict[str, nn.Module], dict[str, Process]]:
    """The three networks (same trunk) and the two processes for ``setup``, freshly initialised (seeded)."""
    V, L = setup.vocab_size, setup.max_len
    size = dict(width=setup.width, depth=setup.depth, heads=setup.heads)
    with torch.random.fork_rng(devices=[]):  # initialising does not move the caller's global stream
        torch.manual_seed(setup.seed)
        models = {
            "masked": DiffusionTransformer(V + 1, V, L, time_conditioning=setup.masked_time, **size),
            "uniform": UniformBayesDenoiser(
                DiffusionTransformer(V, V, L, time_conditioning=setup.uniform_time, **size), V, setup.schedule
            ),
            "ar": CausalTransformer(V, L, **size),
        }
    processes = {"masked": MaskedProcess(V, setup.schedule), "uniform": UniformProcess(V, setup.schedule)}
    return models, processes


def text_cache_dir(setup: TextSetup, root: str | Path | None = None) -> Path:
    """The cache folder of ``setup``'s models: ``<cache root>/text/<hash of setup>/`` (see :mod:`diffuse_edu.cache`)."""
    return cache_dir_for("text", asdict(setup), root=root)


def train_text_models(
    setup: TextSetup,
    train_tokens: Tensor,
    kinds: tuple[str, ...] = KINDS,
    *,
    cache: bool = True,
    cache_root: str | Path | None = None,
    device=None,
    progress: bool = True,
) -> TrainedText:
    """Train the models of ``kinds`` with the same budget, or load those the cache holds for this exact setup.

    Each model sees the same sequence of batches (same seed). Returns the EMA weights (in eval mode).

    Args:
        setup: sizes and budget.  train_tokens: long shape (N, L).
        kinds: a subset of ``("masked", "uniform", "ar")``.
        cache: load cached models of this setup and save the ones trained here (:func:`text_cache_dir`);
            ``cache_root`` overrides the cache root.
        device: where to train, and where cached models are loaded (default :func:`~diffuse_edu.config.get_device`).
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"kinds must be among {KINDS}; got {sorted(unknown)}.")
    models, processes = build_text_models(setup)
    config = asdict(setup)
    out = TrainedText(setup, {}, processes)
    loaded = []
    for k in kinds:
        hit = load_trained("text", config, k, root=cache_root, device=device or get_device()) if cache else None
        if hit is not None:
            out.models[k], info = hit
            out.losses[k], out.seconds[k] = info.get("losses", []), info.get("seconds", float("nan"))
            loaded.append(k)
            continue
        loss_fn = ar_loss_fn if k == "ar" else discrete_loss_fn(processes[k])
        batches = infinite_batches(
            train_tokens, batch_size=setup.batch_size, generator=torch.Generator().manual_seed(setup.seed)
        )
        res = train(
            models[k], loss_fn, batches, steps=setup.steps, lr=setup.lr, warmup=setup.warmup, lr_decay="cosine",
            ema_decay=setup.ema_decay, device=device, progress=progress, seed=setup.seed,
        )  # fmt: skip
        out.models[k], out.losses[k], out.seconds[k] = res.ema_model, list(res.losses), res.seconds
        if cache:
            info = {"losses": out.losses[k], "seconds": out.seconds[k]}
            save_trained("text", config, res.model, res.ema_model, info, k, root=cache_root)
    out.loaded = tuple(loaded)
    return out


def bits_per_char_table(
    trained: TrainedText,
    train_tokens: Tensor,
    test_tokens: Tensor,
    n_samples: int = 8,
    batch_size: int = 1024,
    generator: torch.Generator | None = None,
) -> dict[str, BitsPerChar]:
    """Bits/char on ``test_tokens`` (N, L): the diffusion NELBOs (with Monte-Carlo s.e.), AR (exact), unigram (exact).

    Each model is evaluated on its own device.
    """
    V = trained.setup.vocab_size
    table: dict[str, BitsPerChar] = {}
    for k, model in trained.models.items():
        if k == "ar":
            table[k] = ar_bits_per_char(model, test_tokens, batch_size=batch_size)
        else:
            table[k] = nelbo_bits_per_char(
                trained.processes[k], model, test_tokens, n_samples=n_samples, batch_size=batch_size,
                generator=generator,
            )  # fmt: skip
    table["unigram"] = unigram_bits_per_char(train_tokens, test_tokens, V)
    return table
