"""Judges: small classifiers that read ground-truth attributes back from generated images.

A coherence score is only as good as the judge behind it, so a judge is trained on rendered data whose attributes are
known and must reach ≥ 99 % held-out accuracy on every attribute before its verdicts count (the training and the
caching live in :mod:`diffuse_edu.recipes.judges`). Its penultimate features also give a Fréchet distance (the FID
recipe of Heusel et al. 2017 with a toy-sized network instead of Inception).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_finite, check_positive_int, net_checks_values

__all__ = ["ShapeAttributeClassifier", "DigitClassifier"]


def _check_images(x, shape: tuple[int, int, int], name: str, device=None) -> None:
    """Images (N, *shape), floating; finite where checking values is free (CPU, not compiling); on ``device``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [−1, 1]; got dtype {x.dtype}.")
    if x.ndim != 4 or tuple(x.shape[1:]) != shape:
        raise ValueError(
            f"{name} must have shape (N, {', '.join(map(str, shape))}) for this judge; got {tuple(x.shape)}."
        )
    if device is not None and x.device != device:
        raise ValueError(f"{name} is on {x.device} but the judge is on {device}; move one of them.")
    if net_checks_values(x):
        check_finite(x, name)


class ShapeAttributeClassifier(nn.Module):
    """A small CNN with one classification head per attribute: (B, 3, S, S) in [−1, 1] → logits per attribute.

    Stages of 3×3 convolutions (with batch norm, which makes the judge converge in a few hundred steps instead of
    thousands) and a 2×2 max-pool halve the image down to 4×4. Two summaries of the last map feed one hidden layer
    (the features): the flattened map, which knows *where* things are (position), and a global max over positions,
    which recognises a shape wherever it sits (shape, size, colour). Then one linear head per attribute.

    Args:
        n_values: number of values of each attribute, e.g. ``(5, 2, 5)`` (a head of that many classes each).
        names: the attribute names (default ``attr0, attr1, ...``), used as keys of :meth:`forward`'s output.
        image_size: side S of the input images (a power of two ≥ 8).
        width: channels of the first stage (doubled from the second stage on).
        feat_dim: width of the feature layer.
        first_convs: convolutions in the first, full-resolution stage (the costly one; later stages have two).
    """

    def __init__(
        self,
        n_values: Sequence[int] = (5,),
        names: Sequence[str] | None = None,
        image_size: int = 32,
        width: int = 16,
        feat_dim: int = 128,
        first_convs: int = 2,
    ):
        super().__init__()
        if isinstance(n_values, (str, bytes)) or not isinstance(n_values, Sequence):
            raise TypeError(f"n_values must be a sequence of ints (values per attribute); got {n_values!r}.")
        n_values = list(n_values)
        if not n_values or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 2 for k in n_values):
            raise ValueError(
                f"n_values must list at least one attribute with ≥ 2 values each (ints); got {n_values!r}."
            )
        if names is not None and (isinstance(names, (str, bytes)) or not isinstance(names, Sequence)):
            raise TypeError(f"names must be a sequence of attribute names or None; got {names!r}.")
        names = [f"attr{j}" for j in range(len(n_values))] if names is None else list(names)
        if (
            len(names) != len(n_values)
            or len(set(names)) != len(names)
            or not all(isinstance(n, str) and n and "." not in n for n in names)
        ):
            raise ValueError(f"names must be {len(n_values)} distinct strings (one per attribute); got {names!r}.")
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
            raise ValueError(f"image_size must be a power of two ≥ 8; got {image_size!r}.")
        if image_size & (image_size - 1):
            raise ValueError(f"image_size must be a power of two ≥ 8; got {image_size!r}.")
        for arg, val in dict(width=width, feat_dim=feat_dim, first_convs=first_convs).items():
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"{arg} must be a positive int; got {val!r}.")
        self._config = dict(
            n_values=n_values,
            names=names,
            image_size=image_size,
            width=width,
            feat_dim=feat_dim,
            first_convs=first_convs,
        )
        self.names, self.n_values, self.image_size = tuple(names), tuple(n_values), image_size
        layers, channels, size = [], 3, image_size
        while size > 4:
            first = not layers
            out = width if first else 2 * width
            for _ in range(first_convs if first else 2):
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
                channels = out
            layers.append(nn.MaxPool2d(2))
            size //= 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(channels * 4 * 4 + channels, feat_dim)
        self.heads = nn.ModuleDict({name: nn.Linear(feat_dim, k) for name, k in zip(names, n_values, strict=True)})

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable (used by :mod:`diffuse_edu.checkpoint`)."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._config.items()}

    @classmethod
    def from_config(cls, config: dict) -> ShapeAttributeClassifier:
        """Rebuild from :meth:`config`."""
        return cls(**config)

    def num_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def _check(self, x, same_device: bool = False) -> Tensor:
        # Shapes and dtypes always; values (NaN would give NaN logits and an arbitrary argmax) only for CPU tensors
        # outside torch.compile, where the check costs no host–device sync (see diffuse_edu._checks).
        _check_images(
            x, (3, self.image_size, self.image_size), "images", self.fc.weight.device if same_device else None
        )
        return x

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features of images ``x`` shape (B, 3, S, S): shape (B, feat_dim)."""
        h = self.conv(self._check(x, same_device=True).to(self.fc.weight.dtype))  # (B, C, 4, 4)
        return F.relu(self.fc(torch.cat([h.flatten(1), h.amax(dim=(2, 3))], dim=1)))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Logits of every attribute: name → shape (B, n_values[j])."""
        h = self.features(x)
        return {name: head(h) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 2048) -> Tensor:
        """Most likely value of every attribute: long shape (B, A), columns in the order of :attr:`names`.

        Runs in batches on the judge's device and returns a CPU tensor (a metric's input).
        """
        x = self._check(x)
        check_positive_int(batch_size, "batch_size")
        device = self.fc.weight.device
        out = []
        for chunk in x.split(batch_size):
            logits = self(chunk.to(device))
            out.append(torch.stack([logits[n].argmax(-1) for n in self.names], dim=1).cpu())
        return torch.cat(out) if out else torch.zeros(0, len(self.names), dtype=torch.long)

    @torch.no_grad()
    def embed(self, x: Tensor, batch_size: int = 2048) -> Tensor:
        """:meth:`features` in batches, without gradients, as a float32 CPU tensor shape (B, feat_dim)."""
        x = self._check(x)
        check_positive_int(batch_size, "batch_size")
        device = self.fc.weight.device
        if not len(x):
            return torch.zeros(0, self.fc.out_features)
        return torch.cat([self.features(c.to(device)).float().cpu() for c in x.split(batch_size)])


