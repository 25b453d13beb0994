r"""Time grids and samplers for the Gaussian process, counted in network calls (NFE).

``sample_iter`` is a generator that yields one :class:`SampleState` per step (smalldiffusion style), so a notebook
collects a trajectory with a list comprehension; ``sample`` runs it to the end and returns a :class:`SampleResult`.

Network calls (NFE) for ``steps`` steps on a grid ending at t_min = 0: ``"ddpm"``, ``"euler-maruyama"`` and
``"ode-euler"`` call the model once per step (``steps``); ``"ode-heun"`` (Karras et al. 2022, Alg. 1) calls it twice
per step except on the last one, which has no second-order correction, so 2·steps − 1. If the grid ends at
t_min > 0 the last Heun step is corrected too (2·steps).

The last step, to t = 0, returns :meth:`GaussianProcess.denoise` (x̂₀ = E[x₀ | x_t], Tweedie) from the network call
at the previous time, for every method. For DDPM this *is* the exact posterior step to s = 0; for the Euler-type
methods it replaces an Euler step whose score is divided by σ(0) = 0 — it is the Euler step of EDM's ODE in the
(x/α, σ/α) variables, as in Karras et al. Pass ``denoise_last=False`` to take an ordinary step instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .gaussian import STEP_METHODS, GaussianProcess
from .schedules import Schedule

__all__ = ["uniform_grid", "edm_grid", "make_grid", "SampleState", "SampleResult", "sample_iter", "sample", "nfe_of"]

METHODS = STEP_METHODS + ("ode-heun",)


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    return steps


def _check_range(t_max: float, t_min: float) -> None:
    if not 0.0 <= t_min < t_max <= 1.0:
        raise ValueError(f"need 0 <= t_min < t_max <= 1, got t_min={t_min}, t_max={t_max}.")


def uniform_grid(steps: int, t_max: float = 1.0, t_min: float = 0.0) -> Tensor:
    """Equally spaced times from ``t_max`` down to ``t_min``; shape (steps + 1,), float64."""
    _check_steps(steps)
    _check_range(t_max, t_min)
    grid = torch.linspace(t_max, t_min, steps + 1, dtype=torch.float64)
    grid[0], grid[-1] = t_max, t_min
    return grid


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

    Returns:
        Decreasing times, shape (steps + 1,), float64, with grid[0] = t_max and grid[-1] = t_min exactly.
    """
    from .schedules import ScheduleVPLinear

    _check_steps(steps)
    _check_range(t_max, t_min)
    if rho <= 0:
        raise ValueError(f"rho must be positive, got {rho}.")
    schedule = schedule if schedule is not None else ScheduleVPLinear()
    tt = torch.tensor([t_max, t_min], dtype=torch.float64)
    lo_hi = _log_nsr(schedule, tt)
    if not torch.isfinite(lo_hi[0]):
        raise ValueError(
            f"σ/α is infinite at t_max={t_max} (α(t_max) = 0 for {schedule!r}); pass t_max < 1 for this schedule."
        )
    if t_min > 0:
        n_pts, nsr_lo, append_zero = steps + 1, lo_hi[1].exp().item(), False
    else:
        n_pts, nsr_lo, append_zero = steps, nsr_min, True
    nsr_hi = lo_hi[0].exp().item()
    if n_pts == 1:
        nsr = torch.tensor([nsr_hi], dtype=torch.float64)
    else:
        if not 0 < nsr_lo < nsr_hi:
            raise ValueError(f"need 0 < nsr_min < σ/α(t_max) = {nsr_hi:.4g}; got nsr_min={nsr_lo:.4g}.")
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
    return grid


def make_grid(grid, steps: int, schedule: Schedule | None = None, t_max: float = 1.0, t_min: float = 0.0) -> Tensor:
    """Resolve ``grid`` (``"uniform"``, ``"edm"`` or a decreasing tensor of times in [0, 1]) to a (steps + 1,) grid."""
    if isinstance(grid, str):
        if grid == "uniform":
            return uniform_grid(steps, t_max, t_min)
        if grid == "edm":
            return edm_grid(steps, schedule=schedule, t_max=t_max, t_min=t_min)
        raise ValueError(f"grid must be 'uniform', 'edm' or a tensor of times; got {grid!r}.")
    if not isinstance(grid, Tensor):
        raise TypeError(f"grid must be 'uniform', 'edm' or a torch.Tensor, got {type(grid).__name__}.")
    grid = grid.detach().to("cpu", torch.float64)
    if grid.ndim != 1 or grid.numel() < 2:
        raise ValueError(f"a grid tensor must be 1-D with at least 2 times; got shape {tuple(grid.shape)}.")
    if torch.isnan(grid).any() or (grid < 0).any() or (grid > 1).any():
        raise ValueError("grid times must lie in [0, 1].")
    if not (grid[1:] < grid[:-1]).all():
        raise ValueError("grid times must be strictly decreasing (from t_max to t_min).")
    return grid


def nfe_of(method: str, steps: int, t_min: float = 0.0, denoise_last: bool = True) -> int:
    """Number of network calls of :func:`sample` with this method and step count."""
    if method == "ode-heun":
        # The step into t = 0 never gets the second call (denoised, or plain Euler if denoise_last=False).
        return 2 * steps - (1 if t_min == 0.0 else 0)
    return steps


