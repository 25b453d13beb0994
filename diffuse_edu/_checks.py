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
    "net_checks_values",
    "check_time",
    "check_float_tensor",
    "check_index_tensor",
    "check_probs_tensor",
    "check_finite",
    "check_positive_int",
    "check_number",
    "check_probability",
    "check_shape",
    "check_event_shape",
    "check_generator",
    "check_device",
    "check_names",
    "check_choice",
    "check_module_input",
]


def has_values(x: Tensor) -> bool:
    """Whether ``x``'s values can be inspected (False on the ``meta`` device)."""
    return x.device.type != "meta"


def net_checks_values(x) -> bool:
    """Whether a network's ``forward`` checks the values of input ``x``: for CPU tensors only, and never while
    ``torch.compile`` traces (a value check is data-dependent control flow: a graph break). On a GPU a value check is
    a host–device synchronisation per call; an out-of-range id there stops the kernel with a device-side assert."""
    return isinstance(x, Tensor) and x.device.type == "cpu" and not torch.compiler.is_compiling()


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


def check_time(
    t, batch: int | None = None, name: str = "t", device=None, values: bool = True, any_shape: bool = False
) -> Tensor:
    """Validate and normalise a time: a float or tensor with values in [0, 1].

    Args:
        t: a Python number, a 0-d tensor or a tensor of shape (B,) (any shape if ``any_shape``).
        batch: if given, a scalar is broadcast to shape (B,) and a (B,) tensor must match.
        device: where a Python number is placed.
        values: also check the values (no NaN, within [0, 1]); see the module docstring.
        any_shape: accept times of any shape (schedules evaluate α elementwise).
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
    elif t.ndim > 1 and not any_shape:
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


def check_probs_tensor(p, name: str, shape: tuple[int, ...] | None = None, values: bool = True, atol: float = 1e-4):
    """Raise a clear error unless ``p`` is a float tensor (of ``shape``) of probabilities, rows (last axis) summing
    to 1 within ``atol``."""
    if not isinstance(p, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of probabilities, got {type(p).__name__}.")
    if not p.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of probabilities; got dtype {p.dtype}.")
    if shape is not None and tuple(p.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; got {tuple(p.shape)}.")
    if values and has_values(p) and p.numel():
        check_finite(p, name)
        if (p < 0).any():
            raise ValueError(f"{name} must be >= 0; got a minimum of {p.min().item():.4g}.")
        err = (p.double().sum(-1) - 1).abs().max().item()
        if err > atol:
            raise ValueError(f"every row of {name} (last axis) must sum to 1; a row is off by {err:.3g}.")
    return p


def check_shape(shape, name: str = "shape", min_ndim: int = 1, allow_empty_batch: bool = True) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of ints if it is a sequence (B, ...) of non-negative ints (B ≥ 1 unless
    ``allow_empty_batch``; event sizes ≥ 1), else raise a clear error."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"{name} must be a tuple of ints such as (B, ...); got {shape!r}.")
    shape = tuple(shape)
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise TypeError(f"{name} must be a tuple of ints such as (B, ...); got {shape!r}.")
    if len(shape) < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s) (batch first); got {shape!r}.")
    if shape and shape[0] < (0 if allow_empty_batch else 1):
        raise ValueError(f"{name} has batch size {shape[0]}; expected >= {0 if allow_empty_batch else 1}.")
    if any(d < 1 for d in shape[1:]):
        raise ValueError(f"{name} must have positive sizes after the batch dimension; got {shape!r}.")
    return shape


def check_event_shape(shape, name: str) -> tuple[int, ...]:
    """Return ``shape`` as a tuple if it is a sequence of positive ints (the shape of one example; () allowed)."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(
            f"{name} must be a tuple of positive ints (the shape of one example, e.g. (2,)); got {shape!r}."
        )
    shape = tuple(shape)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
        raise ValueError(
            f"{name} must be a tuple of positive ints (the shape of one example, e.g. (2,)); got {shape!r}."
        )
    return shape


def check_generator(generator, name: str = "generator") -> torch.Generator | None:
    """Return ``generator`` if it is None or a ``torch.Generator``, else raise ``TypeError``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None; got {type(generator).__name__} {generator!r:.40}.")
    return generator


def check_device(device, name: str = "device") -> torch.device | None:
    """Return ``device`` as a ``torch.device`` (None stays None), or raise a clear error for a malformed one."""
    if device is None or isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"{name} must be None, a str such as 'cpu' or 'cuda:0', or a torch.device; got {device!r}.")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"{name}={device!r} is not a device; expected e.g. 'cpu', 'cuda', 'cuda:0' or 'mps'."
        ) from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"{name}={device!r}, but torch sees {torch.cuda.device_count()} CUDA device(s) here.")
    return dev


def check_names(names, name: str = "names", allow_empty: bool = False) -> tuple[str, ...]:
    """Return ``names`` as a tuple if it is a sequence of distinct non-empty strings (not one string)."""
    if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
        raise TypeError(f"{name} must be a list or tuple of modality names, e.g. ('point', 'label'); got {names!r}.")
    names = tuple(names)
    if not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"{name} must hold non-empty strings; got {names!r}.")
    if len(set(names)) != len(names):
        raise ValueError(f"{name} must not repeat a name; got {names!r}.")
    if not names and not allow_empty:
        raise ValueError(f"{name} is empty; expected at least one modality name.")
    return names


def check_choice(value, choices, name: str):
    """Return ``value`` if it is one of ``choices`` (by equality, hashable or not), else raise ``ValueError``."""
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}.")
    return value


def check_module_input(x: Tensor, module, name: str = "x") -> None:
    """Raise a clear error if a floating input ``x`` does not match ``module``'s parameter dtype or device.

    Structural only (free on every device); nn layers would otherwise fail deep inside torch.
    """
    param = next(module.parameters(), None)
    if param is None:
        return
    if x.is_floating_point() and x.dtype != param.dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the network's parameters are {param.dtype}; convert one of them "
            f"(e.g. x.to({param.dtype}) or net.to({x.dtype}))."
        )
    if x.device != param.device:
        raise ValueError(f"{name} is on {x.device} but the network is on {param.device}; move one of them.")
