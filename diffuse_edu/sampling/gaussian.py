r"""The Gaussian sampler: the joint sampler with one modality, counted in network calls (NFE).

``sample_iter`` yields one :class:`GaussianSampleState` per step (smalldiffusion style), so a notebook collects a
trajectory with a list comprehension; ``sample`` runs it to the end and returns a
:class:`~diffuse_edu.sampling.joint.SampleResult`. Both wrap :func:`~diffuse_edu.sampling.joint.sample_joint_iter`.

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

from .._checks import check_positive_int, check_shape
from ..gaussian import GaussianProcess
from ..grids import make_grid
from ..joint import JointProcess, SingleModality
from .joint import SampleResult, count_nfe, sample_joint_iter

__all__ = ["GaussianSampleState", "sample_iter", "sample", "nfe_of"]

_NAME = "x"


@dataclass
class GaussianSampleState:
    """State after one step of :func:`sample_iter`.

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


def _setup(model, process, shape, steps, method, grid, t_max, t_min, x_init):
    if not isinstance(process, GaussianProcess):
        raise TypeError(f"process must be a GaussianProcess; got {type(process).__name__}.")
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t); got {type(model).__name__}.")
    shape = check_shape(shape, "shape", allow_empty_batch=False)
    if not isinstance(grid, Tensor):
        check_positive_int(steps, "steps")
    times = make_grid(grid, steps, process.schedule, t_max, t_min)
    init = None
    if x_init is not None:
        process.validate(x_init, "x_init")
        if tuple(x_init.shape) != shape:
            raise ValueError(f"x_init has shape {tuple(x_init.shape)}, expected {shape}.")
        init = {_NAME: x_init}
    return (
        JointProcess({_NAME: process}),
        SingleModality(model, _NAME),
        shape,
        times,
        process.check_method(method),
        init,
    )


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
) -> Iterator[GaussianSampleState]:
    """Run the reverse process from the prior at ``t_max`` to ``t_min``, yielding a state per step.

    Args:
        model: ``model(x, t)`` with x shape (B, ...) and t shape (B,), returning the process's prediction kind.
        process: the :class:`~diffuse_edu.gaussian.GaussianProcess` (schedule, prediction kind, default method).
        shape: (B, ...) of the samples.
        steps: number of steps (ignored when ``grid`` is a tensor, whose length fixes it).
        method: ``"ddpm"``, ``"euler-maruyama"``, ``"ode-euler"`` or ``"ode-heun"``; default ``process.step_method``.
        grid: ``"uniform"``, ``"edm"``, ``"official"`` or a decreasing tensor of times.
        generator: source of all randomness (the prior draw and the step noise): seeded runs are bit-exact.
        device: where to build tensors (default: the model's device).
        x_init: start from this x (shape ``shape``) instead of a prior draw.
        denoise_last: make the step to t = 0 return x̂₀ (see the module docstring).
    """
    joint, net, shape, times, method, init = _setup(model, process, shape, steps, method, grid, t_max, t_min, x_init)
    it = sample_joint_iter(
        joint, net, shape[0], shapes={_NAME: shape[1:]}, grids={_NAME: times}, methods={_NAME: method},
        generator=generator, device=device, denoise_last=denoise_last, init=init,
    )  # fmt: skip
    return _states(it, process)


def _states(it, process) -> Iterator[GaussianSampleState]:
    prev = next(it)
    for state in it:
        t = torch.full((prev.xs[_NAME].shape[0],), prev.ts[_NAME], device=prev.xs[_NAME].device)
        x0_hat = process.to_x0(prev.xs[_NAME], t, state.outputs[_NAME])
        yield GaussianSampleState(state.step, state.ts[_NAME], state.xs[_NAME], x0_hat, state.nfe)
        prev = state


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
    """Draw samples (same arguments as :func:`sample_iter`); returns a :class:`~diffuse_edu.sampling.SampleResult`
    whose ``samples`` is a tensor (B, ...), ``grid``-s the times and ``trajectory`` (if asked) a tensor
    (steps + 1, B, ...) from the prior draw to the end.

    NFE is ``steps`` for ``"ddpm"``, ``"euler-maruyama"``, ``"ode-euler"`` and 2·steps − 1 for ``"ode-heun"`` on a
    grid ending at 0 (see :func:`nfe_of`). ``progress`` shows a tqdm bar.
    """
    joint, net, shape, times, method, init = _setup(model, process, shape, steps, method, grid, t_max, t_min, x_init)
    it = sample_joint_iter(
        joint, net, shape[0], shapes={_NAME: shape[1:]}, grids={_NAME: times}, methods={_NAME: method},
        generator=generator, device=device, denoise_last=denoise_last, init=init,
    )  # fmt: skip
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=times.numel(), desc="sampling", leave=False)
    traj = [] if return_trajectory else None
    state = None
    for state in it:
        if traj is not None:
            traj.append(state.xs[_NAME])
    return SampleResult(
        samples=state.xs[_NAME],
        nfe=state.nfe,
        trajectory=None if traj is None else torch.stack(traj),
        grids=times,
    )


def nfe_of(method: str, steps: int, t_min: float = 0.0, denoise_last: bool = True) -> int:
    """Number of network calls of :func:`sample` with this method and step count on a uniform grid."""
    process = GaussianProcess(step_method=method)
    joint = JointProcess({_NAME: process})
    return count_nfe(
        joint,
        steps=steps,
        grids={_NAME: make_grid("uniform", steps, t_min=t_min)},
        methods={_NAME: method},
        denoise_last=denoise_last,
    )
