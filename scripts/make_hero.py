"""Draw docs/assets/hero.png: one clock per modality, shown on a 2-D point cloud and on a word.

Top row: samples of an 8-component ring mixture pushed through the Gaussian forward process
x_t = α(t) x_0 + σ(t) ε (cosine schedule). Bottom row: the word "DIFFUSION" under the masked process, each letter
kept with probability α(t) (log-linear schedule), otherwise replaced by the mask symbol. Same t in each column.

    python scripts/make_hero.py            # writes docs/assets/hero.png (uses only diffuse_edu.schedules + numpy)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from diffuse_edu.schedules import ScheduleCosine, ScheduleLogLinear  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def ring_samples(n: int, rng: np.random.Generator, k: int = 8, radius: float = 2.0, std: float = 0.18) -> np.ndarray:
    """n points from k equal-weight Gaussians on a circle, with their component index for colouring."""
    comp = rng.integers(k, size=n)
    angle = 2 * np.pi * comp / k
    centres = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return centres + std * rng.standard_normal((n, 2)), comp


def main(out: Path, n: int = 1500, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x0, comp = ring_samples(n, rng)
    eps = rng.standard_normal(x0.shape)
    word = "DIFFUSION"
    keep_u = rng.random(len(word))  # one uniform per letter: a letter is masked once α(t) drops below it
    times = [0.0, 0.25, 0.5, 0.75, 1.0]
    gauss, masked = ScheduleCosine(alpha_end=1e-3), ScheduleLogLinear()

    fig, axes = plt.subplots(2, len(times), figsize=(10, 3.1), dpi=80, gridspec_kw={"height_ratios": [4, 1]})
    for j, t in enumerate(times):
        a = float(gauss.alpha(torch.tensor(t)))
        s = float(gauss.sigma(torch.tensor(t)))
        xt = a * x0 + s * eps
        ax = axes[0, j]
        ax.scatter(xt[:, 0], xt[:, 1], c=comp, cmap="tab10", vmin=0, vmax=9, s=2, alpha=0.7, linewidths=0)
        ax.set(xlim=(-3.2, 3.2), ylim=(-3.2, 3.2), xticks=[], yticks=[], aspect="equal")
        ax.set_title(f"t = {t:g}", fontsize=11)
        ax.text(0.04, 0.96, f"α = {a:.2f}", transform=ax.transAxes, va="top", fontsize=8, color="0.3")
        am = float(masked.alpha(torch.tensor(t)))
        text = "".join(c if u < am else "_" for c, u in zip(word, keep_u, strict=True))
        ax = axes[1, j]
        ax.axis("off")
        ax.text(0.5, 0.62, text, ha="center", va="center", family="monospace", fontsize=13, fontweight="bold")
        ax.text(0.5, 0.0, f"α = {am:.2f}", ha="center", va="center", fontsize=8, color="0.3")
    axes[0, 0].set_ylabel("Gaussian\n(cosine)", fontsize=9)
    fig.text(0.01, 0.13, "masked\n(log-linear)", fontsize=9, va="center")
    fig.suptitle("One forward process and one clock per modality: data at t = 0, noise at t = 1", fontsize=11)
    fig.tight_layout(rect=(0.02, 0, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "assets" / "hero.png")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    main(args.out, seed=args.seed)
