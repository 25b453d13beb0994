"""Captioned shapes: renderer determinism and ground truth, the grammar and its parser, splits, bad input, the judge."""

import colorsys
import math

import pytest
import torch

from diffuse_edu.data import shapes as S


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_levels_values_and_vocabulary():
    assert S.attribute_names(1) == ("shape",) and S.attribute_names(5) == S.ATTRIBUTES
    assert S.n_values(5) == (5, 2, 5, 4, 3) and math.prod(S.n_values(5)) == 600
    # White and centred are defaults only (dSprites' look); big and black are also values of the later levels.
    assert [a for a in S.DEFAULTS if S.DEFAULTS[a] not in S.VALUES[a]] == ["colour", "position"]
    lengths = [S.max_caption_length(k) for k in range(1, 6)]
    assert lengths == sorted(lengths) and lengths[0] == len("a triangle") + 1
    vocab = S.shapes_vocab()
    assert vocab.itos[0] == "_" and set(vocab.chars) >= set("abcdefghiklmnopqrstuwy ,") and "_" not in vocab.chars
    # max_caption_length is the longest caption of the level (enumerated independently here) plus the end.
    longest = max(len(c) for c in S.caption_variants([2, 0, 4, 3, 0]))  # triangle, small/little, purple, bottom right
    assert longest + 1 == lengths[4]


def test_render_is_deterministic_and_never_repeats():
    attrs = S.sample_attributes(400, 1, _gen(0))
    a = S.render(attrs, 16, _gen(1))
    assert a.shape == (400, 3, 16, 16) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, S.render(attrs, 16, _gen(1)))  # same seed: bit-identical
    assert not torch.equal(a, S.render(attrs, 16, _gen(2)))  # another seed: other jitter
    # Level 1 has only five values, yet no two of 400 images are identical (jitter inside every value).
    assert len({tuple(x.flatten().tolist()) for x in a}) == 400
    # The first m images do not depend on how many are drawn (row-major draws).
    assert torch.equal(S.render(attrs[:7], 16, _gen(1)), a[:7])
    assert torch.equal(S.sample_attributes(5, 3, _gen(4)), S.sample_attributes(50, 3, _gen(4))[:5])


def test_window_rendering_equals_full_image_supersampling():
    # The renderer tests only the sub-pixels of a window around each shape; testing the whole image must agree.
    g = _gen(3)
    n = 40
    shapes = [S.VALUES["shape"][i % 5] for i in range(n)]
    cx, cy = torch.rand(n, generator=g, dtype=torch.float64), torch.rand(n, generator=g, dtype=torch.float64)
    radius = 0.12 + 0.1 * torch.rand(n, generator=g, dtype=torch.float64)
    rot = torch.rand(n, generator=g, dtype=torch.float64) * 6.3
    for size in (16, 32):
        fast = S._coverage(shapes, cx, cy, radius, rot, size, 4, 7)
        full = S._coverage(shapes, cx, cy, radius, rot, size, 4, 7, window=False)
        assert torch.equal(fast, full)


def test_anti_aliasing_by_supersampling():
    attrs = torch.tensor([[0], [1], [2], [3], [4]])
    hard = S.render(attrs, 16, _gen(0), supersample=1)
    soft = S.render(attrs, 16, _gen(0))
    for h, s in zip(hard, soft, strict=True):
        # Without supersampling a pixel is shape or background (two colours); with it, edges take values in between.
        assert len(torch.unique(h[0])) == 2
        assert len(torch.unique(s[0])) > 4
    # The ink is conserved: each pixel's coverage is the mean of its sub-pixels, so totals agree closely.
    ink_hard, ink_soft = (hard[:, 0] + 1).sum(dim=(1, 2)), (soft[:, 0] + 1).sum(dim=(1, 2))
    assert torch.allclose(ink_hard, ink_soft, rtol=0.15)


