"""Image quality for the 8×8 digits: a Fréchet distance in the features of a small judge network, and a copy check.

The FID recipe (Heusel et al. 2017, Eq. 6) at toy scale: fit a Gaussian to the penultimate-layer features of real and
generated images and measure ``‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2})``. Inception is far too big
(and needs a download), so the package trains its own digit classifier
(:class:`~diffuse_edu.nets.judges.DigitClassifier`, trained and cached by
:func:`diffuse_edu.recipes.judges.digit_judge`, which also gives the distance to a data split and its floor).
Everything here is a function of images and a judge passed in: always read an FD next to its floor (real train images
against the test split, same sample size), and check memorisation with :func:`nearest_neighbour_check`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_finite, check_float_tensor, check_index_tensor, check_number, check_positive_int

__all__ = [
    "digit_features",
    "predict_digits",
    "classifier_accuracy",
    "gaussian_stats",
    "frechet_from_stats",
    "frechet_distance",
    "frechet_digits",
    "NearestNeighbourReport",
    "nearest_neighbour_check",
]


def _as_images(x, name: str) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    check_float_tensor(x, name, min_ndim=2)
    x = x.detach().float()
    if x.ndim == 2 and x.shape[1] == 64:
        x = x.reshape(-1, 1, 8, 8)
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 8, 8) or x.shape[0] < 1:
        raise ValueError(
            f"{name} must be digit images of shape (N, 1, 8, 8) (or (N, 64)) in [−1, 1] with N >= 1; got shape "
            f"{tuple(x.shape)}."
        )
    return x


def _device_of(judge: nn.Module) -> torch.device:
    if not isinstance(judge, nn.Module) or not callable(getattr(judge, "features", None)):
        raise TypeError(
            f"classifier must be a digit classifier (an nn.Module with features(), e.g. recipes.judges.digit_judge()); "
            f"got {type(judge).__name__}."
        )
    param = next(judge.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def digit_features(x: Tensor, classifier: nn.Module, batch_size: int = 1024) -> Tensor:
    """Penultimate-layer features of images ``x`` shape (N, 1, 8, 8) in [−1, 1]: shape (N, feat_dim), float32, CPU.

    Runs in batches on the classifier's device (e.g. :func:`diffuse_edu.recipes.judges.digit_judge`).
    """
    x = _as_images(x, "x")
    device = _device_of(classifier)
    check_positive_int(batch_size, "batch_size")
    return torch.cat(
        [classifier.features(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    )


@torch.no_grad()
def predict_digits(x: Tensor, classifier: nn.Module) -> Tensor:
    """Predicted class of each image, shape (N,) int64, on the CPU."""
    x = _as_images(x, "x")
    return classifier(x.to(_device_of(classifier))).argmax(-1).cpu()


def classifier_accuracy(x: Tensor, labels: Tensor, classifier: nn.Module) -> float:
    """Share of images ``x`` (N, 1, 8, 8) whose predicted class equals ``labels`` (N,)."""
    pred = predict_digits(x, classifier)
    check_index_tensor(labels, "labels", 10)
    if labels.shape != pred.shape:
        raise ValueError(f"labels must have shape ({len(pred)},); got {tuple(labels.shape)}.")
    return (pred == labels.cpu()).double().mean().item()


def gaussian_stats(features) -> tuple[Tensor, Tensor]:
    """Mean shape (D,) and unbiased covariance shape (D, D), in float64, of ``features`` shape (N, D)."""
    f = _real(features, "features")
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must have shape (N, D) with N >= 2; got {tuple(f.shape)}.")
    check_finite(f, "features")
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
    mu1, mu2 = _real(mu1, "mu1"), _real(mu2, "mu2")
    cov1, cov2 = _real(cov1, "cov1"), _real(cov2, "cov2")
    if mu1.ndim != 1 or mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (len(mu1), len(mu1)):
        raise ValueError(
            f"shapes must be mu (D,), cov (D, D); got {tuple(mu1.shape)}, {tuple(cov1.shape)}, "
            f"{tuple(mu2.shape)}, {tuple(cov2.shape)}."
        )
    for name, v in (("mu1", mu1), ("cov1", cov1), ("mu2", mu2), ("cov2", cov2)):
        check_finite(v, name)  # NaN made linalg.eigh fail to converge
    for name, c in (("cov1", cov1), ("cov2", cov2)):
        scale = c.abs().max().item() if c.numel() else 0.0
        if not torch.allclose(c, c.T, rtol=1e-6, atol=1e-9 * scale):
            raise ValueError(f"{name} must be a symmetric covariance matrix; it is not symmetric.")
        low = torch.linalg.eigvalsh(c).min().item() if c.numel() else 0.0
        if low < -1e-6 * max(scale, 1e-12):
            raise ValueError(
                f"{name} must be positive semi-definite (a covariance); its smallest eigenvalue is {low:.3g}."
            )
    s1 = _sqrtm_psd(cov1)
    m = s1 @ cov2 @ s1
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    return (diff @ diff + cov1.trace() + cov2.trace() - 2 * tr_sqrt).clamp(min=0).item()


def frechet_distance(feat_x, feat_y) -> float:
    """Fréchet distance between Gaussian fits of two feature sets, shapes (N, D) and (M, D)."""
    return frechet_from_stats(*gaussian_stats(feat_x), *gaussian_stats(feat_y))


def frechet_digits(samples: Tensor, reference: Tensor, classifier: nn.Module) -> float:
    """Fréchet distance of digit images ``samples`` (N, 1, 8, 8) to images ``reference`` (M, 1, 8, 8), in the
    classifier's features. FD is biased upwards at small N: compare it with real images at the same N."""
    return frechet_distance(digit_features(samples, classifier), digit_features(reference, classifier))


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


