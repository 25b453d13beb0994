"""Input validation shared by every module: one clear error for bad input, never a silent wrong result."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_time", "check_float_tensor", "check_index_tensor", "check_finite"]


def check_finite(x: Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or infinity."""
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values; expected finite numbers.")


def check_time(t, batch: int | None = None, name: str = "t", device=None) -> Tensor:
    """Validate and normalise a time: a float or tensor with values in [0, 1].

    Args:
        t: a Python number, a 0-d tensor or a tensor of shape (B,).
        batch: if given, a scalar is broadcast to shape (B,) and a (B,) tensor must match.
    Returns:
        A floating tensor of shape (B,) (or 0-d when ``batch`` is None and ``t`` is scalar).
    """
    if isinstance(t, (int, float)):
        t = torch.tensor(float(t), device=device)
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a float or a torch.Tensor, got {type(t).__name__}.")
    if not t.is_floating_point():
        t = t.float()
    if torch.isnan(t).any():
        raise ValueError(f"{name} contains NaN; expected times in [0, 1].")
    if (t < 0).any() or (t > 1).any():
        raise ValueError(f"{name} must lie in [0, 1]; got values in [{t.min().item():.4g}, {t.max().item():.4g}].")
    if batch is not None:
        if t.ndim == 0:
            t = t.expand(batch)
        elif t.ndim != 1 or t.shape[0] != batch:
            raise ValueError(f"{name} must be a scalar or have shape ({batch},); got shape {tuple(t.shape)}.")
    elif t.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D of shape (B,); got shape {tuple(t.shape)}.")
    return t


def check_float_tensor(x, name: str, min_ndim: int = 1) -> Tensor:
    """Raise a clear error unless ``x`` is a finite floating tensor with at least ``min_ndim`` dimensions."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (continuous data); got dtype {x.dtype}.")
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s) (batch first); got shape {tuple(x.shape)}."
        )
    check_finite(x, name)
    return x


def check_index_tensor(x, name: str, vocab_size: int, min_ndim: int = 1) -> Tensor:
    """Raise a clear error unless ``x`` is an integer tensor with values in [0, vocab_size)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.is_floating_point() or x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} must be an integer tensor of token ids (torch.long); got dtype {x.dtype}.")
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s) (batch first); got shape {tuple(x.shape)}."
        )
    if x.numel() and (x.min() < 0 or x.max() >= vocab_size):
        raise ValueError(
            f"{name} holds token ids in [{x.min().item()}, {x.max().item()}]; expected ids in [0, {vocab_size})."
        )
    return x
