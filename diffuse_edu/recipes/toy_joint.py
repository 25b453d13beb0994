"""The decoupled-clock experiment (notebook 03, ``benchmarks/bench_decoupled.py``): a (point, label) joint model.

Notebook 03 and its benchmark call these functions, so both measure exactly the same thing.

* :func:`make_toy` — the :class:`~diffuse_edu.data.labeled_mixture.LabeledMixture` and the joint process
  (VP Gaussian point with Euler–Maruyama steps, masked label).
* :func:`train_toy` — one :class:`~diffuse_edu.nets.joint_mlp.JointMLP` trained with one training clock
  (:mod:`diffuse_edu.clocks`) on fresh draws from the mixture (infinite data, so the comparison is about the clocks,
  not overfitting); cached by configuration.
* :func:`evaluate_point_to_label`, :func:`evaluate_label_to_point`, :func:`evaluate_joint` — draw with the joint
  sampler, score with :mod:`diffuse_edu.metrics.joint` against the mixture's exact answers; :func:`evaluate_toy`
  runs them all.
* :func:`ablation` — decoupled vs unified vs axis-mixture vs two separately trained conditional models, at equal
  compute (the same number of gradient steps × batch in total), each evaluated on the three tasks.
* :func:`guidance_sweep` — label → point with noisy guidance over ω, σ and the interval.

**Devices.** Training runs on ``device`` (default: :func:`~diffuse_edu.config.get_device`); sampling and evaluation
build their tensors on the network's device (read from its parameters) unless ``device=`` says otherwise, and every
generator is a CPU generator, so the draws are the same on any device.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..clocks import AxisMixture, Clock, Decoupled, Grouped, Unified
from ..config import get_device
from ..data.labeled_mixture import LabeledMixture, default_labeled_mixture
from ..gaussian import GaussianProcess
from ..guidance import NoisyGuidance
from ..joint import JointProcess
from ..masked import MaskedProcess
from ..metrics.joint import (
    JointSampleQuality,
    LabelToPoint,
    PointToLabel,
    label_tv_floor,
    score_joint,
    score_label_to_point,
    score_point_to_label,
)
from ..nets.joint_mlp import JointMLP
from ..sampling import model_device, sample_joint
from ..train import train
from ._cache import load_trained, save_trained

__all__ = [
    "ToyModel",
    "make_toy",
    "clock_name",
    "train_toy",
    "evaluate_point_to_label",
    "evaluate_label_to_point",
    "evaluate_joint",
    "evaluate_toy",
    "ablation",
    "guidance_sweep",
    "markdown_table",
]

Toy = tuple[LabeledMixture, JointProcess]


def make_toy(step_method: str = "euler-maruyama") -> Toy:
    """The labelled mixture and its joint process ``{"point": GaussianProcess, "label": MaskedProcess(K)}``.

    Euler–Maruyama is the default point step: with the exact denoiser and 50 uniform steps it reproduces the
    conditionals' spread, whereas the DDPM step with x̂₀ plugged in is visibly too narrow at that step count.
    """
    mix = default_labeled_mixture()
    joint = JointProcess(
        {"point": GaussianProcess(step_method=step_method), "label": MaskedProcess(mix.num_classes)},
        event_shapes={"point": (mix.dim,), "label": (1,)},
    )
    return mix, joint


def clock_name(clock: Clock) -> str:
    """A short name for tables: ``"decoupled"``, ``"unified"``, ``"axis-mixture"``, ``"grouped"`` (+ the clean ones)."""
    names = {Decoupled: "decoupled", Unified: "unified", AxisMixture: "axis-mixture", Grouped: "grouped"}
    base = names.get(type(clock), type(clock).__name__)
    return f"{'+'.join(clock.clean)} clean" if clock.clean else base


@dataclass
class ToyModel:
    """A trained toy model.

    Attributes:
        name: a label for tables.
        net: the EMA network (eval mode), ``net(xs, ts) -> dict``.
        losses: training loss per step.
        seconds: training wall-clock time (of the run that trained it, also when loaded from the cache).
        steps, batch_size: training budget (gradient steps × batch).
        clock: the training clock (``Decoupled(clean=("label",))`` = a label → point model).
        loaded: whether it came from the cache.
    """

    name: str
    net: nn.Module
    losses: list[float] = field(repr=False)
    seconds: float
    steps: int
    batch_size: int
    clock: Clock
    loaded: bool = False


def _toy_config(toy: Toy, clock: Clock, steps, batch_size, lr, seed, net_kwargs) -> dict:
    mix, joint = toy
    return dict(
        version=1,
        mixture=dict(means=mix.means.tolist(), covs=mix.covs.tolist(), weights=mix.weights.tolist()),
        joint=repr(joint),
        clock=repr(clock),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        net=dict(net_kwargs or {}),
    )


def train_toy(
    clock: Clock | None = None,
    *,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
    name: str | None = None,
    net_kwargs: dict | None = None,
    progress: bool = True,
    device=None,
    toy: Toy | None = None,
    cache: bool = True,
    cache_root=None,
) -> ToyModel:
    """Train a :class:`JointMLP` on the toy with one training clock (default :class:`~diffuse_edu.clocks.Decoupled`).

    AdamW at ``lr`` with ``min(100, steps // 10)`` warmup steps and cosine decay to ``lr/20``, EMA 0.995; data drawn
    fresh every step from a generator seeded with ``seed + 1``, times and noise from one seeded ``seed + 2``, model
    initialised with ``seed``.

    Args:
        clock: e.g. ``Unified()``, ``AxisMixture(prob=0.5)``, ``Decoupled(clean=("label",))`` (label → point only).
        toy: ``(mixture, joint)`` (default :func:`make_toy`), e.g. a joint process with other loss weights.
        cache: load the model from the cache if this exact configuration was trained before, and save it after
            training (``<cache root>/toy_joint/<hash>``); ``cache_root`` overrides the root.
        device: where to train (default :func:`~diffuse_edu.config.get_device`); a cached model is loaded there.
    """
    clock = Decoupled() if clock is None else clock
    if not isinstance(clock, Clock):
        raise TypeError(f"clock must be a diffuse_edu.clocks.Clock such as Decoupled() or Unified(); got {clock!r}.")
    toy = toy if toy is not None else make_toy()
    mix, joint = toy
    name = name or clock_name(clock)
    config = _toy_config(toy, clock, steps, batch_size, lr, seed, net_kwargs)
    if cache:
        hit = load_trained("toy_joint", config, root=cache_root, device=device or get_device())
        if hit is not None:
            net, info = hit
            return ToyModel(name, net, info["losses"], info["seconds"], steps, batch_size, clock, loaded=True)
    with torch.random.fork_rng(devices=[]):  # initialising the network does not move the caller's global stream
        torch.manual_seed(seed)
        net = JointMLP(continuous={"point": mix.dim}, discrete={"label": (1, mix.num_classes)}, **(net_kwargs or {}))
    g_data, g_loss = torch.Generator().manual_seed(seed + 1), torch.Generator().manual_seed(seed + 2)
    res = train(
        net,
        joint.loss_fn(clock, generator=g_loss),
        lambda: mix.sample_dict(batch_size, g_data),
        steps=steps,
        lr=lr,
        warmup=min(100, steps // 10),
        lr_decay="cosine",
        min_lr=lr / 20,
        ema_decay=0.995,
        progress=progress,
        device=device,
    )
    if cache:
        info = dict(losses=res.losses, seconds=res.seconds)
        save_trained("toy_joint", config, res.model, res.ema_model, info, root=cache_root)
    return ToyModel(name, res.ema_model.eval(), res.losses, res.seconds, steps, batch_size, clock)


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation: draw with the joint sampler, score with diffuse_edu.metrics.joint
# ---------------------------------------------------------------------------------------------------------------------


def _gen(generator: torch.Generator | None, offset: int) -> torch.Generator | None:
    """A generator for evaluation data, seeded apart from the sampler's (so data and sampling noise never share)."""
    if generator is None:
        return None
    return torch.Generator().manual_seed((generator.initial_seed() * 7919 + offset) % 2**63)


def evaluate_point_to_label(
    joint: JointProcess,
    net,
    mixture: LabeledMixture,
    n: int = 10_000,
    steps: int = 5,
    generator: torch.Generator | None = None,
    guidance: NoisyGuidance | None = None,
    device=None,
    point: str = "point",
    label: str = "label",
) -> PointToLabel:
    """Condition on ``n`` true-joint points: classify (1 call, argmax) and sample (``steps`` calls, final draw).

    A single token needs few steps: with an exact denoiser, revealing it at any time gives an exact posterior draw.
    """
    device = torch.device(device) if device is not None else model_device(net)
    points, true = mixture.sample(n, _gen(generator, 1))
    given = {point: points.to(device)}
    # Classification: one call at label time 1 (every label masked), then the argmax — the model's Bayes classifier.
    cls = sample_joint(joint, net, given=given, steps=1, generator=generator, device=device)
    smp = sample_joint(
        joint, net, given=given, steps=steps, generator=generator, guidance=guidance, device=device,
        final={label: "sample"},
    )  # fmt: skip
    return score_point_to_label(
        cls.samples[label],
        smp.samples[label],
        true,
        mixture.bayes_label(points),
        bayes_accuracy=mixture.bayes_accuracy(),
        posterior_sampling_accuracy=mixture.posterior_sampling_accuracy(),
        nfe=smp.nfe,
    )


def evaluate_label_to_point(
    joint: JointProcess,
    net,
    mixture: LabeledMixture,
    n_per_label: int = 1000,
    steps: int = 50,
    generator: torch.Generator | None = None,
    guidance: NoisyGuidance | None = None,
    device=None,
    point: str = "point",
    label: str = "label",
    n_projections: int = 128,
) -> LabelToPoint:
    """Condition on ``n_per_label`` copies of every label; compare the points with the exact conditionals."""
    device = torch.device(device) if device is not None else model_device(net)
    k = mixture.num_classes
    labels = torch.arange(k).repeat_interleave(n_per_label)
    res = sample_joint(
        joint, net, given={label: labels[:, None].to(device)}, steps=steps, generator=generator, guidance=guidance,
        device=device,
    )  # fmt: skip
    pts = res.samples[point].cpu()
    g_data, g_proj = _gen(generator, 2), _gen(generator, 3)
    references = {}
    for y in range(k):
        cond = mixture.conditional(y)
        references[y] = (cond.sample(n_per_label, g_data), cond.sample(n_per_label, g_data))
    return score_label_to_point(
        pts,
        labels,
        mixture.bayes_label(pts),
        references,
        exact_region_share=mixture.exact_region_shares().mean().item(),
        n_projections=n_projections,
        generator=g_proj,
        nfe=res.nfe,
    )


def evaluate_joint(
    joint: JointProcess,
    net,
    mixture: LabeledMixture,
    n: int = 8000,
    steps: int | dict = 50,
    generator: torch.Generator | None = None,
    device=None,
    point: str = "point",
    label: str = "label",
    n_projections: int = 128,
) -> JointSampleQuality:
    """Sample ``n`` (point, label) pairs unconditionally; label-marginal TV, coherence, point distance to the data."""
    res = sample_joint(joint, net, n, steps=steps, generator=generator, device=device)
    pts, labs = res.samples[point].cpu(), res.samples[label].reshape(-1).cpu()
    g_data, g_proj = _gen(generator, 4), _gen(generator, 5)
    data, data2 = mixture.sample(n, g_data)[0], mixture.sample(n, g_data)[0]
    floor = label_tv_floor(mixture.weights, n, generator=g_data)[0]
    return score_joint(
        pts,
        labs,
        mixture.bayes_label(pts),
        data,
        data2,
        mixture.weights,
        label_tv_floor=floor,
        bayes_accuracy=mixture.bayes_accuracy(),
        n_projections=n_projections,
        generator=g_proj,
        nfe=res.nfe,
    )


TASKS = ("point->label", "label->point", "joint")


def evaluate_toy(
    net,
    toy: Toy,
    tasks: Sequence[str] = TASKS,
    n_classify: int = 10_000,
    n_per_label: int = 1000,
    n_joint: int = 8000,
    steps: int = 50,
    label_steps: int = 5,
    seed: int = 0,
    device=None,
) -> dict:
    """All toy metrics of one network as a flat dict (NaN for the tasks not in ``tasks``).

    ``steps``: sampler steps for label→point and joint sampling; ``label_steps``: for drawing labels given points.
    Tensors are built on ``device`` (default: the network's).
    """
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"tasks must be among {TASKS}; got {unknown}.")
    mix, joint = toy
    nan = float("nan")
    row = dict(
        classify_acc=nan,
        bayes_acc=mix.bayes_accuracy(),
        bayes_acc_same_points=nan,
        sampled_label_acc=nan,
        posterior_sampling_acc=mix.posterior_sampling_accuracy(),
        region_share=nan,
        exact_region_share=mix.exact_region_share(),
        cond_sw=nan,
        cond_sw_floor=nan,
        spread=nan,
        label_tv=nan,
        label_tv_floor=nan,
        coherence=nan,
        point_sw=nan,
        point_sw_floor=nan,
    )
    g = lambda k: torch.Generator().manual_seed(seed * 1000 + k)
    if "point->label" in tasks:
        r = evaluate_point_to_label(joint, net, mix, n=n_classify, steps=label_steps, generator=g(1), device=device)
        row.update(
            classify_acc=r.classify_accuracy,
            bayes_acc_same_points=r.bayes_accuracy_same_points,
            sampled_label_acc=r.sampled_accuracy,
        )
    if "label->point" in tasks:
        r = evaluate_label_to_point(
            joint, net, mix, n_per_label=n_per_label, steps=steps, generator=g(2), device=device
        )
        row.update(region_share=r.region_share, cond_sw=r.sw, cond_sw_floor=r.sw_floor, spread=r.spread)
    if "joint" in tasks:
        r = evaluate_joint(joint, net, mix, n=n_joint, steps=steps, generator=g(3), device=device)
        row.update(
            label_tv=r.label_tv,
            label_tv_floor=r.label_tv_floor,
            coherence=r.coherence,
            point_sw=r.point_sw,
            point_sw_floor=r.point_sw_floor,
        )
    return row