def test_rendered_ground_truth_position_colour_size_background():
    # Check the renderer's labels from the pixels themselves, without any judge.
    d = S.load_shapes(5, "valid", 300, 32)
    img = (d.images + 1) / 2  # (N, 3, S, S) in [0, 1]
    shape, size, colour, position, background = d.attributes.T
    corner = img[:, :, :2, :2].mean(dim=(1, 2, 3))  # the background (shapes never reach the very corner)
    levels = torch.tensor([0.04, 0.5, 0.96])
    assert torch.equal((corner[:, None] - levels).abs().argmin(1), background)
    ink = (img - corner[:, None, None, None]).abs().amax(1)  # (N, S, S): where the shape is
    mass = ink / ink.sum(dim=(1, 2), keepdim=True)
    grid = (torch.arange(32) + 0.5) / 32
    x = (mass.sum(1) * grid).sum(1)
    y = (mass.sum(2) * grid).sum(1)
    assert torch.equal((x > 0.5).long() + 2 * (y > 0.5).long(), position)  # top left, top right, bottom l., bottom r.
    # Size: at equal shape, the big ones cover more pixels (about (0.20 / 0.13)² as much).
    area = (ink > 0.5 * ink.amax(dim=(1, 2), keepdim=True)).sum(dim=(1, 2)).double()
    for k in range(5):
        small, big = area[(shape == k) & (size == 0)], area[(shape == k) & (size == 1)]
        assert small.max() < big.min()
    # Colour: the hue of the most covered pixel is within the jitter of the named hue.
    flat = img.flatten(2)  # (N, 3, S²)
    hues = {"red": 0, "yellow": 55, "green": 120, "blue": 225, "purple": 285}
    for i in range(len(d)):
        rgb = flat[i, :, ink[i].flatten().argmax()].tolist()
        h = colorsys.rgb_to_hsv(*rgb)[0] * 360
        target = hues[S.VALUES["colour"][colour[i]]]
        assert min(abs(h - target), 360 - abs(h - target)) < 10, (i, h, target)


def test_parser_round_trip_on_every_grammar_form():
    g = _gen(5)
    for level in range(1, 6):
        for row in S.sample_attributes(6, level, g):
            truth = dict(zip(S.attribute_names(level), row.tolist(), strict=True))
            variants = S.caption_variants(row)
            assert len(variants) == len(set(variants)) >= 2
            for text in variants:
                assert S.parse_caption(text) == truth, text
                assert S.parse_caption(text, level=level) == truth, text
                assert len(text) < S.max_caption_length(level)
    # Random captions from every template round-trip too, and all templates occur.
    attrs = S.sample_attributes(300, 5, g)
    texts = S.caption(attrs, g)
    assert all(
        S.parse_caption(t, level=5) == dict(zip(S.ATTRIBUTES, r, strict=True))
        for t, r in zip(texts, attrs.tolist(), strict=True)
    )
    assert {t.startswith(("in the", "at the")) for t in texts} == {True, False} and any("," in t for t in texts)
    for k in range(len(S.TEMPLATES)):
        one = S.caption(attrs[:20], g, template=k)
        assert all(S.parse_caption(t) is not None for t in one)
    # The brief's examples are in the grammar.
    assert S.parse_caption("a big red heart in the top left") == dict(shape=3, size=1, colour=0, position=0)
    assert S.parse_caption("red heart, big, top left") == dict(shape=3, size=1, colour=0, position=0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        "heart ",
        " a heart",
        "A heart",
        "a big red heart in the top lef",
        "a big red heart  in the top left",
        "a red big heart",  # adjectives in the wrong order
        "a big red heart in the top left on white on black",
        "a big red heart on a white",
        "a big red hexagon",
        "heart, big,",
        "a heart_",
        "a big big heart",
        "an heart",
        "a big red heart in the middle",
    ],
)
def test_parser_rejects_malformed_strings(text):
    assert S.parse_caption(text) is None


def test_parser_level_and_type_checks():
    assert S.parse_caption("a heart", level=1) == {"shape": 3}
    assert S.parse_caption("a heart", level=2) is None  # a level-2 caption must give the size
    assert S.parse_caption("a big heart", level=1) is None  # and a level-1 caption must not
    with pytest.raises(TypeError, match="str"):
        S.parse_caption(["a heart"])
    with pytest.raises(ValueError, match="level"):
        S.parse_caption("a heart", level=6)


