"""Decoupled-clock benchmark: one joint (point, label) model against its ablations, and the guidance sweep.

Prints markdown tables of measured numbers on the labelled 2D mixture of notebook 3, where every answer is exact:

1. The ablation at equal compute (the same gradient steps × batch per row): decoupled clocks (the paper), a unified
   clock, the axis-mixture (unified + one modality clean half the time), and two separately trained conditional
   models (label→point and point→label, half the steps each). Each is measured on point→label (argmax accuracy
   against the Bayes accuracy; accuracy of drawn labels against an exact posterior draw), label→point (share in the
   Bayes region, sliced Wasserstein to the exact conditional with its noise floor, spread ratio) and joint sampling
   (label-marginal TV with its floor, coherence against the Bayes accuracy, point distance with its floor). The last
   row runs the exact joint denoiser through the same samplers: the floor of every metric.
2. The targets of the decoupled model (issue 4), checked against the measured numbers.
3. The guidance sweep on the decoupled model: label→point with noisy guidance over ω, σ and the interval.

Usage::

    python benchmarks/bench_decoupled.py            # full (5–11 min on 2 shared CPU cores with --threads 1)
    python benchmarks/bench_decoupled.py --fast     # smoke run (≈ 1 min)
    python benchmarks/bench_decoupled.py --write    # also save benchmarks/results/decoupled.md
    python benchmarks/bench_decoupled.py --threads 1  # one torch thread (faster for this tiny MLP on 2 busy cores)
    python benchmarks/bench_decoupled.py --retrain    # train every model afresh instead of reusing cached ones

Everything is computed by :mod:`diffuse_edu.recipes.toy_joint`, the code notebook 03 runs. Trained models are cached by
configuration, so the benchmark reuses the notebook's decoupled model (same budget and seed) and reports the training
time measured when it was trained.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path

import torch

from diffuse_edu.config import get_device, hardware_summary
from diffuse_edu.recipes.toy_joint import ablation, guidance_sweep, make_toy, markdown_table

ABLATION_COLUMNS = [
    ("model", "model", "s"),
    ("train_s", "train s", ".0f"),
    ("classify_acc", "p→l acc", ".4f"),
    ("bayes_acc_same_points", "Bayes (same pts)", ".4f"),
    ("bayes_acc", "Bayes (exact)", ".4f"),
    ("sampled_label_acc", "p→l drawn", ".4f"),
    ("posterior_sampling_acc", "exact drawn", ".4f"),
    ("region_share", "l→p region", ".4f"),
    ("exact_region_share", "exact", ".4f"),
    ("cond_sw", "l→p SW", ".4f"),
    ("cond_sw_floor", "floor", ".4f"),
    ("spread", "spread", ".3f"),
    ("label_tv", "label TV", ".4f"),
    ("label_tv_floor", "floor", ".4f"),
    ("coherence", "coherence", ".4f"),
    ("point_sw", "point SW", ".4f"),
    ("point_sw_floor", "floor", ".4f"),
]

SWEEP_COLUMNS = [
    ("omega", "ω", ".1f"),
    ("sigma", "σ", ".1f"),
    ("left", "left", ".1f"),
    ("right", "right", ".1f"),
    ("region_share", "l→p region", ".4f"),
    ("spread", "spread", ".3f"),
    ("cond_sw", "l→p SW", ".4f"),
    ("nfe", "NFE", "d"),
]


def targets(row: dict) -> list[dict]:
    """The issue's full-mode targets for the decoupled model, with the measured values."""
    # paired: the Bayes classifier on the very same points (the exact accuracy differs by sampling noise only)
    acc_gap = row["bayes_acc_same_points"] - row["classify_acc"]
    region_ok = row["region_share"] >= 0.97 or abs(row["region_share"] - row["exact_region_share"]) <= 0.01
    return [
        dict(
            target="point→label accuracy within 1 point of Bayes",
            measured=f"{row['classify_acc']:.4f} vs Bayes {row['bayes_acc_same_points']:.4f} on the same points "
            f"(model − Bayes {-100 * acc_gap:+.2f} points; exact Bayes {row['bayes_acc']:.4f})",
            met="yes" if acc_gap <= 0.01 else "no",
        ),
        dict(
            target="label→point ≥ 97% in region, or within 1 point of the exact conditional",
            measured=f"{row['region_share']:.4f} vs exact {row['exact_region_share']:.4f}",
            met="yes" if region_ok else "no",
        ),
        dict(
            target="label-marginal TV ≤ 0.03",
            measured=f"{row['label_tv']:.4f} (floor {row['label_tv_floor']:.4f})",
            met="yes" if row["label_tv"] <= 0.03 else "no",
        ),
    ]


