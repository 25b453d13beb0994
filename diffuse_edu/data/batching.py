"""Random minibatches forever, reshuffled every epoch: the input :func:`diffuse_edu.train.train_iter` expects."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["infinite_batches"]


def infinite_batches(
    *tensors: Tensor | dict[str, Tensor],
    batch_size: int,
    generator: torch.Generator | None = None,
    drop_last: bool = True,
) -> Iterator:
    """Yield random minibatches of the given tensors forever (sampling without replacement inside each epoch).

    Args:
        *tensors: one tensor, several tensors of equal length, or one dict of tensors of equal length (N first).
        batch_size: examples per batch.
        generator: draws the shuffles (seeded generator → the same batches every run).
        drop_last: skip the incomplete last batch of each epoch (so every batch has ``batch_size`` rows).
    Yields:
        Whatever was given, indexed: a tensor (B, ...), a tuple of tensors, or a dict of tensors.
    """
    if not tensors:
        raise ValueError("infinite_batches needs at least one tensor (or a dict of tensors).")
    if len(tensors) == 1 and isinstance(tensors[0], dict):
        data, keys = list(tensors[0].values()), list(tensors[0].keys())
    else:
        data, keys = list(tensors), None
    if not data or not all(isinstance(t, Tensor) for t in data):
        raise TypeError("infinite_batches takes tensors, or one dict of tensors.")
    n = data[0].shape[0] if data[0].ndim else 0
    if any(t.ndim == 0 or t.shape[0] != n for t in data):
        raise ValueError(f"all tensors must share their first dimension; got shapes {[tuple(t.shape) for t in data]}.")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if n == 0:
        raise ValueError("cannot draw batches from an empty dataset.")
    if drop_last and batch_size > n:
        raise ValueError(f"batch_size={batch_size} exceeds the {n} examples; lower it or use drop_last=False.")

    def pack(idx: Tensor):
        parts = [t[idx.to(t.device)] for t in data]
        if keys is not None:
            return dict(zip(keys, parts))
        return parts[0] if len(parts) == 1 else tuple(parts)

    while True:
        perm = torch.randperm(n, generator=generator)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            yield pack(perm[start : start + batch_size])
