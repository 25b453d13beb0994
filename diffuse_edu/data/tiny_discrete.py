r"""A tiny explicit distribution over short token sequences, with exact oracle denoisers and exact sampler laws.

With length L = 3 over V = 3 symbols there are only K = 27 sequences, so everything a text model approximates can be
computed by brute force: the true negative log-likelihood, the Bayes-optimal denoiser :math:`p(x_0^i \mid x_t)` of
the masked or uniform process, and even the exact output law of a sampler (by propagating a distribution over all
noisy states). Tests and notebook 2 use it to check that ELBOs are bounds and samplers are exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "TinyDistribution",
    "make_tiny_distribution",
    "MaskedOracle",
    "UniformOracle",
    "masked_sampler_law",
    "uniform_sampler_law",
    "total_variation",
    "exact_discrete_time_nelbo",
]


def _all_states(length: int, num_symbols: int) -> Tensor:
    """Every sequence over ``num_symbols`` symbols, shape (num_symbols**length, length), in lexicographic order."""
    return torch.tensor(list(itertools.product(range(num_symbols), repeat=length)), dtype=torch.long).reshape(
        -1, length
    )


def _state_index(x: Tensor, num_symbols: int) -> Tensor:
    """Row index in :func:`_all_states` of each sequence of ``x`` (shape (B, L)); returns shape (B,)."""
    L = x.shape[-1]
    weights = num_symbols ** torch.arange(L - 1, -1, -1, device=x.device)
    return (x * weights).sum(-1)


def total_variation(p: Tensor, q: Tensor) -> float:
    """½ Σ |p − q| between two probability vectors of the same shape."""
    return 0.5 * (p.double() - q.double()).abs().sum().item()


@dataclass
class TinyDistribution:
    """An explicit distribution over all ``vocab_size ** length`` sequences.

    Attributes:
        probs: shape (K,), float64, summing to one; entry k is the probability of ``configs[k]``.
        vocab_size: V; length: L.
    """

    probs: Tensor
    vocab_size: int
    length: int

    def __post_init__(self):
        K = self.vocab_size**self.length
        if self.probs.shape != (K,):
            raise ValueError(f"probs must have shape ({K},) = (vocab_size**length,); got {tuple(self.probs.shape)}.")
        self.probs = (self.probs / self.probs.sum()).double()
        self.configs = _all_states(self.length, self.vocab_size)  # (K, L)

    def index(self, x: Tensor) -> Tensor:
        """Configuration index of each row of ``x`` (shape (B, L)); shape (B,)."""
        return _state_index(x, self.vocab_size)

    def nll(self, x: Tensor) -> Tensor:
        """−log p(x) in nats for each row of ``x`` (shape (B, L)); shape (B,), float64."""
        return -torch.log(self.probs[self.index(x.cpu())]).to(x.device)

    def entropy(self) -> float:
        """H(p) in nats: the expected NLL, the floor for any NELBO averaged over the data."""
        p = self.probs[self.probs > 0]
        return float(-(p * p.log()).sum())

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n i.i.d. sequences, shape (n, L)."""
        idx = torch.multinomial(self.probs, n, replacement=True, generator=generator)
        return self.configs[idx]

    def empirical(self, x: Tensor) -> Tensor:
        """Empirical distribution of the rows of ``x`` (shape (B, L)) over the K configurations; shape (K,)."""
        counts = torch.bincount(self.index(x.cpu()), minlength=self.probs.numel()).double()
        return counts / counts.sum()

    def marginals(self) -> Tensor:
        """Per-position marginals p(x^i = v), shape (L, V)."""
        onehot = torch.nn.functional.one_hot(self.configs, self.vocab_size).double()  # (K, L, V)
        return torch.einsum("k,klv->lv", self.probs, onehot)

    def factorised(self) -> "TinyDistribution":
        """The product of the marginals: same per-position marginals, no dependence between positions."""
        m = self.marginals()
        probs = m[torch.arange(self.length), self.configs].prod(-1)  # (K,)
        return TinyDistribution(probs, self.vocab_size, self.length)


def make_tiny_distribution(
    length: int = 3, vocab_size: int = 3, spread: float = 1.5, seed: int = 0
) -> TinyDistribution:
    """A random, non-factorised distribution: log-normal weights exp(``spread``·z), z ~ N(0, 1), on all V**L sequences.

    Larger ``spread`` gives peakier, more strongly dependent distributions (further from the product of their
    marginals). Every sequence keeps a positive probability, so every posterior is well defined.
    """
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(vocab_size**length, generator=g, dtype=torch.float64)
    return TinyDistribution(torch.exp(spread * z), vocab_size, length)


