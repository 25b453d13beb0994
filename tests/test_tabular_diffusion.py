"""TabularDiffusion: the DataFrame API (fit / sample / impute / save / load) on the penguins table, and its errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from diffuse_edu import TabularDiffusion
from diffuse_edu.checkpoint import load_checkpoint, save_checkpoint
from diffuse_edu.clocks import Decoupled, Grouped, Mixture, Unified
from diffuse_edu.data.tables import load_penguins
from diffuse_edu.data.tabular import TableEncoder
from diffuse_edu.nets.joint_mlp import JointMLP


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return load_penguins()


@pytest.fixture(scope="module")
def model(penguins) -> TabularDiffusion:
    return TabularDiffusion(preset="small").fit(penguins, steps=40, batch_size=128, progress=False, device="cpu")


def test_sample_returns_the_schema(model, penguins):
    out = model.sample(37, steps=6, generator=gen(0))
    assert list(out.columns) == list(penguins.columns) and len(out) == 37
    assert out.dtypes.to_dict() == penguins.dtypes.to_dict()
    for col in ("species", "island", "sex"):
        seen = set(penguins[col].dropna()) | {np.nan}
        assert set(out[col].dropna()) <= seen
    assert (out["year"].isin(penguins["year"].unique())).all()
    assert model.history["steps"] == 40 and len(model.history["loss"]) == 40
    assert 40_000 < model.num_params < 100_000  # ≈ 70 K like the official model
    again = model.sample(37, steps=6, generator=gen(0))
    assert out.equals(again)


def test_impute_fills_every_nan_and_keeps_every_observed_cell(model, penguins):
    rng = np.random.default_rng(0)
    holes = penguins.mask(rng.random(penguins.shape) < 0.3)  # a different pattern in every row
    holes.loc[holes.index[:3]] = np.nan  # rows with nothing observed at all
    filled = model.impute(holes, steps=6, generator=gen(1))
    assert list(filled.columns) == list(penguins.columns) and (filled.index == holes.index).all()
    assert not filled.isna().any().any()  # the NaN category is not drawn for a cell asked to be filled
    observed = holes.notna()
    for col in penguins.columns:
        a = filled.loc[observed[col], col].to_numpy(dtype=object)
        b = holes.loc[observed[col], col].to_numpy(dtype=object)
        assert all(x == y for x, y in zip(a, b, strict=True)), col  # bit-identical observed cells
    assert filled.dtypes.to_dict() == penguins.dtypes.to_dict()


def test_save_load_round_trip(model, tmp_path):
    model.save(tmp_path / "penguins")
    back = TabularDiffusion.load(tmp_path / "penguins")
    a = model.sample(20, steps=5, generator=gen(2))
    b = back.sample(20, steps=5, generator=gen(2))
    assert a.equals(b)
    assert back.settings == model.settings and back.history == model.history
    with pytest.raises(ValueError, match="not a TabularDiffusion"):
        save_checkpoint(tmp_path / "other", JointMLP(), {"format": "something else"})
        TabularDiffusion.load(tmp_path / "other")


def test_checkpoint_keeps_order_sensitive_configs(tmp_path):
    """A net whose config lists modalities in a non-sorted order must come back with the same outputs."""
    torch.manual_seed(0)
    net = JointMLP(continuous={"z": 2, "a": 3}, discrete={"y": (2, 4), "b": (1, 3)}, hidden=16, depth=1).eval()
    save_checkpoint(tmp_path / "mlp", net)
    back = load_checkpoint(tmp_path / "mlp").model.eval()
    xs = {
        "z": torch.randn(5, 2),
        "a": torch.randn(5, 3),
        "y": torch.randint(0, 5, (5, 2)),
        "b": torch.randint(0, 4, (5, 1)),
    }
    ts = {k: torch.rand(5) for k in xs}
    out, out2 = net(xs, ts), back(xs, ts)
    assert all(torch.equal(out[k], out2[k]) for k in out)


def test_clock_choices(penguins):
    m = TabularDiffusion(clock="per-type")
    m._build(TableEncoder().fit(penguins))
    assert isinstance(m.clock(), Grouped) and len(m.clock().groups) == 2
    for name, kind in (("shared", Grouped), ("per-column", Decoupled), ("mixed", Mixture)):
        m._clock = name
        assert isinstance(m.clock(), kind)


def test_mixture_clock_marginals():
    n, names = 100_000, ("a", "b", "c")
    ts = Mixture([Unified(), Decoupled()], [0.3, 0.7])(names, n, gen(3))
    shared = (ts["a"] == ts["b"]) & (ts["b"] == ts["c"])
    assert abs(shared.double().mean().item() - 0.3) < 5 * math.sqrt(0.21 / n)
    for v in ts.values():  # every marginal stays U[0, 1]
        assert abs(v.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    with pytest.raises(ValueError, match="summing to 1"):
        Mixture([Unified(), Decoupled()], [0.3, 0.3])
    with pytest.raises(TypeError, match="two or more Clock"):
        Mixture([Unified()])


def test_bad_input_names_the_column(model, penguins):
    with pytest.raises(ValueError, match="wingspan"):
        model.impute(penguins.assign(wingspan=1.0))
    with pytest.raises(ValueError, match="island.*unseen"):
        model.impute(penguins.assign(island="Atlantis"))
    with pytest.raises(ValueError, match="bill_depth_mm.*infinite"):
        model.impute(penguins.assign(bill_depth_mm=np.inf))
    with pytest.raises(TypeError, match="year"):
        model.impute(penguins.assign(year=penguins["year"].astype(str)))
    with pytest.raises(ValueError, match="empty"):
        model.impute(penguins.iloc[:0])
    with pytest.raises(ValueError, match="empty|no rows"):
        TabularDiffusion().fit(penguins.iloc[:0], steps=2)
    with pytest.raises(ValueError, match="body_mass_g"):
        TabularDiffusion().fit(penguins.assign(body_mass_g=np.nan), steps=2)
    with pytest.raises(RuntimeError, match="not fitted"):
        TabularDiffusion().sample(3)
    with pytest.raises(ValueError, match="clock must be one of"):
        TabularDiffusion(clock="hourly")
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        model.sample(0)