def test_load_shapes_splits_and_encoding():
    tr = S.load_shapes(3, "train", 64, 16, seed=0)
    assert tr.images.shape == (64, 3, 16, 16) and tr.captions.shape == (64, S.max_caption_length(3))
    assert tr.attributes.shape == (64, 3) and tr.attributes.dtype == torch.long and tr.names == S.attribute_names(3)
    assert tr.captions.dtype == torch.long and tr.image_size == 16 and len(tr) == 64
    assert tr.vocab.decode(tr.captions) == tr.texts
    assert [S.parse_caption(t, level=3) for t in tr.texts] == [
        dict(zip(tr.names, r, strict=True)) for r in tr.attributes.tolist()
    ]
    again = S.load_shapes(3, "train", 64, 16, seed=0)
    assert torch.equal(again.images, tr.images) and again.texts == tr.texts
    te = S.load_shapes(3, "test", 64, 16, seed=0)
    assert not torch.equal(te.attributes, tr.attributes) and not torch.equal(te.images, tr.images)
    assert not torch.equal(S.load_shapes(3, "train", 64, 16, seed=1).images, tr.images)
    short = S.load_shapes(3, "train", 10, 16, seed=0)  # the first examples do not depend on n
    assert torch.equal(short.images, tr.images[:10]) and short.texts == tr.texts[:10]
    assert len({S.split_seed(s, k) for s in ("train", "valid", "test") for k in range(3)}) == 9


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: S.encode_captions(["a Heart"], 1), ValueError, "outside the vocabulary"),
        (lambda: S.encode_captions(["a heart!"], 1), ValueError, "outside the vocabulary"),
        (lambda: S.encode_captions(["a_heart"], 1), ValueError, "outside the vocabulary"),
        (lambda: S.encode_captions(["a big red heart"], 1), ValueError, "max_len"),
        (lambda: S.encode_captions("a heart", 1), TypeError, "list of strings"),
        (lambda: S.render(torch.tensor([[0.0]]), 16), TypeError, "integer"),
        (lambda: S.render(torch.tensor([[5]]), 16), ValueError, "shape"),
        (lambda: S.render(torch.tensor([[0, 2]]), 16), ValueError, "size"),
        (lambda: S.render(torch.zeros(2, 6, dtype=torch.long), 16), ValueError, "level"),
        (lambda: S.render(torch.tensor([0]), 16), ValueError, r"\(N, level\)"),
        (lambda: S.render(torch.tensor([[0]]), 4), ValueError, "image_size"),
        (lambda: S.render(torch.tensor([[0]]), 16.0), ValueError, "image_size"),
        (lambda: S.render(torch.tensor([[0]]), 16, "seed"), TypeError, "generator"),
        (lambda: S.sample_attributes(0, 1), ValueError, "n must"),
        (lambda: S.sample_attributes(3, 0), ValueError, "level"),
        (lambda: S.load_shapes(6), ValueError, "level"),
        (lambda: S.load_shapes(1, "val"), ValueError, "split"),
        (lambda: S.load_shapes(1, "train", 0), ValueError, "n must"),
        (lambda: S.caption(torch.tensor([[0]]), template=9), ValueError, "template"),
    ],
)
def test_bad_inputs_raise_one_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_judge_agrees_with_ground_truth_and_caches(tmp_path):
    from diffuse_edu.nets.judges import ShapeAttributeClassifier
    from diffuse_edu.recipes.judges import shape_judge, shape_judge_accuracy

    # A tiny level-2 judge at 16 px (≈ 5 s); the full judges reach ≥ 99.9 % (docs/concepts/shapes-data.md).
    state = torch.random.get_rng_state()
    judge = shape_judge(2, 16, cache=tmp_path, verbose=False, steps=120, batch_size=64)
    assert torch.equal(torch.random.get_rng_state(), state)  # training did not move the global stream
    assert isinstance(judge, ShapeAttributeClassifier) and not judge.training and judge.names == ("shape", "size")
    acc = shape_judge_accuracy(judge, n=1000)
    assert acc["size"] > 0.97 and acc["shape"] > 0.9, acc
    test = S.load_shapes(2, "test", 200, 16)
    assert judge.predict(test.images).shape == (200, 2) and judge.embed(test.images).shape == (200, 128)
    # Cached: a second call returns the same weights without training (also from disk, in a fresh process).
    assert shape_judge(2, 16, cache=tmp_path, verbose=False, steps=120, batch_size=64) is judge
    from diffuse_edu.recipes import judges as R

    R._LOADED.clear()
    reloaded = shape_judge(2, 16, cache=tmp_path, verbose=False, steps=120, batch_size=64)
    assert reloaded is not judge and torch.equal(reloaded.predict(test.images), judge.predict(test.images))
    # Bad images: one clear error naming the expected shape or dtype.
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16\)"):
        judge.predict(torch.zeros(2, 3, 32, 32))
    with pytest.raises(TypeError, match="float"):
        judge.predict(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="image_size"):
        shape_judge(2, 24, cache=tmp_path)
    with pytest.raises(ValueError, match="unknown judge settings"):
        shape_judge(2, 16, cache=tmp_path, epochs=3)
