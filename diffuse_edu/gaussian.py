r"""The Gaussian (variance-preserving) process on continuous data: :math:`x_t = \alpha_t x_0 + \sigma_t \varepsilon`.

A network may output ε (noise), x₀ (clean data) or v = α ε − σ x₀ (Salimans & Ho 2022); the three carry the same
information at any t with 0 < α < 1 and are converted with the functions below. The score is −ε/σ.

Reverse steps from t to s < t (one network call each):

* ``"ddpm"``: a draw from the exact Gaussian posterior q(x_s | x_t, x̂₀) (Ho et al. 2020, eq. 6–7, in continuous time
  with α_{t|s} = α_t/α_s and σ²_{t|s} = σ_t² − α_{t|s}² σ_s²).
* ``"euler-maruyama"``: one step of the reverse SDE dx = [f − g² ∇log p_t] dt + g dW̄ with f = −½βx, g² = β
  (Song et al. 2021, eq. 6).
* ``"ode-euler"``: one Euler step of the probability-flow ODE dx = [f − ½ g² ∇log p_t] dt (Song et al. 2021, eq. 13).
* ``"ode-heun"``: Heun's (trapezoidal) step of the same ODE (Karras et al. 2022, Alg. 1): an Euler predictor to s,
  a second network call there, and the average of the two drifts. It costs two calls per step, so the sampler runs
  it through :meth:`GaussianProcess.predict` and :meth:`GaussianProcess.correct`.

Where α = 0 (cosine schedule with ``alpha_end=0`` at t = 1) ε carries no information about x₀, and where σ = 0 (t = 0)
x₀ carries none about ε. Every division by α or σ therefore divides by ``max(level, MIN_LEVEL)``: the result stays
finite (never NaN), exact models still give the right answer (their numerator is 0 there), and a learned ε-model at
α = 0 gives a large x̂₀ that ``clip_x0`` can bound. Prefer ``prediction="v"`` or ``"x0"`` with such a schedule, or
sample from ``t_max < 1``. The same floor keeps β = −2α'/α finite for the Euler-type steps, but at α = 0 the VP
SDE itself is singular (β = ∞): Euler–Maruyama from such a t is finite yet meaningless, so start it at ``t_max < 1``
(the DDPM step has no β and is exact there). Conversions that need no division (v → x₀, v → ε) stay exact everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import check_choice, check_float_tensor, check_generator, check_number
from ._random import randn
from .process import Process
from .schedules import Schedule, ScheduleVPLinear, get_schedule

__all__ = [
    "MIN_LEVEL",
    "PREDICTIONS",
    "STEP_METHODS",
    "GaussianProcess",
    "Corrupted",
    "convert",
    "eps_to_x0",
    "x0_to_eps",
    "eps_to_v",
    "v_to_eps",
    "x0_to_v",
    "v_to_x0",
    "eps_to_score",
    "score_to_eps",
]

MIN_LEVEL = 1e-4
"""Smallest α or σ ever divided by (see the module docstring)."""

PREDICTIONS = ("eps", "x0", "v")
STEP_METHODS = ("ddpm", "euler-maruyama", "ode-euler", "ode-heun")


def _safe(level: Tensor, min_level: float) -> Tensor:
    return level.clamp_min(min_level)


# ---------------------------------------------------------------------------------------------------------------------
# Conversions. alpha, sigma: tensors broadcastable to x_t (e.g. shape (B, 1, ...)), with alpha² + sigma² = 1.
# ---------------------------------------------------------------------------------------------------------------------


def eps_to_x0(eps: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor, min_level: float = MIN_LEVEL) -> Tensor:
    """x̂₀ = (x_t − σ ε) / α; divides by max(α, ``min_level``)."""
    return (x_t - sigma * eps) / _safe(alpha, min_level)


def x0_to_eps(x0: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor, min_level: float = MIN_LEVEL) -> Tensor:
    """ε̂ = (x_t − α x₀) / σ; divides by max(σ, ``min_level``)."""
    return (x_t - alpha * x0) / _safe(sigma, min_level)


def v_to_x0(v: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """x̂₀ = α x_t − σ v (exact for every α, σ with α² + σ² = 1)."""
    return alpha * x_t - sigma * v


def v_to_eps(v: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """ε̂ = σ x_t + α v (exact for every α, σ with α² + σ² = 1)."""
    return sigma * x_t + alpha * v


def eps_to_v(eps: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor, min_level: float = MIN_LEVEL) -> Tensor:
    """v = α ε − σ x₀ with x₀ from ε; equals (ε − σ x_t)/α, divided by max(α, ``min_level``)."""
    return (eps - sigma * x_t) / _safe(alpha, min_level)


def x0_to_v(x0: Tensor, x_t: Tensor, alpha: Tensor, sigma: Tensor, min_level: float = MIN_LEVEL) -> Tensor:
    """v = α ε − σ x₀ with ε from x₀; equals (α x_t − x₀)/σ, divided by max(σ, ``min_level``)."""
    return (alpha * x_t - x0) / _safe(sigma, min_level)


def eps_to_score(eps: Tensor, sigma: Tensor, min_level: float = MIN_LEVEL) -> Tensor:
    r"""∇ log p_t(x_t) = −E[ε | x_t] / σ: Tweedie's formula (∇log p_t = (α x̂₀ − x_t)/σ²) with x_t − α x̂₀ = σ ε̂."""
    return -eps / _safe(sigma, min_level)


