"""A column-token transformer for tables: one token per column, one clock per column.

Each column of a table is its own modality (Rojas et al. 2025, §5.2): numeric columns live in ℝ and diffuse as
Gaussians, categorical columns live in {0, …, V−1} and diffuse by masking. The network sees the whole noisy row at
once and returns, per column, what that column's process needs:

* numeric column ``c``: ``xs[c]`` float shape (B, 1) → ε (or v, x₀: whatever the loss trains) shape (B, 1);
* categorical column ``c``: ``xs[c]`` long shape (B, 1), ids in [0, V_c] (V_c is that column's mask id) → logits over
  the clean categories, shape (B, 1, V_c);
* ``ts[c]`` shape (B,) for every column: each column has its own clock (columns that share a clock, say all numeric
  ones, simply pass equal times).

**Architecture** (a DiT over column tokens, like the official tabular model, TabularDiT, with one change: the
time conditioning is per token):

1. *Tokens.* A numeric value passes through a small per-column MLP (1 → D → D); a categorical id looks up a per-column
   embedding table with V_c + 1 rows (the clean categories and the mask). A learned per-column embedding is added, so
   the token knows which column it is (the transformer itself is permutation-equivariant).
2. *Clocks.* Every column's t goes through one shared sinusoidal code and one shared MLP, plus a learned per-column
   offset: ``cond_c = SiLU(MLP(sin(t_c)) + e_c)``, shape (B, C, D).
3. *Blocks.* Pre-LayerNorm transformer blocks whose LayerNorms are modulated *per token* by that token's own
   ``cond_c`` (adaLN-Zero: shift, scale and a gate, all zero at initialisation so every block starts as the identity;
   Peebles & Xie 2023). A column therefore knows how noisy it is; how noisy the others are reaches it through
   attention, since their tokens were modulated by their own clocks. Attention is ``F.scaled_dot_product_attention``.
4. *Heads.* A final modulated LayerNorm, then one head per column: an MLP D → D → 1 for a numeric column, D → D → V_c
   for a categorical one.

**Size.** The official Adult model has width 24, depth 4, 4 heads and about 70 K parameters; ``preset="small"`` (the
default) has the same width, depth and heads: 65 K parameters on Adult's 15 columns (the official model spends a
few thousand more on a wider sinusoidal code and deeper heads). ``"medium"`` (width 64, 0.42 M on Adult) and
``"large"`` (width 128, depth 6, 2.2 M) are there for a GPU.

Inputs are checked at the door: names, shapes, dtypes and devices always (no host–device synchronisation), value
ranges (ids within [0, V_c], times in [0, 1], finite numbers) only for CPU tensors outside ``torch.compile``, where
the check costs no sync and breaks no graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_number, check_time, net_checks_values
from .embeddings import sinusoidal_embedding

__all__ = ["PRESETS", "ColumnTransformer"]

#: Named sizes: keyword arguments of :class:`ColumnTransformer`.
PRESETS: dict[str, dict] = {
    "small": dict(width=24, depth=4, heads=4),  # the official model's size (65 K parameters on Adult)
    "medium": dict(width=64, depth=4, heads=4),
    "large": dict(width=128, depth=6, heads=8),
}


class _TokenAdaLNBlock(nn.Module):
    """Pre-LN transformer block whose modulation is per token: ``h`` (B, C, D), ``cond`` (B, C, D) → (B, C, D)."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.heads = heads
        # No affine parameters: the adaLN shift and scale take their place.
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_ratio * width), nn.GELU(approximate="tanh"), nn.Linear(mlp_ratio * width, width)
        )
        self.ada = nn.Linear(width, 6 * width)
        # adaLN-Zero: gates start at 0, so the block starts as the identity map.
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, h: Tensor, cond: Tensor) -> Tensor:
        B, C, D = h.shape
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(cond).chunk(6, dim=-1)  # 6 × (B, C, D): one set per token
        a = self.norm1(h) * (1 + sc1) + sh1
        q, k, v = self.qkv(a).view(B, C, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # 3 × (B, H, C, D/H)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, C, D)
        h = h + g1 * self.proj(a)
        m = self.norm2(h) * (1 + sc2) + sh2
        return h + g2 * self.mlp(m)


class ColumnTransformer(nn.Module):
    """Column-token transformer denoiser for tables: ``net(xs, ts) -> dict`` with one entry per column.

    Args:
        numeric: names of the numeric columns (inputs and outputs shape (B, 1)).
        categorical: name → vocabulary size V_c of each categorical column (inputs long (B, 1) with ids in
            [0, V_c], V_c being the mask id; outputs logits (B, 1, V_c)).
        width: token width D.  depth: number of blocks.  heads: attention heads (must divide D).
        mlp_ratio: hidden width of the blocks' MLPs, in multiples of D.
        freq_dim: width of the sinusoidal time code (even).
        time_scale: times are multiplied by this before the sinusoids (see
            :func:`~diffuse_edu.nets.embeddings.sinusoidal_embedding`).

    Column order is ``numeric`` then ``categorical``; it fixes the token order and nothing else.
    """

    def __init__(
        self,
        numeric: Sequence[str] = (),
        categorical: Mapping[str, int] | None = None,
        width: int = 24,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: int = 4,
        freq_dim: int = 64,
        time_scale: float = 1000.0,
    ):
        super().__init__()
        if isinstance(numeric, str):
            raise TypeError(f"numeric must be a sequence of column names, not one string ({numeric!r}).")
        if not isinstance(numeric, Sequence) or not all(isinstance(n, str) and n for n in numeric):
            raise TypeError(f"numeric must be a sequence of column names (non-empty strings); got {numeric!r}.")
        if categorical is not None and (
            not isinstance(categorical, Mapping) or not all(isinstance(k, str) and k for k in categorical)
        ):
            raise TypeError(
                f"categorical must be a dict column name (non-empty str) → vocabulary size; got {categorical!r}."
            )
        numeric = list(numeric)
        categorical = dict(categorical or {})
        if not numeric and not categorical:
            raise ValueError("ColumnTransformer needs at least one column (numeric or categorical).")
        names = numeric + list(categorical)
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"column names must be unique across numeric and categorical; repeated: {dup}.")
        for name, v in categorical.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"categorical[{name!r}] must be a positive int vocabulary size; got {v!r}.")
        for name, v in dict(width=width, depth=depth, heads=heads, mlp_ratio=mlp_ratio, freq_dim=freq_dim).items():
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer; got {v!r}.")
        if width % heads:
            raise ValueError(f"width={width} must be divisible by heads={heads}.")
        if freq_dim % 2:
            raise ValueError(f"freq_dim must be even; got {freq_dim}.")
        check_number(time_scale, "time_scale", 0.0, strict_low=True)  # NaN gave NaN outputs, "1000" a late error
        self._config = dict(
            numeric=list(numeric),
            categorical=dict(categorical),
            width=width,
            depth=depth,
            heads=heads,
            mlp_ratio=mlp_ratio,
            freq_dim=freq_dim,
            time_scale=float(time_scale),
        )
        self.numeric, self.categorical = tuple(numeric), dict(categorical)
        self.names = tuple(names)
        self.width, self.freq_dim, self.time_scale = width, freq_dim, float(time_scale)
        n_num, D = len(numeric), width

        # Numeric values: a per-column MLP 1 → D → D, all columns at once (parameters stacked on a column axis).
        self.num_w1 = nn.Parameter(torch.randn(n_num, D) * 0.02)
        self.num_b1 = nn.Parameter(torch.zeros(n_num, D))
        self.num_w2 = nn.Parameter(torch.randn(n_num, D, D) * D**-0.5)
        self.num_b2 = nn.Parameter(torch.zeros(n_num, D))
        # Categorical ids: one table holding every column's V_c + 1 rows; column c's ids are shifted by its offset.
        sizes = [v + 1 for v in categorical.values()]
        offsets = torch.tensor([0] + sizes[:-1], dtype=torch.long).cumsum(0) if sizes else torch.zeros(0)
        self.register_buffer("cat_offsets", offsets.long(), persistent=False)
        self.cat_emb = nn.Embedding(max(sum(sizes), 1), D)
        nn.init.normal_(self.cat_emb.weight, std=0.02)
        # Which column a token is, and a per-column offset of its time embedding.
        self.col_emb = nn.Parameter(torch.randn(len(names), D) * 0.02)
        self.col_time = nn.Parameter(torch.zeros(len(names), D))
        self.time_mlp = nn.Sequential(nn.Linear(freq_dim, D), nn.SiLU(), nn.Linear(D, D))
        nn.init.normal_(self.time_mlp[0].weight, std=0.02)
        nn.init.normal_(self.time_mlp[2].weight, std=0.02)

        self.blocks = nn.ModuleList(_TokenAdaLNBlock(D, heads, mlp_ratio) for _ in range(depth))
        self.out_norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.out_ada = nn.Linear(D, 2 * D)
        nn.init.zeros_(self.out_ada.weight)
        nn.init.zeros_(self.out_ada.bias)
        # Heads: numeric ones stacked like the input MLPs (D → D → 1), categorical ones each D → D → V_c.
        self.head_w1 = nn.Parameter(torch.randn(n_num, D, D) * D**-0.5)
        self.head_b1 = nn.Parameter(torch.zeros(n_num, D))
        self.head_w2 = nn.Parameter(torch.randn(n_num, D) * D**-0.5)
        self.head_b2 = nn.Parameter(torch.zeros(n_num))
        self.cat_heads = nn.ModuleDict(
            {n: nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, v)) for n, v in categorical.items()}
        )

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def from_preset(
        cls, preset: str, numeric: Sequence[str] = (), categorical: Mapping[str, int] | None = None, **overrides
    ) -> "ColumnTransformer":
        """Build with a named size from :data:`PRESETS` (``"small"``, ``"medium"``, ``"large"``)."""
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {list(PRESETS)}; got {preset!r}.")
        return cls(numeric, categorical, **{**PRESETS[preset], **overrides})

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable (used by :mod:`diffuse_edu.checkpoint`)."""
        cfg = dict(self._config)
        cfg["numeric"], cfg["categorical"] = list(cfg["numeric"]), dict(cfg["categorical"])
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> "ColumnTransformer":
        """Rebuild from :meth:`config`."""
        return cls(**config)

    def num_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ------------------------------------------------------------------ forward

    def _check(self, xs: Mapping[str, Tensor], ts: Mapping[str, Tensor]) -> tuple[int, dict[str, Tensor]]:
        names = set(self.names)
        if not isinstance(xs, Mapping) or not isinstance(ts, Mapping):
            raise TypeError("xs and ts must be dicts of column name → tensor.")
        if set(xs) != names or set(ts) != names:
            raise ValueError(
                f"ColumnTransformer needs xs and ts for exactly the columns {list(self.names)}; "
                f"got xs {sorted(xs)} and ts {sorted(ts)}."
            )
        batch, device, times = None, self.col_emb.device, {}
        for n in self.names:
            x, t = xs[n], ts[n]
            if not isinstance(x, Tensor):
                raise TypeError(f"the values of xs must be tensors; xs[{n!r}] is a {type(x).__name__}.")
            if batch is None:
                batch = x.shape[0] if x.ndim else -1
            if not isinstance(t, Tensor) or t.ndim == 0:
                # A plain number (or a 0-d tensor) is one time for the whole batch, as the other networks take it.
                if isinstance(t, Tensor) and not t.is_floating_point():
                    raise TypeError(f"ts[{n!r}] must be a floating-point tensor of times in [0, 1]; got {t.dtype}.")
                values = net_checks_values(t) if isinstance(t, Tensor) else True
                t = check_time(t, batch=max(batch, 0), name=f"ts[{n!r}]", device=device, values=values)
            times[n] = t
            if x.ndim != 2 or x.shape[1] != 1 or x.shape[0] != batch:
                raise ValueError(f"xs[{n!r}] must have shape ({batch}, 1), one value per row; got {tuple(x.shape)}.")
            if t.shape != (batch,):
                raise ValueError(f"ts[{n!r}] must have shape ({batch},), one time per row; got {tuple(t.shape)}.")
            if not t.is_floating_point():
                raise TypeError(f"ts[{n!r}] must be a floating-point tensor of times in [0, 1]; got {t.dtype}.")
            if n in self.categorical:
                if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
                    raise TypeError(f"xs[{n!r}] is a categorical column: expected integer ids (long); got {x.dtype}.")
            elif not x.is_floating_point():
                raise TypeError(f"xs[{n!r}] is a numeric column: expected a floating-point tensor; got {x.dtype}.")
            if x.device != device or t.device != device:
                raise ValueError(
                    f"xs[{n!r}] is on {x.device} and ts[{n!r}] on {t.device}, but the network is on {device}; "
                    "move them (or the network)."
                )
            # Value checks only where they cost no host–device synchronisation (CPU) and break no compiled graph.
            if net_checks_values(x) and x.numel():
                if n in self.categorical:
                    lo, hi = int(x.min()), int(x.max())
                    if lo < 0 or hi > self.categorical[n]:
                        raise ValueError(
                            f"xs[{n!r}] holds ids in [{lo}, {hi}]; expected [0, {self.categorical[n]}] "
                            f"({self.categorical[n]} = the mask id)."
                        )
                elif not torch.isfinite(x).all():
                    raise ValueError(f"xs[{n!r}] holds NaN or infinite values.")
            if net_checks_values(t) and t.numel() and not bool(((t >= 0) & (t <= 1)).all()):
                lo, hi = t.min().item(), t.max().item()
                raise ValueError(f"ts[{n!r}] must lie in [0, 1]; got values in [{lo:.4g}, {hi:.4g}].")
        return batch, times

    def forward(self, xs: Mapping[str, Tensor], ts: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Denoise a batch of noisy rows.

        Args:
            xs: column → noisy value: numeric float (B, 1); categorical long (B, 1) with ids in [0, V_c].
            ts: column → time, shape (B,) in [0, 1] (a number or a 0-d tensor is broadcast to the batch).
        Returns:
            column → numeric prediction (B, 1), or categorical logits (B, 1, V_c).
        """
        B, ts = self._check(xs, ts)
        n_num, C = len(self.numeric), len(self.names)
        tokens = []
        if n_num:
            x = torch.cat([xs[n] for n in self.numeric], dim=1).to(self.num_w1.dtype)  # (B, Cn)
            e = F.silu(x[:, :, None] * self.num_w1 + self.num_b1)  # (B, Cn, D)
            tokens.append(torch.einsum("bcd,cde->bce", e, self.num_w2) + self.num_b2)  # (B, Cn, D)
        if self.categorical:
            ids = torch.cat([xs[n] for n in self.categorical], dim=1).long() + self.cat_offsets  # (B, Cc)
            tokens.append(self.cat_emb(ids))  # (B, Cc, D)
        if len(tokens) == 2 and tokens[0].dtype != tokens[1].dtype:  # bf16 autocast: matmul vs embedding output
            tokens[1] = tokens[1].to(tokens[0].dtype)
        h = torch.cat(tokens, dim=1) + self.col_emb  # (B, C, D)

        t = torch.stack([ts[n] for n in self.names], dim=1)  # (B, C)
        code = sinusoidal_embedding(t.reshape(-1), self.freq_dim, scale=self.time_scale).view(B, C, self.freq_dim)
        cond = F.silu(self.time_mlp(code.to(self.time_mlp[0].weight.dtype)) + self.col_time)  # (B, C, D)

        for block in self.blocks:
            h = block(h, cond)
        shift, scale = self.out_ada(cond).chunk(2, dim=-1)
        h = self.out_norm(h) * (1 + scale) + shift  # (B, C, D)

        out: dict[str, Tensor] = {}
        if n_num:
            hn = F.silu(torch.einsum("bcd,cde->bce", h[:, :n_num], self.head_w1) + self.head_b1)  # (B, Cn, D)
            y = torch.einsum("bcd,cd->bc", hn, self.head_w2) + self.head_b2  # (B, Cn)
            out.update({n: y[:, i : i + 1] for i, n in enumerate(self.numeric)})
        for i, (n, head) in enumerate(self.cat_heads.items()):
            out[n] = head(h[:, n_num + i]).unsqueeze(1)  # (B, 1, V_c)
        return {n: out[n] for n in self.names}
