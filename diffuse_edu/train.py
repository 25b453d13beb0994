"""One small training loop for every model in the package.

:func:`train_iter` is a generator that yields a :class:`TrainState` after every optimiser step (the smalldiffusion
idiom), so a notebook collects losses with a list comprehension and stops whenever it likes; :func:`train` runs it to
the end. The loop knows nothing about diffusion: it minimises ``loss_fn(model, batch)`` for any model and any batch
(a tensor, a tuple, or a dict of tensors, as the joint models use). AdamW, EMA weights, gradient clipping, optional
warmup and cosine/linear decay, bf16 autocast on CUDA.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .config import get_device

__all__ = ["EMA", "TrainState", "TrainResult", "train_iter", "train", "move_to"]

_DEVICE_PRINTED = False


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
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must lie in [0, 1); got {decay}.")
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
        for e, p in zip(self.module.parameters(), model.parameters()):
            if e.is_floating_point():
                # lerp_: e + (1 − d)(p − e) = d·e + (1 − d)·p
                e.lerp_(p.detach().to(e.dtype), 1.0 - d)
            else:
                e.copy_(p)
        for e, b in zip(self.module.buffers(), model.buffers()):
            e.copy_(b)
        self.num_updates += 1

    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s weights with the averaged ones."""
        model.load_state_dict(self.module.state_dict())

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged weights (same keys as the model's ``state_dict``)."""
        return self.module.state_dict()


@dataclass
class TrainState:
    """What :func:`train_iter` yields after each step.

    Attributes:
        step: number of optimiser steps done (1 after the first).
        loss: this step's loss.
        grad_norm: total gradient norm before clipping.
        lr: learning rate used for this step.
        model: the model being trained (same object every step).
        ema: the :class:`EMA` (or None when disabled).
        losses: every loss so far (a shared list, appended to in place).
        samples: number of training examples seen so far.
    """

    step: int
    loss: float
    grad_norm: float
    lr: float
    model: nn.Module
    ema: EMA | None
    losses: list[float] = field(repr=False, default_factory=list)
    samples: int = 0


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model (last weights).
        ema_model: the EMA copy in eval mode (None when ``ema_decay`` is None).
        losses: one loss per step.
        seconds: wall-clock training time.
        samples_per_s: training examples processed per second.
    """

    model: nn.Module
    ema_model: nn.Module | None
    losses: list[float]
    seconds: float
    samples_per_s: float


def move_to(batch: Any, device: torch.device) -> Any:
    """Move a tensor, or the tensors inside a dict / list / tuple, to ``device`` (other values are kept)."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def _batch_size(batch: Any) -> int:
    """Leading dimension of the first tensor found in ``batch`` (0 if none)."""
    if isinstance(batch, Tensor):
        return batch.shape[0] if batch.ndim else 1
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else []
    for v in values:
        n = _batch_size(v)
        if n:
            return n
    return 0


def _batch_source(batches) -> Callable[[], Any]:
    """Turn a callable, an iterator or a re-iterable (e.g. a DataLoader, re-started each epoch) into ``next_batch()``."""
    if isinstance(batches, Iterator):

        def next_batch():
            try:
                return next(batches)
            except StopIteration:
                raise ValueError(
                    "the batch iterator ran out before `steps` were done; pass an infinite iterator "
                    "(e.g. diffuse_edu.data.batching.infinite_batches) or fewer steps."
                ) from None

        return next_batch
    if callable(batches):
        return batches
    if isinstance(batches, Iterable):
        it = iter(batches)

        def next_batch():
            nonlocal it
            try:
                return next(it)
            except StopIteration:  # one epoch done: start the next one
                it = iter(batches)
                return next(it)

        return next_batch
    raise TypeError(
        f"batches must be an iterator, an iterable or a callable returning a batch; got {type(batches).__name__}."
    )


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


def _use_amp(amp: bool | str, device: torch.device) -> bool:
    if amp not in ("auto", True, False):
        raise ValueError(f"amp must be 'auto', True or False; got {amp!r}.")
    # bf16 autocast only on CUDA: on CPU it is slower for these small models and changes results.
    if device.type != "cuda" or amp is False:
        return False
    return torch.cuda.is_bf16_supported()


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
    amp: bool | str = "auto",
    progress: bool = True,
    seed: int | None = None,
) -> Iterator[TrainState]:
    """Train ``model`` by minimising ``loss_fn(model, batch)``; yield a :class:`TrainState` after every step.

    Args:
        model: any ``nn.Module`` (moved to ``device``).
        loss_fn: ``loss_fn(model, batch) -> Tensor`` with a scalar (0-d) loss, e.g. a diffusion process's loss.
        batches: an iterator of batches, a re-iterable such as a DataLoader, or a callable returning a batch. A batch
            is a tensor, a tuple/list or a dict of tensors; it is moved to ``device`` before ``loss_fn`` sees it.
        steps: number of optimiser steps.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW's decoupled weight decay.
        betas: AdamW's moment coefficients.
        warmup: steps of linear warmup from ``lr/warmup`` to ``lr``.
        lr_decay: ``"constant"``, ``"cosine"`` or ``"linear"`` decay from ``lr`` to ``min_lr`` after warmup.
        min_lr: final learning rate of the decay.
        ema_decay: EMA decay in [0, 1), or None for no EMA.
        ema_warmup: smaller EMA decay during the first steps (see :class:`EMA`).
        grad_clip: clip the total gradient norm to this value (None: no clipping; the norm is still reported).
        device: where to train; default :func:`~diffuse_edu.config.get_device` (printed once per session).
        amp: ``"auto"``/True use bf16 autocast on CUDA when supported, False never; never used on CPU.
        progress: show a tqdm progress bar with the running loss.
        seed: if given, seed torch's global generator first so that a run (model init aside) repeats bit-exactly.

    Yields:
        :class:`TrainState` after each step.

    Raises:
        ValueError: bad arguments, or a loss that is not a scalar tensor.
        FloatingPointError: the loss became NaN or infinite (lower ``lr`` or check the data).
    """
    global _DEVICE_PRINTED
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, batch); got {type(loss_fn).__name__}.")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
        raise ValueError(f"steps must be a positive integer; got {steps!r}.")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number; got {lr!r}.")
    if not isinstance(warmup, int) or not 0 <= warmup <= steps:
        raise ValueError(f"warmup must be an integer in [0, steps={steps}]; got {warmup!r}.")
    if lr_decay not in ("constant", "cosine", "linear"):
        raise ValueError(f"lr_decay must be 'constant', 'cosine' or 'linear'; got {lr_decay!r}.")
    if not 0 <= min_lr <= lr:
        raise ValueError(f"min_lr must lie in [0, lr={lr}]; got {min_lr!r}.")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0; got {weight_decay!r}.")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be a positive number or None; got {grad_clip!r}.")
    if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1) or be None; got {ema_decay!r}.")

    if device is None:
        device = get_device(verbose=not _DEVICE_PRINTED)
        _DEVICE_PRINTED = True
    device = torch.device(device)
    use_amp = _use_amp(amp, device)
    if seed is not None:
        torch.manual_seed(seed)
    next_batch = _batch_source(batches)

    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters.")
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    ema = EMA(model, ema_decay, warmup=ema_warmup) if ema_decay is not None else None
    losses: list[float] = []
    seen = 0

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="train", leave=False)
    try:
        for step in range(steps):
            cur_lr = _lr_at(step, lr=lr, steps=steps, warmup=warmup, decay=lr_decay, min_lr=min_lr)
            for group in opt.param_groups:
                group["lr"] = cur_lr
            batch = move_to(next_batch(), device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = loss_fn(model, batch)
            if not isinstance(loss, Tensor) or loss.ndim != 0:
                shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
                raise ValueError(
                    f"loss_fn must return a scalar tensor (0-d); got {shape}. Reduce per-example losses with .mean()."
                )
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"loss is {loss_value} at step {step + 1} (lr={cur_lr:.3g}); training diverged. "
                    "Try a lower lr, gradient clipping, or check the data for NaN/inf."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # clip_grad_norm_ returns the norm before clipping; with max_norm=inf it only measures.
            grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip else float("inf")).item()
            opt.step()
            if ema is not None:
                ema.update(model)
            losses.append(loss_value)
            seen += _batch_size(batch)
            if bar is not None:
                bar.update(1)
                if step % 10 == 0 or step == steps - 1:
                    recent = losses[-50:]
                    bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
            yield TrainState(step + 1, loss_value, grad_norm, cur_lr, model, ema, losses, seen)
    finally:
        if bar is not None:
            bar.close()


def train(model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor], batches, **kwargs) -> TrainResult:
    """Run :func:`train_iter` to the end (same arguments) and return a :class:`TrainResult`."""
    start = time.perf_counter()
    state = None
    for state in train_iter(model, loss_fn, batches, **kwargs):
        pass
    if state is not None and next(state.model.parameters()).is_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return TrainResult(
        model=state.model,
        ema_model=state.ema.module if state.ema is not None else None,
        losses=list(state.losses),
        seconds=seconds,
        samples_per_s=state.samples / seconds if seconds > 0 else float("nan"),
    )
