r"""Noise schedules on the clock t ∈ [0, 1].

One object drives every state space (DESIGN.md): the *signal level* :math:`\alpha(t)`, decreasing from
:math:`\alpha(0) \approx 1` to :math:`\alpha(1) \approx 0`.

* Gaussian (variance-preserving): :math:`x_t = \alpha_t x_0 + \sigma_t \varepsilon` with :math:`\sigma_t^2 = 1 - \alpha_t^2`.
* Categorical: :math:`x_t \sim \mathrm{Cat}(\alpha_t\,\mathrm{onehot}(x_0) + (1 - \alpha_t)\,\pi)`, where π is the mask
  state (absorbing) or the uniform distribution.

Every schedule gives :meth:`~Schedule.alpha`, its derivative :meth:`~Schedule.dalpha`, :meth:`~Schedule.sigma`,
:meth:`~Schedule.log_snr` and the VP diffusion rate :meth:`~Schedule.beta` (β = −2 α'/α). Times are tensors of any shape;
the result has the same shape and dtype.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "Schedule",
    "ScheduleVPLinear",
    "ScheduleCosine",
    "ScheduleSDScaledLinear",
    "ScheduleLogLinear",
    "get_schedule",
]


def _as_time(t) -> Tensor:
    if isinstance(t, (int, float)):
        t = torch.tensor(float(t), dtype=torch.get_default_dtype())
    if not isinstance(t, Tensor):
        raise TypeError(f"t must be a float or a torch.Tensor, got {type(t).__name__}.")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if torch.isnan(t).any():
        raise ValueError("t contains NaN; expected times in [0, 1].")
    if t.numel() and ((t < 0).any() or (t > 1).any()):
        raise ValueError(f"t must lie in [0, 1]; got values in [{t.min().item():.4g}, {t.max().item():.4g}].")
    return t


class Schedule:
    """Base class: subclasses implement :meth:`_alpha` and :meth:`_dalpha` on validated times."""

    name: str = "schedule"

    def _alpha(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def _dalpha(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def alpha(self, t) -> Tensor:
        """Signal level α(t), same shape as ``t``; decreasing in t."""
        return self._alpha(_as_time(t))

    def dalpha(self, t) -> Tensor:
        """Time derivative dα/dt (≤ 0), same shape as ``t``."""
        return self._dalpha(_as_time(t))

    def sigma(self, t) -> Tensor:
        """Noise level of the VP Gaussian process, σ(t) = √(1 − α(t)²)."""
        a = self.alpha(t)
        return (1 - a * a).clamp_min(0).sqrt()

    def log_snr(self, t) -> Tensor:
        """log(α² / σ²); +∞ where σ = 0 and −∞ where α = 0."""
        a = self.alpha(t)
        return 2 * torch.log(a) - torch.log1p(-a * a)

    def beta(self, t) -> Tensor:
        """VP diffusion rate β(t) = −2 α'(t) / α(t) = g(t)², so that dx = −½β x dt + √β dW."""
        t = _as_time(t)
        return -2 * self._dalpha(t) / self._alpha(t)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class ScheduleVPLinear(Schedule):
    r"""VP schedule with β(t) linear from ``beta_min`` to ``beta_max`` (Song et al. 2021).

    :math:`\log\alpha(t) = -\tfrac12\int_0^t \beta = -\tfrac14 t^2(\beta_1-\beta_0) - \tfrac12 t\beta_0`.
    With the defaults α(1) ≈ 0.0066.
    """

    name = "vp-linear"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        if not 0 <= beta_min <= beta_max:
            raise ValueError(f"need 0 <= beta_min <= beta_max, got beta_min={beta_min}, beta_max={beta_max}.")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def _log_alpha(self, t: Tensor) -> Tensor:
        return -0.25 * t * t * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def _alpha(self, t: Tensor) -> Tensor:
        return torch.exp(self._log_alpha(t))

    def _dalpha(self, t: Tensor) -> Tensor:
        beta_t = self.beta_min + t * (self.beta_max - self.beta_min)
        return -0.5 * beta_t * self._alpha(t)


