"""Coherence of text–image samples, measured by attribute recovery (the CdSprites+ leaderboard's scores).

A sample is coherent when its two modalities describe the same thing. With data whose attributes are known, that is a
count, not a judgement call: a *judge* reads the attributes back from an image, a *parser* reads them back from a
caption, and the scores compare them (Sejnova et al. 2023, CdSprites+):

* **Strict**: share of samples with *every* attribute right.
* **Feats**: share of attributes right, averaged over samples (partial credit).
* **Letters** (image → text only): share of characters right against the reference caption, position by position,
  end marker included (:func:`letter_accuracy`).

and, for unconditional samples, **diversity** (:func:`attribute_coverage`, :func:`distinct_share`) and a Fréchet
distance in the judge's features next to its real-vs-real floor (:func:`frechet_with_floor`).

Everything here is a pure function of samples: nothing is drawn, and the judge and the parser come in as callables, so
this module knows no data set and no network. For the captioned shapes, pass
``judge = shape_judge(level, size).predict`` (:mod:`diffuse_edu.recipes.judges`) and
``parse = functools.partial(parse_caption, level=level)`` (:mod:`diffuse_edu.data.shapes`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_finite
from .frechet import frechet_distance

__all__ = [
    "Coherence",
    "text_to_image_coherence",
    "image_to_text_coherence",
    "joint_coherence",
    "letter_accuracy",
    "attribute_coverage",
    "distinct_share",
    "FrechetWithFloor",
    "frechet_with_floor",
]

#: A judge: images (N, 3, S, S) → predicted attribute indices, long (N, A). An object with ``.predict`` also works.
Judge = Callable[[Tensor], Tensor]
#: A parser: caption → attribute name → value index (the attributes it mentions), or None if malformed.
Parser = Callable[[str], Mapping[str, int] | None]


@dataclass
class Coherence:
    """Coherence scores of N samples.

    Attributes:
        strict: share of samples with every attribute right (Strict).
        feats: share of attributes right, averaged over samples (Feats).
        malformed: share of captions the parser rejects (they count as all wrong); 0 for text → image.
        per_attribute: attribute name → share of samples with that attribute right.
        n: number of samples.
        letters: share of characters right against the reference captions (Letters; image → text only, else None).
    """

    strict: float
    feats: float
    malformed: float
    per_attribute: dict[str, float]
    n: int
    letters: float | None = None

    def as_row(self) -> dict[str, float]:
        """The headline numbers as a flat dict (a row of a results table)."""
        row = {"strict": self.strict, "feats": self.feats, "malformed": self.malformed}
        if self.letters is not None:
            row["letters"] = self.letters
        return row


# ----------------------------------------------------------------------------------------------------------------------
# Checks at the door
# ----------------------------------------------------------------------------------------------------------------------


def _check_images(images, name: str = "images") -> Tensor:
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W); got {type(images).__name__}.")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a float tensor; got dtype {images.dtype}.")
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, C, H, W) with N ≥ 1; got {tuple(images.shape)}.")
    check_finite(images, name)  # a metric's inputs are checked once, whatever the device
    return images


def _check_targets(targets, n: int | None, name: str = "target_attributes") -> Tensor:
    if not isinstance(targets, Tensor):
        raise TypeError(f"{name} must be a long tensor of shape (N, A); got {type(targets).__name__}.")
    if targets.is_floating_point() or targets.dtype == torch.bool or targets.is_complex():
        raise TypeError(f"{name} must be an integer tensor (attribute indices); got dtype {targets.dtype}.")
    if targets.ndim != 2 or targets.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, A) with A ≥ 1 attributes; got {tuple(targets.shape)}.")
    if n is not None and targets.shape[0] != n:
        raise ValueError(f"{name} has {targets.shape[0]} rows for {n} samples; expected one row per sample.")
    if targets.shape[0] < 1:
        raise ValueError(f"{name} is empty; expected at least one row.")
    targets = targets.detach().long().cpu()
    if (targets < 0).any():
        raise ValueError(f"{name} holds negative attribute indices (min {targets.min().item()}); expected ids >= 0.")
    return targets


def _check_texts(texts, n: int | None, name: str) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{name} must be a list of strings (decoded captions, end marker removed).")
    if n is not None and len(texts) != n:
        raise ValueError(f"{name} has {len(texts)} strings for {n} samples; expected one per sample.")
    if not texts:
        raise ValueError(f"{name} is empty; expected at least one caption.")
    return list(texts)


def _check_names(names, n_attributes: int | None) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence) or not all(isinstance(a, str) for a in names):
        raise TypeError(f"names must be a sequence of attribute names; got {names!r}.")
    if n_attributes is not None and len(names) != n_attributes:
        raise ValueError(f"names lists {len(names)} attributes for {n_attributes} columns; expected one per column.")
    return tuple(names)


def _judge(judge, images: Tensor, n_attributes: int | None) -> Tensor:
    predict = getattr(judge, "predict", judge)
    if not callable(predict):
        raise TypeError(f"judge must be callable (images → attribute indices (N, A)); got {type(judge).__name__}.")
    pred = predict(images)
    if not isinstance(pred, Tensor) or pred.is_floating_point() or pred.ndim != 2 or pred.shape[0] != len(images):
        got = tuple(pred.shape) if isinstance(pred, Tensor) else type(pred).__name__
        raise ValueError(f"the judge must return attribute indices of shape ({len(images)}, A); got {got}.")
    if n_attributes is not None and pred.shape[1] != n_attributes:
        raise ValueError(f"the judge returns {pred.shape[1]} attributes; the targets have {n_attributes}.")
    return pred.detach().long().cpu()


def _parse_all(parse, texts: list[str], names: tuple[str, ...]) -> tuple[Tensor, Tensor]:
    """Parsed attributes (N, A) long (−1 where a caption does not mention one) and malformed (N,) bool."""
    if not callable(parse):
        raise TypeError(f"parse must be callable (caption → dict or None); got {type(parse).__name__}.")
    values = torch.full((len(texts), len(names)), -1, dtype=torch.long)
    malformed = torch.zeros(len(texts), dtype=torch.bool)
    for i, text in enumerate(texts):
        found = parse(text)
        if found is None:
            malformed[i] = True
            continue
        if not isinstance(found, Mapping):
            raise TypeError(f"parse must return a dict (attribute → value index) or None; got {found!r} for {text!r}.")
        for j, name in enumerate(names):
            if name in found:
                v = found[name]
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise ValueError(f"parse gave {name}={v!r} for {text!r}; expected a value index (an int >= 0).")
                values[i, j] = v
    return values, malformed


def _scores(right: Tensor, names: tuple[str, ...], malformed: Tensor | None = None) -> Coherence:
    """Coherence from a (N, A) bool table of right attributes (a malformed row must be all False)."""
    r = right.double()
    return Coherence(
        strict=r.all(dim=1).double().mean().item() if len(r) else math.nan,
        feats=r.mean().item(),
        malformed=0.0 if malformed is None else malformed.double().mean().item(),
        per_attribute={name: r[:, j].mean().item() for j, name in enumerate(names)},
        n=len(r),
    )


# ----------------------------------------------------------------------------------------------------------------------
# The three directions
# ----------------------------------------------------------------------------------------------------------------------


def text_to_image_coherence(
    images: Tensor, target_attributes: Tensor, judge: Judge, *, names: Sequence[str] | None = None
) -> Coherence:
    """Text → image: do images generated from captions show the captions' attributes?

    Args:
        images: generated images, float shape (N, C, H, W).
        target_attributes: the attributes of the conditioning captions, long shape (N, A).
        judge: images → predicted attribute indices (N, A), same column order (e.g. a judge's ``.predict``; an
            object with a ``predict`` method is called through it).
        names: the A attribute names (default: the judge's ``names`` if it has them, else ``attr0, attr1, ...``).
    Returns:
        :class:`Coherence` (``malformed`` is 0, ``letters`` None).
    """
    images = _check_images(images)
    targets = _check_targets(target_attributes, len(images))
    if names is None:
        names = getattr(judge, "names", None) or [f"attr{j}" for j in range(targets.shape[1])]
    names = _check_names(names, targets.shape[1])
    pred = _judge(judge, images, targets.shape[1])
    return _scores(pred == targets, names)


def image_to_text_coherence(
    captions: Sequence[str],
    target_attributes: Tensor,
    parse: Parser,
    reference_texts: Sequence[str] | None = None,
    *,
    names: Sequence[str],
) -> Coherence:
    """Image → text: do captions generated from images state the images' attributes?

    A caption the parser rejects is malformed and counts as wrong on every attribute; an attribute the caption does
    not mention counts as wrong.

    Args:
        captions: generated captions as strings (decoded, end marker removed), N of them.
        target_attributes: the true attributes of the conditioning images, long shape (N, A).
        parse: caption → attribute name → value index, or None if malformed.
        reference_texts: the ground-truth captions of the images, for Letters (None: no Letters score).
        names: the A attribute names, in the column order of ``target_attributes`` (the parser's keys).
    Returns:
        :class:`Coherence` with ``letters`` if ``reference_texts`` is given.
    """
    captions = _check_texts(captions, None, "captions")
    targets = _check_targets(target_attributes, len(captions))
    names = _check_names(names, targets.shape[1])
    parsed, malformed = _parse_all(parse, captions, names)
    result = _scores(parsed == targets, names, malformed)
    if reference_texts is not None:
        result.letters = letter_accuracy(captions, _check_texts(reference_texts, len(captions), "reference_texts"))
    return result


def joint_coherence(
    images: Tensor, captions: Sequence[str], judge: Judge, parse: Parser, *, names: Sequence[str]
) -> Coherence:
    """Unconditional joint samples: does each caption describe its own image?

    The judge's reading of the image and the parser's reading of the caption must agree; a malformed caption is
    incoherent on every attribute.

    Args:
        images: generated images, float shape (N, C, H, W).
        captions: the N generated captions, decoded.
        judge: images → attribute indices (N, A).  parse: caption → dict or None.
        names: the A attribute names, in the judge's column order.
    """
    images = _check_images(images)
    captions = _check_texts(captions, len(images), "captions")
    names = _check_names(names, None)
    pred = _judge(judge, images, len(names))
    parsed, malformed = _parse_all(parse, captions, names)
    return _scores(parsed == pred, names, malformed)


def letter_accuracy(generated: Sequence[str], reference: Sequence[str]) -> float:
    """Letters: the share of the reference's characters that the generated caption reproduces in place.

    For a reference r of length |r| and a generated string g, both followed by the end marker ∎ (and g by as many
    ∎ as needed),

        letters(g, r) = (1 / (|r| + 1)) · Σ_{i=0}^{|r|} 1[g'_i = r'_i],   r' = r∎, g' = g∎∎∎…

    position by position: the end must come right after the last character, so a caption that is too long loses the
    end's point and one that is too short loses the missing characters. The score is averaged over the pairs
    (CdSprites+'s Letters). A caption that says the same thing with another template scores low: Letters measures
    the wording, Strict and Feats the meaning.

    Args:
        generated, reference: equally long lists of strings.
    Returns:
        the mean score in [0, 1].
    """
    generated = _check_texts(generated, None, "generated")
    reference = _check_texts(reference, len(generated), "reference")
    total = 0.0
    for g, r in zip(generated, reference, strict=True):
        # None marks the end (and everything after it) on both sides.
        hits = sum((g[i] if i < len(g) else None) == (r[i] if i < len(r) else None) for i in range(len(r) + 1))
        total += hits / (len(r) + 1)
    return total / len(generated)


# ----------------------------------------------------------------------------------------------------------------------
# Diversity and a Fréchet distance
# ----------------------------------------------------------------------------------------------------------------------


def attribute_coverage(attributes: Tensor, n_values: Sequence[int]) -> float:
    """Share of all attribute combinations that occur at least once among the samples.

    Args:
        attributes: attribute indices of N samples (e.g. the judge's reading of generated images), long (N, A).
        n_values: number of values of each attribute; there are ∏ n_values combinations.
    Returns:
        (number of distinct rows) / ∏ n_values, in [0, 1]. With N uniform draws the expected coverage of K
        combinations is 1 − (1 − 1/K)^N: compare against that (or the real data's coverage at the same N).
    """
    attributes = _check_targets(attributes, None, "attributes")
    if isinstance(n_values, (str, bytes)) or not isinstance(n_values, Sequence):
        raise TypeError(f"n_values must be a sequence of ints (values per attribute); got {n_values!r}.")
    if not all(isinstance(k, int) and not isinstance(k, bool) for k in n_values):
        raise TypeError(f"n_values must hold ints; got {list(n_values)!r}.")
    n_values = list(n_values)
    if len(n_values) != attributes.shape[1] or any(k < 1 for k in n_values):
        raise ValueError(f"n_values must give a positive count for each of the {attributes.shape[1]} columns.")
    limits = torch.tensor(n_values)
    if ((attributes < 0) | (attributes >= limits)).any():
        raise ValueError(f"attributes hold values outside [0, n_values) for n_values={n_values}.")
    return len({tuple(row) for row in attributes.tolist()}) / math.prod(n_values)


def distinct_share(texts: Sequence[str]) -> float:
    """Share of distinct strings among N captions (1 = no caption repeats)."""
    texts = _check_texts(texts, None, "texts")
    return len(set(texts)) / len(texts)


@dataclass
class FrechetWithFloor:
    """A Fréchet distance and the same distance between two sets of real images: the best a model can score.

    Attributes:
        distance: FD(features(samples), features(reference)).
        floor: FD(features(real), features(reference)) with as many real images as samples (FD is biased upwards at
            small N, so only equal sizes compare).
        n: number of samples.
    """

    distance: float
    floor: float
    n: int

    @property
    def ratio(self) -> float:
        """distance / floor (≈ 1 means indistinguishable from real data at this N)."""
        return self.distance / self.floor if self.floor > 0 else math.inf


def frechet_with_floor(
    samples: Tensor, reference: Tensor, real: Tensor, features: Callable[[Tensor], Tensor]
) -> FrechetWithFloor:
    """Fréchet distance of samples to reference images in a judge's features, next to its real-vs-real floor.

    Args:
        samples: N generated images, float (N, C, H, W).
        reference: real images the samples are compared with (e.g. the test split), float (M, C, H, W).
        real: other real images, at least N (e.g. the train split); the first N give the floor.
        features: images → features (N, D), e.g. a judge's ``embed``.
    Returns:
        :class:`FrechetWithFloor`.
    """
    samples, reference, real = (
        _check_images(x, k) for x, k in ((samples, "samples"), (reference, "reference"), (real, "real"))
    )
    if not samples.shape[1:] == reference.shape[1:] == real.shape[1:]:
        raise ValueError(
            f"samples, reference and real must share their image shape; got {tuple(samples.shape[1:])}, "
            f"{tuple(reference.shape[1:])}, {tuple(real.shape[1:])}."
        )
    n = len(samples)
    if len(real) < n or n < 2:
        raise ValueError(f"need 2 ≤ N ≤ len(real) so the floor uses as many images as the samples; N={n}, {len(real)}.")
    if not callable(features):
        raise TypeError(f"features must be callable (images → features (N, D)); got {type(features).__name__}.")
    ref = features(reference)
    return FrechetWithFloor(
        distance=frechet_distance(features(samples), ref), floor=frechet_distance(features(real[:n]), ref), n=n
    )
