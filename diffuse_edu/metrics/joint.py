r"""Metrics for a joint (point, label) model against the exact answers of a :class:`LabeledMixture`.

Three tasks, each next to its exact reference or noise floor:

* **point → label**: condition on points drawn from the true joint. *Classification* = one network call at label
  time 1 and the argmax (compare with the Bayes accuracy E[max_y p(y | x)]); *sampling* = the label drawn by the
  sampler (compare with E[Σ_y p(y | x)²], the accuracy of an exact posterior draw).
* **label → point**: condition on balanced labels. The share of points in their label's Bayes region (compare with
  what the exact conditional achieves), the sliced Wasserstein distance to exact conditional samples (noise floor:
  two exact samples), and the spread ratio √tr Cov(generated) / √tr Cov(exact), averaged over labels (1 = right
  diversity, < 1 = collapsed, as strong guidance does).
* **joint**: unconditional samples. Total variation of the label marginal (noise floor: an exact sample of the same
  size), coherence = share of samples whose label is the Bayes label of their point (the true joint has the Bayes
  accuracy), and the sliced Wasserstein distance of the points to the data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from .._checks import check_index_tensor
from ..data.labeled_mixture import LabeledMixture
from ..guidance import NoisyGuidance
from ..joint import JointProcess
from ..joint_sampling import sample_joint
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
    "evaluate_point_to_label",
    "evaluate_label_to_point",
    "evaluate_joint",
]


def accuracy(pred: Tensor, true: Tensor) -> float:
    """Share of equal entries of two label tensors of the same shape."""
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have the same shape; got {tuple(pred.shape)} and {tuple(true.shape)}.")
    return (pred.cpu() == true.cpu()).double().mean().item()


def label_marginal_tv(labels: Tensor, weights: Tensor) -> float:
    """Total variation ½ Σ_y |p̂(y) − w_y| between the labels' empirical law and ``weights`` (shape (K,))."""
    k = weights.numel()
    labels = check_index_tensor(labels.reshape(-1).cpu(), "labels", k)
    freq = torch.bincount(labels, minlength=k).double() / labels.numel()
    return 0.5 * (freq - weights.double().cpu()).abs().sum().item()


def label_tv_floor(
    weights: Tensor, n: int, repeats: int = 20, generator: torch.Generator | None = None
) -> tuple[float, float]:
    """Mean and std of :func:`label_marginal_tv` for ``n`` exact labels (the noise floor at this sample size)."""
    vals = []
    for _ in range(repeats):
        lab = torch.multinomial(weights.double().cpu(), n, replacement=True, generator=generator)
        vals.append(label_marginal_tv(lab, weights))
    v = torch.tensor(vals, dtype=torch.float64)
    return v.mean().item(), v.std().item()


def coherence(mixture: LabeledMixture, points: Tensor, labels: Tensor) -> float:
    """Share of (point, label) pairs whose label is the Bayes label of the point; the true joint gives the Bayes
    accuracy."""
    return mixture.region_share(points, labels.reshape(-1))


def spread_ratio(points: Tensor, reference: Tensor) -> float:
    """√tr Cov(points) / √tr Cov(reference): 1 when the spread matches, < 1 when samples collapse."""

    def spread(x: Tensor) -> float:
        x = x.double().cpu()
        return (x - x.mean(0)).pow(2).sum(1).mean().sqrt().item()

    return spread(points) / spread(reference)


@dataclass
class PointToLabel:
    """point → label results on ``n`` points drawn from the true joint.

    Attributes:
        classify_accuracy: argmax of the model's label logits at label time 1 (one call per point).
        bayes_accuracy_same_points: the Bayes classifier on the same points (paired comparison).
        bayes_accuracy: exact Bayes accuracy.
        sampled_accuracy: labels drawn by the sampler (``steps`` iterations).
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
        region_share: share of generated points in their label's Bayes region (labels balanced).
        exact_region_share: the same for the exact conditional (mean over labels).
        sw: sliced Wasserstein-2 distance to exact conditional samples, mean over labels.
        sw_floor: the same between two exact samples (noise floor), mean over labels.
        spread: spread ratio (see :func:`spread_ratio`), mean over labels.
        per_label_share: region share of each label, shape (K,).
        nfe: network calls.
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


def _gen(generator: torch.Generator | None, offset: int) -> torch.Generator | None:
    """A generator for evaluation data, seeded apart from the sampler's (so data and sampling noise never share)."""
    if generator is None:
        return None
    return torch.Generator().manual_seed((generator.initial_seed() * 7919 + offset) % 2**63)


