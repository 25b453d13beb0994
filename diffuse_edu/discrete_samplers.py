r"""Samplers for the masked and uniform processes, with their cost in network calls (NFE).

Masked samplers all share one structure. A grid of ``steps + 1`` times runs from t₀ = 1 down to t_steps ≈ 0; at
iteration k the network is called at t_k and every masked token is revealed, independently, with a probability r_k
that depends only on the grid and the method (:func:`reveal_schedule`), to a value drawn from softmax(output):

* ``"ancestral"`` — exact: r_k = (α(t_{k+1}) − α(t_k)) / (1 − α(t_k)).
* ``"euler"`` — first order in Δt: r_k = min(1, rate(t_k)·Δt), rate = −α'/(1 − α). Identical to ancestral for the
  log-linear schedule (α linear in t), different for cosine.
* ``"tau-leaping"`` — as in the official Diffuse-Everything code: each masked token draws a Poisson number of jumps
  to each value y with mean rate(t_k)·Δt·p_y, and a move with more than one jump is rejected (the token stays
  masked). The jump counts sum to a Poisson(λ = rate·Δt) variable, and given one jump its target is y with
  probability p_y, so the same law is drawn here with r_k = λ e^{−λ} and one categorical draw.

The last iteration is the *final denoise*: every remaining mask is decoded from the last output (r = 1). With the
default grid ``"official"`` (``linspace(1, t_min, steps)`` then 0, the official code's grid) tau-leaping leaves about
2.7% of tokens masked before that final step at 50 steps — its known artefact; ancestral leaves ≈ α-mass t_min.

With an exact per-token denoiser the values drawn are exact whatever the reveal times (any reveal order with exact
conditionals is exact), so the only error of any of these samplers is revealing two tokens of one sequence in the
same iteration (the draws are then independent instead of joint): see :func:`simultaneous_reveal_probability`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .masked import MaskedProcess
from .uniform import UniformProcess

__all__ = [
    "DiscreteSampleResult",
    "masked_time_grid",
    "reveal_schedule",
    "simultaneous_reveal_probability",
    "sample_masked",
    "sample_uniform",
]

Model = Callable[[Tensor, Tensor], Tensor]


@dataclass
class DiscreteSampleResult:
    """What a discrete sampler returns.

    Attributes:
        samples: clean tokens, shape (B, L) (never the mask id).
        nfe: number of network calls actually made.
        trajectory: the state after each iteration (first entry: the prior), each shape (B, L); None unless asked.
        still_masked_before_final: fraction of tokens still masked just before the final denoise (0 for uniform).
    """

    samples: Tensor
    nfe: int
    trajectory: list[Tensor] | None
    still_masked_before_final: float


def masked_time_grid(steps: int, grid: str | Tensor = "official", t_min: float = 1e-5, device=None) -> Tensor:
    """The ``steps + 1`` decreasing times of a sampler, float64, shape (steps + 1,).

    Args:
        grid: ``"official"`` — ``linspace(1, t_min, steps)`` followed by 0 (the official code: the last network call is
            at t_min and decodes what is left); ``"uniform"`` — ``linspace(1, 0, steps + 1)``; or a tensor of
            ``steps + 1`` decreasing times in [0, 1].
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    if isinstance(grid, Tensor):
        g = grid.to(device=device, dtype=torch.float64)
        if g.shape != (steps + 1,):
            raise ValueError(f"a grid tensor must have shape ({steps + 1},) = (steps + 1,); got {tuple(g.shape)}.")
        if (g < 0).any() or (g > 1).any() or (g[1:] > g[:-1]).any():
            raise ValueError("a grid tensor must be non-increasing with values in [0, 1].")
        return g
    if grid == "official":
        head = (
            torch.linspace(1.0, t_min, steps, dtype=torch.float64, device=device)
            if steps > 1
            else torch.ones(1, dtype=torch.float64, device=device)
        )
        return torch.cat([head, torch.zeros(1, dtype=torch.float64, device=device)])
    if grid == "uniform":
        return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64, device=device)
    raise ValueError(f"grid must be 'official', 'uniform' or a tensor, got {grid!r}.")


def reveal_schedule(process: MaskedProcess, grid: Tensor, method: str = "ancestral") -> Tensor:
    """Per-iteration probability r_k that a token masked at t_k is revealed, shape (steps,); the last is 1.

    Args:
        grid: shape (steps + 1,), from :func:`masked_time_grid`.
        method: ``"ancestral"``, ``"euler"`` or ``"tau-leaping"`` (formulas in the module docstring).
    """
    t, s = grid[:-1].double(), grid[1:].double()
    if method == "ancestral":
        r = process.reveal_probability(t, s)
    elif method in ("euler", "tau-leaping"):
        lam = process.unmask_rate(t) * (t - s)
        r = lam.clamp_max(1.0) if method == "euler" else lam * torch.exp(-lam)
    else:
        raise ValueError(f"method must be 'ancestral', 'euler' or 'tau-leaping', got {method!r}.")
    r = r.clone()
    r[-1] = 1.0  # the final denoise decodes every remaining mask
    return r