class DigitClassifier(nn.Module):
    """Small CNN for 8×8 digits: (B, 1, 8, 8) in [−1, 1] → logits (B, 10); :meth:`features` → (B, feat_dim).

    Three 3×3 convolutions (one 2×2 max-pool) and one hidden layer, the features of the digits' Fréchet distance
    (:mod:`diffuse_edu.metrics.frechet`; trained and cached by :func:`diffuse_edu.recipes.judges.digit_judge`).

    Args:
        width: channels of the first convolution (doubled after it).
        feat_dim: width of the feature layer.
    """

    def __init__(self, width: int = 16, feat_dim: int = 64):
        super().__init__()
        check_positive_int(width, "width")
        check_positive_int(feat_dim, "feat_dim")
        self._config = dict(width=width, feat_dim=feat_dim)
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * 16, feat_dim)
        self.head = nn.Linear(feat_dim, 10)

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable (used by :mod:`diffuse_edu.checkpoint`)."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict) -> DigitClassifier:
        """Rebuild from :meth:`config`."""
        return cls(**config)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features, shape (B, feat_dim), of images ``x`` shape (B, 1, 8, 8)."""
        _check_images(x, (1, 8, 8), "x", self.fc.weight.device)
        h = F.relu(self.conv1(x.to(self.fc.weight.dtype)))
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (B, 2w, 4, 4)
        h = F.relu(self.conv3(h))
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        """Logits over the ten digits, shape (B, 10)."""
        return self.head(self.features(x))
