r"""Noise schedules on the clock t ∈ [0, 1].

One object drives every state space (DESIGN.md): the *signal level* :math:`\alpha(t)`, decreasing from
:math:`\alpha(0) \approx 1` to :math:`\alpha(1) \approx 0`.

* Gaussian (variance-preserving): :math:`x_t = \alpha_t x_0 + \sigma_t \varepsilon` with
  :math:`\sigma_t^2 = 1 - \alpha_t^2`.
* Categorical: :math:`x_t \sim \mathrm{Cat}(\alpha_t\,\mathrm{onehot}(x_0) + (1 - \alpha_t)\,\pi)`, where π is the mask
  state (absorbing) or the uniform distribution.

Every schedule gives :meth:`~Schedule.alpha`, its derivative :meth:`~Schedule.dalpha`, :meth:`~Schedule.sigma`,
:meth:`~Schedule.log_snr` and the VP diffusion rate :meth:`~Schedule.beta` (β = −2 α'/α). Times are numbers or tensors
of any shape with values in [0, 1]; the result has the same shape and dtype. Constructors refuse parameters that would
give α > 1, α increasing, α constant (no noise at all) or NaN, with a message naming the parameter.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import Tensor

from ._checks import check_number, check_positive_int, check_time

__all__ = [
    "Schedule",
    "ScheduleVPLinear",
    "ScheduleCosine",
    "ScheduleSDScaledLinear",
    "ScheduleLogLinear",
    "get_schedule",
]


def _as_time(t) -> Tensor:
    # Times of any shape, values in [0, 1] (NaN, bools and complex numbers refused): see _checks.check_time.
    return check_time(t, any_shape=True)


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
        """VP diffusion rate β(t) = −2 α'(t) / α(t) = g(t)², so that dx = −½β x dt + √β dW; +∞ where α = 0."""
        return self._beta(_as_time(t))

    def _beta(self, t: Tensor) -> Tensor:
        a = self._alpha(t)
        # Where α underflows to 0 the ratio is 0/0; the rate there is infinite (or huge), never NaN.
        return torch.where(a > 0, -2 * self._dalpha(t) / a.clamp_min(torch.finfo(a.dtype).tiny), torch.inf)

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
        beta_min = check_number(beta_min, "beta_min", 0.0)
        beta_max = check_number(beta_max, "beta_max", 0.0, strict_low=True)
        if not beta_min <= beta_max:
            raise ValueError(
                f"need beta_min <= beta_max (β grows with t); got beta_min={beta_min}, beta_max={beta_max}."
            )
        self.beta_min, self.beta_max = beta_min, beta_max

    def _log_alpha(self, t: Tensor) -> Tensor:
        return -0.25 * t * t * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def _alpha(self, t: Tensor) -> Tensor:
        return torch.exp(self._log_alpha(t))

    def _dalpha(self, t: Tensor) -> Tensor:
        return -0.5 * self._beta(t) * self._alpha(t)

    def _beta(self, t: Tensor) -> Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)


class ScheduleSDScaledLinear(Schedule):
    r"""The Stable-Diffusion "scaled-linear" VP schedule, as used by the official Diffuse-Everything text–image code.

    In continuous time :math:`\beta(t) = 1000\,(\sqrt{\beta_0}(1-t) + \sqrt{\beta_1} t)^2` in the VP convention
    :math:`\alpha = \exp(-\tfrac12\int_0^t\beta)`. The official code writes the same curve as
    :math:`500(\dots)^2` with :math:`\alpha = \exp(-\int_0^t \beta)`. α(1) ≈ 0.0690, the continuous-time
    limit of :math:`\sqrt{\bar\alpha_T}` of the 1000-step discrete DDPM schedule (whose product gives 0.0683).
    """

    name = "sd-scaled-linear"

    def __init__(self, beta_start: float = 8.5e-4, beta_end: float = 1.2e-2, num_train_steps: int = 1000):
        # The betas are per-step variances of the discrete schedule: each in (0, 1).
        beta_start = check_number(beta_start, "beta_start", 0.0, 1.0, strict_low=True, strict_high=True)
        beta_end = check_number(beta_end, "beta_end", 0.0, 1.0, strict_low=True, strict_high=True)
        if not beta_start <= beta_end:
            raise ValueError(f"need beta_start <= beta_end; got beta_start={beta_start}, beta_end={beta_end}.")
        self.beta_start, self.beta_end = beta_start, beta_end
        self.num_train_steps = check_positive_int(num_train_steps, "num_train_steps")

    def _log_alpha(self, t: Tensor) -> Tensor:
        a, b = math.sqrt(self.beta_start), math.sqrt(self.beta_end)
        # ∫_0^t (a(1-s) + b s)^2 ds = [(a + (b-a)s)^3 / (3(b-a))]_0^t
        d = b - a
        integral = ((a + d * t) ** 3 - a**3) / (3 * d) if d != 0 else a * a * t
        return -0.5 * self.num_train_steps * integral

    def _alpha(self, t: Tensor) -> Tensor:
        return torch.exp(self._log_alpha(t))

    def _dalpha(self, t: Tensor) -> Tensor:
        return -0.5 * self._beta(t) * self._alpha(t)

    def _beta(self, t: Tensor) -> Tensor:
        a, b = math.sqrt(self.beta_start), math.sqrt(self.beta_end)
        return self.num_train_steps * (a * (1 - t) + b * t) ** 2


