"""Input validation shared by every module: one clear error for bad input, never a silent wrong result.

Checks split in two kinds. *Structural* checks (type, dtype, number of dimensions, shape) read only metadata and are
free on any device. *Value* checks (finite numbers, ids in range, times in [0, 1]) read the data: on a GPU each one is
a host–device synchronisation, so they run once at a public entry point (a sampler's first call, the first training
batch), never inside per-step math. Value checks are skipped on the ``meta`` device, which holds no data.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "has_values",
    "check_time",
    "check_float_tensor",
    "check_index_tensor",
    "check_finite",
    "check_positive_int",
    "check_number",
    "check_probability",
]


def has_values(x: Tensor) -> bool:
    """Whether ``x``'s values can be inspected (False on the ``meta`` device)."""
    return x.device.type != "meta"


def check_finite(x: Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or infinity."""
    if x.is_floating_point() and has_values(x) and x.numel() and not torch.isfinite(x).all():
        n_bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s); expected finite numbers.")


def check_positive_int(v, name: str, minimum: int = 1) -> int:
    """Return ``v`` if it is an int ≥ ``minimum`` (bools refused), else raise a clear error."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{name} must be an int >= {minimum}; got {v!r} ({type(v).__name__}).")
    if v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {v}.")
    return v


def check_number(
    v, name: str, low: float | None = None, high: float | None = None, *, strict_low=False, strict_high=False
) -> float:
    """Return ``float(v)`` if ``v`` is a finite real number within the given bounds, else raise a clear error."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or isinstance(v, complex):
        raise TypeError(f"{name} must be a number; got {v!r} ({type(v).__name__}).")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; got {v}.")
    lo_ok = low is None or (v > low if strict_low else v >= low)
    hi_ok = high is None or (v < high if strict_high else v <= high)
    if not (lo_ok and hi_ok):
        lo = "" if low is None else f"{'(' if strict_low else '['}{low}"
        hi = "" if high is None else f"{high}{')' if strict_high else ']'}"
        raise ValueError(f"{name} must lie in {lo or '(-inf'}, {hi or 'inf)'}; got {v}.")
    return v


def check_probability(v, name: str) -> float:
    """A number in [0, 1]."""
    return check_number(v, name, 0.0, 1.0)


def check_time(t, batch: int | None = None, name: str = "t", device=None, values: bool = True) -> Tensor:
    """Validate and normalise a time: a float or tensor with values in [0, 1].

    Args:
        t: a Python number, a 0-d tensor or a tensor of shape (B,).
        batch: if given, a scalar is broadcast to shape (B,) and a (B,) tensor must match.
        device: where a Python number is placed.
        values: also check the values (no NaN, within [0, 1]); see the module docstring.
    Returns:
        A floating tensor of shape (B,) (or 0-d when ``batch`` is None and ``t`` is scalar).
    """
    if isinstance(t, bool):
        raise TypeError(f"{name} must be a float or a torch.Tensor of times in [0, 1], got a bool.")
    if isinstance(t, (int, float)):
        if not 0.0 <= float(t) <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1]; got {t}.")
        t = torch.tensor(float(t), device=device)
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a float or a torch.Tensor, got {type(t).__name__}.")
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold real times in [0, 1]; got dtype {t.dtype}.")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if values and has_values(t) and t.numel():
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


def check_float_tensor(x, name: str, min_ndim: int = 1, values: bool = True) -> Tensor:
    """Raise a clear error unless ``x`` is a (finite, if ``values``) floating tensor with ≥ ``min_ndim`` dimensions."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (continuous data); got dtype {x.dtype}.")
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s) (batch first); got shape {tuple(x.shape)}."
        )
    if values:
        check_finite(x, name)
    return x


def check_index_tensor(x, name: str, vocab_size: int, min_ndim: int = 1, values: bool = True) -> Tensor:
    """Raise a clear error unless ``x`` is an integer tensor (with values in [0, vocab_size) if ``values``)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.is_floating_point() or x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} must be an integer tensor of token ids (torch.long); got dtype {x.dtype}.")
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s) (batch first); got shape {tuple(x.shape)}."
        )
    if values and has_values(x) and x.numel() and (x.min() < 0 or x.max() >= vocab_size):
        raise ValueError(
            f"{name} holds token ids in [{x.min().item()}, {x.max().item()}]; expected ids in [0, {vocab_size})."
        )
    return x