def simultaneous_reveal_probability(reveal_probs: Tensor, length: int) -> float:
    r"""P(some iteration reveals two or more of ``length`` tokens at once), all tokens starting masked.

    Each token's reveal iteration is independent with law :math:`\pi_k = r_k \prod_{j<k}(1 - r_j)`; all L are distinct
    with probability :math:`L!\,e_L(\pi)` (e_L: the elementary symmetric polynomial). With an exact per-token denoiser
    this bounds the total-variation error of the sampler's output law (coupling: with at most one reveal per
    iteration, independent and joint draws coincide).
    """
    r = reveal_probs.double()
    survive = torch.cumprod(torch.cat([torch.ones(1, dtype=r.dtype), 1 - r[:-1]]), 0)
    pi = r * survive
    e = torch.zeros(length + 1, dtype=torch.float64)
    e[0] = 1.0
    for p in pi.tolist():  # e_j(π) by the usual recursion, one variable at a time
        e[1:] = e[1:].clone() + p * e[:-1].clone()
    return float(1.0 - math.factorial(length) * e[length])


@torch.no_grad()
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
) -> DiscreteSampleResult:
    """Sample from a masked-diffusion model, starting from all-mask.

    NFE: at most ``steps``. With ``cache=True`` the network call is skipped when no token changed since the last call
    and the previous output is reused (MDLM's trick, Sahoo et al. 2024 §4.2). That is exact when the network ignores
    t, as the optimal masked denoiser does; for a time-conditioned network it reuses an output from a slightly later
    time. The generator is consumed identically with or without the cache, so both give the same samples.

    Args:
        model: ``model(x_t, t) -> logits`` of shape (B, L, V); x_t (B, L) holds ``process.mask_id`` for masks.
        shape: (B, L) (any (B, ...) works).
        steps: number of iterations (grid intervals); the last one is the final denoise.
        method: ``"ancestral"`` (exact), ``"euler"`` or ``"tau-leaping"``, see the module docstring.
        grid: ``"official"``, ``"uniform"`` or a tensor of steps + 1 times (:func:`masked_time_grid`).
        final: how the final denoise decodes masks: ``"sample"`` (a draw; for ancestral this *is* the exact last step
            to t = 0) or ``"argmax"`` (MDLM's greedy last step).
    Returns:
        :class:`DiscreteSampleResult`.
    """
    times = masked_time_grid(steps, grid, t_min, device=device)
    r = reveal_schedule(process, times, method)
    x = process.prior(tuple(shape), device=device)
    B = x.shape[0]
    trajectory = [x.clone()] if return_trajectory else None
    nfe, output, changed = 0, None, True
    still_masked = 0.0
    for k in range(steps):
        t = times[k].float().expand(B)
        if changed or not cache or output is None:
            output = process._check_output(model(x, t), x, "model output")
            nfe += 1
        if k < steps - 1:
            x_new = process.reveal(x, output, r[k].expand(B), generator)
        else:
            still_masked = (x == process.mask_id).double().mean().item()
            x_new = process.denoise(x, t, output, mode=final, generator=generator)
        changed = not torch.equal(x_new, x)
        x = x_new
        if return_trajectory:
            trajectory.append(x.clone())
    return DiscreteSampleResult(x, nfe, trajectory, still_masked)


@torch.no_grad()
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
) -> DiscreteSampleResult:
    """Ancestral sampler of the uniform process: x_1 ~ uniform, then x_s ~ Σ_{x₀} q(x_s | x_t, x₀) p_θ(x₀ | x_t).

    NFE = ``steps``. The last step goes to t = 0, where the posterior is p_θ(x₀ | x_t) itself (``final="sample"``);
    ``final="argmax"`` takes its mode instead.

    Args:
        model: ``model(x_t, t) -> logits`` of shape (B, L, V).
        shape: (B, L). grid: ``"uniform"`` (``linspace(1, 0, steps + 1)``) or a tensor of steps + 1 times ending at 0.
    """
    times = masked_time_grid(steps, grid, device=device) if not (isinstance(grid, str) and grid == "official") else None
    if times is None:
        raise ValueError("sample_uniform supports grid='uniform' or a tensor grid.")
    x = process.prior(tuple(shape), generator=generator, device=device)
    B = x.shape[0]
    trajectory = [x.clone()] if return_trajectory else None
    for k in range(steps):
        t, s = times[k].float().expand(B), times[k + 1].float().expand(B)
        output = model(x, t)
        if k == steps - 1 and final == "argmax":
            x = process.denoise(x, t, output)
        else:
            x = process.step(x, t, s, output, generator)
        if return_trajectory:
            trajectory.append(x.clone())
    return DiscreteSampleResult(x, steps, trajectory, 0.0)
