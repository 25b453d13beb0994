"""Coherence metrics (Strict / Feats / Letters), diversity and the Fréchet distance with its floor: hand-made cases."""

import functools
import math

import pytest
import torch

from diffuse_edu.metrics import coherence as C

NAMES = ("shape", "colour")


def _images(n, seed=0):
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def _lookup_judge(table):
    """A judge that 'reads' image i as table[i] (images carry their index in pixel [0, 0, 0])."""
    return lambda images: table[images[:, 0, 0, 0].long()]


def _indexed_images(n):
    x = torch.zeros(n, 3, 8, 8)
    x[:, 0, 0, 0] = torch.arange(n).float()
    return x


def test_text_to_image_perfect_and_one_wrong_attribute():
    targets = torch.tensor([[0, 1], [2, 3], [4, 0], [1, 1]])
    images = _indexed_images(4)
    perfect = C.text_to_image_coherence(images, targets, _lookup_judge(targets), names=NAMES)
    assert (perfect.strict, perfect.feats, perfect.malformed, perfect.letters) == (1.0, 1.0, 0.0, None)
    # Colour wrong on samples 0 and 2: Strict 2/4, Feats 6/8, per attribute shape 1, colour 1/2.
    wrong = targets.clone()
    wrong[[0, 2], 1] += 1
    r = C.text_to_image_coherence(images, targets, _lookup_judge(wrong), names=NAMES)
    assert r.strict == 0.5 and r.feats == 0.75 and r.per_attribute == {"shape": 1.0, "colour": 0.5} and r.n == 4
    # An object with .predict is called through it, and its names are used by default.
    judge = type("J", (), {"predict": staticmethod(_lookup_judge(wrong)), "names": NAMES})()
    assert C.text_to_image_coherence(images, targets, judge).per_attribute == r.per_attribute
    assert C.text_to_image_coherence(images, targets, judge).as_row() == {"strict": 0.5, "feats": 0.75, "malformed": 0}


def _dict_parse(table):
    return lambda text: table.get(text)


def test_image_to_text_malformed_missing_and_letters():
    targets = torch.tensor([[0, 1], [2, 3], [4, 0]])
    parse = _dict_parse({"ok": {"shape": 0, "colour": 1}, "half": {"shape": 2, "colour": 0}, "only": {"shape": 4}})
    r = C.image_to_text_coherence(["ok", "half", "only"], targets, parse, names=NAMES)
    # Sample 0 right; sample 1 colour wrong; sample 2 does not mention the colour (wrong). Strict 1/3, Feats 4/6.
    assert r.strict == pytest.approx(1 / 3) and r.feats == pytest.approx(4 / 6) and r.malformed == 0.0
    r = C.image_to_text_coherence(["ok", "garbage", "only"], targets, parse, ["ok", "ab", "only"], names=NAMES)
    assert r.malformed == pytest.approx(1 / 3) and r.feats == pytest.approx(3 / 6)  # a malformed caption: all wrong
    # Letters: "ok"/"ok" → 3/3; "garbage" vs "ab" → r' = a b ∎, g' = g a r → 0/3; "only"/"only" → 5/5.
    assert r.letters == pytest.approx((1 + 0 + 1) / 3)


def test_letter_accuracy_definition():
    # r' = a b c ∎ (4 positions); g' padded with ∎.
    assert C.letter_accuracy(["abc"], ["abc"]) == 1.0
    assert C.letter_accuracy(["abd"], ["abc"]) == 0.75
    assert C.letter_accuracy(["abcd"], ["abc"]) == 0.75  # too long: the end is missing where it should be
    assert C.letter_accuracy(["ab"], ["abc"]) == 0.75  # too short: c is missing; position 3 is the end on both sides
    assert C.letter_accuracy([""], ["abc"]) == 0.25  # only the end's position agrees
    assert C.letter_accuracy(["xbc", "abc"], ["abc", "abc"]) == pytest.approx((0.75 + 1) / 2)
    with pytest.raises(ValueError, match="one per sample"):
        C.letter_accuracy(["a"], ["a", "b"])


def test_joint_coherence_judge_against_parser():
    read = torch.tensor([[0, 1], [2, 3], [4, 0], [1, 1]])
    captions = ["a", "b", "c", "d"]
    parse = _dict_parse(
        {"a": {"shape": 0, "colour": 1}, "b": {"shape": 2, "colour": 2}, "c": {"shape": 3, "colour": 1}}
    )  # "d" is malformed
    r = C.joint_coherence(_indexed_images(4), captions, _lookup_judge(read), parse, names=NAMES)
    assert r.strict == 0.25 and r.feats == pytest.approx(3 / 8) and r.malformed == 0.25
    assert r.per_attribute == {"shape": 0.5, "colour": 0.25}


