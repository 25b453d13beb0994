"""Property-based fuzz suite, part two (issue 11): the modules that landed after ``tests/test_fuzz.py``.

Same harness, same property (see that module's docstring): every generated call either succeeds with a finite,
correctly shaped (and, for ids, in-range) result, or raises ``ValueError``/``TypeError`` from a ``raise`` statement
in diffuse_edu. Covered here: the captioned shapes, the character vocabulary and surnames, Adult's arguments, table
schemas and encoders, batch streams; the judges, the column transformer, the pixel + character transformer, the
uniform-Bayes wrapper; coherence, Fréchet, text, joint and tabular metrics; ``train``, checkpoints, ``viz``,
``TabularDiffusion`` and the judge recipes.

Two additions to the harness: a trial may name extra exception types that count as clean when diffuse_edu raises them
(``FileNotFoundError`` for a path that does not exist is the idiomatic answer, not a foreign error), and entry points
that cost tens of milliseconds per call (reading Adult or the surname list, training) run a fifth of the examples.

**Empty batches**, as in part one: the elementwise functions work and return empty results (``render``, ``caption``,
``encode_captions``, ``CharVocab.encode_batch`` / ``decode``, ``TableEncoder.decode``, the networks' forward and the
judges' ``predict`` / ``embed``); everything that averages, draws or fits refuses them (``sample_attributes``,
``load_shapes``, ``TableSchema.infer``, ``TableEncoder.fit`` / ``encode`` / ``encode_observed``, ``infinite_batches``,
every metric, ``TabularDiffusion.fit`` / ``sample`` / ``impute``).

Run ``.venv/bin/python tests/test_fuzz_more.py --examples 40 --details`` for the outcome table.
"""

from __future__ import annotations

import atexit
import collections
import functools
import json
import math
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_fuzz as harness  # noqa: E402 - the shared harness (part one of the suite)
from test_fuzz import (  # noqa: E402
    CLEAN,
    FOREIGN,
    OK,
    PASSING,
    REFUSED,
    SETTINGS,
    SILENT,
    Trial,
    check_float,
    check_tensor,
    first_problem,
    float_arg,
    gen_arg,
    pick,
    randn,
    seed,
    time_arg,
    token_arg,
    which_bad,
)

import diffuse_edu.checkpoint as ckpt  # noqa: E402
import diffuse_edu.data.adult as adult  # noqa: E402
import diffuse_edu.data.shapes as shapes  # noqa: E402
import diffuse_edu.metrics.coherence as coh  # noqa: E402
import diffuse_edu.metrics.frechet as fr  # noqa: E402
import diffuse_edu.metrics.joint as mj  # noqa: E402
import diffuse_edu.metrics.tabular as mt  # noqa: E402
import diffuse_edu.metrics.text as mtext  # noqa: E402
import diffuse_edu.viz as viz  # noqa: E402
from diffuse_edu.data.batching import infinite_batches  # noqa: E402
from diffuse_edu.data.tabular import KINDS, TableEncoder, TableSchema  # noqa: E402
from diffuse_edu.data.text import PAD, CharVocab, load_surnames, read_surnames, split_of  # noqa: E402
from diffuse_edu.masked import MaskedProcess  # noqa: E402
from diffuse_edu.nets.column_transformer import ColumnTransformer  # noqa: E402
from diffuse_edu.nets.judges import DigitClassifier, ShapeAttributeClassifier  # noqa: E402
from diffuse_edu.nets.mmdit import JointPixelCharTransformer  # noqa: E402
from diffuse_edu.nets.transformer import CausalTransformer, DiffusionTransformer  # noqa: E402
from diffuse_edu.nets.uniform_bayes import UniformBayesDenoiser  # noqa: E402
from diffuse_edu.train import train, train_iter  # noqa: E402

PKG = harness.PKG

# ---------------------------------------------------------------------------------------------------------------------
# The registry and the outcome (part one's, plus exception types a trial declares clean)
# ---------------------------------------------------------------------------------------------------------------------

CASES: dict[str, tuple[str, Callable, bool]] = {}  # name -> (family, case, heavy)


def case(family: str, heavy: bool = False):
    def register(fn):
        CASES[fn.__name__.removeprefix("case_")] = (family, fn, heavy)
        return fn

    return register


def outcome(trial: Trial) -> tuple[str, str]:
    """Part one's classification; an exception of a type in ``trial.also_clean`` raised by diffuse_edu for invalid
    input counts as clean (e.g. ``FileNotFoundError`` for a missing file)."""
    extra = getattr(trial, "also_clean", ())
    if extra:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = trial.call()
        except extra as exc:
            if harness.raised_by_package(exc) and not trial.valid:
                return CLEAN, str(exc)[:200]
            return (REFUSED if trial.valid else FOREIGN), f"{type(exc).__name__}: {str(exc)[:200]}"
        except Exception:  # noqa: BLE001 - run it again through part one's classification
            return harness.outcome(trial)
        if not trial.valid:
            return SILENT, "invalid input accepted"
        problem = trial.check(result)
        return (SILENT, problem) if problem else (OK, "")
    return harness.outcome(trial)


def with_clean(trial: Trial, *types) -> Trial:
    trial.also_clean = types
    return trial


def check_type(r, cls) -> str | None:
    return None if isinstance(r, cls) else f"expected a {cls.__name__}, got {type(r).__name__}"