# ---------------------------------------------------------------------------------------------------------------------
# The ablation and the guidance sweep
# ---------------------------------------------------------------------------------------------------------------------

#: The clocks of the ablation's joint models, by row name.
ABLATION_CLOCKS = {"decoupled": Decoupled(), "unified": Unified(), "axis-mixture": AxisMixture(prob=0.5)}
SEPARATE = {"separate: label→point": ("label",), "separate: point→label": ("point",)}


def ablation(
    steps: int = 2000,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = True,
    device=None,
    eval_kwargs: dict | None = None,
    include_oracle: bool = True,
    reuse: dict[str, ToyModel] | None = None,
    evaluated: dict[str, dict] | None = None,
    cache: bool = True,
    cache_root=None,
) -> tuple[list[dict], dict[str, ToyModel]]:
    """Decoupled vs unified vs axis-mixture vs two separate conditional models, at equal compute.

    The three joint models train ``steps`` steps each (clocks :data:`ABLATION_CLOCKS`); the separate baseline trains
    a label→point model (label always clean) and a point→label model (point always clean) for ``steps // 2`` steps
    each, so every row costs the same ``steps × batch_size`` examples. The oracle row (the exact joint denoiser
    through the same samplers) is the floor.

    Args:
        reuse: already-trained models by name (e.g. ``{"decoupled": model}``) with the same budget, not retrained.
        evaluated: rows of :func:`evaluate_toy` already computed for some of them (same ``eval_kwargs``), by name.
        cache, cache_root: as in :func:`train_toy`.
    Returns:
        (rows, models): one dict of metrics per row (see :func:`evaluate_toy`) with ``model``, ``train_s`` and
        ``examples`` keys, and the trained models by name.
    """
    toy = make_toy()
    mix, joint = toy
    ev = dict(eval_kwargs or {})
    models = dict(reuse or {})
    half = steps // 2
    budgets = {
        **{n: steps for n in ABLATION_CLOCKS},
        "separate: label→point": half,
        "separate: point→label": steps - half,
    }
    for name, m in models.items():
        if (m.steps, m.batch_size) != (budgets.get(name, steps), batch_size):
            raise ValueError(
                f"reused model {name!r} was trained for {m.steps} × {m.batch_size} examples; this "
                f"ablation gives it {budgets.get(name, steps)} × {batch_size}."
            )
    kw = dict(batch_size=batch_size, seed=seed, progress=progress, device=device, toy=toy, cache=cache,
              cache_root=cache_root)  # fmt: skip
    for name, clock in ABLATION_CLOCKS.items():
        if name not in models:
            models[name] = train_toy(clock, steps=steps, name=name, **kw)
    for name, clean in SEPARATE.items():
        if name not in models:
            models[name] = train_toy(Decoupled(clean=clean), steps=budgets[name], name=name, **kw)
    evaluated = dict(evaluated or {})
    rows = []
    for name in ABLATION_CLOCKS:
        m = models[name]
        metrics = evaluated[name] if name in evaluated else evaluate_toy(m.net, toy, seed=seed, device=device, **ev)
        rows.append(dict(model=name, train_s=m.seconds, examples=m.steps * m.batch_size, **metrics))
    lp, pl = models["separate: label→point"], models["separate: point→label"]
    sep = evaluate_toy(pl.net, toy, tasks=("point->label",), seed=seed, device=device, **ev)
    sep_l2p = evaluate_toy(lp.net, toy, tasks=("label->point",), seed=seed, device=device, **ev)
    for k in ("region_share", "cond_sw", "cond_sw_floor", "spread"):
        sep[k] = sep_l2p[k]
    examples = (lp.steps + pl.steps) * batch_size
    rows.append(dict(model="two separate models", train_s=lp.seconds + pl.seconds, examples=examples, **sep))
    if include_oracle:
        oracle = mix.exact_joint_model(joint["point"], mask_id=joint["label"].mask_id)
        metrics = evaluate_toy(oracle, toy, seed=seed, device=device, **ev)
        rows.append(dict(model="exact denoiser (floor)", train_s=0.0, examples=0, **metrics))
    return rows, models


