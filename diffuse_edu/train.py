"""One small training loop for every model in the package: one process, several GPUs, or several machines.

:func:`train_iter` is a generator that yields a :class:`TrainState` after every optimiser step (the smalldiffusion
idiom), so a notebook collects losses with a list comprehension and stops whenever it likes; :func:`train` runs it to
the end. The loop knows nothing about diffusion: it minimises ``loss_fn(model, batch)`` for any model and any batch
(a tensor, a tuple, or a dict of tensors, as the joint models use). AdamW, EMA weights, gradient clipping, optional
warmup and cosine/linear decay, and four switches for scale:

- **Data parallel.** Launched by ``torchrun`` (env ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``), the same call initialises
  the process group (NCCL on CUDA, gloo on CPU) and wraps the model in ``DistributedDataParallel``. A
  :class:`~diffuse_edu.data.batching.BatchStream` is sharded (each rank its own slice of one global batch); torch's
  global generator and the ``generators=`` get a per-rank seed (different diffusion noise on every rank). Logged
  losses are averaged over the ranks; only rank 0 shows the progress bar and writes checkpoints. See
  ``docs/howto/distributed.md`` for the commands.
- **Exact resume.** ``checkpoint_dir=``/``checkpoint_every=`` write model, EMA, optimiser, step, losses, every RNG
  state and the data stream's position (safetensors + JSON, atomically); ``resume=`` continues, bit-identically on CPU.
- **Mixed precision.** ``precision="bf16" | "fp16" | "fp32"`` (default: bf16 autocast on CUDA when supported, fp32
  elsewhere); fp16 uses a ``GradScaler``.
- **Compilation.** ``compile=True`` runs ``torch.compile`` on the model (not on the EMA copy).

**Host–device syncs.** Reading a loss as a Python float waits for the GPU. On CUDA the loop keeps each step's loss on
the device and reads them in one go every ``log_every`` steps (default 25 on CUDA, 1 elsewhere), where it also
averages them over the ranks and checks them for NaN/inf. The trade-off: a diverged run is stopped at the next such
sync (up to ``log_every − 1`` steps late), and ``TrainState.loss`` of a step between syncs is read from the device on
demand (a sync of its own; under DDP then this rank's loss, not the average).
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import math
import os
import random
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ._checks import check_device
from .checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    remove_stale_temporaries,
    save_checkpoint,
)
from .config import get_device
from .distributed import (
    DistContext,
    LossModule,
    distributed_env,
    held_generators,
    normalise_generators,
    process_group_ready,
    rank_seed,
    rng_state,
    set_rng_state,
    setup_distributed,
    warn_if_ranks_share,
)

__all__ = ["EMA", "TrainState", "TrainResult", "train_iter", "train", "move_to", "PRECISIONS", "distributed_env"]

PRECISIONS = ("fp32", "bf16", "fp16")
_STATE_FORMAT = "diffuse_edu-train-state"
_DEVICE_PRINTED = False
_LR_DECAYS = ("constant", "cosine", "linear")


class EMA:
    """Exponential moving average of a model's weights (Polyak averaging; used by DDPM, Ho et al. 2020).

    After the n-th update every floating parameter becomes ``e ← d_n · e + (1 − d_n) · p``; buffers (e.g. running
    statistics) are copied. Without warmup ``d_n = decay``. With ``warmup`` (the default), ``d_n = min(decay,
    (1 + n)/(10 + n))``: early on the average forgets the random initial weights quickly (with decay 0.999 and no
    warmup, 22 % of the average after 1,500 steps would still be the initialisation). :attr:`module` is a frozen copy
    in eval mode, ready for sampling.

    Args:
        model: the model being trained (its current weights start the average).
        decay: weight of the past, in [0, 1).
        warmup: use the smaller decay (1 + n)/(10 + n) during the first updates.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be a number in [0, 1); got {decay!r}.")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.num_updates = 0

    def current_decay(self) -> float:
        """The decay d_n the next update will use."""
        n = self.num_updates + 1
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        d = self.current_decay()
        for e, p in zip(self.module.parameters(), model.parameters(), strict=True):
            if e.is_floating_point():
                # lerp_: e + (1 − d)(p − e) = d·e + (1 − d)·p
                e.lerp_(p.detach().to(e.dtype), 1.0 - d)
            else:
                e.copy_(p)
        for e, b in zip(self.module.buffers(), model.buffers(), strict=True):
            e.copy_(b)
        self.num_updates += 1

    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s weights with the averaged ones."""
        model.load_state_dict(self.module.state_dict())

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged weights (same keys as the model's ``state_dict``)."""
        return self.module.state_dict()


