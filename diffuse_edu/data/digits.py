"""The 8×8 handwritten digits that ship with scikit-learn, as diffusion-ready tensors.

1,797 grey-scale images with 17 intensity levels (0..16), ten classes (Alpaydin & Kaynak 1998, UCI). No download:
scikit-learn carries the file. Images are scaled to [−1, 1], the range a Gaussian diffusion model expects.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .._checks import check_float_tensor, check_number

__all__ = ["Digits", "load_digits_images", "to_pixels", "from_pixels", "DIGITS_LEVELS"]

DIGITS_LEVELS = 16  # pixel values are integers 0..16


class Digits(NamedTuple):
    """A split of the digits: ``images`` shape (N, 1, 8, 8) float32 in [−1, 1], ``labels`` shape (N,) int64."""

    images: Tensor
    labels: Tensor


@lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32), d.target.astype(np.int64)


def from_pixels(p: Tensor) -> Tensor:
    """Pixel values 0..16 (an integer or float tensor of any shape) → [−1, 1] (same shape, float)."""
    if not isinstance(p, Tensor) or p.dtype == torch.bool or p.is_complex():
        raise TypeError(f"p must be a real tensor of pixel values 0..16; got {getattr(p, 'dtype', type(p).__name__)}.")
    if not p.is_floating_point():
        p = p.to(torch.get_default_dtype())
    check_float_tensor(p, "p", min_ndim=0)
    if p.numel() and (p.min() < 0 or p.max() > DIGITS_LEVELS):
        raise ValueError(f"p must hold pixel values in [0, {DIGITS_LEVELS}]; got [{p.min().item()}, {p.max().item()}].")
    return p / DIGITS_LEVELS * 2.0 - 1.0


def to_pixels(x: Tensor, *, round: bool = False) -> Tensor:
    """Inverse of the scaling: [−1, 1] → pixel values in [0, 16] (clamped; rounded to integers if ``round``).

    ``x``: a finite float tensor of any shape (model samples may stray outside [−1, 1]: they are clamped).
    """
    check_float_tensor(x, "x", min_ndim=0)
    p = ((x + 1.0) / 2.0 * DIGITS_LEVELS).clamp(0, DIGITS_LEVELS)
    return p.round() if round else p


def load_digits_images(split: str = "train", seed: int = 0, test_fraction: float = 0.2) -> Digits:
    """Load scikit-learn's digits as tensors, with a deterministic train/test split.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"`` (all 1,797 images in the original order).
        seed: seed of the shuffle that defines the split (the same seed always gives the same split).
        test_fraction: share of images in the test split, in (0, 1).
    Returns:
        :class:`Digits` with ``images`` shape (N, 1, 8, 8) in [−1, 1] and ``labels`` shape (N,).
        With the defaults: 1,438 train and 359 test images.
    """
    if not isinstance(split, str) or split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all'; got {split!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TypeError(f"seed must be an int >= 0; got {seed!r}.")
    check_number(test_fraction, "test_fraction", 0.0, 1.0, strict_low=True, strict_high=True)
    images, labels = _raw()
    x = from_pixels(torch.from_numpy(images)).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.from_numpy(labels)
    if split == "all":
        return Digits(x, y)
    # A seeded permutation (torch's CPU generator is the same on every machine), test = its first part.
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(y)))
    idx = perm[:n_test] if split == "test" else perm[n_test:]
    idx = idx.sort().values  # keep the original order inside each split
    return Digits(x[idx].clone(), y[idx].clone())