class ScheduleCosine(Schedule):
    r"""Cosine schedule (Nichol & Dhariwal 2021): :math:`\alpha(t) = \cos\theta(t) / \cos\theta_0`.

    θ moves linearly from θ₀ = (π/2)·s/(1+s) at t = 0 to the angle where α = ``alpha_end`` at t = 1. With the default
    ``alpha_end = 0`` this is exactly Nichol's curve (α(1) = 0: pure noise / every token masked). For Gaussian use a
    small positive ``alpha_end`` (e.g. 1e-3) keeps the log-SNR finite at t = 1.
    """

    name = "cosine"

    def __init__(self, s: float = 0.008, alpha_end: float = 0.0):
        self.s = check_number(s, "s", 0.0)
        self.alpha_end = check_number(alpha_end, "alpha_end", 0.0, 1.0, strict_high=True)
        self._theta0 = 0.5 * math.pi * self.s / (1 + self.s)
        self._theta1 = math.acos(self.alpha_end * math.cos(self._theta0))
        if not self._theta1 - self._theta0 > 1e-6:
            raise ValueError(f"s={self.s} is too large: α(t) would stay at 1 (no noise); Nichol's value is 0.008.")

    def _theta(self, t: Tensor) -> Tensor:
        return self._theta0 + (self._theta1 - self._theta0) * t

    def _alpha(self, t: Tensor) -> Tensor:
        return (torch.cos(self._theta(t)) / math.cos(self._theta0)).clamp(0.0, 1.0)

    def _dalpha(self, t: Tensor) -> Tensor:
        return -torch.sin(self._theta(t)) * (self._theta1 - self._theta0) / math.cos(self._theta0)

    def _beta(self, t: Tensor) -> Tensor:
        # −2α'/α = 2θ' tan θ: finite for θ < π/2, +∞ where α = 0 (θ = π/2).
        theta = self._theta(t)
        return torch.where(torch.cos(theta) > 0, 2 * (self._theta1 - self._theta0) * torch.tan(theta), torch.inf)

    def __repr__(self) -> str:
        return f"ScheduleCosine(s={self.s}, alpha_end={self.alpha_end})"


class ScheduleLogLinear(Schedule):
    r"""Log-linear schedule of MDLM / SEDD: α(t) = 1 − (1 − ε) t, i.e. total noise −log(1 − (1 − ε)t).

    Linear in α, so the masked-diffusion ELBO weight −α'/(1 − α) is 1/t (for ε = 0). ``eps`` keeps α(1) = ε > 0.
    """

    name = "log-linear"

    def __init__(self, eps: float = 1e-3):
        self.eps = check_number(eps, "eps", 0.0, 1.0, strict_high=True)

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
    """Build a schedule from its name (``"vp-linear"``, ``"cosine"``, ``"sd-scaled-linear"``, ``"log-linear"``).

    A :class:`Schedule` is returned as it is (then no keyword arguments are allowed: they would be ignored). Unknown
    names and unknown keyword arguments raise a ``ValueError`` / ``TypeError`` that lists the accepted ones.
    """
    if isinstance(name, Schedule):
        if kwargs:
            raise TypeError(f"get_schedule got a Schedule ({name!r}) and keyword arguments {sorted(kwargs)}; pass one.")
        return name
    if not isinstance(name, str):
        raise TypeError(f"schedule must be a Schedule or one of {sorted(set(_REGISTRY))}; got {name!r}.")
    if name not in _REGISTRY:
        raise ValueError(f"unknown schedule {name!r}; expected one of {sorted(set(_REGISTRY))}.")
    cls = _REGISTRY[name]
    accepted = [p for p in inspect.signature(cls).parameters]
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        raise TypeError(f"{cls.__name__} has no parameter(s) {unknown}; it accepts {accepted}.")
    return cls(**kwargs)