def gen(s: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(s)


NAN, INF = float("nan"), float("inf")
BAD_INTS = [0, -1, True, 2.5, "3", None, NAN]
BAD_NUMS = [NAN, INF, "1", True, None, [1.0]]


# ---------------------------------------------------------------------------------------------------------------------
# data: captioned shapes
# ---------------------------------------------------------------------------------------------------------------------

LIMITS = shapes.n_values(5)  # values per attribute: (5, 2, 5, 4, 3)


def attributes_arg(d, n: int, level: int, bad: bool):
    """Attribute indices long (n, level) (column j in [0, LIMITS[j])), or broken ones."""
    g = gen(seed(d))
    a = torch.stack([torch.randint(0, LIMITS[j], (n,), generator=g) for j in range(level)], dim=1)
    if not bad:
        return a
    kinds = ["float", "bool", "1d", "wide", "no_cols", "3d", "not_tensor", "complex"] + (["neg", "high"] if n else [])
    kind = pick(d, kinds)
    if kind in ("neg", "high"):
        j = d.draw(st.integers(0, level - 1))
        a[d.draw(st.integers(0, n - 1)), j] = -1 if kind == "neg" else LIMITS[j]
        return a
    return {
        "float": a.float(),
        "bool": a > 0,
        "1d": a[:, 0],
        "wide": torch.zeros(n, 6, dtype=torch.long),
        "no_cols": torch.zeros(n, 0, dtype=torch.long),
        "3d": a[None],
        "not_tensor": a.tolist(),
        "complex": a.to(torch.complex64),
    }[kind]


def check_attrs(r, n, level) -> str | None:
    problem = check_tensor(r, (n, level), integer=True, lo=0)
    if problem is None and n and (r >= torch.tensor(LIMITS[:level])).any():
        return "attribute index beyond its number of values"
    return problem


def check_captions(r, attributes) -> str | None:
    """Every caption parses back (at its level) to its attribute row."""
    if not isinstance(r, list) or len(r) != len(attributes):
        return f"expected {len(attributes)} captions, got {r!r:.80}"
    level = attributes.shape[1]
    for text, row in zip(r, attributes.tolist(), strict=True):
        parsed = shapes.parse_caption(text, level)
        if parsed is None or [parsed[a] for a in shapes.ATTRIBUTES[:level]] != row:
            return f"caption {text!r} does not parse back to {row}"
    return None


@case("data_shapes")
def case_render(d):
    bad = which_bad(d, "attributes", "image_size", "generator", "supersample", "chunk")
    n, level = d.draw(st.integers(0, 3)), d.draw(st.integers(1, 5))
    attrs = attributes_arg(d, n, level, bad == "attributes")
    size = pick(d, [8, 12, 16]) if bad != "image_size" else pick(d, [7, 0, True, 16.0, "16", None, -8])
    g = gen_arg(d, bad == "generator")
    ss = pick(d, [1, 2, 4]) if bad != "supersample" else pick(d, [0, -1, True, 2.5, None])
    chunk = pick(d, [1, 2048]) if bad != "chunk" else pick(d, [0, True, 1.5, "8"])
    return Trial(
        lambda: shapes.render(attrs, size, g, supersample=ss, chunk=chunk),
        bad is None,
        lambda r: check_tensor(r, (n, 3, size, size), lo=-1, hi=1),
        f"render({attrs!r:.60}, {size!r}, supersample={ss!r}, chunk={chunk!r})",
    )


@case("data_shapes")
def case_sample_attributes(d):
    bad = which_bad(d, "n", "level", "generator")
    n = d.draw(st.integers(1, 4)) if bad != "n" else pick(d, BAD_INTS)
    level = d.draw(st.integers(1, 5)) if bad != "level" else pick(d, [0, 6, True, 2.5, "3", None])
    g = gen_arg(d, bad == "generator")
    return Trial(lambda: shapes.sample_attributes(n, level, g), bad is None, lambda r: check_attrs(r, n, level))


@case("data_shapes")
def case_caption(d):
    bad = which_bad(d, "attributes", "generator", "template")
    n, level = d.draw(st.integers(0, 3)), d.draw(st.integers(1, 5))
    attrs = attributes_arg(d, n, level, bad == "attributes")
    g = gen_arg(d, bad == "generator")
    template = pick(d, [None, 0, 3]) if bad != "template" else pick(d, [-1, 4, True, 1.5, "0"])
    return Trial(lambda: shapes.caption(attrs, g, template=template), bad is None, lambda r: check_captions(r, attrs))


@case("data_shapes")
def case_caption_variants(d):
    bad = which_bad(d, "row")
    level = d.draw(st.integers(1, 5))
    row = attributes_arg(d, 1, level, False)[0]
    if d.draw(st.booleans()):
        row = row.tolist()
    if bad:
        row = pick(d, [[-1], [5], [0.5], "0", None, [[0, 1]], [0] * 6, [], torch.zeros(1, 2), [True]])
    want = torch.as_tensor(row).reshape(1, -1) if bad is None else None
    return Trial(
        lambda: shapes.caption_variants(row),
        bad is None,
        lambda r: check_captions(r, want.expand(len(r), -1)) if r else "no variants",
        f"caption_variants({row!r})",
    )


@case("data_shapes")
def case_parse_caption(d):
    bad = which_bad(d, "text", "level")
    level = d.draw(st.integers(1, 5))
    attrs = attributes_arg(d, 1, level, False)
    known = d.draw(st.booleans())
    text = shapes.caption(attrs, gen(seed(d)))[0] if known else d.draw(st.text(max_size=20))
    if bad == "text":
        known, text = False, pick(d, [None, 3, b"a red square", ["a red square"], attrs])
    use_level = pick(d, [None, level]) if bad != "level" else pick(d, [0, 6, True, 2.5, "3"])

    def check(r):
        if r is None:
            return "a caption of the grammar did not parse" if known else None
        if not isinstance(r, dict) or any(not 0 <= v < LIMITS[shapes.ATTRIBUTES.index(a)] for a, v in r.items()):
            return f"bad parse {r!r}"
        if known and [r.get(a) for a in shapes.ATTRIBUTES[:level]] != attrs[0].tolist():
            return f"{text!r} parsed to {r}, expected {attrs[0].tolist()}"
        return None

    return Trial(lambda: shapes.parse_caption(text, use_level), bad is None, check, f"parse_caption({text!r})")


@case("data_shapes")
def case_encode_captions(d):
    bad = which_bad(d, "texts", "level")
    n, level = d.draw(st.integers(0, 3)), d.draw(st.integers(1, 5))
    texts = shapes.caption(attributes_arg(d, n, level, False), gen(seed(d)))
    if d.draw(st.booleans()):
        texts = tuple(texts)
    if bad == "texts":
        texts = pick(
            d,
            ["a red square", None, [3], ["A Red Square"], ["a red square_"], ["x" * 200], [None], 5, [b"a square"]],
        )
    lvl = level if bad != "level" else pick(d, [0, 6, True, 2.5, "3", None])
    L = shapes.max_caption_length(level)

    def check(r):
        problem = check_tensor(r, (n, L), integer=True, lo=0, hi=shapes.shapes_vocab().vocab_size)
        if problem is None and n and shapes.shapes_vocab().decode(r) != list(texts):
            return "the ids do not decode back to the captions"
        return problem

    return Trial(lambda: shapes.encode_captions(texts, lvl), bad is None, check, f"encode_captions({texts!r:.80})")


@case("data_shapes")
def case_load_shapes(d):
    bad = which_bad(d, "level", "split", "n", "image_size", "seed")
    level = d.draw(st.integers(1, 5)) if bad != "level" else pick(d, [0, 6, True, "3", None])
    split = pick(d, ["train", "valid", "test"]) if bad != "split" else pick(d, ["val", None, 3, ["train"], "TRAIN"])
    n = d.draw(st.integers(1, 3)) if bad != "n" else pick(d, BAD_INTS)
    size = pick(d, [8, 16]) if bad != "image_size" else pick(d, [4, 0, True, 16.0, "16"])
    s = d.draw(st.integers(0, 3)) if bad != "seed" else pick(d, [-1, 2.5, "0", None, True])

    def check(r):
        if not isinstance(r, shapes.ShapesData):
            return check_type(r, shapes.ShapesData)
        return first_problem(
            check_tensor(r.images, (n, 3, size, size), lo=-1, hi=1),
            check_attrs(r.attributes, n, level),
            check_tensor(r.captions, (n, shapes.max_caption_length(level)), integer=True, lo=0, hi=r.vocab.vocab_size),
            check_captions(r.texts, r.attributes),
        )

    return Trial(
        lambda: shapes.load_shapes(level, split, n, size, s),
        bad is None,
        check,
        f"load_shapes({level!r}, {split!r}, {n!r}, {size!r}, {s!r})",
    )


@case("data_shapes")
def case_shapes_helpers(d):
    what = pick(d, ["attribute_names", "n_values", "max_caption_length", "split_seed"])
    bad = which_bad(d, "a", "b")
    if what == "split_seed":
        split = pick(d, ["train", "valid", "test"]) if bad != "a" else pick(d, ["val", None, 3, ["train"]])
        s = d.draw(st.integers(0, 2**40)) if bad != "b" else pick(d, [-1, 2.5, "0", None, True])
        return Trial(
            lambda: shapes.split_seed(split, s),
            bad is None,
            lambda r: None if isinstance(r, int) and 0 <= r < 2**63 else f"bad seed {r!r}",
        )
    level = d.draw(st.integers(1, 5)) if bad is None else pick(d, [0, 6, True, 2.5, "3", None, [3]])
    fn = getattr(shapes, what)

    def check(r):
        if what == "attribute_names":
            return None if r == shapes.ATTRIBUTES[:level] else f"got {r!r}"
        if what == "n_values":
            return None if r == LIMITS[:level] else f"got {r!r}"
        return None if isinstance(r, int) and r > 10 else f"got {r!r}"

    return Trial(lambda: fn(level), bad is None, check, f"{what}({level!r})")


# ---------------------------------------------------------------------------------------------------------------------
# data: characters and surnames
# ---------------------------------------------------------------------------------------------------------------------

VOCAB = CharVocab("abcdefgh ")


@case("data_text")
def case_char_vocab(d):
    bad = which_bad(d, "chars")
    chars = pick(d, ["abc", "ba a", ["x", "y"], ("q",), "abcdefghij, "])
    if bad:
        chars = pick(d, ["", "ab_", ["ab"], None, 5, [1, 2], [""], {"a": 1, "bc": 2}, b"ab"])

    def check(r):
        if not isinstance(r, CharVocab):
            return check_type(r, CharVocab)
        return None if r.vocab_size == len(set(chars)) + 1 and r.itos[0] == PAD else f"bad vocabulary {r!r}"

    return Trial(lambda: CharVocab(chars), bad is None, check, f"CharVocab({chars!r})")


def words_arg(d, n: int) -> list[str]:
    return [d.draw(st.text(alphabet="abcdefgh ", max_size=5)) for _ in range(n)]


@case("data_text")
def case_char_vocab_methods(d):
    what = pick(d, ["encode", "encode_batch", "decode", "decode_raw", "is_well_formed", "n_chars"])
    bad = which_bad(d, "a", "b")
    V = VOCAB.vocab_size
    if what in ("encode", "encode_batch"):
        n = d.draw(st.integers(0, 3))
        words = words_arg(d, n)
        max_len = d.draw(st.integers(6, 8)) if bad != "b" else pick(d, [0, True, 2.5, "6", None, -3])
        if what == "encode":
            word = words[0] if n else "abc"
            if bad == "a":
                word = pick(d, [None, 3, ["ab"], "ABC", "a_b", "abcdefghabcdefgh"])

            def check(r):
                if not isinstance(r, list) or len(r) != max_len or VOCAB.decode(r) != word:
                    return f"encode({word!r}) = {r!r}"
                return None

            return Trial(lambda: VOCAB.encode(word, max_len), bad is None, check, f"encode({word!r}, {max_len!r})")
        if bad == "a":
            words = pick(d, ["abc", None, [3], ["ABC"], ["a", None], 5, [["a"]]])

        def check_batch(r):
            problem = check_tensor(r, (n, max_len), integer=True, lo=0, hi=V)
            if problem is None and VOCAB.decode(r) != words:
                return "does not decode back"
            return problem

        return Trial(
            lambda: VOCAB.encode_batch(words, max_len),
            bad is None,
            check_batch,
            f"encode_batch({words!r}, {max_len!r})",
        )
    n, L = d.draw(st.integers(0, 3)), d.draw(st.integers(1, 5))
    shape = pick(d, [(n, L), (L,)])
    tokens = token_arg(d, shape, V, bad == "a")
    if bad == "a" and not isinstance(tokens, torch.Tensor) and tokens is not None and not isinstance(tokens, str):
        tokens = "abc"  # lists and integer arrays of ids are valid input here
    if bad == "a" and d.draw(st.booleans()):
        tokens = pick(d, ["abc", None, [[0.5, 1.0]], torch.zeros(2, 2, 2, dtype=torch.long), [[1, 2], [3]]])
    if bad is None and d.draw(st.booleans()):
        tokens = tokens.tolist()
    strict = pick(d, [False, True]) if bad != "b" or what != "decode" else pick(d, ["yes", None, 1])
    if what in ("decode", "decode_raw"):

        def check(r):
            want = tuple(torch.as_tensor(tokens).shape)
            if len(want) == 1:
                return None if isinstance(r, str) and len(r) <= L else f"expected a string, got {r!r}"
            return None if isinstance(r, list) and len(r) == n and all(isinstance(s, str) for s in r) else f"got {r!r}"

        fn = (lambda: VOCAB.decode(tokens, strict=strict)) if what == "decode" else (lambda: VOCAB.decode_raw(tokens))
        valid = bad is None or (bad == "b" and what != "decode")
        if valid and strict and what == "decode":
            pad = torch.as_tensor(tokens) == VOCAB.pad_id
            if bool(((pad.long().cumsum(-1) > 0) & ~pad).any()):
                valid = False  # strict=True refuses a letter after the end (PAD): invalid input
        return Trial(fn, valid, check, f"{what}({tokens!r:.60})")
    valid = bad in (None, "b")
    if what == "is_well_formed":
        want = tuple(torch.as_tensor(tokens).shape[:-1]) if valid else None
        return Trial(
            lambda: VOCAB.is_well_formed(tokens),
            valid,
            lambda r: check_tensor(r, want, dtype=torch.bool),
            f"is_well_formed({tokens!r:.60})",
        )
    want = tuple(torch.as_tensor(tokens).shape[:-1]) if valid else None
    return Trial(
        lambda: VOCAB.n_chars(tokens),
        valid,
        lambda r: check_tensor(r, want, integer=True, lo=1, hi=L + 2),
        f"n_chars({tokens!r:.60})",
    )


@case("data_text", heavy=True)
def case_load_surnames(d):
    bad = which_bad(d, "split", "max_len", "path", "sha256", "limit")
    split = pick(d, ["train", "valid", "test", "all"]) if bad != "split" else pick(d, ["val", None, 3, ["train"]])
    max_len = pick(d, [4, 16]) if bad != "max_len" else pick(d, [1, 0, True, 2.5, "16", None])
    path = None if bad != "path" else pick(d, [3, "/nonexistent/dist.all.last", ["a"], Path("/")])
    sha = pick(d, [None, "default"]) if bad != "sha256" else pick(d, ["0" * 64, 3, b"x"])
    limit = pick(d, [None, 1, 5]) if bad != "limit" else pick(d, [0, -1, True, 2.5, "5"])
    kw = {} if sha == "default" else {"sha256": sha}

    def check(r):
        n = len(r.strings)
        return first_problem(
            check_tensor(r.tokens, (n, max_len), integer=True, lo=0, hi=r.vocab.vocab_size),
            None if limit is None or n <= limit else f"{n} names for limit {limit}",
            None if r.vocab.decode(r.tokens[:3]) == r.strings[:3] else "tokens do not decode to the names",
        )

    return with_clean(
        Trial(lambda: load_surnames(split, max_len, path, limit=limit, **kw), bad is None, check, f"{bad}"),
        FileNotFoundError,
    )


@case("data_text")
def case_text_helpers(d):
    what = pick(d, ["split_of", "read_surnames"])
    bad = which_bad(d, "a")
    if what == "split_of":
        word = d.draw(st.text(max_size=8)) if bad is None else pick(d, [None, 3, b"smith", ["smith"]])
        return Trial(
            lambda: split_of(word), bad is None, lambda r: None if r in ("train", "valid", "test") else f"{r!r}"
        )
    path = None if bad is None else pick(d, [3, "/nonexistent/file", ["a"]])
    return with_clean(
        Trial(
            lambda: read_surnames(path),
            bad is None,
            lambda r: None if len(r[0]) == len(r[1]) > 80_000 and all(isinstance(w, str) for w in r[0][:5]) else "?",
        ),
        FileNotFoundError,
    )


# ---------------------------------------------------------------------------------------------------------------------
# data: Adult (no network: valid calls only when the files are cached, as the Adult fixture leaves them)
# ---------------------------------------------------------------------------------------------------------------------

ADULT_CACHED = adult._cached_ok(adult.adult_dir())


@case("data_adult", heavy=True)
def case_adult(d):
    what = pick(d, ["load_adult", "adult_subsample"])
    args = ["split", "cache"] + (["n", "seed"] if what == "adult_subsample" else [])
    bad = which_bad(d, *args)
    if not ADULT_CACHED and bad is None:
        bad = pick(d, args)  # never fetch: without the cached files only refusals before any download are tried
    split = pick(d, ["train", "test"]) if bad != "split" else pick(d, ["valid", None, 3, ["train"], "TRAIN"])
    cache = None if bad != "cache" else pick(d, [3, ["a"], 2.5])
    if what == "load_adult":

        def check(r):
            if not isinstance(r, pd.DataFrame) or tuple(r.columns) != adult.ADULT_COLUMNS:
                return "not the Adult frame"
            return None if len(r) == adult.ADULT_ROWS[split] else f"{len(r)} rows"

        return Trial(lambda: adult.load_adult(split, cache), bad is None, check, f"load_adult({split!r}, {cache!r})")
    n = d.draw(st.integers(1, 40)) if bad != "n" else pick(d, [0, -1, True, 2.5, "5", None, 10**6])
    s = d.draw(st.integers(0, 9)) if bad != "seed" else pick(d, [-1, 2.5, "0", None, True])

    def check_sub(r):
        if not isinstance(r, pd.DataFrame) or tuple(r.columns) != adult.ADULT_COLUMNS or len(r) != n:
            return f"expected {n} Adult rows"
        return None

    return Trial(
        lambda: adult.adult_subsample(n, split, s, cache),
        bad is None,
        check_sub,
        f"adult_subsample({n!r}, {split!r}, {s!r}, {cache!r})",
    )


# ---------------------------------------------------------------------------------------------------------------------
# data: table schemas and encoders (generated frames)
# ---------------------------------------------------------------------------------------------------------------------

TEXT = np.array(["a", "b", "c"], dtype=object)


def column(kind: str, n: int, rng: np.random.Generator):
    """One generated column of ``kind`` (never all NaN)."""
    if kind == "num":
        return rng.normal(size=n).round(3) + 0.5
    if kind == "num_nan":
        x = rng.normal(size=n) + 0.5
        x[rng.random(n) < 0.3] = np.nan
        x[0] = 1.25
        return x
    if kind == "int":
        return rng.integers(0, 1000, n)
    if kind == "small_int":
        return rng.integers(2007, 2010, n)
    if kind == "whole":
        return rng.integers(0, 50, n).astype(float)
    if kind == "cat":
        return TEXT[rng.integers(0, 3, n)].copy()
    if kind == "cat_nan":
        x = TEXT[rng.integers(0, 3, n)].copy()
        x[rng.random(n) < 0.3] = np.nan
        x[0] = "a"
        return x
    if kind == "flag":
        return rng.random(n) < 0.5
    if kind == "catdtype":
        return pd.Categorical(np.array(["x", "y"], dtype=object)[rng.integers(0, 2, n)], categories=["x", "y", "z"])
    if kind == "mixed":
        return np.array(["a", 1, 2.5], dtype=object)[rng.integers(0, 3, n)]
    if kind == "nullable":
        return pd.array([None if v < 0.2 else int(10 * v) for v in rng.random(n)], dtype="Int64")
    raise AssertionError(kind)


COLUMN_KINDS = [
    "num",
    "num_nan",
    "int",
    "small_int",
    "whole",
    "cat",
    "cat_nan",
    "flag",
    "catdtype",
    "mixed",
    "nullable",
]


def frame(d, n: int | None = None, kinds=None) -> pd.DataFrame:
    """A small mixed-type frame: 1–4 generated columns named after their kinds, 1–12 rows."""
    n = d.draw(st.integers(1, 12)) if n is None else n
    if kinds is None:
        kinds = d.draw(st.lists(st.sampled_from(COLUMN_KINDS), min_size=1, max_size=4, unique=True))
    rng = np.random.default_rng(seed(d))
    df = pd.DataFrame({k: column(k, n, rng) for k in kinds})
    if df["nullable"].isna().all() if "nullable" in df else False:
        df.loc[0, "nullable"] = 3
    return df


def break_frame(d, df: pd.DataFrame, kinds) -> tuple[object, str]:
    """``df`` broken in one of ``kinds`` of ways; returns (frame, the kind)."""
    kind = pick(d, kinds)
    n = len(df)
    c = pick(d, list(df.columns))
    out = df.copy()
    if kind == "empty_rows":
        out = df.iloc[:0]
    elif kind == "no_cols":
        out = pd.DataFrame(index=range(n))
    elif kind == "all_nan":
        out["void"] = pick(d, [np.full(n, np.nan), np.array([None] * n, dtype=object)])
    elif kind == "inf":
        out["num_inf"] = np.where(np.arange(n) == 0, pick(d, [np.inf, -np.inf]), 1.5)
    elif kind == "dup":
        out = pd.concat([df, df[[c]]], axis=1)
    elif kind == "nonstr":
        out = df.rename(columns={c: pick(d, [0, 1.5, ("a", "b")])})
    elif kind == "datetime":
        out["when"] = pd.date_range("2020-01-01", periods=n)
    elif kind == "complex":
        out["z"] = np.ones(n, dtype=complex)
    elif kind == "lists":
        out["lists"] = pd.Series([[1, 2]] * n, dtype=object)
    elif kind == "not_frame":
        out = pick(d, [df.to_dict(), df.to_numpy(), None, "df", df[c]])
    else:
        raise AssertionError(kind)
    return out, kind


def check_schema(r, df, overrides) -> str | None:
    if not isinstance(r, TableSchema):
        return check_type(r, TableSchema)
    if r.names != list(df.columns) or any(c.kind not in KINDS for c in r):
        return f"schema {r} does not match the frame's columns {list(df.columns)}"
    for c in r:
        s = df[c.name]
        if c.name in overrides:
            if c.kind != overrides[c.name]:
                return f"{c.name}: override {overrides[c.name]} ignored"
        elif not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            if c.kind != "categorical":
                return f"{c.name}: a text/bool column inferred as {c.kind}"
        else:
            x = s.to_numpy(dtype=np.float64, na_value=np.nan)
            x = x[~np.isnan(x)]
            if not np.all(x == np.round(x)) and c.kind != "numeric":
                return f"{c.name}: fractional numbers inferred as {c.kind}"
    return None


def numeric_columns(df) -> list[str]:
    return [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]


@case("data_tabular")
def case_table_schema_infer(d):
    bad = which_bad(d, "df", "overrides", "max_int_categories")
    df = frame(d)
    overrides = {}
    nums = numeric_columns(df)
    if nums and d.draw(st.booleans()):
        overrides = {pick(d, nums): pick(d, list(KINDS))}
    if any(not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]) for c in df.columns):
        if d.draw(st.booleans()):
            text_col = next(c for c in df.columns if c not in nums)
            overrides[text_col] = "categorical"
    mic = d.draw(st.integers(0, 12))
    if bad == "df":
        df, _ = break_frame(
            d, df, ["empty_rows", "no_cols", "all_nan", "dup", "nonstr", "datetime", "complex", "not_frame"]
        )
    elif bad == "overrides":
        text_cols = [c for c in df.columns if c not in nums]
        options = [{"nope": "numeric"}, {df.columns[0]: "float"}, "abc", ["a"], 3, {df.columns[0]: None}]
        if text_cols:
            options.append({text_cols[0]: pick(d, ["numeric", "integer"])})
        overrides = pick(d, options)
    elif bad == "max_int_categories":
        mic = pick(d, [-1, True, 2.5, "3", None])
    return Trial(
        lambda: TableSchema.infer(df, overrides, mic),
        bad is None,
        lambda r: check_schema(r, df, overrides),
        f"infer({type(df).__name__} {getattr(df, 'dtypes', '')!s:.120}, {overrides!r}, {mic!r})",
    )


@case("data_tabular")
def case_table_encoder_constructor(d):
    bad = which_bad(d, "schema", "overrides", "nan_as_category", "max_int_categories", "max_knots")
    df = frame(d)
    schema = pick(d, [None, TableSchema.infer(df)])
    overrides = None if schema is not None else pick(d, [None, {}, {df.columns[0]: "categorical"}])
    nac = pick(d, [True, False])
    mic = d.draw(st.integers(0, 12))
    knots = pick(d, [2, 10, 1000])
    if bad == "schema":
        schema = pick(d, ["schema", {"columns": []}, df, 3])
    elif bad == "overrides":
        overrides = pick(d, ["abc", ["a"], 3, {df.columns[0]: "float"}])
        if schema is not None and d.draw(st.booleans()):
            overrides = {df.columns[0]: "categorical"}  # a schema and overrides together
    elif bad == "nan_as_category":
        nac = pick(d, ["no", None, 1, "False"])
    elif bad == "max_int_categories":
        mic = pick(d, [-1, True, 2.5, "3", None])
    elif bad == "max_knots":
        knots = pick(d, [1, 0, True, 2.5, "10", None])
    return Trial(
        lambda: TableEncoder(schema, overrides, nan_as_category=nac, max_int_categories=mic, max_knots=knots),
        bad is None,
        lambda r: check_type(r, TableEncoder),
        f"TableEncoder({schema!r:.60}, {overrides!r}, nan_as_category={nac!r}, {mic!r}, {knots!r})",
    )


def check_encoder(enc, df) -> str | None:
    if not isinstance(enc, TableEncoder):
        return check_type(enc, TableEncoder)
    names = [c.name for c in enc.columns]
    if [c for c in names if "__missing" not in c] != list(df.columns):
        return f"model columns {names} do not follow the frame's {list(df.columns)}"
    if any(c.kind == "categorical" and not c.vocab_size >= 1 for c in enc.columns):
        return "an empty vocabulary"
    return None


@case("data_tabular")
def case_table_encoder_fit(d):
    bad = which_bad(d, "df", "schema")
    df = frame(d)
    nac = pick(d, [True, False])
    schema = pick(d, [None, TableSchema.infer(df)])
    if bad == "df":
        df, _ = break_frame(
            d,
            df,
            ["empty_rows", "no_cols", "all_nan", "inf", "dup", "nonstr", "datetime", "complex", "lists", "not_frame"],
        )
        schema = None
    elif bad == "schema":
        kind = pick(d, ["lacks", "numeric_text"])
        text_cols = [c for c in df.columns if c not in numeric_columns(df)]
        if kind == "numeric_text" and text_cols:
            specs = [
                c if c.name != text_cols[0] else type(c)(c.name, "numeric", c.dtype) for c in TableSchema.infer(df)
            ]
            schema = TableSchema(tuple(specs))
        else:
            schema = TableSchema.infer(df)
            df = df.drop(columns=[df.columns[0]]) if len(df.columns) > 1 else df.rename(columns={df.columns[0]: "x"})
    enc = TableEncoder(schema, nan_as_category=nac)
    return Trial(lambda: enc.fit(df), bad is None, lambda r: check_encoder(r, df), f"fit({df!r:.200})")


