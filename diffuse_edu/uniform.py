r"""The uniform process on token sequences: exact posterior, continuous-time ELBO, ancestral step.

Forward (D3PM-uniform in continuous time; Austin et al. 2021, Schiff et al. 2024 "UDLM"): every token is, independently,
resampled uniformly with probability 1 − α(t):

$$
q_t(y \mid x_0) = \alpha_t\,[y = x_0] + \frac{1 - \alpha_t}{V}.
$$

It is the CTMC with rate β/V to every other symbol, β = −α'/α. Between s < t,
:math:`q(x_t \mid x_s) = \alpha_{t|s}[x_t = x_s] + (1 - \alpha_{t|s})/V` with :math:`\alpha_{t|s} = \alpha_t/\alpha_s`.

Reverse model (mean parameterisation): :math:`p_\theta(x_s \mid x_t) = \sum_{x_0} q(x_s \mid x_t, x_0)\,
p_\theta(x_0 \mid x_t)`, per position — exact when p_θ is the true per-token posterior.

**ELBO.** Letting the steps shrink, each KL(q(x_s|x_t,x₀) ‖ p_θ(x_s|x_t)) becomes (t − s) times a rate divergence
(Campbell et al. 2022; Lou et al. 2024), and the NELBO in nats is

$$
\int_0^1 \mathbb{E}_{q_t(x_t|x_0)} \sum_i \frac{\beta_t}{V} \sum_{y \ne x_t^i}
s_y\,\big(r_y - 1 - \log r_y\big)\,dt \;+\; \mathrm{KL}(q_1(\cdot|x_0) \,\|\, \mathrm{Unif}),
$$

with :math:`s_y = q_t(y|x_0^i)/q_t(x_t^i|x_0^i)` (true reverse-rate ratio), :math:`\hat s_y = \sum_k p_\theta(k|x_t)\,
q_t(y|k)/q_t(x_t^i|k)` (the model's) and :math:`r_y = \hat s_y / s_y`. Each term is ≥ 0 and vanishes iff ŝ = s. This
is the continuous-time limit of the discrete-time KL sum for this reverse model (checked numerically in the tests);
Schiff et al. (2024, UDLM) derive a continuous-time ELBO for uniform noise in another form. With the exact per-token
posterior it is
*tight* (= −log p(x₀) up to the tiny prior term): a CTMC moves one token at a time, so per-token reverse rates are
the exact joint ones. Only discrete-time steps (several tokens moving at once) leave a gap.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import has_values
from ._random import rand
from .categorical import CategoricalProcess, _draw
from .schedules import Schedule, ScheduleLogLinear

__all__ = ["UniformProcess"]


class UniformProcess(CategoricalProcess):
    """Uniform (resampling) diffusion on tokens in [0, ``vocab_size``).

    Args:
        vocab_size: V ≥ 2.
        schedule: α(t), a :class:`~diffuse_edu.schedules.Schedule` or its name; needs α(0) = 1.
        sampling_dtype: dtype of categorical draws (float64 default, see
            :func:`~diffuse_edu.categorical.draw_categorical`).
        compute_dtype: dtype of the ELBO and posterior arithmetic (float64 default: the ratios span 1/u ~ 1e3–1e6).
    """

    kind = "uniform"
    step_methods = ("ancestral",)
    min_vocab = 2

    def __init__(
        self,
        vocab_size: int,
        schedule: Schedule | str = ScheduleLogLinear(),
        sampling_dtype: torch.dtype = torch.float64,
        compute_dtype: torch.dtype = torch.float64,
    ):
        super().__init__(vocab_size, schedule, sampling_dtype)
        if compute_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"compute_dtype must be torch.float32 or torch.float64, got {compute_dtype}.")
        self.compute_dtype = compute_dtype
        self.loss_type = "elbo"

    def __repr__(self) -> str:
        return f"UniformProcess(vocab_size={self.vocab_size}, schedule={self.schedule!r})"

    def _alpha(self, t: Tensor, like: Tensor) -> Tensor:
        """α(t) in compute dtype, reshaped (B, 1, ..., 1, 1) to broadcast against (B, ..., V) tensors."""
        a = self.schedule._alpha(t.to(self.compute_dtype))
        return a.reshape(-1, *([1] * like.ndim))

    # ---- forward process -------------------------------------------------------------------------------------------

    def _prior(self, shape: tuple[int, ...], generator: torch.Generator | None, device) -> Tensor:
        """Uniform random tokens of shape ``shape`` (long)."""
        u = rand(tuple(shape), generator, device, torch.float64)
        return (u * self.vocab_size).long().clamp_max(self.vocab_size - 1)

    def marginal_probs(self, x0: Tensor, t: Tensor) -> Tensor:
        """q_t(· | x0) = α onehot(x0) + (1 − α)/V, shape (B, ..., V); x0 (B, ...), t (B,)."""
        x0 = self.validate(x0, "x0")
        t = self._times(t, x0)
        a = self._alpha(t, x0)
        return a * F.one_hot(x0, self.vocab_size).to(a.dtype) + (1 - a) / self.vocab_size

    def _corrupt(self, x0: Tensor, t: Tensor, generator) -> Tensor:
        """Resample each token of ``x0`` (B, ...) uniformly with probability 1 − α(t); ``t`` shape (B,)."""
        a = self._bcast(self.schedule._alpha(t.double()), x0)
        coin = rand(x0.shape, generator, x0.device, torch.float64)
        fresh = (rand(x0.shape, generator, x0.device, torch.float64) * self.vocab_size).long()
        return torch.where(coin < 1 - a, fresh.clamp_max(self.vocab_size - 1), x0)

    # ---- exact posterior -------------------------------------------------------------------------------------------

    def posterior_probs(self, x_t: Tensor, x0_probs: Tensor, t: Tensor, s: Tensor) -> Tensor:
        r"""q(x_s | x_t, x₀) per position, marginalised over x₀ ~ ``x0_probs``: Σ_k q(x_s | x_t, k) x0_probs[k].

        Args:
            x_t: tokens, shape (B, L).
            x0_probs: shape (B, L, V) probabilities over x₀ (rows sum to one), or a long tensor (B, L) of clean
                tokens for the exact posterior q(x_s | x_t, x₀).
            t, s: shape (B,), s ≤ t.
        Returns:
            shape (B, L, V), rows sum to one, in ``compute_dtype``.
        """
        x_t = self.validate(x_t, "x_t")
        t, s = self._times(t, x_t, "t"), self._times(s, x_t, "s")
        if has_values(t) and (s > t).any():
            raise ValueError("a reverse step needs s <= t (time runs from 1 to 0); got some s > t.")
        x0_probs = self._check_x0_probs(x0_probs, x_t)
        return self._posterior_probs(x_t, x0_probs, t, s)

    def _posterior_probs(self, x_t: Tensor, x0_probs: Tensor, t: Tensor, s: Tensor) -> Tensor:
        V = self.vocab_size
        p = x0_probs.to(self.compute_dtype)
        a_t, a_s = self._alpha(t, x_t), self._alpha(s, x_t)
        a_ts = a_t / a_s.clamp_min(1e-300)  # α_{t|s}
        onehot_t = F.one_hot(x_t, V).to(p.dtype)
        u_t = (1 - a_t) / V
        # w_k = p_k / q_t(x_t | k), scaled by u_t so it stays bounded as t → 0: u_t/q_t(x_t|k) = 1, or u_t/(α_t+u_t).
        w = p * torch.where(onehot_t.bool(), u_t / (a_t + u_t), torch.ones_like(p))
        W = w.sum(-1, keepdim=True)
        # q(x_t | x_s = j) · Σ_k q(x_s = j | k) w_k
        unnorm = (a_ts * onehot_t + (1 - a_ts) / V) * (a_s * w + (1 - a_s) * W / V)
        total = unnorm.sum(-1, keepdim=True)  # analytically u_t; renormalise to remove rounding
        ok = total > 0
        return torch.where(ok, unnorm / torch.where(ok, total, torch.ones_like(total)), onehot_t)

    # ---- ELBO ------------------------------------------------------------------------------------------------------

    def _elbo_terms(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        r"""The NELBO integrand at time t (module docstring), shape (B,), in nats.

        Args:
            output: logits of p_θ(x₀ | x_t), shape (B, L, V); x0, x_t: shape (B, L); t: shape (B,).
        """
        V, cd = self.vocab_size, self.compute_dtype
        # t = 0 has no noise and an infinite rate ratio; the integrand's contribution from [0, 1e-6] is negligible.
        # The schedule is evaluated in float64 and u = (1 − α)/V formed there: in float32 α(1e-6) may round to 1
        # (cosine: 1 − α ≈ 2e-8), which would make u = 0 and the integrand NaN.
        tc = t.double().clamp_min(1e-6)
        a64 = self.schedule._alpha(tc)
        view = (-1, *([1] * x_t.ndim))
        a = a64.to(cd).reshape(view)  # (B, 1, 1)
        u = ((1 - a64) / V).to(cd).reshape(view)
        # β = −α'/α; where α = 0 (t = 1 with α(1) = 0) the integrand tends to 0 (β ~ 1/α, divergence ~ α²).
        beta64 = torch.where(a64 > 0, -self.schedule._dalpha(tc) / a64.clamp_min(1e-300), torch.zeros_like(a64))
        beta = beta64.to(cd).reshape(-1, *([1] * (x_t.ndim - 1)))
        p = torch.softmax(output.to(cd), dim=-1)  # (B, L, V)
        is_x = F.one_hot(x_t, V).bool()
        p_x = (p * is_x).sum(-1, keepdim=True)
        one_minus_px = (p * ~is_x).sum(-1, keepdim=True)  # Σ_{k≠x} p_k, exact even when p_x ≈ 1
        # model ratio ŝ_y = α p_y / u + (1 − p_x) + u p_x / (α + u)   (for y ≠ x_t)
        log_s_hat = torch.log(a * p + u * one_minus_px + u * u * p_x / (a + u)) - torch.log(u)
        # true ratio s_y = q_t(y | x0) / q_t(x_t | x0)
        q = a * F.one_hot(x0, V).to(cd) + u  # (B, L, V)
        log_s = torch.log(q) - torch.log(q.gather(-1, x_t.unsqueeze(-1)))
        log_r = log_s_hat - log_s
        s = log_s.exp()
        # s (r − 1 − log r) ≥ 0; expm1 keeps it accurate when r ≈ 1
        div = s * (torch.expm1(log_r) - log_r)
        div = torch.where(is_x, torch.zeros_like(div), div)
        per_token = (beta.unsqueeze(-1) / V * div).sum(-1)  # (B, L)
        return self._per_example(per_token).sum(-1).to(torch.promote_types(output.dtype, torch.float32))

    def _loss(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Per-example training loss, shape (B,): the continuous-time NELBO integrand (:meth:`elbo_terms`)."""
        return self._elbo_terms(output, x0, x_t, t)

    def prior_kl(self, x0: Tensor) -> Tensor:
        """KL(q_1(· | x0) ‖ Unif) per example, shape (B,): L [(α₁+u₁) log V(α₁+u₁) + (V−1) u₁ log V u₁]."""
        V = self.vocab_size
        a1 = self._alpha1()
        u1 = (1 - a1) / V
        kl = (a1 + u1) * math.log(V * (a1 + u1)) + ((V - 1) * u1 * math.log(V * u1) if u1 > 0 else 0.0)
        x0 = self.validate(x0, "x0")
        L = math.prod(x0.shape[1:])
        return torch.full((x0.shape[0],), L * kl, dtype=torch.float64, device=x0.device)

    def nelbo(
        self, model, x0: Tensor, n_samples: int = 64, antithetic: bool = True, generator=None, reduction: str = "mean"
    ) -> tuple[Tensor, Tensor]:
        """Monte-Carlo NELBO in nats per sequence and its s.e. (:func:`~diffuse_edu.categorical.estimate_nelbo`).

        The integrand is heavy-tailed: at small t a token differs from x₀ with probability ~ u_t and then weighs
        ~ 1/u_t, so the variance grows like ∫ dt/t. Expect a standard error about 3× that of the masked NELBO for the
        same ``n_samples`` (measured on the tiny world: 0.069 vs 0.022 nats), and use more samples.
        """
        return super().nelbo(model, x0, n_samples, antithetic, generator, reduction)

    # ---- reverse process -------------------------------------------------------------------------------------------

    def _step(self, x_t: Tensor, t: Tensor, s: Tensor, output: Tensor, generator, method: str) -> Tensor:
        """Ancestral step t → s: draw x_s ~ Σ_{x₀} q(x_s | x_t, x₀) softmax(output), per position; shape (B, L)."""
        probs = self._posterior_probs(x_t, torch.softmax(output.to(self.compute_dtype), -1), t, s)
        return _draw(probs, generator, self.sampling_dtype)

    def _denoise(self, x_t: Tensor, t: Tensor, output: Tensor, generator, mode: str) -> Tensor:
        """The clean sample: the ``"argmax"`` of p_θ(x₀ | x_t), or a ``"sample"`` — the exact ancestral step to s = 0,
        whose posterior is p_θ(x₀ | x_t) itself."""
        if mode == "argmax":
            return output.argmax(-1)
        return self._step(x_t, t, torch.zeros_like(t), output, generator, "ancestral")
