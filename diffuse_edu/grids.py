r"""Time grids for every sampler, in one place: decreasing times from ``t_max`` (noise) to ``t_min`` (data).

* :func:`uniform_grid` — equally spaced times.
* :func:`edm_grid` — Karras et al. (2022, eq. 5) ρ-spacing of the noise-to-signal ratio σ/α, for Gaussian processes.
* :func:`official_grid` — the Diffuse-Everything code's grid: ``linspace(t_max, t_eps, steps)`` followed by 0, so the
  last network call is at a small ``t_eps > 0`` and the last step decodes from there.

:func:`make_grid` resolves a name or a tensor of times. Grids are float64 CPU tensors: a sampler reads one time per
step with ``.item()``, which costs no device synchronisation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_number, check_positive_int
from .schedules import Schedule, ScheduleVPLinear

__all__ = ["GRIDS", "uniform_grid", "edm_grid", "official_grid", "make_grid"]

GRIDS = ("uniform", "edm", "official")
_MAX_NSR = 1e10  # largest σ/α an EDM grid starts from (α(t_max) ≥ 1e-10); EDM's own σ_max is 80


def _check_steps(steps) -> int:
    return check_positive_int(steps, "steps")


def _check_range(t_max, t_min) -> None:
    check_number(t_max, "t_max", 0.0, 1.0)
    check_number(t_min, "t_min", 0.0, 1.0)
    if not t_min < t_max:
        raise ValueError(f"need 0 <= t_min < t_max <= 1, got t_min={t_min}, t_max={t_max}.")


def _check_t_eps(t_eps, t_max: float = 1.0) -> float:
    check_number(t_eps, "t_eps")
    if not 0.0 < t_eps < t_max:
        raise ValueError(f"t_eps must be a number in (0, t_max={t_max}), got {t_eps!r}.")
    return float(t_eps)


def uniform_grid(steps: int, t_max: float = 1.0, t_min: float = 0.0) -> Tensor:
    """Equally spaced times from ``t_max`` down to ``t_min``; shape (steps + 1,), float64."""
    _check_steps(steps)
    _check_range(t_max, t_min)
    grid = torch.linspace(t_max, t_min, steps + 1, dtype=torch.float64)
    grid[0], grid[-1] = t_max, t_min
    return grid


def official_grid(steps: int, t_eps: float = 1e-5, t_max: float = 1.0) -> Tensor:
    """The official code's grid: ``linspace(t_max, t_eps, steps)`` then 0; shape (steps + 1,), float64.

    With ``steps = 1`` it is ``[t_max, 0]``. The step from ``t_eps`` to 0 is the final denoise.
    """
    _check_steps(steps)
    _check_range(t_max, 0.0)
    _check_t_eps(t_eps, t_max)
    if steps == 1:
        return torch.tensor([t_max, 0.0], dtype=torch.float64)
    head = torch.linspace(t_max, t_eps, steps, dtype=torch.float64)
    return torch.cat([head, torch.zeros(1, dtype=torch.float64)])


def _log_nsr(schedule: Schedule, t: Tensor) -> Tensor:
    """log(σ/α) = −½ log-SNR, increasing in t."""
    return -0.5 * schedule.log_snr(t)


def edm_grid(
    steps: int,
    rho: float = 7.0,
    schedule: Schedule | None = None,
    t_max: float = 1.0,
    t_min: float = 0.0,
    nsr_min: float = 0.002,
) -> Tensor:
    r"""Karras et al. (2022, eq. 5) ρ-spacing of the noise-to-signal ratio ς = σ/α, mapped back to times.

    EDM spaces its noise levels as ς_i = (ς_max^{1/ρ} + i/(N−1)·(ς_min^{1/ρ} − ς_max^{1/ρ}))^ρ; for a VP process
    the EDM σ is our σ/α (x/α is the VE variable). We take ς_max = σ/α at ``t_max``. If ``t_min > 0`` the
    ``steps + 1`` points run from ς(t_max) to ς(t_min); if ``t_min == 0`` (ς = 0), like EDM they run over ``steps``
    points from ς(t_max) to ``nsr_min`` and a final 0 is appended. Each ς is mapped to t by bisection on the
    monotone log(σ/α) (64 halvings in float64, so exact to double precision; any schedule works).

    A schedule whose α(t_max) is 0 or nearly so (the cosine schedule's default ``alpha_end = 0`` at t = 1) has
    ς(t_max) = ∞ or ~1e16: ρ-spacing from there puts every early point at t_max. That is refused with a clear error;
    pass ``t_max < 1`` (e.g. 0.99) or a schedule with a positive α(1).

    Returns:
        Strictly decreasing times, shape (steps + 1,), float64, with grid[0] = t_max and grid[-1] = t_min exactly.
    """
    _check_steps(steps)
    _check_range(t_max, t_min)
    rho = check_number(rho, "rho", 0.0, strict_low=True)
    nsr_min = check_number(nsr_min, "nsr_min", 0.0, strict_low=True)
    schedule = schedule if schedule is not None else ScheduleVPLinear()
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule, got {type(schedule).__name__}.")
    tt = torch.tensor([t_max, t_min], dtype=torch.float64)
    lo_hi = _log_nsr(schedule, tt)
    if not torch.isfinite(lo_hi[0]):
        raise ValueError(
            f"σ/α is infinite at t_max={t_max} (α(t_max) = 0 for {schedule!r}); pass t_max < 1 for this schedule."
        )
    if lo_hi[0].exp().item() > _MAX_NSR:
        # ρ-spacing from σ/α ~ 1e16 (α(1) = 6e-17 for the default cosine) squeezes the first steps into [1 − 1e-16, 1]
        raise ValueError(
            f"σ/α(t_max={t_max}) = {lo_hi[0].exp().item():.3g} for {schedule!r} is too large to space a grid from "
            f"(max {_MAX_NSR:.0e}): pass t_max < 1 (e.g. 0.99) or a schedule with a positive α(1)."
        )
    if t_min > 0:
        # (σ/α at a tiny t_min may underflow to 0: then the last point simply maps to t_min.)
        n_pts, nsr_lo, append_zero = steps + 1, lo_hi[1].exp().item(), False
    else:
        n_pts, nsr_lo, append_zero = steps, nsr_min, True
    nsr_hi = lo_hi[0].exp().item()
    if n_pts == 1:
        nsr = torch.tensor([nsr_hi], dtype=torch.float64)
    else:
        if not nsr_lo < nsr_hi:
            raise ValueError(f"need nsr_min < σ/α(t_max) = {nsr_hi:.4g}; got nsr_min={nsr_lo:.4g}.")
        ramp = torch.linspace(0, 1, n_pts, dtype=torch.float64)
        nsr = (nsr_hi ** (1 / rho) + ramp * (nsr_lo ** (1 / rho) - nsr_hi ** (1 / rho))) ** rho
    # Bisection for t with log(σ/α)(t) = log ς on [0, t_max]; log(σ/α) increases with t.
    target = nsr.log()
    lo = torch.zeros_like(target)
    hi = torch.full_like(target, t_max)
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        above = _log_nsr(schedule, mid) > target
        hi = torch.where(above, mid, hi)
        lo = torch.where(above, lo, mid)
    grid = 0.5 * (lo + hi)
    if append_zero:
        grid = torch.cat([grid, torch.zeros(1, dtype=torch.float64)])
    grid[0], grid[-1] = t_max, t_min
    if not (grid[1:] < grid[:-1]).all():
        raise ValueError(
            f"the EDM grid for {schedule!r} from t_max={t_max} is not strictly decreasing (σ/α(t_max) = {nsr_hi:.3g} "
            "is too large to space from): pass t_max < 1 (e.g. 0.99) or a schedule with a positive α(1)."
        )
    return grid


def make_grid(
    grid: str | Tensor,
    steps: int | None,
    schedule: Schedule | None = None,
    t_max: float = 1.0,
    t_min: float = 0.0,
    t_eps: float = 1e-5,
) -> Tensor:
    """Resolve ``grid`` to a strictly decreasing float64 tensor of times in [0, 1].

    Args:
        grid: ``"uniform"``, ``"edm"`` (needs ``schedule``), ``"official"`` (ends ``t_eps`` → 0) or a tensor of times.
        steps: number of steps (intervals); ignored for a tensor grid, whose length fixes it.
        t_max, t_min: range of the uniform and EDM grids (the official grid starts at ``t_max`` and ends at 0, so it
            refuses ``t_min > 0`` rather than ignore it).
    """
    if isinstance(grid, str):
        _check_t_eps(t_eps)
        if grid == "official" and not (isinstance(t_min, (int, float)) and t_min == 0):
            raise ValueError(f"the 'official' grid always ends at t = 0; got t_min={t_min!r} (use grid='uniform').")
        if grid == "uniform":
            return uniform_grid(steps, t_max, t_min)
        if grid == "edm":
            return edm_grid(steps, schedule=schedule, t_max=t_max, t_min=t_min)
        if grid == "official":
            return official_grid(steps, t_eps=t_eps, t_max=t_max)
        raise ValueError(f"grid must be one of {GRIDS} or a tensor of times; got {grid!r}.")
    if not isinstance(grid, Tensor):
        raise TypeError(f"grid must be one of {GRIDS} or a torch.Tensor, got {type(grid).__name__}.")
    if grid.is_complex() or grid.dtype == torch.bool:
        raise TypeError(f"a grid tensor must hold real times in [0, 1]; got dtype {grid.dtype}.")
    grid = grid.detach().to("cpu", torch.float64)
    if grid.ndim != 1 or grid.numel() < 2:
        raise ValueError(f"a grid tensor must be 1-D with at least 2 times; got shape {tuple(grid.shape)}.")
    if torch.isnan(grid).any() or (grid < 0).any() or (grid > 1).any():
        raise ValueError("grid times must lie in [0, 1].")
    if not (grid[1:] < grid[:-1]).all():
        raise ValueError("grid times must be strictly decreasing (from t_max to t_min).")
    return grid