def fitted(d, nac: bool | None = None):
    df = frame(d, n=d.draw(st.integers(3, 12)))
    nac = pick(d, [True, False]) if nac is None else nac
    return df, TableEncoder(nan_as_category=nac, max_knots=pick(d, [2, 1000])).fit(df)


def same_cells(a: pd.Series, b: pd.Series) -> bool:
    return all((pd.isna(x) and pd.isna(y)) or x == y for x, y in zip(a.tolist(), b.tolist(), strict=True))


def check_encoded(values, enc, n, given=None) -> str | None:
    if not isinstance(values, dict) or [c.name for c in enc.columns] != list(values):
        return f"expected the model columns {[c.name for c in enc.columns]}, got {type(values).__name__}"
    for c in enc.columns:
        if c.kind == "numeric":
            problem = check_tensor(values[c.name], (n, 1), dtype=torch.float32)
        else:
            problem = check_tensor(values[c.name], (n, 1), integer=True, lo=0, hi=c.vocab_size)
        if problem:
            return f"{c.name}: {problem}"
        if given is not None and (problem := check_tensor(given[c.name], (n, 1), dtype=torch.bool)):
            return f"given[{c.name}]: {problem}"
    return None


def check_round_trip(values, enc, df) -> str | None:
    problem = check_encoded(values, enc, len(df))
    if problem:
        return problem
    back = enc.decode(values)
    for spec in enc.schema:
        a, b = df[spec.name].reset_index(drop=True), back[spec.name]
        if spec.kind == "categorical":
            if not same_cells(a, b):
                return f"{spec.name}: decode(encode(df)) = {b.tolist()} != {a.tolist()}"
        else:
            x, y = (s.to_numpy(dtype=np.float64, na_value=np.nan) for s in (a, b))
            st_ = enc._state[spec.name]
            lo, hi = st_["knots_x"][0], st_["knots_x"][-1]
            want = np.clip(x, lo, hi)
            tol = 1e-4 * (hi - lo + 1) + (0.5 if spec.kind == "integer" else 0)
            if not np.array_equal(np.isnan(x), np.isnan(y)) or np.nanmax(np.abs(want - y), initial=0) > tol:
                return f"{spec.name}: decode(encode(df)) = {y} != {x}"
    return None


@case("data_tabular")
def case_table_encoder_encode(d):
    bad = which_bad(d, "df")
    base, enc = fitted(d, nac=True)  # nan_as_category=False refuses NaN in encode() by design (encode_observed's case)
    df = base.sample(frac=1.0, random_state=seed(d)).iloc[: d.draw(st.integers(1, len(base)))]
    df = df[list(np.random.default_rng(seed(d)).permutation(df.columns))]  # any column order
    if bad:
        kinds = ["empty_rows", "dup", "nonstr", "not_frame", "extra", "missing", "inf_value", "dtype", "unseen"]
        kinds += ["nan_numeric", "nan_category"]
        kind = pick(d, kinds)
        c = pick(d, list(df.columns))
        nums = [x for x in numeric_columns(df) if df[x].notna().all() and not enc._state[x].get("vocab")]
        cats = [x for x in df.columns if enc.schema[x].kind == "categorical" and not enc._state[x]["nan_category"]]
        if kind in ("empty_rows", "dup", "nonstr", "not_frame"):
            df, _ = break_frame(d, df, [kind])
        elif kind == "extra":
            df = df.assign(unknown_column=1.0)
        elif kind == "missing" and len(df.columns) > 1:
            df = df.drop(columns=[c])
        elif kind == "inf_value" and numeric_columns(df) and enc.schema[numeric_columns(df)[0]].kind != "categorical":
            x = numeric_columns(df)[0]
            df = df.assign(**{x: np.where(np.arange(len(df)) == 0, np.inf, df[x].astype(float))})
        elif kind == "dtype" and nums:
            df = df.assign(**{nums[0]: "text"})
        elif (
            kind == "nan_numeric"
            and nums
            and enc.schema[nums[0]].kind != "categorical"
            and not enc._state[nums[0]]["has_missing"]
        ):
            df = df.assign(**{nums[0]: np.where(np.arange(len(df)) == 0, np.nan, df[nums[0]].astype(float))})
        elif kind == "nan_category" and cats and df[cats[0]].dtype == object:
            df = df.assign(**{cats[0]: np.where(np.arange(len(df)) == 0, None, df[cats[0]])})
        else:
            # an unseen category (or an unseen number in a categorical number column)
            cat_cols = [x for x in df.columns if enc.schema[x].kind == "categorical"]
            if not cat_cols:
                df = df.assign(unknown_column="z")
            else:
                x = cat_cols[0]
                new = {"object": "zz", "bool": "zz", "category": "zz"}.get(str(df[x].dtype), 123456)
                col = df[x].astype(object).copy()
                col.iloc[0] = new
                df = df.assign(**{x: col.astype(df[x].dtype) if new == 123456 else col})
    return Trial(lambda: enc.encode(df), bad is None, lambda r: check_round_trip(r, enc, df), f"encode({df!r:.300})")


@case("data_tabular")
def case_table_encoder_encode_observed(d):
    bad = which_bad(d, "df", "observed")
    base, enc = fitted(d)
    df = base.iloc[: d.draw(st.integers(1, len(base)))]
    if len(df.columns) > 1 and d.draw(st.booleans()):
        df = df.drop(columns=[pick(d, list(df.columns))])  # a subset of the columns is fine here
    observed = None
    if d.draw(st.booleans()):  # a NaN cell given as observed means "known missing": refused where NaN is no category
        observed = (np.random.default_rng(seed(d)).random(df.shape) < 0.6) & df.notna().to_numpy()
        if d.draw(st.booleans()):
            observed = pd.DataFrame(observed, columns=df.columns, index=df.index)
    if bad == "df":
        df, _ = break_frame(d, df, ["empty_rows", "dup", "nonstr", "not_frame"])
        if d.draw(st.booleans()) and isinstance(df, pd.DataFrame) and len(df) and df.columns.is_unique:
            df = df.assign(unknown_column=1.0)
        observed = None
    elif bad == "observed":
        observed = pick(
            d,
            [
                np.ones((df.shape[0] + 1, df.shape[1]), dtype=bool),
                np.ones(df.shape, dtype=np.int64),
                pd.DataFrame(np.ones(df.shape, dtype=bool), columns=[f"c{i}" for i in range(df.shape[1])]),
                "all",
                np.ones(df.shape[0], dtype=bool),
            ],
        )
    n = len(df) if isinstance(df, pd.DataFrame) else 0
    return Trial(
        lambda: enc.encode_observed(df, observed),
        bad is None,
        lambda r: check_encoded(r[0], enc, n, r[1]),
        f"encode_observed({df!r:.200}, {observed!r:.60})",
    )


@case("data_tabular")
def case_table_encoder_decode(d):
    bad = which_bad(d, "values")
    base, enc = fitted(d)
    n = d.draw(st.integers(0, 4))
    g = gen(seed(d))
    values = {}
    for c in enc.columns:
        if c.kind == "numeric":
            values[c.name] = 2 * torch.randn(n, 1, generator=g, dtype=pick(d, [torch.float32, torch.float64]))
        else:
            values[c.name] = torch.randint(0, c.vocab_size, (n, 1), generator=g)
    if d.draw(st.booleans()):
        values = {k: (v[:, 0] if d.draw(st.booleans()) else v.numpy()) for k, v in values.items()}
    if bad:
        name = pick(d, list(values))
        is_num = next(c.kind for c in enc.columns if c.name == name) == "numeric"
        kind = pick(d, ["missing", "extra", "not_mapping", "shape", "batch", "values", "dtype", "strings"])
        if kind == "missing":
            del values[name]
        elif kind == "extra":
            values["unknown_column"] = torch.zeros(n, 1)
        elif kind == "not_mapping":
            values = pick(d, [list(values.values()), None, "values"])
        elif kind == "shape":
            values[name] = torch.zeros(n, 2, dtype=torch.float32 if is_num else torch.long)
        elif kind == "batch" and len(values) > 1:  # one column alone has no other batch size to disagree with
            values[name] = torch.zeros(n + 1, 1, dtype=torch.float32 if is_num else torch.long)
        elif kind == "values" and n:
            v = torch.as_tensor(values[name]).clone().reshape(n, 1)
            if is_num:
                v[0, 0] = pick(d, [NAN, INF])
            else:
                v[0, 0] = pick(d, [-1, next(c.vocab_size for c in enc.columns if c.name == name)])
            values[name] = v
        elif kind in ("dtype", "values", "batch"):
            values[name] = torch.zeros(n, 1, dtype=torch.long if is_num else torch.float32)
        else:
            values[name] = np.full(n, "a")  # strings (np.array([]) would be float64)

    def check(r):
        if not isinstance(r, pd.DataFrame) or list(r.columns) != enc.schema.names or len(r) != n:
            return f"expected a frame of {n} rows over {enc.schema.names}"
        for spec in enc.schema:
            if spec.kind == "categorical":
                vocab = enc.vocab(spec.name)
                if not all(pd.isna(v) or v in vocab for v in r[spec.name].tolist()):
                    return f"{spec.name}: a value outside the vocabulary {vocab}"
        return None

    return Trial(
        lambda: enc.decode(values),
        bad is None,
        check,
        f"decode({values!r:.200})",
    )


@case("data_tabular")
def case_table_encoder_from_json(d):
    bad = which_bad(d, "text")
    _, enc = fitted(d)
    text = enc.to_json()
    if bad:
        obj = json.loads(text)
        kind = pick(
            d, ["garbage", "list", "format", "version", "no_schema", "no_state", "state_column", "type", "knots"]
        )
        if kind == "garbage":
            text = pick(d, ["not json", "", "{"])
        elif kind == "list":
            text = "[]"
        elif kind == "type":
            text = pick(d, [None, 3, obj])
        else:
            if kind == "format":
                obj["format"] = "something-else"
            elif kind == "version":
                obj["version"] = 99
            elif kind == "no_schema":
                del obj["schema"]
            elif kind == "no_state":
                del obj["state"]
            elif kind == "state_column":
                del obj["state"][next(iter(obj["state"]))]
            else:
                numeric = [k for k, v in obj["state"].items() if "knots_x" in v]
                if numeric:
                    obj["state"][numeric[0]]["knots_x"] = "not a list"
                else:
                    obj["nan_as_category"] = "sometimes"
            text = json.dumps(obj)
    return Trial(
        lambda: TableEncoder.from_json(text),
        bad is None,
        lambda r: None if isinstance(r, TableEncoder) and r.to_json() == text else "not a round trip",
        f"from_json({text!r:.120})",
    )


# ---------------------------------------------------------------------------------------------------------------------
# data: batch streams
# ---------------------------------------------------------------------------------------------------------------------


def stream_data(N: int):
    x = torch.arange(2 * N, dtype=torch.float32).reshape(N, 2)
    return x, torch.arange(N)


def check_batches(batches, form, x, B, exact) -> str | None:
    for b in batches:
        if form == "dict":
            if not isinstance(b, dict) or set(b) != {"x", "y"}:
                return f"expected a dict batch, got {type(b).__name__}"
            bx, by = b["x"], b["y"]
        elif form == "two":
            if not isinstance(b, tuple) or len(b) != 2:
                return f"expected a pair, got {type(b).__name__}"
            bx, by = b
        else:
            bx, by = b, None
        rows = bx.shape[0]
        if (exact and rows != B) or not 1 <= rows <= B:
            return f"a batch of {rows} rows, expected {'exactly' if exact else 'at most'} {B}"
        idx = (bx[:, 0] / 2).long()
        if not torch.equal(bx, x[idx]) or (by is not None and not torch.equal(by, idx)):
            return "batch rows are not rows of the data (or x and y disagree)"
    return None


@case("data_batching")
def case_infinite_batches(d):
    bad = which_bad(d, "tensors", "batch_size", "generator", "drop_last")
    N = d.draw(st.integers(1, 6))
    x, y = stream_data(N)
    form = pick(d, ["one", "two", "dict"])
    tensors = {"one": (x,), "two": (x, y), "dict": ({"x": x, "y": y},)}[form]
    drop_last = pick(d, [True, False])
    B = d.draw(st.integers(1, N if drop_last else N + 2))
    g = gen_arg(d, bad == "generator")
    if bad == "tensors":
        tensors = pick(
            d,
            [
                (),
                (x, torch.arange(N + 1)),
                (x, "y"),
                ({"x": x, "y": [1] * N},),
                ({},),
                (torch.tensor(1.0),),
                (torch.zeros(0, 2),),
                ({"x": x}, y),
                (x.tolist(),),
                ([x, y],),
            ],
        )
    elif bad == "batch_size":
        B = pick(d, [0, -1, True, 2.5, "2", None] + ([N + 1] if drop_last else []))
    elif bad == "drop_last":
        drop_last = pick(d, [1, "yes", None])

    def call():
        stream = infinite_batches(*tensors, batch_size=B, generator=g, drop_last=drop_last)
        return [next(stream) for _ in range(3)]

    return Trial(call, bad is None, lambda r: check_batches(r, form, x, B, drop_last), f"{bad}: B={B!r}")