def score_to_eps(score: Tensor, sigma: Tensor) -> Tensor:
    """ε̂ = −σ · score (the inverse of :func:`eps_to_score`)."""
    return -sigma * score


_TABLE: dict[tuple[str, str], Callable] = {
    ("eps", "x0"): eps_to_x0,
    ("x0", "eps"): x0_to_eps,
    ("v", "x0"): lambda v, x, a, s, m: v_to_x0(v, x, a, s),
    ("v", "eps"): lambda v, x, a, s, m: v_to_eps(v, x, a, s),
    ("eps", "v"): eps_to_v,
    ("x0", "v"): x0_to_v,
}


def convert(
    value: Tensor, src: str, dst: str, x_t: Tensor, alpha: Tensor, sigma: Tensor, min_level: float = MIN_LEVEL
) -> Tensor:
    """Convert a prediction between ``"eps"``, ``"x0"``, ``"v"`` and ``"score"`` at the point (x_t, α, σ).

    Args:
        value: the prediction, shape (B, ...).
        src, dst: its kind and the wanted kind.
        x_t: the noisy input, shape (B, ...).
        alpha, sigma: levels broadcastable to ``x_t``, e.g. shape (B, 1, ...).
    """
    kinds = PREDICTIONS + ("score",)
    if src not in kinds or dst not in kinds:
        raise ValueError(f"prediction kinds must be among {kinds}; got src={src!r}, dst={dst!r}.")
    if src == dst:
        return value
    if src == "score":
        value, src = score_to_eps(value, sigma), "eps"
        if dst == "eps":
            return value
    if dst == "score":
        eps = value if src == "eps" else _TABLE[(src, "eps")](value, x_t, alpha, sigma, min_level)
        return eps_to_score(eps, sigma, min_level)
    return _TABLE[(src, dst)](value, x_t, alpha, sigma, min_level)


# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Corrupted:
    """A noised batch and the noise that made it: x_t = α x₀ + σ ε.

    Attributes:
        x_t: shape (B, ...).
        eps: shape (B, ...), standard normal.
        t: shape (B,).
    """

    x_t: Tensor
    eps: Tensor
    t: Tensor


