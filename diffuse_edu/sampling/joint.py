r"""The one sampler: every modality on its own grid with its own step method, any per-example condition, guidance.

All samplers of the package run through :func:`sample_joint_iter` (the single-family ones in
:mod:`diffuse_edu.sampling.gaussian` and :mod:`diffuse_edu.sampling.discrete` are thin wrappers with one modality).

**Grids and alignment.** Each sampled modality m runs on its own decreasing grid of :math:`n_m + 1` times
(:mod:`diffuse_edu.grids`). With ``align="start"`` all grids start at iteration 0 and a modality with fewer steps
finishes early (it then stays clean at t = 0 while the others go on); with ``align="end"`` they all finish together
and a shorter grid waits at its first time. An iteration makes one network evaluation at every modality's current
time, then advances the modalities whose grid moves.

**Step methods per modality.** ``methods={"image": "ode-heun", "caption": "tau-leaping"}``: any method of that
modality's process (:attr:`~diffuse_edu.process.Process.step_methods`). Two-stage methods (Heun) take their Euler
predictor, the network is evaluated once more with those modalities at the predictor and their next time (every other
modality at its current state and time, as in the official code), then they are corrected; every one-stage modality
steps from the first evaluation. The last step of a modality into t = 0 — and always for a masked modality, which
must decode its remaining masks — is its *final denoise* (:meth:`~diffuse_edu.process.Process.denoise`, with the
mode from ``final``), unless ``denoise_last=False``.

**Conditioning by a given mask.** ``given={name: values}`` holds those values fixed. Without ``given_mask`` a given
modality is given for every example (held at t = 0 and never stepped). ``given_mask={name: bool tensor}`` of shape
(B,) — per example — or (B, *event_shape) — per element — selects what is given, so one batch can mix tasks: row 0
image → text, row 1 text → image, row 2 joint, row 3 half a caption. A row whose modality is given entirely sees
t = 0 and the clean value (a condition, as in training with decoupled clocks). In a row where only some elements are
given, the modality's clock runs, and the given elements are held at the current time with
:meth:`~diffuse_edu.process.Process.hold` — a fresh draw of q(x_t | x₀) for a Gaussian or uniform modality (the
replacement method of Song et al. 2021), the clean token for a masked one. Given entries are returned bit-identically.

**Noisy-condition guidance** (:class:`~diffuse_edu.guidance.NoisyGuidance`): in an iteration where some moving
modality's time lies strictly inside (left, right), every network evaluation is paired with a *weak* one in which each
fully given row is re-noised to time σ (:meth:`~diffuse_edu.process.Process.corrupt`, drawn from a side stream), and
the outputs mix as ω·strong + (1 − ω)·weak (:meth:`~diffuse_edu.process.Process.mix`). Heun's second evaluation in a
guided iteration is guided too (the official sampler decides once per iteration).

**Network calls (NFE)** with the official text–image setting — 50 steps on the official grid, Heun on the Gaussian
modality, tau-leaping on the masked one, ω ≠ 1 on (0.3, 0.8): 50 first evaluations + 49 Heun evaluations (none on
the final denoise) = 99, plus one weak call for each of the 2 × 25 evaluations in the 25 guided iterations: 149.
:func:`count_nfe` computes it for any plan.

**Cache.** With ``cache=True``, an evaluation is skipped (the previous outputs reused) when no modality changed since
the last one — possible only while every moving modality is categorical (MDLM's trick, Sahoo et al. 2024 §4.2). It
is exact for a network that ignores t, as the optimal masked denoiser does; for a time-conditioned network it reuses an
output from a slightly later time. Draws are consumed identically with or without it, so samples match bit-for-bit
when the skipped outputs equal the reused ones. Deciding needs one host–device synchronisation per step, so it is off
by default here (``sample_masked`` turns it on).

**Devices and randomness.** Everything is built on the network's device (read from its parameters) unless
``device=`` says otherwise; every draw comes from ``generator`` on its own device, so a CPU generator gives the same
samples on any device. Draw order: the prior of each sampled modality (name order), then per iteration the held
elements, then each moving modality's step (name order). Inputs are validated once here; the loop makes no
host–device synchronisation except the cache's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .._checks import (
    check_device,
    check_event_shape,
    check_generator,
    check_names,
    check_number,
    check_positive_int,
    has_values,
)
from .._random import derived_generator
from ..grids import make_grid
from ..guidance import NoisyGuidance
from ..joint import JointProcess

__all__ = ["ALIGNS", "SampleState", "SampleResult", "sample_joint_iter", "sample_joint", "count_nfe", "model_device"]

ALIGNS = ("start", "end")


@dataclass
class SampleState:
    """What the sampler yields: the prior draw (step 0), then the state after each iteration.

    Attributes:
        step: iterations done (0 for the prior draw).
        ts: name → the time of each modality's state (0.0 for given modalities).
        xs: name → state, shape (B, ...) (for a modality given in some rows, those rows hold the given values).
        nfe: network calls so far.
        guided: whether this iteration used guidance.
        outputs: name → the network's (mixed) outputs of this iteration's first evaluation, for the modalities that
            moved (empty for step 0), e.g. to look at x̂₀ along the way.
        before_final: name → share of tokens still masked just before a masked modality's final denoise (a 0-d
            tensor, only in the iteration that made it).
    """

    step: int
    ts: dict[str, float]
    xs: dict[str, Tensor]
    nfe: int
    guided: bool = False
    outputs: dict[str, Tensor] = field(default_factory=dict, repr=False)
    before_final: dict[str, Tensor] = field(default_factory=dict, repr=False)


@dataclass
class SampleResult:
    """What a sampler returns.

    Attributes:
        samples: the final samples — name → tensor (B, ...) for :func:`sample_joint`, one tensor for the
            single-family samplers. Given entries are returned bit-identically.
        nfe: number of network calls made.
        trajectory: the states from the prior to the end (a list of dicts for :func:`sample_joint`; a stacked
            tensor (steps + 1, B, ...) for :func:`~diffuse_edu.sampling.gaussian.sample`, a list of tensors for the
            discrete samplers), or None unless asked.
        grids: name → the times used, shape (n_m + 1,) (one tensor for the single-family samplers).
        guided_steps: iterations that used guidance.
        still_masked_before_final: for masked modalities, the share of tokens still masked just before the final
            denoise (name → float; a float for :func:`~diffuse_edu.sampling.discrete.sample_masked`).
    """

    samples: dict[str, Tensor] | Tensor
    nfe: int
    trajectory: list | Tensor | None = None
    grids: dict[str, Tensor] | Tensor | None = None
    guided_steps: int = 0
    still_masked_before_final: dict[str, float] | float = field(default_factory=dict)


def model_device(net, fallback=None) -> torch.device:
    """The device of ``net``'s first parameter or buffer; ``fallback`` (default CPU) if it has none."""
    for attr in ("parameters", "buffers"):
        fn = getattr(net, attr, None)
        if callable(fn):
            for p in fn():
                return p.device
    return torch.device(fallback) if fallback is not None else torch.device("cpu")


