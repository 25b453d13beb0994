"""Discrete diffusion on surnames: training tokens/s, sampling names/s per sampler, and the bits/char table.

Usage::

    python benchmarks/bench_discrete.py            # full: reuse notebook 02's checkpoints if cached, else train
    python benchmarks/bench_discrete.py --fast     # smoke test: tiny budget, a few seconds per table
    python benchmarks/bench_discrete.py --steps 3000 --write   # train with another budget; save the markdown

The three models (masked, uniform, autoregressive) share one transformer trunk and one budget (steps × batch); see
:mod:`diffuse_edu.recipes.text` (the code notebook 02 runs). With ``--write`` the tables go to
``benchmarks/results/discrete.md`` (CPU and, when a GPU is present, GPU sections).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from diffuse_edu.config import hardware_summary
from diffuse_edu.data.batching import infinite_batches
from diffuse_edu.data.text import load_surnames
from diffuse_edu.metrics.text import sample_report
from diffuse_edu.recipes.text import (
    TextSetup,
    ar_loss_fn,
    bits_per_char_table,
    build_text_models,
    discrete_loss_fn,
    text_cache_dir,
    train_text_models,
)
from diffuse_edu.sampling import sample_masked, sample_uniform
from diffuse_edu.train import train_iter

# The notebook's full-mode setup: the benchmark reuses its checkpoints when they are cached.
NOTEBOOK_STEPS = 600


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def training_throughput(
    setup: TextSetup, tokens: torch.Tensor, device: torch.device, steps: int, warmup: int = 3
) -> list[tuple[str, float, float]]:
    """(kind, tokens/s, steps/s) of the median optimiser step (forward, backward, AdamW, EMA) at the setup's batch."""
    models, processes = build_text_models(setup)
    rows = []
    for kind, model in models.items():
        loss_fn = ar_loss_fn if kind == "ar" else discrete_loss_fn(processes[kind])
        batches = infinite_batches(tokens, batch_size=setup.batch_size, generator=torch.Generator().manual_seed(0))
        it = train_iter(model, loss_fn, batches, steps=warmup + steps, lr=setup.lr, device=device, progress=False)
        for _ in range(warmup):
            next(it)
        times = []
        while True:
            _sync(device)
            start = time.perf_counter()
            if next(it, None) is None:
                break
            _sync(device)
            times.append(time.perf_counter() - start)
        # the median step filters out the stalls caused by other jobs on a shared machine
        sec = sorted(times)[len(times) // 2]
        rows.append((kind, setup.batch_size * setup.max_len / sec, 1 / sec))
    return rows


def _timed(fn, device: torch.device, repeats: int):
    """(result of the first call, best wall time over ``repeats`` calls): the minimum filters out other jobs' noise."""
    best, first = float("inf"), None
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        out = fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
        first = out if first is None else first
    return first, best


def sampler_table(trained, train_strings: set[str], vocab, n: int, steps: int, device: torch.device, repeats: int = 3):
    """One row per sampler: NFE, names/s (best of ``repeats``), and the quality of what it drew (AR judge)."""
    L = trained.setup.max_len
    masked, uniform, ar = (trained.models[k].to(device).eval() for k in ("masked", "uniform", "ar"))
    pm, pu = trained.processes["masked"], trained.processes["uniform"]

    def masked_run(method, cache):
        return lambda: sample_masked(
            masked, pm, (n, L), steps, method, cache=cache, device=device, generator=torch.Generator().manual_seed(0)
        )

    runs = {
        "masked ancestral, uncached": masked_run("ancestral", False),
        "masked ancestral, cached": masked_run("ancestral", True),
        "masked tau-leaping, cached": masked_run("tau-leaping", True),
        "masked euler, cached": masked_run("euler", True),
        "uniform ancestral": lambda: sample_uniform(
            uniform, pu, (n, L), steps, device=device, generator=torch.Generator().manual_seed(0)
        ),
    }
    rows = []
    for name, run in runs.items():
        res, sec = _timed(run, device, repeats)
        rows.append((name, res.nfe, n / sec, sample_report(res.samples.cpu(), vocab, ar, train_strings)))
    # The cache pays per sequence: one name at a time with many steps, cached vs uncached (mean NFE per name).
    n_single, many = 4, 16 * steps
    for cache in (False, True):
        res, sec = _timed(
            lambda cache=cache: [
                sample_masked(
                    masked,
                    pm,
                    (1, L),
                    many,
                    "ancestral",
                    cache=cache,
                    device=device,
                    generator=torch.Generator().manual_seed(i),
                )
                for i in range(n_single)
            ],
            device,
            1,
        )
        x = torch.cat([r.samples for r in res]).cpu()
        rows.append(
            (
                f"masked ancestral, one name at a time, {many} steps, {'cached' if cache else 'uncached'}",
                sum(r.nfe for r in res) / n_single,
                n_single / sec,
                sample_report(x, vocab, ar, train_strings),
            )
        )
    x, sec = _timed(lambda: ar.sample(n, generator=torch.Generator().manual_seed(0), device=device), device, repeats)
    rows.append(("autoregressive", L, n / sec, sample_report(x.cpu(), vocab, ar, train_strings)))
    return rows


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="smoke mode: tiny budget")
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/discrete.md")
    parser.add_argument("--steps", type=int, default=None, help="training steps per model for the bits/char table")
    parser.add_argument("--sample-steps", type=int, default=64, help="sampler iterations")
    parser.add_argument("--n", type=int, default=None, help="names per sampler run")
    parser.add_argument("--no-cuda", action="store_true", help="CPU only even when CUDA is present")
    parser.add_argument(
        "--retrain", action="store_true", help="train the models afresh (ignore and overwrite the cache)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; 1 is faster on a CPU shared with other jobs)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    train = load_surnames("train")
    test = load_surnames("test")
    setup = TextSetup(train.vocab.vocab_size, train.max_len, steps=args.steps or NOTEBOOK_STEPS)
    if args.fast:
        setup = replace(setup, width=32, depth=1, heads=2, steps=args.steps or 20, warmup=5)
    n = args.n or (64 if args.fast else 256)
    sample_steps = 8 if args.fast else args.sample_steps
    tput_steps = 3 if args.fast else 30
    test_tokens = test.tokens[:500] if args.fast else test.tokens
    train_strings = set(train.strings)

    command = "python benchmarks/bench_discrete.py " + " ".join(sys.argv[1:] if argv is None else argv)
    out = [
        "# Discrete diffusion on surnames (`bench_discrete.py`)",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{command.strip()}`",
        f"- model: width {setup.width}, depth {setup.depth}, heads {setup.heads}; L = {setup.max_len}; "
        f"batch {setup.batch_size}; {setup.steps} steps per model",
        "",
    ]

    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.no_cuda:
        devices.append(torch.device("cuda"))

    # Bits/char: trained once (on the fastest device), or reused from notebook 02's cache.
    train_device = devices[-1]
    trained = train_text_models(setup, train.tokens, cache=not args.retrain, device=train_device, progress=False)
    origin = (
        f"{', '.join(trained.loaded)} loaded from the cache ({text_cache_dir(setup)}), train time measured when trained"
        if trained.loaded
        else f"trained now on {train_device.type}"
    )
    for m in trained.models.values():
        m.to("cpu")
    table = bits_per_char_table(
        trained, train.tokens, test_tokens, n_samples=2 if args.fast else 4, generator=torch.Generator().manual_seed(0)
    )
    ar_bpc = table["ar"].bpc
    out += [
        "## Bits per character on the test split",
        "",
        f"Models {origin}. Diffusion rows are NELBO upper bounds (± Monte-Carlo standard error); "
        f"{len(test_tokens)} test names, denominator = letters + 1 end per name.",
        "",
        "| model | bits/char | ± s.e. | / AR | train time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for k, label in (
        ("masked", "masked diffusion (NELBO)"),
        ("uniform", "uniform diffusion (NELBO)"),
        ("ar", "autoregressive (exact)"),
        ("unigram", "unigram (exact)"),
    ):
        r = table[k]
        sec = trained.seconds.get(k, float("nan"))
        out.append(
            f"| {label} | {r.bpc:.4f} | {r.stderr:.4f} | {r.bpc / ar_bpc:.3f} | "
            f"{'' if k == 'unigram' else f'{sec:.0f}'} |"
        )
    out.append("")

    for device in devices:
        if device.type == "cuda":
            out += ["## GPU", "", f"Machine: GPU {torch.cuda.get_device_name(0)}; torch {torch.__version__}", ""]
        else:
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            machine = f"Machine: {hardware_summary()}; load average {load:.1f} when this section started"
            out += ["## CPU", "", machine, ""]
        out += [
            "### Training throughput",
            "",
            f"Batch {setup.batch_size} × L {setup.max_len}, optimiser steps "
            f"(forward, backward, AdamW, EMA), median of {tput_steps} after warm-up. On a CPU shared with other "
            "jobs these rates vary by tens of percent from run to run.",
            "",
            "| model | tokens/s | steps/s |",
            "|---|---:|---:|",
        ]
        for kind, tok_s, step_s in training_throughput(setup, train.tokens, device, tput_steps):
            out.append(f"| {kind} | {tok_s:,.0f} | {step_s:.2f} |")
        out += [
            "",
            "### Sampling",
            "",
            f"{n} names per run, {sample_steps} sampler iterations, best of 3 runs (NFE = network calls per run, or "
            "per name for the one-name rows; those rows' quality columns rest on 4 names only); quality judged by "
            f"the trained AR model (its own test bits/char: {ar_bpc:.3f}). The cache only skips a call when no "
            "sequence of the batch changed, so it pays for single sequences and many steps.",
            "",
            "| sampler | NFE | names/s | gen. bits/char | diversity | novelty | well-formed | entropy (bits) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, nfe, rate, rep in sampler_table(
            trained, train_strings, train.vocab, n, sample_steps, device, repeats=1 if args.fast else 3
        ):
            out.append(
                f"| {name} | {nfe:g} | {rate:.3g} | {rep.gen_bpc:.3f} | {rep.diversity:.3f} | "
                f"{rep.novelty:.3f} | {rep.well_formed:.3f} | {rep.entropy:.3f} |"
            )
        out.append("")
    text = "\n".join(out)
    print(text)
    if args.write:
        path = Path(__file__).parent / "results" / "discrete.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        print(f"wrote {path}")
    return text


if __name__ == "__main__":
    main()
