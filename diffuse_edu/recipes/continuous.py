"""The continuous experiment (notebook 01, ``benchmarks/bench_continuous.py``): Gaussian diffusion on a 2D mixture
with an exact score, then on 8×8 digits.

Notebook 01 and its benchmark call these functions with their own sizes, so a figure in the docs and a row in a
benchmark come from one code path.

* :func:`train_mixture_model` — a :class:`~diffuse_edu.nets.mlp.TimeMLP` on fresh draws from a Gaussian mixture
  (infinite data); :func:`train_digits_model` — a :class:`~diffuse_edu.nets.unet.UNet` on the digits train split.
  Both train with the process's own stratified loss (:meth:`~diffuse_edu.process.Process.loss_fn`) and are cached by
  configuration (:mod:`diffuse_edu.cache`).
* :func:`excess_error` — how far a network's ε̂ is from the exact denoiser's, next to the irreducible error.
* :func:`score_at` — a network's (or the exact) score at one time as a function of CPU points, for plots.
* :func:`quality_vs_nfe` — every sampler at several budgets of network calls, for several models (e.g. the exact
  score and a trained network), scored by any two-sample metrics.
* :func:`digits_report` — Fréchet distance of digit samples next to its floor, and the nearest-neighbour check.

**Devices.** Training runs on ``device`` (default :func:`~diffuse_edu.config.get_device`). Evaluation builds its
tensors on the network's device (read from its parameters) unless ``device=`` says otherwise; metrics see CPU
tensors. Every generator is a CPU generator, so the draws are the same on any device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..config import get_device
from ..data.batching import infinite_batches
from ..data.digits import load_digits_images
from ..data.toys import GaussianMixture, ring_mixture
from ..gaussian import GaussianProcess
from ..metrics.frechet import NearestNeighbourReport, nearest_neighbour_check
from ..nets.mlp import TimeMLP
from ..nets.unet import UNet
from ..sampling import model_device, nfe_of, sample
from ..train import train
from ._cache import load_trained, save_trained
from .judges import digits_frechet_floor, digits_split, frechet_to_digits

__all__ = [
    "SAMPLERS",
    "TrainedModel",
    "default_mixture",
    "train_mixture_model",
    "train_digits_model",
    "excess_error",
    "score_at",
    "steps_for_nfe",
    "QualityVsNFE",
    "quality_vs_nfe",
    "DigitsReport",
    "digits_report",
]

#: (method, grid) of every Gaussian sampler: the ODE samplers on the EDM grid, the stochastic ones on the uniform one
#: (with large first steps the EDM grid makes Euler–Maruyama unstable).
SAMPLERS = (("ddpm", "uniform"), ("euler-maruyama", "uniform"), ("ode-euler", "edm"), ("ode-heun", "edm"))


@dataclass
class TrainedModel:
    """A trained network and what its training measured.

    Attributes:
        net: the EMA network, eval mode, ``net(x_t, t)``.
        process: the :class:`~diffuse_edu.gaussian.GaussianProcess` it was trained for.
        losses: loss per step.  seconds, samples_per_s: the training run's wall time and throughput (also when
            the model was loaded from the cache).
        n_params: parameters of the network.  loaded: whether it came from the cache.
    """

    net: nn.Module
    process: GaussianProcess
    losses: list[float] = field(repr=False)
    seconds: float
    samples_per_s: float
    n_params: int
    loaded: bool = False


def default_mixture() -> GaussianMixture:
    """The 2D toy: eight isotropic components of std 0.2 on a ring of radius 2."""
    return ring_mixture(k=8, radius=2.0, std=0.2)


def _train_cached(kind, config, build, process, batches_fn, *, steps, lr, warmup, seed, device, progress, cache, root):
    """Load ``kind``/``config`` from the cache, or build (seeded) and train a network and cache it."""
    if cache:
        hit = load_trained(kind, config, root=root, device=device or get_device())
        if hit is not None:
            net, info = hit
            n_params = sum(p.numel() for p in net.parameters())
            return TrainedModel(net, process, info["losses"], info["seconds"], info["samples_per_s"], n_params, True)
    with torch.random.fork_rng(devices=[]):  # initialising does not move the caller's global stream
        torch.manual_seed(seed)
        net = build()
    g = torch.Generator().manual_seed(seed)
    res = train(
        net, process.loss_fn(generator=g), batches_fn(g), steps=steps, lr=lr,
        warmup=min(100, steps // 5) if warmup is None else warmup, lr_decay="cosine", seed=seed, device=device,
        progress=progress,
    )  # fmt: skip
    if cache:
        info = dict(losses=res.losses, seconds=res.seconds, samples_per_s=res.samples_per_s)
        save_trained(kind, config, res.model, res.ema_model, info, root=root)
    n_params = sum(p.numel() for p in net.parameters())
    return TrainedModel(res.ema_model.eval(), process, res.losses, res.seconds, res.samples_per_s, n_params)


def train_mixture_model(
    mixture: GaussianMixture | None = None,
    process: GaussianProcess | None = None,
    *,
    hidden: int = 128,
    depth: int = 3,
    steps: int = 1200,
    batch_size: int = 512,
    lr: float = 2e-3,
    warmup: int | None = None,
    seed: int = 0,
    device=None,
    progress: bool = True,
    cache: bool = True,
    cache_root=None,
) -> TrainedModel:
    """Train a :class:`TimeMLP` on fresh draws from ``mixture`` (default :func:`default_mixture`).

    The loss is ``process.loss_fn`` (default ``GaussianProcess(prediction="v")``: VP-linear schedule,
    v-prediction); AdamW at ``lr`` with ``warmup`` steps (default ``min(100, steps // 5)``) and cosine decay, EMA
    weights. The network is initialised from ``seed``, and one generator seeded ``seed`` draws the data, the training
    times and the noise.

    Args:
        cache: load the model if this configuration was trained before, save it after training
            (``<cache root>/continuous/mixture/<hash>``); ``cache_root`` overrides the root.
        device: where to train (default :func:`~diffuse_edu.config.get_device`); a cached model is loaded there.
    """
    mixture = mixture if mixture is not None else default_mixture()
    process = process if process is not None else GaussianProcess(prediction="v")
    config = dict(
        version=1,
        mixture=dict(means=mixture.means.tolist(), eigvals=mixture.eigvals.tolist(), weights=mixture.weights.tolist()),
        process=repr(process), hidden=hidden, depth=depth, steps=steps, batch_size=batch_size, lr=lr, warmup=warmup,
        seed=seed,
    )  # fmt: skip
    return _train_cached(
        "continuous/mixture", config, lambda: TimeMLP(dim=mixture.dim, hidden=hidden, depth=depth), process,
        lambda g: (lambda: mixture.sample(batch_size, generator=g)), steps=steps, lr=lr, warmup=warmup, seed=seed,
        device=device, progress=progress, cache=cache, root=cache_root,
    )  # fmt: skip


def train_digits_model(
    process: GaussianProcess | None = None,
    *,
    base: int = 16,
    steps: int = 1200,
    batch_size: int = 128,
    lr: float = 2e-3,
    warmup: int | None = None,
    seed: int = 0,
    device=None,
    progress: bool = True,
    cache: bool = True,
    cache_root=None,
) -> TrainedModel:
    """Train a :class:`UNet` on the 8×8 digits train split (shuffled epochs from a generator seeded ``seed``).

    Default process ``GaussianProcess(prediction="v", clip_x0=1.0)`` (VP-linear, x̂₀ clipped to the data range inside
    the sampler); otherwise as :func:`train_mixture_model` (cached under ``continuous/digits``).
    """
    process = process if process is not None else GaussianProcess(prediction="v", clip_x0=1.0)
    images = load_digits_images("train").images
    config = dict(
        version=1, data="digits/train", process=repr(process), base=base, steps=steps,
        batch_size=batch_size, lr=lr, warmup=warmup, seed=seed,
    )  # fmt: skip
    return _train_cached(
        "continuous/digits", config, lambda: UNet(8, base=base), process,
        lambda g: infinite_batches(images, batch_size=batch_size, generator=g), steps=steps, lr=lr, warmup=warmup,
        seed=seed, device=device, progress=progress, cache=cache, root=cache_root,
    )  # fmt: skip


@torch.no_grad()
def excess_error(
    net,
    process: GaussianProcess,
    mixture: GaussianMixture,
    times: Sequence[float] = (0.005, 0.02, 0.1, 0.3, 0.6, 0.9, 1.0),
    n: int = 4000,
    seed: int = 4,
    device=None,
) -> list[dict]:
    r"""The network's excess ε error over the exact denoiser's, next to the irreducible error, at each time.

    One row per time: ``σ_t``, the irreducible :math:`E\lVert\varepsilon - \hat\varepsilon_{exact}\rVert^2` and the
    excess :math:`E\lVert\hat\varepsilon_{net} - \hat\varepsilon_{exact}\rVert^2`, over ``n`` fresh pairs
    (x₀, ε) per time from one generator seeded ``seed``.
    """
    device = torch.device(device) if device is not None else model_device(net)
    g = torch.Generator().manual_seed(seed)
    exact_eps = mixture.exact_model(process.schedule, "eps")
    rows = []
    for tt in times:
        tb = torch.full((n,), float(tt), device=device)
        c = process.corrupt_with_noise(mixture.sample(n, generator=g).to(device), tb, generator=g)
        eps_exact = exact_eps(c.x_t, tb).cpu()
        eps_net = process.to_eps(c.x_t, tb, net(c.x_t, tb)).cpu()
        rows.append(
            {
                "t": tt,
                "σ_t": process.schedule.sigma(torch.tensor(float(tt))).item(),
                "irreducible E‖ε − ε̂_exact‖²": (c.eps.cpu() - eps_exact).pow(2).sum(1).mean().item(),
                "excess E‖ε̂_net − ε̂_exact‖²": (eps_net - eps_exact).pow(2).sum(1).mean().item(),
            }
        )
    return rows


def score_at(model, process: GaussianProcess, t: float, device=None) -> Callable[[Tensor], Tensor]:
    """``fn(points (N, D)) -> score (N, D)`` of ``model`` at time ``t``, taking and returning CPU tensors.

    ``model(x, t)`` is a network (run on its device, or ``device``) or an exact model such as
    ``mixture.exact_model(process.schedule, process.prediction)``.
    """
    device = torch.device(device) if device is not None else model_device(model)

    @torch.no_grad()
    def fn(points: Tensor) -> Tensor:
        x = points.to(device)
        tb = torch.full((x.shape[0],), float(t), device=device)
        return process.to_score(x, tb, model(x, tb)).float().cpu()

    return fn


def steps_for_nfe(method: str, nfe: int) -> int:
    """Steps whose network calls come closest to ``nfe`` from below: Heun spends 2·steps − 1, the others one each."""
    return max(1, (nfe + 1) // 2) if method == "ode-heun" else nfe


@dataclass
class QualityVsNFE:
    """What :func:`quality_vs_nfe` returns.

    Attributes:
        rows: one dict per (sampler, NFE target): ``sampler``, ``grid``, ``steps``, ``NFE``, and
            ``f"{metric} {model}"`` for every metric and model.
        samples: (method, NFE target, model name) → the samples, a CPU tensor.
    """

    rows: list[dict]
    samples: dict[tuple[str, int, str], Tensor] = field(repr=False)


def quality_vs_nfe(
    models: Mapping[str, Callable[[Tensor, Tensor], Tensor]],
    process: GaussianProcess,
    shape: Sequence[int],
    metrics: Mapping[str, Callable[[Tensor], float]],
    *,
    samplers: Sequence[tuple[str, str]] = SAMPLERS,
    nfes: Sequence[int] = (10, 25, 50, 100),
    seed: int = 8,
    device=None,
) -> QualityVsNFE:
    """Sample every model with every sampler at several budgets of network calls and score the samples.

    Args:
        models: name → ``model(x_t, t)``, e.g. ``{"exact": mixture.exact_model(...), "learned": net}``.
        shape: (N, ...) of each sample.
        metrics: name → ``metric(samples) -> float`` on CPU samples, e.g. a sliced Wasserstein distance to a fixed
            reference sample.
        samplers: (method, grid) pairs (default :data:`SAMPLERS`).
        nfes: target network calls; Heun gets the step count of :func:`steps_for_nfe`.
        seed: every sampling run uses a fresh CPU generator with this seed (so the rows differ only by the sampler).
        device: where to sample (default: each model's device).
    """
    rows, bank = [], {}
    for method, grid in samplers:
        for target in nfes:
            steps = steps_for_nfe(method, target)
            row = dict(sampler=method, grid=grid, steps=steps, NFE=nfe_of(method, steps))
            for name, model in models.items():
                res = sample(
                    model, process, tuple(shape), steps=steps, method=method, grid=grid, device=device,
                    generator=torch.Generator().manual_seed(seed),
                )  # fmt: skip
                if res.nfe != row["NFE"]:
                    raise RuntimeError(f"{method} made {res.nfe} network calls; nfe_of says {row['NFE']}.")
                x = res.samples.cpu()
                for key, metric in metrics.items():
                    row[f"{key} {name}"] = float(metric(x))
                bank[(method, target, name)] = x
            rows.append(row)
    return QualityVsNFE(rows, bank)


@dataclass
class DigitsReport:
    """Digit samples against real images.

    Attributes:
        fd: Fréchet distance (features of :func:`~diffuse_edu.recipes.judges.digit_judge`) of the samples to the
            test split.
        fd_floor: the same for ``n`` real train images (what a perfect model scores at this sample size).
        nearest: the nearest-neighbour copy check (:class:`~diffuse_edu.metrics.frechet.NearestNeighbourReport`).
        n: number of samples.
    """

    fd: float
    fd_floor: float
    nearest: NearestNeighbourReport = field(repr=False)
    n: int


def digits_report(samples: Tensor) -> DigitsReport:
    """Fréchet distance of digit images ``samples`` (N, 1, 8, 8) in [−1, 1] to the test split, its floor at the same
    N, and the nearest-neighbour check against the train split (test images as the reference)."""
    x = samples.detach().cpu()
    n = x.shape[0]
    return DigitsReport(
        fd=frechet_to_digits(x, "test"),
        fd_floor=digits_frechet_floor(n=n, reference="test"),
        nearest=nearest_neighbour_check(x, digits_split("train"), digits_split("test")),
        n=n,
    )