@case("data_batching")
def case_batch_stream_methods(d):
    what = pick(d, ["shard", "load_state_dict"])
    N = d.draw(st.integers(2, 8))
    x, y = stream_data(N)
    B = d.draw(st.integers(1, N // 2))
    seeded = d.draw(st.booleans())
    make = lambda: infinite_batches(x, y, batch_size=B, generator=gen(7) if seeded else None)  # noqa: E731
    if what == "shard":
        bad = which_bad(d, "rank", "world_size", "seed", "stream")
        W = d.draw(st.integers(1, max(1, N // B)))
        rank = d.draw(st.integers(0, W - 1))
        s = pick(d, [None, 3]) if seeded or W == 1 else 3
        stream = make()
        if bad == "rank":
            rank = pick(d, [W, -1, True, 2.5, "0", None])
        elif bad == "world_size":
            W = pick(d, [0, -1, True, 2.5, "2", None, N + 1])
        elif bad == "seed":
            if seeded or W == 1:
                stream, W, rank = infinite_batches(x, y, batch_size=1), 2, 0
            s = pick(d, [None, "x", 2.5, True, [1]])
        elif bad == "stream":
            stream = infinite_batches(x, y, batch_size=B, generator=gen(7), drop_last=False)
            W, rank = 2, 0

        def call():
            out = stream.shard(rank, W, seed=s)
            return out, [next(out) for _ in range(2)]

        return Trial(
            call,
            bad is None,
            lambda r: r[0] is stream and check_batches(r[1], "two", x, B, True) or None,
            f"shard({rank!r}, {W!r}, seed={s!r})",
        )
    bad = which_bad(d, "state")
    ref = make()
    for _ in range(d.draw(st.integers(0, 4))):
        next(ref)
    state = ref.state_dict()
    if bad:
        state = dict(state)
        kind = pick(
            d,
            ["not_dict", "missing", "num_examples", "batch_size", "perm_shape", "perm_dup", "perm_float", "position",
             "epoch", "generator"],
        )  # fmt: skip
        if kind == "not_dict":
            state = pick(d, [None, "state", [1]])
        elif kind == "missing":
            del state[pick(d, ["epoch", "position", "num_examples", "permutation", "generator"])]
        elif kind == "num_examples":
            state["num_examples"] = pick(d, [N + 1, "N", None])
        elif kind == "batch_size":
            state["batch_size"] = B + 1
        elif kind == "perm_shape":
            state["permutation"] = torch.arange(N + 1)
        elif kind == "perm_dup":
            state["permutation"] = torch.zeros(N, dtype=torch.long)
        elif kind == "perm_float":
            state["permutation"] = pick(d, [torch.arange(N).float(), list(range(N)), torch.arange(N) + N])
        elif kind == "position":
            state["position"] = pick(d, [-1, "x", 2.5, None, True])
        elif kind == "epoch":
            state["epoch"] = pick(d, [-1, "x", 2.5, None])
        else:
            state["generator"] = pick(d, [torch.zeros(3, dtype=torch.uint8), "state", [1, 2]])
    target = make()

    def call():
        target.load_state_dict(state)
        return [next(target) for _ in range(3)], [next(ref) for _ in range(3)]

    def check(r):
        mine, theirs = r
        if seeded and not all(torch.equal(a[0], b[0]) for a, b in zip(mine, theirs, strict=True)):
            return "the restored stream does not continue the saved one"
        return check_batches(mine, "two", x, B, True)

    return Trial(
        call,
        bad is None,
        check,
        f"load_state_dict({ {k: v for k, v in state.items()} if isinstance(state, dict) else state!r:.200})",
    )


# ---------------------------------------------------------------------------------------------------------------------
# nets: judges, the uniform-Bayes wrapper, the column transformer, the pixel + character transformer
# ---------------------------------------------------------------------------------------------------------------------


@functools.cache
def tiny(which: str):
    torch.manual_seed(0)
    if which == "judge":
        return ShapeAttributeClassifier((5, 2), ("shape", "size"), image_size=8, width=2, feat_dim=4).eval()
    if which == "digits":
        return DigitClassifier(width=2, feat_dim=4).eval()
    if which == "dt":
        return DiffusionTransformer(4, 4, 6, width=8, depth=1, heads=2)
    if which == "dt_masked":
        return DiffusionTransformer(5, 4, 6, width=8, depth=1, heads=2)
    if which == "ct":
        return CausalTransformer(4, 6, width=8, depth=1, heads=2)
    if which == "ubayes":
        return UniformBayesDenoiser(DiffusionTransformer(4, 4, 6, width=8, depth=1, heads=2), 4)
    if which == "cols":
        return ColumnTransformer(["a", "b"], {"c": 3}, width=8, depth=1, heads=2, freq_dim=8)
    if which == "mmdit":
        return JointPixelCharTransformer(8, 3, 4, 5, 6, width=8, depth=1, heads=2, time_dim=8, freq_dim=8)
    raise AssertionError(which)


def images_arg(d, shape, bad: bool, numpy_ok: bool = False):
    """Float images of ``shape``; broken: NaN, inf, int, bool, complex, wrong shape, not a tensor (``numpy_ok``: a
    float array of the right shape is valid there, so it is not among the broken ones)."""
    if not bad:
        return randn(d, shape, pick(d, [torch.float32, torch.float64])).clamp(-1, 1)
    kind = pick(d, ["values", "shape", "shape", "not_tensor"])
    if kind == "values":
        return float_arg(d, shape, True)
    if kind == "not_tensor":
        return pick(d, [None, "images", [[0.5]] if numpy_ok else np.zeros(shape, dtype=np.float32)])
    B, *rest = shape
    options = [(B, *rest[:-1]), (B, rest[0] + 1, *rest[1:]), (B, *rest[:-1], rest[-1] + 1), (B, *rest, 1), tuple(rest)]
    return randn(d, pick(d, options))


@case("nets")
def case_judge_constructors(d):
    which = pick(d, ["shapes", "digits"])
    bad = which_bad(d, "a", "b")
    if which == "digits":
        kw = dict(width=d.draw(st.integers(1, 4)), feat_dim=d.draw(st.integers(1, 8)))
        if bad:
            kw[pick(d, list(kw))] = pick(d, [0, -1, True, 2.5, "8", None])
        return Trial(lambda: DigitClassifier(**kw), bad is None, lambda r: check_type(r, DigitClassifier), f"{kw}")
    A = d.draw(st.integers(1, 3))
    kw = dict(
        n_values=pick(d, [[2] * A, (5, 2, 5)[:A]]),
        names=pick(d, [None, [f"a{j}" for j in range(A)]]),
        image_size=pick(d, [8, 16]),
        width=d.draw(st.integers(1, 3)),
        feat_dim=d.draw(st.integers(1, 4)),
        first_convs=d.draw(st.integers(1, 2)),
    )
    if bad:
        key = pick(d, list(kw))
        kw[key] = pick(
            d,
            {
                "n_values": [5, [1], [2.5, 2], ["a"], [], [True, 2], None, "55", [2, -3]],
                "names": [["a"] * (A + 1), ["x", "x", "y"][: max(A, 2)] if A >= 2 else [3], [1, 2][:A], "ab", 3],
                "image_size": [12, 4, True, 16.0, "16", None],
            }.get(key, [0, -1, True, 2.5, "8", None]),
        )
        if key == "names" and kw["names"] == ["x", "x"] and A < 2:
            kw["names"] = [3]
    return Trial(
        lambda: ShapeAttributeClassifier(**kw), bad is None, lambda r: check_type(r, ShapeAttributeClassifier), f"{kw}"
    )


@case("nets")
def case_judge_forward(d):
    which = pick(d, ["shapes", "digits"])
    B = d.draw(st.integers(0, 3))
    bad = which_bad(d, "x", "batch_size")
    if which == "digits":
        net = tiny("digits")
        x = images_arg(d, (B, 1, 8, 8), bad is not None)
        what = pick(d, ["forward", "features"])
        return Trial(
            lambda: getattr(net, what)(x.float() if isinstance(x, torch.Tensor) and x.is_floating_point() else x),
            bad is None,
            lambda r: check_tensor(r, (B, 10 if what == "forward" else 4)),
            f"digits.{what}({getattr(x, 'shape', x)})",
        )
    net = tiny("judge")
    x = images_arg(d, (B, 3, 8, 8), bad == "x")
    what = pick(d, ["forward", "features", "predict", "embed"])
    bs = pick(d, [1, 2048])
    if bad == "batch_size":
        what, bs = pick(d, ["predict", "embed"]), pick(d, [0, -1, True, 2.5, "8", None])
    if what in ("forward", "features"):

        def check(r):
            if what == "features":
                return check_tensor(r, (B, 4), lo=0)
            if not isinstance(r, dict) or set(r) != {"shape", "size"}:
                return f"got {type(r).__name__}"
            return first_problem(check_tensor(r["shape"], (B, 5)), check_tensor(r["size"], (B, 2)))

        return Trial(lambda: getattr(net, what)(x), bad is None, check, f"judge.{what}({getattr(x, 'shape', x)})")
    if what == "predict":
        return Trial(
            lambda: net.predict(x, batch_size=bs),
            bad is None,
            lambda r: check_attrs(r, B, 2),
            f"judge.predict({getattr(x, 'shape', x)}, batch_size={bs!r})",
        )
    return Trial(
        lambda: net.embed(x, batch_size=bs),
        bad is None,
        lambda r: check_tensor(r, (B, 4), lo=0, dtype=torch.float32),
        f"judge.embed({getattr(x, 'shape', x)}, batch_size={bs!r})",
    )


@case("nets")
def case_uniform_bayes(d):
    what = pick(d, ["constructor", "forward"])
    if what == "constructor":
        bad = which_bad(d, "net", "vocab_size", "schedule")
        net = tiny("dt") if bad != "net" else pick(d, [None, "net", 3, lambda x, t: x])
        V = 4 if bad != "vocab_size" else pick(d, [0, -1, True, 2.5, "4", None, 5, 1])
        sched = pick(d, ["log-linear", "cosine"]) if bad != "schedule" else pick(d, ["cosin", 3, None])
        return Trial(
            lambda: UniformBayesDenoiser(net, V, sched),
            bad is None,
            lambda r: check_type(r, UniformBayesDenoiser),
            f"UniformBayesDenoiser({type(net).__name__}, {V!r}, {sched!r})",
        )
    net = tiny("ubayes")
    B, L = d.draw(st.integers(0, 3)), d.draw(st.integers(1, 6))
    bad = which_bad(d, "x_t", "t")
    x_t = token_arg(d, (B, L), 4, bad == "x_t")
    if bad == "x_t" and d.draw(st.booleans()):
        x_t = token_arg(d, pick(d, [(B, 7), (B,), (B, L, 1)]), 4, False)
    t = time_arg(d, B, bad == "t")
    return Trial(lambda: net(x_t, t), bad is None, lambda r: check_tensor(r, (B, L, 4)), f"ubayes({x_t!r:.60}, {t!r})")


@case("nets")
def case_column_transformer_constructor(d):
    bad = which_bad(d, "numeric", "categorical", "sizes", "time_scale")
    kw = dict(
        numeric=pick(d, [[], ["a"], ("a", "b")]),
        categorical=pick(d, [None, {"c": 3}, {"c": 1, "d": 5}]),
        width=8,
        depth=1,
        heads=pick(d, [1, 2, 4]),
        mlp_ratio=pick(d, [1, 4]),
        freq_dim=pick(d, [2, 8]),
        time_scale=pick(d, [1.0, 1000.0, 10]),
    )
    if not kw["numeric"] and not kw["categorical"]:
        kw["numeric"] = ["a"]
    if bad == "numeric":
        kw["numeric"] = pick(d, ["ab", 3, ["a", "a"], None if not kw["categorical"] else "x", [None], [""]])
    elif bad == "categorical":
        kw["categorical"] = pick(d, [{"c": 0}, {"c": True}, {"c": 2.5}, {"a": 3}, 5, ["c"], {"c": "3"}, {3: 2}])
        if kw["categorical"] == {"a": 3} and "a" not in kw["numeric"]:
            kw["categorical"] = {"c": 0}
    elif bad == "sizes":
        key = pick(d, ["width", "depth", "heads", "mlp_ratio", "freq_dim"])
        kw[key] = pick(d, {"heads": [3, 0, True], "freq_dim": [3, 0, True]}.get(key, [0, -1, True, 2.5, "8", None]))
    elif bad == "time_scale":
        kw["time_scale"] = pick(d, [NAN, INF, 0.0, -1.0, "1000", None, True])
    return Trial(
        lambda: ColumnTransformer(**kw),
        bad is None,
        lambda r: check_type(r, ColumnTransformer),
        f"ColumnTransformer({kw})",
    )


@case("nets")
def case_column_transformer_forward(d):
    net = tiny("cols")
    B = d.draw(st.integers(0, 3))
    bad = which_bad(d, "xs", "ts", "ids", "values")
    g = gen(seed(d))
    xs = {"a": torch.randn(B, 1, generator=g), "b": torch.randn(B, 1, generator=g).double()}
    xs["c"] = torch.randint(0, 4, (B, 1), generator=g)  # ids in [0, 3]: 3 is the mask
    ts = {n: time_arg(d, B, False) for n in ("a", "b", "c")}
    if bad == "xs":
        kind = pick(d, ["missing", "extra", "not_dict", "shape", "float_ids", "int_numeric", "batch", "not_tensor"])
        if kind == "missing":
            del xs[pick(d, ["a", "b", "c"])]
        elif kind == "extra":
            xs["z"] = torch.zeros(B, 1)
        elif kind == "not_dict":
            xs = pick(d, [xs["a"], [xs["a"], xs["b"], xs["c"]], None])
        elif kind == "shape":
            xs["a"] = torch.zeros(pick(d, [(B,), (B, 2), (B, 1, 1)]))
        elif kind == "float_ids":
            xs["c"] = xs["c"].float()
        elif kind == "int_numeric":
            xs["a"] = xs["a"].long()
        elif kind == "batch":
            xs["b"] = torch.zeros(B + 1, 1)
        else:
            xs["a"] = xs["a"].tolist()
    elif bad == "ts":
        kind = pick(d, ["missing", "value", "not_dict", "shape"])
        if kind == "missing":
            del ts[pick(d, ["a", "c"])]
        elif kind == "value":
            ts[pick(d, ["a", "c"])] = time_arg(d, B, True)
        elif kind == "not_dict":
            ts = 0.5
        else:
            ts["a"] = torch.rand(B + 1)
    elif bad == "ids":
        xs["c"] = torch.full((B, 1), pick(d, [4, -1])) if B else torch.zeros(B, 1)
    elif bad == "values":
        xs["a"] = float_arg(d, (B, 1), True)

    def check(r):
        if not isinstance(r, dict) or list(r) != ["a", "b", "c"]:
            return f"expected a dict over a, b, c; got {type(r).__name__}"
        return first_problem(
            check_tensor(r["a"], (B, 1)), check_tensor(r["b"], (B, 1)), check_tensor(r["c"], (B, 1, 3))
        )

    return Trial(lambda: net(xs, ts), bad is None, check, f"cols({bad}, ts={ts!r:.100})")


@case("nets")
def case_mmdit_constructor(d):
    bad = which_bad(d, "sizes", "divides", "mlp_ratio", "names")
    kw = dict(
        image_size=8,
        channels=pick(d, [1, 3]),
        patch_size=pick(d, [2, 4, 8]),
        text_len=d.draw(st.integers(1, 6)),
        vocab_size=d.draw(st.integers(1, 6)),
        width=8,
        depth=1,
        heads=pick(d, [1, 2]),
        mlp_ratio=pick(d, [1, 2.5]),
        time_dim=4,
        freq_dim=pick(d, [2, 8]),
        cross_time=pick(d, [False, True]),
    )
    if bad == "sizes":
        key = pick(d, ["image_size", "channels", "text_len", "vocab_size", "width", "depth", "time_dim", "freq_dim"])
        kw[key] = pick(d, [0, -1, True, 2.5, "8", None])
    elif bad == "divides":
        kw.update(pick(d, [dict(patch_size=3), dict(heads=3), dict(freq_dim=3)]))
    elif bad == "mlp_ratio":
        kw["mlp_ratio"] = pick(d, [0, -1, NAN, "2", True, 0.01, INF])
    elif bad == "names":
        kw.update(pick(d, [dict(image_name="x", text_name="x"), dict(image_name=3), dict(text_name=None)]))
    return Trial(
        lambda: JointPixelCharTransformer(**kw),
        bad is None,
        lambda r: check_type(r, JointPixelCharTransformer),
        f"JointPixelCharTransformer({kw})",
    )


@case("nets")
def case_mmdit_forward(d):
    net = tiny("mmdit")
    B, L = d.draw(st.integers(0, 3)), d.draw(st.integers(1, 5))
    bad = which_bad(d, "image", "caption", "ts", "keys")
    xs = {"image": images_arg(d, (B, 3, 8, 8), bad == "image"), "caption": token_arg(d, (B, L), 7, bad == "caption")}
    if xs["image"] is not None and isinstance(xs["image"], torch.Tensor) and bad is None:
        xs["image"] = xs["image"].float()
    if bad == "caption" and d.draw(st.booleans()):
        xs["caption"] = torch.zeros(pick(d, [(B, 6), (B,), (B + 1, L)]), dtype=torch.long)
    ts = {"image": time_arg(d, B, bad == "ts"), "caption": time_arg(d, B, False)}
    if bad == "keys":
        kind = pick(d, ["missing", "extra", "not_dict"])
        if kind == "missing":
            del pick(d, [xs, ts])[pick(d, ["image", "caption"])]
        elif kind == "extra":
            xs["label"] = torch.zeros(B, 1)
        else:
            xs = xs["image"]

    def check(r):
        if not isinstance(r, dict) or set(r) != {"image", "caption"}:
            return f"got {type(r).__name__}"
        return first_problem(check_tensor(r["image"], (B, 3, 8, 8)), check_tensor(r["caption"], (B, L, 6)))

    return Trial(lambda: net(xs, ts), bad is None, check, f"mmdit({bad}, ts={ts!r:.100})")


# ---------------------------------------------------------------------------------------------------------------------
# metrics: coherence
# ---------------------------------------------------------------------------------------------------------------------


class FakeJudge:
    """A judge whose predictions are fixed: ``predict(images) -> (N, A)`` (or a broken output)."""

    def __init__(self, A: int, broken: str | None = None):
        self.A, self.broken, self.names = A, broken, None

    def predict(self, images):
        n = len(images)
        out = torch.arange(n * self.A).reshape(n, self.A) % 2
        if self.broken == "float":
            return out.float()
        if self.broken == "shape":
            return out[:, :-1] if self.A > 1 else out[:, 0]
        if self.broken == "rows":
            return out[:-1]
        if self.broken == "list":
            return out.tolist()
        return out


def check_coherence(r, n, A, letters=False) -> str | None:
    if not isinstance(r, coh.Coherence):
        return check_type(r, coh.Coherence)
    problem = first_problem(
        check_float(r.strict, 0, 1), check_float(r.feats, 0, 1), check_float(r.malformed, 0, 1),
        None if r.n == n and len(r.per_attribute) == A else f"n={r.n}, {len(r.per_attribute)} attributes",
        *(check_float(v, 0, 1) for v in r.per_attribute.values()),
    )  # fmt: skip
    return problem or (check_float(r.letters, 0, 1) if letters else None)


def parse_caption_fn(kind: str | None):
    if kind is None:
        return functools.partial(shapes.parse_caption, level=2)
    return {
        "not_callable": 3,
        "list": lambda text: ["shape"],
        "strings": lambda text: {"shape": "square"},
        "tuple": lambda text: ("shape", 0),
    }[kind]


@case("metrics_coherence")
def case_coherence_scores(d):
    what = pick(d, ["text_to_image", "image_to_text", "joint"])
    n, A = d.draw(st.integers(1, 4)), 2
    names = ["shape", "size"]
    bad = which_bad(d, "images", "targets", "judge", "captions", "parse", "names")
    images = images_arg(d, (n, 3, 8, 8), bad == "images")
    targets = attributes_arg(d, n, A, False)
    if bad == "targets":
        targets = pick(
            d, [targets.float(), targets[:, 0], targets[:-1] if n > 1 else targets[:0], targets - 5, targets.tolist()]
        )
    judge = FakeJudge(A) if d.draw(st.booleans()) else tiny("judge")
    if bad == "images" and isinstance(judge, FakeJudge):  # only the judge knows its image size: break the rest
        images = pick(
            d, [float_arg(d, (n, 3, 8, 8), True), images_arg(d, (n, 3, 8, 8), False)[0], torch.zeros(0, 3, 8, 8)]
        )
    if bad == "judge":
        judge = pick(d, [3, FakeJudge(A, pick(d, ["float", "shape", "rows", "list"]))])
    captions = shapes.caption(attributes_arg(d, n, A, False), gen(seed(d)))
    if d.draw(st.booleans()):
        captions[0] = "garbage"
    if bad == "captions":
        captions = pick(d, ["a red square", captions[:-1] if n > 1 else [], [None] * n, captions + ["x"], 3])
    parse = parse_caption_fn(None if bad != "parse" else pick(d, ["not_callable", "list", "strings", "tuple"]))
    nm = pick(d, [names, tuple(names)]) if bad != "names" else pick(d, [names[:1], "ab", [1, 2], names + ["colour"]])
    if what == "text_to_image":
        if bad in ("captions", "parse"):
            bad, images = "images", "images"
        kw = {} if bad != "names" and d.draw(st.booleans()) else {"names": nm}
        return Trial(
            lambda: coh.text_to_image_coherence(images, targets, judge, **kw),
            bad is None,
            lambda r: check_coherence(r, n, A),
            f"t2i({getattr(images, 'shape', images)}, {targets!r:.60}, {judge!r:.40}, {kw})",
        )
    if what == "image_to_text":
        if bad in ("images", "judge"):
            bad, captions = "captions", None
        refs = None if d.draw(st.booleans()) else list(captions) if isinstance(captions, list) else None
        return Trial(
            lambda: coh.image_to_text_coherence(captions, targets, parse, refs, names=nm),
            bad is None,
            lambda r: check_coherence(r, n, A, letters=refs is not None),
            f"i2t({captions!r:.80}, {targets!r:.60}, names={nm!r})",
        )
    if bad == "targets":
        bad, images = "images", None
    return Trial(
        lambda: coh.joint_coherence(images, captions, judge, parse, names=nm),
        bad is None,
        lambda r: check_coherence(r, n, A),
        f"joint({getattr(images, 'shape', images)}, {captions!r:.80}, names={nm!r})",
    )


@case("metrics_coherence")
def case_coherence_helpers(d):
    what = pick(d, ["letter_accuracy", "attribute_coverage", "distinct_share", "frechet_with_floor"])
    bad = which_bad(d, "a", "b")
    n = d.draw(st.integers(1, 4))
    if what == "letter_accuracy":
        gen_ = [d.draw(st.text(max_size=6)) for _ in range(n)]
        ref = [d.draw(st.text(max_size=6)) for _ in range(n)]
        if bad == "a":
            gen_ = pick(d, ["abc", [], [1] * n, None])
        elif bad == "b":
            ref = pick(d, [ref[:-1] if n > 1 else [], ref + ["x"], [None] * n])
        return Trial(lambda: coh.letter_accuracy(gen_, ref), bad is None, lambda r: check_float(r, 0, 1))
    if what == "attribute_coverage":
        attrs = attributes_arg(d, n, 2, False)
        nv = pick(d, [[5, 2], (5, 2), [7, 3]])
        if bad == "a":
            attrs = pick(d, [attrs[:0], attrs.float(), attrs - 5, attrs[:, 0], attrs + 10])
        elif bad == "b":
            nv = pick(d, [5, [5], [0, 2], ["a", 2], [2.5, 2], None, [5, 2, 3]])
        return Trial(lambda: coh.attribute_coverage(attrs, nv), bad is None, lambda r: check_float(r, 0, 1))
    if what == "distinct_share":
        texts = [d.draw(st.text(max_size=3)) for _ in range(n)] if not bad else pick(d, [[], "abc", [1, 2], None])
        return Trial(lambda: coh.distinct_share(texts), bad is None, lambda r: check_float(r, 0, 1))
    judge = tiny("judge")
    samples = (
        images_arg(d, (n + 1, 3, 8, 8), bad == "a").float() if bad != "a" else images_arg(d, (n + 1, 3, 8, 8), True)
    )
    reference = images_arg(d, (4, 3, 8, 8), False).float()
    real = images_arg(d, (n + 2, 3, 8, 8), False).float()
    features = judge.embed
    if bad == "b":
        kind = pick(d, ["few_real", "nan_features", "not_callable", "shape"])
        if kind == "few_real":
            real = real[:n]
        elif kind == "nan_features":
            features = lambda x: torch.full((len(x), 3), NAN)  # noqa: E731
        elif kind == "not_callable":
            features = None
        else:
            reference = torch.zeros(4, 3, 16, 16)

    def check(r):
        if not isinstance(r, coh.FrechetWithFloor):
            return check_type(r, coh.FrechetWithFloor)
        return first_problem(check_float(r.distance, 0), check_float(r.floor, 0))

    return Trial(lambda: coh.frechet_with_floor(samples, reference, real, features), bad is None, check, f"fwf {bad}")


# ---------------------------------------------------------------------------------------------------------------------
# metrics: Fréchet and the digit judge's features
# ---------------------------------------------------------------------------------------------------------------------


@case("metrics_frechet")
def case_frechet_features(d):
    what = pick(d, ["digit_features", "predict_digits", "classifier_accuracy", "frechet_digits", "nearest_neighbour"])
    net = tiny("digits")
    n = d.draw(st.integers(2, 5))
    bad = which_bad(d, "x", "other", "classifier")
    x = images_arg(d, pick(d, [(n, 1, 8, 8), (n, 64)]), bad == "x", numpy_ok=True)
    if bad is None and d.draw(st.booleans()):
        x = x.numpy() if isinstance(x, torch.Tensor) and x.ndim == 4 else x
    if bad == "x" and d.draw(st.booleans()):
        x = torch.zeros(0, 1, 8, 8)
    clf = net if bad != "classifier" else pick(d, [None, "judge", torch.nn.Linear(2, 2)])
    if what == "digit_features":
        bs = pick(d, [1, 1024]) if bad != "other" else pick(d, [0, -1, True, 2.5, "8"])
        return Trial(
            lambda: fr.digit_features(x, clf, bs),
            bad is None,
            lambda r: check_tensor(r, (n, 4), lo=0),
            f"digit_features({x!r:.60}, {clf!r:.30}, {bs!r})",
        )
    if what == "predict_digits":
        if bad == "other":
            bad, x = "x", torch.zeros(n, 2, 8, 8)
        return Trial(
            lambda: fr.predict_digits(x, clf),
            bad is None,
            lambda r: check_tensor(r, (n,), integer=True, lo=0, hi=10),
            f"predict({x!r:.60}, {clf!r:.30})",
        )
    if what == "classifier_accuracy":
        labels = torch.randint(0, 10, (n,), generator=gen(seed(d)))
        if bad == "other":
            labels = pick(d, [labels.float(), labels[:-1], labels + 10, labels.tolist(), labels - 11, None])
        return Trial(
            lambda: fr.classifier_accuracy(x, labels, clf),
            bad is None,
            lambda r: check_float(r, 0, 1),
            f"accuracy({x!r:.60}, {labels!r:.60}, {clf!r:.30})",
        )
    if what == "frechet_digits":
        ref = images_arg(d, (3, 1, 8, 8), bad == "other", numpy_ok=True)
        return Trial(
            lambda: fr.frechet_digits(x, ref, clf),
            bad is None,
            lambda r: check_float(r, 0),
            f"fd({x!r:.60}, {ref!r:.60})",
        )
    train_ = images_arg(d, (3, 1, 8, 8), False)
    test_ = train_[[0, 1, 2, 0]] * 0.5 + 0.1  # held-out images: near the training ones, not copies
    pct = d.draw(st.floats(0.5, 99.0))
    if bad == "other":
        kind = pick(d, ["pct", "train", "size"])
        if kind == "pct":
            pct = pick(d, [0, 100, NAN, "1", None, -5])
        elif kind == "train":
            train_ = pick(d, [torch.zeros(0, 1, 8, 8), float_arg(d, (3, 1, 8, 8), True)])
        else:
            test_ = torch.zeros(4, 1, 9, 9)
    if bad == "classifier":
        bad, x = "x", None
    if bad == "x":  # any shape with the training images' size per example is fine here: break the values
        x = pick(d, [float_arg(d, (n, 1, 8, 8), True), torch.zeros(0, 1, 8, 8), None, torch.zeros(n, 1, 8, 9)])

    def check(r):
        if not isinstance(r, fr.NearestNeighbourReport):
            return check_type(r, fr.NearestNeighbourReport)
        return first_problem(
            check_tensor(r.sample_to_train, (n,), lo=0),
            check_float(r.median_ratio, 0),
            check_float(r.copy_fraction, 0, 1),
        )

    return Trial(
        lambda: fr.nearest_neighbour_check(x, train_, test_, percentile=pct),
        bad is None,
        check,
        f"nn({x!r:.50}, {train_!r:.50}, {test_!r:.50}, {pct!r})",
    )


def psd(d, D: int) -> torch.Tensor:
    a = randn(d, (D, D), torch.float64)
    return a @ a.T / D


@case("metrics_frechet")
def case_frechet_stats(d):
    what = pick(d, ["gaussian_stats", "frechet_from_stats", "frechet_distance"])
    D, n = d.draw(st.integers(1, 4)), d.draw(st.integers(2, 6))
    bad = which_bad(d, "a", "b")

    def features(shape, broken):  # integer features are numbers too: break them otherwise
        if not broken:
            return float_arg(d, shape, False)
        f = float_arg(d, shape, True)
        return f if not (isinstance(f, torch.Tensor) and f.dtype == torch.long) else pick(d, ["x", None, [[1j]]])

    if what == "gaussian_stats":
        f = features((n, D), bad == "a")
        if bad == "b":
            f = pick(d, [torch.zeros(1, D), torch.zeros(n), "features", torch.zeros(n, D, 2)])

        def check(r):
            mu, cov = r
            return first_problem(check_tensor(mu, (D,)), check_tensor(cov, (D, D)))

        return Trial(lambda: fr.gaussian_stats(f), bad is None, check, f"gaussian_stats({f!r:.80})")
    if what == "frechet_distance":
        fx, fy = features((n, D), bad == "a"), features((n + 1, D), False)
        if bad == "b":
            fy = pick(d, [torch.zeros(n, D + 1), torch.zeros(1, D), None])
        return Trial(
            lambda: fr.frechet_distance(fx, fy), bad is None, lambda r: check_float(r, 0), f"fd({fx!r:.60}, {fy!r:.60})"
        )
    mu1, mu2 = randn(d, (D,), torch.float64), randn(d, (D,), torch.float64)
    c1, c2 = psd(d, D), psd(d, D)
    if bad == "a":
        kind = pick(d, ["nan_mu", "nan_cov", "inf_cov", "shape"])
        if kind == "nan_mu":
            mu1 = mu1.clone()
            mu1[0] = NAN
        elif kind in ("nan_cov", "inf_cov"):
            c2 = c2.clone()
            c2[0, 0] = NAN if kind == "nan_cov" else INF
        else:
            c1 = torch.zeros(D + 1, D + 1)
    elif bad == "b":
        kind = pick(d, ["not_psd", "not_symmetric", "not_tensor"])
        if kind == "not_psd":
            c1 = -psd(d, D) - torch.eye(D, dtype=torch.float64)
        elif kind == "not_symmetric":
            c1 = c1 + torch.triu(torch.ones(D, D, dtype=torch.float64), 1) * 3 if D > 1 else -torch.ones(1, 1)
        else:
            mu2 = "mu"
    return Trial(
        lambda: fr.frechet_from_stats(mu1, c1, mu2, c2),
        bad is None,
        lambda r: check_float(r, 0),
        f"from_stats({mu1!r:.50}, {c1!r:.80}, {mu2!r:.50}, {c2!r:.80})",
    )


# ---------------------------------------------------------------------------------------------------------------------
# metrics: text
# ---------------------------------------------------------------------------------------------------------------------


def names_tokens(d, n: int, L: int = 6, V: int = 4) -> torch.Tensor:
    """Well-formed names: letters in [1, V) then PAD (0), shape (n, L)."""
    g = gen(seed(d))
    lengths = torch.randint(1, L, (n,), generator=g)
    letters = torch.randint(1, V, (n, L), generator=g)
    return torch.where(torch.arange(L)[None] < lengths[:, None], letters, torch.zeros_like(letters))


def check_bpc(r, lo=0) -> str | None:
    if not isinstance(r, mtext.BitsPerChar):
        return check_type(r, mtext.BitsPerChar)
    return first_problem(check_float(r.bpc, lo), check_float(r.stderr, 0))


@case("metrics_text")
def case_bits_per_char(d):
    what = pick(d, ["bits_per_char", "n_chars", "unigram"])
    bad = which_bad(d, "a", "b", "c")
    n = d.draw(st.integers(1, 4))
    if what == "bits_per_char":
        nll = pick(d, [d.draw(st.floats(0, 50)), torch.rand(n) * 3, [1.0, 2.0]])
        chars = pick(d, [d.draw(st.integers(1, 40)), torch.randint(1, 5, (n,))])
        if bad == "a":
            nll = pick(d, [NAN, INF, -1.0, "1", None, torch.tensor([NAN]), torch.tensor([1.0, -5.0]), True])
        elif bad in ("b", "c"):
            chars = pick(d, [0, -3, NAN, INF, "5", None, torch.zeros(3), torch.tensor([2.5]), True])
        return Trial(
            lambda: mtext.bits_per_char(nll, chars),
            bad is None,
            lambda r: check_float(r, 0),
            f"bpc({nll!r}, {chars!r})",
        )
    tokens = names_tokens(d, n)
    if what == "n_chars":
        pad = pick(d, [0, 2])
        if bad == "a":
            tokens = token_arg(d, (n, 6), 4, True)
            if (
                isinstance(tokens, torch.Tensor)
                and not tokens.is_floating_point()
                and tokens.dtype != torch.bool
                and tokens.ndim == 2
            ):
                tokens = tokens.float()
        elif bad == "b":
            pad = pick(d, [-1, 2.5, "0", None, True])
        elif bad == "c":
            tokens = pick(d, [tokens[0], tokens[None], tokens.tolist()])
        return Trial(
            lambda: mtext.n_chars(tokens, pad), bad is None, lambda r: check_tensor(r, (n,), integer=True, lo=1, hi=8)
        )
    test = names_tokens(d, d.draw(st.integers(1, 3)))
    V, smoothing = 4, pick(d, [0.5, 1.0])
    if bad == "a":
        kind = pick(d, ["train", "test_empty", "train_empty", "range"])
        if kind == "train":
            tokens = token_arg(d, (n, 6), 4, True)
        elif kind == "test_empty":
            test = test[:0]
        elif kind == "train_empty":
            tokens = tokens[:0]
        else:
            test = test + 10
    elif bad == "b":
        V = pick(d, [0, 1, -1, 2.5, "4", None, True])
    elif bad == "c":
        smoothing = pick(d, [-1.0, NAN, INF, "1", None])
    return Trial(
        lambda: mtext.unigram_bits_per_char(tokens, test, V, smoothing=smoothing),
        bad is None,
        check_bpc,
        f"unigram({tokens!r:.40}, {test!r:.40}, {V!r}, {smoothing!r})",
    )


@case("metrics_text")
def case_model_bits_per_char(d):
    what = pick(d, ["ar", "generative", "nelbo"])
    n = d.draw(st.integers(1, 3))
    tokens = names_tokens(d, n)
    bad = which_bad(d, "tokens", "model", "batch_size", "n_samples")
    if bad == "tokens":
        tokens = pick(d, [tokens[:0], tokens + 4, tokens.float(), tokens[0], "tokens", tokens[:, :7].repeat(1, 2)])
    bs = pick(d, [1, 2048]) if bad != "batch_size" else pick(d, [0, -1, True, 2.5, "8", None])
    if what in ("ar", "generative"):
        model = tiny("ct") if bad != "model" else pick(d, [None, "model", tiny("dt")])
        if bad == "n_samples":
            bad = None
        if what == "ar":
            return Trial(lambda: mtext.ar_bits_per_char(model, tokens, batch_size=bs), bad is None, check_bpc)
        return Trial(lambda: mtext.generative_bits_per_char(model, tokens, batch_size=bs), bad is None, check_float)
    process = MaskedProcess(4)
    model = tiny("dt_masked") if bad != "model" else pick(d, [None, "model", lambda x, t: torch.zeros(1)])
    ns = d.draw(st.integers(2, 3)) if bad != "n_samples" else pick(d, [0, 1, -1, 2.5, "2", None, True])
    if bad == "model" and model is None:
        process = pick(d, [None, "masked"])
        model = tiny("dt_masked")
    return Trial(
        lambda: mtext.nelbo_bits_per_char(process, model, tokens, n_samples=ns, batch_size=bs, generator=gen(0)),
        bad is None,
        check_bpc,
        f"nelbo({tokens!r:.60}, {model!r:.30}, n_samples={ns!r}, batch_size={bs!r})",
    )


@case("metrics_text")
def case_sample_statistics(d):
    what = pick(d, ["novelty", "diversity", "sample_entropy", "sample_report"])
    n = d.draw(st.integers(1, 4))
    bad = which_bad(d, "a", "b")
    strings = [d.draw(st.text(alphabet="abc", min_size=1, max_size=3)) for _ in range(n)]
    if what == "novelty":
        train_ = pick(d, [["a", "ab"], {"abc"}, ("b",), []])
        if bad == "a":
            strings = pick(d, [[], "abc", [1], None, torch.zeros(2, 3)])
        elif bad == "b":
            train_ = pick(d, [None, 3, "abc", [1, 2]])
        return Trial(lambda: mtext.novelty(strings, train_), bad is None, lambda r: check_float(r, 0, 1))
    if what == "diversity":
        if bad:
            strings = pick(d, [[], "abc", [1], None, torch.zeros(2, 3)])
        return Trial(lambda: mtext.diversity(strings), bad is None, lambda r: check_float(r, 0, 1))
    tokens = names_tokens(d, n)
    if what == "sample_entropy":
        V, pad, per = 4, pick(d, [0, None, 2]), pick(d, [False, True])
        if bad == "a":
            tokens = pick(d, [tokens[:0], tokens + 4, tokens.float(), tokens[0], "tokens", tokens - 1])
        elif bad == "b":
            kind = pick(d, ["V", "pad", "per"])
            if kind == "V":
                V = pick(d, [0, -1, 2.5, "4", None, True])
            elif kind == "pad":
                pad = pick(d, [-1, 4, 2.5, "0"])
            else:
                per = pick(d, ["yes", None, 1])
        return Trial(
            lambda: mtext.sample_entropy(tokens, V, pad, per),
            bad is None,
            lambda r: check_float(r, 0, 2),
            f"sample_entropy({tokens!r:.60}, {V!r}, {pad!r}, {per!r})",
        )
    vocab, model, train_ = CharVocab("abc"), tiny("ct"), ["ab", "c"]
    if bad == "a":
        tokens = pick(d, [tokens[:0], tokens + 4, tokens.float(), "tokens"])
    elif bad == "b":
        kind = pick(d, ["vocab", "model", "train"])
        if kind == "vocab":
            vocab = pick(d, [None, "abc", 4])
        elif kind == "model":
            model = pick(d, [None, "model"])
        else:
            train_ = pick(d, [None, 3, [1, 2]])

    def check(r):
        if not isinstance(r, mtext.SampleReport):
            return check_type(r, mtext.SampleReport)
        return first_problem(
            check_float(r.gen_bpc, 0), check_float(r.novelty, 0, 1), check_float(r.diversity, 0, 1),
            check_float(r.well_formed, 0, 1), check_float(r.entropy, 0),
        )  # fmt: skip

    return Trial(lambda: mtext.sample_report(tokens, vocab, model, train_), bad is None, check)


# ---------------------------------------------------------------------------------------------------------------------
# metrics: joint (point, label)
# ---------------------------------------------------------------------------------------------------------------------

JK = 3  # labels of the joint metrics' toy


def labels_arg(d, n: int, bad: bool = False):
    lab = torch.randint(0, JK, (n,), generator=gen(seed(d)))
    if not bad:
        return lab
    return pick(d, [lab[:0], lab.float(), lab + JK, lab - JK, lab.tolist(), None, lab[:-1] if n > 1 else lab[:0]])


def weights_arg(d, bad: bool = False):
    w = torch.softmax(randn(d, (JK,), torch.float64), 0)
    if not bad:
        return w
    return pick(
        d, [w * 2, w - 1, torch.full((JK,), NAN), w[None], w.tolist(), w[:-1], torch.tensor([1.0, 0.5, -0.5]), None]
    )


@case("metrics_joint")
def case_joint_metric_functions(d):
    what = pick(d, ["accuracy", "label_marginal_tv", "label_tv_floor", "coherence", "spread_ratio"])
    n = d.draw(st.integers(1, 6))
    bad = which_bad(d, "a", "b", "c")
    if what in ("accuracy", "coherence"):
        a, b = labels_arg(d, n), labels_arg(d, n)
        if bad:  # accuracy knows no number of labels: an id past K is not detectable, the rest is
            broken = pick(d, [a[:0], a.float(), a - JK, a.tolist(), None, a[:-1] if n > 1 else a[:0], a[None, :, None]])
            if broken is not None and not isinstance(broken, list) and broken.ndim == 3 and what == "coherence":
                broken = a.float()  # coherence flattens both label tensors: any shape of N labels is fine
            a, b = (broken, b) if bad != "b" else (a, broken)
        fn = mj.accuracy if what == "accuracy" else mj.coherence
        return Trial(lambda: fn(a, b), bad is None, lambda r: check_float(r, 0, 1), f"{what}({a!r:.50}, {b!r:.50})")
    if what == "label_marginal_tv":
        lab, w = labels_arg(d, n, bad == "a"), weights_arg(d, bad in ("b", "c"))
        if bad == "a" and isinstance(lab, torch.Tensor) and lab.shape == (n - 1,):
            lab = lab[:0]
        return Trial(
            lambda: mj.label_marginal_tv(lab, w),
            bad is None,
            lambda r: check_float(r, 0, 1),
            f"tv({lab!r:.50}, {w!r:.80})",
        )
    if what == "label_tv_floor":
        w = weights_arg(d, bad == "a")
        m = d.draw(st.integers(1, 10)) if bad != "b" else pick(d, BAD_INTS)
        reps = d.draw(st.integers(2, 5)) if bad != "c" else pick(d, [0, 1, -1, 2.5, "3", True])
        return Trial(
            lambda: mj.label_tv_floor(w, m, reps, gen(0)),
            bad is None,
            lambda r: first_problem(check_float(r[0], 0, 1), check_float(r[1], 0)),
            f"tv_floor({w!r:.60}, {m!r}, {reps!r})",
        )
    D = d.draw(st.integers(1, 3))
    p, q = float_arg(d, (n + 1, D), bad == "a"), float_arg(d, (n + 2, D), False)
    if bad == "b":
        q = pick(d, [torch.ones(4, D), torch.zeros(4, D + 1), q[0], "ref"])
    elif bad == "c":
        p = pick(d, [p[:0], p.long()])
    return Trial(
        lambda: mj.spread_ratio(p, q), bad is None, lambda r: check_float(r, 0), f"spread({p!r:.40}, {q!r:.40})"
    )


@case("metrics_joint")
def case_joint_metric_scores(d):
    what = pick(d, ["point_to_label", "label_to_point", "joint"])
    n = d.draw(st.integers(2 * JK, 3 * JK))  # every label at least twice
    bad = which_bad(d, "labels", "points", "reference", "number")
    lab = torch.arange(n) % JK
    bayes = labels_arg(d, n)
    if what == "point_to_label":
        pred, drawn, true = labels_arg(d, n), labels_arg(d, n), labels_arg(d, n)
        acc, post, nfe = d.draw(st.floats(0, 1)), d.draw(st.floats(0, 1)), d.draw(st.integers(0, 9))
        if bad in ("labels", "points"):  # an id past K is not detectable here (no K is given)
            true = pick(d, [true[:0], true.float(), true - JK, true.tolist(), None, true[:-1]])
        elif bad == "reference":
            bayes = pick(d, [bayes[:0], bayes.float(), bayes - JK, bayes.tolist(), None, bayes[:-1]])
        elif bad == "number":
            kind = pick(d, ["acc", "post", "nfe"])
            if kind == "acc":
                acc = pick(d, [1.5, -0.1, NAN, "0.9", None])
            elif kind == "post":
                post = pick(d, [1.5, NAN, "0.9"])
            else:
                nfe = pick(d, [-1, 2.5, "3", None, True])

        def check(r):
            if not isinstance(r, mj.PointToLabel):
                return check_type(r, mj.PointToLabel)
            return first_problem(
                check_float(r.classify_accuracy, 0, 1), check_float(r.se, 0), check_float(r.sampled_accuracy, 0, 1)
            )

        return Trial(
            lambda: mj.score_point_to_label(
                pred, drawn, true, bayes, bayes_accuracy=acc, posterior_sampling_accuracy=post, nfe=nfe
            ),
            bad is None,
            check,
            f"p2l({bad})",
        )
    D = 2
    points = float_arg(d, (n, D), bad == "points")
    if what == "label_to_point":
        refs = {y: (randn(d, (4, D)), randn(d, (4, D))) for y in range(JK)}
        share = d.draw(st.floats(0, 1))
        if bad == "labels":
            lab = pick(d, [lab + JK, lab.float(), lab[:-1], lab[:0]])
        elif bad == "reference":
            kind = pick(d, ["missing", "not_pair", "nan", "width", "not_mapping"])
            if kind == "missing":
                del refs[int(lab[0])]
            elif kind == "not_pair":
                refs[0] = randn(d, (4, D))
            elif kind == "nan":
                refs[1] = (torch.full((4, D), NAN), refs[1][1])
            elif kind == "width":
                refs[2] = (randn(d, (4, D + 1)), randn(d, (4, D + 1)))
            else:
                refs = [refs[y] for y in range(JK)]
        elif bad == "number":
            share = pick(d, [1.5, NAN, "1", None])

        def check(r):
            if not isinstance(r, mj.LabelToPoint):
                return check_type(r, mj.LabelToPoint)
            return first_problem(check_float(r.region_share, 0, 1), check_float(r.sw, 0), check_float(r.spread, 0))

        return Trial(
            lambda: mj.score_label_to_point(
                points, lab, bayes, refs, exact_region_share=share, n_projections=8, generator=gen(0)
            ),
            bad is None,
            check,
            f"l2p({bad})",
        )
    data, data2, w = randn(d, (5, D)), randn(d, (5, D)), weights_arg(d)
    floor, acc = d.draw(st.floats(0, 1)), d.draw(st.floats(0, 1))
    if bad == "labels":
        lab = labels_arg(d, n, True)
    elif bad == "reference":
        kind = pick(d, ["data", "weights"])
        if kind == "data":
            data = pick(d, [torch.zeros(5, D + 1), float_arg(d, (5, D), True), data[:0]])
        else:
            w = weights_arg(d, True)
    elif bad == "number":
        floor, acc = pick(d, [(NAN, acc), (floor, 1.5), ("0.1", acc), (-0.5, acc)])

    def check_joint(r):
        if not isinstance(r, mj.JointSampleQuality):
            return check_type(r, mj.JointSampleQuality)
        return first_problem(check_float(r.label_tv, 0, 1), check_float(r.coherence, 0, 1), check_float(r.point_sw, 0))

    return Trial(
        lambda: mj.score_joint(
            points, lab, bayes, data, data2, w, label_tv_floor=floor, bayes_accuracy=acc, n_projections=8
        ),
        bad is None,
        check_joint,
        f"joint({bad})",
    )


# ---------------------------------------------------------------------------------------------------------------------
# metrics: tabular (tiny frames)
# ---------------------------------------------------------------------------------------------------------------------


def metric_frame(d, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed(d))
    return pd.DataFrame(
        {
            "num": rng.normal(size=n),
            "count": rng.integers(0, 5, n),
            "cat": TEXT[rng.integers(0, 3, n)].copy(),
            "y": np.array(["p", "q"], dtype=object)[np.arange(n) % 2],
        }
    )


def break_metric_frame(d, df: pd.DataFrame, kinds=None) -> object:
    kind = pick(d, kinds or ["empty", "not_frame", "missing", "extra", "inf", "text_numeric", "dup", "nonstr"])
    if kind == "empty":
        return df.iloc[:0]
    if kind == "not_frame":
        return pick(d, [df.to_numpy(), None, "df"])
    if kind == "missing":
        return df.drop(columns=["cat"])
    if kind == "extra":
        return df.assign(extra=1)
    if kind == "inf":
        return df.assign(num=np.where(np.arange(len(df)) == 0, np.inf, df["num"]))
    if kind == "text_numeric":
        return df.assign(num="x")
    if kind == "dup":
        return pd.concat([df, df[["num"]]], axis=1)
    return df.rename(columns={"num": 0})


METADATA = [None, {"num": "numerical", "count": "integer", "cat": "categorical", "y": "categorical"}]


@case("metrics_tabular")
def case_tabular_metrics(d):
    what = pick(d, ["column_sdtypes", "alpha_beta", "dcr_share", "imputation", "target_imputation", "summaries"])
    n = d.draw(st.integers(2, 8))
    real, syn, hold = metric_frame(d, n), metric_frame(d, d.draw(st.integers(1, 8))), metric_frame(d, n + 1)
    meta = pick(d, METADATA)
    bad = which_bad(d, "real", "other", "metadata", "option")
    if bad == "real":
        real = break_metric_frame(d, real)
        if isinstance(real, pd.DataFrame) and isinstance(real.get("num"), pd.Series) and real["num"].dtype == object:
            meta = METADATA[1]  # inferred kinds would make a text column categorical: valid; declared numerical: not
    elif bad == "other":
        syn = break_metric_frame(d, syn)
    elif bad == "metadata":
        meta = pick(
            d,
            [{"num": "float"}, {"num": "numerical"}, "meta", {"columns": {"num": {"sdtype": "x"}}},
             {"num": "categorical", "count": "integer", "cat": "numerical", "y": "categorical"}, 3],
        )  # fmt: skip
    if what == "column_sdtypes":
        if bad in ("other", "option"):
            bad, real = "real", None
        elif bad == "real":  # kinds only: values (inf) do not matter; columns do where metadata names them
            kinds = ["empty", "not_frame", "dup", "nonstr"] + (["missing", "extra"] if meta is not None else [])
            real = break_metric_frame(d, metric_frame(d, n), kinds)
        return Trial(
            lambda: mt.column_sdtypes(real, meta),
            bad is None,
            lambda r: (
                None if set(r.values()) <= {"numerical", "categorical"} and list(r) == list(real.columns) else f"{r}"
            ),
            f"column_sdtypes({real!r:.200}, {meta})",
        )
    if what == "alpha_beta":
        na = d.draw(st.integers(2, 10)) if bad != "option" else pick(d, [1, 0, True, 2.5, "30"])
        mr = pick(d, [None, 3]) if bad != "option" else None
        if bad == "option" and d.draw(st.booleans()):
            na, mr = 5, pick(d, [0, -1, 2.5, "3", True])

        def check(r):
            return first_problem(check_float(r["alpha_precision"], None, 100), check_float(r["beta_recall"], None, 100))

        return Trial(
            lambda: mt.alpha_precision_beta_recall(real, syn, meta, na, max_rows=mr),
            bad is None,
            check,
            f"alpha_beta({bad}, n_alphas={na!r}, max_rows={mr!r})",
        )
    if what == "dcr_share":
        ties, balance, mr = pick(d, ["half", "holdout"]), pick(d, [True, False]), pick(d, [None, 4])
        if bad == "option":
            kind = pick(d, ["ties", "balance", "max_rows", "seed"])
            if kind == "ties":
                ties = pick(d, ["both", None, 1])
            elif kind == "balance":
                balance = pick(d, ["yes", None, 2])
            elif kind == "max_rows":
                mr = pick(d, [0, -1, 2.5, "3", True])
            else:
                return Trial(lambda: mt.dcr_share(syn, real, hold, seed=pick(d, [-1, "0", 2.5])), False, lambda r: None)

        def check(r):
            return first_problem(check_float(r["dcr_share"], 0, 100), check_float(r["tie_share"], 0, 100))

        return Trial(
            lambda: mt.dcr_share(syn, real, hold, meta, balance=balance, ties=ties, max_rows=mr),
            bad is None,
            check,
            f"dcr({bad}, ties={ties!r}, balance={balance!r}, max_rows={mr!r})",
        )
    if what == "imputation":
        truth, imputed = real, metric_frame(d, n)
        mask = np.random.default_rng(seed(d)).random((n, 4)) < 0.5
        if bad == "other":
            imputed = pick(d, ["broken", "rows", "nan"])
            if imputed == "nan" and mask[:, 0].any():
                imputed = metric_frame(d, n).assign(num=np.where(mask[:, 0], np.nan, 1.0))
            elif imputed == "rows":
                imputed = metric_frame(d, n + 1)
            else:
                imputed = break_metric_frame(d, metric_frame(d, n))
        elif bad == "option":
            mask = pick(d, [mask[:-1], mask.astype(int), "mask", mask[:, :2], None])

        def check_imp(r):
            acc = r["accuracy"]
            return None if math.isnan(acc) or 0 <= acc <= 1 else f"accuracy {acc}"

        return Trial(
            lambda: mt.imputation_scores(imputed, truth, mask, meta), bad is None, check_imp, f"imputation({bad})"
        )
    if what == "target_imputation":
        truth, positive = metric_frame(d, n)["y"], "p"
        rng = np.random.default_rng(seed(d))
        draw = lambda m: np.array(["p", "q"], dtype=object)[rng.integers(0, 2, m)]  # noqa: E731
        k = pick(d, ["labels", "draws", "probs"])
        imputed = {"labels": draw(n), "draws": [draw(n) for _ in range(3)], "probs": rng.random(n)}[k]
        if bad == "real":
            truth = pick(d, [[], None, 3, truth[:0]])
        elif bad == "other":
            imputed = pick(d, [rng.random(n) + 1.5, np.full(n, NAN), rng.random(n + 1), np.zeros((2, 2, n)), None, []])
        elif bad == "metadata":
            positive = pick(d, ["zz", None, 1])
        elif bad == "option":
            imputed = pick(d, [draw(n + 1), [draw(n), draw(n + 1)], "p"])

        def check_target(r):
            return first_problem(
                None if math.isnan(r["auc"]) else check_float(r["auc"], 0, 1), check_float(r["accuracy"], 0, 1)
            )

        return Trial(
            lambda: mt.target_imputation_scores(imputed, truth, positive),
            bad is None,
            check_target,
            f"target({bad}, {imputed!r:.60}, {positive!r})",
        )
    results = [
        {"a": d.draw(st.floats(0, 1)), "b": {"c": d.draw(st.integers(0, 3))}} for _ in range(d.draw(st.integers(1, 3)))
    ]
    digits = d.draw(st.integers(0, 4))
    if bad:
        kind = pick(d, ["empty", "mapping", "keys", "not_dicts", "digits"])  # NaN metrics average to NaN: fine
        if kind == "empty":
            results = []
        elif kind == "mapping":
            results = results[0]
        elif kind == "keys":
            results = [*results, {"a": 1.0}]
        elif kind == "not_dicts":
            results = pick(d, [[1, 2], "abc", None])
        else:
            digits = pick(d, [-1, 2.5, "2", None])

    def check_summary(r):
        if not isinstance(r, dict) or set(r) != {"a", "b/c"}:
            return f"got {r!r}"
        return None

    return Trial(
        lambda: mt.format_summary(mt.summarize_seeds(results), digits),
        bad is None,
        check_summary,
        f"summary({results!r:.100}, {digits!r})",
    )


@case("metrics_tabular", heavy=True)
def case_tabular_metrics_sdmetrics(d):
    what = pick(d, ["shape_trend", "c2st"])
    n = d.draw(st.integers(4, 10))
    real, syn = metric_frame(d, n), metric_frame(d, n)
    meta = pick(d, METADATA)
    bad = which_bad(d, "real", "other")
    if bad == "real":
        real = break_metric_frame(d, real)
        if isinstance(real, pd.DataFrame) and isinstance(real.get("num"), pd.Series) and real["num"].dtype == object:
            meta = METADATA[1]  # inferred kinds would make a text column categorical: valid; declared numerical: not
    elif bad == "other":
        syn = break_metric_frame(d, syn)
    if what == "c2st":
        return Trial(
            lambda: mt.c2st(real, syn, meta),
            bad is None,
            lambda r: check_float(r, 0, 1),
            f"c2st({bad}, {real!r:.200}, {syn!r:.200}, {meta})",
        )

    def check(r):
        return first_problem(check_float(r["shape_error"], 0, 100), check_float(r["trend_error"], 0, 100))

    return Trial(
        lambda: mt.shape_trend_errors(real, syn, meta),
        bad is None,
        check,
        f"shape_trend({bad}, {real!r:.200}, {syn!r:.200}, {meta})",
    )


# ---------------------------------------------------------------------------------------------------------------------
# train, checkpoints, viz
# ---------------------------------------------------------------------------------------------------------------------


def mse_loss(model, batch):
    return ((model(batch) - 1.0) ** 2).mean()


@case("train", heavy=True)
def case_train(d):
    via = pick(d, ["train", "train_iter"])
    bad = which_bad(d, "model", "loss_fn", "batches", "steps", "lr", "device", "option")
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    loss_fn = mse_loss
    batches = infinite_batches(torch.randn(8, 2, generator=gen(seed(d))), batch_size=4, generator=gen(0))
    steps = d.draw(st.integers(1, 2))
    kw = dict(lr=pick(d, [1e-3, 0.1]), device=pick(d, [None, "cpu"]), progress=False, ema_decay=pick(d, [None, 0.9]))
    if bad == "model":
        model = pick(d, [None, "model", lambda x: x])
    elif bad == "loss_fn":
        loss_fn = pick(
            d,
            [
                None,
                3,
                lambda m, b: m(b),
                lambda m, b: m(b).sum() * NAN,
                lambda m, b: 1.0,
                lambda m, b: m(b).mean().long(),
            ],
        )
    elif bad == "batches":
        batches = pick(d, [None, 3, iter([]), [torch.randn(4, 2)] * 0])
    elif bad == "steps":
        steps = pick(d, [0, -1, True, 2.5, None, "2"])
    elif bad == "lr":
        kw["lr"] = pick(d, [0.0, -1.0, NAN, INF, "1e-3", None])
    elif bad == "device":
        kw["device"] = pick(d, ["nodevice", 3, "cuda:7", "cpu:x"])
    elif bad == "option":
        kw.update(
            pick(
                d,
                [dict(precision="fp64"), dict(seed=-1), dict(seed="0"), dict(betas=(0.9,)), dict(warmup=steps + 1),
                 dict(checkpoint_every=1), dict(grad_clip=0.0), dict(ema_decay=1.0), dict(compile="yes"),
                 dict(log_every=0), dict(config={"a": object()})],
            )
        )  # fmt: skip
    if via == "train":
        if bad == "option" and d.draw(st.booleans()):
            kw = {**kw, "epochs": 3}

        def check(r):
            return None if len(r.losses) == steps and all(math.isfinite(v) for v in r.losses) else f"losses {r.losses}"

        return with_clean(
            Trial(lambda: train(model, loss_fn, batches, steps=steps, **kw), bad is None, check, f"train({bad}, {kw})"),
            FloatingPointError,
        )

    def check_iter(r):
        return None if len(r) == steps and all(math.isfinite(s.loss) for s in r) else f"{len(r)} states"

    return with_clean(
        Trial(lambda: list(train_iter(model, loss_fn, batches, steps=steps, **kw)), bad is None, check_iter),
        FloatingPointError,
    )


CK_DIR = Path(tempfile.mkdtemp(prefix="diffuse_edu_fuzz_ckpt_"))
atexit.register(shutil.rmtree, CK_DIR, ignore_errors=True)
_FRESH = iter(range(10**9))


@functools.cache
def saved_checkpoint() -> Path:
    from diffuse_edu.nets.mlp import TimeMLP

    torch.manual_seed(0)
    net = TimeMLP(2, hidden=4, depth=1, time_dim=4)
    ckpt.save_checkpoint(CK_DIR / "base", net, {"a": 1}, ema=net)
    return CK_DIR / "base"


def fresh_copy() -> Path:
    folder = CK_DIR / f"c{next(_FRESH)}"
    folder.mkdir()
    for ext in (".safetensors", ".json"):
        (folder / f"ck{ext}").write_bytes(saved_checkpoint().with_suffix(ext).read_bytes())
    return folder / "ck"


@case("checkpoint")
def case_load_checkpoint(d):
    from diffuse_edu.nets.mlp import TimeMLP

    bad = which_bad(d, "path", "file", "json", "model", "device", "verify")
    stem = fresh_copy()
    path = pick(d, [stem, str(stem), stem.with_suffix(".json"), str(stem) + ".safetensors"])
    model = pick(
        d, [None, TimeMLP(2, hidden=4, depth=1, time_dim=4), lambda cfg: TimeMLP(2, hidden=4, depth=1, time_dim=4)]
    )
    device, verify = pick(d, [None, "cpu", torch.device("cpu")]), pick(d, [True, False])
    st_path, js_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if bad == "path":
        kind = pick(d, ["missing", "folder", "text", "pickle", "int", "none"])
        if kind == "missing":
            path = stem.parent / "nothing_here"
        elif kind == "folder":
            path = stem.parent
        elif kind == "text":
            (stem.parent / "notes.txt").write_text("hello")
            path = stem.parent / "notes.txt"
        elif kind == "pickle":
            torch.save({"w": torch.zeros(2)}, stem.parent / "model.pt")
            path = stem.parent / "model.pt"
        else:
            path = pick(d, [3, None])
    elif bad == "file":
        verify = True  # verify=False is the caller's explicit choice to skip the check
        data = bytearray(st_path.read_bytes())
        kind = pick(d, ["flip", "truncate", "delete", "garbage"])
        if kind == "flip":
            i = d.draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << d.draw(st.integers(0, 7))
            st_path.write_bytes(bytes(data))
        elif kind == "truncate":
            st_path.write_bytes(bytes(data[: d.draw(st.integers(0, len(data) - 1))]))
        elif kind == "delete":
            pick(d, [st_path, js_path]).unlink()
        else:
            st_path.write_bytes(b"not safetensors at all")
    elif bad == "json":
        meta = json.loads(js_path.read_text())
        kind = pick(d, ["garbage", "format", "version", "unverifiable", "net", "net_config", "list", "files"])
        if kind == "garbage":
            js_path.write_text("{not json")
        elif kind == "list":
            js_path.write_text("[1, 2]")
        else:
            if kind == "format":
                meta["format"] = "other"
            elif kind == "version":
                meta["version"] = pick(d, [99, "2", None])
            elif kind == "unverifiable":
                verify = True  # verify=False is the caller's explicit choice to skip the check
                meta["files"] = {}
                data = bytearray(st_path.read_bytes())
                data[-1] ^= 1
                st_path.write_bytes(bytes(data))
            elif kind == "net":
                meta["net"] = pick(d, [{"class": "os.system", "config": {}}, {"class": 3}, "TimeMLP"])
                model = None
            elif kind == "net_config":
                meta["net"]["config"] = pick(d, [{"dim": -1}, {"nonsense": 1}, [1]])
                model = None
            else:
                verify = True
                meta["files"] = pick(d, [{st_path.name: {"sha256": 3}}, {st_path.name: "abc"}, [1], 3])
            js_path.write_text(json.dumps(meta))
    elif bad == "model":
        model = pick(d, [TimeMLP(3, hidden=4, depth=1, time_dim=4), lambda cfg: "net", "model", lambda cfg: TimeMLP(5)])
    elif bad == "device":
        device = pick(d, ["nodevice", 3, "cuda:7"])
    elif bad == "verify":
        verify = pick(d, ["yes", None, 1])

    def check(r):
        if not isinstance(r, ckpt.Checkpoint) or not isinstance(r.model, torch.nn.Module):
            return "not a Checkpoint with a model"
        ref = ckpt.load_checkpoint(saved_checkpoint()).model.state_dict()
        got = r.model.state_dict()
        return None if all(torch.equal(ref[k], got[k]) for k in ref) else "weights differ from the saved ones"

    return with_clean(
        Trial(
            lambda: ckpt.load_checkpoint(path, model, device=device, verify=verify),
            bad is None,
            check,
            f"load({bad}, {path!r}, verify={verify}, json={js_path.read_text()[:400] if js_path.exists() else None})",
        ),
        FileNotFoundError,
    )


@case("checkpoint")
def case_save_checkpoint(d):
    from diffuse_edu.nets.mlp import TimeMLP

    bad = which_bad(d, "path", "model", "config", "ema", "state")
    path = CK_DIR / f"s{next(_FRESH)}" / "ck"
    path = pick(d, [path, str(path)])
    model = TimeMLP(2, hidden=4, depth=1, time_dim=4)
    config, ema, state = (
        pick(d, [None, {"a": [1, 2]}]),
        pick(d, [None, model]),
        pick(d, [None, {"step": 3, "t": torch.ones(2)}]),
    )
    if bad == "path":
        path = pick(d, [3, None, ["a"]])
    elif bad == "model":
        model = pick(d, [None, "model", {"w": torch.zeros(2)}])
    elif bad == "config":
        config = pick(d, [{"a": object()}, [1], "cfg", {"t": torch.zeros(1)}])
    elif bad == "ema":
        ema = pick(d, ["ema", 3, TimeMLP(3, hidden=4, depth=1, time_dim=4)])
    elif bad == "state":
        state = pick(d, [{"x": object()}, [1], "state", {(1, 2): torch.zeros(1)}])

    def check(r):
        loaded = ckpt.load_checkpoint(path)
        sd = loaded.model.state_dict()
        return None if all(torch.equal(v, sd[k]) for k, v in model.state_dict().items()) else "round trip differs"

    return Trial(
        lambda: ckpt.save_checkpoint(path, model, config, ema, state=state), bad is None, check, f"save({bad})"
    )


os.environ.setdefault("MPLBACKEND", "Agg")


def close_figures(fn):
    def call():
        import matplotlib.pyplot as plt

        try:
            return fn()
        finally:
            plt.close("all")

    return call


@case("viz")
def case_make_grid(d):
    n, C = d.draw(st.integers(1, 5)), pick(d, [1, 3])
    bad = which_bad(d, "x", "nrow", "padding", "pad_value")
    x = randn(d, (n, C, 3, 4)).clamp(-1, 1)
    nrow, padding, pad_value = d.draw(st.integers(1, 6)), d.draw(st.integers(0, 2)), pick(d, [-1.0, 0, 1])
    if bad == "x":
        x = pick(d, [x[:0], x[0], x.tolist(), None, x * NAN, x - INF, x.to(torch.complex64)])  # ints and bools are fine
    elif bad == "nrow":
        nrow = pick(d, [0, -1, True, 2.5, "2", None])
    elif bad == "padding":
        padding = pick(d, [-1, True, 1.5, "1", None])
    elif bad == "pad_value":
        pad_value = pick(d, [NAN, INF, "0", None, [0.0]])
    cols = min(nrow, n) if isinstance(nrow, int) and nrow > 0 else 1
    rows = -(-n // cols)

    def check(r):
        shape = (C, rows * (3 + padding) - padding, cols * (4 + padding) - padding)
        problem = check_tensor(r, shape)
        if problem:
            return problem
        for i in range(n):
            rr, cc = divmod(i, cols)
            tile = r[:, rr * (3 + padding) : rr * (3 + padding) + 3, cc * (4 + padding) : cc * (4 + padding) + 4]
            if not torch.equal(tile, x[i].float()):
                return f"image {i} is not at its place in the grid"
        return None

    return Trial(
        lambda: viz.make_grid(x, nrow, padding, pad_value),
        bad is None,
        check,
        f"make_grid({getattr(x, 'shape', x)}, {nrow!r}, {padding!r}, {pad_value!r})",
    )


@case("viz")
def case_plot_helpers(d):
    what = pick(d, ["image_grid", "scatter2d", "plot_losses"])
    bad = which_bad(d, "a", "b")
    n = d.draw(st.integers(1, 4))
    is_ax = lambda r: None if hasattr(r, "plot") else f"not an Axes: {type(r).__name__}"  # noqa: E731
    if what == "image_grid":
        x = randn(d, (n, pick(d, [1, 3]), 4, 4)).clamp(-1, 1)
        vrange, nrow = pick(d, [(-1.0, 1.0), (0, 1)]), d.draw(st.integers(1, 4))
        if bad == "a":
            x = pick(d, [x[:0], x[0], None, x * NAN, "x"])
        elif bad == "b":
            vrange = pick(d, [(1.0, -1.0), (0.0,), "ab", (NAN, 1.0), (0, 0), None])
        return Trial(
            close_figures(lambda: viz.image_grid(x, nrow, vrange=vrange)), bad is None, is_ax, f"image_grid({vrange!r})"
        )
    if what == "scatter2d":
        x = randn(d, (n, 2))
        lim = pick(d, [None, 3.0])
        if bad == "a":
            x = pick(d, [x * NAN, x - INF, x.to(torch.complex64), torch.zeros(n, 3), "x", None])  # ints plot fine
        elif bad == "b":
            lim = pick(d, [0.0, -1.0, NAN, "3"])
        return Trial(
            close_figures(lambda: viz.scatter2d(None, x, lim=lim)),
            bad is None,
            is_ax,
            f"scatter2d({x!r:.40}, lim={lim!r})",
        )
    losses = [d.draw(st.floats(0.1, 5.0)) for _ in range(n)]
    smooth = d.draw(st.integers(1, 5))
    if bad == "a":
        losses = pick(d, [None, "loss", [[1.0, 2.0]], 3.0])
    elif bad == "b":
        smooth = pick(d, [0, -1, 2.5, "5", None])
    return Trial(
        close_figures(lambda: viz.plot_losses(losses, smooth=smooth)),
        bad is None,
        is_ax,
        f"plot_losses({losses!r:.40}, smooth={smooth!r})",
    )


# ---------------------------------------------------------------------------------------------------------------------
# recipes: TabularDiffusion (one tiny model fitted on penguins per session) and the judges
# ---------------------------------------------------------------------------------------------------------------------

TINY_NET = dict(width=8, depth=1, heads=2, freq_dim=8)


@functools.cache
def penguins() -> pd.DataFrame:
    from diffuse_edu.data.tables import load_penguins

    return load_penguins()


@functools.cache
def tabular_model():
    from diffuse_edu.recipes.tabular import TabularDiffusion

    return TabularDiffusion(net_kwargs=TINY_NET).fit(penguins(), steps=3, batch_size=64, progress=False, device="cpu")


def check_table(r, n, model) -> str | None:
    if not isinstance(r, pd.DataFrame) or len(r) != n or list(r.columns) != model.encoder.schema.names:
        return f"expected {n} rows over {model.encoder.schema.names}, got {type(r).__name__} {getattr(r, 'shape', '')}"
    for spec in model.encoder.schema:
        if spec.kind == "categorical":
            vocab = model.encoder.vocab(spec.name)
            if not all(pd.isna(v) or v in vocab for v in r[spec.name].tolist()):
                return f"{spec.name}: a value outside the vocabulary"
    return None


@case("recipes")
def case_tabular_constructor(d):
    from diffuse_edu.clocks import Decoupled
    from diffuse_edu.recipes.tabular import TabularDiffusion

    keys = ["clock", "preset", "net_kwargs", "numeric_schedule", "categorical_schedule", "prediction",
            "categorical_loss", "numeric_weight", "overrides", "nan_as_category", "max_int_categories"]  # fmt: skip
    bad = which_bad(d, *keys)
    kw = dict(
        clock=pick(d, ["shared", "per-type", "per-column", "mixed", Decoupled()]),
        preset=pick(d, ["small", "medium"]),
        net_kwargs=pick(d, [None, {}, {"depth": 1}, {"width": 8, "heads": 2}]),
        numeric_schedule=pick(d, ["vp-linear", "cosine"]),
        categorical_schedule=pick(d, ["log-linear", "cosine"]),
        prediction=pick(d, ["eps", "x0", "v"]),
        categorical_loss=pick(d, ["elbo", "ce"]),
        numeric_weight=pick(d, [1.0, 0.5, 2]),
        overrides=pick(d, [None, {"year": "integer"}]),
        nan_as_category=pick(d, [True, False]),
        max_int_categories=d.draw(st.integers(0, 12)),
    )
    if bad:
        kw[bad] = pick(
            d,
            {
                "clock": ["decoupled", 3, None],
                "preset": ["tiny", None, 3],
                "net_kwargs": ["x", 3, {"widht": 8}, {"width": 0}, {"heads": 5}, {"numeric": ["a"]}],
                "numeric_schedule": ["cosin", 3, None],
                "categorical_schedule": ["cosin", 3],
                "prediction": ["epsilon", None],
                "categorical_loss": ["nll", None],
                "numeric_weight": [-1.0, NAN, "1", None],
                "overrides": ["year", ["year"], {"year": "float"}, 3],
                "nan_as_category": ["no", None, 1],
                "max_int_categories": [-1, True, 2.5, "10"],
            }[bad],
        )
    return Trial(
        lambda: TabularDiffusion(**kw),
        bad is None,
        lambda r: check_type(r, TabularDiffusion),
        f"TabularDiffusion({kw})",
    )


@case("recipes", heavy=True)
def case_tabular_fit(d):
    from diffuse_edu.recipes.tabular import TabularDiffusion

    bad = which_bad(d, "df", "steps", "batch_size", "seed", "device", "train_kwargs")
    df = penguins().sample(d.draw(st.integers(5, 20)), random_state=seed(d))
    if pick(d, [True, False]):
        df = df[["species", "bill_length_mm", "sex"]]
    kw = dict(steps=d.draw(st.integers(1, 2)), batch_size=pick(d, [4, 1024]), seed=d.draw(st.integers(0, 3)))
    kw.update(device="cpu", progress=False)
    if bad == "df":
        df, _ = break_frame(
            d, df, ["empty_rows", "no_cols", "all_nan", "inf", "dup", "nonstr", "datetime", "not_frame"]
        )
    elif bad == "steps":
        kw["steps"] = pick(d, [0, -1, True, 2.5, None])
    elif bad == "batch_size":
        kw["batch_size"] = pick(d, [0, -1, True, 2.5, None])
    elif bad == "seed":
        kw["seed"] = pick(d, [-1, 2.5, "0", None, True])
    elif bad == "device":
        kw["device"] = pick(d, ["nodevice", 3, "cuda:7"])
    elif bad == "train_kwargs":
        kw.update(pick(d, [dict(epochs=3), dict(lr=NAN), dict(precision="fp64"), dict(progress="yes")]))
    model = TabularDiffusion(net_kwargs=TINY_NET)
    return Trial(
        lambda: model.fit(df, **kw),
        bad is None,
        lambda r: None if r is model and len(model.history["loss"]) == kw["steps"] else "not fitted",
        f"fit({bad}, {kw})",
    )


@case("recipes")
def case_tabular_sample(d):
    model = tabular_model()
    bad = which_bad(d, "n", "steps", "generator", "method", "grid", "batch_size", "device")
    n = d.draw(st.integers(1, 5)) if bad != "n" else pick(d, BAD_INTS)
    kw = dict(
        steps=d.draw(st.integers(1, 3)), generator=gen_arg(d, bad == "generator"), grid=pick(d, ["official", "uniform"])
    )
    kw["batch_size"] = pick(d, [2, 4096])
    if bad == "steps":
        kw["steps"] = pick(d, [0, -1, True, 2.5, None])
    elif bad == "method":
        kw[pick(d, ["numeric_method", "categorical_method"])] = pick(d, ["heun", "ancestral-x", 3])
    elif bad == "grid":
        kw["grid"] = pick(d, ["linear", None, 3])
    elif bad == "batch_size":
        kw["batch_size"] = pick(d, [0, -1, True, 2.5, None])
    elif bad == "device":
        kw["device"] = pick(d, ["nodevice", 3, "cuda:7"])
    return Trial(lambda: model.sample(n, **kw), bad is None, lambda r: check_table(r, n, model), f"sample({n!r}, {kw})")


@case("recipes")
def case_tabular_impute(d):
    model = tabular_model()
    bad = which_bad(d, "df", "steps", "batch_size", "allow_nan_category")
    base = penguins()
    df = base.iloc[d.draw(st.integers(0, 300)) :].head(d.draw(st.integers(1, 4))).copy()
    rng = np.random.default_rng(seed(d))
    for c in df.columns:
        df.loc[rng.random(len(df)) < 0.3, c] = np.nan
    if len(df.columns) > 2 and d.draw(st.booleans()):
        df = df.drop(columns=[pick(d, list(df.columns))])
    kw = dict(steps=d.draw(st.integers(1, 3)), generator=gen(seed(d)), batch_size=pick(d, [2, 4096]))
    if bad == "df":
        kind = pick(d, ["empty", "not_frame", "unknown", "unseen", "inf", "dup", "nonstr"])
        if kind in ("empty", "not_frame", "dup", "nonstr"):
            df, _ = break_frame(d, df, [{"empty": "empty_rows"}.get(kind, kind)])
        elif kind == "unknown":
            df = df.assign(wings=2)
        elif kind == "unseen" and "species" in df:
            df = df.assign(species="Emperor")
        else:
            num = next(c for c in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm") if c in df)
            df = df.assign(**{num: np.inf})
    elif bad == "steps":
        kw["steps"] = pick(d, [0, True, 2.5, None])
    elif bad == "batch_size":
        kw["batch_size"] = pick(d, [0, -1, True, 2.5, None])
    elif bad == "allow_nan_category":
        kw["allow_nan_category"] = pick(d, ["yes", None, 1])

    def check(r):
        problem = check_table(r, len(df), model)
        if problem:
            return problem
        for c in df.columns:
            obs = df[c].notna()
            if not same_cells(df[c][obs], r[c][obs]):
                return f"{c}: an observed cell changed"
        if not kw.get("allow_nan_category") and r[[c for c in r.columns]].isna().any().any():
            return "a NaN left after imputation"
        return None

    return Trial(lambda: model.impute(df, **kw), bad is None, check, f"impute({bad}, {df!r:.200}, {kw})")


@case("recipes")
def case_judge_recipes(d):
    import diffuse_edu.recipes.judges as rj

    what = pick(
        d, ["judge_config", "shape_judge", "shape_judge_accuracy", "digits_split", "frechet_to_digits", "floor"]
    )
    bad = which_bad(d, "a", "b", "c")
    if what in ("judge_config", "shape_judge"):
        level = d.draw(st.integers(1, 5)) if bad != "a" else pick(d, [0, 6, True, "3", None])
        size = pick(d, [16, 32]) if bad != "b" else pick(d, [8, 64, True, "16", None, 16.0])
        over = pick(d, [{}, {"steps": 10}, {"batch_size": 8, "lr": 0.01}])
        if bad == "c":
            over = pick(
                d,
                [{"epochs": 3}, {"steps": 0}, {"batch_size": -1}, {"lr": NAN}, {"width": 0}, {"seed": "0"},
                 {"steps": 2.5}, {"lr": "0.1"}, {"feat_dim": True}, {"first_convs": 0}],
            )  # fmt: skip
        if what == "shape_judge":  # a valid call trains a judge (tens of seconds): only refusals are tried here
            if bad is None:
                bad, level = "a", 0
            return Trial(lambda: rj.shape_judge(level, size, cache=CK_DIR / "judges", **over), False, lambda r: None)
        return Trial(
            lambda: rj.judge_config(level, size, **over),
            bad is None,
            lambda r: None if r["level"] == level and r["image_size"] == size else f"{r}",
            f"judge_config({level!r}, {size!r}, {over})",
        )
    if what == "shape_judge_accuracy":
        judge = tiny("judge")
        n, s = d.draw(st.integers(1, 3)), d.draw(st.integers(0, 3))
        if bad == "a":
            judge = pick(d, [None, tiny("digits"), ShapeAttributeClassifier((5, 2), ("a", "b"), 8, 1, 2)])
        elif bad == "b":
            n = pick(d, BAD_INTS)
        elif bad == "c":
            s = pick(d, [-1, 2.5, "0", None])
        return Trial(
            lambda: rj.shape_judge_accuracy(judge, n, s),
            bad is None,
            lambda r: None if set(r) == {"shape", "size"} and all(0 <= v <= 1 for v in r.values()) else f"{r}",
            f"shape_judge_accuracy({judge!r:.40}, {n!r}, {s!r})",
        )
    if what == "digits_split":
        bad = "a" if bad == "c" else bad
        split = pick(d, ["train", "test"]) if bad != "a" else pick(d, ["valid", None, 3])
        config = None if bad != "b" else pick(d, [{"split_seed": 0}, "config", {"split_seed": 0, "test_fraction": 2.0}])
        return Trial(
            lambda: rj.digits_split(split, config),
            bad is None,
            lambda r: check_tensor(r, (r.shape[0], 1, 8, 8), lo=-1, hi=1),
            f"digits_split({split!r}, {config!r})",
        )
    judge = tiny("digits")
    n = d.draw(st.integers(2, 5))
    if what == "frechet_to_digits":
        samples = images_arg(d, (n, 1, 8, 8), bad == "a")
        reference = pick(d, ["test", "train", images_arg(d, (3, 1, 8, 8), False)])
        if bad == "b":
            reference = pick(d, ["valid", None, torch.zeros(3, 1, 9, 9), 3])
        elif bad == "c":
            judge = pick(d, ["judge", tiny("judge"), 3])
        return Trial(
            lambda: rj.frechet_to_digits(samples, reference, judge),
            bad is None,
            lambda r: check_float(r, 0),
            f"frechet_to_digits({samples!r:.40}, {reference!r:.40}, {judge!r:.30})",
        )
    m, s = pick(d, [None, n]), d.draw(st.integers(0, 3))
    if bad == "a":
        m = pick(d, [1, 0, True, 2.5, "5", 10**6])
    elif bad == "b":
        s = pick(d, [-1, 2.5, "0", None])
    elif bad == "c":
        judge = pick(d, ["judge", 3])
    return Trial(
        lambda: rj.digits_frechet_floor(m, "test", s, judge),
        bad is None,
        lambda r: check_float(r, 0),
        f"floor({m!r}, {s!r})",
    )


# ---------------------------------------------------------------------------------------------------------------------
# pytest: one property test per entry point (heavy ones with a fifth of the examples); the script: the outcome table.
# ---------------------------------------------------------------------------------------------------------------------

_EXAMPLES = settings.default.max_examples  # the loaded profile's (40 by default, 1000 under --hypothesis-profile=long)
LIGHT = sorted(n for n, (_, _, heavy) in CASES.items() if not heavy)
HEAVY = sorted(n for n, (_, _, heavy) in CASES.items() if heavy)


def _property(name: str, data) -> None:
    trial = CASES[name][1](data)
    kind, detail = outcome(trial)
    assert kind in PASSING, f"{name}: {kind}: {detail}\n  call: {trial.what}\n  valid input: {trial.valid}"


@pytest.mark.parametrize("name", LIGHT)
@given(data=st.data())
def test_no_silent_wrong_results(name, data):
    """The property (part one's docstring) for one entry point."""
    _property(name, data)


@pytest.mark.parametrize("name", HEAVY)
@settings(max_examples=max(4, _EXAMPLES // 5))
@given(data=st.data())
def test_no_silent_wrong_results_heavy(name, data):
    """The same for the entry points that read files or train (a fifth of the examples)."""
    _property(name, data)


def _runner(name, examples, counts, samples):
    _, fn, heavy = CASES[name]

    @settings(max_examples=max(4, examples // 5) if heavy else examples, derandomize=True, **SETTINGS)
    @given(data=st.data())
    def run(data):
        trial = fn(data)
        kind, detail = outcome(trial)
        counts[name][kind] += 1
        if kind not in PASSING and len(samples[name]) < 40:
            samples[name].append(f"{kind}: {detail} | {trial.what[:200]}")

    return run


def outcome_table(examples: int, names=None):
    """Run every case ``examples`` times (heavy ones a fifth of that), derandomized; count outcomes per entry point."""
    counts: dict[str, collections.Counter] = {}
    samples: dict[str, list[str]] = collections.defaultdict(list)
    for name in names or sorted(CASES):
        counts[name] = collections.Counter()
        _runner(name, examples, counts, samples)()
    return counts, samples


def _main(argv) -> None:
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Outcome table of the fuzz suite, part two.")
    parser.add_argument("--examples", type=int, default=40, help="generated calls per entry point (heavy: a fifth)")
    parser.add_argument("--details", action="store_true", help="print the failing calls")
    parser.add_argument("--only", nargs="*", help="entry points to run")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    counts, samples = outcome_table(args.examples, args.only)
    total = harness.print_outcomes(counts, samples, CASES, details=args.details)
    print(f"\n{len(counts)} entry points, {sum(total.values())} calls, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    _main(sys.argv[1:])
