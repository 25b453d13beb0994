r"""A two-modality toy with exact answers: a 2D point and its discrete label (the mixture component it came from).

The joint law is p(x, y) = w_y N(x; μ_y, Σ_y) with K = 8 components, some of which overlap, so that the label is
not a deterministic function of the point. Every quantity a joint model should reproduce is exact:

* point → label: the Bayes posterior p(y | x) = w_y N_y(x) / Σ_k w_k N_k(x), the Bayes classifier argmax_y p(y | x)
  and its accuracy E_x[max_y p(y | x)] (numerical integration on a fine grid, cross-checked by Monte Carlo), and
  the accuracy of *drawing* y ~ p(y | x) instead of taking the argmax, E_x[Σ_y p(y | x)²];
* label → point: the conditional p(x | y) = N(μ_y, Σ_y) as a :class:`~diffuse_edu.data.toys.GaussianMixture` (with
  exact score at every t), and the share of its mass inside the Bayes region {x : argmax p(· | x) = y};
* joint: the label marginal w and the coherence rate of the true joint (= the Bayes accuracy).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import check_float_tensor, check_index_tensor, check_positive_int, check_time
from .toys import GaussianMixture

__all__ = ["LabeledMixture", "default_labeled_mixture"]

_F64 = torch.float64


def _rotated_cov(sx: float, sy: float, angle: float) -> Tensor:
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c, -s], [s, c]], dtype=_F64)
    return rot @ torch.diag(torch.tensor([sx * sx, sy * sy], dtype=_F64)) @ rot.T


class LabeledMixture:
    """Points x ∈ R^D labelled by their Gaussian component y ∈ {0, …, K−1}; all Bayes quantities exact.

    Args:
        means: shape (K, D).
        covs: shape (K, D, D), symmetric positive definite.
        weights: shape (K,), positive (normalised here); the label marginal.
    """

    def __init__(self, means, covs, weights):
        self.mixture = GaussianMixture(means, covs=covs, weights=weights)
        self.means, self.covs, self.weights = self.mixture.means, self.mixture.covs, self.mixture.weights
        self._parts = [
            GaussianMixture(self.means[k : k + 1], covs=self.covs[k : k + 1]) for k in range(self.num_classes)
        ]
        # Precisions and log-normalisers for a fast closed-form log N_y(x) (checked against GaussianMixture in tests).
        self._prec = torch.linalg.inv(self.covs)  # (K, D, D)
        self._log_norm = -0.5 * (torch.logdet(self.covs) + self.dim * math.log(2 * math.pi))  # (K,)
        self._cache: dict[str, object] = {}

    @property
    def num_classes(self) -> int:
        """K, the number of labels."""
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        """D, the dimension of the points."""
        return self.means.shape[1]

    def __repr__(self) -> str:
        return f"LabeledMixture(K={self.num_classes}, D={self.dim})"

    # -- sampling -----------------------------------------------------------------------------------------------------

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw (points, labels) from the joint: points shape (n, D) float32, labels shape (n,) long."""
        points, labels = self.mixture.sample(n, generator, return_labels=True)
        return points, labels.long()

    def sample_dict(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The same draw as a joint-model batch: ``{"point": (n, D), "label": (n, 1)}``."""
        points, labels = self.sample(n, generator)
        return {"point": points, "label": labels[:, None]}

    def conditional(self, label: int) -> GaussianMixture:
        """p(x | y = label) = N(μ_y, Σ_y), a one-component mixture with exact diffused score at every t."""
        return self._parts[self._label(label)]

    def _label(self, label) -> int:
        if isinstance(label, Tensor):
            if label.numel() != 1 or label.is_floating_point() or label.dtype == torch.bool:
                raise ValueError(f"label must be one integer id in [0, {self.num_classes}); got {label!r}.")
            label = int(label.item())
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < self.num_classes:
            raise ValueError(f"label must be an int in [0, {self.num_classes}); got {label!r}.")
        return label

    # -- point → label ------------------------------------------------------------------------------------------------

    def log_joint(self, points: Tensor) -> Tensor:
        """log w_y + log N(x; μ_y, Σ_y) for every label, shape (n, K), float64; ``points`` shape (n, D)."""
        check_float_tensor(points, "points", min_ndim=2)
        if points.ndim != 2 or points.shape[1] != self.dim:
            raise ValueError(f"points must have shape (n, {self.dim}); got {tuple(points.shape)}.")
        diff = points.to("cpu", _F64)[:, None, :] - self.means[None]  # (n, K, D)
        maha = torch.einsum("nkd,kde,nke->nk", diff, self._prec, diff)
        return self.weights.log()[None] + self._log_norm[None] - 0.5 * maha

    def bayes_posterior(self, points: Tensor) -> Tensor:
        """p(y | x) for every label, shape (n, K), float64; rows sum to 1."""
        return torch.softmax(self.log_joint(points), dim=1)

    def bayes_label(self, points: Tensor) -> Tensor:
        """The Bayes classifier argmax_y p(y | x), shape (n,), long."""
        return self.log_joint(points).argmax(1)

    def _grid(self, cells: int):
        """Midpoint grid covering every component to ±9 standard deviations: points (cells², D=2), cell area.

        ``cells`` ≥ 100 per side: coarser grids give probabilities above 1 (e.g. 1.13 at 10 cells).
        """
        check_positive_int(cells, "cells", minimum=100)
        if self.dim != 2:
            raise ValueError("numerical integration is implemented for D = 2; use the *_mc variants.")
        key = f"grid{cells}"
        if key not in self._cache:
            spread = 9 * self.covs.diagonal(dim1=1, dim2=2).max().sqrt().item()
            lo = (self.means.min(0).values - spread).tolist()
            hi = (self.means.max(0).values + spread).tolist()
            hx, hy = (hi[0] - lo[0]) / cells, (hi[1] - lo[1]) / cells
            gx = lo[0] + hx * (torch.arange(cells, dtype=_F64) + 0.5)
            gy = lo[1] + hy * (torch.arange(cells, dtype=_F64) + 0.5)
            xx, yy = torch.meshgrid(gx, gy, indexing="ij")
            pts = torch.stack([xx.flatten(), yy.flatten()], 1)
            joint = self.log_joint(pts).exp()  # (cells², K): w_y N_y(x)
            self._cache[key] = (joint, hx * hy)
        return self._cache[key]

    def bayes_accuracy(self, cells: int = 400) -> float:
        """Accuracy of the Bayes classifier, ∫ max_y w_y N_y(x) dx, by the midpoint rule (error ~1e-5 by default)."""
        joint, area = self._grid(cells)
        return (joint.max(1).values.sum() * area).item()

    def bayes_accuracy_mc(self, n: int = 200_000, generator: torch.Generator | None = None) -> tuple[float, float]:
        """Monte-Carlo Bayes accuracy with its standard error √(p(1 − p)/n)."""
        points, labels = self.sample(n, generator)
        p = (self.bayes_label(points) == labels).double().mean().item()
        return p, math.sqrt(p * (1 - p) / n)

    def posterior_sampling_accuracy(self, cells: int = 400) -> float:
        """Accuracy when the label is *drawn* from p(y | x), as a sampler does: E_x[Σ_y p(y | x)²]."""
        joint, area = self._grid(cells)
        post = joint / joint.sum(1, keepdim=True).clamp_min(1e-300)
        return ((post * joint).sum() * area).item()

    # -- label → point ------------------------------------------------------------------------------------------------

    def region_share(self, points: Tensor, labels: Tensor) -> float:
        """Share of points whose Bayes label equals the given label (points (n, D), labels (n,) or scalar); n ≥ 1."""
        check_float_tensor(points, "points", min_ndim=2)
        if points.shape[0] == 0:
            raise ValueError("points is empty; a share needs at least one point.")
        if not isinstance(labels, (Tensor, int)) or isinstance(labels, bool):
            raise TypeError(f"labels must be an int or an integer tensor; got {type(labels).__name__}.")
        labels = torch.as_tensor(labels)
        if labels.ndim == 0:
            labels = labels.expand(points.shape[0])
        check_index_tensor(labels, "labels", self.num_classes)
        if labels.shape != (points.shape[0],):
            raise ValueError(f"labels must have shape ({points.shape[0]},); got {tuple(labels.shape)}.")
        return (self.bayes_label(points) == labels.to(points.device).cpu()).double().mean().item()

    def exact_region_share(self, label: int | None = None, cells: int = 400) -> float:
        """P(argmax p(· | X) = y | Y = y): what the exact conditional achieves in :meth:`region_share`.

        With ``label=None``, the label-averaged value Σ_y w_y · share_y (= the Bayes accuracy).
        """
        shares = self.exact_region_shares(cells)
        if label is None:
            return (self.weights * shares).sum().item()
        return shares[self._label(label)].item()

    # -- the exact joint denoiser -------------------------------------------------------------------------------------

    def exact_joint_model(self, point_process, mask_id: int, point: str = "point", label: str = "label"):
        r"""The exact joint network ``net(xs, ts) -> dict`` for a Gaussian point and a masked label, at any two times.

        Under the VP process x_t | y ~ N(α μ_y, α²Σ_y + σ²I), and masking is independent of the label, so:

        * point output: if the label token is revealed, the exact ε̂ of component y alone; if it is masked, that of the
          whole mixture (responsibilities ∝ w_y N(x_t; αμ_y, α²Σ_y + σ²I)). Converted to ``point_process.prediction``.
        * label logits (B, 1, K): log w_y + log N(x_t; αμ_y, α²Σ_y + σ²I), whatever the label's time (a masked token
          carries no information). At point time 0 this is the Bayes posterior.

        This is the best any joint network can do: run through the samplers it measures their error alone.

        Args:
            point_process: the :class:`~diffuse_edu.gaussian.GaussianProcess` of the point (schedule, prediction).
            mask_id: the label process's mask id (``MaskedProcess.mask_id``).
        """
        if not (hasattr(point_process, "schedule") and hasattr(point_process, "convert")):
            raise TypeError(f"point_process must be a GaussianProcess; got {type(point_process).__name__}.")
        check_positive_int(mask_id, "mask_id", minimum=self.num_classes)
        sched = point_process.schedule
        eye = torch.eye(self.dim, dtype=_F64)

        def check(xs, ts):
            for what, d in (("xs", xs), ("ts", ts)):
                if not isinstance(d, dict) or point not in d or label not in d:
                    got = sorted(d) if isinstance(d, dict) else type(d).__name__
                    raise ValueError(f"{what} must be a dict holding {point!r} and {label!r}; got {got}.")
            check_float_tensor(xs[point], f"xs[{point!r}]", min_ndim=2)
            if xs[point].ndim != 2 or xs[point].shape[1] != self.dim:
                raise ValueError(f"xs[{point!r}] must have shape (B, {self.dim}); got {tuple(xs[point].shape)}.")
            B = xs[point].shape[0]
            tok = check_index_tensor(xs[label], f"xs[{label!r}]", mask_id + 1)
            if tuple(tok.shape) != (B, 1):
                raise ValueError(f"xs[{label!r}] must have shape ({B}, 1); got {tuple(tok.shape)}.")
            bad = (tok != mask_id) & (tok >= self.num_classes)
            if bad.any():
                raise ValueError(f"xs[{label!r}] holds ids outside [0, {self.num_classes}) that are not the mask id.")
            return check_time(ts[point], batch=B, name=f"ts[{point!r}]")

        def net(xs: dict, ts: dict) -> dict:
            t = check(xs, ts).to(xs[point].device)
            x, tok = xs[point], xs[label].reshape(-1)
            x64 = x.detach().to("cpu", _F64)
            a = sched.alpha(t.detach().to("cpu", _F64))[:, None, None, None]  # (B, 1, 1, 1)
            s = sched.sigma(t.detach().to("cpu", _F64))[:, None, None, None]
            cov = a * a * self.covs[None] + s * s * eye  # (B, K, D, D)
            diff = x64[:, None, :] - a[..., 0] * self.means[None]  # (B, K, D)
            sol = torch.linalg.solve(cov, diff.unsqueeze(-1)).squeeze(-1)  # C⁻¹(x − αμ)
            log_n = -0.5 * ((diff * sol).sum(-1) + torch.logdet(cov) + self.dim * math.log(2 * math.pi))
            log_joint = self.weights.log()[None] + log_n  # (B, K)
            revealed = (tok != mask_id).cpu()
            onehot_log = torch.full_like(log_joint, -math.inf)
            onehot_log[revealed, tok.cpu()[revealed]] = 0.0
            resp = torch.softmax(torch.where(revealed[:, None], onehot_log, log_joint), dim=1)  # (B, K)
            eps = s[:, 0, 0] * (resp[..., None] * sol).sum(1)  # ε̂ = −σ · score
            eps = eps.to(device=x.device, dtype=x.dtype)
            out = point_process.convert(eps, x, t, to=point_process.prediction, src="eps")
            logits = log_joint[:, None, :].to(device=x.device, dtype=x.dtype)  # (B, 1, K)
            return {point: out, label: logits}

        return net

    def exact_region_shares(self, cells: int = 400) -> Tensor:
        """:meth:`exact_region_share` for every label, shape (K,), float64: ∫_{R_y} N_y(x) dx."""
        joint, area = self._grid(cells)
        # mass of each component y inside its own Bayes region R_y, divided by w_y
        own = joint.gather(1, joint.argmax(1, keepdim=True))[:, 0]  # (cells²,) = w_win N_win(x)
        mass = torch.zeros(self.num_classes, dtype=_F64).index_add_(0, joint.argmax(1), own)
        return mass * area / self.weights


def default_labeled_mixture() -> LabeledMixture:
    """The notebook-3 toy: 8 labelled components in 2D with unequal weights.

    Six components sit on a ring and are nearly separable; two pairs overlap (components 1/2 and 5/6 share much of
    their mass) and one elongated component (7) crosses the middle, so the Bayes posterior is far from one-hot in
    places. Data scale about ±3, so the VP prior N(0, I) is a reasonable start.
    """
    means = [
        [-2.2, 1.8],  # 0
        [0.3, 2.4],  # 1  overlaps 2
        [1.3, 1.9],  # 2
        [2.5, -0.3],  # 3
        [0.9, -2.3],  # 4
        [-1.3, -2.0],  # 5  overlaps 6
        [-2.3, -1.0],  # 6
        [0.0, 0.1],  # 7  elongated, in the middle
    ]
    covs = torch.stack(
        [
            _rotated_cov(0.45, 0.45, 0.0),
            _rotated_cov(0.55, 0.35, 0.3),
            _rotated_cov(0.45, 0.45, 0.0),
            _rotated_cov(0.5, 0.3, 1.2),
            _rotated_cov(0.4, 0.4, 0.0),
            _rotated_cov(0.5, 0.4, 0.6),
            _rotated_cov(0.45, 0.45, 0.0),
            _rotated_cov(0.9, 0.3, 0.8),
        ]
    )
    weights = [0.16, 0.12, 0.14, 0.12, 0.10, 0.12, 0.10, 0.14]
    return LabeledMixture(means, covs, weights)