def guidance_sweep(
    net,
    toy: Toy,
    omegas: Sequence[float] = (1.0, 1.5, 2.0, 3.0, 5.0),
    sigmas: Sequence[float] = (1.0, 0.5),
    intervals: Sequence[tuple[float, float]] = ((0.0, 1.0), (0.2, 0.8)),
    n_per_label: int = 250,
    steps: int = 50,
    seed: int = 0,
    progress: bool = False,
    device=None,
) -> list[dict]:
    """label → point with noisy guidance at every (ω, σ, interval): region share (accuracy) against spread (diversity).

    ω = 1 is unguided whatever σ and the interval, so it is run once. Every run uses the same sampler seed.
    """
    mix, joint = toy
    configs = [(1.0, 1.0, (0.0, 1.0))] + [(w, s, iv) for w in omegas if w != 1.0 for s in sigmas for iv in intervals]
    if progress:
        from tqdm.auto import tqdm

        configs = tqdm(configs, desc="guidance sweep", leave=False)
    rows = []
    for w, s, (lo, hi) in configs:
        guidance = NoisyGuidance(omega=w, sigma=s, left=lo, right=hi)
        start = time.perf_counter()
        r = evaluate_label_to_point(
            joint, net, mix, n_per_label=n_per_label, steps=steps, guidance=guidance,
            generator=torch.Generator().manual_seed(seed), device=device,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        rows.append(
            dict(omega=w, sigma=s, left=lo, right=hi, region_share=r.region_share, spread=r.spread, cond_sw=r.sw,
                 nfe=r.nfe, seconds=seconds)
        )  # fmt: skip
    return rows


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """A markdown table: ``columns`` = (key, header, format) e.g. ``("classify_acc", "p→l acc", ".4f")``."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---" if f == "s" else "---:" for _, _, f in columns) + "|"
    lines = [head, sep]
    for r in rows:
        cells = []
        for key, _, fmt in columns:
            v = r.get(key, float("nan"))
            cells.append("—" if isinstance(v, float) and math.isnan(v) else format(v, fmt))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
