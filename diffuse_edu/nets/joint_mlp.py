"""A joint MLP over several modalities, one clock each: ``net(xs: dict, ts: dict) -> dict``.

Every modality is embedded into one shared hidden vector (a linear map for continuous vectors, a token embedding for
discrete tokens, the mask symbol included); every modality's time gets its own sinusoidal
:class:`~diffuse_edu.nets.embeddings.TimeEmbedding`, and their concatenation modulates every residual block (FiLM, as
in :class:`~diffuse_edu.nets.mlp.TimeMLP`). So the network knows, separately, how noisy each modality is — the input a
decoupled-clock model needs (Rojas et al. 2025). One head per modality: ε (or x₀, v) for continuous ones, logits over
the clean tokens for discrete ones.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .embeddings import TimeEmbedding
from .mlp import _FiLMBlock

__all__ = ["JointMLP"]


class JointMLP(nn.Module):
    """Joint denoiser for vectors and short token sequences.

    Args:
        continuous: name → dimension D of a continuous modality (input and output shape (B, D)).
        discrete: name → (length L, vocabulary V) of a token modality; inputs (B, L) long in [0, V] (V = mask id),
            outputs logits (B, L, V).
        hidden: width of the shared trunk.
        depth: number of residual FiLM blocks.
        time_dim: width of each modality's time embedding (the blocks see all of them concatenated).
        token_dim: width of a token's embedding before the projection to ``hidden``.

    The defaults fit the notebook-3 toy, ``{"point": 2}`` and ``{"label": (1, 8)}``: about 0.17 M parameters.
    """

    def __init__(
        self,
        continuous: Mapping[str, int] | None = None,
        discrete: Mapping[str, tuple[int, int]] | None = None,
        hidden: int = 128,
        depth: int = 3,
        time_dim: int = 32,
        token_dim: int = 64,
    ):
        super().__init__()
        continuous = dict({"point": 2} if continuous is None else continuous)
        discrete = {k: tuple(v) for k, v in ({"label": (1, 8)} if discrete is None else discrete).items()}
        if not continuous and not discrete:
            raise ValueError("JointMLP needs at least one modality.")
        if set(continuous) & set(discrete):
            both = sorted(set(continuous) & set(discrete))
            raise ValueError(f"a modality cannot be both continuous and discrete: {both}.")
        for name, v in dict(hidden=hidden, depth=depth, time_dim=time_dim, token_dim=token_dim).items():
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer; got {v!r}.")
        for name, d in continuous.items():
            if isinstance(d, bool) or not isinstance(d, int) or d <= 0:
                raise ValueError(f"continuous[{name!r}] must be a positive int dimension; got {d!r}.")
        for name, lv in discrete.items():
            if len(lv) != 2 or not all(isinstance(v, int) and v > 0 for v in lv):
                raise ValueError(f"discrete[{name!r}] must be (length, vocab_size), two positive ints; got {lv!r}.")
        self._config = dict(
            continuous=continuous,
            discrete={k: list(v) for k, v in discrete.items()},
            hidden=hidden,
            depth=depth,
            time_dim=time_dim,
            token_dim=token_dim,
        )
        self.continuous, self.discrete = continuous, discrete
        self.names = tuple(continuous) + tuple(discrete)
        self.inp = nn.ModuleDict({n: nn.Linear(d, hidden) for n, d in continuous.items()})
        # V + 1 symbols: the clean tokens and the mask (id V); a uniform process simply never uses the last one.
        self.tok = nn.ModuleDict({n: nn.Embedding(v + 1, token_dim) for n, (length, v) in discrete.items()})
        self.tok_proj = nn.ModuleDict({n: nn.Linear(length * token_dim, hidden) for n, (length, v) in discrete.items()})
        self.time = nn.ModuleDict({n: TimeEmbedding(time_dim) for n in self.names})
        cond_dim = time_dim * len(self.names)
        self.blocks = nn.ModuleList(_FiLMBlock(hidden, cond_dim) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden)
        self.heads = nn.ModuleDict({n: nn.Linear(hidden, d) for n, d in continuous.items()})
        self.heads.update({n: nn.Linear(hidden, length * v) for n, (length, v) in discrete.items()})

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable (used by :mod:`diffuse_edu.checkpoint`)."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict) -> "JointMLP":
        """Rebuild from :meth:`config`."""
        return cls(**config)

    def _check(self, xs: Mapping[str, Tensor], ts: Mapping[str, Tensor]) -> int:
        if set(xs) != set(self.names) or set(ts) != set(self.names):
            raise ValueError(
                f"JointMLP needs xs and ts for exactly {list(self.names)}; got {sorted(xs)} and {sorted(ts)}."
            )
        batch = None
        for n in self.names:
            x, t = xs[n], ts[n]
            want = (self.continuous[n],) if n in self.continuous else (self.discrete[n][0],)
            if x.ndim != 2 or tuple(x.shape[1:]) != want:
                raise ValueError(f"xs[{n!r}] must have shape (B, {want[0]}); got {tuple(x.shape)}.")
            if (n in self.continuous) != x.is_floating_point():
                kind = "a float tensor" if n in self.continuous else "an integer token tensor"
                raise TypeError(f"xs[{n!r}] must be {kind}; got dtype {x.dtype}.")
            batch = x.shape[0] if batch is None else batch
            if x.shape[0] != batch or t.shape != (batch,):
                raise ValueError(f"batch size mismatch at modality {n!r}: xs {tuple(x.shape)}, ts {tuple(t.shape)}.")
        return batch

    def forward(self, xs: Mapping[str, Tensor], ts: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``xs``: name → (B, D) floats or (B, L) tokens; ``ts``: name → (B,). Returns name → (B, D) or (B, L, V)."""
        batch = self._check(xs, ts)
        h = 0
        for n, layer in self.inp.items():
            h = h + layer(xs[n])  # (B, hidden)
        for n, emb in self.tok.items():
            h = h + self.tok_proj[n](emb(xs[n]).flatten(1))  # (B, L·token_dim) -> (B, hidden)
        cond = torch.cat([self.time[n](ts[n]) for n in self.names], dim=-1)  # (B, M·time_dim)
        for block in self.blocks:
            h = block(h, cond)
        h = nn.functional.silu(self.out_norm(h))
        out = {n: head(h) for n, head in self.heads.items() if n in self.continuous}
        for n, (length, v) in self.discrete.items():
            out[n] = self.heads[n](h).reshape(batch, length, v)
        return out