class MaskedOracle:
    r"""The exact denoiser of the masked process for a :class:`TinyDistribution`: logits of p(x_0^i | x_t).

    Bayes: the mask pattern is independent of x₀, so :math:`p(x_0 \mid x_t) \propto p(x_0)\,
    \mathbb{1}[x_0 \text{ agrees with the unmasked tokens of } x_t]` — independent of t. A table over all
    (V+1)**L noisy states is built once. Calls are counted in :attr:`calls` (the NFE).

    Call: ``oracle(x_t, t)`` with x_t shape (B, L) (mask id = V) → float64 logits, shape (B, L, V).
    """

    def __init__(self, dist: TinyDistribution):
        self.dist = dist
        V, L = dist.vocab_size, dist.length
        self.mask_id = V
        states = _all_states(L, V + 1)  # (S, L)
        c = dist.configs  # (K, L)
        agree = ((states[:, None, :] == V) | (states[:, None, :] == c[None])).all(-1)  # (S, K)
        post = agree.double() * dist.probs[None]  # (S, K) unnormalised posterior over x0
        post = post / post.sum(-1, keepdim=True)
        onehot = torch.nn.functional.one_hot(c, V).double()  # (K, L, V)
        self.table = torch.einsum("sk,klv->slv", post, onehot)  # (S, L, V): p(x0^i = v | x_t = state s)
        self.calls = 0

    def marginals(self, x_t: Tensor) -> Tensor:
        """p(x_0^i = v | x_t), shape (B, L, V), float64."""
        return self.table[_state_index(x_t.cpu(), self.dist.vocab_size + 1)].to(x_t.device)

    def __call__(self, x_t: Tensor, t: Tensor) -> Tensor:
        self.calls += 1
        # finite logits (outputs must be finite): an impossible value gets probability ~1e-300 instead of 0
        return torch.log(self.marginals(x_t).clamp_min(1e-300))


class UniformOracle:
    r"""The exact denoiser of the uniform process: logits of p(x_0^i | x_t) = Σ p(x_0) Π_j q_t(x_t^j | x_0^j) / Z.

    Depends on t through :math:`q_t(y \mid x) = \alpha_t [y = x] + (1 - \alpha_t)/V`. Calls counted in :attr:`calls`.
    Call: ``oracle(x_t, t)`` with x_t (B, L), t (B,) → float64 logits (B, L, V).
    """

    def __init__(self, dist: TinyDistribution, process):
        self.dist, self.process = dist, process
        self.calls = 0
        c = dist.configs
        # agree[s, k]: how many positions of noisy state s equal configuration k (the noisy states are the configs)
        self._agree = (c[:, None, :] == c[None]).sum(-1).double()  # (K, K)
        self._onehot = torch.nn.functional.one_hot(c, dist.vocab_size).double()  # (K, L, V)

    def marginals(self, x_t: Tensor, t: Tensor) -> Tensor:
        """p(x_0^i = v | x_t), shape (B, L, V), float64."""
        V, L = self.dist.vocab_size, self.dist.length
        agree = self._agree[_state_index(x_t.cpu(), V)]  # (B, K)
        t = torch.as_tensor(t, dtype=torch.float64).cpu().expand(x_t.shape[0])
        a = self.process.schedule.alpha(t)[:, None]
        u = (1 - a) / V
        # Π_j q_t(x_t^j | x_0^j) = (α + u)^{#agreements} u^{L − #agreements}, in logs (u → 0 near t = 0)
        log_lik = agree * torch.log(a + u) + torch.where(agree < L, (L - agree) * torch.log(u), torch.zeros_like(agree))
        post = torch.softmax(log_lik + self.dist.probs.log()[None], -1)  # (B, K)
        return torch.einsum("bk,klv->blv", post, self._onehot).to(x_t.device)

    def __call__(self, x_t: Tensor, t: Tensor) -> Tensor:
        self.calls += 1
        return torch.log(self.marginals(x_t, t).clamp_min(1e-300))


def _propagate(law: Tensor, token_probs: Tensor, states: Tensor) -> Tensor:
    """One step of a chain whose kernel factorises over positions.

    Args:
        law: shape (S,), distribution over ``states`` (S, L).
        token_probs: shape (S, L, W): from state s, position i moves to symbol w with probability token_probs[s, i, w].
    Returns:
        the next law, shape (S,).
    """
    L = states.shape[1]
    # kernel[s, s'] = Π_i token_probs[s, i, states[s', i]]
    kernel = torch.ones(states.shape[0], states.shape[0], dtype=torch.float64)
    for i in range(L):
        kernel = kernel * token_probs[:, i, states[:, i]]
    return law @ kernel