class ScheduleSDScaledLinear(Schedule):
    r"""The Stable-Diffusion "scaled-linear" VP schedule, as used by the official Diffuse-Everything text–image code.

    In continuous time :math:`\beta(t) = 1000\,(\sqrt{\beta_0}(1-t) + \sqrt{\beta_1} t)^2` in the VP convention
    :math:`\alpha = \exp(-\tfrac12\int_0^t\beta)`. The official code writes the same curve as
    :math:`500(\dots)^2` with :math:`\alpha = \exp(-\int_0^t \beta)`. α(1) ≈ 0.0690, the continuous-time
    limit of :math:`\sqrt{\bar\alpha_T}` of the 1000-step discrete DDPM schedule (whose product gives 0.0683).
    """

    name = "sd-scaled-linear"

    def __init__(self, beta_start: float = 8.5e-4, beta_end: float = 1.2e-2, num_train_steps: int = 1000):
        if not 0 < beta_start <= beta_end:
            raise ValueError(f"need 0 < beta_start <= beta_end, got {beta_start}, {beta_end}.")
        self.beta_start, self.beta_end, self.num_train_steps = float(beta_start), float(beta_end), int(num_train_steps)

    def _log_alpha(self, t: Tensor) -> Tensor:
        a, b = math.sqrt(self.beta_start), math.sqrt(self.beta_end)
        # ∫_0^t (a(1-s) + b s)^2 ds = [(a + (b-a)s)^3 / (3(b-a))]_0^t
        d = b - a
        integral = ((a + d * t) ** 3 - a**3) / (3 * d) if d != 0 else a * a * t
        return -0.5 * self.num_train_steps * integral

    def _alpha(self, t: Tensor) -> Tensor:
        return torch.exp(self._log_alpha(t))

    def _dalpha(self, t: Tensor) -> Tensor:
        a, b = math.sqrt(self.beta_start), math.sqrt(self.beta_end)
        beta_t = self.num_train_steps * (a * (1 - t) + b * t) ** 2
        return -0.5 * beta_t * self._alpha(t)


class ScheduleCosine(Schedule):
    r"""Cosine schedule (Nichol & Dhariwal 2021): :math:`\alpha(t) = \cos\theta(t) / \cos\theta_0`.

    θ moves linearly from θ₀ = (π/2)·s/(1+s) at t = 0 to the angle where α = ``alpha_end`` at t = 1. With the default
    ``alpha_end = 0`` this is exactly Nichol's curve (α(1) = 0: pure noise / every token masked). For Gaussian use a
    small positive ``alpha_end`` (e.g. 1e-3) keeps the log-SNR finite at t = 1.
    """

    name = "cosine"

    def __init__(self, s: float = 0.008, alpha_end: float = 0.0):
        if s < 0:
            raise ValueError(f"s must be >= 0, got {s}.")
        if not 0 <= alpha_end < 1:
            raise ValueError(f"alpha_end must lie in [0, 1), got {alpha_end}.")
        self.s, self.alpha_end = float(s), float(alpha_end)
        self._theta0 = 0.5 * math.pi * self.s / (1 + self.s)
        self._theta1 = math.acos(self.alpha_end * math.cos(self._theta0))

    def _theta(self, t: Tensor) -> Tensor:
        return self._theta0 + (self._theta1 - self._theta0) * t

    def _alpha(self, t: Tensor) -> Tensor:
        return (torch.cos(self._theta(t)) / math.cos(self._theta0)).clamp(0.0, 1.0)

    def _dalpha(self, t: Tensor) -> Tensor:
        return -torch.sin(self._theta(t)) * (self._theta1 - self._theta0) / math.cos(self._theta0)

    def __repr__(self) -> str:
        return f"ScheduleCosine(s={self.s}, alpha_end={self.alpha_end})"


class ScheduleLogLinear(Schedule):
    r"""Log-linear schedule of MDLM / SEDD: α(t) = 1 − (1 − ε) t, i.e. total noise −log(1 − (1 − ε)t).

    Linear in α, so the masked-diffusion ELBO weight −α'/(1 − α) is 1/t (for ε = 0). ``eps`` keeps α(1) = ε > 0.
    """

    name = "log-linear"

    def __init__(self, eps: float = 1e-3):
        if not 0 <= eps < 1:
            raise ValueError(f"eps must lie in [0, 1), got {eps}.")
        self.eps = float(eps)

    def _alpha(self, t: Tensor) -> Tensor:
        return 1 - (1 - self.eps) * t

    def _dalpha(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -(1 - self.eps))


_REGISTRY = {
    "vp-linear": ScheduleVPLinear,
    "linear": ScheduleVPLinear,
    "cosine": ScheduleCosine,
    "sd-scaled-linear": ScheduleSDScaledLinear,
    "sd": ScheduleSDScaledLinear,
    "log-linear": ScheduleLogLinear,
}


def get_schedule(name: str | Schedule, **kwargs) -> Schedule:
    """Build a schedule from its name (``"vp-linear"``, ``"cosine"``, ``"sd-scaled-linear"``, ``"log-linear"``)."""
    if isinstance(name, Schedule):
        return name
    try:
        return _REGISTRY[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; expected one of {sorted(set(_REGISTRY))}.") from None
