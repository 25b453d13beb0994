"""Joint text–image benchmark (notebook 04): coherence by level next to the CdSprites+ leaderboard, the ablation at
equal compute, the share of on-axis examples, the guidance sweep, and the throughput of training and of each
sampling mode.

Everything is computed by :mod:`diffuse_edu.recipes.text_image`, the code notebook 04 runs, with the same settings
(:func:`~diffuse_edu.recipes.text_image.settings`): trained models are cached by configuration, so after the notebook
has run, the benchmark reuses its models (and reports the training time measured when they were trained).

1. Coherence by level: Strict % of text → image, image → text and joint samples of one model per level (the setting's
   training clock),
   next to MVAE, the best published multimodal VAE on the CdSprites+ leaderboard (our levels re-create its ladder;
   the data, captions and judges are ours, not their files). Also Letters, attribute coverage, distinct captions and
   the Fréchet distance in the judge's features next to its floor.
2. The ablation at equal compute: decoupled clocks vs one unified clock vs decoupled clocks with 30 % and with 90 % of
   the examples on an axis (one modality clean) vs two task-specific models (text → image and image → text, half the
   steps each) vs one state space.
3. How much on an axis: one model per share p of on-axis examples (``AxisMixture(p, base=Decoupled())``, p from 0
   = decoupled to 1 = the two conditional tasks only), at the ablation's budget, next to the task-specific pair.
4. The guidance sweep (ω, σ, interval) on the main model. The caption samplers on the main model.
5. Throughput: training steps/s, samples/s and TFLOP/s (3 × the forward FLOPs counted by torch's FLOP counter) of the
   recipe's loop — fp32 on the CPU; bf16 eager and compiled on CUDA, next to a minimal hand-written loop (AdamW,
   autocast, the same loss) — and samples/s of each sampling mode.

Usage::

    python benchmarks/bench_text_image.py                 # CPU full mode (16 px, level 3), CPU rows
    python benchmarks/bench_text_image.py --fast          # smoke run (≈ 2 min)
    python benchmarks/bench_text_image.py --write         # also save benchmarks/results/text_image.md
    python benchmarks/bench_text_image.py --device cuda --out DIR   # the CUDA section (scripts/gpu_check.sh)
    python benchmarks/bench_text_image.py --device cuda --sections coherence --axis 0.3 --two-stream --out DIR
                                          # the GPU setting with the CPU setting's clock and network

``main(**hparams)`` takes the same settings as keyword arguments (tests call it with tiny values).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path

import torch

from diffuse_edu.config import hardware_summary
from diffuse_edu.guidance import NoisyGuidance
from diffuse_edu.recipes.text_image import (
    ABLATION,
    CAPTION_METHOD,
    IMAGE,
    LEADERBOARD,
    TEXT,
    ablation,
    axis_clock,
    axis_sweep,
    clock_name,
    coherence_by_level,
    compare_caption_steps,
    evaluate,
    forward_flops,
    guidance_sweep,
    make_joint,
    make_net,
    markdown_table,
    settings,
    train_throughput,
)

#: The benchmark's parts, in the order they run.
SECTIONS = ("coherence", "ablation", "axis", "sweep", "samplers", "throughput")

#: The caption samplers compared in the "samplers" section (the recipe's default first).
CAPTION_METHODS = (CAPTION_METHOD, "tau-leaping", "ancestral")

SAMPLER_COLUMNS = [
    ("method", "caption step", "s"),
    ("i2t_strict", "I→T Strict %", ".1f"),
    ("i2t_feats", "I→T Feats", ".3f"),
    ("i2t_malformed", "I→T malformed", ".3f"),
    ("joint_strict", "joint Strict %", ".1f"),
    ("joint_malformed", "joint malformed", ".3f"),
    ("i2t_nfe", "NFE I→T", "d"),
]

COHERENCE_COLUMNS = [
    ("level", "level", "d"),
    ("t2i", "T→I Strict %", ".1f"),
    ("i2t", "I→T Strict %", ".1f"),
    ("joint", "joint Strict %", ".1f"),
    ("mvae", "MVAE T→I / I→T / joint %", "s"),
    ("i2t_letters", "I→T Letters %", ".1f"),
    ("fd_ratio", "FD / floor", ".2f"),
]

METRIC_COLUMNS = [
    ("level", "level", "d"),
    ("t2i_feats", "T→I Feats", ".3f"),
    ("i2t_feats", "I→T Feats", ".3f"),
    ("i2t_malformed", "I→T malformed", ".3f"),
    ("joint_feats", "joint Feats", ".3f"),
    ("joint_malformed", "joint malformed", ".3f"),
    ("coverage", "coverage", ".3f"),
    ("coverage_real", "(real)", ".3f"),
    ("distinct", "distinct captions", ".3f"),
    ("distinct_real", "(real)", ".3f"),
    ("fd_t2i", "FD T→I", ".1f"),
    ("fd_joint", "FD joint", ".1f"),
    ("fd_floor", "FD floor", ".1f"),
]

ABLATION_COLUMNS = [
    ("model", "model", "s"),
    ("train_s", "train s", ".0f"),
    ("examples", "examples", "d"),
    ("t2i_strict", "T→I Strict", ".3f"),
    ("t2i_feats", "T→I Feats", ".3f"),
    ("i2t_strict", "I→T Strict", ".3f"),
    ("i2t_feats", "I→T Feats", ".3f"),
    ("i2t_letters", "I→T Letters", ".3f"),
    ("joint_strict", "joint Strict", ".3f"),
    ("fd_t2i", "FD T→I", ".1f"),
    ("fd_joint", "FD joint", ".1f"),
    ("fd_floor", "floor", ".1f"),
]

AXIS_COLUMNS = [
    ("prob", "p on an axis", ".1f"),
    ("train_s", "train s", ".0f"),
    ("t2i_strict", "T→I Strict", ".3f"),
    ("i2t_strict", "I→T Strict", ".3f"),
    ("i2t_malformed", "I→T malformed", ".3f"),
    ("joint_strict", "joint Strict", ".3f"),
    ("joint_feats", "joint Feats", ".3f"),
    ("fd_t2i", "FD T→I", ".1f"),
    ("fd_joint", "FD joint", ".1f"),
]

SWEEP_COLUMNS = [
    ("omega", "ω", ".1f"),
    ("sigma", "σ", ".1f"),
    ("left", "left", ".1f"),
    ("right", "right", ".1f"),
    ("t2i_strict", "T→I Strict", ".3f"),
    ("t2i_feats", "T→I Feats", ".3f"),
    ("fd_t2i", "FD T→I", ".1f"),
    ("i2t_strict", "I→T Strict", ".3f"),
    ("i2t_malformed", "I→T malformed", ".3f"),
    ("t2i_nfe", "NFE T→I", "d"),
    ("i2t_nfe", "NFE I→T", "d"),
]

THROUGHPUT_COLUMNS = [
    ("loop", "loop", "s"),
    ("device", "device", "s"),
    ("precision", "precision", "s"),
    ("compiled", "compiled", "s"),
    ("params", "params", ",d"),
    ("batch_size", "batch", "d"),
    ("steps_per_s", "steps/s", ".2f"),
    ("samples_per_s", "samples/s", ",.0f"),
    ("tflops", "TFLOP/s", ".3f"),
]


def minimal_loop_throughput(level, image_size, *, batch_size, steps, warmup_steps, net, device, compile) -> dict:
    """The reference: a hand-written training loop for the same network and the same loss (ε-MSE of the pixels plus
    the masked cross-entropy of the characters, decoupled times), written with plain torch ops: AdamW, bf16 autocast
    on CUDA, no EMA, no clipping, no checks, no logging. Timed like
    :func:`~diffuse_edu.recipes.text_image.train_throughput`."""
    import torch.nn.functional as F

    from diffuse_edu.data.shapes import load_shapes

    jp = make_joint(level, image_size)
    alpha_img, alpha_txt = jp[IMAGE].schedule._alpha, jp[TEXT].schedule._alpha  # trusted inputs: no checks
    mask_id = jp[TEXT].mask_id
    model = make_net(level, image_size, **(net or {})).to(device)
    runner = torch.compile(model) if compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = load_shapes(level, "train", batch_size, image_size)
    img, cap = data.images.to(device), data.captions.to(device)
    B = batch_size

    def step():
        t_img, t_txt = torch.rand(B, device=device), torch.rand(B, device=device)
        a = alpha_img(t_img)[:, None, None, None]
        eps = torch.randn_like(img)
        x_t = a * img + (1 - a * a).sqrt() * eps
        masked = torch.rand(cap.shape, device=device) < (1 - alpha_txt(t_txt))[:, None]
        c_t = torch.where(masked, mask_id, cap)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = runner({IMAGE: x_t, TEXT: c_t}, {IMAGE: t_img, TEXT: t_txt})
        ce = F.cross_entropy(out[TEXT].transpose(1, 2), cap, reduction="none")
        loss = (out[IMAGE] - eps).square().mean() + (ce * masked).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup_steps):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - start
    flops = forward_flops(model)
    per_s = steps * batch_size / seconds
    return dict(
        params=model.num_params(), batch_size=batch_size, device=str(device),
        precision="bf16" if device.type == "cuda" else "fp32", compiled=compile, steps_per_s=steps / seconds,
        samples_per_s=per_s, tflops=3 * flops * per_s / 1e12,
    )  # fmt: skip


def _fmt_rows(rows):
    return [{**r, "compiled": "yes" if r.get("compiled") else "no"} for r in rows]


def main(
    *,
    fast: bool = False,
    write: bool = False,
    device: str | None = None,
    out: str | None = None,
    levels: tuple[int, ...] | None = None,
    steps: int | None = None,
    retrain: bool = False,
    threads: int | None = None,
    sections: tuple[str, ...] = SECTIONS,
    compile_rows: bool = True,
    axis: float | None = None,
    two_stream: bool | None = None,
    argv: list[str] | None = None,
) -> str:
    """Run the benchmark; returns the markdown report (also printed, and written with ``write`` / ``out``).

    ``axis`` / ``two_stream`` override the setting's main clock (``AxisMixture(axis, base=Decoupled())``; 0: plain
    ``Decoupled()``) and network (``two_stream=``), so one command measures the CPU setting's choices at another size.
    """
    if device == "cuda" and not torch.cuda.is_available():
        print("bench_text_image: --device cuda asked for, but torch sees no CUDA device; nothing to measure here.")
        return ""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if threads:
        torch.set_num_threads(threads)
    mode = "fast" if fast else ("gpu" if dev.type == "cuda" else "cpu")
    cfg = settings(mode)
    if levels:
        cfg["levels"] = tuple(levels)
    if steps:
        cfg["train"]["steps"] = cfg["ablation"]["steps"] = steps
    if axis is not None:
        cfg["clock"] = axis_clock(axis)
    if two_stream is not None:
        cfg["net"]["two_stream"] = bool(two_stream)
    size, level = cfg["image_size"], cfg["level"]
    common = dict(image_size=size, net=cfg["net"], device=dev, cache=not retrain)
    cmd = "python benchmarks/bench_text_image.py " + " ".join(argv if argv is not None else sys.argv[1:])
    tr = cfg["train"]
    lines = [
        "# Joint text–image: coherence by level, ablation, guidance and throughput (notebook 4)",
        "",
        f"- date: {_dt.date.today().isoformat()}",
        f"- machine: {hardware_summary()}",
        f"- command: `{cmd.strip()}`",
        f"- settings: `{mode}` — {size} px; clock `{cfg['clock']!r}`; network {cfg['net']}; {tr['steps']} steps × "
        f"batch {tr['batch_size']} per model, lr {tr['lr']}, EMA {tr['ema_decay']}, {tr['n_train']} training pairs; "
        f"evaluation {cfg['eval']['n']} samples per task, {cfg['eval']['steps']} sampler steps (Heun on pixels, "
        f"`{CAPTION_METHOD}` steps on characters)",
        "- data: our re-creation of the CdSprites+ ladder (`diffuse_edu.data.shapes`), not their files; MVAE is the "
        "best published multimodal VAE on the CdSprites+ leaderboard (Strict %, quoted).",
        "",
    ]

    def emit(part: list[str]) -> None:  # one section: into the report, and printed as it is done
        lines.extend(part)
        print("\n".join(part), flush=True)

    start = time.perf_counter()
    models = {}
    main_rows = {}
    abl, abl_rows = {}, []  # the ablation's models and rows, when it runs
    if "coherence" in sections:
        rows, by_level, metrics = coherence_by_level(
            cfg["levels"], clock=cfg["clock"], train_kwargs=tr, eval_kwargs=cfg["eval"], **common
        )
        models.update(by_level)
        main_rows = {m["level"]: m for m in metrics}
        loaded = [str(lv) for lv, m in by_level.items() if m.loaded]
        how = "loaded from the cache: levels " + ", ".join(loaded) if loaded else "trained in this run"
        lines += [
            "## Coherence by level",
            "",
            f"One model per level, trained with `{cfg['clock']!r}` ({clock_name(cfg['clock'])}; {how}; training "
            "time as measured when each was trained): "
            + ", ".join(f"level {lv} {m.seconds:.0f} s" for lv, m in by_level.items()),
            "",
            markdown_table(rows, COHERENCE_COLUMNS),
            "",
            markdown_table(metrics, METRIC_COLUMNS),
            "",
        ]
        targets = []
        for r in rows:
            goal = (95, 95, 90) if mode == "gpu" else (80, 80, None)
            met = r["t2i"] >= goal[0] and r["i2t"] >= goal[1] and (goal[2] is None or r["joint"] >= goal[2])
            lb = LEADERBOARD[r["level"]]
            beats = r["t2i"] > lb["t2i"] and r["i2t"] > lb["i2t"] and r["joint"] > lb["joint"]
            targets.append(
                dict(
                    level=r["level"],
                    target=f"T→I ≥ {goal[0]}, I→T ≥ {goal[1]}" + (f", joint ≥ {goal[2]}" if goal[2] else ""),
                    measured=f"{r['t2i']:.1f} / {r['i2t']:.1f} / {r['joint']:.1f}",
                    met="yes" if met else "no",
                    mvae="above MVAE on all three" if beats else "not above MVAE on all three",
                )
            )
        lines += [
            f"Targets ({'GPU configuration: all five levels' if mode == 'gpu' else 'CPU full mode: level 3'}):",
            "",
            markdown_table(
                targets,
                [
                    ("level", "level", "d"),
                    ("target", "target (Strict %)", "s"),
                    ("measured", "measured T→I / I→T / joint", "s"),
                    ("met", "met", "s"),
                    ("mvae", "vs MVAE", "s"),
                ],
            ),  # fmt: skip
            "",
        ]
        if level in models:  # text → image with the setting's guidance, at the evaluation's size
            g = NoisyGuidance(**cfg["guided"])
            ev = cfg["eval"]
            r = evaluate(models[level], n=ev["n"], steps=ev["steps"], tasks=("t2i",), guidance=g)
            goal = 95 if mode == "gpu" else 80
            lines += [
                f"Text → image at level {level} with guidance (ω = {g.omega:g}, σ = {g.sigma:g} on ({g.left:g}, "
                f"{g.right:g}); the same {ev['n']} captions and seed): Strict **{100 * r['t2i_strict']:.1f} %** "
                f"(Feats {r['t2i_feats']:.3f}, FD {r['fd_t2i']:.1f} vs floor {r['fd_floor']:.1f}, {r['t2i_nfe']} "
                f"network calls) — the T→I target (≥ {goal} %) {'met' if 100 * r['t2i_strict'] >= goal else 'not met'} "
                "with guidance.",
                "",
            ]
        print("\n".join(lines), flush=True)
    if "ablation" in sections:
        tr_abl = {**tr, **cfg["ablation"]}
        # the main model is the ablation's row of its clock's name when it has that row's budget (as in notebook 04)
        row = clock_name(cfg["clock"])
        same = row in ABLATION and level in models and models[level].steps == tr_abl["steps"]
        reuse = {row: models[level]} if same else None
        evaluated = {row: main_rows[level]} if same and level in main_rows else None
        abl_rows, abl = ablation(level=level, train_kwargs=tr_abl, eval_kwargs=cfg["eval"], reuse=reuse,
                                 evaluated=evaluated, **common)  # fmt: skip
        # no coherence section: the sweep runs on the ablation's model with the setting's clock (else decoupled)
        models.setdefault(level, abl[row if row in ABLATION else "decoupled"])
        part = [
            f"## Ablation at equal compute (level {level})",
            "",
            "Decoupled, unified, and decoupled + 30 % or 90 % on an axis (`AxisMixture(p, base=Decoupled())`: a share "
            f"p of the examples gets one modality, chosen at random, clean): {tr_abl['steps']} steps each; the two "
            "task-specific "
            "models (text → image: caption always clean; image → text: image always clean) "
            f"{tr_abl['steps'] // 2} steps each, so each row "
            "costs the same examples; one state space (the decoupled model with its captions diffused as Gaussian "
            f"one-hot vectors, rounded back to characters): {tr_abl['steps']} steps. — : the model cannot do that "
            "task (the task-specific pair has no joint sampler).",
            "",
            markdown_table(abl_rows, ABLATION_COLUMNS),
            "",
        ]
        emit(part)
    if "axis" in sections:
        tr_abl = {**tr, **cfg["ablation"]}
        # reuse what the ablation (and the main model, at the same budget) already trained and evaluated
        known = dict(abl)
        done = {r["model"]: r for r in abl_rows}
        if level in models and models[level].steps == tr_abl["steps"]:
            known.setdefault(models[level].name, models[level])
            if level in main_rows:
                done.setdefault(models[level].name, main_rows[level])
        axis_rows, _ = axis_sweep(level=level, train_kwargs=tr_abl, eval_kwargs=cfg["eval"], reuse=known,
                                  evaluated=done, **common)  # fmt: skip
        pair = next((r for r in abl_rows if r["model"] == "two task-specific models"), None)
        ref = (
            f" For reference, the ablation's two task-specific models at the same budget: T→I / I→T Strict "
            f"{pair['t2i_strict']:.3f} / {pair['i2t_strict']:.3f}."
            if pair
            else ""
        )
        emit([
            f"## How much on an axis (level {level})",
            "",
            f"`AxisMixture(p, base=Decoupled())`: decoupled times, then a share p of the examples gets one modality "
            f"(chosen at random) clean; p = 0 is plain decoupled, p = 1 never trains jointly (the task-specific pair "
            f"in one network). {tr_abl['steps']} steps × {tr_abl['batch_size']} each, as the ablation.{ref}",
            "",
            markdown_table(axis_rows, AXIS_COLUMNS),
            "",
        ])  # fmt: skip
    if "sweep" in sections and level in models:
        sweep = guidance_sweep(models[level], **cfg["sweep"])
        part = [
            f"## Guidance sweep ({models[level].name} model, level {level})",
            "",
            "ω·f(x, y clean) + (1 − ω)·f(x, y re-noised to σ), applied while left < t < right; σ = 1 is "
            f"classifier-free guidance. {cfg['sweep']['n']} samples per task, {cfg['sweep']['steps']} steps, the "
            "same seed for every row.",
            "",
            markdown_table(sweep, SWEEP_COLUMNS),
            "",
        ]
        emit(part)
    if "samplers" in sections and level in models:
        ev = cfg["eval"]
        found = compare_caption_steps(models[level], CAPTION_METHODS, n=ev["n"], steps=ev["steps"])
        rows = [{**r, "i2t_strict": 100 * r["i2t_strict"], "joint_strict": 100 * r["joint_strict"]} for r in found]
        part = [
            f"## Caption samplers ({models[level].name} model, level {level})",
            "",
            f"The step on the characters for image → text and joint samples, same model, {ev['n']} samples, "
            f"{ev['steps']} steps, the same seed: `confidence` (the recipe's default; as many characters per step as "
            "an exact ancestral step, the most confident first; not exact), `tau-leaping` (the official code), "
            "`ancestral` (the exact reverse step).",
            "",
            markdown_table(rows, SAMPLER_COLUMNS),
            "",
        ]
        emit(part)
    if "throughput" in sections:
        batch = tr["batch_size"]
        n_steps, warm = (5, 2) if fast else (30, 5)
        rows = [dict(loop="recipe (train_iter)", **train_throughput(
            level, size, batch_size=batch, steps=n_steps, warmup_steps=warm, net=cfg["net"], device=dev))]  # fmt: skip
        rows.append(dict(loop="minimal hand-written", **minimal_loop_throughput(
            level, size, batch_size=batch, steps=n_steps, warmup_steps=warm, net=cfg["net"], device=dev,
            compile=False)))  # fmt: skip
        if dev.type == "cuda" and compile_rows:
            rows.append(dict(loop="recipe (train_iter)", **train_throughput(
                level, size, batch_size=batch, steps=n_steps, warmup_steps=warm, net=cfg["net"], device=dev,
                compile=True)))  # fmt: skip
            rows.append(dict(loop="minimal hand-written", **minimal_loop_throughput(
                level, size, batch_size=batch, steps=n_steps, warmup_steps=warm, net=cfg["net"], device=dev,
                compile=True)))  # fmt: skip
        part = [
            "## Throughput",
            "",
            f"Training at level {level} ({size} px), {n_steps} timed steps after {warm} warm-up steps; TFLOP/s = 3 × "
            "forward FLOPs per example (torch.utils.flop_counter) × samples/s.",
            "",
            markdown_table(_fmt_rows(rows), THROUGHPUT_COLUMNS),
            "",
        ]
        sampling = main_rows.get(level)
        if sampling is not None:
            part += [
                f"Sampling ({models[level].name} model, level {level}, {cfg['eval']['n']} samples per call, "
                f"{cfg['eval']['steps']} steps, judge and parser excluded):",
                "",
                markdown_table(
                    [
                        dict(task=t, nfe=sampling[f"{k}_nfe"], per_s=sampling[f"{k}_per_s"])
                        for t, k in (("text → image", "t2i"), ("image → text", "i2t"), ("joint", "joint"))
                    ],
                    [("task", "task", "s"), ("nfe", "NFE", "d"), ("per_s", "samples/s", ",.1f")],
                ),  # fmt: skip
                "",
            ]
        emit(part)
    lines += [f"Total wall-clock time: {time.perf_counter() - start:.0f} s.", ""]
    text = "\n".join(lines)
    name = "text_image.md" if dev.type == "cpu" else "text_image_cuda.md"
    paths = []
    if write:
        paths.append(Path(__file__).parent / "results" / name)
    if out:
        paths.append(Path(out) / name)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return text


def _share(text: str) -> float:
    """An argparse type: a share in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 1] (e.g. 0.3); got {text!r}")
    return value


def _parse(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fast", action="store_true", help="small smoke run")
    p.add_argument("--write", action="store_true", help="write benchmarks/results/text_image.md")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: CUDA when present, else CPU")
    p.add_argument("--out", default=None, help="also write the report into this folder")
    p.add_argument("--levels", type=int, nargs="+", default=None, help="levels of the coherence table")
    p.add_argument("--steps", type=int, default=None, help="training steps per model")
    p.add_argument("--retrain", action="store_true", help="train afresh (ignore and overwrite the cache)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="parts to run (default: all; the throughput alone needs no trained model)",
    )
    p.add_argument("--no-compile", dest="compile_rows", action="store_false", help="CUDA: skip the compiled rows")
    p.add_argument(
        "--axis",
        type=_share,
        default=None,
        help="main clock: AxisMixture(P, base=Decoupled()), P in [0, 1] (0: Decoupled()); default: the setting's",
    )
    p.add_argument(
        "--two-stream",
        dest="two_stream",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="per-modality attention and MLP weights (default: the setting's network)",
    )
    args = p.parse_args(argv)
    return dict(vars(args), sections=tuple(args.sections), argv=argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main(**_parse())
