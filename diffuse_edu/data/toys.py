r"""Toy data with known answers: Gaussian mixtures whose diffused density and score are exact at every t.

Under the VP process x_t = α x₀ + σ ε, a mixture Σ_k w_k N(μ_k, Σ_k) stays a mixture:
p_t = Σ_k w_k N(α μ_k, α² Σ_k + σ² I). Its score and its posterior mean E[x₀ | x_t] (Tweedie) are then closed-form,
which gives :meth:`GaussianMixture.exact_model` — the best any network can do, i.e. the floor every learned model is
measured against. Computations run in float64 in the eigenbasis of each Σ_k, where α²Σ_k + σ²I is diagonal.

Also two non-Gaussian 2D samplers (two moons, spiral) without a closed form. Every sampler takes a
``torch.Generator`` so seeded draws are reproducible. Every generator refuses ``n < 1`` (an empty sample is never what
a caller meant); the exact quantities accept an empty batch of points and return empty results.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .._checks import check_float_tensor, check_generator, check_number, check_positive_int, check_time
from ..schedules import Schedule

__all__ = ["GaussianMixture", "ring_mixture", "grid_mixture", "two_moons", "spiral"]

_F64 = torch.float64


def _as_f64(value, name: str) -> Tensor:
    try:
        out = torch.as_tensor(value, dtype=_F64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a tensor or nested list of numbers; got {value!r:.60}.") from None
    if not torch.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return out


def _check_dtype(dtype) -> None:
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be None or a floating torch.dtype; got {dtype!r}.")


def _check_schedule(schedule) -> None:
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a diffuse_edu Schedule; got {type(schedule).__name__}.")


def _randn(shape, generator, dtype=_F64) -> Tensor:
    return torch.randn(shape, generator=generator, dtype=dtype, device=generator.device if generator else None).cpu()


def _rand(shape, generator, dtype=_F64) -> Tensor:
    return torch.rand(shape, generator=generator, dtype=dtype, device=generator.device if generator else None).cpu()


class GaussianMixture:
    r"""A mixture Σ_k w_k N(μ_k, Σ_k) in any dimension D, with exact diffused quantities under any schedule.

    Args:
        means: component means, shape (K, D).
        stds: isotropic or diagonal standard deviations: a float, shape (K,) or shape (K, D).
        covs: full covariances, shape (K, D, D), symmetric positive definite (instead of ``stds``).
        weights: mixture weights, shape (K,), positive (normalised here); default uniform.
    """

    def __init__(self, means, stds=None, covs=None, weights=None):
        means = _as_f64(means, "means")
        if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ValueError(f"means must have shape (K, D) with K, D >= 1; got {tuple(means.shape)}.")
        k, d = means.shape
        if stds is not None and covs is not None:
            raise ValueError("give either stds (isotropic/diagonal) or covs (full), not both.")
        if covs is None:
            stds = _as_f64(1.0 if stds is None else stds, "stds")
            try:
                stds = stds.reshape(-1, 1).expand(k, d) if stds.ndim <= 1 else stds.expand(k, d)
            except RuntimeError:
                raise ValueError(
                    f"stds must be a float, shape ({k},) or ({k}, {d}); got {tuple(stds.shape)}."
                ) from None
            if not (stds > 0).all():
                raise ValueError("stds must be positive.")
            lam, vecs = stds.pow(2).clone(), torch.eye(d, dtype=_F64).expand(k, d, d).clone()
        else:
            covs = _as_f64(covs, "covs")
            if covs.shape != (k, d, d):
                raise ValueError(f"covs must have shape ({k}, {d}, {d}); got {tuple(covs.shape)}.")
            if not torch.allclose(covs, covs.transpose(1, 2)):
                raise ValueError("covs must be symmetric.")
            lam, vecs = torch.linalg.eigh(covs)
            if not (lam > 0).all():
                raise ValueError("covs must be positive definite.")
        w = torch.full((k,), 1.0 / k, dtype=_F64) if weights is None else _as_f64(weights, "weights")
        if w.shape != (k,) or not (w > 0).all():
            raise ValueError(f"weights must be {k} positive numbers; got {w}.")
        self.means, self.weights = means, w / w.sum()
        self.eigvals, self.eigvecs = lam, vecs  # Σ_k = U_k diag(λ_k) U_kᵀ; (K, D), (K, D, D)
        self._diagonal = covs is None  # U_k = I: skip the basis changes

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def covs(self) -> Tensor:
        """Component covariances, shape (K, D, D)."""
        return self.eigvecs @ torch.diag_embed(self.eigvals) @ self.eigvecs.transpose(1, 2)

    @property
    def mean(self) -> Tensor:
        """Mixture mean Σ w_k μ_k, shape (D,)."""
        return self.weights @ self.means

    @property
    def covariance(self) -> Tensor:
        """Mixture covariance Σ w_k (Σ_k + μ_k μ_kᵀ) − m mᵀ, shape (D, D)."""
        m = self.mean
        second = torch.einsum("k,kij->ij", self.weights, self.covs + self.means[:, :, None] * self.means[:, None, :])
        return second - torch.outer(m, m)

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.n_components}, D={self.dim})"

    # -- sampling -----------------------------------------------------------------------------------------------------

    def sample(self, n: int, generator: torch.Generator | None = None, return_labels: bool = False, dtype=None):
        """Draw ``n`` points, shape (n, D) (and their component labels, shape (n,), if ``return_labels``)."""
        check_positive_int(n, "n")
        check_generator(generator)
        _check_dtype(dtype)
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = _randn((n, self.dim), generator)
        # x = μ_k + U_k diag(√λ_k) z
        x = self.means[labels] + torch.einsum("nde,ne->nd", self.eigvecs[labels], self.eigvals[labels].sqrt() * z)
        x = x.to(dtype or torch.get_default_dtype())
        return (x, labels) if return_labels else x

    # -- exact diffused quantities ------------------------------------------------------------------------------------

    def _parts(self, x: Tensor, a: Tensor, s: Tensor):
        """Per-component pieces at levels a, s (shape (N,)): log r (N, K), C⁻¹(x − aμ) (N, K, D), z/var, var."""
        diff = x[:, None, :] - a[:, None, None] * self.means[None]  # (N, K, D)
        z = diff if self._diagonal else torch.einsum("nkd,kde->nke", diff, self.eigvecs)  # eigen-coordinates
        var = a[:, None, None] ** 2 * self.eigvals[None] + s[:, None, None] ** 2  # (N, K, D)
        log_n = -0.5 * (z * z / var + var.log() + math.log(2 * math.pi)).sum(-1)  # (N, K)
        log_joint = self.weights.log()[None] + log_n
        zv = z / var
        prec_diff = zv if self._diagonal else torch.einsum("nke,kde->nkd", zv, self.eigvecs)  # C_k⁻¹ (x − a μ_k)
        return log_joint, prec_diff, zv

    def _to_data_basis(self, z: Tensor) -> Tensor:
        return z if self._diagonal else torch.einsum("nke,kde->nkd", z, self.eigvecs)

    def _prep(self, x: Tensor, t, schedule: Schedule | None, allow_none: bool = False):
        if schedule is not None or not allow_none:
            _check_schedule(schedule)
        check_float_tensor(x, "x", min_ndim=2)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (N, {self.dim}); got {tuple(x.shape)}.")
        x64 = x.to("cpu", _F64)  # keeps the autograd graph, so tests can differentiate log_prob_t
        if schedule is None:  # t = 0: the data distribution
            ones = torch.ones(x.shape[0], dtype=_F64)
            return x64, ones, torch.zeros_like(ones)
        t = check_time(t, batch=x.shape[0]).to("cpu", _F64)
        return x64, schedule.alpha(t), schedule.sigma(t)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p₀(x) of the data, shape (N,) in float64; ``x`` shape (N, D)."""
        return self.log_prob_t(x, None, None)

    def log_prob_t(self, x: Tensor, t, schedule: Schedule | None) -> Tensor:
        """log p_t(x) = log Σ_k w_k N(x; α μ_k, α²Σ_k + σ²I), shape (N,) float64; ``t`` float or shape (N,).

        ``schedule=None`` means t = 0 (the data density, :meth:`log_prob`)."""
        x64, a, s = self._prep(x, t, schedule, allow_none=True)
        return torch.logsumexp(self._parts(x64, a, s)[0], dim=1)

    def posterior_component(self, x: Tensor, t, schedule: Schedule) -> Tensor:
        """Responsibilities P(component k | x_t = x), shape (N, K) float64."""
        x64, a, s = self._prep(x, t, schedule)
        return torch.softmax(self._parts(x64, a, s)[0], dim=1)

    def score(self, x: Tensor, t, schedule: Schedule) -> Tensor:
        """∇ₓ log p_t(x) = −Σ_k r_k (α²Σ_k + σ²I)⁻¹(x − αμ_k), shape (N, D) float64."""
        x64, a, s = self._prep(x, t, schedule)
        log_joint, prec_diff, _ = self._parts(x64, a, s)
        return -(torch.softmax(log_joint, 1)[..., None] * prec_diff).sum(1)

    def posterior_mean(self, x: Tensor, t, schedule: Schedule) -> Tensor:
        """E[x₀ | x_t = x] = Σ_k r_k (μ_k + αΣ_k(α²Σ_k + σ²I)⁻¹(x − αμ_k)), shape (N, D) float64.

        Gaussian conditioning per component, so it stays exact where α = 0 (it gives the data mean there).
        """
        x64, a, s = self._prep(x, t, schedule)
        log_joint, _, zv = self._parts(x64, a, s)
        gain = self._to_data_basis(a[:, None, None] * self.eigvals[None] * zv)
        return (torch.softmax(log_joint, 1)[..., None] * (self.means[None] + gain)).sum(1)

    def at_time(self, t: float, schedule: Schedule) -> "GaussianMixture":
        """The diffused marginal p_t as a mixture (scalar ``t``): means αμ_k, covariances α²Σ_k + σ²I."""
        _check_schedule(schedule)
        tt = check_time(t).to(_F64)
        if tt.ndim != 0:
            raise ValueError(f"t must be a single time (a number or a 0-d tensor); got shape {tuple(tt.shape)}.")
        a, s = schedule.alpha(tt).item(), schedule.sigma(tt).item()
        return GaussianMixture(
            a * self.means, covs=a * a * self.covs + s * s * torch.eye(self.dim, dtype=_F64), weights=self.weights
        )

    def exact_model(self, schedule: Schedule, prediction: str = "eps") -> Callable[[Tensor, Tensor], Tensor]:
        """The exact denoiser ``model(x, t)`` for this mixture: outputs ε̂ = −σ·score, x̂₀ (Tweedie) or v̂ = αε̂ − σx̂₀.

        x shape (N, D), t shape (N,); the output has x's shape, dtype and device.
        """
        _check_schedule(schedule)
        if not isinstance(prediction, str) or prediction not in ("eps", "x0", "v"):
            raise ValueError(f"prediction must be 'eps', 'x0' or 'v'; got {prediction!r}.")

        def model(x: Tensor, t: Tensor) -> Tensor:
            x64, a, s = self._prep(x, t, schedule)
            log_joint, prec_diff, zv = self._parts(x64, a, s)
            r = torch.softmax(log_joint, 1)[..., None]  # (N, K, 1)
            eps = s[:, None] * (r * prec_diff).sum(1)  # −σ · score
            gain = self._to_data_basis(a[:, None, None] * self.eigvals[None] * zv)
            x0 = (r * (self.means[None] + gain)).sum(1)
            out = {"eps": eps, "x0": x0, "v": a[:, None] * eps - s[:, None] * x0}[prediction]
            return out.to(dtype=x.dtype, device=x.device)

        return model


