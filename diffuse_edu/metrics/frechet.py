"""Image quality for the 8×8 digits: a Fréchet distance in the features of a small in-package classifier.

The FID recipe (Heusel et al. 2017, Eq. 6) at toy scale: fit a Gaussian to the penultimate-layer features of real and
generated images and measure ``‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})``. Inception is far too big
(and needs a download), so the package trains its own digit CNN on the train split in seconds and caches it
(safetensors + JSON, keyed by a hash of its config). Always read an FD next to its floor
(:func:`frechet_noise_floor`: real train images against the test split, same sample size), and check memorisation
with :func:`nearest_neighbour_check`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_float_tensor

__all__ = [
    "DigitClassifier",
    "get_digit_classifier",
    "digit_features",
    "predict_digits",
    "classifier_accuracy",
    "gaussian_stats",
    "frechet_from_stats",
    "frechet_distance",
    "frechet_digits",
    "frechet_noise_floor",
    "NearestNeighbourReport",
    "nearest_neighbour_check",
    "cache_dir",
]

# Everything that changes the trained classifier goes in here, so a change gives a new cache key.
CLASSIFIER_CONFIG = dict(
    version=1,
    width=16,
    feat_dim=64,
    epochs=10,
    batch_size=64,
    lr=3e-3,
    seed=0,
    split_seed=0,
    test_fraction=0.2,
    shift_augment=1,
)


class DigitClassifier(nn.Module):
    """Small CNN for 8×8 digits: (B, 1, 8, 8) in [−1, 1] → logits (B, 10); :meth:`features` → (B, feat_dim)."""

    def __init__(self, width: int = 16, feat_dim: int = 64):
        super().__init__()
        self._config = dict(width=width, feat_dim=feat_dim)
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * 16, feat_dim)
        self.head = nn.Linear(feat_dim, 10)

    def config(self) -> dict:
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict) -> "DigitClassifier":
        return cls(**config)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features, shape (B, feat_dim)."""
        h = F.relu(self.conv1(x))
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (B, 2w, 4, 4)
        h = F.relu(self.conv3(h))
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def cache_dir() -> Path:
    """Where trained helper models live: ``$DIFFUSE_EDU_CACHE`` or ``~/.cache/diffuse_edu``."""
    return Path(os.environ.get("DIFFUSE_EDU_CACHE") or Path.home() / ".cache" / "diffuse_edu")


def _config_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def _random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Shift each image by up to ``max_shift`` pixels (zero = background −1 padding): cheap augmentation."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(b, 1, h, w + 2 * max_shift)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(b, 1, h, w)
    return out.gather(3, cols)


def _train_classifier(config: dict, verbose: bool) -> DigitClassifier:
    threads = torch.get_num_threads()
    # One thread: for convolutions this small, threading overhead costs more than it gains (4x on a busy 2-core CPU).
    torch.set_num_threads(1)
    try:
        return _train_classifier_1t(config, verbose)
    finally:
        torch.set_num_threads(threads)


