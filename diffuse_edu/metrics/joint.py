r"""Scores for a joint (point, label) model, computed from its samples and the exact answers of the data.

Everything here is a pure function of tensors: the samples a sampler drew, and reference samples or exact values a
data set supplies (e.g. :class:`~diffuse_edu.data.labeled_mixture.LabeledMixture`). Drawing the samples is the
recipe's job (:mod:`diffuse_edu.recipes.toy_joint`). Three tasks, each next to its exact reference or noise floor:

* **point → label** (:func:`score_point_to_label`): labels predicted (argmax, one call) and drawn (a sampler) for
  points of the true joint, against the true labels and the Bayes classifier's on the same points.
* **label → point** (:func:`score_label_to_point`): the share of points in their label's Bayes region, the sliced
  Wasserstein distance to exact conditional samples (noise floor: two exact samples), and the spread ratio
  √tr Cov(generated) / √tr Cov(exact), averaged over labels (1 = right diversity, < 1 = collapsed, as strong guidance
  does).
* **joint** (:func:`score_joint`): total variation of the label marginal (noise floor: an exact sample of the same
  size, :func:`label_tv_floor`), coherence = share of samples whose label is the Bayes label of their point (the true
  joint has the Bayes accuracy), and the sliced Wasserstein distance of the points to data points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from .._checks import (
    check_float_tensor,
    check_generator,
    check_index_tensor,
    check_number,
    check_positive_int,
    check_probability,
    check_probs_tensor,
)
from .distances import sliced_wasserstein

__all__ = [
    "accuracy",
    "label_marginal_tv",
    "label_tv_floor",
    "coherence",
    "spread_ratio",
    "PointToLabel",
    "LabelToPoint",
    "JointSampleQuality",
    "score_point_to_label",
    "score_label_to_point",
    "score_joint",
]


def _labels(x, name: str) -> Tensor:
    """A non-empty tensor of integer labels (any shape)."""
    check_index_tensor(x, name, torch.iinfo(torch.long).max, min_ndim=0)
    if x.numel() == 0:
        raise ValueError(f"{name} is empty; a score needs at least one label.")
    if (x < 0).any():
        raise ValueError(f"{name} holds negative labels (min {x.min().item()}); expected ids >= 0.")
    return x


def _points(x, name: str, dim: int | None = None, min_rows: int = 1) -> Tensor:
    """Finite float points (N, D) with N >= ``min_rows`` (and D = ``dim``), as a float64 CPU tensor."""
    check_float_tensor(x, name, min_ndim=2)
    if x.ndim != 2 or x.shape[0] < min_rows or (dim is not None and x.shape[1] != dim):
        want = f"(N, {dim if dim is not None else 'D'}) with N >= {min_rows}"
        raise ValueError(f"{name} must have shape {want}; got {tuple(x.shape)}.")
    return x.detach().double().cpu()


def _nfe(nfe) -> int:
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 0:
        raise ValueError(f"nfe must be a non-negative int (network calls); got {nfe!r}.")
    return nfe


def accuracy(pred: Tensor, true: Tensor) -> float:
    """Share of equal entries of two label tensors of the same shape."""
    _labels(pred, "pred")
    _labels(true, "true")
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same shape; got {tuple(pred.shape)} and {tuple(true.shape)}.")
    return (pred.cpu() == true.cpu()).double().mean().item()


def label_marginal_tv(labels: Tensor, weights: Tensor) -> float:
    """Total variation ½ Σ_y |p̂(y) − w_y| between the labels' empirical law and ``weights`` (shape (K,))."""
    check_probs_tensor(weights, "weights")
    if weights.ndim != 1:
        raise ValueError(f"weights must have shape (K,); got {tuple(weights.shape)}.")
    k = weights.numel()
    labels = check_index_tensor(_labels(labels, "labels").reshape(-1).cpu(), "labels", k)
    freq = torch.bincount(labels, minlength=k).double() / labels.numel()
    return 0.5 * (freq - weights.double().cpu()).abs().sum().item()