class _LossLog:
    """Losses kept on the device and read back (averaged over the ranks) only at syncs."""

    def __init__(self, values: list[float], world_size: int):
        self.values = values  # one float per finished sync'd step, from step 1 (a shared list)
        self.pending: list[Tensor] = []  # 0-d tensors of steps not read yet
        self.world_size = world_size

    def add(self, loss: Tensor) -> None:
        self.pending.append(loss.detach().float())

    def flush(self) -> int | None:
        """Read the pending losses (one sync; one all-reduce under DDP); return the first bad step, if any."""
        if not self.pending:
            return None
        t = torch.stack(self.pending)  # (k,)
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(t)
            t = t / self.world_size
        vals = t.tolist()
        self.pending.clear()
        first = len(self.values) + 1
        self.values.extend(vals)
        bad = next((i for i, v in enumerate(vals) if not math.isfinite(v)), None)
        return None if bad is None else first + bad


@dataclass(eq=False)
class TrainState:
    """What :func:`train_iter` yields after each step.

    Attributes:
        step: number of optimiser steps done (1 after the first; continues from the checkpoint after a resume).
        lr: learning rate used for this step.
        model: the model being trained (same object every step; never the DDP or compiled wrapper).
        ema: the :class:`EMA` (or None when disabled).
        samples: training examples seen so far, summed over the ranks (restored on resume).
        rank, world_size: this process and the number of processes (0 and 1 without DDP).

    Properties ``loss``, ``grad_norm`` and ``losses`` read values from the device when asked (see the module
    docstring: on CUDA, between syncs, each read is a host–device sync).
    """

    step: int
    lr: float
    model: nn.Module
    ema: EMA | None
    samples: int
    rank: int = 0
    world_size: int = 1
    _loss: Tensor = field(default=None, repr=False)
    _grad_norm: Tensor = field(default=None, repr=False)
    _log: _LossLog = field(default=None, repr=False)

    @property
    def loss(self) -> float:
        """This step's loss (averaged over the ranks once synced; before that, this rank's own)."""
        if len(self._log.values) >= self.step:
            return self._log.values[self.step - 1]
        return float(self._loss)

    @property
    def grad_norm(self) -> float:
        """Total gradient norm before clipping (of the rank-averaged gradient under DDP)."""
        return float(self._grad_norm)

    @property
    def losses(self) -> list[float]:
        """Every synced loss so far, from step 1 (a shared list, appended to in place at each sync)."""
        return self._log.values


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model (last weights).
        ema_model: the EMA copy in eval mode (None when ``ema_decay`` is None).
        losses: one loss per step from step 1 (averaged over the ranks under DDP; restored ones included on resume).
        seconds: wall-clock training time of this call.
        samples_per_s: training examples processed per second in this call (all ranks together).
        step: the last step done.
        rank, world_size: this process and the number of processes.
        precision: the precision used (``"fp32"``, ``"bf16"`` or ``"fp16"``).
        compiled: whether the model ran under ``torch.compile``.
        checkpoint: the last checkpoint written (its stem), or None.
        resumed_from: the checkpoint this run continued, or None.
    """

    model: nn.Module
    ema_model: nn.Module | None
    losses: list[float]
    seconds: float
    samples_per_s: float
    step: int = 0
    rank: int = 0
    world_size: int = 1
    precision: str = "fp32"
    compiled: bool = False
    checkpoint: Path | None = None
    resumed_from: Path | None = None


@dataclass
class _Summary:
    """What the training generator returns when it ends (read by :func:`train`)."""

    model: nn.Module
    ema: EMA | None
    losses: list[float]
    samples_this_run: int
    step: int
    rank: int
    world_size: int
    precision: str
    compiled: bool
    checkpoint: Path | None
    resumed_from: Path | None


def move_to(batch: Any, device: torch.device) -> Any:
    """Move a tensor, or the tensors inside a dict / list / tuple, to ``device`` (other values are kept).

    CPU tensors bound for CUDA go through pinned memory: a copy from ordinary (pageable) memory would first wait for
    the GPU to finish its queued work, a host–device sync every step.
    """
    if isinstance(batch, Tensor):
        device = torch.device(device)
        if device.type == "cuda" and batch.device.type == "cpu" and not batch.is_pinned():
            batch = batch.pin_memory()
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def _batch_size(batch: Any) -> int:
    """Leading dimension of the first tensor found in ``batch`` (0 if none)."""
    t = _first_tensor(batch)
    if t is None:
        return 0
    return t.shape[0] if t.ndim else 1


def _first_tensor(batch: Any) -> Tensor | None:
    if isinstance(batch, Tensor):
        return batch
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else []
    for v in values:
        t = _first_tensor(v)
        if t is not None:
            return t
    return None


# ------------------------------------------------------------------------------------------------------- batch source
class _Source:
    """A callable, an iterator or a re-iterable (e.g. a DataLoader, re-started each epoch) as ``next()``."""

    def __init__(self, batches):
        self.obj = batches
        if isinstance(batches, Iterator):
            self.kind = "iterator"
        elif callable(batches):
            self.kind = "callable"
        elif isinstance(batches, Iterable):
            self.kind = "iterable"
            self._it = None  # started at the first batch
        else:
            raise TypeError(
                "batches must be an iterator, an iterable or a callable returning a batch; "
                f"got {type(batches).__name__}."
            )
        self.stateful = callable(getattr(batches, "state_dict", None)) and callable(
            getattr(batches, "load_state_dict", None)
        )
        self.sharded = False

    def __call__(self):
        if self.kind == "callable":
            return self.obj()
        if self.kind == "iterator":
            try:
                return next(self.obj)
            except StopIteration:
                raise ValueError(
                    "the batch iterator ran out before `steps` were done; pass an infinite iterator "
                    "(e.g. diffuse_edu.data.batching.infinite_batches) or fewer steps."
                ) from None
        if self._it is None:
            self._it = iter(self.obj)
        try:
            return next(self._it)
        except StopIteration:  # one epoch done: start the next one
            self._it = iter(self.obj)
            try:
                return next(self._it)
            except StopIteration:
                raise ValueError("batches gave no batch at all (an empty iterable); pass a non-empty one.") from None

    def shard(self, rank: int, world_size: int, seed: int) -> None:
        if callable(getattr(self.obj, "shard", None)):
            self.obj.shard(rank, world_size, seed=seed)
            self.sharded = True

    @property
    def generator(self) -> torch.Generator | None:
        return getattr(self.obj, "generator", None)


# ---------------------------------------------------------------------------------------------------------- schedule
def _lr_at(step: int, *, lr: float, steps: int, warmup: int, decay: str, min_lr: float) -> float:
    """Learning rate for optimiser step ``step`` (0-based): linear warmup, then constant / cosine / linear decay."""
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    if decay == "constant":
        return lr
    progress = (step - warmup) / max(1, steps - warmup)  # in [0, 1)
    if decay == "cosine":
        return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr + (min_lr - lr) * progress  # linear


# ------------------------------------------------------------------------------------------------- precision, compile
def _resolve_precision(precision: str | None, device: torch.device) -> str:
    """The precision to use on ``device``: the one asked for, or bf16 on CUDA when supported, else fp32."""
    if precision is None or precision == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return "bf16" if cuda_bf16 else "fp32"
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError("precision='bf16' but this GPU does not support bf16; use precision='fp16' or 'fp32'.")
    return precision


def _compile_unavailable(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run here, or None if it should."""
    if not hasattr(nn.Module, "compile"):
        return f"torch {torch.__version__} has no nn.Module.compile (needs torch >= 2.2)"
    if device.type == "cpu":
        cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
        if not cxx:
            return "the CPU backend of torch.compile needs a C++ compiler (g++ or clang++), and none was found"
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "the CUDA backend of torch.compile needs triton, which is not installed"
    return None