def ring_mixture(k: int = 8, radius: float = 2.0, std: float = 0.2, weights=None) -> GaussianMixture:
    """``k`` isotropic components of standard deviation ``std`` evenly spaced on a circle of ``radius`` (2D)."""
    check_positive_int(k, "k")
    radius = check_number(radius, "radius", 0.0)
    check_number(std, "std", 0.0, strict_low=True)
    angle = torch.arange(k, dtype=_F64) * 2 * math.pi / k
    means = radius * torch.stack([angle.cos(), angle.sin()], 1)
    return GaussianMixture(means, stds=std, weights=weights)


def grid_mixture(side: int = 3, spacing: float = 1.5, std: float = 0.15, weights=None) -> GaussianMixture:
    """``side × side`` isotropic components on a square grid centred at 0, ``spacing`` apart (2D)."""
    check_positive_int(side, "side")
    spacing = check_number(spacing, "spacing", 0.0, strict_low=True)
    check_number(std, "std", 0.0, strict_low=True)
    ticks = (torch.arange(side, dtype=_F64) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return GaussianMixture(torch.stack([gx.flatten(), gy.flatten()], 1), stds=std, weights=weights)


def two_moons(n: int, generator: torch.Generator | None = None, noise: float = 0.08, dtype=None) -> Tensor:
    """Two interleaved half circles (centred, scaled to roughly unit variance) plus Gaussian noise; shape (n, 2)."""
    _check_sampler_args(n, generator, noise, dtype)
    upper = _rand((n,), generator) < 0.5
    theta = _rand((n,), generator) * math.pi
    x = torch.where(upper, theta.cos(), 1 - theta.cos())
    y = torch.where(upper, theta.sin(), 0.5 - theta.sin())
    pts = torch.stack([x - 0.5, y - 0.25], 1) * 1.6 + noise * _randn((n, 2), generator)
    return pts.to(dtype or torch.get_default_dtype())


def spiral(
    n: int, generator: torch.Generator | None = None, noise: float = 0.05, turns: float = 1.5, dtype=None
) -> Tensor:
    """An Archimedean spiral r ∝ angle with ``turns`` turns, radius up to 2, plus Gaussian noise; shape (n, 2)."""
    _check_sampler_args(n, generator, noise, dtype)
    check_number(turns, "turns", 0.0, strict_low=True)
    u = _rand((n,), generator).sqrt()  # √U: uniform along the (area-growing) spiral arms
    angle = u * turns * 2 * math.pi
    r = 2 * u
    pts = torch.stack([r * angle.cos(), r * angle.sin()], 1) + noise * _randn((n, 2), generator)
    return pts.to(dtype or torch.get_default_dtype())


def _check_sampler_args(n, generator, noise, dtype) -> None:
    check_positive_int(n, "n")
    check_generator(generator)
    check_number(noise, "noise", 0.0)
    _check_dtype(dtype)