def _train_classifier_1t(config: dict, verbose: bool) -> DigitClassifier:
    from ..data.digits import load_digits_images

    train = load_digits_images("train", seed=config["split_seed"], test_fraction=config["test_fraction"])
    gen = torch.Generator().manual_seed(config["seed"])
    # fork_rng: building the classifier must not move the user's global random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config["seed"])
        model = DigitClassifier(config["width"], config["feat_dim"])
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    n, bs = len(train.labels), config["batch_size"]
    steps = config["epochs"] * (n // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config["lr"], total_steps=steps)
    model.train()
    for _ in range(config["epochs"]):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n - bs + 1, bs):
            idx = perm[start : start + bs]
            x = _random_shift(train.images[idx], config["shift_augment"], gen)
            loss = F.cross_entropy(model(x), train.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval().requires_grad_(False)
    if verbose:
        test = load_digits_images("test", seed=config["split_seed"], test_fraction=config["test_fraction"])
        acc = classifier_accuracy(test.images, test.labels, model)
        print(f"diffuse_edu: trained the digit classifier for Fréchet distances (test accuracy {acc:.1%}).")
    return model


_LOADED: dict[tuple[str, str], DigitClassifier] = {}


def get_digit_classifier(
    cache: str | Path | None = None, *, retrain: bool = False, verbose: bool = True
) -> DigitClassifier:
    """The feature network, loaded from the cache or trained (≈ 5–20 s on a CPU, once) and cached.

    Args:
        cache: cache folder (default :func:`cache_dir`).
        retrain: ignore any cached copy.
        verbose: print when training.
    Returns:
        A :class:`DigitClassifier` in eval mode on the CPU.
    """
    from ..checkpoint import load_checkpoint, save_checkpoint

    folder = Path(cache) if cache is not None else cache_dir()
    key = _config_key(CLASSIFIER_CONFIG)
    mem_key = (str(folder.resolve()), key)
    if not retrain and mem_key in _LOADED:
        return _LOADED[mem_key]
    stem = folder / f"digit_classifier-{key}"
    model = None
    if not retrain and stem.with_name(stem.name + ".json").exists():
        try:
            model = load_checkpoint(stem).model.eval().requires_grad_(False)
        except (OSError, ValueError, RuntimeError):
            model = None  # a damaged cache file: train again
    if model is None:
        model = _train_classifier(CLASSIFIER_CONFIG, verbose)
        save_checkpoint(stem, model, {"classifier": CLASSIFIER_CONFIG})
    _LOADED[mem_key] = model
    return model


def _as_images(x, name: str) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    check_float_tensor(x, name, min_ndim=2)
    x = x.detach().float().cpu()
    if x.ndim == 2 and x.shape[1] == 64:
        x = x.reshape(-1, 1, 8, 8)
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 8, 8):
        raise ValueError(
            f"{name} must be digit images of shape (N, 1, 8, 8) (or (N, 64)) in [−1, 1]; got shape {tuple(x.shape)}."
        )
    return x