def test_with_the_real_grammar_and_ground_truth():
    from diffuse_edu.data.shapes import load_shapes, parse_caption

    d = load_shapes(4, "valid", 50, 16)
    parse = functools.partial(parse_caption, level=4)
    r = C.image_to_text_coherence(d.texts, d.attributes, parse, d.texts, names=d.names)
    assert (r.strict, r.feats, r.malformed, r.letters) == (1.0, 1.0, 0.0, 1.0)
    # The same meaning in another template keeps Strict at 1 but loses Letters.
    from diffuse_edu.data.shapes import caption

    other = caption(d.attributes, torch.Generator().manual_seed(1), template=2)
    r = C.image_to_text_coherence(other, d.attributes, parse, d.texts, names=d.names)
    assert r.strict == 1.0 and r.letters < 0.9
    # Truth as judge: joint coherence of real pairs is perfect; shuffled captions are not.
    judge = _lookup_judge(d.attributes)
    images = _indexed_images(50)
    assert C.joint_coherence(images, d.texts, judge, parse, names=d.names).strict == 1.0
    assert C.joint_coherence(images, d.texts[1:] + d.texts[:1], judge, parse, names=d.names).strict < 0.5


def test_diversity():
    attrs = torch.tensor([[0, 0], [0, 1], [0, 1], [1, 1]])
    assert C.attribute_coverage(attrs, (2, 3)) == pytest.approx(3 / 6)
    assert C.attribute_coverage(attrs, (2, 2)) == 0.75
    assert C.distinct_share(["a", "b", "a", "c"]) == 0.75
    with pytest.raises(ValueError, match="outside"):
        C.attribute_coverage(attrs, (1, 2))
    with pytest.raises(ValueError, match="each of the 2 columns"):
        C.attribute_coverage(attrs, (2,))


def test_frechet_with_floor():
    flat = lambda x: x.flatten(1)[:, :4]  # noqa: E731 (features: the first four pixels)
    real = _images(400, 1)
    reference = _images(400, 2)
    # Samples that *are* real images score exactly the floor.
    same = C.frechet_with_floor(real[:100], reference, real, flat)
    assert same.distance == same.floor and same.n == 100 and same.ratio == 1.0
    # Shifting every feature by 1 adds ‖Δμ‖² ≈ 4 to the distance (FD's mean term), well above the floor.
    shifted = C.frechet_with_floor(real[:100] + 1.0, reference, real, flat)
    assert shifted.distance == pytest.approx(same.floor + 4.0, abs=0.8) and shifted.ratio > 5
    with pytest.raises(ValueError, match="len\\(real\\)"):
        C.frechet_with_floor(_images(500), reference, real, flat)
    with pytest.raises(ValueError, match="image shape"):
        C.frechet_with_floor(torch.zeros(10, 3, 4, 4), reference, real, flat)
    assert math.isinf(C.FrechetWithFloor(1.0, 0.0, 3).ratio)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda: C.text_to_image_coherence(
                torch.zeros(2, 3, 8, 8, dtype=torch.long), torch.zeros(2, 1).long(), lambda x: x
            ),
            TypeError,
            "float",
        ),
        (
            lambda: C.text_to_image_coherence(torch.zeros(2, 8, 8), torch.zeros(2, 1).long(), lambda x: x),
            ValueError,
            "N, C, H, W",
        ),
        (
            lambda: C.text_to_image_coherence(torch.zeros(2, 3, 8, 8), torch.zeros(3, 1).long(), lambda x: x),
            ValueError,
            "one row per sample",
        ),
        (
            lambda: C.text_to_image_coherence(torch.zeros(2, 3, 8, 8), torch.zeros(2, 1), lambda x: x),
            TypeError,
            "integer",
        ),
        (
            lambda: C.text_to_image_coherence(
                torch.zeros(2, 3, 8, 8), torch.zeros(2, 2).long(), lambda x: torch.zeros(2, 1).long()
            ),
            ValueError,
            "returns 1 attributes",
        ),
        (
            lambda: C.text_to_image_coherence(torch.zeros(2, 3, 8, 8), torch.zeros(2, 1).long(), 3),
            TypeError,
            "callable",
        ),
        (
            lambda: C.image_to_text_coherence("abc", torch.zeros(3, 1).long(), lambda t: None, names=["a"]),
            TypeError,
            "list of strings",
        ),
        (
            lambda: C.image_to_text_coherence(["a"], torch.zeros(1, 2).long(), lambda t: None, names=["a"]),
            ValueError,
            "names lists 1",
        ),
        (
            lambda: C.image_to_text_coherence(["a"], torch.zeros(1, 1).long(), lambda t: None, ["a", "b"], names=["a"]),
            ValueError,
            "reference_texts",
        ),
        (
            lambda: C.joint_coherence(torch.zeros(2, 3, 8, 8), ["a"], lambda x: x, lambda t: None, names=["a"]),
            ValueError,
            "captions has 1",
        ),
    ],
)
def test_bad_inputs_raise_one_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
