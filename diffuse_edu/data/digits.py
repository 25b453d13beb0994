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
    """Pixel values 0..16 → [−1, 1] (same shape)."""
    return p / DIGITS_LEVELS * 2.0 - 1.0


def to_pixels(x: Tensor, *, round: bool = False) -> Tensor:
    """Inverse of the scaling: [−1, 1] → pixel values in [0, 16] (clamped; rounded to integers if ``round``)."""
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
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all'; got {split!r}.")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1); got {test_fraction!r}.")
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
