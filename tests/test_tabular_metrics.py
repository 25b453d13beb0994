"""Tabular metrics against values computed by hand on tiny frames, and their limiting cases."""

import numpy as np
import pandas as pd
import pytest

from diffuse_edu.metrics.tabular import (
    XGB_GRID_FAST,
    TableFeatures,
    alpha_precision_beta_recall,
    c2st,
    column_sdtypes,
    dcr_share,
    format_summary,
    imputation_scores,
    mle_auc,
    shape_trend_errors,
    summarize_seeds,
    target_imputation_scores,
)


def mixed(n=400, seed=0, shift=0.0):
    """A small mixed table whose label depends on its features (for MLE), drawn from one distribution."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    k = rng.integers(0, 3, n)
    colour = np.array(["red", "green", "blue"])[k]
    score = x + (k == 2) + rng.normal(0, 0.3, n)
    return pd.DataFrame(
        {
            "x": x,
            "n": rng.integers(0, 50, n).astype(np.int64),
            "colour": colour.astype(object),
            "label": np.where(score > 0.8, "yes", "no").astype(object),
        }
    )


# ----------------------------------------------------------------------------------------------------------------
# metadata and preprocessing
# ----------------------------------------------------------------------------------------------------------------


def test_column_kinds_from_dtypes_or_metadata():
    df = mixed(10)
    assert column_sdtypes(df) == {"x": "numerical", "n": "numerical", "colour": "categorical", "label": "categorical"}
    meta = {
        "columns": {"x": {"sdtype": "numerical"}, "n": {"sdtype": "categorical"}, "colour": {"sdtype": "categorical"}}
    }
    meta["columns"]["label"] = {"sdtype": "categorical"}
    assert column_sdtypes(df, meta)["n"] == "categorical"
    plain = {"x": "numeric", "n": "integer", "colour": "categorical", "label": "categorical"}
    assert column_sdtypes(df, plain)["n"] == "numerical"
    with pytest.raises(ValueError, match="columns without metadata \\['label'\\]"):
        column_sdtypes(df, {"x": "numeric", "n": "integer", "colour": "categorical"})
    with pytest.raises(ValueError, match="column 'x': unknown kind 'float'"):
        column_sdtypes(df, dict(plain, x="float"))


def test_table_features_by_hand():
    real = pd.DataFrame({"v": [2.0, 4.0, np.nan, 6.0], "c": ["b", "a", "b", np.nan]})
    f = TableFeatures(real, {"v": "numerical", "c": "categorical"})
    num, onehot = f.transform(pd.DataFrame({"v": [4.0, np.nan, 10.0], "c": ["a", np.nan, "zz"]}))
    # (v − 2) / (6 − 2), NaN → 0, then the missing flag; categories sorted as strings: a, b, nan
    np.testing.assert_array_equal(num, [[0.5, 0.0], [0.0, 1.0], [2.0, 0.0]])
    np.testing.assert_array_equal(onehot, [[1, 0, 0], [0, 0, 1], [0, 0, 0]])  # unseen "zz" → all zeros
    assert (f.n_numeric, f.n_categorical) == (2, 1)


# ----------------------------------------------------------------------------------------------------------------
# shapes and trends
# ----------------------------------------------------------------------------------------------------------------


def test_shape_error_by_hand():
    real = pd.DataFrame({"v": [1.0, 2.0, 3.0, 4.0], "c": ["a", "a", "b", "b"]})
    syn = pd.DataFrame({"v": [1.0, 2.0, 3.0, 10.0], "c": ["a", "a", "a", "b"]})
    r = shape_trend_errors(real, syn)
    # KS: the CDFs differ by 1/4 on [4, 10); TV: ½(|½ − ¾| + |½ − ¼|) = 1/4. Both scores are 3/4.
    assert r["shape_by_column"] == pytest.approx({"v": 0.75, "c": 0.75})
    assert r["shape_error"] == pytest.approx(25.0)


def test_trend_error_by_hand():
    real = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0, 3.0, 4.0]})
    syn = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [4.0, 3.0, 2.0, 1.0]})
    r = shape_trend_errors(real, syn)
    # same marginals, opposite correlation: shape error 0; CorrelationSimilarity = 1 − |1 − (−1)| / 2 = 0
    assert r["shape_error"] == pytest.approx(0.0)
    assert r["trend_by_pair"] == pytest.approx({"x|y": 0.0})
    assert r["trend_error"] == pytest.approx(100.0)


def test_identical_tables_have_no_shape_or_trend_error():
    df = mixed(300)
    r = shape_trend_errors(df, df.sample(frac=1.0, random_state=1))
    assert r["shape_error"] == pytest.approx(0.0, abs=1e-9)
    assert r["trend_error"] == pytest.approx(0.0, abs=1e-9)
    assert len(r["trend_by_pair"]) == 6  # every pair counts


# ----------------------------------------------------------------------------------------------------------------
# α-precision / β-recall
# ----------------------------------------------------------------------------------------------------------------


def test_alpha_beta_collapsed_generator_by_hand():
    real = pd.DataFrame({"v": [0.0, 1.0, 2.0, 3.0, 4.0]})
    syn = pd.DataFrame({"v": [2.0] * 5})  # every synthetic row at the real center
    r = alpha_precision_beta_recall(real, syn)
    alphas = np.linspace(0, 1, 30)
    # α: every synthetic row lies in every real ball, the curve is 1: 1 − Σ(1 − α)/Σα = 0
    assert r["alpha_precision"] == pytest.approx(0.0, abs=1e-9)
    # β: scaled real rows 0, .25, .5, .75, 1 are .5, .25, 0, .25, .5 from the synthetic point and .25 from their
    # nearest real neighbour: three of five rows are covered, at every β (the synthetic ball has radius 0)
    expect = 100 * (1 - np.abs(alphas - 0.6).sum() / alphas.sum())
    assert r["beta_recall"] == pytest.approx(expect)


def test_alpha_beta_near_perfect_for_a_copy():
    df = mixed(500, seed=2)
    r = alpha_precision_beta_recall(df, df.copy())
    # a copy: the curves are the empirical quantile curves of the real data itself (≈ the diagonal)
    assert r["alpha_precision"] > 95 and r["beta_recall"] > 95
    far = df.assign(x=df["x"] + 10.0)
    assert alpha_precision_beta_recall(df, far)["alpha_precision"] < 20
    # max_rows subsamples each frame on its own (seeded): a copy becomes two samples of one distribution
    assert alpha_precision_beta_recall(df, df.copy(), max_rows=500) == r
    sub = alpha_precision_beta_recall(df, df.copy(), max_rows=200, seed=1)
    assert sub == alpha_precision_beta_recall(df, df.copy(), max_rows=200, seed=1)
    assert 50 < sub["alpha_precision"] <= 100 and 30 < sub["beta_recall"] < r["beta_recall"]


# ----------------------------------------------------------------------------------------------------------------
# detection and DCR
# ----------------------------------------------------------------------------------------------------------------


def test_c2st_limits():
    real = mixed(300, seed=3)
    assert c2st(real, mixed(300, seed=4)) > 0.8  # same distribution: hard to tell apart
    assert c2st(real, mixed(300, seed=4, shift=4.0)) < 0.2  # shifted numbers: easy


def test_c2st_is_seeded_and_accepts_categories_only_the_synthetic_frame_has():
    real, syn = mixed(200, seed=3), mixed(200, seed=5)
    assert c2st(real, syn, seed=1) == c2st(real, syn, seed=1)  # sdmetrics' shuffled folds, seeded
    before = np.random.get_state()
    c2st(real, syn, seed=2)
    after = np.random.get_state()
    assert np.array_equal(before[1], after[1]) and before[2] == after[2]  # the global generator is left as it was
    # Matches sdmetrics' LogisticDetection when every category is known, under the same global seed.
    from sdmetrics.single_table import LogisticDetection

    np.random.seed(7)
    meta = {"columns": {c: {"sdtype": k} for c, k in column_sdtypes(real).items()}}
    assert c2st(real, syn, seed=7) == pytest.approx(LogisticDetection.compute(real, syn, meta))
    # A category only the synthetic frame holds: sdmetrics' encoder (fitted on real) would raise; we fit on both.
    odd = syn.copy()
    odd.loc[odd.index[:5], "colour"] = "violet"
    score = c2st(real, odd)
    assert 0.0 <= score <= 1.0


def test_dcr_by_hand():
    train = pd.DataFrame({"v": [0.0, 10.0]})
    holdout = pd.DataFrame({"v": [5.0, 20.0]})
    syn = pd.DataFrame({"v": [1.0, 6.0, 7.5, 19.0]})
    # 1 → train (1 vs 4); 6 → holdout (4 vs 1); 7.5 → tie (2.5 vs 2.5); 19 → holdout (9 vs 1)
    r = dcr_share(syn, train, holdout)
    assert r["dcr_share"] == pytest.approx(100 * (1 + 0.5) / 4)
    assert r["tie_share"] == pytest.approx(25.0)
    assert dcr_share(syn, train, holdout, ties="holdout")["dcr_share"] == pytest.approx(25.0)
    # categorical distances are exact integers: a mismatch costs 2 in L1 on one-hot features
    tr, ho = pd.DataFrame({"c": ["a", "b"]}), pd.DataFrame({"c": ["c", "d"]})
    r = dcr_share(pd.DataFrame({"c": ["a", "d", "e"]}), tr, ho)
    # a → train (0 vs 2); d → holdout (2 vs 0); e, a value neither set has → tie (2 vs 2)
    assert r["dcr_share"] == pytest.approx(100 * (1 + 0 + 0.5) / 3) and r["median_dcr_train"] == 2.0


def test_dcr_limits():
    train, holdout = mixed(600, seed=5), mixed(600, seed=6)
    assert dcr_share(train.copy(), train, holdout)["dcr_share"] == pytest.approx(100.0)  # memorised rows
    assert dcr_share(holdout.copy(), train, holdout)["dcr_share"] == pytest.approx(0.0)
    fresh = dcr_share(mixed(600, seed=7), train, holdout)["dcr_share"]
    assert 43 < fresh < 57  # a generator that does not copy: about 50 %
    # unequal sizes are balanced by subsampling the larger set
    r = dcr_share(mixed(300, seed=8), mixed(1200, seed=9), holdout)
    assert 40 < r["dcr_share"] < 60


# ----------------------------------------------------------------------------------------------------------------
# MLE
# ----------------------------------------------------------------------------------------------------------------


def test_mle_learns_a_signal_and_handles_degenerate_tables():
    train, test = mixed(600, seed=10), mixed(400, seed=11)
    r = mle_auc(train, test, target="label", grid=XGB_GRID_FAST, n_jobs=1)
    assert r["auc"] > 0.9 and 0.5 < r["accuracy"] <= 1.0
    assert set(r["best_params"]) == set(XGB_GRID_FAST)
    # rows without a label are left out, not read as negatives
    holes = train.assign(label=train["label"].where(np.arange(len(train)) % 5 != 0))
    assert mle_auc(holes, test, target="label", grid=XGB_GRID_FAST, n_jobs=1)["auc"] > 0.9
    # shuffled labels carry no signal
    noise = train.assign(label=np.random.default_rng(0).permutation(train["label"].to_numpy()))
    assert mle_auc(noise, test, target="label", grid=XGB_GRID_FAST, n_jobs=1)["auc"] < 0.65
    # one label only: a constant classifier
    const = mle_auc(train.assign(label="no"), test, target="label", grid=XGB_GRID_FAST)
    assert const["auc"] == 0.5 and const["accuracy"] == pytest.approx((test["label"] == "no").mean())
    with pytest.raises(ValueError, match="target column 'income' is not in the table"):
        mle_auc(train, test, grid=XGB_GRID_FAST)
    with pytest.raises(ValueError, match="positive='maybe' is not a label"):
        mle_auc(train, test, target="label", positive="maybe", grid=XGB_GRID_FAST)


# ----------------------------------------------------------------------------------------------------------------
# imputation
# ----------------------------------------------------------------------------------------------------------------


def test_imputation_scores_by_hand():
    truth = pd.DataFrame({"v": [1.0, 2.0, 3.0, np.nan], "c": ["a", "b", np.nan, "a"]})
    imputed = pd.DataFrame({"v": [1.0, 4.0, 0.0, 5.0], "c": ["a", "a", np.nan, "a"]})
    mask = np.array([[False, True], [True, True], [True, True], [True, False]])
    r = imputation_scores(imputed, truth, mask)
    # v: hidden rows 1, 2, 3; row 3's truth is NaN (skipped): errors 2 and −3 → RMSE √6.5; std of (1, 2, 3) = √(2/3)
    assert r["by_column"]["v"] == {"n": 2, "n_skipped": 1, "rmse": pytest.approx(np.sqrt(6.5))}
    assert r["nrmse"] == pytest.approx(np.sqrt(6.5) / np.sqrt(2 / 3))
    # c: hidden rows 0, 1, 2: a=a, a≠b, NaN=NaN → 2 of 3
    assert r["by_column"]["c"] == {"n": 3, "accuracy": pytest.approx(2 / 3)}
    assert r["accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="mask must be a bool array"):
        imputation_scores(imputed, truth, mask[:2])


def test_target_imputation_scores_by_hand():
    truth = [">50K", "<=50K", ">50K", "<=50K"]
    # probabilities: positive/negative pairs ordered correctly 3 times out of 4
    r = target_imputation_scores(np.array([0.9, 0.1, 0.4, 0.6]), truth, positive=">50K")
    assert r == {"auc": pytest.approx(0.75), "accuracy": pytest.approx(0.5)}
    # several imputation draws: the share of positive draws is the score
    draws = [[">50K", "<=50K", ">50K", ">50K"], [">50K", "<=50K", "<=50K", "<=50K"]]
    r = target_imputation_scores(draws, truth, positive=">50K")
    # scores 1, 0, .5, .5: pairs (1>0, 1>.5, .5>0, .5=.5 → ½) → 3.5 / 4; accuracy of score ≥ .5: 3 of 4
    assert r == {"auc": pytest.approx(0.875), "accuracy": pytest.approx(0.75)}
    one = target_imputation_scores(pd.Series(draws[0]), truth, positive=">50K")
    assert one["accuracy"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="covers 3 rows, truth 4"):
        target_imputation_scores(np.array([0.5, 0.5, 0.5]), truth, positive=">50K")


# ----------------------------------------------------------------------------------------------------------------
# repeats
# ----------------------------------------------------------------------------------------------------------------


def test_summarize_seeds_by_hand():
    runs = [{"shape": 1.0, "mle": {"auc": 0.90}, "note": "x"}, {"shape": 3.0, "mle": {"auc": 0.92}, "note": "y"}]
    s = summarize_seeds(runs)
    assert list(s.index) == ["shape", "mle/auc"]
    assert s.loc["shape", "mean"] == pytest.approx(2.0) and s.loc["shape", "std"] == pytest.approx(np.sqrt(2.0))
    assert s.loc["mle/auc", "mean"] == pytest.approx(0.91) and s.loc["mle/auc", "n"] == 2
    assert format_summary(s)["shape"] == "2.00 ± 1.41"
    assert np.isnan(summarize_seeds(runs[:1]).loc["shape", "std"])
    with pytest.raises(ValueError, match="results\\[1\\] has different metrics"):
        summarize_seeds([{"a": 1.0}, {"b": 1.0}])
    with pytest.raises(ValueError, match="non-empty list"):
        summarize_seeds([])


# ----------------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------------


def test_bad_frames_name_the_column():
    real = mixed(50)
    with pytest.raises(ValueError, match="synthetic must have the real table's columns: missing \\['colour'\\]"):
        shape_trend_errors(real, real.drop(columns=["colour"]))
    with pytest.raises(TypeError, match="column 'x' is numerical but synthetic has dtype object"):
        alpha_precision_beta_recall(real, real.assign(x=real["x"].astype(str)))
    with pytest.raises(ValueError, match="column 'x' of holdout holds infinite values"):
        dcr_share(real, real, real.assign(x=np.inf))
    with pytest.raises(ValueError, match="real is empty"):
        c2st(real.iloc[:0], real)
    with pytest.raises(TypeError, match="synthetic must be a pandas DataFrame"):
        shape_trend_errors(real, real.to_numpy())
    with pytest.raises(ValueError, match="column 'x' of synthetic holds NaN but the real frame has none"):
        dcr_share(real.assign(x=np.nan), real, real)