def label_tv_floor(
    weights: Tensor, n: int, repeats: int = 20, generator: torch.Generator | None = None
) -> tuple[float, float]:
    """Mean and std of :func:`label_marginal_tv` for ``n`` exact labels (the noise floor at this sample size)."""
    check_probs_tensor(weights, "weights")
    if weights.ndim != 1:
        raise ValueError(f"weights must have shape (K,); got {tuple(weights.shape)}.")
    check_positive_int(n, "n")
    check_positive_int(repeats, "repeats", minimum=2)  # a standard deviation needs two draws
    check_generator(generator)
    vals = []
    for _ in range(repeats):
        lab = torch.multinomial(weights.double().cpu(), n, replacement=True, generator=generator)
        vals.append(label_marginal_tv(lab, weights))
    v = torch.tensor(vals, dtype=torch.float64)
    return v.mean().item(), v.std().item()


def coherence(labels: Tensor, bayes_labels: Tensor) -> float:
    """Share of (point, label) samples whose label is the Bayes label of their point; the true joint gives the Bayes
    accuracy. ``labels`` and ``bayes_labels`` (the Bayes classifier applied to the sampled points) shape (N,)."""
    return accuracy(_labels(labels, "labels").reshape(-1), _labels(bayes_labels, "bayes_labels").reshape(-1))


def spread_ratio(points: Tensor, reference: Tensor) -> float:
    """√tr Cov(points) / √tr Cov(reference): 1 when the spread matches, < 1 when samples collapse."""

    def spread(x: Tensor) -> float:
        return (x - x.mean(0)).pow(2).sum(1).mean().sqrt().item()

    points = _points(points, "points")
    reference = _points(reference, "reference", points.shape[1], min_rows=2)
    ref = spread(reference)
    if ref == 0:
        raise ValueError("reference has no spread (all its points are equal): the ratio is undefined.")
    return spread(points) / ref


@dataclass
class PointToLabel:
    """point → label results on ``n`` points drawn from the true joint.

    Attributes:
        classify_accuracy: argmax of the model's label logits at label time 1 (one call per point).
        bayes_accuracy_same_points: the Bayes classifier on the same points (paired comparison).
        bayes_accuracy: exact Bayes accuracy.
        sampled_accuracy: labels drawn by the sampler.
        posterior_sampling_accuracy: exact E[Σ_y p(y | x)²], what exact posterior draws achieve.
        agreement_with_bayes: share of points where the model's argmax equals the Bayes label.
        se: Monte-Carlo standard error of an accuracy at this n, √(p(1 − p)/n).
        n, nfe: sample size; network calls of the sampling run.
    """

    classify_accuracy: float
    bayes_accuracy_same_points: float
    bayes_accuracy: float
    sampled_accuracy: float
    posterior_sampling_accuracy: float
    agreement_with_bayes: float
    se: float
    n: int
    nfe: int


@dataclass
class LabelToPoint:
    """label → point results for ``n_per_label`` points per label.

    Attributes:
        region_share: share of generated points in their label's Bayes region, mean over labels.
        exact_region_share: the same for the exact conditional (mean over labels).
        sw: sliced Wasserstein-2 distance to exact conditional samples, mean over labels.
        sw_floor: the same between two exact samples (noise floor), mean over labels.
        spread: spread ratio (see :func:`spread_ratio`), mean over labels.
        per_label_share: region share of each label, K floats.
        n_per_label, nfe: points per label; network calls.
    """

    region_share: float
    exact_region_share: float
    sw: float
    sw_floor: float
    spread: float
    per_label_share: list[float] = field(repr=False)
    n_per_label: int = 0
    nfe: int = 0