def reading(rows: list[dict]) -> list[str]:
    """One measured sentence per model on what the table shows (numbers only, no verdict imposed)."""
    by = {r["model"]: r for r in rows}
    lines = ["What the rows show (measured in this run):", ""]
    for name in ("decoupled", "unified", "axis-mixture"):
        r = by[name]
        gap = 100 * (r["classify_acc"] - r["bayes_acc_same_points"])
        lines.append(
            f"- **{name}**: point→label {gap:+.2f} points from Bayes (model − Bayes); "
            f"label→point region share {r['region_share']:.4f} (exact {r['exact_region_share']:.4f}), spread "
            f"{r['spread']:.2f}, SW {r['cond_sw']:.3f} (floor {r['cond_sw_floor']:.3f}); joint label TV "
            f"{r['label_tv']:.4f}, coherence {r['coherence']:.4f} (true joint {r['bayes_acc']:.4f})."
        )
    r = by["two separate models"]
    lines.append(
        f"- **two separate models** (half the steps each, no joint sampling): point→label "
        f"{100 * (r['classify_acc'] - r['bayes_acc_same_points']):+.2f} points from Bayes (model − Bayes); label→point "
        f"region share {r['region_share']:.4f}, SW {r['cond_sw']:.3f}."
    )
    return lines


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fast", action="store_true", help="small smoke run")
    p.add_argument("--write", action="store_true", help="write benchmarks/results/decoupled.md")
    p.add_argument("--steps", type=int, default=None, help="gradient steps per joint model (default 2000; fast 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--retrain", action="store_true", help="train every model afresh (ignore and overwrite the cache)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (1 is fastest for this tiny model on a busy machine)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (200 if args.fast else 2000)
    batch = 256
    ev = (
        dict(n_classify=2000, n_per_label=200, n_joint=1600, steps=25)
        if args.fast
        else dict(n_classify=20_000, n_per_label=1000, n_joint=8000, steps=50)
    )  # label draws: 5 steps
    device = get_device()
    cmd = "python benchmarks/bench_decoupled.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = [
        "# Decoupled noise schedules: ablation and guidance (notebook 3)",
        "",
        f"- date: {_dt.date.today().isoformat()}",
        f"- machine: {hardware_summary()}",
        f"- command: `{cmd.strip()}`",
        f"- training: {steps} steps × batch {batch} per joint model (two separate models: {steps // 2} each); "
        f"JointMLP ≈ 0.17 M parameters; AdamW, cosine decay, EMA 0.995",
        f"- evaluation: point→label on {ev['n_classify']} true-joint points, label→point {ev['n_per_label']} per "
        f"label, joint {ev['n_joint']} samples, {ev['steps']} sampler steps (Euler–Maruyama point, exact ancestral "
        "label; 5 steps to draw a label given a point)",
        "",
    ]

    start = time.perf_counter()
    rows, models = ablation(
        steps=steps, batch_size=batch, seed=args.seed, progress=False, device=device, eval_kwargs=ev,
        cache=not args.retrain,
    )  # fmt: skip
    loaded = [name for name, m in models.items() if m.loaded]
    out.insert(
        -1,
        f"- models: {'loaded from the cache: ' + ', '.join(loaded) if loaded else 'all trained in this run'} "
        "(train s is the time measured when each was trained)",
    )
    out += [
        f"## {'CPU' if device.type == 'cpu' else 'GPU'} results",
        "",
        "### Ablation at equal compute",
        "",
        "p→l acc: argmax of the label logits given the point (one call); Bayes: the Bayes classifier's exact accuracy. "
        "p→l drawn: the label drawn by the sampler; exact drawn: E Σ p(y|x)², what exact posterior draws reach. "
        "l→p region: share of label→point samples in their label's Bayes region; exact: what the exact conditional "
        "reaches. SW: sliced Wasserstein-2 (floor: two exact samples). spread: √tr Cov ratio to the exact conditional "
        "(1 = right diversity). coherence: share of joint samples whose label is their point's Bayes label (the true "
        "joint: the Bayes accuracy). — : the model cannot do that task.",
        "",
        markdown_table(rows, ABLATION_COLUMNS),
        "",
        "### Targets (decoupled model)",
        "",
        markdown_table(
            targets(rows[0]), [("target", "target", "s"), ("measured", "measured", "s"), ("met", "met", "s")]
        ),
        "",
        *reading(rows),
        "",
    ]
    print("\n".join(out), flush=True)

    sweep_kwargs = (
        dict(omegas=(1.0, 3.0), sigmas=(1.0, 0.5), intervals=((0.0, 1.0),), n_per_label=100, steps=25)
        if args.fast
        else dict(
            omegas=(1.0, 1.5, 2.0, 3.0, 5.0),
            sigmas=(1.0, 0.5),
            intervals=((0.0, 1.0), (0.2, 0.8)),
            n_per_label=250,
            steps=50,
        )
    )
    sweep = guidance_sweep(models["decoupled"].net, make_toy(), seed=args.seed, device=device, **sweep_kwargs)
    sweep_md = [
        "### Guidance sweep (decoupled model, label→point)",
        "",
        "ω·f(x, y clean) + (1 − ω)·f(x, y re-noised to σ), applied while left < t < right; σ = 1 is classifier-free "
        f"guidance. {sweep_kwargs['n_per_label']} samples per label, {sweep_kwargs['steps']} steps, same seed for "
        "every row. Stronger guidance moves points into their label's region (higher share) at the cost of spread.",
        "",
        markdown_table(sweep, SWEEP_COLUMNS),
        "",
        f"Total wall-clock time: {time.perf_counter() - start:.0f} s.",
        "",
    ]
    print("\n".join(sweep_md), flush=True)
    text = "\n".join(out + sweep_md)
    if args.write:
        path = Path(__file__).parent / "results" / "decoupled.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return text


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    main()