@torch.no_grad()
def digit_features(x: Tensor, classifier: DigitClassifier | None = None, batch_size: int = 1024) -> Tensor:
    """Penultimate-layer classifier features of images ``x`` shape (N, 1, 8, 8) in [−1, 1] → shape (N, feat_dim)."""
    x = _as_images(x, "x")
    classifier = classifier or get_digit_classifier()
    return torch.cat([classifier.features(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def predict_digits(x: Tensor, classifier: DigitClassifier | None = None) -> Tensor:
    """Predicted class of each image, shape (N,) int64."""
    x = _as_images(x, "x")
    classifier = classifier or get_digit_classifier()
    return classifier(x).argmax(-1)


def classifier_accuracy(x: Tensor, labels: Tensor, classifier: DigitClassifier | None = None) -> float:
    """Share of images ``x`` (N, 1, 8, 8) whose predicted class equals ``labels`` (N,)."""
    pred = predict_digits(x, classifier)
    if labels.shape != pred.shape:
        raise ValueError(f"labels must have shape ({len(pred)},); got {tuple(labels.shape)}.")
    return (pred == labels.cpu()).double().mean().item()


def gaussian_stats(features) -> tuple[Tensor, Tensor]:
    """Mean shape (D,) and unbiased covariance shape (D, D), in float64, of ``features`` shape (N, D)."""
    f = torch.as_tensor(features).detach().cpu().double()
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must have shape (N, D) with N >= 2; got {tuple(f.shape)}.")
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def _sqrtm_psd(c: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix via its eigen-decomposition."""
    w, v = torch.linalg.eigh((c + c.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_from_stats(mu1, cov1, mu2, cov2) -> float:
    """Fréchet (2-Wasserstein²) distance between N(mu1, cov1) and N(mu2, cov2).

    ``‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}`` (Dowson & Landau 1982), in float64.
    The middle matrix is symmetric PSD, so its square root's trace is the sum of the square roots of its eigenvalues:
    no non-symmetric ``sqrtm`` needed, and no complex round-off.
    """
    mu1, mu2 = (torch.as_tensor(m).double() for m in (mu1, mu2))
    cov1, cov2 = (torch.as_tensor(c).double() for c in (cov1, cov2))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.shape[0], mu1.shape[0]):
        raise ValueError(
            f"shapes must be mu (D,), cov (D, D); got {tuple(mu1.shape)}, {tuple(cov1.shape)}, "
            f"{tuple(mu2.shape)}, {tuple(cov2.shape)}."
        )
    s1 = _sqrtm_psd(cov1)
    m = s1 @ cov2 @ s1
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    return (diff @ diff + cov1.trace() + cov2.trace() - 2 * tr_sqrt).clamp(min=0).item()


def frechet_distance(feat_x, feat_y) -> float:
    """Fréchet distance between Gaussian fits of two feature sets, shapes (N, D) and (M, D)."""
    return frechet_from_stats(*gaussian_stats(feat_x), *gaussian_stats(feat_y))


def _reference_images(reference) -> Tensor:
    if isinstance(reference, str):
        from ..data.digits import load_digits_images

        split = dict(split_seed=CLASSIFIER_CONFIG["split_seed"], test_fraction=CLASSIFIER_CONFIG["test_fraction"])
        return load_digits_images(reference, seed=split["split_seed"], test_fraction=split["test_fraction"]).images
    return reference


def frechet_digits(
    samples: Tensor, reference: str | Tensor = "test", classifier: DigitClassifier | None = None
) -> float:
    """Fréchet distance of digit images ``samples`` (N, 1, 8, 8) to ``reference`` (``"test"``, ``"train"`` or images).

    FD is biased upwards at small N: compare it with :func:`frechet_noise_floor` at the same N.
    """
    classifier = classifier or get_digit_classifier()
    return frechet_distance(
        digit_features(samples, classifier), digit_features(_reference_images(reference), classifier)
    )


def frechet_noise_floor(
    n: int | None = None, reference: str | Tensor = "test", seed: int = 0, classifier: DigitClassifier | None = None
) -> float:
    """FD of ``n`` real train images (random, seeded; default all) to ``reference``: what a perfect model would score."""
    from ..data.digits import load_digits_images

    train = load_digits_images(
        "train", seed=CLASSIFIER_CONFIG["split_seed"], test_fraction=CLASSIFIER_CONFIG["test_fraction"]
    ).images
    if n is not None:
        if not 2 <= n <= len(train):
            raise ValueError(f"n must lie in [2, {len(train)}]; got {n}.")
        train = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]]
    return frechet_digits(train, reference, classifier)


@dataclass
class NearestNeighbourReport:
    """Does a model copy its training set? (Compare generated images with how far real unseen images lie.)

    Attributes:
        sample_to_train: L2 distance from each sample to its nearest training image, shape (N,).
        test_to_train: the same for each real test image, shape (M,): the reference of "new but realistic".
        median_ratio: median(sample_to_train) / median(test_to_train); ≈ 1 is healthy, ≪ 1 means memorisation,
            ≫ 1 means off-manifold samples.
        copy_threshold: the ``percentile``-th percentile of ``test_to_train``.
        copy_fraction: share of samples at or below ``copy_threshold`` ("copies"); ≈ percentile/100 is expected.
    """

    sample_to_train: Tensor
    test_to_train: Tensor
    median_ratio: float
    copy_threshold: float
    copy_fraction: float


def _flat(x, name: str) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    check_float_tensor(x, name, min_ndim=2)
    return x.detach().cpu().double().flatten(1)


def nearest_neighbour_check(
    samples: Tensor, train: Tensor | None = None, test: Tensor | None = None, *, percentile: float = 1.0
) -> NearestNeighbourReport:
    """Distances from samples to their nearest training image, against test→train distances.

    Args:
        samples: generated images, shape (N, ...).
        train: training images, shape (M, ...) (default: the digits train split).
        test: held-out real images, shape (K, ...) (default: the digits test split).
        percentile: test→train percentile below which a sample counts as a copy.
    """
    from ..data.digits import load_digits_images

    if not 0 < percentile < 100:
        raise ValueError(f"percentile must lie in (0, 100); got {percentile}.")
    if train is None:
        train = load_digits_images("train").images
    if test is None:
        test = load_digits_images("test").images
    s, tr, te = _flat(samples, "samples"), _flat(train, "train"), _flat(test, "test")
    if not s.shape[1] == tr.shape[1] == te.shape[1]:
        raise ValueError(
            f"samples, train and test must have the same size per example; got {s.shape[1]}, "
            f"{tr.shape[1]}, {te.shape[1]}."
        )
    d_s = torch.cdist(s, tr).min(dim=1).values  # (N,)
    d_t = torch.cdist(te, tr).min(dim=1).values  # (K,)
    thr = torch.quantile(d_t, percentile / 100).item()
    return NearestNeighbourReport(
        sample_to_train=d_s,
        test_to_train=d_t,
        median_ratio=(d_s.median() / d_t.median()).item(),
        copy_threshold=thr,
        copy_fraction=(d_s <= thr).double().mean().item(),
    )
