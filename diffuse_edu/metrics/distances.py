r"""Two-sample distances for point clouds (toys, low-dimensional data), and the noise floor to report them against.

A distance between two finite samples is never exactly 0, even when both come from the same distribution. So every
number is put next to :func:`noise_floor`: the same metric between two independent data samples of the same size.
A model whose distance to the data sits within that floor is indistinguishable from the data at this sample size.

* :func:`sliced_wasserstein`: average over random directions of the 1D Wasserstein-p distance between projections
  (Bonneel et al. 2015); same units as the data.
* :func:`mmd_rbf`: unbiased squared maximum mean discrepancy with a sum of Gaussian kernels (Gretton et al. 2012);
  can be slightly negative when the two samples agree.
* :func:`energy_distance`: 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (Székely & Rizzo 2013), with unbiased within-sample terms.

MMD and energy distance build N×M distance matrices: keep N, M ≲ 5000. Every sample needs at least 2 points (the
unbiased within-sample terms divide by n − 1); inputs must be finite float tensors with the same number of features.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_float_tensor, check_generator, check_number, check_positive_int

__all__ = ["sliced_wasserstein", "mmd_rbf", "energy_distance", "noise_floor", "NoiseFloor"]


def _pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    check_float_tensor(x, "x", min_ndim=2)
    check_float_tensor(y, "y", min_ndim=2)
    x, y = x.flatten(1), y.flatten(1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of features; got {x.shape[1]} and {y.shape[1]}.")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("each sample needs at least 2 points.")
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(device=x.device, dtype=dtype)


def _quantiles(v: Tensor, m: int) -> Tensor:
    """Empirical quantile function of each column of ``v`` (n, P) at the m midpoints (i + ½)/m; shape (m, P)."""
    v = v.sort(0).values
    n = v.shape[0]
    if n == m:
        return v
    idx = ((torch.arange(m, device=v.device) + 0.5) * n / m).long().clamp_max(n - 1)
    return v[idx]


def sliced_wasserstein(
    x: Tensor, y: Tensor, n_projections: int = 256, p: int = 2, generator: torch.Generator | None = None
) -> float:
    """Sliced Wasserstein-p distance (E_θ W_p^p(θ·x, θ·y))^{1/p} over uniform random directions θ.

    Args:
        x: shape (N, D) (further dims are flattened); y: shape (M, D).
        n_projections: number of directions (Monte-Carlo error shrinks like 1/√n_projections).
        generator: source of the directions.
    """
    x, y = _pair(x, y)
    check_positive_int(n_projections, "n_projections")
    p = check_number(p, "p", 1.0)
    check_generator(generator)
    theta = torch.randn(
        x.shape[1],
        n_projections,
        generator=generator,
        dtype=x.dtype,
        device=generator.device if generator is not None else None,
    ).to(x.device)
    theta = theta / theta.norm(dim=0, keepdim=True)
    m = max(x.shape[0], y.shape[0])
    qx, qy = _quantiles(x @ theta, m), _quantiles(y @ theta, m)  # (m, P)
    return (qx - qy).abs().pow(p).mean().pow(1 / p).item()


def _median_distance(z: Tensor, max_points: int = 1000) -> float:
    z = z[:: max(1, z.shape[0] // max_points)]
    d = torch.cdist(z, z)
    return d[torch.triu(torch.ones_like(d, dtype=torch.bool), 1)].median().item()


def mmd_rbf(x: Tensor, y: Tensor, bandwidths: Sequence[float] | None = None) -> float:
    """Unbiased MMD² with the kernel Σ_h exp(−‖a − b‖² / (2h²)).

    Args:
        x: shape (N, D); y: shape (M, D).
        bandwidths: kernel widths h in data units; default (½, 1, 2) × the median pairwise distance of the pooled
            sample (the median heuristic), so the value is scale-free.
    """
    x, y = _pair(x, y)
    if bandwidths is None:
        med = _median_distance(torch.cat([x, y]))
        if not med > 0:
            raise ValueError(
                "the pooled sample has a median pairwise distance of 0 (repeated points); pass bandwidths."
            )
        bandwidths = [0.5 * med, med, 2 * med]
    if isinstance(bandwidths, (str, bytes)) or not hasattr(bandwidths, "__len__") or len(bandwidths) == 0:
        raise TypeError(f"bandwidths must be a non-empty list of positive numbers; got {bandwidths!r}.")
    bandwidths = [check_number(h, "bandwidths[i]", 0.0, strict_low=True) for h in bandwidths]

    def k(a: Tensor, b: Tensor) -> Tensor:
        d2 = torch.cdist(a, b).pow(2)
        return sum(torch.exp(-d2 / (2 * h * h)) for h in bandwidths)

    n, m = x.shape[0], y.shape[0]
    kxx, kyy = k(x, x), k(y, y)
    # Unbiased: drop the diagonal (i = j) terms of the within-sample averages.
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return (within_x + within_y - 2 * k(x, y).mean()).item()


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Energy distance 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (unbiased within terms); x shape (N, D), y shape (M, D)."""
    x, y = _pair(x, y)
    n, m = x.shape[0], y.shape[0]
    dxx = torch.cdist(x, x).sum() / (n * (n - 1))
    dyy = torch.cdist(y, y).sum() / (m * (m - 1))
    return (2 * torch.cdist(x, y).mean() - dxx - dyy).item()


@dataclass
class NoiseFloor:
    """A metric between independent same-distribution samples: ``mean ± std`` over ``values``."""

    mean: float
    std: float
    values: list[float]

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.std:.2g}"


def noise_floor(
    sample_fn: Callable[[int, torch.Generator | None], Tensor],
    metric: Callable[[Tensor, Tensor], float],
    n: int,
    repeats: int = 5,
    generator: torch.Generator | None = None,
    reference: Tensor | None = None,
) -> NoiseFloor:
    """The value of ``metric`` between two independent draws of ``n`` points from ``sample_fn``, over ``repeats``.

    With ``reference`` given, each repeat instead scores one fresh draw against that fixed reference sample — the
    floor to use when model samples are scored against the same reference (a large reference lowers the spread).

    Args:
        sample_fn: ``sample_fn(n, generator)`` returns shape (n, D), e.g. ``mixture.sample``.
        metric: ``metric(x, y)`` returns a float, e.g. ``sliced_wasserstein`` (wrap it with ``functools.partial`` to
            fix its own options).
        n: sample size — use the size at which model samples are compared.
    """
    check_positive_int(repeats, "repeats (>= 2 to estimate a spread)", minimum=2)
    if not callable(sample_fn) or not callable(metric):
        raise TypeError("sample_fn and metric must be callables: sample_fn(n, generator), metric(x, y) -> float.")
    check_generator(generator)
    vals = []
    for _ in range(repeats):
        value = metric(sample_fn(n, generator), sample_fn(n, generator) if reference is None else reference)
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"metric must return a finite number; got {value!r:.60}.")
        vals.append(float(value))
    v = torch.tensor(vals, dtype=torch.float64)
    return NoiseFloor(mean=v.mean().item(), std=v.std().item(), values=vals)