def masked_sampler_law(oracle: MaskedOracle, reveal_probs: Sequence[float] | Tensor) -> Tensor:
    """Exact output law of a masked sampler driven by ``oracle``, started from all-mask.

    At iteration k every masked token is revealed, independently, with probability ``reveal_probs[k]`` to a value
    drawn from the oracle marginal (this covers the ancestral, Euler and tau-leaping samplers; see
    :func:`diffuse_edu.discrete_samplers.reveal_schedule`). The last entry should be 1 (the final denoise).

    Returns:
        shape (K,): probability of each clean configuration (mass left on masked states is dropped).
    """
    V, L = oracle.dist.vocab_size, oracle.dist.length
    states = _all_states(L, V + 1)
    law = torch.zeros(states.shape[0], dtype=torch.float64)
    law[-1] = 1.0  # the all-mask state is the last in lexicographic order
    masked = (states == V).double()  # (S, L)
    for r in torch.as_tensor(reveal_probs, dtype=torch.float64).tolist():
        tp = torch.zeros(states.shape[0], L, V + 1, dtype=torch.float64)
        tp[..., :V] = r * masked[..., None] * oracle.table
        tp[..., V] = (1 - r) * masked
        tp += (1 - masked)[..., None] * torch.nn.functional.one_hot(states, V + 1).double()
        law = _propagate(law, tp, states)
    clean = (states < V).all(-1)
    return law[clean]  # clean states keep lexicographic order = TinyDistribution.configs order


def uniform_sampler_law(oracle: UniformOracle, grid: Tensor) -> Tensor:
    """Exact output law of the ancestral uniform sampler (:func:`~diffuse_edu.discrete_samplers.sample_uniform`).

    Starts from the uniform prior and applies the factorised reverse kernel
    ``process.posterior_probs(x_t, oracle(x_t, t), t, s)`` for each consecutive pair (t, s) of ``grid``.

    Returns:
        shape (K,).
    """
    process = oracle.process
    states = oracle.dist.configs
    S = states.shape[0]
    law = torch.full((S,), 1.0 / S, dtype=torch.float64)
    for t, s in zip(grid[:-1].tolist(), grid[1:].tolist()):
        tt, ss = torch.full((S,), t, dtype=torch.float64), torch.full((S,), s, dtype=torch.float64)
        x0_probs = oracle.marginals(states, tt)
        tp = process.posterior_probs(states, x0_probs, tt, ss).double()  # (S, L, V)
        law = _propagate(law, tp, states)
    return law


def exact_discrete_time_nelbo(process, denoiser, x0: Tensor, grid: Tensor) -> Tensor:
    r"""The discrete-time NELBO of a reverse chain on ``grid``, computed exactly by enumerating every noisy state.

    $$
    \mathrm{KL}(q(x_{t_0}|x_0)\,\|\,p(x_{t_0})) + \sum_k \mathbb{E}_{q(x_{t_k}|x_0)}
    \mathrm{KL}\big(q(x_{t_{k+1}} | x_{t_k}, x_0) \,\|\, p_\theta(x_{t_{k+1}} | x_{t_k})\big)
    $$

    with :math:`p_\theta(x_s|x_t) = \prod_i` ``process.posterior_probs(x_t, softmax(denoiser(x_t, t)), t, s)``; the
    last grid time must be 0 (the last KL is then the reconstruction term −log p_θ(x₀|x_t)). It bounds the NLL of the
    chain's output law (:func:`masked_sampler_law`, :func:`uniform_sampler_law`) for every x₀, for any denoiser.

    Args:
        process: a masked or uniform process with ``marginal_probs``, ``posterior_probs`` and ``prior_kl``.
        denoiser: ``denoiser(x_t, t) -> logits`` (S, L, V).
        x0: shape (B, L). grid: shape (T + 1,), decreasing from 1 to 0.
    Returns:
        shape (B,), nats, float64.
    """
    V, L = process.vocab_size, x0.shape[1]
    W = V + 1 if hasattr(process, "mask_id") else V  # symbols a noisy token can take
    states = _all_states(L, W)  # (S, L)
    S, B = states.shape[0], x0.shape[0]
    total = process.prior_kl(x0).double().clone()
    for t, s in zip(grid[:-1].tolist(), grid[1:].tolist()):
        tB, tS, sS = (torch.full((n,), v, dtype=torch.float64) for n, v in ((B, t), (S, t), (S, s)))
        q_t = process.marginal_probs(x0, tB).double()  # (B, L, W)
        weight = torch.ones(B, S, dtype=torch.float64)
        for i in range(L):
            weight = weight * q_t[:, i, states[:, i]]
        model_post = process.posterior_probs(states, torch.softmax(denoiser(states, tS).double(), -1), tS, sS)
        for b in range(B):
            live = weight[b] > 0
            true_post = process.posterior_probs(states[live], x0[b].expand(int(live.sum()), L), tS[live], sS[live])
            kl = (torch.xlogy(true_post, true_post) - torch.xlogy(true_post, model_post[live].double())).sum((-1, -2))
            total[b] += (weight[b, live] * kl).sum()
    return total