def _step_dtype(device: torch.device) -> torch.dtype:
    # Step math reads α(t) in float64 (reveal probabilities near 1e-5 need it); Apple's MPS has no float64.
    return torch.float32 if device.type == "mps" else torch.float64


# ---------------------------------------------------------------------------------------------------------------------
# The plan: validated once, at the door.
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    sampled: list[str]
    fully_given: list[str]
    grids: dict[str, Tensor]
    offsets: dict[str, int]
    iterations: int
    methods: dict[str, str]
    finals: dict[str, str]

    def local(self, n: str, k: int) -> int:
        """Index into modality n's grid at global iteration k, clipped to [0, n_steps]."""
        return min(max(k - self.offsets[n], 0), self.grids[n].numel() - 1)

    def moving(self, k: int) -> list[str]:
        return [n for n in self.sampled if 0 <= k - self.offsets[n] < self.grids[n].numel() - 1]

    def time(self, n: str, k: int) -> float:
        return 0.0 if n not in self.grids else self.grids[n][self.local(n, k)].item()


def _mapping(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a dict keyed by modality name (or None); got {type(value).__name__}.")
    return dict(value)


def _resolve_grids(joint, names, steps, grids, t_eps) -> dict[str, Tensor]:
    """Every modality's grid; entries for modalities that are not sampled are checked too (a typo is a typo)."""
    grids = _mapping(grids, "grids")
    joint._check_names(grids, "grids")
    if isinstance(steps, Mapping):
        joint._check_names(steps, "steps")
        for n, v in steps.items():
            check_positive_int(v, f"steps[{n!r}]")
    else:
        check_positive_int(steps, "steps")
    out = {}
    for n in dict.fromkeys([*names, *grids]):
        g = grids.get(n, "uniform")
        n_steps = steps.get(n, 50) if isinstance(steps, Mapping) else steps
        grid = make_grid(g, n_steps, joint[n].schedule, t_eps=t_eps)
        if n in names:
            out[n] = grid
    return out


def _make_plan(joint, sampled, fully_given, steps, grids, methods, final, align, t_eps) -> _Plan:
    if not any(align is a or (isinstance(align, str) and align == a) for a in ALIGNS):
        raise ValueError(f"align must be one of {ALIGNS}; got {align!r}.")
    t_eps = check_number(t_eps, "t_eps", 0.0, 1.0, strict_low=True, strict_high=True)
    grids_ = _resolve_grids(joint, sampled, steps, grids, t_eps)
    K = max(g.numel() - 1 for g in grids_.values())
    offsets = {n: (0 if align == "start" else K - (g.numel() - 1)) for n, g in grids_.items()}
    methods = _mapping(methods, "methods")
    joint._check_names(methods, "methods")
    final = _mapping(final, "final")
    joint._check_names(final, "final")
    methods = {n: joint[n].check_method(m) for n, m in methods.items()}
    final = {n: joint[n].check_denoise_mode(m) for n, m in final.items()}
    return _Plan(
        sampled=sampled,
        fully_given=fully_given,
        grids=grids_,
        offsets=offsets,
        iterations=K,
        methods={n: joint[n].check_method(methods.get(n)) for n in sampled},
        finals={n: joint[n].check_denoise_mode(final.get(n)) for n in sampled},
    )


def _is_final(joint, plan: _Plan, n: str, k: int, denoise_last: bool) -> bool:
    j = k - plan.offsets[n]
    last = j == plan.grids[n].numel() - 2
    return last and denoise_last and (plan.grids[n][-1].item() == 0.0 or joint[n].kind == "masked")


def _count(joint, plan: _Plan, guidance, can_guide: bool, denoise_last: bool) -> int:
    nfe = 0
    for k in range(plan.iterations):
        moving = plan.moving(k)
        guided = can_guide and any(guidance.active(plan.time(n, k)) for n in moving)
        two_stage = any(
            plan.methods[n] in joint[n].two_stage_methods and not _is_final(joint, plan, n, k, denoise_last)
            for n in moving
        )
        nfe += (1 + two_stage) * (1 + guided)
    return nfe


def count_nfe(
    joint: JointProcess,
    sampled: Sequence[str] | None = None,
    steps: int | Mapping[str, int] = 50,
    grids: Mapping[str, object] | None = None,
    methods: Mapping[str, str] | None = None,
    guidance: NoisyGuidance | None = None,
    has_condition: bool | None = None,
    align: str = "start",
    denoise_last: bool = True,
    t_eps: float = 1e-5,
) -> int:
    """Network calls :func:`sample_joint` makes for this plan (without the cache), computed without a network.

    Args:
        sampled: the modalities being sampled (default: all); the others count as given.
        has_condition: whether some row holds a given modality for guidance to re-noise (default: ``sampled`` is a
            strict subset).
        The rest as in :func:`sample_joint_iter`.
    """
    if not isinstance(joint, JointProcess):
        raise TypeError(f"joint must be a JointProcess; got {type(joint).__name__}.")
    if guidance is not None and not isinstance(guidance, NoisyGuidance):
        raise TypeError(f"guidance must be a NoisyGuidance or None; got {type(guidance).__name__}.")
    if sampled is not None:
        joint._check_names({n: None for n in check_names(sampled, "sampled", allow_empty=True)}, "sampled")
    names = list(joint.names) if sampled is None else [n for n in joint.names if n in sampled]
    if not names:
        raise ValueError("sampled is empty: there is nothing to sample.")
    fully_given = [n for n in joint.names if n not in names]
    plan = _make_plan(joint, names, fully_given, steps, grids, methods, None, align, t_eps)
    has_condition = bool(fully_given) if has_condition is None else has_condition
    can_guide = guidance is not None and guidance.enabled and has_condition
    return _count(joint, plan, guidance, can_guide, denoise_last)


def _check_given(joint, given, given_mask, batch, shapes):
    """Validate ``given``, ``given_mask`` and ``shapes``; return (given, masks (B, *event) bool, batch, shapes)."""
    given = _mapping(given, "given")
    if given:
        given = joint.validate(given, "given", complete=False)
    given_mask = _mapping(given_mask, "given_mask")
    joint._check_names(given_mask, "given_mask")
    stray = [n for n in given_mask if n not in given]
    if stray:
        raise ValueError(f"given_mask names modality(ies) {stray} with no values in given=; pass given[{stray[0]!r}].")
    if given:
        b = next(iter(given.values())).shape[0]
        if batch is not None and batch != b:
            raise ValueError(f"batch={batch} but the given modalities have batch size {b}.")
        batch = b
    if batch is None:
        raise ValueError("pass batch=B (or given=... from which the batch size is read).")
    check_positive_int(batch, "batch")
    if shapes is not None:
        joint._check_names(shapes, "shapes")
        shapes = {n: check_event_shape(v, f"shapes[{n!r}]") for n, v in shapes.items()}
        for n in given:
            if n in shapes and tuple(given[n].shape[1:]) != tuple(shapes[n]):
                raise ValueError(f"given[{n!r}] has shape {tuple(given[n].shape)}; expected (B, *{tuple(shapes[n])}).")
    masks = {}
    for n, m in given_mask.items():
        if not isinstance(m, Tensor) or m.dtype != torch.bool:
            raise TypeError(f"given_mask[{n!r}] must be a bool tensor; got {getattr(m, 'dtype', type(m).__name__)}.")
        shape = tuple(given[n].shape)
        if tuple(m.shape) == shape[:1]:
            m = m.reshape(shape[:1] + (1,) * (len(shape) - 1))
        try:
            m = m.expand(shape)
        except RuntimeError:
            raise ValueError(
                f"given_mask[{n!r}] has shape {tuple(m.shape)}; expected (B,) = {shape[:1]} (per example) or "
                f"{shape} (per element), or a shape broadcastable to it."
            ) from None
        masks[n] = m
    return given, masks, batch, shapes


# ---------------------------------------------------------------------------------------------------------------------
# The sampler
# ---------------------------------------------------------------------------------------------------------------------


class _JointRun:
    """One sampler call: everything validated and set up in ``__init__``, the loop in :meth:`iterate`."""

    @torch.no_grad()
    def __init__(
        self,
        joint,
        net,
        batch,
        *,
        given,
        given_mask,
        shapes,
        steps,
        grids,
        methods,
        final,
        guidance,
        generator,
        device,
        align,
        denoise_last,
        cache,
        init,
        t_eps,
    ):
        if not isinstance(joint, JointProcess):
            raise TypeError(f"joint must be a JointProcess; got {type(joint).__name__}.")
        given, masks, batch, shapes = _check_given(joint, given, given_mask, batch, shapes)
        if guidance is not None and not isinstance(guidance, NoisyGuidance):
            raise TypeError(f"guidance must be a NoisyGuidance or None; got {type(guidance).__name__}.")
        if not callable(net):
            raise TypeError(f"net must be callable as net(xs, ts) -> dict; got {type(net).__name__}.")
        check_generator(generator)
        device = check_device(device)
        self.joint, self.net, self.batch, self.generator = joint, net, batch, generator
        self.denoise_last, self.cache = bool(denoise_last), bool(cache)
        self.device = device = device if device is not None else model_device(net)

        # Which modalities are given everywhere, which are sampled (with which rows / elements held).
        fully_given = [n for n in given if n not in masks or (has_values(masks[n]) and bool(masks[n].all()))]
        for n in fully_given:
            masks.pop(n, None)
        sampled = [n for n in joint.names if n not in fully_given]
        if not sampled:
            raise ValueError("every modality is given everywhere; there is nothing to sample.")
        self.plan = _make_plan(joint, sampled, fully_given, steps, grids, methods, final, align, t_eps)
        self.given_in = given
        self.given = {n: g.to(device) for n, g in given.items()}
        self.masks = {n: m.to(device) for n, m in masks.items()}
        # Per-example view of the masks: rows where the modality is given entirely are conditions (t = 0).
        self.row_full = {n: m.flatten(1).all(1) for n, m in self.masks.items()}
        self.partial = {
            n: bool((m.flatten(1).any(1) & ~self.row_full[n]).any()) if has_values(m) else True
            for n, m in self.masks.items()
        }
        self.renoised = [
            n for n in joint.names
            if n in fully_given or (n in self.row_full and (not has_values(self.row_full[n]) or self.row_full[n].any()))
        ]  # fmt: skip
        self.guidance = guidance
        self.use_guidance = guidance is not None and guidance.enabled
        if self.use_guidance and not self.renoised:
            raise ValueError(
                "noisy guidance (omega != 1) needs a given modality to re-noise: pass given=... with at least one "
                "modality given entirely in some row."
            )
        self.g_side = None
        if self.use_guidance:
            self.g_side = guidance.generator if guidance.generator is not None else derived_generator(generator, "g")
        self.dtype = torch.get_default_dtype()
        self.sdt = _step_dtype(device)
        self.zeros = torch.zeros(batch, dtype=self.dtype, device=device)

        # The prior (or init) of every sampled modality, in name order; then the held entries put in place.
        init = _mapping(init, "init")
        joint._check_names(init, "init")
        if [n for n in init if n in fully_given]:
            raise ValueError(
                f"init names modality(ies) {[n for n in init if n in fully_given]} that are given everywhere; "
                "init is the starting state of a sampled modality."
            )
        xs: dict[str, Tensor] = {n: self.given[n] for n in fully_given}
        for n in sampled:
            if n in given:
                shape = tuple(given[n].shape[1:])
            elif shapes is not None and n in shapes:
                shape = shapes[n]
            elif joint.event_shapes is not None:
                shape = joint.event_shapes[n]
            elif n in init:
                shape = None  # init fixes the shape
            else:
                raise ValueError(f"pass shapes={{{n!r}: event_shape}} (or build the JointProcess with event_shapes).")
            if n in init:
                x = joint[n].validate_noisy(init[n], f"init[{n!r}]").to(device)
                want = (batch, *shape) if shape is not None else (batch, *x.shape[1:])
                if tuple(x.shape) != want:
                    raise ValueError(f"init[{n!r}] has shape {tuple(x.shape)}; expected {want}.")
                xs[n] = x
            else:
                xs[n] = joint[n].prior((batch, *shape), generator=generator, device=device)
        for n in self.masks:
            xs[n] = torch.where(self.masks[n], self.held(n, self.plan.time(n, 0)), xs[n])
        self.xs = {n: xs[n] for n in joint.names}
        self.nfe = 0
        self.checked = self.checked_weak = False

    # -- helpers ------------------------------------------------------------------------------------------------------

    def full(self, value: float, dtype=None) -> Tensor:
        return torch.full((self.batch,), value, dtype=dtype or self.dtype, device=self.device)

    def held(self, n: str, s: float) -> Tensor:
        """The values of modality n's given entries at time s (rows given entirely stay clean)."""
        g = self.given[n]
        if not self.partial[n]:
            return g
        h = self.joint[n].hold(g, self.full(s, self.sdt), self.generator)
        return torch.where(self.row_full[n].reshape((-1,) + (1,) * (g.ndim - 1)), g, h)

    def net_times(self, t_now: Mapping[str, float]) -> dict[str, Tensor]:
        ts = {}
        for n in self.joint.names:
            if n in self.plan.fully_given:
                ts[n] = self.zeros
            elif n in self.row_full:
                ts[n] = torch.where(self.row_full[n], self.zeros, self.full(t_now[n]))
            else:
                ts[n] = self.full(t_now[n])
        return ts

    def evaluate(self, xs_in: dict, ts_in: dict, guided: bool) -> dict:
        """One network evaluation (two calls when guided), outputs of the sampled modalities."""
        joint, sampled = self.joint, self.plan.sampled
        out = self.net(dict(xs_in), dict(ts_in))
        self.nfe += 1
        if not self.checked:
            joint.check_outputs(out, {n: xs_in[n] for n in sampled})
            self.checked = True
        out = {n: out[n] for n in sampled}
        if guided:
            sigma = self.guidance.sigma
            xs_w, ts_w = dict(xs_in), dict(ts_in)
            for n in self.renoised:
                y = joint[n]._corrupt(self.given[n], self.full(sigma, self.sdt), self.g_side)
                if n in self.plan.fully_given:
                    xs_w[n], ts_w[n] = y, self.full(sigma)
                else:
                    rows = self.row_full[n]
                    xs_w[n] = torch.where(rows.reshape((-1,) + (1,) * (y.ndim - 1)), y, xs_in[n])
                    ts_w[n] = torch.where(rows, self.full(sigma), ts_in[n])
            weak = self.net(xs_w, ts_w)
            self.nfe += 1
            if not self.checked_weak:
                # The weak call sees the condition re-noised: check its outputs too, once.
                joint.check_outputs(weak, {n: xs_in[n] for n in sampled}, "network output (guidance, weak call)")
                self.checked_weak = True
            out = {n: joint[n].mix(out[n], weak[n], self.guidance.omega) for n in sampled}
        return out

    # -- the loop -----------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def iterate(self) -> Iterator[SampleState]:
        joint, plan, xs, masks = self.joint, self.plan, self.xs, self.masks
        full, sdt = self.full, self.sdt
        yield SampleState(step=0, ts={n: plan.time(n, 0) for n in joint.names}, xs=dict(xs), nfe=0)
        cached, cached_guided, changed = None, None, True
        for k in range(plan.iterations):
            t_now = {n: plan.time(n, k) for n in joint.names}
            t_next = {n: plan.time(n, k + 1) for n in joint.names}
            moving = plan.moving(k)
            guided = self.use_guidance and any(self.guidance.active(t_now[n]) for n in moving)
            ts = self.net_times(t_now)
            discrete = all(joint[n].categorical for n in moving)
            if self.cache and discrete and not changed and cached is not None and cached_guided == guided:
                out = cached
            else:
                out = self.evaluate(xs, ts, guided)
                cached, cached_guided = out, guided
            finals = [n for n in moving if _is_final(joint, plan, n, k, self.denoise_last)]
            two_stage = [n for n in moving if plan.methods[n] in joint[n].two_stage_methods and n not in finals]
            hold_next = {n: self.held(n, t_next[n]) for n in moving if n in masks}
            new: dict[str, Tensor] = {}
            if two_stage:
                # Heun: predictors for the two-stage modalities, one more evaluation there, then the correction.
                xs_pred, ts_pred = dict(xs), dict(ts)
                for n in two_stage:
                    t, s = full(t_now[n], sdt), full(t_next[n], sdt)
                    x_pred = joint[n].predict(xs[n], t, s, out[n], plan.methods[n])
                    xs_pred[n] = torch.where(masks[n], hold_next[n], x_pred) if n in masks else x_pred
                    t_s = full(t_next[n])
                    ts_pred[n] = torch.where(self.row_full[n], self.zeros, t_s) if n in self.row_full else t_s
                out_s = self.evaluate(xs_pred, ts_pred, guided)
                for n in two_stage:
                    t, s = full(t_now[n], sdt), full(t_next[n], sdt)
                    new[n] = joint[n].correct(xs[n], xs_pred[n], t, s, out[n], out_s[n], plan.methods[n])
            before_final = {}
            for n in moving:
                if n in new:
                    continue
                proc, t = joint[n], full(t_now[n], sdt)
                if n in finals:
                    if proc.kind == "masked":
                        before_final[n] = (xs[n] == proc.mask_id).double().mean()
                    new[n] = proc._denoise(xs[n], t, out[n], self.generator, plan.finals[n])
                else:
                    new[n] = proc._step(xs[n], t, full(t_next[n], sdt), out[n], self.generator, plan.methods[n])
            changed = not self.cache
            for n, x in new.items():
                if n in masks:
                    x = torch.where(masks[n], self.given[n] if n in finals else hold_next[n], x)
                if not changed:
                    changed = not joint[n].categorical or not torch.equal(x, xs[n])
                xs[n] = x
            yield SampleState(
                step=k + 1, ts=t_next, xs=dict(xs), nfe=self.nfe, guided=guided,
                outputs={n: out[n] for n in moving}, before_final=before_final,
            )  # fmt: skip


def sample_joint_iter(
    joint: JointProcess,
    net: Callable[[dict, dict], dict],
    batch: int | None = None,
    *,
    given: Mapping[str, Tensor] | None = None,
    given_mask: Mapping[str, Tensor] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    steps: int | Mapping[str, int] = 50,
    grids: Mapping[str, object] | None = None,
    methods: Mapping[str, str] | None = None,
    final: Mapping[str, str] | None = None,
    guidance: NoisyGuidance | None = None,
    generator: torch.Generator | None = None,
    device=None,
    align: str = "start",
    denoise_last: bool = True,
    cache: bool = False,
    init: Mapping[str, Tensor] | None = None,
    t_eps: float = 1e-5,
) -> Iterator[SampleState]:
    """Run the joint reverse process (module docstring): a :class:`SampleState` for the prior draw, then one after
    each iteration. Arguments are validated when this is called, before the first state is drawn.

    Args:
        joint: the :class:`~diffuse_edu.joint.JointProcess`.
        net: joint network ``net(xs, ts) -> dict`` (xs: name → (B, ...), ts: name → (B,)).
        batch: B; may be omitted when ``given`` is non-empty.
        given: name → clean tensor (B, ...) to condition on.
        given_mask: name → bool tensor, (B,) per example or (B, *event_shape) per element: which given entries to
            hold (default: all of them).
        shapes: name → event shape of the sampled modalities; default ``joint.event_shapes``.
        steps: one int for every modality or name → int (ignored for tensor grids).
        grids: name → ``"uniform"`` (default), ``"edm"``, ``"official"`` or a tensor of times.
        methods: name → step method (default each process's ``step_method``).
        final: name → mode of the final denoise (Gaussian ``"mean"``; categorical ``"argmax"`` (default) or
            ``"sample"``).
        guidance: :class:`~diffuse_edu.guidance.NoisyGuidance`; with ω ≠ 1 some row must hold a fully given modality.
        generator: every draw (prior, steps, held elements; the guidance stream is derived from it).
        device: where to build tensors; default the network's device.
        align: ``"start"`` or ``"end"`` (module docstring).
        denoise_last: make each modality's last step its final denoise.
        cache: skip evaluations when nothing moved (module docstring).
        init: name → a state to start from at the grid's first time instead of a prior draw.
        t_eps: last positive time of ``"official"`` grids.
    """
    run = _JointRun(
        joint, net, batch, given=given, given_mask=given_mask, shapes=shapes, steps=steps, grids=grids,
        methods=methods, final=final, guidance=guidance, generator=generator, device=device, align=align,
        denoise_last=denoise_last, cache=cache, init=init, t_eps=t_eps,
    )  # fmt: skip
    return run.iterate()


def sample_joint(
    joint: JointProcess,
    net: Callable[[dict, dict], dict],
    batch: int | None = None,
    *,
    given: Mapping[str, Tensor] | None = None,
    given_mask: Mapping[str, Tensor] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    steps: int | Mapping[str, int] = 50,
    grids: Mapping[str, object] | None = None,
    methods: Mapping[str, str] | None = None,
    final: Mapping[str, str] | None = None,
    guidance: NoisyGuidance | None = None,
    generator: torch.Generator | None = None,
    device=None,
    align: str = "start",
    denoise_last: bool = True,
    cache: bool = False,
    init: Mapping[str, Tensor] | None = None,
    t_eps: float = 1e-5,
    return_trajectory: bool = False,
    progress: bool = False,
) -> SampleResult:
    """Sample with :func:`sample_joint_iter` (same arguments) and return a :class:`SampleResult`.

    NFE: see :func:`count_nfe`. ``return_trajectory`` keeps every state; ``progress`` shows a tqdm bar.

    Examples:
        point → label with a model over ``{"point", "label"}``::

            sample_joint(joint, net, given={"point": pts}, steps=1)

        a mixed batch — rows 0–9 sample both, rows 10–19 take the label as given::

            mask = torch.arange(20) >= 10
            sample_joint(joint, net, given={"label": labels}, given_mask={"label": mask})

    Args:
        joint: the :class:`~diffuse_edu.joint.JointProcess`.
        net: joint network ``net(xs, ts) -> dict`` (xs: name → (B, ...), ts: name → (B,)).
        batch: B; may be omitted when ``given`` is non-empty.
        given: name → clean tensor (B, ...) to condition on.
        given_mask: name → bool tensor, (B,) per example or (B, *event_shape) per element: which given entries to
            hold (default: all of them).
        shapes: name → event shape of the sampled modalities; default ``joint.event_shapes``.
        steps: one int for every modality or name → int (ignored for tensor grids).
        grids: name → ``"uniform"`` (default), ``"edm"``, ``"official"`` or a tensor of times.
        methods: name → step method (default each process's ``step_method``).
        final: name → mode of the final denoise (Gaussian ``"mean"``; categorical ``"argmax"`` (default) or
            ``"sample"``).
        guidance: :class:`~diffuse_edu.guidance.NoisyGuidance`; with ω ≠ 1 some row must hold a fully given modality.
        generator: every draw (prior, steps, held elements; the guidance stream is derived from it).
        device: where to build tensors; default the network's device.
        align: ``"start"`` or ``"end"`` (module docstring).
        denoise_last: make each modality's last step its final denoise.
        cache: skip evaluations when nothing moved (module docstring).
        init: name → a state to start from at the grid's first time instead of a prior draw.
        t_eps: last positive time of ``"official"`` grids.
        return_trajectory: keep every state in ``result.trajectory``.
        progress: show a tqdm bar.
    """
    run = _JointRun(
        joint, net, batch, given=given, given_mask=given_mask, shapes=shapes, steps=steps, grids=grids,
        methods=methods, final=final, guidance=guidance, generator=generator, device=device, align=align,
        denoise_last=denoise_last, cache=cache, init=init, t_eps=t_eps,
    )  # fmt: skip
    it = run.iterate()
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=run.plan.iterations + 1, desc="sampling", leave=False)
    traj: list[dict[str, Tensor]] | None = [] if return_trajectory else None
    state, guided_steps, before_final = None, 0, {}
    for state in it:
        guided_steps += state.guided
        before_final.update(state.before_final)
        if traj is not None:
            traj.append(state.xs)
    samples = dict(state.xs)
    for n in run.plan.fully_given:
        if run.given_in[n].device == run.device:
            samples[n] = run.given_in[n]  # the very same object
    return SampleResult(
        samples=samples,
        nfe=state.nfe,
        trajectory=traj,
        grids=dict(run.plan.grids),
        guided_steps=guided_steps,
        still_masked_before_final={n: float(v) if has_values(v) else float("nan") for n, v in before_final.items()},
    )
