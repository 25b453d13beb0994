r"""The masked (absorbing-state) process on token sequences, and its continuous-time ELBO.

Forward: every token is replaced, independently, by the mask symbol ``mask_id = vocab_size`` with probability
:math:`1 - \alpha(t)`:  :math:`q(x_t^i \mid x_0^i) = \alpha_t\,\delta_{x_0^i} + (1 - \alpha_t)\,\delta_{m}`.

Reverse: a masked token is revealed between t and s < t with probability :math:`(\alpha_s - \alpha_t)/(1 - \alpha_t)`,
to a value drawn from the network's :math:`p_\theta(x_0^i \mid x_t)`; a revealed token never changes again.

Loss (MDLM, Sahoo et al. 2024; MD4, Shi et al. 2024): the negative ELBO in nats is

$$
\int_0^1 \frac{-\alpha'(t)}{1 - \alpha(t)}\; \mathbb{E}_{q(x_t|x_0)}
\sum_{i:\,x_t^i = m} -\log p_\theta(x_0^i \mid x_t)\; dt \;+\; L\,\alpha(1)\log V,
$$

where the last term is the KL to the prior at t = 1 (see :meth:`MaskedProcess.prior_kl`). :meth:`MaskedProcess.loss`
returns the integrand at one time, an unbiased one-sample estimate of the integral when t ~ U[0, 1].

The shared discrete helpers (stratified times, float64 categorical draws, the Monte-Carlo NELBO estimator) live here
and are reused by :mod:`diffuse_edu.uniform`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_float_tensor, check_index_tensor, check_time
from .process import Process
from .schedules import Schedule, ScheduleLogLinear, get_schedule

__all__ = [
    "MaskedProcess",
    "stratified_times",
    "draw_categorical",
    "nats_to_bits_per_token",
    "estimate_nelbo",
]


# --------------------------------------------------------------------------------------------------------------------
# Shared helpers for discrete processes
# --------------------------------------------------------------------------------------------------------------------


def _rand(shape, generator: torch.Generator | None, device, dtype=torch.float32) -> Tensor:
    """U[0, 1) draws made on the generator's device (so a CPU generator works for CUDA data), then moved."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device, dtype=dtype).to(device)


def stratified_times(
    n: int, generator: torch.Generator | None = None, device=None, antithetic: bool = True, dtype=torch.float32
) -> Tensor:
    r"""n times in [0, 1): stratified ``(u + i/n) mod 1`` with one shared u ~ U[0, 1) (or i.i.d. if not antithetic).

    Each time is still marginally U[0, 1), so the loss stays unbiased, but the batch covers [0, 1) evenly: the
    variance of the batch-mean ELBO drops (Kingma et al. 2021, "low-discrepancy sampler"; MDLM §3.5).

    Returns:
        shape (n,).
    """
    if antithetic:
        u = _rand((1,), generator, device, torch.float64)
        t = (u + torch.arange(n, device=device, dtype=torch.float64) / n) % 1.0
    else:
        t = _rand((n,), generator, device, torch.float64)
    return t.to(dtype)


def draw_categorical(probs: Tensor, generator: torch.Generator | None = None, dtype=torch.float64) -> Tensor:
    r"""One draw per row of ``probs`` (shape (..., K), rows need not be normalised) by inverse CDF in ``dtype``.

    Uses one uniform per row, so the generator is consumed identically whatever the probabilities are (cached and
    uncached samplers then stay bit-identical). Float64 matters: in float32 the uniform has 24 bits, so categories
    with probability below ~6e-8 are (almost) never drawn and the sampler runs colder than the model — the same
    truncation Zheng et al. (2024) found for float32 Gumbel-max in masked-diffusion samplers.

    Returns:
        long tensor of shape ``probs.shape[:-1]``.
    """
    p = probs.to(dtype)
    cdf = p.cumsum(-1)
    # u in (0, 1]: with u > 0 a zero-probability first category can never be picked.
    u = 1.0 - _rand(p.shape[:-1], generator, p.device, dtype)
    target = (u * cdf[..., -1]).unsqueeze(-1)
    idx = (cdf < target).sum(-1)
    return idx.clamp_max(p.shape[-1] - 1)


def nats_to_bits_per_token(nats: Tensor | float, num_tokens: int) -> Tensor | float:
    """Convert a NELBO in nats per sequence to bits per token (bits per character for character-level text)."""
    return nats / (num_tokens * math.log(2.0))


