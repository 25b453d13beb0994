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

from .._checks import (
    check_float_tensor,
    check_index_tensor,
    check_module_input,
    check_positive_int,
    check_time,
    net_checks_values,
)
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
        continuous = {"point": 2} if continuous is None else continuous
        discrete = {"label": (1, 8)} if discrete is None else discrete
        for what, d in (("continuous", continuous), ("discrete", discrete)):
            if not isinstance(d, Mapping) or not all(isinstance(k, str) and k for k in d):
                raise TypeError(f"{what} must be a dict keyed by modality name (non-empty strings); got {d!r}.")
        continuous, discrete = dict(continuous), dict(discrete)
        if not continuous and not discrete:
            raise ValueError("JointMLP needs at least one modality.")
        if set(continuous) & set(discrete):
            both = sorted(set(continuous) & set(discrete))
            raise ValueError(f"a modality cannot be both continuous and discrete: {both}.")
        for name, v in dict(hidden=hidden, depth=depth, time_dim=time_dim, token_dim=token_dim).items():
            check_positive_int(v, name)
        for name, d in continuous.items():
            check_positive_int(d, f"continuous[{name!r}]")
        for name, lv in discrete.items():
            ok = isinstance(lv, (tuple, list)) and len(lv) == 2
            if not ok or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in lv):
                raise ValueError(f"discrete[{name!r}] must be (length, vocab_size), two positive ints; got {lv!r}.")
        discrete = {k: tuple(v) for k, v in discrete.items()}
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

    def _check(self, xs: Mapping[str, Tensor], ts: Mapping[str, Tensor]) -> tuple[int, dict[str, Tensor]]:
        """Check the inputs (values on CPU only, see :mod:`diffuse_edu.nets.embeddings`); return B and the times."""
        for what, d in (("xs", xs), ("ts", ts)):
            if not isinstance(d, Mapping):
                raise TypeError(f"JointMLP takes dicts name -> tensor; {what} is a {type(d).__name__}.")
            missing, extra = [n for n in self.names if n not in d], [n for n in d if n not in self.names]
            if missing or extra:
                raise ValueError(
                    f"{what} must hold exactly the modalities {list(self.names)}; "
                    f"missing {missing}, unexpected {extra}."
                )
        batch, first, times = None, None, {}
        for n in self.names:
            x = xs[n]
            values = net_checks_values(x)
            if n in self.continuous:
                check_float_tensor(x, f"xs[{n!r}]", values=values)
                check_module_input(x, self, f"xs[{n!r}]")
                want = (self.continuous[n],)
            else:
                # ids in [0, V]: the V clean tokens and the mask id V.
                check_index_tensor(x, f"xs[{n!r}]", self.discrete[n][1] + 1, values=values)
                want = (self.discrete[n][0],)
            if x.ndim != 2 or tuple(x.shape[1:]) != want:
                raise ValueError(f"xs[{n!r}] must have shape (B, {want[0]}); got {tuple(x.shape)}.")
            if batch is None:
                batch, first = x.shape[0], n
            elif x.shape[0] != batch:
                raise ValueError(f"batch size mismatch: xs[{n!r}] has {x.shape[0]} rows, xs[{first!r}] has {batch}.")
            times[n] = check_time(ts[n], batch=batch, name=f"ts[{n!r}]", device=x.device, values=values).to(x.device)
        return batch, times

    def forward(self, xs: Mapping[str, Tensor], ts: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``xs``: name → (B, D) floats or (B, L) tokens in [0, V]; ``ts``: name → (B,) or a number.

        Returns name → (B, D) or (B, L, V). B = 0 gives empty outputs.
        """
        batch, ts = self._check(xs, ts)
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