class GaussianProcess(Process):
    """Variance-preserving Gaussian diffusion on continuous data of any shape (B, ...).

    Public methods validate their arguments (:mod:`diffuse_edu.process`); the helpers the samplers call at every step
    (:meth:`levels`, :meth:`convert`, :meth:`to_x0`, :meth:`to_eps`, :meth:`to_score`, :meth:`target`,
    :meth:`ode_drift`, :meth:`sde_drift`, :meth:`predict`, :meth:`correct`) take trusted inputs.

    Args:
        schedule: the signal level α(t), a :class:`~diffuse_edu.schedules.Schedule` or its name; σ(t) = √(1 − α²).
        prediction: what the network outputs: ``"eps"``, ``"x0"`` or ``"v"``.
        step_method: the default reverse step: ``"ddpm"``, ``"euler-maruyama"``, ``"ode-euler"`` or ``"ode-heun"``.
        weighting: time weighting w(t) of the per-example loss w(t) · mean((output − target)²), which is taken in
            the network's own parameterisation. ``None``: w = 1 (the "simple" loss of Ho et al. 2020). The strings
            are defined on the x₀ error and rewritten for each parameterisation, using ‖ε̂ − ε‖² = SNR·‖x̂₀ − x₀‖²
            and ‖v̂ − v‖² = (SNR + 1)·‖x̂₀ − x₀‖² (SNR = α²/σ²), so they mean the same whatever the network
            outputs: ``"snr"`` is SNR·‖x̂₀ − x₀‖², i.e. the ε-MSE (w = 1 for ε, SNR for x₀, SNR/(SNR + 1) for v);
            ``"min-snr-<γ>"`` (e.g. ``"min-snr-5"``) is Min-SNR-γ of Hang et al. 2023, min(SNR, γ)·‖x̂₀ − x₀‖²
            (w = min(SNR, γ)/SNR for ε, min(SNR, γ) for x₀, min(SNR, γ)/(SNR + 1) for v). A callable maps t (B,)
            to w (B,) directly.
        clip_x0: if given, x̂₀ is clamped to [−clip_x0, clip_x0] in the DDPM step and in :meth:`denoise` (use 1 for
            data scaled to [−1, 1]); the Euler-type steps use the unclipped score. ``None`` leaves x̂₀ untouched.
        min_level: smallest α or σ ever divided by, in (0, 0.1].
    """

    kind = "gaussian"
    categorical = False
    step_methods = STEP_METHODS
    two_stage_methods = ("ode-heun",)
    denoise_modes = ("mean",)

    def __init__(
        self,
        schedule: Schedule | None = None,
        prediction: str = "eps",
        step_method: str = "ddpm",
        weighting: str | Callable[[Tensor], Tensor] | None = None,
        clip_x0: float | None = None,
        min_level: float = MIN_LEVEL,
    ):
        self.schedule = get_schedule(schedule) if schedule is not None else ScheduleVPLinear()
        check_choice(prediction, PREDICTIONS, "prediction")
        check_choice(step_method, STEP_METHODS, "step_method")
        self.prediction = prediction
        self.step_method = step_method
        self.weighting = weighting
        self._gamma = self._parse_weighting(weighting)
        if clip_x0 is not None:
            clip_x0 = check_number(clip_x0, "clip_x0", 0.0, strict_low=True)
        self.clip_x0 = clip_x0
        self.min_level = check_number(min_level, "min_level", 0.0, 0.1, strict_low=True)

    def __repr__(self) -> str:
        return (
            f"GaussianProcess(schedule={self.schedule!r}, prediction={self.prediction!r}, "
            f"step_method={self.step_method!r}, weighting={self.weighting!r}, clip_x0={self.clip_x0})"
        )

    @staticmethod
    def _parse_weighting(weighting) -> float | None:
        if weighting is None or weighting == "snr" or callable(weighting):
            return None
        if isinstance(weighting, str) and weighting.startswith("min-snr-"):
            try:
                gamma = float(weighting[len("min-snr-") :])
            except ValueError:
                gamma = -1.0
            if gamma > 0 and gamma == gamma and gamma != float("inf"):
                return gamma
        raise ValueError(
            f"weighting must be None, 'snr', 'min-snr-<gamma>' (gamma > 0) or a callable; got {weighting!r}."
        )

    def check_method(self, method: str | None) -> str:
        return super().check_method(method if method is not None else self.step_method)

    # -- helpers ------------------------------------------------------------------------------------------------------

    def validate(self, x: Tensor, name: str = "x", values: bool = True) -> Tensor:
        """Raise one clear error unless ``x`` is a finite floating tensor of shape (B, ...); return it."""
        return check_float_tensor(x, name, min_ndim=1, values=values)

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The network predicts ε, x₀ or v: the shape of the data."""
        return tuple(x_shape)

    def levels(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """α(t) and σ(t) shaped (B, 1, ..., 1) to broadcast against ``x`` of shape (B, ...), in ``x``'s dtype."""
        view = (-1,) + (1,) * (x.ndim - 1)
        a = self.schedule._alpha(t)
        s = (1 - a * a).clamp_min(0).sqrt()
        return a.to(x.dtype).reshape(view), s.to(x.dtype).reshape(view)

    def convert(self, output: Tensor, x_t: Tensor, t: Tensor, to: str, src: str | None = None) -> Tensor:
        """Convert a network ``output`` (of kind ``src``, default :attr:`prediction`) at (x_t, t) to kind ``to``.

        ``to`` is one of ``"eps"``, ``"x0"``, ``"v"``, ``"score"``; shapes (B, ...) and t (B,).
        """
        a, s = self.levels(t, x_t)
        return convert(output, src or self.prediction, to, x_t, a, s, self.min_level)

    def to_x0(self, x_t: Tensor, t: Tensor, output: Tensor) -> Tensor:
        """x̂₀ from the network output (clamped to ±``clip_x0`` when set), shape (B, ...)."""
        x0 = self.convert(output, x_t, t, "x0")
        return x0 if self.clip_x0 is None else x0.clamp(-self.clip_x0, self.clip_x0)

    def to_eps(self, x_t: Tensor, t: Tensor, output: Tensor) -> Tensor:
        """ε̂ from the network output, shape (B, ...)."""
        return self.convert(output, x_t, t, "eps")

    def to_score(self, x_t: Tensor, t: Tensor, output: Tensor) -> Tensor:
        """Score estimate ∇log p_t(x_t) = −ε̂/σ from the network output, shape (B, ...)."""
        return self.convert(output, x_t, t, "score")

    # -- forward process ----------------------------------------------------------------------------------------------

    def _prior(self, shape: tuple[int, ...], generator: torch.Generator | None, device) -> Tensor:
        """N(0, I) draws of shape ``shape`` = (B, ...): the t = 1 marginal (exactly when α(1) = 0)."""
        return randn(tuple(shape), generator, device, torch.get_default_dtype())

    def corrupt_with_noise(self, x0: Tensor, t, generator: torch.Generator | None = None) -> Corrupted:
        """Draw x_t = α(t) x₀ + σ(t) ε, ε ~ N(0, I); return x_t with its ε. ``x0`` (B, ...), ``t`` (B,) or scalar."""
        x0 = self.validate(x0, "x0")
        check_generator(generator)
        t = self._times(t, x0)
        eps = randn(x0.shape, generator, x0.device, x0.dtype)
        a, s = self.levels(t, x0)
        return Corrupted(x_t=a * x0 + s * eps, eps=eps, t=t)

    def _corrupt(self, x0: Tensor, t: Tensor, generator) -> Tensor:
        eps = randn(x0.shape, generator, x0.device, x0.dtype)
        a, s = self.levels(t, x0)
        return a * x0 + s * eps

    # -- training -----------------------------------------------------------------------------------------------------

    def target(self, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """What the network should output at (x_t, t) for this x₀: ε = (x_t − α x₀)/σ, x₀, or v = α ε − σ x₀."""
        if self.prediction == "x0":
            return x0
        a, s = self.levels(t, x_t)
        eps = x0_to_eps(x0, x_t, a, s, self.min_level)
        return eps if self.prediction == "eps" else a * eps - s * x0

    def _check_loss_setup(self, t: Tensor) -> None:
        # A weighting callable is user code: its output is checked once, at the door of loss / training_loss.
        if callable(self.weighting):
            w = self.weighting(t)
            if not isinstance(w, Tensor) or tuple(w.shape) != tuple(t.shape) or not w.is_floating_point():
                raise ValueError(
                    f"the weighting callable must map times of shape {tuple(t.shape)} to a float tensor of that shape; "
                    f"got {getattr(w, 'shape', type(w).__name__)} ({getattr(w, 'dtype', '')})."
                )
            if w.numel() and (not torch.isfinite(w).all() or (w < 0).any()):
                raise ValueError(
                    "the weighting callable returned NaN, infinite or negative weights; expected w(t) >= 0."
                )

    def loss_weight(self, t: Tensor) -> Tensor:
        """The time weighting w(t) of :meth:`loss` (see the class docstring), shape (B,) (trusted ``t``)."""
        if self.weighting is None:
            return torch.ones_like(t)
        if callable(self.weighting):
            return self.weighting(t)
        a = self.schedule._alpha(t)
        snr = a * a / (1 - a * a).clamp_min(self.min_level**2)  # finite even at t = 0
        g = self._gamma  # None for "snr" (γ = ∞)
        x0_weight = snr if g is None else snr.clamp_max(g)  # the weight on ‖x̂₀ − x₀‖²
        if self.prediction == "x0":
            return x0_weight
        if self.prediction == "v":
            return x0_weight / (snr + 1)
        # ε: divide by SNR; where SNR = 0 the ratio is 1 (min(SNR, γ)/SNR → 1 as SNR → 0).
        return torch.where(snr > 0, x0_weight / snr.clamp_min(1e-30), torch.ones_like(snr))

    def _loss(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Per-example loss w(t)·mean((output − target)²) over non-batch dims, shape (B,).

        ε is recovered from (x_t, x₀), so callers need not keep it.
        """
        err = self._per_example((output - self.target(x0, x_t, t)).pow(2)).mean(1)
        return self.loss_weight(t).to(err.dtype) * err

    def sample_times(
        self, batch: int, generator: torch.Generator | None = None, device=None, stratified: bool = True
    ) -> Tensor:
        """Training times, shape (B,), in the default float dtype (see :meth:`Process.sample_times`)."""
        return super().sample_times(batch, generator, device, stratified).to(self._time_dtype())

    def _time_dtype(self) -> torch.dtype:
        return torch.get_default_dtype()

    # -- reverse process ----------------------------------------------------------------------------------------------

    def _beta(self, t: Tensor, x: Tensor) -> Tensor:
        """β(t) = −2α'/α shaped to broadcast against ``x``; α is floored at ``min_level`` so β stays finite."""
        view = (-1,) + (1,) * (x.ndim - 1)
        beta = -2 * self.schedule._dalpha(t) / self.schedule._alpha(t).clamp_min(self.min_level)
        return beta.to(x.dtype).reshape(view)

    def ode_drift(self, x_t: Tensor, t: Tensor, output: Tensor) -> Tensor:
        """dx/dt of the probability-flow ODE, f − ½g²·score = −½β(x − ε̂/σ), shape (B, ...)."""
        beta = self._beta(t, x_t)
        return -0.5 * beta * (x_t + self.to_score(x_t, t, output))

    def sde_drift(self, x_t: Tensor, t: Tensor, output: Tensor) -> Tensor:
        """Drift of the reverse SDE, f − g²·score = −½βx − β·score, shape (B, ...)."""
        beta = self._beta(t, x_t)
        return -0.5 * beta * x_t - beta * self.to_score(x_t, t, output)

    def _h(self, t: Tensor, s: Tensor, x: Tensor) -> Tensor:
        """The positive step size t − s shaped (B, 1, ..., 1) (time runs backwards)."""
        return (t - s).to(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))

    def _step(self, x_t: Tensor, t: Tensor, s: Tensor, output: Tensor, generator, method: str) -> Tensor:
        """One reverse step t → s < t; deterministic for ``"ode-euler"``, noise from ``generator`` otherwise."""
        h = self._h(t, s, x_t)
        if method == "ode-euler":
            return x_t - h * self.ode_drift(x_t, t, output)
        noise = randn(x_t.shape, generator, x_t.device, x_t.dtype)
        if method == "euler-maruyama":
            beta = self._beta(t, x_t)
            return x_t - h * self.sde_drift(x_t, t, output) + (beta * h).sqrt() * noise
        # DDPM: exact posterior q(x_s | x_t, x0 = x̂0) of the VP process.
        a_t, sig_t = self.levels(t, x_t)
        a_s, sig_s = self.levels(s, x_t)
        x0 = self.to_x0(x_t, t, output)
        a_ts = a_t / a_s.clamp_min(self.min_level)  # α_{t|s}
        var_t = sig_t**2
        var_ts = (var_t - a_ts**2 * sig_s**2).clamp_min(0)  # σ²_{t|s}
        # 1/σ_t² exactly (no floor: σ_t² < min_level² at a tiny t must not shrink the mean towards 0). Where σ_t is 0
        # (t = 0, or α(t) rounding to 1), σ_s is 0 too: the step goes to x̂₀, or stays at x_t if it is a zero step.
        pos = var_t > 0
        stay = (s >= t).to(var_t.dtype).reshape(var_t.shape)
        inv_var_t = torch.where(pos, 1 / var_t.clamp_min(torch.finfo(var_t.dtype).tiny), torch.zeros_like(var_t))
        w_xt = torch.where(pos, a_ts * sig_s**2 * inv_var_t, stay)
        w_x0 = torch.where(pos, a_s * var_ts * inv_var_t, (1 - stay) * a_s)
        mean = w_xt * x_t + w_x0 * x0
        std = (var_ts * sig_s**2 * inv_var_t).sqrt()
        return mean + std * noise

    def predict(self, x_t: Tensor, t: Tensor, s: Tensor, output: Tensor, method: str = "ode-heun") -> Tensor:
        """Heun's predictor: the Euler step of the probability-flow ODE from t to s, shape (B, ...)."""
        return x_t - self._h(t, s, x_t) * self.ode_drift(x_t, t, output)

    def correct(
        self,
        x_t: Tensor,
        x_pred: Tensor,
        t: Tensor,
        s: Tensor,
        output_t: Tensor,
        output_s: Tensor,
        method: str = "ode-heun",
    ) -> Tensor:
        """Heun's corrector: x_t − (t − s)·½(drift(x_t, t) + drift(x_pred, s)), shape (B, ...)."""
        d_t = self.ode_drift(x_t, t, output_t)
        d_s = self.ode_drift(x_pred, s, output_s)
        return x_t - self._h(t, s, x_t) * 0.5 * (d_t + d_s)

    def _denoise(self, x_t: Tensor, t: Tensor, output: Tensor, generator, mode: str) -> Tensor:
        """The final clean sample: x̂₀ = E[x₀ | x_t] from the network output (Tweedie), shape (B, ...)."""
        return self.to_x0(x_t, t, output)
