r"""The masked (absorbing-state) process on token sequences, and its continuous-time ELBO.

Forward: every token is replaced, independently, by the mask symbol ``mask_id = vocab_size`` with probability
:math:`1 - \alpha(t)`:  :math:`q(x_t^i \mid x_0^i) = \alpha_t\,\delta_{x_0^i} + (1 - \alpha_t)\,\delta_{m}`.

Reverse: a masked token is revealed between t and s < t with probability r, to a value drawn from the network's
:math:`p_\theta(x_0^i \mid x_t)`; a revealed token never changes again. The step methods differ only in r
(:meth:`MaskedProcess.reveal_probability`):

* ``"ancestral"`` — exact: r = (α_s − α_t) / (1 − α_t).
* ``"euler"`` — first order in Δt: r = min(1, rate(t)·Δt), rate = −α'/(1 − α). Identical to ancestral for the
  log-linear schedule (α linear in t), different for cosine.
* ``"tau-leaping"`` — as in the official Diffuse-Everything code: each masked token draws a Poisson number of jumps
  to each value y with mean rate(t)·Δt·p_y, and a move with more than one jump is rejected (the token stays
  masked). The jump counts sum to a Poisson(λ = rate·Δt) variable, and given one jump its target is y with
  probability p_y, so the same law is drawn here with r = λ e^{−λ} and one categorical draw.
* ``"confidence"`` — **not exact**, a decoding heuristic (MaskGIT, Chang et al. 2022; LLaDA's low-confidence
  remasking, Nie et al. 2025): each step reveals as many tokens as an ancestral step would (the same Binomial count
  per sequence), but *which* ones is chosen by confidence: every masked position draws its value, and the positions
  whose drawn value has the highest probability are revealed first. Ancestral steps reveal random positions, so two
  positions that must agree (the letters of one word) are often committed independently while the model is still
  unsure which wording it is writing; revealing the sure ones first lets the later ones condition on them.

Loss (MDLM, Sahoo et al. 2024; MD4, Shi et al. 2024): the negative ELBO in nats is

$$
\int_0^1 \frac{-\alpha'(t)}{1 - \alpha(t)}\; \mathbb{E}_{q(x_t|x_0)}
\sum_{i:\,x_t^i = m} -\log p_\theta(x_0^i \mid x_t)\; dt \;+\; L\,\alpha(1)\log V,
$$

where the last term is the KL to the prior at t = 1 (see :meth:`MaskedProcess.prior_kl`). :meth:`MaskedProcess.loss`
returns the integrand at one time, an unbiased one-sample estimate of the integral when t ~ U[0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_index_tensor, check_time, has_values
from ._random import rand
from .categorical import CategoricalProcess, _draw
from .schedules import Schedule, ScheduleLogLinear

__all__ = ["MaskedProcess"]


class MaskedProcess(CategoricalProcess):
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
        sampling_dtype: dtype of categorical draws (float64 by default, see
            :func:`~diffuse_edu.categorical.draw_categorical`).
        step_method: the default reverse step, ``"ancestral"``, ``"tau-leaping"``, ``"euler"`` or
            ``"confidence"`` (module docstring).
    """

    kind = "masked"
    step_methods = ("ancestral", "tau-leaping", "euler", "confidence")

    def __init__(
        self,
        vocab_size: int,
        schedule: Schedule | str = ScheduleLogLinear(),
        loss_type: str = "elbo",
        sampling_dtype: torch.dtype = torch.float64,
        step_method: str = "ancestral",
    ):
        super().__init__(vocab_size, schedule, sampling_dtype)
        if loss_type not in ("elbo", "ce"):
            raise ValueError(f"loss_type must be 'elbo' or 'ce', got {loss_type!r}.")
        self.loss_type = loss_type
        self.mask_id = vocab_size
        self.step_method = self.check_method(step_method)

    def __repr__(self) -> str:
        return (
            f"MaskedProcess(vocab_size={self.vocab_size}, schedule={self.schedule!r}, loss_type={self.loss_type!r}, "
            f"sampling_dtype={self.sampling_dtype}, step_method={self.step_method!r})"
        )

    def check_method(self, method: str | None) -> str:
        return super().check_method(method if method is not None else getattr(self, "step_method", None))

    def validate_noisy(self, x_t: Tensor, name: str = "x_t", values: bool = True) -> Tensor:
        """Check ``x_t`` is an integer tensor (B, ...) of ids in [0, V] (the mask id V included)."""
        return check_index_tensor(x_t, name, self.vocab_size + 1, values=values)

    # ---- forward process -------------------------------------------------------------------------------------------

    def _prior(self, shape: tuple[int, ...], generator: torch.Generator | None, device) -> Tensor:
        """The t = 1 state: every token masked. Returns a long tensor of shape ``shape`` filled with ``mask_id``."""
        return torch.full(tuple(shape), self.mask_id, dtype=torch.long, device=device)

    def mask_probability(self, t) -> Tensor:
        """1 − α(t): the probability that a token is masked at time t (same shape as ``t``)."""
        return 1.0 - self.schedule.alpha(t)

    def marginal_probs(self, x0: Tensor, t: Tensor) -> Tensor:
        """q_t(· | x0) over the V + 1 symbols (mask last): α onehot(x0) + (1 − α) onehot(mask); shape (B, ..., V+1)."""
        x0 = self.validate(x0, "x0")
        t = self._times(t, x0)
        a = self.schedule._alpha(t.double()).reshape(-1, *([1] * x0.ndim))
        return (
            a * F.one_hot(x0, self.vocab_size + 1).double()
            + (1 - a) * F.one_hot(torch.full_like(x0, self.mask_id), self.vocab_size + 1).double()
        )

    def _corrupt(self, x0: Tensor, t: Tensor, generator) -> Tensor:
        """Mask each token of ``x0`` (shape (B, ...)) independently with probability 1 − α(t); ``t`` shape (B,)."""
        p_mask = self._bcast(1.0 - self.schedule._alpha(t.double()), x0)
        masked = rand(x0.shape, generator, x0.device, torch.float64) < p_mask
        return torch.where(masked, torch.full_like(x0, self.mask_id), x0)

    def hold(self, x0: Tensor, t: Tensor, generator) -> Tensor:
        """A given token stays revealed at every time: a clean token is a valid state of the masked chain."""
        return x0

    # ---- loss ------------------------------------------------------------------------------------------------------

    def unmask_rate(self, t) -> Tensor:
        """The reverse rate at which one masked token is revealed, −α'(t)/(1 − α(t)) (the ELBO weight); shape of t,
        float64. ``t``: a number or a tensor of any shape in [0, 1]."""
        return self._unmask_rate(check_time(t, name="t", any_shape=True))

    def _unmask_rate(self, t: Tensor) -> Tensor:
        t = t.double()
        # clamp: at t = 0 no token is masked, so the weight only ever multiplies zero there.
        return -self.schedule._dalpha(t) / (1.0 - self.schedule._alpha(t)).clamp_min(1e-12)

    def token_nll(self, output: Tensor, x0: Tensor) -> Tensor:
        """−log p_θ(x0^i | x_t) for every position, shape (B, ...), from logits ``output`` of shape (B, ..., V)
        (trusted inputs)."""
        logp = F.log_softmax(output.float() if output.dtype in (torch.float16, torch.bfloat16) else output, dim=-1)
        return -logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1)

    def _masked_nll(self, output: Tensor, x0: Tensor, x_t: Tensor) -> Tensor:
        masked = x_t == self.mask_id
        nll = self.token_nll(output, x0)
        return torch.where(masked, nll, torch.zeros((), dtype=nll.dtype, device=x0.device))

    def _elbo_terms(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        r"""The NELBO integrand at time t: (−α'/(1−α)) Σ_{masked i} −log p_θ(x0^i | x_t), shape (B,), in nats."""
        nll = self._masked_nll(output, x0, x_t)
        per_example = self._per_example(nll).sum(-1)
        return self._unmask_rate(t).to(per_example.dtype) * per_example

    def _loss(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Per-example training loss, shape (B,): the NELBO integrand (``"elbo"``) or the unweighted mean CE (``"ce"``).

        Args:
            output: logits over the clean vocabulary, shape (B, L, V).
            x0: clean tokens, shape (B, L); x_t: noisy tokens (mask = ``mask_id``), shape (B, L); t: shape (B,).
        """
        if self.loss_type == "elbo":
            return self._elbo_terms(output, x0, x_t, t)
        # The official code averages F.cross_entropy over every position; with carry-over the unmasked ones add 0.
        nll = self._masked_nll(output, x0, x_t)
        return self._per_example(nll).mean(-1)

    def prior_kl(self, x0: Tensor) -> Tensor:
        r"""KL(q(x_1 | x_0) ‖ p(x_1)) per example, shape (B,): L·α(1)·log V.

        With α(1) = ε > 0 a token survives to t = 1 with probability ε, which the all-mask :meth:`prior` cannot explain
        (infinite KL). The bound is therefore stated for the prior that leaves each token unmasked with probability
        α(1) and then uniform over the V tokens, whose KL is α(1)·log V per token. Sampling from the all-mask prior
        differs from that model on a fraction α(1) of tokens only; for α(1) = 0 the term vanishes.
        """
        x0 = self.validate(x0, "x0")
        L = math.prod(x0.shape[1:])
        value = L * self._alpha1() * math.log(self.vocab_size)
        return torch.full((x0.shape[0],), value, dtype=torch.float64, device=x0.device)

    # ---- reverse process -------------------------------------------------------------------------------------------

    def reveal_probability(self, t, s, method: str = "ancestral") -> Tensor:
        """Probability that a token masked at t is revealed by s ≤ t, for a step ``method`` (module docstring).

        ``t``, ``s``: numbers or tensors of broadcastable shapes in [0, 1]; the result is float64 of their shape.
        """
        method = self.check_method(method)
        t, s = check_time(t, name="t", any_shape=True), check_time(s, name="s", any_shape=True)
        try:
            torch.broadcast_shapes(t.shape, s.shape)
        except RuntimeError:
            raise ValueError(
                f"t and s must have broadcastable shapes; got {tuple(t.shape)} and {tuple(s.shape)}."
            ) from None
        if has_values(t) and (s > t).any():
            raise ValueError("a reverse step needs s <= t (time runs from 1 to 0); got some s > t.")
        return self._reveal_probability(t, s, method)

    def _reveal_probability(self, t: Tensor, s: Tensor, method: str) -> Tensor:
        t, s = t.double(), s.double()
        if method in ("ancestral", "confidence"):  # confidence: the ancestral count, other positions
            a_t, a_s = self.schedule._alpha(t), self.schedule._alpha(s)
            return ((a_s - a_t) / (1.0 - a_t).clamp_min(1e-300)).clamp(0.0, 1.0)
        lam = self._unmask_rate(t) * (t - s)
        if method == "euler":
            return lam.clamp(0.0, 1.0)
        return (lam * torch.exp(-lam)).clamp(0.0, 1.0)  # tau-leaping

    def posterior_probs(self, x_t: Tensor, x0_probs: Tensor, t: Tensor, s: Tensor) -> Tensor:
        """q(x_s | x_t, x₀) over the V + 1 symbols, marginalised over x₀ ~ ``x0_probs``; shape (B, L, V+1).

        A masked token stays masked w.p. 1 − r and becomes y w.p. r·x0_probs[y], r = (α_s − α_t)/(1 − α_t); an
        unmasked token stays. ``x0_probs``: shape (B, L, V), or a long tensor (B, L) of clean tokens.
        """
        x_t = self.validate_noisy(x_t, "x_t")
        t, s = self._times(t, x_t, "t"), self._times(s, x_t, "s")
        if has_values(t) and (s > t).any():
            raise ValueError("a reverse step needs s <= t (time runs from 1 to 0); got some s > t.")
        x0_probs = self._check_x0_probs(x0_probs, x_t)
        r = self._reveal_probability(t, s, "ancestral").reshape(-1, *([1] * x_t.ndim))
        masked = (x_t == self.mask_id).unsqueeze(-1)
        reveal = torch.cat([r * x0_probs.double(), (1 - r).expand(*x_t.shape, 1)], dim=-1)
        return torch.where(masked, reveal, F.one_hot(x_t, self.vocab_size + 1).double())

    def reveal(
        self, x_t: Tensor, output: Tensor, reveal_prob: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Reveal each masked token with probability ``reveal_prob`` (shape (B,)) to a draw from softmax(output).

        Always draws one uniform for the coin and one for the value at every position, so the generator is consumed
        the same way whatever the state (the sampler's cache relies on it). Trusted inputs (no checks).
        """
        coin = rand(x_t.shape, generator, x_t.device, self.sampling_dtype)
        value = _draw(self.probs(output), generator, self.sampling_dtype)
        go = (x_t == self.mask_id) & (coin < self._bcast(reveal_prob.to(self.sampling_dtype), x_t))
        return torch.where(go, value, x_t)

    def reveal_confident(
        self, x_t: Tensor, output: Tensor, reveal_prob: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """The ``"confidence"`` step: reveal, in each sequence, as many masked tokens as :meth:`reveal` would (a
        Binomial(#masked, ``reveal_prob``) count), choosing the positions whose drawn value is most probable.

        Draws the same uniforms as :meth:`reveal` (one coin and one value per position), so the generator is consumed
        the same way. Ties in confidence go to the lower position. Trusted inputs (no checks). Shape (B, L).
        """
        coin = rand(x_t.shape, generator, x_t.device, self.sampling_dtype)
        probs = self.probs(output)
        value = _draw(probs, generator, self.sampling_dtype)
        masked = x_t == self.mask_id
        flat = masked.reshape(len(x_t), -1)
        count = ((coin < self._bcast(reveal_prob.to(self.sampling_dtype), x_t)) & masked).reshape(len(x_t), -1).sum(1)
        conf = probs.gather(-1, value.unsqueeze(-1)).squeeze(-1).reshape(len(x_t), -1).double()
        conf = conf.masked_fill(~flat, -1.0)  # unmasked positions last
        order = torch.sort(conf, dim=1, descending=True, stable=True).indices
        rank = torch.empty_like(order).scatter_(
            1, order, torch.arange(flat.shape[1], device=x_t.device).expand_as(order)
        )
        go = (flat & (rank < count[:, None])).reshape(x_t.shape)
        return torch.where(go, value, x_t)

    def _step(self, x_t: Tensor, t: Tensor, s: Tensor, output: Tensor, generator, method: str) -> Tensor:
        """Reveal each masked token w.p. r(t, s, method) (or, for ``"confidence"``, as many of the most confident
        ones); revealed tokens never change. Shape (B, L)."""
        r = self._reveal_probability(t, s, method)
        if method == "confidence":
            return self.reveal_confident(x_t, output, r, generator)
        return self.reveal(x_t, output, r, generator)

    def _denoise(self, x_t: Tensor, t: Tensor, output: Tensor, generator, mode: str) -> Tensor:
        """Decode every remaining mask (``"argmax"`` of the logits, MDLM's last step, or a ``"sample"``); keep the
        revealed tokens. Returns shape (B, L) with no mask left."""
        return torch.where(x_t == self.mask_id, super()._denoise(x_t, t, output, generator, mode), x_t)