def _uncompile(model: nn.Module) -> None:
    # nn.Module.compile() stores the compiled __call__ in this attribute; None restores plain eager calls.
    if getattr(model, "_compiled_call_impl", None) is not None:
        model._compiled_call_impl = None


def _is_compile_error(err: BaseException) -> bool:
    return any(c.__module__.startswith(("torch._dynamo", "torch._inductor")) for c in type(err).__mro__)


# --------------------------------------------------------------------------------------------------------- validation
def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _validate(a: dict) -> None:
    """One clear error for each bad argument of :func:`train_iter` (name, what was expected, what came in)."""
    if not isinstance(a["model"], nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(a['model']).__name__}.")
    if not callable(a["loss_fn"]):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, batch); got {type(a['loss_fn']).__name__}.")
    steps = a["steps"]
    if not _is_int(steps) or steps <= 0:
        raise ValueError(f"steps must be a positive integer; got {steps!r}.")
    lr = a["lr"]
    if not (_is_num(lr) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number; got {lr!r}.")
    if not _is_int(a["warmup"]) or not 0 <= a["warmup"] <= steps:
        raise ValueError(f"warmup must be an integer in [0, steps={steps}]; got {a['warmup']!r}.")
    if a["lr_decay"] not in _LR_DECAYS:
        raise ValueError(f"lr_decay must be 'constant', 'cosine' or 'linear'; got {a['lr_decay']!r}.")
    if not (_is_num(a["min_lr"]) and 0 <= a["min_lr"] <= lr):
        raise ValueError(f"min_lr must lie in [0, lr={lr}]; got {a['min_lr']!r}.")
    if not (_is_num(a["weight_decay"]) and math.isfinite(a["weight_decay"]) and a["weight_decay"] >= 0):
        raise ValueError(f"weight_decay must be a finite number >= 0; got {a['weight_decay']!r}.")
    betas = a["betas"]
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(_is_num(b) and 0 <= b < 1 for b in betas)):
        raise ValueError(f"betas must be two numbers in [0, 1), e.g. (0.9, 0.999); got {betas!r}.")
    clip = a["grad_clip"]
    if clip is not None and not (_is_num(clip) and clip > 0):
        raise ValueError(f"grad_clip must be a positive number or None; got {clip!r}.")
    ema_decay = a["ema_decay"]
    if ema_decay is not None and not (_is_num(ema_decay) and 0.0 <= ema_decay < 1.0):
        raise ValueError(f"ema_decay must lie in [0, 1) or be None; got {ema_decay!r}.")
    for name in ("ema_warmup", "progress", "compile"):
        if not isinstance(a[name], bool):
            raise TypeError(f"{name} must be a bool; got {a[name]!r}.")
    if a["distributed"] is not None and not isinstance(a["distributed"], bool):
        raise TypeError(f"distributed must be None (auto), True or False; got {a['distributed']!r}.")
    if a["distributed"] is True and distributed_env() is None and not process_group_ready():
        raise ValueError(
            "distributed=True, but this process was not launched by torchrun (no RANK/WORLD_SIZE > 1 in the "
            "environment) and no process group is initialised. Launch with `torchrun --nproc_per_node=N script.py`."
        )
    check_device(a["device"])  # a malformed name ('cpu:x') or an absent GPU, before any work
    if a["precision"] not in (None, "auto", *PRECISIONS):
        raise ValueError(f"precision must be 'bf16', 'fp16', 'fp32' or None (auto); got {a['precision']!r}.")
    amp = a["amp"]
    if amp is not None:
        if amp not in ("auto", True, False):
            raise ValueError(f"amp must be 'auto', True or False (deprecated: use precision=); got {amp!r}.")
        if a["precision"] is not None:
            raise ValueError(
                f"pass precision= or the deprecated amp=, not both; got precision={a['precision']!r}, amp={amp!r}."
            )
        warnings.warn(
            "train(amp=...) is deprecated; use precision='bf16' | 'fp16' | 'fp32' (None: bf16 on CUDA when "
            "supported, else fp32).",
            DeprecationWarning,
            stacklevel=3,
        )
        # amp=False meant full fp32; amp=True / "auto" meant the default (bf16 on CUDA when supported).
        a["precision"] = "fp32" if amp is False else None
    if a["seed"] is not None and not (_is_int(a["seed"]) and a["seed"] >= 0):
        raise ValueError(f"seed must be a non-negative integer or None; got {a['seed']!r}.")
    for name in ("checkpoint_every", "keep_checkpoints", "log_every"):
        v = a[name]
        if v is not None and not (_is_int(v) and v > 0):
            raise ValueError(f"{name} must be a positive integer or None; got {v!r}.")
    ckdir = a["checkpoint_dir"]
    if ckdir is not None and not isinstance(ckdir, (str, os.PathLike)):
        raise TypeError(f"checkpoint_dir must be a str, an os.PathLike or None; got {type(ckdir).__name__}.")
    if a["checkpoint_every"] is not None and ckdir is None:
        raise ValueError("checkpoint_every needs checkpoint_dir= (the folder the checkpoints go to).")
    resume = a["resume"]
    if resume is not None and not isinstance(resume, (str, os.PathLike)):
        raise TypeError(f"resume must be None, 'latest' or a checkpoint path; got {type(resume).__name__}.")
    if resume == "latest" and ckdir is None:
        raise ValueError("resume='latest' needs checkpoint_dir= (the folder to look in).")
    config = a["config"]
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config must be a dict (saved in every checkpoint) or None; got {type(config).__name__}.")
    try:
        json.dumps(config)
    except (TypeError, ValueError) as err:
        raise TypeError(f"config must be JSON-serialisable (numbers, strings, lists, dicts): {err}") from None
    if a["ddp_kwargs"] is not None and not isinstance(a["ddp_kwargs"], dict):
        raise TypeError(f"ddp_kwargs must be a dict or None; got {type(a['ddp_kwargs']).__name__}.")
    _Source(a["batches"])  # raises TypeError for anything that cannot give batches
    normalise_generators(a["generators"])


