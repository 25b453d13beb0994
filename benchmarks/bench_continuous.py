"""Continuous (Gaussian) diffusion benchmark: speed, memory, and sample quality against network calls (NFE).

Prints markdown tables of measured numbers:

1. Training and sampling throughput (samples/s) and peak memory for the 2D ``TimeMLP`` and the digits ``UNet``, on
   the CPU and, when present, CUDA.
2. Quality against NFE on the 8-component 2D ring mixture, for every sampler, with the *exact* score (the floor any
   network can reach with that sampler) and with a trained ``TimeMLP`` (EMA weights); sliced Wasserstein-2 and energy
   distance, next to the data-vs-data noise floor at the same sample size.
3. Digits: Fréchet distance (in-package classifier features) of a trained U-Net's samples to the test split, against
   the floor (real train images vs the test split, same number of images), plus the nearest-neighbour copy check.

Usage::

    python benchmarks/bench_continuous.py            # full (a few minutes on 2 CPU cores)
    python benchmarks/bench_continuous.py --fast     # smoke run (well under a minute of work)
    python benchmarks/bench_continuous.py --write    # also save benchmarks/results/continuous.md

CPU peak memory is the rise of the process's peak resident set size during the measured call (Linux: the peak is
reset through ``/proc/self/clear_refs`` before each call; elsewhere it is the rise of ``ru_maxrss`` and can read 0).
CUDA peak memory is ``torch.cuda.max_memory_allocated`` during the call.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import os
import resource
import sys
import time
from functools import partial
from pathlib import Path

import torch

from diffuse_edu.config import hardware_summary
from diffuse_edu.data.batching import infinite_batches
from diffuse_edu.data.digits import load_digits_images
from diffuse_edu.data.toys import ring_mixture
from diffuse_edu.gaussian import GaussianProcess
from diffuse_edu.metrics.distances import energy_distance, noise_floor, sliced_wasserstein
from diffuse_edu.nets.mlp import TimeMLP
from diffuse_edu.nets.unet import UNet
from diffuse_edu.recipes.continuous import (
    default_mixture,
    digits_report,
    quality_vs_nfe,
    steps_for_nfe,
    train_digits_model,
    train_mixture_model,
)
from diffuse_edu.recipes.judges import digit_judge
from diffuse_edu.sampling import sample
from diffuse_edu.train import train

METHODS = ("ddpm", "euler-maruyama", "ode-euler", "ode-heun")


# ---------------------------------------------------------------------------------------------------------------- utils
def _rss_kib() -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB from /proc/self/status, or (0, ru_maxrss) where /proc is missing."""
    try:
        vals = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM")):
                    vals[line.split(":")[0]] = int(line.split()[1])
        return vals["VmRSS"], vals["VmHWM"]
    except (OSError, KeyError):
        return 0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(fn, device: torch.device):
    """Run ``fn()``; return (result, seconds, peak extra memory in MiB) for ``device``."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        try:  # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        base = _rss_kib()[0] or _rss_kib()[1]
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = max(0, _rss_kib()[1] - base) / 1024
    return out, seconds, peak


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _n_params(m) -> str:
    return f"{sum(p.numel() for p in m.parameters()) / 1e6:.2f} M"


# ---------------------------------------------------------------------------------------------------------------- speed
def _speed_row(name, make, draw, event, batch, n_sample, *, digits, device, cfg) -> list:
    """One row of :func:`bench_speed`: train a fresh model for a few steps, then sample, both measured."""
    torch.manual_seed(0)
    model = make()
    process = GaussianProcess(clip_x0=1.0 if len(event) == 3 else None)
    g = torch.Generator().manual_seed(0)
    batches = infinite_batches(digits, batch_size=batch, generator=g) if draw is None else partial(draw, batch, g)
    kw = dict(device=device, progress=False, seed=0)
    train(model, process.loss_fn(generator=g), batches, steps=3, **kw)  # warm-up: allocator, kernels
    res, _, train_mem = measure(
        lambda: train(model, process.loss_fn(generator=g), batches, steps=cfg["speed_steps"], **kw), device
    )
    ema = res.ema_model
    sample(ema, process, (8, *event), steps=2, device=device, generator=torch.Generator().manual_seed(0))
    out, secs, sample_mem = measure(
        lambda: sample(
            ema, process, (n_sample, *event), steps=cfg["speed_nfe"], method="ddpm", device=device,
            generator=torch.Generator().manual_seed(1),
        ),
        device,
    )  # fmt: skip
    return [
        name, _n_params(model), batch, f"{res.samples_per_s:,.0f}", f"{train_mem:,.0f}", n_sample,
        f"{n_sample / secs:,.0f}", f"{n_sample * out.nfe / secs:,.0f}", f"{sample_mem:,.0f}",
    ]  # fmt: skip


def bench_speed(device: torch.device, cfg: dict) -> str:
    """Training and sampling throughput and peak memory for the two models on ``device``."""
    mix = ring_mixture(8)
    digits = load_digits_images("train").images
    specs = [
        ("TimeMLP 2D (256×4)", lambda: TimeMLP(), lambda b, g: mix.sample(b, generator=g).float(), (2,), 512, 2000),
        ("UNet 8×8 (base 32)", lambda: UNet(8, base=32), None, (1, 8, 8), 128, 500),
    ]
    rows = [_speed_row(*spec, digits=digits, device=device, cfg=cfg) for spec in specs]
    header = [
        "model",
        "params",
        "train batch",
        "train samples/s",
        "train peak MiB",
        "sample batch",
        f"samples/s (ddpm, NFE {cfg['speed_nfe']})",
        "network evals/s",
        "sample peak MiB",
    ]
    return _table(header, rows)


# -------------------------------------------------------------------------------------------------------------- quality
def bench_toy(device: torch.device, cfg: dict) -> str:
    """Quality against NFE on the 2D ring mixture: exact score vs a trained TimeMLP (recipes.continuous)."""
    mix = default_mixture()
    n = cfg["toy_n"]
    run = train_mixture_model(
        mix, GaussianProcess(), hidden=cfg["toy_hidden"], depth=cfg["toy_depth"], steps=cfg["toy_steps"],
        batch_size=cfg["toy_batch"], device=device, progress=False, cache=cfg["cache"],
    )  # fmt: skip
    process = run.process
    exact = mix.exact_model(process.schedule, "eps")
    reference = mix.sample(n, generator=torch.Generator().manual_seed(123)).float()

    def sw(x, y=reference):  # the same 256 directions every time, so rows differ only through the samples
        return sliced_wasserstein(x.double(), y.double(), generator=torch.Generator().manual_seed(7))

    def ed(x, y=reference):
        return energy_distance(x.double(), y.double())

    def far(x):  # the ring has radius 2 and std 0.2, so |x| > 4 is 10 std outside it
        return (x.norm(dim=1) > 4).double().mean().item()

    fl_sw = noise_floor(
        lambda k, gg: mix.sample(k, generator=gg), sw, n, repeats=5, generator=torch.Generator().manual_seed(5)
    )
    fl_ed = noise_floor(
        lambda k, gg: mix.sample(k, generator=gg), ed, n, repeats=5, generator=torch.Generator().manual_seed(6)
    )
    out = quality_vs_nfe(
        {"exact": exact, "learned": run.net}, process, (n, 2), {"SW₂": sw, "energy": ed, "far": far},
        samplers=[(m, "uniform") for m in METHODS], nfes=cfg["nfes"], seed=11, device=device,
    )  # fmt: skip
    rows = [
        [r["sampler"], r["NFE"], f"{r['SW₂ exact']:.4f}", f"{r['energy exact']:.4f}", f"{r['SW₂ learned']:.4f}",
         f"{r['energy learned']:.4f}", f"{r['far learned']:.2%}"]
        for r in out.rows
    ]  # fmt: skip
    header = ["sampler", "NFE", "exact SW₂", "exact energy", "learned SW₂", "learned energy", "learned |x| > 4"]
    origin = "loaded from the cache; trained" if run.loaded else "trained"
    intro = (
        f"8-component ring mixture (radius 2, std 0.2), VP-linear schedule, ε-prediction, uniform time grid; "
        f"N = {n:,} samples against N = {n:,} fresh data points. Learned: `TimeMLP(hidden={cfg['toy_hidden']}, "
        f"depth={cfg['toy_depth']})` ({run.n_params / 1e6:.2f} M), {cfg['toy_steps']:,} steps × batch "
        f"{cfg['toy_batch']} with the process's stratified loss (`recipes.continuous.train_mixture_model`), EMA "
        f"weights; {origin} in {run.seconds:.0f} s ({run.samples_per_s:,.0f} samples/s), final loss "
        f"{sum(run.losses[-100:]) / len(run.losses[-100:]):.3f}.\n\n"
        f"**Noise floor** (data vs data, same N, 5 repeats): SW₂ = {fl_sw}, energy = {fl_ed}. "
        f"SW₂ squares distances, so a handful of far outliers dominates it while the energy distance barely "
        f"moves; the last column counts them (samples with |x| > 4, i.e. 10 std outside the ring).\n"
    )
    return intro + "\n" + _table(header, rows)


def bench_digits(device: torch.device, cfg: dict) -> str:
    """Fréchet distance of a trained U-Net's digits against the train-vs-test floor (recipes.continuous)."""
    digit_judge()  # trains and caches the feature network once if needed (not timed below)
    run = train_digits_model(
        GaussianProcess(clip_x0=1.0), base=cfg["unet_base"], steps=cfg["unet_steps"], batch_size=128, device=device,
        progress=False, cache=cfg["cache"],
    )  # fmt: skip
    n = cfg["digits_n"]
    rows = []
    for method, target in cfg["digit_samplers"]:
        steps = steps_for_nfe(method, target)
        out, secs, _ = measure(
            lambda method=method, steps=steps: sample(
                run.net, run.process, (n, 1, 8, 8), steps=steps, method=method, device=device,
                generator=torch.Generator().manual_seed(3),
            ),
            device,
        )  # fmt: skip
        rep = digits_report(out.samples)
        rows.append(
            [method, out.nfe, f"{rep.fd:.2f}", f"{rep.fd_floor:.2f}", f"{rep.nearest.median_ratio:.2f}",
             f"{rep.nearest.copy_fraction:.1%}", f"{secs:.1f}"]
        )  # fmt: skip
    header = ["sampler", "NFE", "FD to test", "floor: train vs test", "NN median ratio", "copies", "sampling s"]
    n_train, n_test = len(load_digits_images("train").labels), len(load_digits_images("test").labels)
    origin = "loaded from the cache; trained" if run.loaded else "trained"
    intro = (
        f"`UNet(8, base={cfg['unet_base']})` ({run.n_params / 1e6:.2f} M), VP-linear, ε-prediction, x̂₀ clipped to "
        f"[−1, 1]; {cfg['unet_steps']:,} steps × batch 128 on the {n_train:,} train images "
        f"(`recipes.continuous.train_digits_model`; {origin} in {run.seconds:.0f} s, {run.samples_per_s:,.0f} "
        f"samples/s), EMA weights. N = {n} samples; the floor is the FD of {n} real train images to the {n_test} "
        f"test images. NN median ratio: median distance of samples to their nearest train image ÷ the same for test "
        f"images (≈ 1 healthy, ≪ 1 memorised); copies: share closer than the 1st percentile of test→train distances "
        f"(≈ 1% expected).\n"
    )
    return intro + "\n" + _table(header, rows)


