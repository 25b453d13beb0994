"""Random draws that honour a caller's ``generator`` on any device.

Every draw is made on the generator's own device and then moved to the target device, so a CPU ``torch.Generator``
gives the same numbers whether the data live on the CPU, a GPU or the ``meta`` device (where moving is free).
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

__all__ = ["rand", "randn", "stratified_times", "derived_generator"]


def _source(generator: torch.Generator | None, device) -> torch.device | None:
    return generator.device if generator is not None else device


def rand(shape, generator: torch.Generator | None = None, device=None, dtype=torch.float32) -> Tensor:
    """U[0, 1) draws of ``shape`` from ``generator`` (drawn on its device), returned on ``device``."""
    src = _source(generator, device)
    if src is not None and torch.device(src).type == "meta":
        return torch.empty(shape, device="meta", dtype=dtype)
    return torch.rand(shape, generator=generator, device=src, dtype=dtype).to(device)


def randn(shape, generator: torch.Generator | None = None, device=None, dtype=None) -> Tensor:
    """Standard normal draws of ``shape`` from ``generator`` (drawn on its device), returned on ``device``."""
    dtype = dtype or torch.get_default_dtype()
    src = _source(generator, device)
    if src is not None and torch.device(src).type == "meta":
        return torch.empty(shape, device="meta", dtype=dtype)
    return torch.randn(shape, generator=generator, device=src, dtype=dtype).to(device)


def stratified_times(
    n: int, generator: torch.Generator | None = None, device=None, antithetic: bool = True, dtype=torch.float32
) -> Tensor:
    r"""n times in [0, 1): stratified ``(u + i/n) mod 1`` with one shared u ~ U[0, 1) (or i.i.d. if not antithetic).

    Each time is still marginally U[0, 1), so a loss averaged over them stays unbiased, but the batch covers [0, 1)
    evenly and the variance of the batch mean drops (Kingma et al. 2021, "low-discrepancy sampler"; MDLM §3.5). The
    arithmetic is in float64, then cast to ``dtype``.

    Returns:
        shape (n,).
    """
    if antithetic:
        u = rand((1,), generator, device, torch.float64)
        t = (u + torch.arange(n, device=device, dtype=torch.float64) / n) % 1.0
    else:
        t = rand((n,), generator, device, torch.float64)
    return t.to(dtype)


def derived_generator(generator: torch.Generator | None, salt: str) -> torch.Generator | None:
    """A new generator seeded from the *current state* of ``generator`` and ``salt``, without consuming it.

    Used for side streams (e.g. the re-noising of a guidance condition) that must not shift the main stream — so that
    switching the side stream off leaves every other draw bit-identical — while still differing between two calls
    that share one generator (its state has moved on by then). Equal states give equal streams. Returns None when
    ``generator`` is None (the side stream then uses torch's global generator).
    """
    if generator is None:
        return None
    state = generator.get_state()
    digest = hashlib.sha256(state.cpu().numpy().tobytes() + salt.encode()).digest()
    g = torch.Generator(device=generator.device)
    g.manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    return g
