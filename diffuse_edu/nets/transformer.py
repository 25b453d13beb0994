"""Two transformers built from the same blocks: a bidirectional, time-conditioned denoiser and a causal baseline.

* :class:`DiffusionTransformer` sees every position at once (no attention mask) and the clock t; it returns logits over
  the clean vocabulary at every position — the denoiser of the masked and the uniform processes (MDLM, Sahoo et al.
  2024, use a DiT of this kind).
* :class:`CausalTransformer` is the autoregressive baseline of the *same* width, depth and heads: the same blocks with a
  causal attention mask and no time input. Its likelihood is exact, so its bits/char is the yardstick for the diffusion
  models' ELBOs.

Time enters the denoiser by adding a :class:`~diffuse_edu.nets.embeddings.TimeEmbedding` to every token embedding
(default), or through adaptive LayerNorm (``time_conditioning="adaln"``, DiT, Peebles & Xie 2023), which costs
about 6·width² more parameters per block. The default keeps the two models' parameter counts within a few percent,
so "same size" holds. For masked diffusion the clock is nearly redundant (the number of masks reveals it; the optimal
masked denoiser does not depend on t, MDLM §3.4 / Ou et al. 2024), so ``time_conditioning="none"`` drops it: the
network then has exactly the autoregressive baseline's parameter count, and the sampler's cache becomes exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import (
    check_device,
    check_generator,
    check_index_tensor,
    check_number,
    check_positive_int,
    check_time,
    net_checks_values,
)
from .embeddings import TimeEmbedding

__all__ = ["TransformerBlock", "DiffusionTransformer", "CausalTransformer"]


def _check_tokens(x, name: str, vocab: int, max_len: int) -> Tensor:
    # Ids are range-checked on CPU only: on a GPU the check is a sync per call, and nn.Embedding asserts there anyway
    # (see diffuse_edu.nets.embeddings).
    check_index_tensor(x, name, vocab, values=net_checks_values(x))
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (B, L) of token ids; got shape {tuple(x.shape)}.")
    if not 1 <= x.shape[1] <= max_len:
        raise ValueError(f"{name} has length L={x.shape[1]}; this network handles 1 ≤ L ≤ max_len={max_len}.")
    return x


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: x + attn(LN(x)), then x + MLP(LN(x)); optional adaptive LayerNorm from a condition.

    With ``cond_dim`` set, a zero-initialised linear map of the condition gives a shift, a scale and a gate for each
    half (adaLN); at initialisation the block therefore equals the unconditioned one.

    Args:
        width: model width D.  heads: attention heads (must divide D).  dropout: on attention and residual branches.
        cond_dim: width of the condition vector, or None for a plain block.  mlp_ratio: hidden width / D.
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.0, cond_dim: int | None = None, mlp_ratio: int = 4):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))
        self.drop = nn.Dropout(dropout)
        self.ada = None
        if cond_dim is not None:
            self.ada = nn.Linear(cond_dim, 6 * width)
            nn.init.zeros_(self.ada.weight)
            nn.init.zeros_(self.ada.bias)

    def forward(self, h: Tensor, cond: Tensor | None = None, causal: bool = False) -> Tensor:
        """``h`` shape (B, L, D), ``cond`` shape (B, C) or None; returns shape (B, L, D)."""
        B, L, D = h.shape
        if self.ada is not None:
            if cond is None:
                raise ValueError("this block is conditioned (cond_dim set); pass cond of shape (B, cond_dim).")
            # (B, 1, D) each: shift/scale modulate the normalised input, gate scales the branch (1 + g starts at 1).
            sh1, sc1, g1, sh2, sc2, g2 = self.ada(F.silu(cond))[:, None, :].chunk(6, dim=-1)
        else:
            sh1 = sc1 = g1 = sh2 = sc2 = g2 = h.new_zeros(())
        a = self.norm1(h) * (1 + sc1) + sh1
        q, k, v = self.qkv(a).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # 3 × (B, H, L, D/H)
        a = F.scaled_dot_product_attention(
            q, k, v, is_causal=causal, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, L, D/H)
        a = a.transpose(1, 2).reshape(B, L, D)
        h = h + (1 + g1) * self.drop(self.proj(a))
        m = self.norm2(h) * (1 + sc2) + sh2
        return h + (1 + g2) * self.drop(self.mlp(m))


class _TransformerTrunk(nn.Module):
    """Token + learned position embeddings, ``depth`` blocks, a final LayerNorm and a linear head (shared code)."""

    def __init__(
        self,
        vocab_in: int,
        vocab_out: int,
        max_len: int,
        width: int,
        depth: int,
        heads: int,
        dropout: float,
        cond_dim: int | None,
    ):
        super().__init__()
        for name, val in dict(
            vocab_in=vocab_in, vocab_out=vocab_out, max_len=max_len, width=width, depth=depth, heads=heads
        ).items():
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ValueError(f"{name} must be a positive integer; got {val!r}.")
        if width % heads:
            raise ValueError(f"width={width} must be divisible by heads={heads}.")
        dropout = check_number(dropout, "dropout", 0.0, 1.0, strict_high=True)
        self.vocab_in, self.vocab_out, self.max_len = vocab_in, vocab_out, max_len
        self.width, self.depth, self.heads, self.dropout_p = width, depth, heads, dropout
        self.tok = nn.Embedding(vocab_in, width)
        self.pos = nn.Parameter(torch.zeros(max_len, width))
        self.blocks = nn.ModuleList(TransformerBlock(width, heads, dropout, cond_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_out)
        self.drop = nn.Dropout(dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        # GPT-2 style: small normal weights, zero biases; adaLN maps stay at zero (identity modulation at start).
        for mod in self.modules():
            if isinstance(mod, nn.Linear) and not any(mod is b.ada for b in self.blocks):
                nn.init.normal_(mod.weight, std=0.02)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.Embedding):
                nn.init.normal_(mod.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)

    def _run(
        self, tokens: Tensor, add: Tensor | None = None, cond: Tensor | None = None, causal: bool = False
    ) -> Tensor:
        """tokens (B, L) → logits (B, L, vocab_out); ``add`` (B, D) is added to every position."""
        L = tokens.shape[1]
        h = self.tok(tokens) + self.pos[:L]  # (B, L, D)
        if add is not None:
            h = h + add[:, None, :]
        h = self.drop(h)
        for block in self.blocks:
            h = block(h, cond, causal)
        return self.head(self.norm(h))

    @classmethod
    def from_config(cls, config: dict):
        """Rebuild from :meth:`config`."""
        return cls(**config)

    def num_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


class DiffusionTransformer(_TransformerTrunk):
    """Bidirectional, time-conditioned transformer denoiser: ``(x_t (B, L) long, t (B,)) -> logits (B, L, vocab_out)``.

    Args:
        vocab_in: input symbols (for the masked process: clean vocabulary + 1 for the mask id).
        vocab_out: output classes (the clean vocabulary).
        max_len: longest sequence L.
        width, depth, heads, dropout: transformer size.
        time_conditioning: ``"add"`` (time embedding added to every token), ``"adaln"`` (adaptive LayerNorm) or
            ``"none"`` (t is validated and ignored: enough for masked diffusion).
    """

    def __init__(
        self,
        vocab_in: int,
        vocab_out: int,
        max_len: int,
        width: int = 128,
        depth: int = 4,
        heads: int = 4,
        dropout: float = 0.0,
        time_conditioning: str = "add",
    ):
        if time_conditioning not in ("add", "adaln", "none"):
            raise ValueError(f"time_conditioning must be 'add', 'adaln' or 'none'; got {time_conditioning!r}.")
        super().__init__(
            vocab_in,
            vocab_out,
            max_len,
            width,
            depth,
            heads,
            dropout,
            cond_dim=width if time_conditioning == "adaln" else None,
        )
        self.time_conditioning = time_conditioning
        self.time_emb = TimeEmbedding(width) if time_conditioning != "none" else None

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable (used by :mod:`diffuse_edu.checkpoint`)."""
        return dict(
            vocab_in=self.vocab_in,
            vocab_out=self.vocab_out,
            max_len=self.max_len,
            width=self.width,
            depth=self.depth,
            heads=self.heads,
            dropout=self.dropout_p,
            time_conditioning=self.time_conditioning,
        )

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """Logits of the clean tokens at every position.

        Args:
            x: noisy tokens, long shape (B, L) with ids in [0, vocab_in).
            t: times, shape (B,) in [0, 1] (a float is broadcast).
        Returns:
            logits, shape (B, L, vocab_out).
        """
        _check_tokens(x, "x", self.vocab_in, self.max_len)
        t = check_time(t, batch=x.shape[0], device=x.device, values=net_checks_values(x)).to(x.device)
        if self.time_emb is None:
            return self._run(x)
        emb = self.time_emb(t)  # (B, D)
        if self.time_conditioning == "add":
            return self._run(x, add=emb)
        return self._run(x, cond=emb)


