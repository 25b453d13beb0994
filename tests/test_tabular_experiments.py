"""Notebook 05's recipe (diffuse_edu.recipes.tabular_experiments) and bench_tabular.py, on small Adult subsamples."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from diffuse_edu.recipes import tabular_experiments as tx
from diffuse_edu.sampling import count_nfe

ROOT = Path(__file__).resolve().parents[1]
TINY_FIT = dict(steps=8, batch_size=64, lr=2e-3, warmup=2, ema_decay=0.9)


@pytest.fixture(scope="module")
def tables():
    try:
        return tx.load_tables(400, 200)
    except (RuntimeError, OSError) as err:  # pragma: no cover - registry unreachable
        pytest.skip(f"UCI Adult could not be fetched: {err}")


@pytest.fixture(scope="module")
def fitted(tables, tmp_path_factory):
    train, _ = tables
    mp = pytest.MonkeyPatch()
    mp.setenv("DIFFUSE_EDU_CACHE", str(tmp_path_factory.mktemp("cache")))
    g = tx.ours(train, fit=TINY_FIT, sample={"steps": 4}, device="cpu", progress=False)
    yield g
    mp.undo()


def test_settings_pick_and_copy(monkeypatch):
    monkeypatch.setenv("DIFFUSE_EDU_FAST", "1")
    assert tx.setting()["name"] == "fast"
    monkeypatch.setenv("DIFFUSE_EDU_FAST", "0")
    monkeypatch.delenv("CI", raising=False)
    assert tx.setting(device="cpu")["name"] == "cpu"
    assert tx.setting(device="cuda")["name"] == "gpu"
    cfg = tx.setting("cpu")
    cfg["fit"]["steps"] = -1  # a copy: the module's settings are untouched
    assert tx.SETTINGS["cpu"]["fit"]["steps"] > 0
    nb = tx.notebook_setting(tx.setting("cpu"))
    assert nb["model"] == tx.SETTINGS["cpu"]["model"] and nb["n"] == tx.SETTINGS["cpu"]["notebook"]["n"]
    with pytest.raises(ValueError, match="setting must be one of"):
        tx.setting("huge")


def test_ours_samples_the_schema(tables, fitted):
    train, _ = tables
    assert not fitted.cached and fitted.fit_seconds > 0
    a = fitted.sample(50, 3)
    assert list(a.columns) == list(train.columns) and a.dtypes.equals(train.dtypes) and len(a) == 50
    assert a.equals(fitted.sample(50, 3))  # seeded


def test_cache_round_trip(tables, tmp_path, monkeypatch):
    train, _ = tables
    monkeypatch.setenv("DIFFUSE_EDU_CACHE", str(tmp_path))
    m1, cached1 = tx.train_tabular(train, fit=TINY_FIT, device="cpu", progress=False)
    m2, cached2 = tx.train_tabular(train, fit=TINY_FIT, device="cpu", progress=False)
    assert (cached1, cached2) == (False, True)
    assert m2.history["seconds"] == m1.history["seconds"]  # the fit time measured when it was trained
    a, b = (m.sample(20, steps=3, generator=torch.Generator().manual_seed(0)) for m in (m1, m2))
    assert a.equals(b)
    _, cached3 = tx.train_tabular(train, fit={**TINY_FIT, "steps": 9}, device="cpu", progress=False)
    assert not cached3  # another setting trains afresh


def test_evaluate_and_compare(tables, fitted):
    train, test = tables
    copy = tx.Generator("real rows", 0.0, lambda n, s: train.sample(n, random_state=s).reset_index(drop=True))
    table = tx.compare([fitted, copy], train, test, n=150, seeds=2, xgb="one", log=None)
    assert list(table.index) == [fitted.name, "real rows"]
    for key in ("shape_error", "trend_error", "mle_auc", "alpha_precision", "beta_recall", "c2st", "dcr_share"):
        assert key in table and f"{key}_std" in table
    assert (table["seeds"] == 2).all() and (table["n"] == 150).all()
    # Rows copied from the training split sit at distance 0 from it. DCR balances train (400 rows) down to the
    # holdout's 200, so half the copies keep their original: a share near 75 %, far above the ideal 50 %.
    assert table.loc["real rows", "dcr_share"] > 65
    assert table.loc["real rows", "shape_error"] < table.loc[fitted.name, "shape_error"]
    shown = tx.summary_frame(table, tx.real_reference(train, test, xgb="one"))
    assert "real data (ceiling)" in shown.index and any("published" in i for i in shown.index)
    assert " ± " in shown.loc[fitted.name, "shape error %"]
    with pytest.raises(ValueError, match="unknown metrics"):
        tx.evaluate(train, train, test, metrics=("fid",))


def test_imputation_keeps_observed_cells(tables, fitted):
    train, test = tables
    cells = tx.impute_cells(fitted.model, train, test, rows=60, steps=3)
    assert cells["observed_unchanged"] and cells["cells"] > 0
    assert 0 <= cells["accuracy"] <= 1 and cells["nrmse"] > 0
    income = tx.impute_income(fitted.model, train, test, rows=60, draws=2, steps=3, xgb="one")
    assert set(income) >= {"auc", "accuracy", "xgb_auc", "xgb_accuracy"} and income["rows"] == 60


def test_steps_curve_counts_network_calls(tables, fitted):
    train, _ = tables
    curve = tx.steps_curve(fitted.model, train, steps=(2, 4), n=80, seeds=1, log=None)
    assert list(curve.index) == [2, 4]
    plan = fitted.model._plan(4, "official", "euler-maruyama", "tau-leaping")
    plan.pop("final")
    assert curve.loc[4, "nfe"] == count_nfe(fitted.model.joint, **plan)


def test_association_matrix():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 2000)
    df = pd.DataFrame(
        {
            "a": np.array(["x", "y", "z"], dtype=object)[a],
            "same": np.array(["p", "q", "r"], dtype=object)[a],  # a function of a: V = 1
            "noise": rng.normal(size=2000),  # independent: V near 0
        }
    )
    v = tx.association_matrix(df, {"a": "categorical", "same": "categorical", "noise": "numeric"})
    assert np.allclose(v.to_numpy(), v.to_numpy().T) and np.allclose(np.diag(v), 1.0)
    assert v.loc["a", "same"] == pytest.approx(1.0)
    assert v.loc["a", "noise"] < 0.1  # sampling noise alone: √(χ²_18 / (2000·2)) ≈ 0.07


def test_column_processes_one_row_per_model_column(tables, fitted):
    train, _ = tables
    t = tx.column_processes(train, fitted.model)
    assert list(t.index) == [c.name for c in fitted.model.encoder.columns]
    assert t.loc["age", "process"].startswith("Gaussian") and t.loc["income", "process"].startswith("masked")
    assert tx.column_processes(train).equals(t)


def test_published_anchors_say_whether_they_were_verified():
    for p in tx.PUBLISHED:
        assert p["model"] and p["source"] and p["verified"]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_tabular", ROOT / "benchmarks" / "bench_tabular.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_tabular"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_bench_without_cuda_writes_nothing(tmp_path, capsys):
    if torch.cuda.is_available():  # pragma: no cover
        pytest.skip("this machine has CUDA")
    bench = _bench()
    assert bench.main(device="cuda", out=str(tmp_path)) is None
    assert "no CUDA device" in capsys.readouterr().out and not list(tmp_path.iterdir())


def test_bench_matched_steps():
    bench = _bench()
    curve = pd.DataFrame(
        {"shape_error": [9.0, 2.0, 1.1, 1.0], "shape_error_std": [0.1] * 4, "trend_error": [20.0, 5.0, 3.1, 3.0],
         "trend_error_std": [0.2] * 4},
        index=[5, 10, 20, 1000],
    )  # fmt: skip
    assert bench.matched_steps(curve) == 20
