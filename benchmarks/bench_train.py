"""Training-step benchmark: samples/s and peak memory of :func:`diffuse_edu.train.train_iter` for the notebook models.

Rows, for each model of notebooks 01–03 and the joint text–image model of notebook 04:

1. One process: fp32, bf16 autocast, fp16 autocast (+ GradScaler) and fp32 under ``torch.compile``, on the CPU and,
   when present, on CUDA (there also bf16 + compile).
2. Data parallel on the CPU: one process with T threads against ``torchrun --nproc_per_node=2`` with T/2 threads each,
   at the same global batch (each rank gets half).

Every row runs the real loop (AdamW, EMA, gradient clipping, the package's diffusion loss), on synthetic data of the
notebook's shapes (throughput does not depend on the values). Warm-up steps (and compilation) are not timed.

Usage::

    python benchmarks/bench_train.py                  # every row this machine can run (a few minutes on 2 CPU cores)
    python benchmarks/bench_train.py --fast           # smoke run: fewer steps, two models
    python benchmarks/bench_train.py --write          # also save benchmarks/results/train.md
    python benchmarks/bench_train.py --models unet --no-ddp --device cuda

Memory: CUDA peak is ``torch.cuda.max_memory_allocated`` during the timed steps (weights, optimiser and EMA included).
CPU peak is the peak resident set size during the timed steps minus the resident set of the fresh process (one per row)
after a two-step run of a tiny model (the library's one-time costs) and before the model was built: the training
footprint (Linux; the peak is reset through ``/proc/self/clear_refs`` after
warm-up, so compilation's transient peak is not counted).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffuse_edu.config import hardware_summary  # noqa: E402
from diffuse_edu.data.batching import infinite_batches  # noqa: E402
from diffuse_edu.gaussian import GaussianProcess  # noqa: E402
from diffuse_edu.joint import JointProcess  # noqa: E402
from diffuse_edu.masked import MaskedProcess  # noqa: E402
from diffuse_edu.nets.joint_mlp import JointMLP  # noqa: E402
from diffuse_edu.nets.mlp import TimeMLP  # noqa: E402
from diffuse_edu.nets.mmdit import JointPixelCharTransformer  # noqa: E402
from diffuse_edu.nets.transformer import DiffusionTransformer  # noqa: E402
from diffuse_edu.nets.unet import UNet  # noqa: E402
from diffuse_edu.train import train, train_iter  # noqa: E402

V_TEXT, L_TEXT = 30, 16  # notebook 02: surnames, ~30 symbols with PAD, windows of 16
V_CAPTION, L_CAPTION = 25, 32  # notebook 04: captions of captioned shapes


@dataclass
class Spec:
    """One notebook model: how to build it, its data (N examples), its loss, its batch."""

    label: str
    make: callable
    data: callable  # n -> tensor or dict of tensors
    loss: callable  # () -> loss_fn(model, batch)
    batch: int


def _specs() -> dict[str, Spec]:
    gauss = GaussianProcess()
    masked = MaskedProcess(V_TEXT)
    joint = JointProcess(
        {"point": GaussianProcess(), "label": MaskedProcess(8)}, event_shapes={"point": (2,), "label": (1,)}
    )

    text_image = JointProcess(
        {"image": GaussianProcess(), "caption": MaskedProcess(V_CAPTION)},
        event_shapes={"image": (3, 16, 16), "caption": (L_CAPTION,)},
    )

    def gen(seed):
        return torch.Generator().manual_seed(seed)

    return {
        "timemlp": Spec(
            "TimeMLP 2D, 128×3 (nb 01)",
            lambda: TimeMLP(dim=2, hidden=128, depth=3),
            lambda n: torch.randn(n, 2, generator=gen(0)),
            gauss.loss_fn,
            512,
        ),
        "unet": Spec(
            "UNet 8×8, base 16 (nb 01)",
            lambda: UNet(8, base=16),
            lambda n: torch.rand(n, 1, 8, 8, generator=gen(0)) * 2 - 1,
            gauss.loss_fn,
            128,
        ),
        "text": Spec(
            "DiffusionTransformer 128×4, L=16 (nb 02)",
            lambda: DiffusionTransformer(
                V_TEXT + 1, V_TEXT, L_TEXT, width=128, depth=4, heads=4, time_conditioning="none"
            ),
            lambda n: torch.randint(0, V_TEXT, (n, L_TEXT), generator=gen(0)),
            masked.loss_fn,
            128,
        ),
        "joint": Spec(
            "JointMLP point+label, 128×3 (nb 03)",
            lambda: JointMLP(continuous={"point": 2}, discrete={"label": (1, 8)}),
            lambda n: {
                "point": torch.randn(n, 2, generator=gen(0)),
                "label": torch.randint(0, 8, (n, 1), generator=gen(1)),
            },
            joint.loss_fn,
            256,
        ),
        "textimage": Spec(
            "JointPixelCharTransformer 'cpu' preset, 16 px + 32 chars (nb 04)",
            lambda: JointPixelCharTransformer.preset("cpu", text_len=L_CAPTION, vocab_size=V_CAPTION),
            lambda n: {
                "image": torch.rand(n, 3, 16, 16, generator=gen(0)) * 2 - 1,
                "caption": torch.randint(0, V_CAPTION, (n, L_CAPTION), generator=gen(1)),
            },
            text_image.loss_fn,
            64,
        ),
    }


# ---------------------------------------------------------------------------------------------------------- measuring
def _rss_kib() -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB from /proc/self/status (0, 0 where it is missing)."""
    try:
        vals = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM")):
                    vals[line.split(":")[0]] = int(line.split()[1])
        return vals["VmRSS"], vals["VmHWM"]
    except (OSError, KeyError):
        return 0, 0


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return
    try:  # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def measure(spec: Spec, device: torch.device, precision: str, compile: bool, warmup: int, steps: int, batch: int):
    """Train ``warmup + steps`` steps; time the last ``steps`` in three chunks and keep the fastest chunk (a shared
    machine's load comes in bursts). Returns (samples/s of all ranks, peak MiB, compiled?)."""
    # A two-step run of a 4-parameter model first: it pays the one-time costs (autograd and optimiser set-up, lazy
    # imports, thread pools), so the footprint below is the model's, not the library's.
    train(
        nn.Linear(2, 2),
        lambda m, x: m(x).pow(2).mean(),
        lambda: torch.ones(4, 2),
        steps=2,
        device=device,
        progress=False,
    )
    base_kib = _rss_kib()[0]
    torch.manual_seed(0)
    model = spec.make()
    data = spec.data(max(4096, 4 * batch))  # a tensor, or a dict of tensors
    batches = infinite_batches(data, batch_size=batch, generator=torch.Generator().manual_seed(0))
    it = train_iter(
        model,
        spec.loss(),
        batches,
        steps=warmup + steps,
        lr=1e-3,
        device=device,
        precision=precision,
        compile=compile,
        progress=False,
        seed=0,
    )
    chunk = max(1, steps // 3)
    marks = {warmup + k * chunk for k in range(steps // chunk + 1)}
    compiled, times = False, []
    for state in it:
        if state.step in marks:
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter(), state.samples))
            if state.step == warmup:
                compiled = getattr(model, "_compiled_call_impl", None) is not None
                _reset_peak(device)  # compilation's transient peak is not the training step's
    rates = [(s1 - s0) / (t1 - t0) for (t0, s0), (t1, s1) in zip(times, times[1:], strict=False)]
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = max(0, _rss_kib()[1] - base_kib) / 1024
    return max(rates), peak, compiled


# ------------------------------------------------------------------------------------------- one row, one process
def worker(args) -> None:
    """One row in a fresh process (plain, or one rank under torchrun): the global batch is split over the ranks."""
    torch.set_num_threads(args.threads)
    spec = _specs()[args.models]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    sps, peak, compiled = measure(
        spec, torch.device(args.device), args.precision, args.compile, args.warmup, args.steps, spec.batch // world
    )
    if int(os.environ.get("RANK", "0")) == 0:
        Path(args.result).write_text(json.dumps({"samples_s": sps, "peak_mib": peak, "compiled": compiled}))


def run_row(name, device, precision, compile, threads, warmup, steps, nproc=1) -> dict:
    """Run one measurement in a fresh process (``nproc`` > 1: under torchrun, gloo) and return its result."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "r.json"
        launcher = [sys.executable]
        if nproc > 1:
            launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        cmd = launcher + [__file__, "--worker", "--models", name, "--device", str(device)]
        cmd += ["--precision", precision, "--threads", str(threads), "--warmup", str(warmup), "--steps", str(steps)]
        cmd += ["--result", str(result)] + (["--compile"] if compile else [])
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        return json.loads(result.read_text())


# ---------------------------------------------------------------------------------------------------------- tables
def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _n_params(m) -> str:
    return f"{sum(p.numel() for p in m.parameters()) / 1e6:.2f} M"


def bench_device(device: torch.device, names: list[str], threads: int, warmup: int, steps: int, log) -> str:
    specs = _specs()
    configs = [("fp32", False), ("bf16", False), ("fp16", False), ("fp32", True)]
    if device.type == "cuda":
        configs.append(("bf16", True))
    rows = []
    for name in names:
        spec = specs[name]
        base_sps = None
        for precision, comp in configs:
            label = precision + (" + compile" if comp else "")
            t = time.perf_counter()
            w = warmup if not comp else warmup + 5
            r = run_row(name, device, precision, comp, threads, w, steps)
            sps, peak = r["samples_s"], r["peak_mib"]
            base_sps = base_sps or sps
            note = "" if r["compiled"] or not comp else " (compile skipped: eager)"
            rows.append(
                [
                    spec.label,
                    _n_params(spec.make()),
                    spec.batch,
                    label + note,
                    f"{sps:,.0f}",
                    f"{sps / base_sps:.2f}×",
                    f"{peak:,.1f}",
                ]
            )
            secs = time.perf_counter() - t
            log(f"  {device.type} {name} {label}: {sps:,.0f} samples/s, {peak:.1f} MiB ({secs:.0f} s)")
    header = ["model", "params", "batch", "precision", "train samples/s", "vs fp32", "peak MiB"]
    return _table(header, rows)


def bench_ddp(names: list[str], threads: int, warmup: int, steps: int, log) -> str:
    specs = _specs()
    half = max(1, threads // 2)
    setups = [(1, half), (1, threads), (2, half)] if threads > 1 else [(1, 1), (2, 1)]
    rows = []
    for name in names:
        b = specs[name].batch
        results = [run_row(name, "cpu", "fp32", False, t, warmup, steps, nproc=n) for n, t in setups]
        first = results[0]["samples_s"]
        for k, ((n, t), r) in enumerate(zip(setups, results, strict=True)):
            label = f"{n} process{'es' if n > 1 else ''} × {t} thread{'s' if t > 1 else ''}" + (
                " (gloo)" if n > 1 else ""
            )
            rows.append(
                [specs[name].label if k == 0 else "", b if n == 1 else f"{b // n} per rank", label]
                + [f"{r['samples_s']:,.0f}", f"{r['samples_s'] / first:.2f}×", f"{r['peak_mib']:,.0f}"]
            )
        log(
            f"  ddp {name}: "
            + ", ".join(f"{n}×{t}: {r['samples_s']:,.0f}" for (n, t), r in zip(setups, results, strict=True))
        )
    header = ["model", "batch", "processes × threads", "train samples/s (all ranks)", "vs first row", "rank-0 MiB"]
    return _table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="smoke run: two models, few steps")
    parser.add_argument("--write", action="store_true", help="save benchmarks/results/train.md")
    parser.add_argument("--models", default=None, help="comma-separated subset of timemlp,unet,text,textimage,joint")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the CPU, plus CUDA when present)")
    parser.add_argument("--no-ddp", action="store_true", help="skip the 1 vs 2 process rows")
    parser.add_argument("--out", default=None, help="also write the report into this folder (train.md / train_cuda.md)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per single process (default: all)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    names = args.models.split(",") if args.models else (["timemlp", "joint"] if args.fast else list(_specs()))
    unknown = set(names) - set(_specs())
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; choose among {list(_specs())}")
    warmup = args.warmup or (2 if args.fast else 5)
    steps = args.steps or (5 if args.fast else 30)
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)  # only for hardware_summary(): every row runs in its own process
    devices = [torch.device(args.device)] if args.device else [torch.device("cpu")]
    if args.device is None and torch.cuda.is_available():
        devices.append(torch.device("cuda"))

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    parts = [
        "# Training step: precision, compilation, data parallel (`bench_train.py`)\n",
        f"- Date: {_dt.date.today().isoformat()}",
        f"- Machine: {hardware_summary()}; {os.cpu_count()} CPU cores visible; load average at start {load:.1f}",
        f"- Command: `python benchmarks/bench_train.py {' '.join(sys.argv[1:])}`",
        f"- Each row: {warmup} warm-up steps (+5 when compiling; compilation not timed), then {steps} timed steps "
        "(best of three chunks) of the full loop (AdamW, EMA, clipping, the package's diffusion loss) on synthetic "
        "data of the notebook's shapes.",
        "",
        "Throughput on a shared CPU varies with its load; compare rows of one run, not across runs.",
    ]
    for device in devices:
        log(f"[{device}]")
        table = bench_device(device, names, threads, warmup, steps, log)
        parts += [f"\n## {device.type.upper()}: one process, {threads} thread{'s' if threads > 1 else ''}\n", table]
        if device.type == "cpu":
            parts.append(
                "\nPeak MiB on the CPU: peak resident set during the timed steps minus the fresh process's resident "
                "set before the model was built, after a two-step run of a tiny model (weights, AdamW, EMA, data, "
                "activations; compiled rows also hold their generated code)."
            )
        else:
            parts.append(
                "\nPeak MiB on CUDA: `max_memory_allocated` during the timed steps (weights and optimiser included)."
            )
    if "cuda" not in [d.type for d in devices]:
        parts.append(
            "\n## CUDA\n\nNo GPU on this machine: the CUDA rows (fp32 / bf16 / fp16 / compiled, one process) remain "
            "to be measured: `python benchmarks/bench_train.py --device cuda --no-ddp` on a GPU machine "
            "(`scripts/gpu_check.sh` runs every benchmark's CUDA section)."
        )
    if not args.no_ddp:
        log("[ddp]")
        parts += [
            "\n## CPU: 1 process vs 2 processes (DDP, gloo), same global batch\n",
            bench_ddp(names, threads, warmup, steps, log),
            "\nSame global batch in every row (each of the 2 ranks takes half); each process runs the stated number of "
            "torch threads, and the 2-process rows add one gradient all-reduce (gloo) per step.",
        ]
    text = "\n".join(parts) + "\n"
    print(text)
    name = "train.md" if "cpu" in [d.type for d in devices] else "train_cuda.md"
    paths = [ROOT / "benchmarks" / "results" / name] if args.write else []
    paths += [Path(args.out) / name] if args.out else []
    for out in paths:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        log(f"wrote {out}")


if __name__ == "__main__":
    main()
