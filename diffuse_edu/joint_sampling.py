r"""Sampling a joint model: unconditional, conditional on any subset of modalities, with per-modality clocks.

**Clocks.** Each sampled modality m runs down its own grid ``grid_m`` of ``n_m + 1`` decreasing times (default
:func:`~diffuse_edu.samplers.uniform_grid`, 1 → 0). With ``align="start"`` (default) all clocks start together:
global iteration k moves modality m from ``grid_m[k]`` to ``grid_m[k+1]`` while k < n_m; afterwards it sits, finished,
at its last grid time (0). With ``align="end"`` a modality with fewer steps waits at ``grid_m[0]`` (its prior draw,
unchanged) for the first ``K − n_m`` iterations so that all clocks finish together. K = max_m n_m iterations in all.

**Given modalities** are held exactly as given, at t = 0, on every call; they are never modified, and the returned
``samples`` dict holds the very same tensor objects.

**One iteration** = one network call on the whole batch (all modalities), then each moving modality takes its own
process's :meth:`~diffuse_edu.process.Process.step` with its own output. As in :func:`diffuse_edu.samplers.sample`, the
step into a final grid time of 0 is the final denoise (:meth:`Process.denoise` from the output at the previous time),
so a grid of n steps costs n calls. With one modality and no guidance this loop is bit-identical to the
single-process sampler (tested).

**Network calls (NFE)**: K = max_m n_m without guidance (or with ω = 1). With
:class:`~diffuse_edu.guidance.NoisyGuidance` (ω ≠ 1, at least one given modality) every iteration in which some
moving modality's time t satisfies left < t < right makes a second call of the same batch size B (not one batched
call of 2B, so the strong call is bit-identical to the unguided one): NFE = K + (number of guided iterations).
:func:`count_nfe` predicts it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .guidance import NoisyGuidance, mix_outputs, renoise_generator
from .joint import JointProcess

__all__ = ["JointSampleState", "JointSample", "sample_joint_iter", "sample_joint", "joint_grids", "count_nfe"]

ALIGNS = ("start", "end")


@dataclass
class JointSampleState:
    """State after one iteration of :func:`sample_joint_iter`.

    Attributes:
        step: iterations done (1 after the first).
        xs: name → current state (B, ...), given modalities included (unchanged).
        ts: name → the time (float) of each state in ``xs`` (0 for given modalities).
        nfe: network calls so far.
        guided: whether this iteration used guidance (two calls).
    """

    step: int
    xs: dict[str, Tensor]
    ts: dict[str, float]
    nfe: int
    guided: bool


@dataclass
class JointSample:
    """Output of :func:`sample_joint`.

    Attributes:
        samples: name → final tensor (B, ...); given modalities are the given tensor objects themselves.
        nfe: number of network calls (each on a batch of B).
        trajectory: if requested, name → states for the prior draw and after every iteration (K + 1 dicts).
        grids: name → time grid used by each sampled modality, shape (n_m + 1,).
        guided_steps: number of iterations that used guidance.
    """

    samples: dict[str, Tensor]
    nfe: int
    trajectory: list[dict[str, Tensor]] | None
    grids: dict[str, Tensor]
    guided_steps: int = 0


def joint_grids(
    joint: JointProcess,
    names: Sequence[str],
    steps: int | Mapping[str, int] = 50,
    grids: Mapping[str, object] | None = None,
) -> dict[str, Tensor]:
    """Resolve each sampled modality's grid: ``grids[name]`` (``"uniform"``, ``"edm"`` or a tensor) else uniform.

    ``steps`` is one int for all modalities or name → int; a tensor grid fixes its own step count.
    """
    from .samplers import make_grid

    grids = dict(grids or {})
    joint._check_names(grids, "grids")
    if isinstance(steps, Mapping):
        joint._check_names(steps, "steps")
    out = {}
    for n in names:
        n_steps = steps.get(n, 50) if isinstance(steps, Mapping) else steps
        g = grids.get(n, "uniform")
        if not isinstance(g, Tensor) and (isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1):
            raise ValueError(f"steps for modality {n!r} must be a positive int; got {n_steps!r}.")
        out[n] = make_grid(g, n_steps if not isinstance(g, Tensor) else g.numel() - 1, joint[n].schedule)
    return out


def _local(k: int, offset: int, n: int) -> int:
    """Index into a modality's grid at global iteration k: clipped to [0, n]."""
    return min(max(k - offset, 0), n)