# --------------------------------------------------------------------------------------------------------- the loop
def train_iter(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], Tensor],
    batches,
    *,
    steps: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    warmup: int = 0,
    lr_decay: str = "constant",
    min_lr: float = 0.0,
    ema_decay: float | None = 0.999,
    ema_warmup: bool = True,
    grad_clip: float | None = 1.0,
    device: str | torch.device | None = None,
    precision: str | None = None,
    compile: bool = False,
    progress: bool = True,
    seed: int | None = None,
    generators=None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoints: int | None = 2,
    resume: str | os.PathLike | None = None,
    config: dict | None = None,
    log_every: int | None = None,
    distributed: bool | None = None,
    ddp_kwargs: dict | None = None,
    amp: bool | str | None = None,
) -> Iterator[TrainState]:
    """Train ``model`` by minimising ``loss_fn(model, batch)``; yield a :class:`TrainState` after every step.

    Args:
        model: any ``nn.Module`` (moved to ``device``).
        loss_fn: ``loss_fn(model, batch) -> Tensor`` with a scalar (0-d) loss, e.g. a diffusion process's loss.
        batches: an iterator of batches (best: :func:`~diffuse_edu.data.batching.infinite_batches`, which is sharded
            under DDP and resumable), a re-iterable such as a DataLoader, or a callable returning a batch. A batch
            is a tensor, a tuple/list or a dict of tensors; it is moved to ``device`` before ``loss_fn`` sees it.
        steps: total number of optimiser steps (after a resume: the total, not the remainder).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW's decoupled weight decay.
        betas: AdamW's moment coefficients.
        warmup: steps of linear warmup from ``lr/warmup`` to ``lr``.
        lr_decay: ``"constant"``, ``"cosine"`` or ``"linear"`` decay from ``lr`` to ``min_lr`` after warmup.
        min_lr: final learning rate of the decay.
        ema_decay: EMA decay in [0, 1), or None for no EMA.
        ema_warmup: smaller EMA decay during the first steps (see :class:`EMA`).
        grad_clip: clip the total gradient norm to this value (None: no clipping; the norm is still reported).
        device: where to train; default :func:`~diffuse_edu.config.get_device` (printed once per session); under
            torchrun ``cuda:LOCAL_RANK`` when CUDA is present, else the CPU.
        precision: ``"bf16"`` / ``"fp16"`` autocast or ``"fp32"``; None: bf16 on CUDA when supported, else fp32.
            fp16 scales the loss with a ``GradScaler``.
        compile: run the model under ``torch.compile`` (skipped, with the reason printed, where it cannot work).
        progress: show a tqdm progress bar with the running loss and samples/s (rank 0 only).
        seed: if given, seed torch's global generator first so that a run (model init aside) repeats bit-exactly.
            Under DDP rank r uses a seed derived from (seed, r): every rank draws its own diffusion noise.
        generators: ``torch.Generator`` s that ``loss_fn`` or ``batches`` draw from (one, a list, or a dict
            name → generator): their states go into checkpoints and are restored on resume, and under DDP rank r > 0
            re-seeds each from (its initial seed, r).
        checkpoint_dir: folder for training checkpoints ``step_XXXXXXXX.safetensors/.json`` (rank 0 writes).
        checkpoint_every: write one every this many steps (None: only at the end). The last step is always written.
        keep_checkpoints: keep this many newest checkpoints in ``checkpoint_dir`` (None: keep all).
        resume: a checkpoint stem (or a folder: its newest) to continue from, or ``"latest"``: the newest in
            ``checkpoint_dir`` if there is one, else start fresh (so one command line both starts and resumes).
        config: a JSON-serialisable dict saved in every checkpoint's ``config``.
        log_every: read the losses back from the device every this many steps (default 25 on CUDA, 1 elsewhere).
        distributed: None: DDP when launched by torchrun with several processes; False: never; True: require it.
        ddp_kwargs: extra keyword arguments for ``DistributedDataParallel`` (e.g. ``find_unused_parameters=True``).
        amp: deprecated alias: ``False`` means ``precision="fp32"``, ``True``/``"auto"`` the default.

    Yields:
        :class:`TrainState` after each step.

    Raises:
        TypeError, ValueError: bad arguments (checked when called), or a loss that is not a scalar tensor.
        FloatingPointError: the loss became NaN or infinite (lower ``lr`` or check the data).
        CheckpointError: ``resume`` names a corrupt or truncated checkpoint.
    """
    args = dict(locals())
    _validate(args)
    return _train_gen(args)


