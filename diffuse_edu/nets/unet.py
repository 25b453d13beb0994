"""A small convolutional U-Net for images, conditioned on the diffusion time.

The DDPM recipe (Ho et al. 2020, Appendix B) shrunk for 8×8 to 32×32 images: residual blocks with GroupNorm and an
additive time embedding, one skip connection per resolution, optional self-attention at the lowest resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import (
    check_float_tensor,
    check_module_input,
    check_number,
    check_positive_int,
    check_time,
    net_checks_values,
)
from .embeddings import TimeEmbedding

__all__ = ["UNet"]


def _groups(ch: int) -> int:
    # GroupNorm needs the group count to divide the channels; 8 groups is the usual small-model choice.
    return 8 if ch % 8 == 0 else 1


class _ResBlock(nn.Module):
    """GN → SiLU → conv, add the projected time embedding, GN → SiLU → conv, plus a residual path."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(time_dim, c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        # The time enters as a per-channel bias, broadcast over the image: shape (B, C, 1, 1).
        h = h + self.temb(temb)[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class _SelfAttention(nn.Module):
    """Multi-head self-attention over the H·W positions (fused kernel via ``F.scaled_dot_product_attention``)."""

    def __init__(self, ch: int, heads: int = 4):
        super().__init__()
        if ch % heads:
            raise ValueError(f"attention channels {ch} must be divisible by heads={heads}.")
        self.heads = heads
        self.norm = nn.GroupNorm(_groups(ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        # (B, heads, HW, c/heads) for each of q, k, v
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """Time-conditioned U-Net ``f(x_t, t)``: (B, C, H, W), (B,) → (B, C, H, W).

    Args:
        image_size: H = W of the inputs (8, 16, 28 or 32 are the tested sizes).
        in_channels: image channels C.
        base: channels at full resolution (16–64).
        channel_mults: channel multiplier per resolution; the default is (1, 2) for 8×8 (one down/up level) and
            (1, 2, 2) for larger images (two levels).
        attention: add self-attention at the lowest resolution (off by default: it costs more than it helps at 8×8).
        time_dim: width of the time embedding (default ``4 * base``).
        dropout: dropout inside residual blocks.
        out_channels: output channels (default ``in_channels``).

    ``UNet(8, base=32)`` has 0.47 M parameters, ``UNet(8, base=16)`` 0.12 M, ``UNet(28, base=16)`` 0.19 M.
    """

    def __init__(
        self,
        image_size: int = 8,
        in_channels: int = 1,
        base: int = 32,
        channel_mults: tuple[int, ...] | None = None,
        attention: bool = False,
        time_dim: int | None = None,
        dropout: float = 0.0,
        out_channels: int | None = None,
    ):
        super().__init__()
        for name, v in dict(image_size=image_size, in_channels=in_channels, base=base).items():
            check_positive_int(v, name)
        for name, v in dict(time_dim=time_dim, out_channels=out_channels).items():
            if v is not None:
                check_positive_int(v, name)
        dropout = check_number(dropout, "dropout", 0.0, 1.0, strict_high=True)
        if channel_mults is None:
            channel_mults = (1, 2) if image_size <= 8 else (1, 2, 2)
        if isinstance(channel_mults, (str, bytes)) or not hasattr(channel_mults, "__iter__"):
            raise TypeError(
                f"channel_mults must be a non-empty tuple of positive ints, e.g. (1, 2); got {channel_mults!r}."
            )
        channel_mults = tuple(channel_mults)
        if not channel_mults or not all(
            isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in channel_mults
        ):
            raise ValueError(
                f"channel_mults must be a non-empty tuple of positive ints, e.g. (1, 2); got {channel_mults!r}."
            )
        if image_size % 2 ** (len(channel_mults) - 1) and image_size != 28:
            raise ValueError(f"image_size {image_size} cannot be halved {len(channel_mults) - 1} time(s).")
        time_dim = time_dim or 4 * base
        self._config = dict(
            image_size=image_size,
            in_channels=in_channels,
            base=base,
            channel_mults=list(channel_mults),
            attention=attention,
            time_dim=time_dim,
            dropout=dropout,
            out_channels=out_channels,
        )
        self.image_size, self.in_channels = image_size, in_channels
        self.time_embed = TimeEmbedding(time_dim)
        self.inp = nn.Conv2d(in_channels, base, 3, padding=1)

        chans = [base * m for m in channel_mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c = base
        for i, ch in enumerate(chans):
            self.down.append(_ResBlock(c, ch, time_dim, dropout))
            c = ch
            last = i == len(chans) - 1
            # Strided conv halves the resolution (28 → 14 → 7 works too: padding 1 rounds up).
            self.downsample.append(nn.Identity() if last else nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid1 = _ResBlock(c, c, time_dim, dropout)
        self.attn = _SelfAttention(c) if attention else nn.Identity()
        self.mid2 = _ResBlock(c, c, time_dim, dropout)
        self.up = nn.ModuleList()
        self.upconv = nn.ModuleList()
        for i, ch in reversed(list(enumerate(chans))):
            # Input: the current features concatenated with the skip saved at this resolution.
            self.up.append(_ResBlock(c + ch, ch, time_dim, dropout))
            c = ch
            self.upconv.append(nn.Conv2d(c, chans[i - 1] if i > 0 else c, 3, padding=1) if i > 0 else nn.Identity())
            c = chans[i - 1] if i > 0 else c
        self.out_norm = nn.GroupNorm(_groups(c), c)
        self.out = nn.Conv2d(c, out_channels or in_channels, 3, padding=1)

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable (used by :mod:`diffuse_edu.checkpoint`)."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict) -> "UNet":
        """Rebuild from :meth:`config`."""
        return cls(**config)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """Args: ``x`` shape (B, C, H, W) with H = W = image_size, ``t`` shape (B,) in [0, 1]. Returns x's shape
        (with ``out_channels`` channels). Values are checked for CPU inputs only (:mod:`diffuse_edu.nets.embeddings`).
        """
        values = net_checks_values(x)
        check_float_tensor(x, "x", min_ndim=4, values=values)
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, expected))}); got shape {tuple(x.shape)}.")
        check_module_input(x, self)
        t = check_time(t, batch=x.shape[0], values=values).to(x.device)
        temb = self.time_embed(t)  # (B, time_dim)
        h = self.inp(x)
        skips = []
        for block, down in zip(self.down, self.downsample, strict=True):
            h = block(h, temb)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.attn(self.mid1(h, temb)), temb)
        for block, upconv in zip(self.up, self.upconv, strict=True):
            skip = skips.pop()
            if h.shape[-1] != skip.shape[-1]:
                # Nearest-neighbour upsampling to the skip's size (handles odd sizes such as 7 → 14).
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1), temb)
            h = upconv(h)
        return self.out(F.silu(self.out_norm(h)))