class CausalTransformer(_TransformerTrunk):
    """Autoregressive baseline: the same blocks with a causal mask and no time, ``x (B, L) -> logits (B, L, vocab)``.

    Position i is predicted from positions < i: the input is shifted right behind a begin-of-sequence id
    ``bos_id = vocab`` (so the network embeds ``vocab + 1`` symbols, like the masked denoiser with its mask id).

    Args:
        vocab: clean vocabulary size V (tokens in [0, V)).
        max_len, width, depth, heads, dropout: as :class:`DiffusionTransformer`.
    """

    def __init__(
        self, vocab: int, max_len: int, width: int = 128, depth: int = 4, heads: int = 4, dropout: float = 0.0
    ):
        super().__init__(vocab + 1, vocab, max_len, width, depth, heads, dropout, cond_dim=None)
        self.vocab = vocab
        self.bos_id = vocab

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable (used by :mod:`diffuse_edu.checkpoint`)."""
        return dict(
            vocab=self.vocab,
            max_len=self.max_len,
            width=self.width,
            depth=self.depth,
            heads=self.heads,
            dropout=self.dropout_p,
        )

    def forward(self, x: Tensor) -> Tensor:
        """Logits shape (B, L, V): entry [:, i] is the distribution of x[:, i] given x[:, :i]. ``x`` long (B, L)."""
        _check_tokens(x, "x", self.vocab, self.max_len)
        bos = torch.full_like(x[:, :1], self.bos_id)
        return self._run(torch.cat([bos, x[:, :-1]], dim=1), causal=True)

    def nll(self, x: Tensor) -> Tensor:
        """Exact negative log-likelihood −log p(x) in nats, summed over the L positions; shape (B,)."""
        logits = self(x)  # (B, L, V)
        return F.cross_entropy(logits.transpose(1, 2).float(), x, reduction="none").sum(dim=1)

    def loss(self, x: Tensor) -> Tensor:
        """Training loss: mean NLL per position (nats), a scalar; ``loss_fn = lambda m, x: m.loss(x)``.

        Refuses an empty batch (the mean of nothing); :meth:`nll` of an empty batch is empty."""
        _check_tokens(x, "x", self.vocab, self.max_len)
        if x.shape[0] == 0:
            raise ValueError("x is an empty batch; the loss is a mean over at least one sequence.")
        return self.nll(x).mean() / x.shape[1]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        length: int | None = None,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        device=None,
    ) -> Tensor:
        """Draw ``n`` sequences left to right (ancestral sampling); NFE = ``length`` network calls.

        Args:
            n: number of sequences.  length: L (default ``max_len``).
            generator: all randomness comes from it (draws happen on its device).
            temperature: divides the logits (1 = the model's own distribution).
            device: where the network runs (default: the model's device).
        Returns:
            long tensor shape (n, L).
        """
        length = self.max_len if length is None else length
        check_positive_int(n, "n")
        check_positive_int(length, "length")
        if length > self.max_len:
            raise ValueError(f"length must be an int in [1, {self.max_len}]; got {length!r}.")
        check_number(temperature, "temperature", 0.0, strict_low=True)
        check_generator(generator)
        device = check_device(device) or next(self.parameters()).device
        draw_device = generator.device if generator is not None else device
        x = torch.zeros(n, 0, dtype=torch.long, device=device)
        for i in range(length):
            # Feed the prefix plus a dummy slot; the causal mask keeps position i blind to that slot.
            logits = self(torch.cat([x, x.new_zeros(n, 1)], dim=1))[:, i]  # (n, V)
            probs = torch.softmax(logits.double() / temperature, dim=-1).to(draw_device)
            nxt = torch.multinomial(probs, 1, generator=generator).to(device)  # (n, 1)
            x = torch.cat([x, nxt], dim=1)
        return x
