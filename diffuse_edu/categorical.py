r"""What every categorical (token) process shares: float64 draws, stratified times, the NELBO estimate, the checks.

:class:`CategoricalProcess` is the base of :class:`~diffuse_edu.masked.MaskedProcess` and
:class:`~diffuse_edu.uniform.UniformProcess`. Data are integer tensors (B, ...) of token ids in [0, V); a network
returns logits over the V clean tokens, shape (B, ..., V). Guidance mixes log-probabilities, and the final denoise
either takes the argmax or draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import (
    check_finite,
    check_generator,
    check_index_tensor,
    check_positive_int,
    check_probs_tensor,
    has_values,
)
from ._random import rand, stratified_times
from .process import Process
from .schedules import Schedule, ScheduleLogLinear, get_schedule

__all__ = [
    "CategoricalProcess",
    "draw_categorical",
    "estimate_nelbo",
    "nats_to_bits_per_token",
    "stratified_times",
]


def _draw(probs: Tensor, generator: torch.Generator | None, dtype) -> Tensor:
    """Inverse-CDF draw per row of ``probs`` (trusted input); see :func:`draw_categorical`."""
    p = probs.to(dtype)
    cdf = p.cumsum(-1)
    # u in (0, 1]: with u > 0 a zero-probability first category can never be picked.
    u = 1.0 - rand(p.shape[:-1], generator, p.device, dtype)
    target = (u * cdf[..., -1]).unsqueeze(-1)
    idx = (cdf < target).sum(-1)
    return idx.clamp_max(p.shape[-1] - 1)


def draw_categorical(probs: Tensor, generator: torch.Generator | None = None, dtype=torch.float64) -> Tensor:
    r"""One draw per row of ``probs`` (shape (..., K), rows need not be normalised) by inverse CDF in ``dtype``.

    Uses one uniform per row, so the generator is consumed identically whatever the probabilities are (cached and
    uncached samplers then stay bit-identical). Float64 matters: in float32 the uniform has 24 bits, so categories
    with probability below ~6e-8 are (almost) never drawn and the sampler runs colder than the model — the same
    truncation Zheng et al. (2024) found for float32 Gumbel-max in masked-diffusion samplers.

    Raises:
        ValueError: a row holds NaN, infinity or a negative weight, or sums to 0.
    Returns:
        long tensor of shape ``probs.shape[:-1]`` (empty when ``probs`` has no rows).
    """
    if not isinstance(probs, Tensor) or not probs.is_floating_point() or probs.ndim < 1:
        got = f"dtype {probs.dtype}, shape {tuple(probs.shape)}" if isinstance(probs, Tensor) else type(probs).__name__
        raise TypeError(f"probs must be a floating tensor of shape (..., K) with K >= 1 categories; got {got}.")
    check_generator(generator)
    if probs.shape[-1] < 1:
        raise ValueError(f"probs must have at least one category (last axis); got shape {tuple(probs.shape)}.")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
    if has_values(probs) and probs.numel():
        if not torch.isfinite(probs).all():
            raise ValueError("probs contains NaN or infinite values; expected non-negative finite weights.")
        if (probs < 0).any():
            raise ValueError(f"probs must be >= 0; got a minimum of {probs.min().item():.4g}.")
        if (probs.sum(-1) <= 0).any():
            raise ValueError("every row of probs must have a positive sum; got a row of zeros.")
    return _draw(probs, generator, dtype)


def nats_to_bits_per_token(nats: Tensor | float, num_tokens: int) -> Tensor | float:
    """Convert a NELBO in nats per sequence to bits per token (bits per character for character-level text).

    ``nats``: a finite number or a float tensor (any shape); the result has its type and shape.
    """
    check_positive_int(num_tokens, "num_tokens")
    if isinstance(nats, Tensor):
        if not nats.is_floating_point():
            raise TypeError(f"nats must be a float or a float tensor; got dtype {nats.dtype}.")
        check_finite(nats, "nats")
    elif isinstance(nats, bool) or not isinstance(nats, (int, float)) or not math.isfinite(nats):
        raise ValueError(f"nats must be a finite number or a float tensor; got {nats!r}.")
    return nats / (num_tokens * math.log(2.0))


def _model_device(model, fallback: torch.device) -> torch.device:
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return fallback


@torch.no_grad()
def estimate_nelbo(
    process: CategoricalProcess,
    model: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    n_samples: int = 64,
    antithetic: bool = True,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> tuple[Tensor, Tensor]:
    r"""Monte-Carlo estimate of the continuous-time NELBO (nats per sequence) and its standard error.

    For each example, ``n_samples`` times are drawn, stratified ``(u_b + j/n) mod 1`` when ``antithetic``; the NELBO
    integrand (``process.elbo_terms``) is evaluated at each, averaged, and ``process.prior_kl`` added. The standard
    error is the i.i.d. formula std/√n, which is conservative (too large) for stratified times. Makes ``n_samples``
    network calls on batches of size B, on the model's device (``x0`` is moved there).

    Args:
        process: a :class:`CategoricalProcess`.
        model: ``model(x_t, t) -> logits`` of shape (B, L, V).
        x0: clean tokens, shape (B, L).
        reduction: ``"mean"`` (scalar estimate and s.e. of the batch mean) or ``"none"`` (both of shape (B,)).
    """
    if not isinstance(process, CategoricalProcess):
        raise TypeError(f"process must be a MaskedProcess or UniformProcess; got {type(process).__name__}.")
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t); got {type(model).__name__}.")
    check_generator(generator)
    n_samples = check_positive_int(n_samples, "n_samples", minimum=2)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
    x0 = process.validate(x0, "x0")
    if x0.shape[0] == 0:
        raise ValueError("x0 is an empty batch; the NELBO needs at least one sequence.")
    x0 = x0.to(_model_device(model, x0.device))
    B = x0.shape[0]
    if antithetic:
        u = rand((B,), generator, x0.device, torch.float64)
    values = []
    for j in range(n_samples):
        t = (u + j / n_samples) % 1.0 if antithetic else rand((B,), generator, x0.device, torch.float64)
        t = t.float()
        x_t = process._corrupt(x0, t, generator)
        out = model(x_t, t)
        if j == 0:
            process.check_output(out, x_t, "model output")
        values.append(process._elbo_terms(out, x0, x_t, t).double())
    v = torch.stack(values)  # (n, B)
    est = v.mean(0) + process.prior_kl(x0).double()
    se = v.std(0, unbiased=True) / math.sqrt(n_samples)
    if reduction == "none":
        return est, se
    # examples are independent (own u_b, own corruption), so their variances add.
    return est.mean(), se.pow(2).sum().sqrt() / B


class CategoricalProcess(Process):
    """Base of the token processes: data in [0, ``vocab_size``), logits over the clean tokens.

    Args:
        vocab_size: V, the number of clean tokens.
        schedule: α(t), a :class:`~diffuse_edu.schedules.Schedule` or its name; needs α(0) = 1 for the NELBO.
        sampling_dtype: dtype of categorical draws (float64 by default, see :func:`draw_categorical`).
    """

    categorical = True
    denoise_modes = ("argmax", "sample")
    min_vocab: ClassVar[int] = 1

    def __init__(
        self,
        vocab_size: int,
        schedule: Schedule | str = ScheduleLogLinear(),
        sampling_dtype: torch.dtype = torch.float64,
    ):
        check_positive_int(vocab_size, "vocab_size", minimum=self.min_vocab)
        if sampling_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"sampling_dtype must be torch.float32 or torch.float64, got {sampling_dtype}.")
        self.vocab_size = vocab_size
        self.schedule = get_schedule(schedule)
        self.sampling_dtype = sampling_dtype
        self.step_method = self.step_methods[0]

    # -- validation ---------------------------------------------------------------------------------------------------

    def validate(self, x: Tensor, name: str = "x", values: bool = True) -> Tensor:
        """Check ``x`` is an integer tensor (B, ...) of clean token ids in [0, V)."""
        return check_index_tensor(x, name, self.vocab_size, values=values)

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Logits over the V clean tokens for every position: ``x_shape + (V,)``."""
        return (*x_shape, self.vocab_size)

    def _check_x0_probs(self, x0_probs, x_t: Tensor) -> Tensor:
        """``x0_probs`` as probabilities (B, ..., V): given as such (rows ≥ 0 summing to 1) or as clean ids (B, ...)."""
        if isinstance(x0_probs, Tensor) and not (x0_probs.is_floating_point() or x0_probs.dtype == torch.bool):
            x0 = self.validate(x0_probs, "x0_probs")
            if x0.shape != x_t.shape:
                raise ValueError(
                    f"x0_probs given as clean ids must have the shape of x_t, {tuple(x_t.shape)}; "
                    f"got {tuple(x0.shape)}."
                )
            return F.one_hot(x0, self.vocab_size)
        return check_probs_tensor(x0_probs, "x0_probs", shape=(*x_t.shape, self.vocab_size))

    # -- helpers ------------------------------------------------------------------------------------------------------

    def _bcast(self, v: Tensor, x: Tensor) -> Tensor:
        """(B,) -> (B, 1, ..., 1) to broadcast against ``x`` of shape (B, ...)."""
        return v.reshape(-1, *([1] * (x.ndim - 1)))

    def probs(self, output: Tensor) -> Tensor:
        """softmax(output) in ``sampling_dtype``, shape (B, L, V)."""
        return torch.softmax(output.to(self.sampling_dtype), dim=-1)

    def _alpha1(self) -> float:
        return float(self.schedule.alpha(torch.tensor(1.0, dtype=torch.float64)))

    # -- ELBO ---------------------------------------------------------------------------------------------------------

    def elbo_terms(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        r"""The NELBO integrand at time t, shape (B,), in nats (each subclass documents its formula)."""
        x0 = self.validate(x0, "x0")
        x_t = self.validate_noisy(x_t, "x_t")
        if x0.shape != x_t.shape:
            raise ValueError(f"x0 and x_t must have the same shape; got {tuple(x0.shape)} and {tuple(x_t.shape)}.")
        self.check_output(output, x_t)
        return self._elbo_terms(output, x0, x_t, self._times(t, x0))

    def _elbo_terms(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        raise NotImplementedError

    def prior_kl(self, x0: Tensor) -> Tensor:
        """KL(q_1(· | x₀) ‖ p_1) per example, shape (B,) (each subclass documents its formula)."""
        raise NotImplementedError

    def nelbo(
        self,
        model: Callable[[Tensor, Tensor], Tensor],
        x0: Tensor,
        n_samples: int = 64,
        antithetic: bool = True,
        generator: torch.Generator | None = None,
        reduction: str = "mean",
    ) -> tuple[Tensor, Tensor]:
        """Monte-Carlo NELBO in nats per sequence and its standard error (see :func:`estimate_nelbo`).

        Always uses the ELBO weighting, whatever the training loss. Bits per token: :func:`nats_to_bits_per_token`.
        """
        a0 = float(self.schedule.alpha(torch.tensor(0.0, dtype=torch.float64)))
        if a0 < 1 - 1e-9:
            raise ValueError(f"the NELBO needs α(0) = 1 (no noise at t = 0); {self.schedule!r} has α(0) = {a0:.6g}.")
        return estimate_nelbo(self, model, x0, n_samples, antithetic, generator, reduction)

    # -- reverse process ----------------------------------------------------------------------------------------------

    def _denoise(self, x_t: Tensor, t: Tensor, output: Tensor, generator, mode: str) -> Tensor:
        value = output.argmax(-1) if mode == "argmax" else _draw(self.probs(output), generator, self.sampling_dtype)
        return value

    def mix(self, strong: Tensor, weak: Tensor, omega: float) -> Tensor:
        """ω·log p_strong + (1 − ω)·log p_weak: guidance on log-probabilities (the official code mixes log-scores,
        which differ from these by per-row constants that the softmax ignores)."""
        return omega * strong.log_softmax(-1) + (1.0 - omega) * weak.log_softmax(-1)
