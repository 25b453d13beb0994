"""The notebook-3 experiment in functions: a (point, label) joint model, its training clocks and their ablation.

Notebook 03 and ``benchmarks/bench_decoupled.py`` call these, so both measure exactly the same thing.

* :func:`make_toy` — the :class:`~diffuse_edu.data.labeled_mixture.LabeledMixture` and the joint process
  (VP Gaussian point with Euler–Maruyama steps, masked label).
* :func:`train_toy` — one :class:`~diffuse_edu.nets.joint_mlp.JointMLP` trained with a given clock mode on fresh
  draws from the mixture (infinite data, so the comparison is about the clocks, not overfitting).
* :func:`ablation` — decoupled vs unified vs axis-mixture vs two separately trained conditional models, at equal
  compute (the same number of gradient steps × batch in total), each evaluated on the three tasks.
* :func:`guidance_sweep` — label → point with noisy guidance over ω, σ and the interval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .data.labeled_mixture import LabeledMixture, default_labeled_mixture
from .gaussian import GaussianProcess
from .guidance import NoisyGuidance
from .joint import JointProcess
from .masked import MaskedProcess
from .metrics.joint import evaluate_joint, evaluate_label_to_point, evaluate_point_to_label
from .nets.joint_mlp import JointMLP
from .train import train

__all__ = ["ToyModel", "make_toy", "train_toy", "evaluate_toy", "ablation", "guidance_sweep", "markdown_table"]


def make_toy(step_method: str = "euler-maruyama") -> tuple[LabeledMixture, JointProcess]:
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


@dataclass
class ToyModel:
    """A trained toy model.

    Attributes:
        name: a label for tables.
        net: the EMA network (eval mode), ``net(xs, ts) -> dict``.
        losses: training loss per step.
        seconds: training wall-clock time.
        steps, batch_size: training budget (gradient steps × batch).
        mode, clean: the clock mode and the modalities held clean (``("label",)`` = a label→point model).
    """

    name: str
    net: nn.Module
    losses: list[float] = field(repr=False)
    seconds: float
    steps: int
    batch_size: int
    mode: str
    clean: tuple[str, ...] = ()


def train_toy(
    mode: str = "decoupled",
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
    clean: Sequence[str] = (),
    axis_prob: float = 0.5,
    axis_base: str = "unified",
    name: str | None = None,
    net_kwargs: dict | None = None,
    progress: bool = True,
    device=None,
    toy: tuple[LabeledMixture, JointProcess] | None = None,
) -> ToyModel:
    """Train a :class:`JointMLP` on the toy with one clock mode (see :meth:`JointProcess.sample_times`).

    AdamW at ``lr`` with 100 warmup steps and cosine decay to ``lr/20``, EMA 0.995; data drawn fresh every step from a
    generator seeded with ``seed + 1``, model initialised with ``seed``.
    """
    mix, joint = toy if toy is not None else make_toy()
    torch.manual_seed(seed)
    net = JointMLP(continuous={"point": mix.dim}, discrete={"label": (1, mix.num_classes)}, **(net_kwargs or {}))
    g_data, g_loss = torch.Generator().manual_seed(seed + 1), torch.Generator().manual_seed(seed + 2)
    loss_fn = joint.loss_fn(
        mode,
        generator=g_loss,
        clean=tuple(clean),
        **({"axis_prob": axis_prob, "axis_base": axis_base} if mode == "axis-mixture" else {}),
    )
    res = train(
        net,
        loss_fn,
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
    default = mode if not clean else f"{'+'.join(clean)} clean"
    return ToyModel(
        name=name or default,
        net=res.ema_model.eval(),
        losses=res.losses,
        seconds=res.seconds,
        steps=steps,
        batch_size=batch_size,
        mode=mode,
        clean=tuple(clean),
    )


def evaluate_toy(
    net,
    toy: tuple[LabeledMixture, JointProcess],
    tasks: Sequence[str] = ("point->label", "label->point", "joint"),
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
    """
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
    g = lambda k: torch.Generator().manual_seed(seed * 1000 + k)  # noqa: E731
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
) -> tuple[list[dict], dict[str, ToyModel]]:
    """Decoupled vs unified vs axis-mixture vs two separate conditional models, at equal compute.

    The three joint models train ``steps`` steps each; the separate baseline trains a label→point model (label always
    clean) and a point→label model (point always clean) for ``steps // 2`` steps each, so every row costs the same
    ``steps × batch_size`` examples. The oracle row (the exact joint denoiser through the same samplers) is the floor.

    Args:
        reuse: already-trained models by name (e.g. ``{"decoupled": model}``) with the same budget, not retrained.
        evaluated: rows of :func:`evaluate_toy` already computed for some of them (same ``eval_kwargs``), by name.
    Returns:
        (rows, models): one dict of metrics per row (see :func:`evaluate_toy`) with ``model``, ``train_s`` and
        ``examples`` keys, and the trained models by name.
    """
    toy = make_toy()
    mix, joint = toy
    ev = dict(eval_kwargs or {})
    models = dict(reuse or {})
    for name, m in models.items():
        budget = steps if not m.clean else (steps // 2 if "label" in m.clean else steps - steps // 2)
        if (m.steps, m.batch_size) != (budget, batch_size):
            raise ValueError(
                f"reused model {name!r} was trained for {m.steps} × {m.batch_size} examples; this "
                f"ablation gives it {budget} × {batch_size}."
            )
    for mode in ("decoupled", "unified", "axis-mixture"):
        if mode in models:
            continue
        models[mode] = train_toy(
            mode, steps=steps, batch_size=batch_size, seed=seed, progress=progress, device=device, toy=toy
        )
    half = steps // 2
    if "separate: label→point" not in models:
        models["separate: label→point"] = train_toy(
            "decoupled",
            steps=half,
            batch_size=batch_size,
            seed=seed,
            clean=("label",),
            progress=progress,
            device=device,
            toy=toy,
            name="separate: label→point",
        )
    if "separate: point→label" not in models:
        models["separate: point→label"] = train_toy(
            "decoupled",
            steps=steps - half,
            batch_size=batch_size,
            seed=seed,
            clean=("point",),
            progress=progress,
            device=device,
            toy=toy,
            name="separate: point→label",
        )
    evaluated = dict(evaluated or {})
    rows = []
    for mode in ("decoupled", "unified", "axis-mixture"):
        m = models[mode]
        metrics = evaluated[mode] if mode in evaluated else evaluate_toy(m.net, toy, seed=seed, device=device, **ev)
        rows.append(dict(model=mode, train_s=m.seconds, examples=m.steps * m.batch_size, **metrics))
    lp, pl = models["separate: label→point"], models["separate: point→label"]
    sep = evaluate_toy(pl.net, toy, tasks=("point->label",), seed=seed, device=device, **ev)
    sep_l2p = evaluate_toy(lp.net, toy, tasks=("label->point",), seed=seed, device=device, **ev)
    for k in ("region_share", "cond_sw", "cond_sw_floor", "spread"):
        sep[k] = sep_l2p[k]
    rows.append(
        dict(
            model="two separate models",
            train_s=lp.seconds + pl.seconds,
            examples=(lp.steps + pl.steps) * batch_size,
            **sep,
        )
    )
    if include_oracle:
        oracle = mix.exact_joint_model(joint["point"], mask_id=joint["label"].mask_id)
        rows.append(
            dict(
                model="exact denoiser (floor)",
                train_s=0.0,
                examples=0,
                **evaluate_toy(oracle, toy, seed=seed, device=None, **ev),
            )
        )
    return rows, models


def guidance_sweep(
    net,
    toy: tuple[LabeledMixture, JointProcess],
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
        guid = NoisyGuidance(omega=w, sigma=s, left=lo, right=hi)
        start = time.perf_counter()
        r = evaluate_label_to_point(
            joint,
            net,
            mix,
            n_per_label=n_per_label,
            steps=steps,
            guidance=guid,
            generator=torch.Generator().manual_seed(seed),
            device=device,
        )
        rows.append(
            dict(
                omega=w,
                sigma=s,
                left=lo,
                right=hi,
                region_share=r.region_share,
                spread=r.spread,
                cond_sw=r.sw,
                nfe=r.nfe,
                seconds=time.perf_counter() - start,
            )
        )
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
            if isinstance(v, float) and math.isnan(v):
                cells.append("—")
            else:
                cells.append(format(v, fmt))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
