"""One place for the FAST switch, the device and the seeds.

``FAST`` is on when the environment variable ``DIFFUSE_EDU_FAST`` is set to a true value, or whenever ``CI`` is set
(pyro's ``smoke_test`` idiom). Every notebook sizes itself with :func:`pick`, so one switch shrinks them all.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["FAST", "is_fast", "pick", "get_device", "seed_everything", "hardware_summary"]

_TRUE = {"1", "true", "yes", "on"}


def is_fast() -> bool:
    """Whether FAST mode is on (``DIFFUSE_EDU_FAST`` true, or ``CI`` set to anything but ``false``/``0``)."""
    flag = os.environ.get("DIFFUSE_EDU_FAST")
    if flag is not None:
        return flag.strip().lower() in _TRUE
    ci = os.environ.get("CI")
    return ci is not None and ci.strip().lower() not in {"", "0", "false", "no", "off"}


FAST: bool = is_fast()


def pick(full, fast):
    """Return ``fast`` in FAST mode, ``full`` otherwise: ``steps = pick(full=4000, fast=300)``."""
    return fast if is_fast() else full


def get_device(prefer: str | None = None, verbose: bool = False) -> torch.device:
    """Pick CUDA, then Apple MPS, then CPU (or honour ``prefer`` / ``DIFFUSE_EDU_DEVICE``).

    Args:
        prefer: a device string such as ``"cpu"`` or ``"cuda:1"``; overrides the automatic choice.
        verbose: print the choice.
    """
    if prefer is not None and not isinstance(prefer, (str, torch.device)):
        raise TypeError(f"prefer must be a device string such as 'cpu' or 'cuda:1'; got {prefer!r}.")
    prefer = prefer or os.environ.get("DIFFUSE_EDU_DEVICE")
    if prefer:
        try:
            dev = torch.device(prefer)
        except RuntimeError:
            raise ValueError(f"{prefer!r} is not a device; expected e.g. 'cpu', 'cuda', 'cuda:1' or 'mps'.") from None
        _check_available(dev)
    elif torch.cuda.is_available():
        dev = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        dev = torch.device("mps")
    else:
        dev = torch.device("cpu")
    if verbose:
        print(f"diffuse_edu: using device {dev}")
    return dev


def _check_available(dev: torch.device) -> None:
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device {dev} was asked for, but torch sees {torch.cuda.device_count()} CUDA device(s).")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for, but Apple's MPS backend is not available here.")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU ``torch.Generator`` seeded the same.

    ``seed``: an int in [0, 2**63)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise TypeError(f"seed must be an int in [0, 2**63); got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def hardware_summary() -> str:
    """One line naming the hardware, for notebooks to state what produced their stored outputs."""
    import platform

    if torch.cuda.is_available():
        hw = f"GPU {torch.cuda.get_device_name(0)}"
    else:
        hw = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"
    return f"{hw}; torch {torch.__version__}; FAST={'on' if is_fast() else 'off'}"
