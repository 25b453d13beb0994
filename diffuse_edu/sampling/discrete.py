r"""Samplers for the masked and uniform processes: the joint sampler with one modality.

Masked samplers all share one structure. A grid of ``steps + 1`` times runs from t₀ = 1 down to t_steps ≈ 0; at
iteration k the network is called at t_k and every masked token is revealed, independently, with a probability r_k
that depends only on the grid and the method (:func:`reveal_schedule`; formulas in :mod:`diffuse_edu.masked`), to a
value drawn from softmax(output). The last iteration is the *final denoise*: every remaining mask is decoded from the
last output (r = 1). With the default grid ``"official"`` (``linspace(1, t_min, steps)`` then 0, the official code's
grid) tau-leaping leaves about 2.7% of tokens masked before that final step at 50 steps — its known artefact;
ancestral leaves ≈ α-mass t_min.

With an exact per-token denoiser the values drawn are exact whatever the reveal times (any reveal order with exact
conditionals is exact), so the only error of any of these samplers is revealing two tokens of one sequence in the
same iteration (the draws are then independent instead of joint): see :func:`simultaneous_reveal_probability`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .._checks import check_number, check_positive_int, check_shape
from ..grids import make_grid
from ..joint import JointProcess, SingleModality
from ..masked import MaskedProcess
from ..uniform import UniformProcess
from .joint import SampleResult, sample_joint

__all__ = ["reveal_schedule", "simultaneous_reveal_probability", "sample_masked", "sample_uniform"]

Model = Callable[[Tensor, Tensor], Tensor]
_NAME = "x"


def reveal_schedule(process: MaskedProcess, grid: Tensor, method: str = "ancestral") -> Tensor:
    """Per-iteration probability r_k that a token masked at t_k is revealed, shape (steps,); the last is 1.

    Args:
        grid: shape (steps + 1,), e.g. from :func:`diffuse_edu.grids.make_grid`.
        method: ``"ancestral"``, ``"euler"`` or ``"tau-leaping"`` (formulas in :mod:`diffuse_edu.masked`).
    """
    if not isinstance(process, MaskedProcess):
        raise TypeError(f"process must be a MaskedProcess; got {type(process).__name__}.")
    grid = make_grid(grid, None)
    r = process._reveal_probability(grid[:-1], grid[1:], process.check_method(method)).clone()
    r[-1] = 1.0  # the final denoise decodes every remaining mask
    return r


def simultaneous_reveal_probability(reveal_probs: Tensor, length: int) -> float:
    r"""P(some iteration reveals two or more of ``length`` tokens at once), all tokens starting masked.

    Each token's reveal iteration is independent with law :math:`\pi_k = r_k \prod_{j<k}(1 - r_j)`; all L are distinct
    with probability :math:`L!\,e_L(\pi)` (e_L: the elementary symmetric polynomial). With an exact per-token denoiser
    this bounds the total-variation error of the sampler's output law (coupling: with at most one reveal per
    iteration, independent and joint draws coincide).
    """
    check_positive_int(length, "length")
    if not isinstance(reveal_probs, Tensor):
        try:
            reveal_probs = torch.as_tensor(reveal_probs, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"reveal_probs must be a 1-D tensor of probabilities; got {reveal_probs!r:.60}.") from None
    r = reveal_probs.double()
    if r.ndim != 1 or not ((r >= 0) & (r <= 1)).all():
        raise ValueError("reveal_probs must be a 1-D tensor of probabilities in [0, 1].")
    survive = torch.cumprod(torch.cat([torch.ones(1, dtype=r.dtype), 1 - r[:-1]]), 0)
    pi = r * survive
    # f_j = j! e_j(π) by the recursion e_j ← e_j + p e_{j−1}, i.e. f_j ← f_j + j p f_{j−1}: it stays in [0, 1] (a
    # probability) where j! and e_j alone would overflow and underflow for long sequences.
    f = torch.zeros(length + 1, dtype=torch.float64)
    f[0] = 1.0
    j = torch.arange(1, length + 1, dtype=torch.float64)
    for p in pi.tolist():
        f[1:] = f[1:].clone() + j * p * f[:-1].clone()
    return float(min(max(1.0 - f[length].item(), 0.0), 1.0))


def _check(model, process, cls, shape, steps):
    if not isinstance(process, cls):
        raise TypeError(f"process must be a {cls.__name__}; got {type(process).__name__}.")
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t); got {type(model).__name__}.")
    shape = check_shape(shape, "shape", allow_empty_batch=False)
    check_positive_int(steps, "steps")
    return shape


def _grid(grid, steps: int, t_eps: float, schedule) -> Tensor:
    check_number(t_eps, "t_min", 0.0, 1.0, strict_low=True, strict_high=True)
    g = make_grid(grid, steps, schedule, t_eps=t_eps)
    if g.numel() != steps + 1:
        raise ValueError(f"a grid tensor must have steps + 1 = {steps + 1} times; got {g.numel()}.")
    return g


def _run(model, process, shape, steps, grid, method, final, cache, generator, return_trajectory, device, t_eps):
    result = sample_joint(
        JointProcess({_NAME: process}), SingleModality(model, _NAME), shape[0], shapes={_NAME: shape[1:]},
        grids={_NAME: grid}, methods={_NAME: method}, final={_NAME: final}, cache=cache, generator=generator,
        device=device, return_trajectory=return_trajectory, t_eps=t_eps,
    )  # fmt: skip
    return SampleResult(
        samples=result.samples[_NAME],
        nfe=result.nfe,
        trajectory=None if result.trajectory is None else [s[_NAME] for s in result.trajectory],
        grids=result.grids[_NAME],
        still_masked_before_final=result.still_masked_before_final.get(_NAME, 0.0),
    )


def sample_masked(
    model: Model,
    process: MaskedProcess,
    shape: tuple[int, ...],
    steps: int,
    method: str = "ancestral",
    cache: bool = True,
    grid: str | Tensor = "official",
    t_min: float = 1e-5,
    final: str = "sample",
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
    device=None,
) -> SampleResult:
    """Sample from a masked-diffusion model, starting from all-mask.

    NFE: at most ``steps``. With ``cache=True`` the network call is skipped when no token changed since the last call
    and the previous output is reused (MDLM's trick, Sahoo et al. 2024 §4.2). That is exact when the network ignores
    t, as the optimal masked denoiser does; for a time-conditioned network it reuses an output from a slightly later
    time. The generator is consumed identically with or without the cache, so both give the same samples.

    Args:
        model: ``model(x_t, t) -> logits`` of shape (B, L, V); x_t (B, L) holds ``process.mask_id`` for masks.
        shape: (B, L) (any (B, ...) works).
        steps: number of iterations (grid intervals); the last one is the final denoise.
        method: ``"ancestral"`` (exact), ``"euler"`` or ``"tau-leaping"``, see :mod:`diffuse_edu.masked`.
        grid: ``"official"`` (``linspace(1, t_min, steps)`` then 0), ``"uniform"``, ``"edm"`` (on the process's
            schedule; needs α(1) > 0) or a tensor of steps + 1 times.
        final: how the final denoise decodes masks: ``"sample"`` (a draw; for ancestral this *is* the exact last step
            to t = 0) or ``"argmax"`` (MDLM's greedy last step).
        device: where to build tensors (default: the model's device).
    Returns:
        :class:`~diffuse_edu.sampling.SampleResult` with ``samples`` (B, L), ``nfe``, ``trajectory`` (a list of
        states from the prior, if asked) and ``still_masked_before_final`` (a float).
    """
    shape = _check(model, process, MaskedProcess, shape, steps)
    times = _grid(grid, steps, t_min, process.schedule)
    return _run(model, process, shape, steps, times, method, final, cache, generator, return_trajectory, device, t_min)


def sample_uniform(
    model: Model,
    process: UniformProcess,
    shape: tuple[int, ...],
    steps: int,
    generator: torch.Generator | None = None,
    grid: str | Tensor = "uniform",
    final: str = "sample",
    return_trajectory: bool = False,
    device=None,
) -> SampleResult:
    """Ancestral sampler of the uniform process: x_1 ~ uniform, then x_s ~ Σ_{x₀} q(x_s | x_t, x₀) p_θ(x₀ | x_t).

    NFE = ``steps``. The last step goes to t = 0, where the posterior is p_θ(x₀ | x_t) itself (``final="sample"``);
    ``final="argmax"`` takes its mode instead.

    Args:
        model: ``model(x_t, t) -> logits`` of shape (B, L, V).
        shape: (B, L). grid: ``"uniform"`` (``linspace(1, 0, steps + 1)``) or a tensor of steps + 1 times ending at 0.
    """
    shape = _check(model, process, UniformProcess, shape, steps)
    if isinstance(grid, str) and grid == "official":
        raise ValueError("sample_uniform supports grid='uniform' or a tensor grid ending at 0.")
    times = _grid(grid, steps, 1e-5, process.schedule)
    if times[-1].item() != 0.0:
        raise ValueError(f"a uniform-process grid must end at t = 0; got {times[-1].item()}.")
    return _run(
        model, process, shape, steps, times, "ancestral", final, False, generator, return_trajectory, device, 1e-5
    )