# ----------------------------------------------------------------------------------------------------------------- main
def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--write", action="store_true", help="save benchmarks/results/continuous.md")
    parser.add_argument("--skip-quality", action="store_true", help="speed and memory only")
    parser.add_argument("--retrain", action="store_true", help="train the quality models afresh (ignore the cache)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; 1 is faster on a CPU shared with other jobs)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.fast:
        cfg = dict(
            speed_steps=5,
            speed_nfe=10,
            toy_n=500,
            toy_hidden=64,
            toy_depth=2,
            toy_batch=256,
            toy_steps=150,
            nfes=(10, 50),
            unet_base=16,
            unet_steps=60,
            digits_n=200,
            digit_samplers=(("ddpm", 20),),
        )
    else:
        cfg = dict(
            speed_steps=30,
            speed_nfe=50,
            toy_n=2000,
            toy_hidden=128,
            toy_depth=3,
            toy_batch=256,
            toy_steps=1500,
            nfes=(10, 20, 50, 100, 200),
            unet_base=32,
            unet_steps=1200,
            digits_n=1000,
            digit_samplers=(("ddpm", 100), ("ode-heun", 50)),
        )
    cfg["cache"] = not args.retrain
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    main_dev = devices[-1]
    command = (
        "python benchmarks/bench_continuous.py"
        + (" --fast" if args.fast else "")
        + (" --write" if args.write else "")
        + (" --skip-quality" if args.skip_quality else "")
        + (f" --threads {args.threads}" if args.threads else "")
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out = [
        "# Continuous diffusion benchmark" + (" (FAST smoke run)" if args.fast else ""),
        "",
        f"- Date: {_dt.date.today().isoformat()}",
        f"- Machine: {hardware_summary()}; {os.cpu_count()} CPU cores visible; load average at start {load:.1f}",
        f"- Command: `{command}`",
        "",
        "Throughput numbers on a shared CPU vary with its load; quality numbers are seeded and repeatable.",
    ]
    t_start = time.perf_counter()
    for dev in devices:
        title = "CPU" if dev.type == "cpu" else f"CUDA ({torch.cuda.get_device_name(0)})"
        out += ["", f"## {title}: speed and memory", "", bench_speed(dev, cfg)]
        print("\n".join(out[-4:]), flush=True)
    if not args.skip_quality:
        where = "CPU" if main_dev.type == "cpu" else "CUDA"
        out += ["", f"## Quality against NFE: 2D mixture (run on {where})", "", bench_toy(main_dev, cfg)]
        print("\n".join(out[-4:]), flush=True)
        out += ["", f"## Digits: Fréchet distance (run on {where})", "", bench_digits(main_dev, cfg)]
        print("\n".join(out[-4:]), flush=True)
    out += ["", f"Total benchmark time: {time.perf_counter() - t_start:.0f} s.", ""]
    text = "\n".join(out)
    if args.write:
        path = Path(__file__).parent / "results" / "continuous.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)
    print(out[-2])
    return text


if __name__ == "__main__":
    main()
