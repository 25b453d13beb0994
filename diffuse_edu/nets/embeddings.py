"""Time embeddings: turn a clock t ∈ [0, 1] into a vector a network can use.

A sinusoidal code of the (scaled) time followed by a small MLP (Vaswani et al. 2017 positional code, used for diffusion
time since Ho et al. 2020, DDPM). Every network in the package (MLP, U-Net, transformers, joint nets with one clock per
modality) builds its time input from :class:`TimeEmbedding`.

**Checks in the networks.** Every ``forward`` checks types, dtypes and shapes (free on any device), and the *values*
(times in [0, 1], token ids in range, finite inputs) only for CPU tensors and never while ``torch.compile`` traces
(:func:`diffuse_edu._checks.net_checks_values`): on a GPU a value check is a host–device synchronisation per call, and
an out-of-range id there already stops the kernel with a device-side assert. The samplers
and training losses check values once at their own entry, whatever the device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._checks import check_number, check_positive_int, check_time, net_checks_values

__all__ = ["sinusoidal_embedding", "TimeEmbedding"]


def sinusoidal_embedding(t: Tensor, dim: int, *, scale: float = 1000.0, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal code of times ``t``.

    Args:
        t: times, shape (B,), values in [0, 1].
        dim: embedding width (even).
        scale: ``t`` is multiplied by this first, so the fastest frequencies still see the small time differences of
            a 1000-step grid (the DDPM convention of integer steps 0..1000).
        max_period: slowest period, in scaled time units.
    Returns:
        shape (B, dim): ``[cos(ω_k s t), sin(ω_k s t)]`` with ω_k spaced geometrically from 1 to 1/max_period.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0 or dim % 2:
        raise ValueError(f"dim must be a positive even integer; got {dim!r}.")
    t = check_time(t, values=net_checks_values(t))
    if t.ndim != 1:
        raise ValueError(f"t must have shape (B,); got shape {tuple(t.shape)}.")
    scale = check_number(scale, "scale", 0.0, strict_low=True)
    max_period = check_number(max_period, "max_period", 0.0, strict_low=True)
    half = dim // 2
    # Geometric frequencies: the code separates both nearby times (high ω) and far-apart ones (low ω).
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = scale * t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimeEmbedding(nn.Module):
    """Sinusoidal code of t followed by a two-layer MLP: (B,) → (B, dim).

    Args:
        dim: output width.
        freq_dim: width of the sinusoidal code (even).
        scale: time scaling before the sinusoids (see :func:`sinusoidal_embedding`).
    """

    def __init__(self, dim: int = 128, *, freq_dim: int = 64, scale: float = 1000.0):
        super().__init__()
        check_positive_int(dim, "dim")
        if isinstance(freq_dim, bool) or not isinstance(freq_dim, int) or freq_dim <= 0 or freq_dim % 2:
            raise ValueError(f"freq_dim must be a positive even integer; got {freq_dim!r}.")
        scale = check_number(scale, "scale", 0.0, strict_low=True)
        self.dim, self.freq_dim, self.scale = dim, freq_dim, scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        """Embed times ``t`` of shape (B,) in [0, 1]; returns shape (B, dim)."""
        t = check_time(t, values=net_checks_values(t))
        if t.ndim != 1:
            raise ValueError(f"t must have shape (B,); got shape {tuple(t.shape)}.")
        emb = sinusoidal_embedding(t, self.freq_dim, scale=self.scale)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))