def count_nfe(
    grids: Mapping[str, Tensor], guidance: NoisyGuidance | None = None, has_given: bool = False, align: str = "start"
) -> int:
    """Network calls :func:`sample_joint` makes with these grids (see the module docstring)."""
    offsets, K = _offsets(grids, align)
    nfe = K
    if guidance is not None and guidance.enabled and has_given:
        for k in range(K):
            moving = [n for n, g in grids.items() if 0 <= k - offsets[n] < g.numel() - 1]
            nfe += any(guidance.active(grids[n][k - offsets[n]].item()) for n in moving)
    return nfe


def _offsets(grids: Mapping[str, Tensor], align: str) -> tuple[dict[str, int], int]:
    if align not in ALIGNS:
        raise ValueError(f"align must be one of {ALIGNS}; got {align!r}.")
    K = max(g.numel() - 1 for g in grids.values())
    return {n: (0 if align == "start" else K - (g.numel() - 1)) for n, g in grids.items()}, K


def sample_joint_iter(
    joint: JointProcess,
    net: Callable[[dict, dict], dict],
    batch: int | None = None,
    given: Mapping[str, Tensor] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    steps: int | Mapping[str, int] = 50,
    grids: Mapping[str, object] | None = None,
    guidance: NoisyGuidance | None = None,
    generator: torch.Generator | None = None,
    device=None,
    align: str = "start",
    denoise_last: bool = True,
    denoise_kwargs: Mapping[str, dict] | None = None,
) -> Iterator[JointSampleState]:
    """Run the joint reverse process, yielding a :class:`JointSampleState` for the prior draw (step 0), then after each
    iteration.

    Args:
        joint: the :class:`~diffuse_edu.joint.JointProcess`.
        net: joint network ``net(xs, ts) -> dict`` (xs: name → (B, ...), ts: name → (B,)).
        batch: B; may be omitted when ``given`` is non-empty (its batch size is used).
        given: name → clean tensor (B, ...) to condition on (held at t = 0, never modified).
        shapes: name → event shape of the sampled modalities; default ``joint.event_shapes``.
        steps, grids: per-modality step counts and grids (see :func:`joint_grids`).
        guidance: :class:`~diffuse_edu.guidance.NoisyGuidance`; needs at least one given modality when ω ≠ 1.
        generator: all sampling randomness (prior draws in name order, then each step's draws in name order).
        align: ``"start"`` or ``"end"`` (see the module docstring).
        denoise_last: make each step into t = 0 the final denoise (as the single-process sampler does).
        denoise_kwargs: name → extra keyword arguments of that process's ``denoise``, e.g. ``{"label": {"mode":
            "sample"}}`` to draw the last masked tokens instead of taking the argmax; ``generator`` is passed too
            when the process's ``denoise`` accepts it.
    """
    given = dict(given or {})
    if given:
        given = joint.validate(given, "given", complete=False)
    sampled = [n for n in joint.names if n not in given]
    if not sampled:
        raise ValueError("every modality is given; there is nothing to sample.")
    if given:
        b = next(iter(given.values())).shape[0]
        if batch is not None and batch != b:
            raise ValueError(f"batch={batch} but the given modalities have batch size {b}.")
        batch = b
        device = device if device is not None else next(iter(given.values())).device
        if shapes is not None:
            for n in given:
                if n in shapes and tuple(given[n].shape[1:]) != tuple(shapes[n]):
                    raise ValueError(
                        f"given[{n!r}] has shape {tuple(given[n].shape)}; expected (B, *{tuple(shapes[n])})."
                    )
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int (or pass given=...); got {batch!r}.")
    if guidance is not None and not isinstance(guidance, NoisyGuidance):
        raise TypeError(f"guidance must be a NoisyGuidance or None; got {type(guidance).__name__}.")
    use_guidance = guidance is not None and guidance.enabled
    if use_guidance and not given:
        raise ValueError("noisy guidance (omega != 1) needs at least one given modality to re-noise.")

    denoise_kwargs = dict(denoise_kwargs or {})
    joint._check_names(denoise_kwargs, "denoise_kwargs")
    extra = {}
    for n, kw in denoise_kwargs.items():
        extra[n] = dict(kw)
        if "generator" in inspect.signature(joint[n].denoise).parameters:
            extra[n].setdefault("generator", generator)
    grids_ = joint_grids(joint, sampled, steps, grids)
    offsets, K = _offsets(grids_, align)
    xs = dict(given)
    xs.update(joint.prior(shapes, batch, generator=generator, device=device, names=sampled))
    dtype = torch.get_default_dtype()
    zeros = torch.zeros(batch, dtype=dtype, device=device)
    g_renoise = renoise_generator(guidance, generator) if use_guidance else None
    sigma = torch.full((batch,), guidance.sigma, dtype=dtype, device=device) if use_guidance else None
    nfe = 0

    def times_at(k: int) -> dict[str, float]:
        return {
            n: (0.0 if n in given else grids_[n][_local(k, offsets[n], grids_[n].numel() - 1)].item())
            for n in joint.names
        }

    yield JointSampleState(step=0, xs=dict(xs), ts=times_at(0), nfe=0, guided=False)
    for k in range(K):
        t_now = times_at(k)
        ts = {
            n: (zeros if n in given else torch.full((batch,), t_now[n], dtype=dtype, device=device))
            for n in joint.names
        }
        moving = [n for n in sampled if 0 <= k - offsets[n] < grids_[n].numel() - 1]
        out = dict(net(dict(xs), ts))
        nfe += 1
        guided = [n for n in moving if use_guidance and guidance.active(t_now[n])]
        if guided:
            # The weak call: every given modality re-noised to time σ (fresh draws each call, own generator).
            xs_weak, ts_weak = dict(xs), dict(ts)
            for n in given:
                xs_weak[n] = joint[n].corrupt(given[n], sigma, g_renoise)
                ts_weak[n] = sigma
            weak = net(xs_weak, ts_weak)
            nfe += 1
            for n in guided:
                out[n] = mix_outputs(joint[n], out[n], weak[n], guidance.omega)
        for n in moving:
            j = k - offsets[n]
            s = grids_[n][j + 1].item()
            tb = ts[n]
            if j == grids_[n].numel() - 2 and s == 0.0 and denoise_last:
                xs[n] = joint[n].denoise(xs[n], tb, out[n], **extra.get(n, {}))
            else:
                xs[n] = joint[n].step(xs[n], tb, torch.full_like(tb, s), out[n], generator)
        yield JointSampleState(step=k + 1, xs=dict(xs), ts=times_at(k + 1), nfe=nfe, guided=bool(guided))