_TRAIN_ITER_DEFAULTS = {
    k: p.default
    for k, p in inspect.signature(train_iter).parameters.items()
    if p.default is not inspect.Parameter.empty
}


def _train_gen(a: dict):
    """The loop of :func:`train_iter` (arguments already validated); returns a :class:`_Summary`."""
    global _DEVICE_PRINTED
    model, loss_fn, steps = a["model"], a["loss_fn"], a["steps"]
    ctx, device = setup_distributed(a["distributed"], a["device"])
    main = ctx.rank == 0
    if device is None:
        device = get_device(verbose=not _DEVICE_PRINTED)
        _DEVICE_PRINTED = True
    device = torch.device(device)
    if ctx.active and main and not _DEVICE_PRINTED:
        print(f"diffuse_edu: DDP on {ctx.world_size} processes ({ctx.backend}); rank 0 on {device}")
        _DEVICE_PRINTED = True
    precision = _resolve_precision(a["precision"], device)
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    log_every = a["log_every"] or (25 if device.type == "cuda" else 1)
    source = _Source(a["batches"])
    generators = normalise_generators(a["generators"])
    ckdir = Path(a["checkpoint_dir"]) if a["checkpoint_dir"] is not None else None

    # --- seeds: rank 0 = the one-process run; every other rank its own stream (different diffusion noise).
    if ctx.active:
        import torch.distributed as dist

        shared = [a["seed"] if a["seed"] is not None else torch.initial_seed() % 2**63]
        dist.broadcast_object_list(shared, src=0)
        base = int(shared[0])
        source.shard(ctx.rank, ctx.world_size, seed=base)
        if a["seed"] is not None or ctx.rank > 0:
            torch.manual_seed(rank_seed(base, ctx.rank))
        if ctx.rank > 0:
            np.random.seed(rank_seed(base, ctx.rank) % 2**32)
            random.seed(rank_seed(base, ctx.rank))
            for g in generators.values():
                if g is not source.generator:  # the data stream's generator must stay the same on every rank
                    g.manual_seed(rank_seed(g.initial_seed(), ctx.rank))
    elif a["seed"] is not None:
        torch.manual_seed(a["seed"])

    if main and (ckdir is not None or a["resume"] is not None or ctx.active):
        managed = {id(g) for g in generators.values()} | {id(source.generator)}
        for what, obj in (("loss_fn", loss_fn), ("batches", a["batches"])):
            if any(id(g) not in managed for g in held_generators(obj)):
                warnings.warn(
                    f"{what} holds a torch.Generator that train() does not manage: pass it in generators= (the same "
                    "object) so that a resume restores its state exactly and each DDP rank draws its own numbers.",
                    stacklevel=2,
                )

    # --- model, optimiser, DDP, EMA
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (every parameter has requires_grad=False).")
    opt = torch.optim.AdamW(params, lr=a["lr"], betas=tuple(a["betas"]), weight_decay=a["weight_decay"])
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    runner: Callable[[Any], Tensor] = functools.partial(loss_fn, model)
    if ctx.active:
        from torch.nn.parallel import DistributedDataParallel

        kwargs = dict(a["ddp_kwargs"] or {})
        if device.type == "cuda":
            kwargs.setdefault("device_ids", [device.index])
        # DDP broadcasts rank 0's weights here, so everything below (EMA included) starts identical on all ranks.
        runner = DistributedDataParallel(LossModule(model, loss_fn), **kwargs)
    ema = EMA(model, a["ema_decay"], warmup=a["ema_warmup"]) if a["ema_decay"] is not None else None
    losses: list[float] = []
    samples = 0
    start_step = 0

    # --- resume
    settings = _settings(a, precision, ctx)
    resumed_from = None
    target = a["resume"]
    if target is not None:
        target = _resolve_resume(target, ckdir, ctx)
    if target is not None:
        start_step, samples = _resume(
            target, model, opt, scaler, ema, losses, source, generators, device, ctx, a, settings
        )
        resumed_from = target
        if main:
            print(f"diffuse_edu: resumed from {target} at step {start_step} of {steps}")
    elif a["resume"] == "latest" and main:
        print(f"diffuse_edu: no checkpoint in {ckdir} yet; starting from step 0")
    log = _LossLog(losses, ctx.world_size)

    compiled = False
    if a["compile"]:
        reason = _compile_unavailable(device)
        if reason is None:
            model.compile()
            compiled = True
        elif main:
            print(f"diffuse_edu: compile=True skipped: {reason}.")

    if ckdir is not None and main:
        ckdir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(ckdir)
    last_checkpoint = None

    bar = None
    if a["progress"] and main and start_step < steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start_step, desc="train", leave=False)
    run_samples = 0
    t0 = time.perf_counter()
    try:
        for step in range(start_step, steps):
            done = step + 1
            cur_lr = _lr_at(step, lr=a["lr"], steps=steps, warmup=a["warmup"], decay=a["lr_decay"], min_lr=a["min_lr"])
            for group in opt.param_groups:
                group["lr"] = cur_lr
            batch = move_to(source(), device)
            if ctx.active and step == start_step and not source.sharded:
                warn_if_ranks_share(_first_tensor(batch), ctx)
            retry_state = rng_state(device, generators) if compiled and step == start_step else None
            try:
                loss = _forward(runner, batch, device, autocast_dtype)
            except Exception as err:
                if retry_state is None or ctx.active or not _is_compile_error(err):
                    raise
                # torch.compile failed on the first call: report why, then redo this step eagerly, same draws.
                _uncompile(model)
                compiled = False
                if main:
                    print(f"diffuse_edu: compile=True skipped: torch.compile failed ({type(err).__name__}: {err}).")
                set_rng_state(retry_state, device, generators)
                opt.zero_grad(set_to_none=True)
                loss = _forward(runner, batch, device, autocast_dtype)
            log.add(loss)
            due = _checkpoint_due(done, steps, ckdir, a["checkpoint_every"])
            if done % log_every == 0 or done == steps or due:
                bad = log.flush()
                if bad is not None:
                    raise FloatingPointError(
                        f"loss is {log.values[bad - 1]} at step {bad} (lr={cur_lr:.3g}); training diverged. "
                        "Try a lower lr, gradient clipping, or check the data for NaN/inf."
                    )
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
            else:
                loss.backward()
            # clip_grad_norm_ returns the norm before clipping (a device tensor: no sync); max_norm=inf only measures.
            grad_norm = torch.nn.utils.clip_grad_norm_(params, a["grad_clip"] or float("inf"))
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            if ema is not None:
                ema.update(model)
            n = _batch_size(batch) * ctx.world_size
            samples += n
            run_samples += n
            if due:
                last_checkpoint = _save_train_checkpoint(
                    ckdir, done, model, ema, opt, scaler, losses, samples, source, generators, device, ctx, a, settings
                )
            if bar is not None and len(losses) >= done:
                recent = losses[-50:]
                elapsed = time.perf_counter() - t0
                rate = f"{run_samples / elapsed:,.0f}" if elapsed > 0 else "-"
                bar.set_postfix_str(f"loss={sum(recent) / len(recent):.4f}, {rate} samples/s", refresh=False)
                bar.update(done - bar.n)
            yield TrainState(done, cur_lr, model, ema, samples, ctx.rank, ctx.world_size, loss.detach(), grad_norm, log)
    finally:
        if bar is not None:
            bar.close()
        if compiled:
            _uncompile(model)
    if ctx.active:
        import torch.distributed as dist

        dist.barrier()  # when train returns on any rank, rank 0's last checkpoint is on disk
    return _Summary(
        model,
        ema,
        losses,
        run_samples,
        max(start_step, steps),
        ctx.rank,
        ctx.world_size,
        precision,
        compiled,
        last_checkpoint,
        resumed_from,
    )