def _real(x, name: str) -> Tensor:
    """``x`` (a tensor, an array or nested lists of real numbers) as a float64 CPU tensor."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a tensor or an array of numbers; got {type(x).__name__}.")
    try:
        t = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a tensor or an array of numbers: {err}") from None
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers; got dtype {t.dtype}.")
    return t.detach().cpu().double()


def _flat(x, name: str) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    check_float_tensor(x, name, min_ndim=2)
    return x.detach().cpu().double().flatten(1)


def nearest_neighbour_check(
    samples: Tensor, train: Tensor, test: Tensor, *, percentile: float = 1.0
) -> NearestNeighbourReport:
    """Distances from samples to their nearest training image, against test→train distances.

    Args:
        samples: generated images, shape (N, ...).
        train: training images, shape (M, ...).
        test: held-out real images, shape (K, ...).
        percentile: test→train percentile below which a sample counts as a copy.
    """
    check_number(percentile, "percentile", 0.0, 100.0, strict_low=True, strict_high=True)
    s, tr, te = _flat(samples, "samples"), _flat(train, "train"), _flat(test, "test")
    for name, v in (("samples", s), ("train", tr), ("test", te)):
        if len(v) < 1:
            raise ValueError(f"{name} is empty; expected at least one image.")
    if not s.shape[1] == tr.shape[1] == te.shape[1]:
        raise ValueError(
            f"samples, train and test must have the same size per example; got {s.shape[1]}, "
            f"{tr.shape[1]}, {te.shape[1]}."
        )
    d_s = torch.cdist(s, tr).min(dim=1).values  # (N,)
    d_t = torch.cdist(te, tr).min(dim=1).values  # (K,)
    if d_t.median() == 0:
        raise ValueError(
            "most test images are copies of training images (median test→train distance 0), so they give no "
            "reference for 'new but realistic'; pass held-out images as test."
        )
    thr = torch.quantile(d_t, percentile / 100).item()
    return NearestNeighbourReport(
        sample_to_train=d_s,
        test_to_train=d_t,
        median_ratio=(d_s.median() / d_t.median()).item(),
        copy_threshold=thr,
        copy_fraction=(d_s <= thr).double().mean().item(),
    )