@torch.no_grad()
def sample_joint(
    joint: JointProcess,
    net: Callable[[dict, dict], dict],
    batch: int | None = None,
    given: Mapping[str, Tensor] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    steps: int | Mapping[str, int] = 50,
    grids: Mapping[str, object] | None = None,
    guidance: NoisyGuidance | None = None,
    generator: torch.Generator | None = None,
    device=None,
    align: str = "start",
    denoise_last: bool = True,
    denoise_kwargs: Mapping[str, dict] | None = None,
    return_trajectory: bool = False,
    progress: bool = False,
) -> JointSample:
    """Sample with :func:`sample_joint_iter` (same arguments) and return a :class:`JointSample`.

    NFE = max_m n_m, plus one per guided iteration (:func:`count_nfe`). ``progress`` shows a tqdm bar.

    Example: point→label with a model over ``{"point", "label"}``:
    ``sample_joint(joint, net, given={"point": pts}, steps=1)``.
    """
    it = sample_joint_iter(
        joint,
        net,
        batch=batch,
        given=given,
        shapes=shapes,
        steps=steps,
        grids=grids,
        guidance=guidance,
        generator=generator,
        device=device,
        align=align,
        denoise_last=denoise_last,
        denoise_kwargs=denoise_kwargs,
    )
    traj: list[dict[str, Tensor]] | None = [] if return_trajectory else None
    state = None
    guided_steps = 0
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="sampling", leave=False)
    for state in it:
        guided_steps += state.guided
        if traj is not None:
            traj.append(state.xs)
    given_ = dict(given or {})
    samples = dict(state.xs)
    for n in given_:
        samples[n] = given_[n]  # the very same objects
    sampled = [n for n in joint.names if n not in given_]
    return JointSample(
        samples=samples,
        nfe=state.nfe,
        trajectory=traj,
        grids=joint_grids(joint, sampled, steps, grids),
        guided_steps=guided_steps,
    )