@torch.no_grad()
def evaluate_point_to_label(
    joint: JointProcess,
    net,
    mixture: LabeledMixture,
    n: int = 10_000,
    steps: int = 5,
    generator: torch.Generator | None = None,
    guidance: NoisyGuidance | None = None,
    device=None,
    point: str = "point",
    label: str = "label",
) -> PointToLabel:
    """Condition on ``n`` true-joint points: classify (1 call, argmax) and sample (``steps`` calls, final draw).

    A single token needs few steps: with an exact denoiser, revealing it at any time gives an exact posterior draw.
    """
    points, true = mixture.sample(n, _gen(generator, 1))
    points = points.to(device) if device is not None else points
    given = {point: points}
    # Classification: one call at label time 1 (every label masked), then the argmax — the model's Bayes classifier.
    cls = sample_joint(joint, net, given=given, steps=1, generator=generator, device=device)
    pred = cls.samples[label].reshape(-1).cpu()
    smp = sample_joint(
        joint,
        net,
        given=given,
        steps=steps,
        generator=generator,
        guidance=guidance,
        device=device,
        denoise_kwargs={label: {"mode": "sample"}},
    )
    drawn = smp.samples[label].reshape(-1).cpu()
    bayes = mixture.bayes_label(points.cpu())
    acc = accuracy(pred, true)
    return PointToLabel(
        classify_accuracy=acc,
        bayes_accuracy_same_points=accuracy(bayes, true),
        bayes_accuracy=mixture.bayes_accuracy(),
        sampled_accuracy=accuracy(drawn, true),
        posterior_sampling_accuracy=mixture.posterior_sampling_accuracy(),
        agreement_with_bayes=accuracy(pred, bayes),
        se=math.sqrt(acc * (1 - acc) / n),
        n=n,
        nfe=smp.nfe,
    )


@torch.no_grad()
def evaluate_label_to_point(
    joint: JointProcess,
    net,
    mixture: LabeledMixture,
    n_per_label: int = 1000,
    steps: int = 50,
    generator: torch.Generator | None = None,
    guidance: NoisyGuidance | None = None,
    device=None,
    point: str = "point",
    label: str = "label",
    n_projections: int = 128,
) -> LabelToPoint:
    """Condition on ``n_per_label`` copies of every label; compare the points with the exact conditionals."""
    k = mixture.num_classes
    labels = torch.arange(k).repeat_interleave(n_per_label)
    res = sample_joint(
        joint,
        net,
        given={label: labels[:, None].to(device) if device else labels[:, None]},
        steps=steps,
        generator=generator,
        guidance=guidance,
        device=device,
    )
    pts = res.samples[point].cpu()
    g_data, g_proj = _gen(generator, 2), _gen(generator, 3)
    shares, sws, floors, spreads = [], [], [], []
    for y in range(k):
        mine = pts[labels == y]
        cond = mixture.conditional(y)
        ref, ref2 = cond.sample(n_per_label, g_data), cond.sample(n_per_label, g_data)
        shares.append(mixture.region_share(mine, torch.full((n_per_label,), y)))
        sws.append(sliced_wasserstein(mine, ref, n_projections=n_projections, generator=g_proj))
        floors.append(sliced_wasserstein(ref2, ref, n_projections=n_projections, generator=g_proj))
        spreads.append(spread_ratio(mine, ref))
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    return LabelToPoint(
        region_share=mean(shares),
        exact_region_share=mixture.exact_region_shares().mean().item(),
        sw=mean(sws),
        sw_floor=mean(floors),
        spread=mean(spreads),
        per_label_share=shares,
        n_per_label=n_per_label,
        nfe=res.nfe,
    )


@torch.no_grad()
def evaluate_joint(
    joint: JointProcess,
    net,
    mixture: LabeledMixture,
    n: int = 8000,
    steps: int | dict = 50,
    generator: torch.Generator | None = None,
    device=None,
    point: str = "point",
    label: str = "label",
    n_projections: int = 128,
) -> JointSampleQuality:
    """Sample ``n`` (point, label) pairs unconditionally; label-marginal TV, coherence, point distance to the data."""
    res = sample_joint(joint, net, batch=n, steps=steps, generator=generator, device=device)
    pts, labs = res.samples[point].cpu(), res.samples[label].reshape(-1).cpu()
    g_data, g_proj = _gen(generator, 4), _gen(generator, 5)
    data, data2 = mixture.sample(n, g_data)[0], mixture.sample(n, g_data)[0]
    return JointSampleQuality(
        label_tv=label_marginal_tv(labs, mixture.weights),
        label_tv_floor=label_tv_floor(mixture.weights, n, generator=g_data)[0],
        coherence=coherence(mixture, pts, labs),
        bayes_accuracy=mixture.bayes_accuracy(),
        point_sw=sliced_wasserstein(pts, data, n_projections=n_projections, generator=g_proj),
        point_sw_floor=sliced_wasserstein(data2, data, n_projections=n_projections, generator=g_proj),
        n=n,
        nfe=res.nfe,
    )
