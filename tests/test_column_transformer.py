"""The column-token transformer: one token per column, one clock per column, per-column heads."""

import json

import pytest
import torch

from diffuse_edu.nets.column_transformer import PRESETS, ColumnTransformer

# Adult as the encoder sees it: six numeric columns and nine categorical ones (NaN counted as a category).
ADULT_NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
ADULT_VOCAB = {
    "workclass": 9,
    "education": 16,
    "marital_status": 7,
    "occupation": 15,
    "relationship": 6,
    "race": 5,
    "sex": 2,
    "native_country": 42,
    "income": 2,
}


def batch(net, B=5, seed=0, t=None):
    g = torch.Generator().manual_seed(seed)
    xs = {n: torch.randn(B, 1, generator=g) for n in net.numeric}
    xs.update({n: torch.randint(0, v + 1, (B, 1), generator=g) for n, v in net.categorical.items()})
    ts = {n: (torch.rand(B, generator=g) if t is None else torch.full((B,), float(t))) for n in net.names}
    return xs, ts


def wake(net, seed=0):
    """Give the zero-initialised adaLN maps random weights, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "ada" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return net


def test_output_shapes_and_dtypes():
    torch.manual_seed(0)
    net = ColumnTransformer(["a", "b"], {"c": 3, "d": 5})
    xs, ts = batch(net, B=7)
    out = net(xs, ts)
    assert list(out) == ["a", "b", "c", "d"]
    assert out["a"].shape == (7, 1) and out["b"].shape == (7, 1)
    assert out["c"].shape == (7, 1, 3) and out["d"].shape == (7, 1, 5)
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in out.values())
    # one kind only, and a batch of one
    assert ColumnTransformer(["x"])(*batch(ColumnTransformer(["x"]), B=1))["x"].shape == (1, 1)
    only_cat = ColumnTransformer(categorical={"y": 4})
    assert only_cat(*batch(only_cat, B=3))["y"].shape == (3, 1, 4)


def test_default_size_matches_the_official_model():
    net = ColumnTransformer(ADULT_NUMERIC, ADULT_VOCAB)
    # TabularDiT for Adult (width 24, depth 4, 4 heads) has about 70 K parameters.
    assert 60_000 < net.num_params() < 80_000
    sizes = [ColumnTransformer.from_preset(p, ADULT_NUMERIC, ADULT_VOCAB).num_params() for p in PRESETS]
    assert sizes == sorted(sizes) and sizes[-1] > 2_000_000
    assert ColumnTransformer.from_preset("small", ADULT_NUMERIC, ADULT_VOCAB).num_params() == net.num_params()
    with pytest.raises(ValueError, match="preset must be one of"):
        ColumnTransformer.from_preset("huge", ["a"])


def test_config_round_trip_through_json():
    torch.manual_seed(1)
    net = ColumnTransformer(["a"], {"c": 3}, width=16, depth=2, heads=2)
    cfg = json.loads(json.dumps(net.config()))
    net2 = ColumnTransformer.from_config(cfg)
    net2.load_state_dict(net.state_dict())
    xs, ts = batch(net)
    for k, v in net(xs, ts).items():
        assert torch.equal(v, net2(xs, ts)[k])


def test_blocks_start_as_the_identity():
    # adaLN-Zero: at initialisation every block is the identity, so no token sees another and no clock matters yet.
    torch.manual_seed(2)
    net = ColumnTransformer(["a", "b"], {"c": 3})
    xs, ts = batch(net, seed=3)
    out = net(xs, ts)
    xs2 = dict(xs, b=xs["b"] + 1.0, c=(xs["c"] + 1) % 4)
    ts2 = {n: torch.rand(5) for n in net.names}
    assert torch.equal(net(xs2, ts2)["a"], out["a"])


def test_columns_interact_and_each_has_its_own_clock():
    torch.manual_seed(3)
    net = wake(ColumnTransformer(["a", "b"], {"c": 3}))
    xs, ts = batch(net, seed=4)
    out = net(xs, ts)
    # another column's value reaches column a through attention
    assert not torch.allclose(net(dict(xs, b=xs["b"] + 1.0), ts)["a"], out["a"])
    # column a's own clock modulates its own token ...
    assert not torch.allclose(net(xs, dict(ts, a=1 - ts["a"]))["a"], out["a"])
    # ... and a column sharing a time with the others is not the same as another column: per-column time offsets
    with torch.no_grad():
        net.col_time.normal_()
    xs, ts = batch(net, seed=5, t=0.5)
    out = net(xs, ts)
    assert not torch.allclose(net(xs, dict(ts, c=torch.full((5,), 0.9)))["c"], out["c"])


def test_mask_id_is_accepted_and_rows_are_independent():
    torch.manual_seed(4)
    net = wake(ColumnTransformer(["a"], {"c": 3}))
    xs, ts = batch(net, B=6)
    xs["c"][:] = 3  # every category masked (id V_c = 3)
    out = net(xs, ts)
    # the batch rows do not talk to each other: row 0 alone gives the same answer
    one = net({k: v[:1] for k, v in xs.items()}, {k: v[:1] for k, v in ts.items()})
    for k in out:
        torch.testing.assert_close(one[k], out[k][:1])


def test_gradients_reach_every_parameter():
    torch.manual_seed(5)
    net = wake(ColumnTransformer(["a", "b"], {"c": 3, "d": 2}, width=8, depth=2, heads=2))
    out = net(*batch(net, B=4))
    loss = sum(v.float().square().mean() for v in out.values())
    loss.backward()
    dead = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not dead
    assert all(p.grad.abs().sum() > 0 for n, p in net.named_parameters() if n != "cat_emb.weight")


def test_bf16_autocast():
    torch.manual_seed(6)
    net = wake(ColumnTransformer(ADULT_NUMERIC, ADULT_VOCAB))
    xs, ts = batch(net, B=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(xs, ts)
        loss = sum(v.float().square().mean() for v in out.values())
    loss.backward()
    assert out["age"].shape == (8, 1) and out["native_country"].shape == (8, 1, 42)
    assert all(torch.isfinite(v.float()).all() for v in out.values())
    ref = net(xs, ts)
    assert all(torch.allclose(out[k].float(), ref[k], atol=0.2, rtol=0.1) for k in out)


def test_bad_inputs_name_the_column():
    net = ColumnTransformer(["a"], {"c": 3})
    xs, ts = batch(net, B=4)
    with pytest.raises(ValueError, match="exactly the columns \\['a', 'c'\\]"):
        net({"a": xs["a"]}, ts)
    with pytest.raises(ValueError, match="exactly the columns"):
        net(xs, dict(ts, z=ts["a"]))
    with pytest.raises(ValueError, match="xs\\['a'\\] must have shape \\(4, 1\\)"):
        net(dict(xs, a=xs["a"][:, 0]), ts)
    with pytest.raises(ValueError, match="xs\\['c'\\] must have shape \\(4, 1\\)"):
        net(dict(xs, c=xs["c"][:3]), ts)
    with pytest.raises(ValueError, match="ts\\['c'\\] must have shape \\(4,\\)"):
        net(xs, dict(ts, c=ts["c"][:, None]))
    with pytest.raises(TypeError, match="xs\\['c'\\] is a categorical column: expected integer ids"):
        net(dict(xs, c=xs["c"].float()), ts)
    with pytest.raises(TypeError, match="xs\\['a'\\] is a numeric column: expected a floating-point"):
        net(dict(xs, a=xs["a"].long()), ts)
    with pytest.raises(ValueError, match="xs\\['c'\\] holds ids in \\[0, 4\\]; expected \\[0, 3\\]"):
        net(dict(xs, c=torch.tensor([[0], [1], [3], [4]])), ts)
    with pytest.raises(ValueError, match="xs\\['c'\\] holds ids in \\[-1, 0\\]"):
        net(dict(xs, c=torch.tensor([[0], [-1], [0], [0]])), ts)
    with pytest.raises(ValueError, match="xs\\['a'\\] holds NaN"):
        net(dict(xs, a=torch.full((4, 1), float("nan"))), ts)
    with pytest.raises(ValueError, match="ts\\['a'\\] must lie in \\[0, 1\\]"):
        net(xs, dict(ts, a=torch.full((4,), 1.5)))
    with pytest.raises(TypeError, match="ts\\['a'\\] must be a floating-point tensor"):
        net(xs, dict(ts, a=torch.zeros(4, dtype=torch.long)))
    with pytest.raises(TypeError, match="must be tensors"):
        net(dict(xs, a=[[0.0]] * 4), ts)
    with pytest.raises(ValueError, match="xs\\['a'\\] is on meta .* but the network is on cpu"):
        net(dict(xs, a=xs["a"].to("meta")), ts)


def test_no_value_checks_off_the_cpu():
    # On the meta device (no values, like a GPU tensor seen from the host) the door checks only structure, and the
    # forward runs without reading a single value: no host-device synchronisation on a GPU.
    net = ColumnTransformer(["a"], {"c": 3}, width=8, depth=1, heads=2).to("meta")
    xs = {"a": torch.empty(4, 1, device="meta"), "c": torch.empty(4, 1, dtype=torch.long, device="meta")}
    ts = {n: torch.empty(4, device="meta") for n in net.names}
    out = net(xs, ts)
    assert out["a"].shape == (4, 1) and out["c"].shape == (4, 1, 3) and out["c"].device.type == "meta"


def test_constructor_errors():
    with pytest.raises(ValueError, match="at least one column"):
        ColumnTransformer()
    with pytest.raises(ValueError, match="repeated: \\['a'\\]"):
        ColumnTransformer(["a"], {"a": 3})
    with pytest.raises(ValueError, match="categorical\\['c'\\] must be a positive int"):
        ColumnTransformer(["a"], {"c": 0})
    with pytest.raises(ValueError, match="width=30 must be divisible by heads=4"):
        ColumnTransformer(["a"], width=30)
    with pytest.raises(TypeError, match="not one string"):
        ColumnTransformer("age")