@torch.no_grad()
def estimate_nelbo(
    process,
    model: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    n_samples: int = 64,
    antithetic: bool = True,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> tuple[Tensor, Tensor]:
    r"""Monte-Carlo estimate of the continuous-time NELBO (nats per sequence) and its standard error.

    For each example, ``n_samples`` times are drawn, stratified ``(u_b + j/n) mod 1`` when ``antithetic``; the NELBO
    integrand :meth:`elbo_terms` is evaluated at each, averaged, and :meth:`prior_kl` added. The standard error is
    the i.i.d. formula std/√n, which is conservative (too large) for stratified times. Makes ``n_samples`` network
    calls on batches of size B.

    Args:
        process: a :class:`MaskedProcess` or :class:`~diffuse_edu.uniform.UniformProcess`.
        model: ``model(x_t, t) -> logits`` of shape (B, L, V).
        x0: clean tokens, shape (B, L).
        reduction: ``"mean"`` (scalar estimate and s.e. of the batch mean) or ``"none"`` (both of shape (B,)).
    """
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2 to estimate a standard error, got {n_samples}.")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
    x0 = process.validate(x0, "x0")
    B = x0.shape[0]
    if antithetic:
        u = _rand((B,), generator, x0.device, torch.float64)
    values = []
    for j in range(n_samples):
        t = (u + j / n_samples) % 1.0 if antithetic else _rand((B,), generator, x0.device, torch.float64)
        t = t.float()
        x_t = process.corrupt(x0, t, generator=generator)
        values.append(process.elbo_terms(model(x_t, t), x0, x_t, t).double())
    v = torch.stack(values)  # (n, B)
    est = v.mean(0) + process.prior_kl(x0).double()
    se = v.std(0, unbiased=True) / math.sqrt(n_samples)
    if reduction == "none":
        return est, se
    # examples are independent (own u_b, own corruption), so their variances add.
    return est.mean(), se.pow(2).sum().sqrt() / B


# --------------------------------------------------------------------------------------------------------------------
# The masked process
# --------------------------------------------------------------------------------------------------------------------


class MaskedProcess(Process):
    r"""Masked (absorbing) diffusion on sequences of tokens in [0, ``vocab_size``).

    The mask symbol is ``mask_id = vocab_size``: noisy inputs take values in [0, vocab_size] and a network embeds
    ``vocab_size + 1`` symbols, but outputs logits over the ``vocab_size`` clean tokens only (shape (B, L, V)). The
    process itself carries unmasked tokens over (their prediction is ignored).

    Args:
        vocab_size: V, the number of clean tokens.
        schedule: α(t), a :class:`~diffuse_edu.schedules.Schedule` or its name; needs α(0) = 1.
        loss_type: ``"elbo"`` — the MDLM continuous-time NELBO (a bound on −log p, in nats); ``"ce"`` — the official
            Diffuse-Everything code's unweighted cross-entropy on masked positions averaged over positions. ``"ce"``
            drops the weight −α'/(1−α) (= 1/t for log-linear), so it is **not** a likelihood bound: it down-weights
            nearly-clean inputs and cannot be compared with a log-likelihood.
        sampling_dtype: dtype of categorical draws (float64 by default, see :func:`draw_categorical`).
    """

    def __init__(
        self,
        vocab_size: int,
        schedule: Schedule | str = ScheduleLogLinear(),
        loss_type: str = "elbo",
        sampling_dtype: torch.dtype = torch.float64,
    ):
        if not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}.")
        if loss_type not in ("elbo", "ce"):
            raise ValueError(f"loss_type must be 'elbo' or 'ce', got {loss_type!r}.")
        if sampling_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"sampling_dtype must be torch.float32 or torch.float64, got {sampling_dtype}.")
        self.vocab_size = vocab_size
        self.mask_id = vocab_size
        self.schedule = get_schedule(schedule)
        self.loss_type = loss_type
        self.sampling_dtype = sampling_dtype

    def __repr__(self) -> str:
        return (
            f"MaskedProcess(vocab_size={self.vocab_size}, schedule={self.schedule!r}, loss_type={self.loss_type!r}, "
            f"sampling_dtype={self.sampling_dtype})"
        )

    # ---- validation ------------------------------------------------------------------------------------------------

    def validate(self, x: Tensor, name: str = "x", allow_mask: bool = False) -> Tensor:
        """Check ``x`` is an integer tensor (B, ...) of ids in [0, V), or [0, V] (mask included) if ``allow_mask``."""
        return check_index_tensor(x, name, self.vocab_size + int(allow_mask))

    def _check_output(self, output: Tensor, x_t: Tensor, name: str = "output") -> Tensor:
        check_float_tensor(output, name, min_ndim=2)
        expected = (*x_t.shape, self.vocab_size)
        if tuple(output.shape) != expected:
            raise ValueError(
                f"{name} must be logits of shape {expected} (x_t.shape + (vocab_size,)); got {tuple(output.shape)}."
            )
        return output

    def _bcast(self, v: Tensor, x: Tensor) -> Tensor:
        """(B,) -> (B, 1, ..., 1) to broadcast against ``x`` of shape (B, ...)."""
        return v.reshape(-1, *([1] * (x.ndim - 1)))

    # ---- forward process -------------------------------------------------------------------------------------------

    def prior(self, shape: tuple[int, ...], generator: torch.Generator | None = None, device=None) -> Tensor:
        """The t = 1 state: every token masked. Returns a long tensor of shape ``shape`` filled with ``mask_id``."""
        return torch.full(tuple(shape), self.mask_id, dtype=torch.long, device=device)

    def mask_probability(self, t) -> Tensor:
        """1 − α(t): the probability that a token is masked at time t (same shape as ``t``)."""
        return 1.0 - self.schedule.alpha(t)

    def marginal_probs(self, x0: Tensor, t: Tensor) -> Tensor:
        """q_t(· | x0) over the V + 1 symbols (mask last): α onehot(x0) + (1 − α) onehot(mask); shape (B, ..., V+1)."""
        x0 = self.validate(x0, "x0")
        t = check_time(t, batch=x0.shape[0], device=x0.device).to(x0.device)
        a = self.schedule.alpha(t.double()).reshape(-1, *([1] * x0.ndim))
        return (
            a * F.one_hot(x0, self.vocab_size + 1).double()
            + (1 - a) * F.one_hot(torch.full_like(x0, self.mask_id), self.vocab_size + 1).double()
        )

    def corrupt(self, x0: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Mask each token of ``x0`` (shape (B, ...)) independently with probability 1 − α(t); ``t`` shape (B,)."""
        x0 = self.validate(x0, "x0")
        t = check_time(t, batch=x0.shape[0], device=x0.device).to(x0.device)
        p_mask = self._bcast(self.mask_probability(t.double()), x0)
        masked = _rand(x0.shape, generator, x0.device, torch.float64) < p_mask
        return torch.where(masked, torch.full_like(x0, self.mask_id), x0)

    # ---- loss ------------------------------------------------------------------------------------------------------

    def unmask_rate(self, t) -> Tensor:
        """The reverse rate at which one masked token is revealed, −α'(t)/(1 − α(t)) (the ELBO weight); shape of t."""
        t = t.double() if isinstance(t, Tensor) else t
        # clamp: at t = 0 no token is masked, so the weight only ever multiplies zero there.
        return -self.schedule.dalpha(t) / (1.0 - self.schedule.alpha(t)).clamp_min(1e-12)

    def token_nll(self, output: Tensor, x0: Tensor) -> Tensor:
        """−log p_θ(x0^i | x_t) for every position, shape (B, ...), from logits ``output`` of shape (B, ..., V)."""
        logp = F.log_softmax(output.float() if output.dtype in (torch.float16, torch.bfloat16) else output, dim=-1)
        return -logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1)

    def _check_loss_inputs(self, output, x0, x_t, t):
        x0 = self.validate(x0, "x0")
        x_t = self.validate(x_t, "x_t", allow_mask=True)
        if x0.shape != x_t.shape:
            raise ValueError(f"x0 and x_t must have the same shape; got {tuple(x0.shape)} and {tuple(x_t.shape)}.")
        self._check_output(output, x_t)
        t = check_time(t, batch=x0.shape[0], device=x0.device).to(x0.device)
        return x0, x_t, t

    def elbo_terms(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        r"""The NELBO integrand at time t: (−α'/(1−α)) Σ_{masked i} −log p_θ(x0^i | x_t), shape (B,), in nats."""
        x0, x_t, t = self._check_loss_inputs(output, x0, x_t, t)
        masked = x_t == self.mask_id
        nll = torch.where(masked, self.token_nll(output, x0), torch.zeros((), dtype=output.dtype, device=x0.device))
        per_example = nll.reshape(nll.shape[0], -1).sum(-1)
        return self.unmask_rate(t).to(per_example.dtype) * per_example

    def loss(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Per-example training loss, shape (B,): the NELBO integrand (``"elbo"``) or the unweighted mean CE (``"ce"``).

        Args:
            output: logits over the clean vocabulary, shape (B, L, V).
            x0: clean tokens, shape (B, L); x_t: noisy tokens (mask = ``mask_id``), shape (B, L); t: shape (B,).
        """
        if self.loss_type == "elbo":
            return self.elbo_terms(output, x0, x_t, t)
        x0, x_t, t = self._check_loss_inputs(output, x0, x_t, t)
        masked = x_t == self.mask_id
        nll = torch.where(masked, self.token_nll(output, x0), torch.zeros((), dtype=output.dtype, device=x0.device))
        # The official code averages F.cross_entropy over every position; with carry-over the unmasked ones add 0.
        return nll.reshape(nll.shape[0], -1).mean(-1)

    def prior_kl(self, x0: Tensor) -> Tensor:
        r"""KL(q(x_1 | x_0) ‖ p(x_1)) per example, shape (B,): L·α(1)·log V.

        With α(1) = ε > 0 a token survives to t = 1 with probability ε, which the all-mask :meth:`prior` cannot explain
        (infinite KL). The bound is therefore stated for the prior that leaves each token unmasked with probability
        α(1) and then uniform over the V tokens, whose KL is α(1)·log V per token. Sampling from the all-mask prior
        differs from that model on a fraction α(1) of tokens only; for α(1) = 0 the term vanishes.
        """
        a1 = float(self.schedule.alpha(torch.tensor(1.0, dtype=torch.float64)))
        L = x0[0].numel() if x0.ndim > 1 else 1
        return torch.full((x0.shape[0],), L * a1 * math.log(self.vocab_size), dtype=torch.float64, device=x0.device)

    def sample_times(
        self, batch_size: int, generator: torch.Generator | None = None, antithetic: bool = True, device=None
    ) -> Tensor:
        """Training times, shape (B,): stratified ``(u + i/B) mod 1`` (see :func:`stratified_times`)."""
        return stratified_times(batch_size, generator=generator, device=device, antithetic=antithetic)

    def nelbo(
        self,
        model: Callable[[Tensor, Tensor], Tensor],
        x0: Tensor,
        n_samples: int = 64,
        antithetic: bool = True,
        generator: torch.Generator | None = None,
        reduction: str = "mean",
    ) -> tuple[Tensor, Tensor]:
        """Monte-Carlo NELBO in nats per sequence and its standard error (see :func:`estimate_nelbo`).

        Always uses the ELBO weighting, whatever ``loss_type``. Bits per token: :func:`nats_to_bits_per_token`.
        """
        a0 = float(self.schedule.alpha(torch.tensor(0.0, dtype=torch.float64)))
        if a0 < 1 - 1e-9:
            raise ValueError(f"the NELBO needs α(0) = 1 (no masks at t = 0); {self.schedule!r} has α(0) = {a0:.6g}.")
        return estimate_nelbo(self, model, x0, n_samples, antithetic, generator, reduction)

    # ---- reverse process -------------------------------------------------------------------------------------------

    def reveal_probability(self, t, s) -> Tensor:
        """(α_s − α_t)/(1 − α_t): the exact probability that a token masked at t is revealed by s < t."""
        t = t.double() if isinstance(t, Tensor) else torch.tensor(float(t), dtype=torch.float64)
        s = s.double() if isinstance(s, Tensor) else torch.tensor(float(s), dtype=torch.float64)
        a_t, a_s = self.schedule.alpha(t), self.schedule.alpha(s)
        return ((a_s - a_t) / (1.0 - a_t).clamp_min(1e-300)).clamp(0.0, 1.0)

    def posterior_probs(self, x_t: Tensor, x0_probs: Tensor, t: Tensor, s: Tensor) -> Tensor:
        """q(x_s | x_t, x₀) over the V + 1 symbols, marginalised over x₀ ~ ``x0_probs``; shape (B, L, V+1).

        A masked token stays masked w.p. 1 − r and becomes y w.p. r·x0_probs[y], r = (α_s − α_t)/(1 − α_t); an
        unmasked token stays. ``x0_probs``: shape (B, L, V), or a long tensor (B, L) of clean tokens.
        """
        x_t = self.validate(x_t, "x_t", allow_mask=True)
        t = check_time(t, batch=x_t.shape[0], name="t", device=x_t.device).to(x_t.device)
        s = check_time(s, batch=x_t.shape[0], name="s", device=x_t.device).to(x_t.device)
        if (s > t).any():
            raise ValueError("a reverse step needs s <= t (time runs from 1 to 0); got some s > t.")
        if not x0_probs.is_floating_point():
            x0_probs = F.one_hot(self.validate(x0_probs, "x0"), self.vocab_size)
        elif tuple(x0_probs.shape) != (*x_t.shape, self.vocab_size):
            raise ValueError(f"x0_probs must have shape {(*x_t.shape, self.vocab_size)}; got {tuple(x0_probs.shape)}.")
        r = self.reveal_probability(t, s).reshape(-1, *([1] * x_t.ndim))
        masked = (x_t == self.mask_id).unsqueeze(-1)
        reveal = torch.cat([r * x0_probs.double(), (1 - r).expand(*x_t.shape, 1)], dim=-1)
        return torch.where(masked, reveal, F.one_hot(x_t, self.vocab_size + 1).double())

    def probs(self, output: Tensor) -> Tensor:
        """softmax(output) in ``sampling_dtype``, shape (B, L, V)."""
        return torch.softmax(output.to(self.sampling_dtype), dim=-1)

    def reveal(
        self, x_t: Tensor, output: Tensor, reveal_prob: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Reveal each masked token with probability ``reveal_prob`` (shape (B,)) to a draw from softmax(output).

        Always draws one uniform for the coin and one for the value at every position, so the generator is consumed
        the same way whatever the state (the cache in :mod:`diffuse_edu.discrete_samplers` relies on it).
        """
        coin = _rand(x_t.shape, generator, x_t.device, self.sampling_dtype)
        value = draw_categorical(self.probs(output), generator, self.sampling_dtype)
        go = (x_t == self.mask_id) & (coin < self._bcast(reveal_prob.to(self.sampling_dtype), x_t))
        return torch.where(go, value, x_t)

    def step(
        self, x_t: Tensor, t: Tensor, s: Tensor, output: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Exact ancestral step t → s: reveal each masked token w.p. (α_s − α_t)/(1 − α_t); others never change.

        Args:
            x_t: tokens (mask = ``mask_id``), shape (B, L); t, s: shape (B,), s ≤ t; output: logits (B, L, V).
        Returns:
            x_s, shape (B, L), never containing a token that was not masked in x_t changed, never a new mask.
        """
        x_t, t, s = self._check_step_inputs(x_t, t, s, output)
        return self.reveal(x_t, output, self.reveal_probability(t, s), generator)

    def _check_step_inputs(self, x_t, t, s, output):
        x_t = self.validate(x_t, "x_t", allow_mask=True)
        self._check_output(output, x_t)
        t = check_time(t, batch=x_t.shape[0], name="t", device=x_t.device).to(x_t.device)
        s = check_time(s, batch=x_t.shape[0], name="s", device=x_t.device).to(x_t.device)
        if (s > t).any():
            raise ValueError("a reverse step needs s <= t (time runs from 1 to 0); got some s > t.")
        return x_t, t, s

    def denoise(
        self,
        x_t: Tensor,
        t: Tensor,
        output: Tensor,
        mode: str = "argmax",
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Decode every remaining mask: ``"argmax"`` of the logits (MDLM's final step) or ``"sample"`` a draw.

        Unmasked tokens are kept. Returns shape (B, L) with no mask left.
        """
        x_t = self.validate(x_t, "x_t", allow_mask=True)
        self._check_output(output, x_t)
        check_time(t, batch=x_t.shape[0], device=x_t.device)
        if mode == "argmax":
            value = output.argmax(-1)
        elif mode == "sample":
            value = draw_categorical(self.probs(output), generator, self.sampling_dtype)
        else:
            raise ValueError(f"mode must be 'argmax' or 'sample', got {mode!r}.")
        return torch.where(x_t == self.mask_id, value, x_t)