@dataclass
class JointSampleQuality:
    """Unconditional joint samples.

    Attributes:
        label_tv: total variation of the label marginal; label_tv_floor: its value for an exact sample (mean).
        coherence: share of samples whose label is their point's Bayes label; bayes_accuracy: the true joint's rate.
        point_sw: sliced Wasserstein-2 of the points to data points; point_sw_floor: two data samples.
        n, nfe: sample size, network calls.
    """

    label_tv: float
    label_tv_floor: float
    coherence: float
    bayes_accuracy: float
    point_sw: float
    point_sw_floor: float
    n: int
    nfe: int

    def as_dict(self) -> dict:
        return asdict(self)


def score_point_to_label(
    predicted: Tensor,
    drawn: Tensor,
    true: Tensor,
    bayes: Tensor,
    *,
    bayes_accuracy: float,
    posterior_sampling_accuracy: float,
    nfe: int = 0,
) -> PointToLabel:
    """Score labels given points of the true joint.

    Args:
        predicted: the model's argmax labels, shape (N,).
        drawn: labels drawn by the sampler, shape (N,).
        true: the labels the points were drawn with, shape (N,).
        bayes: the Bayes classifier's labels for the same points, shape (N,).
        bayes_accuracy, posterior_sampling_accuracy: the exact references (see :class:`PointToLabel`).
        nfe: network calls of the sampling run.
    """
    predicted, drawn, true, bayes = (
        _labels(v, k).reshape(-1)
        for v, k in ((predicted, "predicted"), (drawn, "drawn"), (true, "true"), (bayes, "bayes"))
    )
    bayes_accuracy = check_probability(bayes_accuracy, "bayes_accuracy")
    posterior_sampling_accuracy = check_probability(posterior_sampling_accuracy, "posterior_sampling_accuracy")
    _nfe(nfe)
    n = true.numel()
    acc = accuracy(predicted, true)
    return PointToLabel(
        classify_accuracy=acc,
        bayes_accuracy_same_points=accuracy(bayes, true),
        bayes_accuracy=bayes_accuracy,
        sampled_accuracy=accuracy(drawn, true),
        posterior_sampling_accuracy=posterior_sampling_accuracy,
        agreement_with_bayes=accuracy(predicted, bayes),
        se=math.sqrt(acc * (1 - acc) / n),
        n=n,
        nfe=nfe,
    )


def score_label_to_point(
    points: Tensor,
    labels: Tensor,
    bayes: Tensor,
    references: Mapping[int, tuple[Tensor, Tensor]],
    *,
    exact_region_share: float,
    n_projections: int = 128,
    generator: torch.Generator | None = None,
    nfe: int = 0,
) -> LabelToPoint:
    """Score points generated given their labels against exact conditional samples, label by label.

    Args:
        points: generated points, shape (N, D).
        labels: the labels they were generated for, shape (N,) (or (N, 1)).
        bayes: the Bayes classifier's labels of the generated points, shape (N,).
        references: label y → two independent exact samples of p(x | y), each shape (M, D) (the second gives the
            noise floor); every label present in ``labels`` must have an entry.
        exact_region_share: what the exact conditional reaches (mean over labels).
        n_projections, generator: of :func:`~diffuse_edu.metrics.distances.sliced_wasserstein`; per label, the
            distance of the points to the first reference is drawn before that of the two references.
        nfe: network calls of the sampling run.
    """
    points = _points(points, "points")
    labels, bayes = _labels(labels, "labels").reshape(-1).cpu(), _labels(bayes, "bayes").reshape(-1).cpu()
    if not labels.shape == bayes.shape == points.shape[:1]:
        raise ValueError(
            f"points, labels and bayes must describe the same N samples; got {tuple(points.shape)}, "
            f"{tuple(labels.shape)}, {tuple(bayes.shape)}."
        )
    exact_region_share = check_probability(exact_region_share, "exact_region_share")
    _nfe(nfe)
    if not isinstance(references, Mapping) or not references:
        raise TypeError(
            f"references must be a non-empty dict label → (sample, sample); got {type(references).__name__}."
        )
    missing = sorted(set(labels.tolist()) - set(references))
    if missing:
        raise ValueError(f"labels {missing} have no entry in references (label → two exact samples of p(x | y)).")
    for y, pair in references.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"references[{y!r}] must be a pair of exact samples (M, D); got {type(pair).__name__}.")
        for j, ref in enumerate(pair):
            _points(ref, f"references[{y!r}][{j}]", points.shape[1], min_rows=2)
        if (labels == y).sum() < 2:
            raise ValueError(f"label {y!r} has {int((labels == y).sum())} generated points; each label needs >= 2.")
    shares, sws, floors, spreads = [], [], [], []
    for y in sorted(references):
        ref, ref2 = references[y]
        mine = points[labels == y]
        shares.append(accuracy(bayes[labels == y], labels[labels == y]))
        sws.append(sliced_wasserstein(mine, ref, n_projections=n_projections, generator=generator))
        floors.append(sliced_wasserstein(ref2, ref, n_projections=n_projections, generator=generator))
        spreads.append(spread_ratio(mine, ref))
    mean = lambda v: sum(v) / len(v)
    return LabelToPoint(
        region_share=mean(shares),
        exact_region_share=exact_region_share,
        sw=mean(sws),
        sw_floor=mean(floors),
        spread=mean(spreads),
        per_label_share=shares,
        n_per_label=int((labels == sorted(references)[0]).sum()),
        nfe=nfe,
    )