@dataclass
class SampleState:
    """State after one sampler step.

    Attributes:
        step: 1-based index of the step just taken.
        t: the time of ``x`` (float).
        x: the current sample, shape (B, ...).
        x0_hat: the clean estimate x̂₀ from the network call at the start of this step, shape (B, ...).
        nfe: network calls so far.
    """

    step: int
    t: float
    x: Tensor
    x0_hat: Tensor
    nfe: int


@dataclass
class SampleResult:
    """Output of :func:`sample`.

    Attributes:
        samples: final samples, shape (B, ...).
        nfe: number of network calls used.
        trajectory: if requested, x at every grid time, shape (steps + 1, B, ...), from the prior draw to the end.
        grid: the times used, shape (steps + 1,).
    """

    samples: Tensor
    nfe: int
    trajectory: Tensor | None = None
    grid: Tensor | None = None


@torch.no_grad()
def sample_iter(
    model: Callable[[Tensor, Tensor], Tensor],
    process: GaussianProcess,
    shape: tuple[int, ...],
    steps: int = 100,
    method: str | None = None,
    grid="uniform",
    generator: torch.Generator | None = None,
    t_max: float = 1.0,
    t_min: float = 0.0,
    device=None,
    x_init: Tensor | None = None,
    denoise_last: bool = True,
) -> Iterator[SampleState]:
    """Run the reverse process from the prior at ``t_max`` to ``t_min``, yielding a :class:`SampleState` per step.

    Args:
        model: ``model(x, t)`` with x shape (B, ...) and t shape (B,), returning the process's prediction kind.
        process: the :class:`~diffuse_edu.gaussian.GaussianProcess` (schedule, prediction kind, default method).
        shape: (B, ...) of the samples.
        steps: number of steps (ignored when ``grid`` is a tensor, whose length fixes it).
        method: ``"ddpm"``, ``"euler-maruyama"``, ``"ode-euler"`` or ``"ode-heun"``; default ``process.step_method``.
        grid: ``"uniform"``, ``"edm"`` or a decreasing tensor of times.
        generator: source of all randomness (the prior draw and the step noise): seeded runs are bit-exact.
        x_init: start from this x (shape ``shape``) instead of a prior draw.
        denoise_last: make the step to t = 0 return x̂₀ (see the module docstring).
    """
    method = method or process.step_method
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if isinstance(grid, Tensor):
        steps = grid.numel() - 1
    else:
        _check_steps(steps)
    times = make_grid(grid, steps, process.schedule, t_max, t_min)
    steps = times.numel() - 1
    x = process.prior(tuple(shape), generator=generator, device=device) if x_init is None else x_init.clone()
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"x_init has shape {tuple(x.shape)}, expected {tuple(shape)}.")
    batch = x.shape[0]
    nfe = 0

    def call(x_: Tensor, t_: float) -> tuple[Tensor, Tensor]:
        nonlocal nfe
        tb = torch.full((batch,), t_, dtype=x_.dtype, device=x_.device)
        nfe += 1
        return model(x_, tb), tb

    for i in range(steps):
        t, s = times[i].item(), times[i + 1].item()
        out, tb = call(x, t)
        x0_hat = process.to_x0(x, tb, out)
        sb = torch.full_like(tb, s)
        if i == steps - 1 and s == 0.0 and denoise_last:
            x = process.denoise(x, tb, out)
        elif method == "ode-heun":
            # Heun (trapezoidal) step of the probability-flow ODE; plain Euler into t = 0 where the drift is singular.
            d_t = process.ode_drift(x, tb, out)
            x_euler = x + (s - t) * d_t
            if s == 0.0:
                x = x_euler
            else:
                out_s, _ = call(x_euler, s)
                x = x + (s - t) * 0.5 * (d_t + process.ode_drift(x_euler, sb, out_s))
        else:
            x = process.step(x, tb, sb, out, generator=generator, method=method)
        yield SampleState(step=i + 1, t=s, x=x, x0_hat=x0_hat, nfe=nfe)


@torch.no_grad()
def sample(
    model: Callable[[Tensor, Tensor], Tensor],
    process: GaussianProcess,
    shape: tuple[int, ...],
    steps: int = 100,
    method: str | None = None,
    grid="uniform",
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
    t_max: float = 1.0,
    t_min: float = 0.0,
    device=None,
    x_init: Tensor | None = None,
    denoise_last: bool = True,
    progress: bool = False,
) -> SampleResult:
    """Draw samples with :func:`sample_iter` (same arguments) and return a :class:`SampleResult`.

    NFE is ``steps`` for ``"ddpm"``, ``"euler-maruyama"``, ``"ode-euler"`` and 2·steps − 1 for ``"ode-heun"`` on a
    grid ending at 0 (see :func:`nfe_of`). ``progress`` shows a tqdm bar.
    """
    x = process.prior(tuple(shape), generator=generator, device=device) if x_init is None else x_init
    it = sample_iter(
        model,
        process,
        shape,
        steps=steps,
        method=method,
        grid=grid,
        generator=generator,
        t_max=t_max,
        t_min=t_min,
        device=device,
        x_init=x,
        denoise_last=denoise_last,
    )
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=(len(grid) - 1) if isinstance(grid, Tensor) else steps, desc="sampling", leave=False)
    traj = [x] if return_trajectory else None
    state = None
    for state in it:
        if traj is not None:
            traj.append(state.x)
    times = make_grid(grid, steps, process.schedule, t_max, t_min)
    return SampleResult(
        samples=state.x, nfe=state.nfe, trajectory=None if traj is None else torch.stack(traj), grid=times
    )