def _checkpoint_due(done: int, steps: int, ckdir: Path | None, every: int | None) -> bool:
    """Whether step ``done`` (1-based) writes a checkpoint: every ``every`` steps and at the last step."""
    if ckdir is None:
        return False
    return done == steps or (every is not None and done % every == 0)


def _forward(runner, batch, device: torch.device, autocast_dtype) -> Tensor:
    ctx = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
    with ctx:
        loss = runner(batch)
    if not isinstance(loss, Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise ValueError(
            f"loss_fn must return a scalar tensor (0-d); got {shape}. Reduce per-example losses with .mean()."
        )
    if not loss.is_floating_point() or (torch.is_grad_enabled() and not loss.requires_grad):
        raise ValueError(
            f"loss_fn must return a floating-point loss computed from the model's parameters (one that has a "
            f"gradient); got dtype {loss.dtype}, requires_grad={loss.requires_grad} (a .long(), .item() or detach()?)."
        )
    return loss


def _settings(a: dict, precision: str, ctx: DistContext) -> dict:
    """The arguments that define the run (saved in checkpoints; a resume with other values warns)."""
    return {
        "steps": a["steps"],
        "lr": float(a["lr"]),
        "weight_decay": float(a["weight_decay"]),
        "betas": [float(b) for b in a["betas"]],
        "warmup": a["warmup"],
        "lr_decay": a["lr_decay"],
        "min_lr": float(a["min_lr"]),
        "ema_decay": a["ema_decay"],
        "ema_warmup": a["ema_warmup"],
        "grad_clip": a["grad_clip"],
        "precision": precision,
        "seed": a["seed"],
        "world_size": ctx.world_size,
        "batch_size": getattr(a["batches"], "batch_size", None),
    }


def _save_train_checkpoint(
    ckdir, done, model, ema, opt, scaler, losses, samples, source, generators, device, ctx, a, settings
) -> Path | None:
    """Gather every rank's RNG state, then rank 0 writes ``step_XXXXXXXX`` and prunes old ones."""
    per_rank = {"rng": rng_state(device, generators)}
    data_shared = None
    if source.stateful:
        if source.sharded:
            data_shared = source.obj.state_dict()  # one global stream: identical on every rank
        else:
            per_rank["data"] = source.obj.state_dict()
    ranks = [per_rank]
    if ctx.active:
        import torch.distributed as dist

        ranks = [None] * ctx.world_size
        dist.all_gather_object(ranks, per_rank)
    if ctx.rank != 0:
        return None
    state = {
        "format": _STATE_FORMAT,
        "version": 1,
        "step": done,
        "samples": samples,
        "losses": torch.tensor(losses, dtype=torch.float64),
        "optimizer": opt.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "ema_updates": ema.num_updates if ema is not None else None,
        "data": data_shared,
        "ranks": ranks,
        "settings": settings,
    }
    stem = checkpoint_path(ckdir, done)
    save_checkpoint(stem, model, a["config"] or {}, ema=ema, state=state)
    if a["keep_checkpoints"] is not None:
        prune_checkpoints(ckdir, a["keep_checkpoints"])
    return stem


def _resolve_resume(target, ckdir: Path | None, ctx: DistContext) -> Path | None:
    """The checkpoint stem to resume from (rank 0 decides; the others follow), or None to start fresh."""
    if target == "latest":
        found = latest_checkpoint(ckdir)
    else:
        p = Path(target)
        found = latest_checkpoint(p) if p.is_dir() else p
        if p.is_dir() and found is None:
            raise FileNotFoundError(f"resume={str(target)!r} is a folder without step_*.json checkpoints.")
    if ctx.active:
        import torch.distributed as dist

        box = [str(found) if found is not None else None]
        dist.broadcast_object_list(box, src=0)
        found = Path(box[0]) if box[0] is not None else None
    return found


def _resume(target, model, opt, scaler, ema, losses, source, generators, device, ctx, a, now) -> tuple[int, int]:
    """Load a training checkpoint into this run; return (step, samples)."""
    ck = load_checkpoint(target, model)
    state = ck.state
    if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
        raise ValueError(
            f"{target} holds weights but no training state (saved by save_checkpoint, not by train): it cannot "
            "resume a run. Load its weights with load_checkpoint(path, model) and start a new run instead."
        )
    saved = state["settings"]
    changed = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in now.items() if k != "seed" and saved.get(k) != v]
    if changed and ctx.rank == 0:
        warnings.warn(
            f"resuming {target} with different settings ({'; '.join(changed)}): the run continues, but it is not "
            "the run the checkpoint came from.",
            stacklevel=3,
        )
    if ema is not None:
        if ck.ema_model is None:
            raise ValueError(f"{target} has no EMA weights, but this run has ema_decay={a['ema_decay']}.")
        ema.module.load_state_dict(ck.ema_model.state_dict())
        ema.num_updates = int(state["ema_updates"] or 0)
    opt.load_state_dict(state["optimizer"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    losses.extend(state["losses"].tolist())
    ranks = state["ranks"]
    mine = ranks[ctx.rank] if len(ranks) == ctx.world_size else None
    if mine is None and ctx.rank == 0:
        warnings.warn(
            f"{target} was written by {len(ranks)} process(es), this run has {ctx.world_size}: the RNG streams "
            "start afresh (per-rank seeds), so the continuation is not bit-identical.",
            stacklevel=3,
        )
    if mine is not None:
        set_rng_state(mine["rng"], device, generators, warn=ctx.rank == 0)
    data_state = state.get("data") if state.get("data") is not None else (mine or {}).get("data")
    if data_state is not None and source.stateful:
        source.obj.load_state_dict(data_state)
    elif ctx.rank == 0 and source.kind != "callable":
        # A callable has no position: it is exact when it draws from torch's global generator or from generators=.
        warnings.warn(
            f"the batches ({type(source.obj).__name__}) cannot be put back where the run was killed "
            "(no state_dict()/load_state_dict(), or none saved): the data stream restarts. Use infinite_batches, or "
            "a callable drawing from torch's global generator or from generators=, for an exact resume.",
            stacklevel=3,
        )
    return int(state["step"]), int(state["samples"])


def train(model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor], batches, **kwargs) -> TrainResult:
    """Run :func:`train_iter` to the end (same arguments) and return a :class:`TrainResult`."""
    start = time.perf_counter()
    unknown = set(kwargs) - set(_TRAIN_ITER_DEFAULTS) - {"steps"}
    if unknown:
        raise TypeError(f"train() got unexpected keyword arguments {sorted(unknown)}; see train_iter for the options.")
    if "steps" not in kwargs:
        raise TypeError("train() needs steps= (the total number of optimiser steps).")
    args = {**_TRAIN_ITER_DEFAULTS, **kwargs, "model": model, "loss_fn": loss_fn, "batches": batches}
    _validate(args)  # warnings raised here point at the caller of train()
    gen = _train_gen(args)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            summary: _Summary = stop.value
            break
    if summary.model is not None and any(p.is_cuda for p in summary.model.parameters()):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return TrainResult(
        model=summary.model,
        ema_model=summary.ema.module if summary.ema is not None else None,
        losses=list(summary.losses),
        seconds=seconds,
        samples_per_s=summary.samples_this_run / seconds if seconds > 0 else float("nan"),
        step=summary.step,
        rank=summary.rank,
        world_size=summary.world_size,
        precision=summary.precision,
        compiled=summary.compiled,
        checkpoint=summary.checkpoint,
        resumed_from=summary.resumed_from,
    )