def score_joint(
    points: Tensor,
    labels: Tensor,
    bayes: Tensor,
    data: Tensor,
    data2: Tensor,
    weights: Tensor,
    *,
    label_tv_floor: float,
    bayes_accuracy: float,
    n_projections: int = 128,
    generator: torch.Generator | None = None,
    nfe: int = 0,
) -> JointSampleQuality:
    """Score unconditional (point, label) samples: label-marginal TV, coherence, point distance to the data.

    Args:
        points, labels: the samples, shapes (N, D) and (N,) (or (N, 1)).
        bayes: the Bayes classifier's labels of the sampled points, shape (N,).
        data, data2: two independent samples of data points, each shape (M, D) (the second gives the floor).
        weights: the exact label marginal, shape (K,).
        label_tv_floor: :func:`label_tv_floor` at this N (mean).
        bayes_accuracy: the coherence of the true joint.
        n_projections, generator: of :func:`~diffuse_edu.metrics.distances.sliced_wasserstein` (samples first).
        nfe: network calls of the sampling run.
    """
    points = _points(points, "points")
    labels, bayes = _labels(labels, "labels").reshape(-1).cpu(), _labels(bayes, "bayes").reshape(-1)
    if not labels.shape == bayes.shape == points.shape[:1]:
        raise ValueError(
            f"points, labels and bayes must describe the same N samples; got {tuple(points.shape)}, "
            f"{tuple(labels.shape)}, {tuple(bayes.shape)}."
        )
    data = _points(data, "data", points.shape[1], min_rows=2)
    data2 = _points(data2, "data2", points.shape[1], min_rows=2)
    label_tv_floor = check_number(label_tv_floor, "label_tv_floor", 0.0, 1.0)
    bayes_accuracy = check_probability(bayes_accuracy, "bayes_accuracy")
    _nfe(nfe)
    return JointSampleQuality(
        label_tv=label_marginal_tv(labels, weights),
        label_tv_floor=label_tv_floor,
        coherence=coherence(labels, bayes),
        bayes_accuracy=bayes_accuracy,
        point_sw=sliced_wasserstein(points, data, n_projections=n_projections, generator=generator),
        point_sw_floor=sliced_wasserstein(data2, data, n_projections=n_projections, generator=generator),
        n=labels.numel(),
        nfe=nfe,
    )
