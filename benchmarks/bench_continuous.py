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
from diffuse_edu.metrics.frechet import (
    frechet_digits,
    frechet_noise_floor,
    get_digit_classifier,
    nearest_neighbour_check,
)
from diffuse_edu.nets.mlp import TimeMLP
from diffuse_edu.nets.unet import UNet
from diffuse_edu.samplers import nfe_of, sample
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


def diffusion_loss(process: GaussianProcess):
    """``loss_fn(model, x0)`` for :func:`diffuse_edu.train.train`: t ~ U[0, 1], x_t ~ q(x_t | x0), mean of the loss."""

    def loss_fn(model, x0):
        t = torch.rand(x0.shape[0], device=x0.device)
        c = process.corrupt_with_noise(x0, t)
        return process.loss(model(c.x_t, t), x0, c.x_t, t).mean()

    return loss_fn


def _steps_for(method: str, nfe: int) -> int:
    # Heun spends 2·steps − 1 calls; pick the step count whose NFE is closest to the target from below.
    return max(1, (nfe + 1) // 2) if method == "ode-heun" else nfe


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _n_params(m) -> str:
    return f"{sum(p.numel() for p in m.parameters()) / 1e6:.2f} M"


# ---------------------------------------------------------------------------------------------------------------- speed
def bench_speed(device: torch.device, cfg: dict) -> str:
    """Training and sampling throughput and peak memory for the two models on ``device``."""
    rows = []
    mix = ring_mixture(8)
    digits = load_digits_images("train").images
    specs = [
        ("TimeMLP 2D (256×4)", lambda: TimeMLP(), lambda b, g: mix.sample(b, generator=g).float(), (2,), 512, 2000),
        ("UNet 8×8 (base 32)", lambda: UNet(8, base=32), None, (1, 8, 8), 128, 500),
    ]
    for name, make, draw, event, batch, n_sample in specs:
        torch.manual_seed(0)
        model = make()
        process = GaussianProcess(clip_x0=1.0 if len(event) == 3 else None)
        g = torch.Generator().manual_seed(0)
        if draw is None:
            batches = infinite_batches(digits, batch_size=batch, generator=g)
        else:
            batches = partial(draw, batch, g)
        kw = dict(device=device, progress=False, seed=0)
        train(model, diffusion_loss(process), batches, steps=3, **kw)  # warm-up: allocator, kernels
        res, _, train_mem = measure(
            lambda: train(model, diffusion_loss(process), batches, steps=cfg["speed_steps"], **kw), device
        )
        ema = res.ema_model
        shape = (n_sample, *event)
        sample(ema, process, (8, *event), steps=2, device=device, generator=torch.Generator().manual_seed(0))
        out, secs, sample_mem = measure(
            lambda: sample(
                ema,
                process,
                shape,
                steps=cfg["speed_nfe"],
                method="ddpm",
                device=device,
                generator=torch.Generator().manual_seed(1),
            ),
            device,
        )
        rows.append(
            [
                name,
                _n_params(model),
                batch,
                f"{res.samples_per_s:,.0f}",
                f"{train_mem:,.0f}",
                n_sample,
                f"{n_sample / secs:,.0f}",
                f"{n_sample * out.nfe / secs:,.0f}",
                f"{sample_mem:,.0f}",
            ]
        )
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
    """Quality against NFE on the 2D ring mixture: exact score vs a trained TimeMLP."""
    mix = ring_mixture(8)
    process = GaussianProcess()
    n = cfg["toy_n"]
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = TimeMLP(hidden=cfg["toy_hidden"], depth=cfg["toy_depth"])
    res = train(
        model,
        diffusion_loss(process),
        partial(lambda b: mix.sample(b, generator=g).float(), cfg["toy_batch"]),
        steps=cfg["toy_steps"],
        lr=2e-3,
        warmup=min(100, cfg["toy_steps"] // 10),
        lr_decay="cosine",
        device=device,
        progress=False,
        seed=0,
    )
    learned = res.ema_model
    exact = mix.exact_model(process.schedule, "eps")
    reference = mix.sample(n, generator=torch.Generator().manual_seed(123)).float()

    def sw(x, y):  # the same 256 directions every time, so rows differ only through the samples
        return sliced_wasserstein(x.cpu().double(), y.cpu().double(), generator=torch.Generator().manual_seed(7))

    def ed(x, y):
        return energy_distance(x.cpu().double(), y.cpu().double())

    fl_sw = noise_floor(
        lambda k, gg: mix.sample(k, generator=gg), sw, n, repeats=5, generator=torch.Generator().manual_seed(5)
    )
    fl_ed = noise_floor(
        lambda k, gg: mix.sample(k, generator=gg), ed, n, repeats=5, generator=torch.Generator().manual_seed(6)
    )
    rows = []
    for method in METHODS:
        for target in cfg["nfes"]:
            steps = _steps_for(method, target)
            cells = [method, nfe_of(method, steps)]
            for net in (exact, learned):
                out = sample(
                    net,
                    process,
                    (n, 2),
                    steps=steps,
                    method=method,
                    device=device,
                    generator=torch.Generator(device="cpu").manual_seed(11),
                )
                assert out.nfe == nfe_of(method, steps)
                cells += [f"{sw(out.samples, reference):.4f}", f"{ed(out.samples, reference):.4f}"]
            # Far outliers: the ring has radius 2 and std 0.2, so |x| > 4 is 10 std outside it.
            cells.append(f"{(out.samples.norm(dim=1) > 4).double().mean().item():.2%}")
            rows.append(cells)
    header = ["sampler", "NFE", "exact SW₂", "exact energy", "learned SW₂", "learned energy", "learned |x| > 4"]
    intro = (
        f"8-component ring mixture (radius 2, std 0.2), VP-linear schedule, ε-prediction, uniform time grid; "
        f"N = {n:,} samples against N = {n:,} fresh data points. Learned: `TimeMLP(hidden={cfg['toy_hidden']}, "
        f"depth={cfg['toy_depth']})` ({_n_params(model)}), {cfg['toy_steps']:,} steps × batch {cfg['toy_batch']}, "
        f"EMA weights; trained in {res.seconds:.0f} s ({res.samples_per_s:,.0f} samples/s), final loss "
        f"{sum(res.losses[-100:]) / len(res.losses[-100:]):.3f}.\n\n"
        f"**Noise floor** (data vs data, same N, 5 repeats): SW₂ = {fl_sw}, energy = {fl_ed}. "
        f"SW₂ squares distances, so a handful of far outliers dominates it while the energy distance barely "
        f"moves; the last column counts them (samples with |x| > 4, i.e. 10 std outside the ring).\n"
    )
    return intro + "\n" + _table(header, rows)


def bench_digits(device: torch.device, cfg: dict) -> str:
    """Fréchet distance of a trained U-Net's digits against the train-vs-test floor."""
    get_digit_classifier()  # trains and caches the feature network once if needed (not timed below)
    train_set = load_digits_images("train")
    test_set = load_digits_images("test")
    process = GaussianProcess(clip_x0=1.0)
    torch.manual_seed(0)
    model = UNet(8, base=cfg["unet_base"])
    g = torch.Generator().manual_seed(0)
    res = train(
        model,
        diffusion_loss(process),
        infinite_batches(train_set.images, batch_size=128, generator=g),
        steps=cfg["unet_steps"],
        lr=2e-3,
        warmup=min(100, cfg["unet_steps"] // 10),
        lr_decay="cosine",
        device=device,
        progress=False,
        seed=0,
    )
    n = cfg["digits_n"]
    floor = frechet_noise_floor(n, "test")
    rows = []
    for method, target in cfg["digit_samplers"]:
        steps = _steps_for(method, target)
        out, secs, _ = measure(
            lambda: sample(
                res.ema_model,
                process,
                (n, 1, 8, 8),
                steps=steps,
                method=method,
                device=device,
                generator=torch.Generator().manual_seed(3),
            ),
            device,
        )
        x = out.samples.cpu()
        nn_check = nearest_neighbour_check(x, train_set.images, test_set.images)
        rows.append(
            [
                method,
                out.nfe,
                f"{frechet_digits(x, 'test'):.2f}",
                f"{floor:.2f}",
                f"{nn_check.median_ratio:.2f}",
                f"{nn_check.copy_fraction:.1%}",
                f"{secs:.1f}",
            ]
        )
    header = ["sampler", "NFE", "FD to test", "floor: train vs test", "NN median ratio", "copies", "sampling s"]
    intro = (
        f"`UNet(8, base={cfg['unet_base']})` ({_n_params(model)}), VP-linear, ε-prediction, x̂₀ clipped to "
        f"[−1, 1]; {cfg['unet_steps']:,} steps × batch 128 on the {len(train_set.labels):,} train images "
        f"({res.seconds:.0f} s, {res.samples_per_s:,.0f} samples/s), EMA weights. N = {n} samples; the floor "
        f"is the FD of {n} real train images to the {len(test_set.labels)} test images. NN median ratio: "
        f"median distance of samples to their nearest train image ÷ the same for test images (≈ 1 healthy, "
        f"≪ 1 memorised); copies: share closer than the 1st percentile of test→train distances (≈ 1% expected).\n"
    )
    return intro + "\n" + _table(header, rows)


# ----------------------------------------------------------------------------------------------------------------- main
def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--write", action="store_true", help="save benchmarks/results/continuous.md")
    parser.add_argument("--skip-quality", action="store_true", help="speed and memory only")
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
