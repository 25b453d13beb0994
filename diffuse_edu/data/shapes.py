"""Captioned shapes with known ground truth: a procedural text–image data set in the spirit of CdSprites+.

Every example is a coloured shape on a background, rendered from five attributes, plus an English caption of it. The
ground truth is known, so a model's coherence can be *measured*: a judge network reads the attributes back from an
image and :func:`parse_caption` reads them back from a caption (Sejnova et al. 2023, CdSprites+, whose ladder of
difficulty levels this mirrors; this module is a re-creation, not their files).

**Levels.** Level k uses the first k attributes of :data:`ATTRIBUTES`; the others are held at a default.

====== ============================================== ==========================================
level  attributes in image and caption                 held at the default
====== ============================================== ==========================================
1      shape                                           big, white, centred, black background
2      shape, size                                     white, centred, black background
3      shape, size, colour                             centred, black background
4      shape, size, colour, position                   black background
5      shape, size, colour, position, background       —
====== ============================================== ==========================================

**Jitter.** Within each value every image draws its own offset (position ±0.03 of the image side, scale ±6 %,
rotation ±15°, hue ±8°, saturation and brightness of the shape, brightness of the background), so no two images are
identical, while the ranges keep every value far from its neighbours (a judge reads them back at ≥ 99 %).

**Rendering.** Pure torch, vectorised over the batch: each pixel is split into ``supersample²`` sub-pixels, an
inside-test of the shape runs at every sub-pixel, and the mean is the pixel's coverage (anti-aliasing by
supersampling). Images are RGB in [−1, 1], shape (N, 3, S, S).

**Captions.** A small grammar (:data:`TEMPLATES`) with several word orders and synonyms ("big" / "large",
"in the" / "at the", "on white" / "on a white background"), in raw lower-case characters. They are encoded with a
:class:`~diffuse_edu.data.text.CharVocab` whose token 0 (``PAD``) is also the end marker, into a window of
:func:`max_caption_length` positions: the longest caption of the level plus its end.

**Splits by seed.** ``load_shapes(split, seed)`` draws everything (attributes, jitter, caption wording) from a
generator seeded with the SHA-256 hash of ``"shapes/<split>/<seed>"`` (:func:`split_seed`): train, valid and test are
independent streams of the same distribution (every attribute combination occurs in each split; images never repeat).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .text import CharVocab

__all__ = [
    "ATTRIBUTES",
    "VALUES",
    "DEFAULTS",
    "TEMPLATES",
    "IMAGE_SIZES",
    "ShapesData",
    "check_attributes",
    "attribute_names",
    "n_values",
    "sample_attributes",
    "render",
    "caption",
    "caption_variants",
    "parse_caption",
    "shapes_vocab",
    "max_caption_length",
    "encode_captions",
    "split_seed",
    "load_shapes",
]

#: The attributes in the order the levels add them: level k uses the first k.
ATTRIBUTES: tuple[str, ...] = ("shape", "size", "colour", "position", "background")

#: The values of each attribute; an attribute tensor holds indices into these tuples.
VALUES: dict[str, tuple[str, ...]] = {
    "shape": ("square", "circle", "triangle", "heart", "star"),
    "size": ("small", "big"),
    "colour": ("red", "yellow", "green", "blue", "purple"),
    "position": ("top left", "top right", "bottom left", "bottom right"),
    "background": ("black", "grey", "white"),
}

#: What an attribute looks like at levels that do not use it (not part of the caption). dSprites' white-on-black.
DEFAULTS: dict[str, str] = {"size": "big", "colour": "white", "position": "centre", "background": "black"}

#: Image sizes the renderer and the judges are tuned for (any S ≥ 8 renders; the judges exist for these).
IMAGE_SIZES: tuple[int, ...] = (16, 32)

# ----------------------------------------------------------------------------------------------------------------------
# Geometry and colour of each value (fractions of the image side; hue in degrees, HSV).
# ----------------------------------------------------------------------------------------------------------------------

# Nominal "radius" of a shape of each size. A big shape's body (≈ 1 radius) stays inside its quadrant around the
# position centres 0.27 / 0.73; only a star's tips or a rotated square's corners (up to 1.3 radii) can touch the edge.
_RADIUS = {"small": 0.13, "big": 0.20}
_CENTRES = {
    "top left": (0.27, 0.27),
    "top right": (0.73, 0.27),
    "bottom left": (0.27, 0.73),
    "bottom right": (0.73, 0.73),
    "centre": (0.5, 0.5),
}  # (x, y) with y pointing down, as in the image
_HUES = {"red": 0.0, "yellow": 55.0, "green": 120.0, "blue": 225.0, "purple": 285.0}
# Every shape of nominal radius 1 lies within this distance of its centre, whatever its rotation (the star's tips).
_EXTENT = 1.3
_BACKGROUND_LEVEL = {"black": 0.04, "grey": 0.5, "white": 0.96}
# Jitter half-widths inside one value.
_JITTER = dict(position=0.03, scale=0.06, rotation=15.0, hue=8.0, background=0.04)


def attribute_names(level: int) -> tuple[str, ...]:
    """The attributes used at ``level`` (1..5): the first ``level`` entries of :data:`ATTRIBUTES`."""
    _check_level(level)
    return ATTRIBUTES[:level]


def n_values(level: int) -> tuple[int, ...]:
    """Number of values of each attribute used at ``level``, e.g. ``(5, 2, 5)`` at level 3."""
    return tuple(len(VALUES[a]) for a in attribute_names(level))


def _check_level(level) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= len(ATTRIBUTES):
        raise ValueError(f"level must be an int in 1..{len(ATTRIBUTES)}; got {level!r}.")
    return level


def _check_generator(generator) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise TypeError(f"generator must be a CPU torch.Generator or None; got {generator!r}.")
    return generator


def check_attributes(attributes, name: str = "attributes") -> Tensor:
    """Validate an attribute tensor: long shape (N, k), 1 ≤ k ≤ 5, column j's values in ``[0, len(VALUES[j]))``."""
    if not isinstance(attributes, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of attribute indices; got {type(attributes).__name__}.")
    if attributes.is_floating_point() or attributes.dtype == torch.bool or attributes.is_complex():
        raise TypeError(f"{name} must be an integer tensor (torch.long); got dtype {attributes.dtype}.")
    if attributes.ndim != 2 or not 1 <= attributes.shape[1] <= len(ATTRIBUTES):
        raise ValueError(
            f"{name} must have shape (N, level) with level in 1..{len(ATTRIBUTES)} (one column per attribute "
            f"{ATTRIBUTES}); got shape {tuple(attributes.shape)}."
        )
    limits = torch.tensor([len(VALUES[a]) for a in ATTRIBUTES[: attributes.shape[1]]], device=attributes.device)
    if attributes.numel() and ((attributes < 0).any() or (attributes >= limits).any()):
        bad = ((attributes < 0) | (attributes >= limits)).any(dim=0).nonzero().flatten().tolist()
        raise ValueError(
            f"{name} holds out-of-range values in column(s) {[ATTRIBUTES[j] for j in bad]}; column j must lie in "
            f"[0, number of values) with numbers {[len(VALUES[a]) for a in ATTRIBUTES[: attributes.shape[1]]]}."
        )
    return attributes.long()


# ----------------------------------------------------------------------------------------------------------------------
# Attributes and rendering
# ----------------------------------------------------------------------------------------------------------------------


def sample_attributes(n: int, level: int, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``n`` attribute rows uniformly at random.

    Args:
        n: number of examples (≥ 1).
        level: 1..5; the row has one column per attribute of the level.
        generator: CPU generator (default: a fresh one seeded from the global stream).
    Returns:
        long tensor shape (n, level); column j indexes ``VALUES[ATTRIBUTES[j]]``.
    """
    _check_level(level)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}.")
    generator = _check_generator(generator)
    # One uniform per cell, drawn row-major: the first m rows do not depend on n.
    u = torch.rand(n, level, generator=generator, dtype=torch.float64)
    counts = torch.tensor(n_values(level), dtype=torch.float64)
    return (u * counts).floor().long().clamp(max=counts.long() - 1)


def _inside(shape: str, u: Tensor, v: Tensor) -> Tensor:
    """Inside-test of one shape of nominal radius 1 at local coordinates (u right, v up); returns a bool tensor.

    The shapes have similar areas (about π), so "small" and "big" mean the same amount of ink for every shape.
    """
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        # Half-side √π / 2 ≈ 0.886: the same area as the unit circle.
        return torch.maximum(u.abs(), v.abs()) <= 0.886
    if shape == "triangle":
        # Equilateral, pointing up, circumradius R; its bounding box is centred (vertices at v = R and v = −R/2,
        # shifted down by R/4). Inside = on the inner side of all three edges (inradius R/2).
        r = 1.3
        v = v + r / 4
        c = math.sqrt(3) / 2
        return (-v <= r / 2) & (c * u + 0.5 * v <= r / 2) & (-c * u + 0.5 * v <= r / 2)
    if shape == "heart":
        # The classic implicit heart (x² + y² − 1)³ − x² y³ ≤ 0 (about 2.3 wide and tall), scaled and centred.
        x, y = u / 0.9, v / 0.9 + 0.12
        q = x * x + y * y - 1
        return q * q * q - x * x * y * y * y <= 0
    if shape == "star":
        # Five-pointed star (outer radius 1.3, inner 0.55): fold the angle into the half-sector [0, π/5] between an
        # outer vertex A (angle 0) and an inner vertex B (angle π/5), then test the side of the edge AB.
        outer, inner, half = 1.3, 0.55, math.pi / 5
        rho = torch.sqrt(u * u + v * v)
        phi = torch.remainder(torch.atan2(u, v), 2 * half)  # angle from "up", one point straight up
        phi = torch.minimum(phi, 2 * half - phi)
        px, py = rho * torch.cos(phi), rho * torch.sin(phi)
        bx, by = inner * math.cos(half), inner * math.sin(half)
        # cross(B − A, P − A) ≥ 0 ⇔ P is on the centre's side of AB (the centre O has cross(B − A, O − A) = by·A > 0).
        return (bx - outer) * py - by * (px - outer) >= 0
    raise ValueError(f"unknown shape {shape!r}; expected one of {VALUES['shape']}.")


def _hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """HSV → RGB for tensors of shape (N,) (hue in degrees); returns shape (N, 3) in [0, 1]."""
    # The standard formula: each channel is v − v·s·clamp(min(k, 4 − k), 0, 1) with k = (n + h/60) mod 6.
    n = torch.tensor([5.0, 3.0, 1.0])
    k = torch.remainder(n[None, :] + h[:, None] / 60.0, 6.0)  # (N, 3)
    return v[:, None] - v[:, None] * s[:, None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def _coverage(
    shape: list[str],
    cx: Tensor,
    cy: Tensor,
    radius: Tensor,
    rotation: Tensor,
    image_size: int,
    supersample: int,
    chunk: int,
    window: bool = True,
) -> Tensor:
    """Share of each pixel covered by each image's shape, by supersampling: float32 shape (N, S, S).

    Args:
        shape: N shape names.  cx, cy: centres in [0, 1] (y down), float64 (N,).  radius: in image sides, (N,).
        rotation: radians, (N,).  image_size: S.  supersample: sub-pixels per pixel side.  chunk: images at once.
        window: test only the sub-pixels of a window around each shape (the default) instead of the whole image.
    """
    n = len(shape)
    # Only a window of `box` pixels around each shape can be covered (every shape fits in ±_EXTENT radii): testing the
    # sub-pixels of that window instead of the whole image is about 3× faster. The window starts on a pixel edge.
    reach = _EXTENT * radius.max().item() * image_size if n else 0.0  # in pixels
    box = min(image_size, math.ceil(2 * reach) + 2) if window else image_size
    x0 = (cx * image_size - reach).floor().long().clamp(0, image_size - box)  # (N,) first pixel column
    y0 = (cy * image_size - reach).floor().long().clamp(0, image_size - box)
    # Sub-pixel centres of the window, in pixels from its corner: (j + ½) / k for j < box·k.
    fine = (torch.arange(box * supersample, dtype=torch.float64) + 0.5) / supersample

    coverage = torch.zeros(n, image_size, image_size)
    # One pass per shape kind over the images of that kind, in chunks: the inside-tests stay vectorised.
    for kind in VALUES["shape"]:
        idx = torch.tensor([i for i, s in enumerate(shape) if s == kind], dtype=torch.long)
        for part in idx.split(chunk):
            # Offsets from the centre in units of the radius, float64 for the subtraction, then float32 for the tests.
            r = radius[part][:, None, None] * image_size  # (b, 1, 1) in pixels
            dx = ((x0[part, None, None] + fine[None, None, :]) - cx[part, None, None] * image_size) / r  # (b, 1, W)
            dy = (cy[part, None, None] * image_size - (y0[part, None, None] + fine[None, :, None])) / r  # (b, W, 1)
            dx, dy = dx.float(), dy.float()  # "up" is positive dy
            # Rotate the sampling points by −θ (the shape by +θ) into the shape's own frame.
            c, s = torch.cos(rotation[part]).float()[:, None, None], torch.sin(rotation[part]).float()[:, None, None]
            u, v = c * dx + s * dy, c * dy - s * dx  # (b, W, W), W = box·k
            patch = F.avg_pool2d(_inside(kind, u, v).float()[:, None], supersample)[:, 0]  # (b, box, box)
            # Paste each window at its corner: coverage = share of a pixel's sub-pixels inside the shape.
            rows = (y0[part, None] + torch.arange(box))[:, :, None]  # (b, box, 1)
            cols = (x0[part, None] + torch.arange(box))[:, None, :]  # (b, 1, box)
            coverage[part[:, None, None], rows, cols] = patch
    return coverage


def render(
    attributes: Tensor,
    image_size: int = 32,
    generator: torch.Generator | None = None,
    *,
    supersample: int = 4,
    chunk: int = 2048,
) -> Tensor:
    """Render one image per attribute row, anti-aliased, with jitter inside every value.

    Args:
        attributes: long shape (N, k): the first k attributes of :data:`ATTRIBUTES` (k = level); the others take
            their :data:`DEFAULTS`.
        image_size: side S of the square images (≥ 8; the judges exist for 16 and 32).
        generator: CPU generator for the jitter (default: a fresh one seeded from the global stream). The same
            generator state gives bit-identical images; the number of draws does not depend on the level.
        supersample: sub-pixels per pixel side (anti-aliasing; 1 gives hard edges).
        chunk: images rendered at once (bounds memory to ``chunk·(S·supersample)²`` floats).
    Returns:
        float32 tensor shape (N, 3, S, S) in [−1, 1].
    """
    attributes = check_attributes(attributes).cpu()
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int ≥ 8 (the judges exist for {IMAGE_SIZES}); got {image_size!r}.")
    if isinstance(supersample, bool) or not isinstance(supersample, int) or supersample < 1:
        raise ValueError(f"supersample must be a positive int; got {supersample!r}.")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive int; got {chunk!r}.")
    generator = _check_generator(generator)
    n, level = attributes.shape

    # Every attribute as a full column of value names (defaults for those the level does not use).
    def column(j: int) -> list[str]:
        name = ATTRIBUTES[j]
        if j < level:
            return [VALUES[name][i] for i in attributes[:, j].tolist()]
        return [DEFAULTS[name]] * n

    shape, size, colour, position, background = (column(j) for j in range(len(ATTRIBUTES)))

    # Jitter: eight uniforms per image, drawn row-major whatever the level, so a seed means the same thing at every
    # level and the first m images do not depend on N.
    u = torch.rand(n, 8, generator=generator, dtype=torch.float64)
    sym = 2 * u - 1  # symmetric jitter in [-1, 1]
    jx, jy = sym[:, 0] * _JITTER["position"], sym[:, 1] * _JITTER["position"]
    jscale = 1 + sym[:, 2] * _JITTER["scale"]
    jrot = sym[:, 3] * math.radians(_JITTER["rotation"])
    jhue = sym[:, 4] * _JITTER["hue"]
    sat = 0.85 + 0.15 * u[:, 5]  # in [0.85, 1]
    val = 0.9 + 0.1 * u[:, 6]  # in [0.9, 1]
    jbg = sym[:, 7] * _JITTER["background"]

    cx = torch.tensor([_CENTRES[p][0] for p in position], dtype=torch.float64) + jx
    cy = torch.tensor([_CENTRES[p][1] for p in position], dtype=torch.float64) + jy
    radius = torch.tensor([_RADIUS[s] for s in size], dtype=torch.float64) * jscale
    # White (the level ≤ 2 default) is an unsaturated colour; the others are hues.
    white = torch.tensor([c == "white" for c in colour], dtype=torch.bool)  # explicit dtype: N = 0 works too
    hue = torch.tensor([_HUES.get(c, 0.0) for c in colour], dtype=torch.float64) + jhue
    fg = _hsv_to_rgb(hue, torch.where(white, torch.zeros_like(sat), sat), val).float()  # (N, 3)
    bg_level = torch.tensor([_BACKGROUND_LEVEL[b] for b in background], dtype=torch.float64) + jbg
    bg = bg_level.clamp(0, 1).float()[:, None].expand(n, 3)  # (N, 3): grey levels

    coverage = _coverage(shape, cx, cy, radius, jrot, image_size, supersample, chunk)  # (N, S, S)

    # Alpha-blend the shape colour over the background by coverage, then map [0, 1] → [−1, 1].
    img = bg[:, :, None, None] + (fg - bg)[:, :, None, None] * coverage[:, None]  # (N, 3, S, S)
    return (2 * img - 1).clamp(-1, 1).contiguous()


# ----------------------------------------------------------------------------------------------------------------------
# The caption grammar
# ----------------------------------------------------------------------------------------------------------------------

# Surface forms of each slot: "{}" is the value's word. A slot names the attribute it renders.
_SLOTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "shape": ("shape", ("{}",)),
    "size": ("size", ("{}",)),
    "colour": ("colour", ("{}",)),
    "where": ("position", ("in the {}", "at the {}")),
    "pos": ("position", ("{}",)),
    "on": ("background", ("on {}", "on a {} background")),
    "bg": ("background", ("{} background",)),
}
# Synonyms: the words a value may be written with (the first is the canonical one).
_WORDS: dict[str, dict[str, tuple[str, ...]]] = {a: {v: (v,) for v in VALUES[a]} for a in ATTRIBUTES if a != "size"} | {
    "size": {"small": ("small", "little"), "big": ("big", "large")}
}

#: The caption templates. ``{slot}`` is a slot (see the data card); ``[...]`` holds one slot and its punctuation and is
#: left out when the slot's attribute is not used at the level. Every caption of the data set is one of these.
TEMPLATES: tuple[str, ...] = (
    "a[ {size}][ {colour}] {shape}[ {where}][ {on}]",  # a big red heart in the top left on white
    "a[ {size}][ {colour}] {shape}[ {on}][ {where}]",  # a big red heart on a white background at the top left
    "[{colour} ]{shape}[, {size}][, {pos}][, {bg}]",  # red heart, big, top left, white background
    "[{where}, ]a[ {size}][ {colour}] {shape}[ {on}]",  # in the top left, a big red heart on white
)
_TOKEN = re.compile(r"\[([^\[\]]*)\]|\{(\w+)\}|([^\[\]{}]+)")


@functools.cache
def _template_parts(template: str) -> tuple[tuple[str, str, str, str], ...]:
    """Split a template into (kind, slot, before, after) parts: kind is "text", "slot" or "optional"."""
    parts = []
    for m in _TOKEN.finditer(template):
        optional, slot, text = m.groups()
        if text is not None:
            parts.append(("text", "", text, ""))
        elif slot is not None:
            parts.append(("slot", slot, "", ""))
        else:
            inner = re.fullmatch(r"([^{}]*)\{(\w+)\}([^{}]*)", optional)
            parts.append(("optional", inner.group(2), inner.group(1), inner.group(3)))
    return tuple(parts)


# Every choice a caption makes (the form and the word of each of ≤ 5 slots) uses one uniform; at most 2 options each.
_CHOICES = 2 * len(ATTRIBUTES)


def _fill(template: str, values: dict[str, str], fractions: Sequence[float]) -> str:
    """One caption from ``template``.

    Args:
        template: one of :data:`TEMPLATES`.
        values: attribute → value name, for the attributes of the level.
        fractions: ``_CHOICES`` numbers in [0, 1); a choice among m options takes option ``int(u · m)``.
    """
    out, draws = [], iter(fractions)
    for kind, slot, before, after in _template_parts(template):
        if kind == "text":
            out.append(before)
            continue
        attribute, forms = _SLOTS[slot]
        if attribute not in values:
            continue  # an optional slot of an attribute the level does not use ("shape" is always there)
        words = _WORDS[attribute][values[attribute]]
        word = words[int(next(draws) * len(words))]
        out.append(before + forms[int(next(draws) * len(forms))].format(word) + after)
    return "".join(out)


def _row_values(row: Sequence[int]) -> dict[str, str]:
    return {a: VALUES[a][int(i)] for a, i in zip(ATTRIBUTES, row, strict=False)}


def caption(attributes: Tensor, generator: torch.Generator | None = None, *, template: int | None = None) -> list[str]:
    """One caption per attribute row, with a random template and random synonyms.

    Args:
        attributes: long shape (N, k), as for :func:`render`.
        generator: CPU generator for the choices of template and wording (default: seeded from the global stream).
        template: use this index into :data:`TEMPLATES` for every caption instead of a random one.
    Returns:
        N lower-case strings, e.g. ``"a big red heart in the top left"``.
    """
    attributes = check_attributes(attributes).cpu()
    if template is not None and (
        isinstance(template, bool) or not isinstance(template, int) or not 0 <= template < len(TEMPLATES)
    ):
        raise ValueError(f"template must be None or an int in [0, {len(TEMPLATES)}); got {template!r}.")
    generator = _check_generator(generator)
    n = attributes.shape[0]
    # 1 + _CHOICES uniforms per caption (the template, then one per choice of form or word), drawn row-major: the
    # first m captions do not depend on n.
    picks = torch.rand(n, 1 + _CHOICES, generator=generator, dtype=torch.float64).tolist()
    out = []
    for row, u in zip(attributes.tolist(), picks, strict=True):
        t = int(u[0] * len(TEMPLATES)) if template is None else template
        out.append(_fill(TEMPLATES[t], _row_values(row), u[1:]))
    return out


def caption_variants(attributes: Sequence[int] | Tensor) -> list[str]:
    """Every caption the grammar can write for one attribute row (all templates, forms and synonyms), sorted.

    Args:
        attributes: one row of k attribute indices (a sequence or a long tensor shape (k,)).
    """
    if not isinstance(attributes, Tensor) and (
        isinstance(attributes, (str, bytes)) or not isinstance(attributes, Sequence)
    ):
        raise TypeError(
            f"attributes must be one row of attribute indices (a sequence of ints or a tensor); got {attributes!r}."
        )
    try:
        row = torch.as_tensor(attributes)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"attributes must be one row of attribute indices (ints); got {attributes!r}.") from None
    if row.ndim != 1:
        raise ValueError(f"attributes must be one row, shape (k,); got shape {tuple(row.shape)}.")
    check_attributes(row.reshape(1, -1), "attributes")
    values = _row_values(row.tolist())
    # Every choice has at most two options, so the fractions 0 and ½ reach them all.
    return sorted(
        {
            _fill(template, values, fractions)
            for template in TEMPLATES
            for fractions in itertools.product((0.0, 0.5), repeat=_CHOICES)
        }
    )


@functools.cache
def _parsers() -> tuple[re.Pattern, ...]:
    """One full-match regular expression per template; named groups ``<attribute>_<form>`` capture the words."""
    patterns = []
    for template in TEMPLATES:
        rx = []
        for kind, slot, before, after in _template_parts(template):
            if kind == "text":
                rx.append(re.escape(before))
                continue
            attribute, forms = _SLOTS[slot]
            # Longest words first, so "bottom right" is tried as a whole.
            words = sorted((w for ws in _WORDS[attribute].values() for w in ws), key=len, reverse=True)
            alts = []
            for k, form in enumerate(forms):
                pre, post = form.split("{}")
                alts.append(f"{re.escape(pre)}(?P<{attribute}_{k}>{'|'.join(map(re.escape, words))}){re.escape(post)}")
            body = re.escape(before) + "(?:" + "|".join(alts) + ")" + re.escape(after)
            rx.append(body if kind == "slot" else f"(?:{body})?")
        patterns.append(re.compile("".join(rx)))
    return tuple(patterns)


@functools.cache
def _word_index() -> dict[str, dict[str, int]]:
    return {a: {w: VALUES[a].index(v) for v, ws in _WORDS[a].items() for w in ws} for a in ATTRIBUTES}


def parse_caption(text: str, level: int | None = None) -> dict[str, int] | None:
    """Read the attributes back from a caption, or say it is malformed.

    The grammar is exact: a string parses only if it is one of the captions the templates can write (same words,
    spaces and commas; no extra characters). Model samples that drift from it count as malformed.

    Args:
        text: a caption (e.g. a decoded model sample, end marker removed).
        level: if given, the caption must mention exactly the attributes of this level (a level-3 caption must say
            shape, size and colour and nothing else); otherwise any subset that the grammar allows is fine.
    Returns:
        attribute name → value index (into :data:`VALUES`) for each attribute the caption mentions, or None if the
        string is not in the grammar.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}.")
    if level is not None:
        _check_level(level)
    index = _word_index()
    for pattern in _parsers():
        m = pattern.fullmatch(text)
        if m is None:
            continue
        found = {}
        for group, word in m.groupdict().items():
            if word is not None:
                found[group.rsplit("_", 1)[0]] = index[group.rsplit("_", 1)[0]][word]
        if level is not None and set(found) != set(ATTRIBUTES[:level]):
            return None
        return {a: found[a] for a in ATTRIBUTES if a in found}
    return None


# ----------------------------------------------------------------------------------------------------------------------
# Characters
# ----------------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def shapes_vocab() -> CharVocab:
    """The character vocabulary of every caption (letters, space, comma); token 0 = ``PAD`` = the end marker."""
    # Every character a caption can hold: the templates' literal text, the slots' forms and the words.
    literal = [re.sub(r"\{\w+\}|[\[\]]", "", t) for t in TEMPLATES]
    forms = [f.replace("{}", "") for _, fs in _SLOTS.values() for f in fs]
    words = [w for ws in _WORDS.values() for w in itertools.chain(*ws.values())]
    return CharVocab("".join(literal + forms + words))


def max_caption_length(level: int) -> int:
    """Window length L of the encoded captions at ``level``: the longest caption the grammar writes, plus its end."""
    return _max_caption_length(_check_level(level))


@functools.cache
def _max_caption_length(level: int) -> int:
    # Enumerate: the longest word of each attribute gives the longest caption of every template.
    longest = [max(range(len(VALUES[a])), key=lambda i: max(map(len, _WORDS[a][VALUES[a][i]]))) for a in ATTRIBUTES]
    return max(map(len, caption_variants(longest[:level]))) + 1


def encode_captions(texts: Sequence[str], level: int) -> Tensor:
    """Token ids of captions, shape (N, :func:`max_caption_length` (level)): characters, then ``PAD`` (= end).

    Raises:
        ValueError: a caption holds characters outside :func:`shapes_vocab` or is too long for the level.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"texts must be a list of strings (captions); got {type(texts).__name__}.")
    return shapes_vocab().encode_batch(list(texts), max_caption_length(level))


# ----------------------------------------------------------------------------------------------------------------------
# Data sets
# ----------------------------------------------------------------------------------------------------------------------

_SPLITS = ("train", "valid", "test")


def split_seed(split: str, seed: int = 0) -> int:
    """The generator seed of one split: the first 8 bytes of SHA-256 of ``"shapes/<split>/<seed>"`` (63 bits).

    Hashing (instead of ``seed + offset``) keeps the streams of every (split, seed) pair unrelated: train with seed 1
    never equals test with seed 0.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}; got {split!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}.")
    digest = hashlib.sha256(f"shapes/{split}/{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class ShapesData:
    """One split of the captioned shapes.

    Attributes:
        images: float32 shape (N, 3, S, S) in [−1, 1].
        captions: long shape (N, L): characters then ``PAD`` (id 0, the end marker); L = ``max_caption_length(level)``.
        attributes: long shape (N, level): the ground truth, column j indexes ``VALUES[names[j]]``.
        texts: the N captions as strings.
        names: the attribute names of the columns (``ATTRIBUTES[:level]``).
        level: 1..5.  split: ``"train"``, ``"valid"`` or ``"test"``.  seed: the seed of the split's stream.
        vocab: the shared :func:`shapes_vocab`.
    """

    images: Tensor
    captions: Tensor
    attributes: Tensor
    texts: list[str]
    names: tuple[str, ...]
    level: int
    split: str
    seed: int
    vocab: CharVocab

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    @property
    def max_len(self) -> int:
        return self.captions.shape[1]


def load_shapes(
    level: int = 5, split: str = "train", n: int = 10_000, image_size: int = 32, seed: int = 0
) -> ShapesData:
    """Render a split of the captioned shapes (≈ 0.5 s per 10k images at 16 px, 3 s at 32 px, on one CPU core).

    Args:
        level: 1..5 (see the module docstring).
        split: ``"train"``, ``"valid"`` or ``"test"``; each is its own random stream (:func:`split_seed`).
        n: number of examples (≥ 1). The first m examples of a split do not depend on n.
        image_size: side S of the images (16 or 32 for the judges; any S ≥ 8 renders).
        seed: picks another draw of every split.
    Returns:
        :class:`ShapesData`.
    """
    _check_level(level)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}.")
    generator = torch.Generator().manual_seed(split_seed(split, seed))
    # Three sub-streams, one per ingredient, so that n does not change the first examples of any of them.
    seeds = torch.randint(0, 2**62, (3,), generator=generator).tolist()
    g_attr, g_img, g_text = (torch.Generator().manual_seed(s) for s in seeds)
    attributes = sample_attributes(n, level, g_attr)
    images = render(attributes, image_size, g_img)
    texts = caption(attributes, g_text)
    return ShapesData(
        images=images,
        captions=encode_captions(texts, level),
        attributes=attributes,
        texts=texts,
        names=attribute_names(level),
        level=level,
        split=split,
        seed=seed,
        vocab=shapes_vocab(),
    )
