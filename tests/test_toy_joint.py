"""The decoupled-clock recipe (notebook 03, bench_decoupled) end to end at toy sizes."""

import pytest
import torch

from diffuse_edu.clocks import AxisMixture, Decoupled, Unified
from diffuse_edu.recipes.toy_joint import (
    ablation,
    clock_name,
    evaluate_toy,
    guidance_sweep,
    make_toy,
    markdown_table,
    train_toy,
)


def test_oracle_scores_the_bayes_answers():
    toy = make_toy()
    mix, joint = toy
    oracle = mix.exact_joint_model(joint["point"], mask_id=joint["label"].mask_id)
    row = evaluate_toy(oracle, toy, n_classify=400, n_per_label=40, n_joint=200, steps=10)
    assert row["classify_acc"] == row["bayes_acc_same_points"]  # the oracle's argmax is the Bayes classifier
    assert 0 <= row["label_tv"] <= 1 and row["cond_sw"] > 0 and row["spread"] > 0
    again = evaluate_toy(oracle, toy, n_classify=400, n_per_label=40, n_joint=200, steps=10)
    assert again == row  # seeded: the same numbers twice
    part = evaluate_toy(oracle, toy, tasks=("joint",), n_joint=100, steps=4)
    assert part["classify_acc"] != part["classify_acc"] and part["label_tv"] == part["label_tv"]  # NaN where skipped
    with pytest.raises(ValueError, match="tasks must be among"):
        evaluate_toy(oracle, toy, tasks=("p2l",))


def test_ablation_at_equal_compute_and_the_table(tmp_path):
    ev = dict(n_classify=64, n_per_label=8, n_joint=64, steps=3)
    rows, models = ablation(
        steps=4, batch_size=16, progress=False, eval_kwargs=ev, include_oracle=False, cache_root=tmp_path
    )
    assert [r["model"] for r in rows] == ["decoupled", "unified", "axis-mixture", "two separate models"]
    assert all(r["examples"] == 4 * 16 for r in rows)  # equal compute
    sep = models["separate: label→point"]
    assert sep.clock.clean == ("label",) and sep.steps == 2 and not sep.loaded
    assert repr(models["axis-mixture"].clock) == repr(AxisMixture(prob=0.5))
    table = markdown_table(rows, [("model", "model", "s"), ("label_tv", "TV", ".3f")])
    assert table.splitlines()[-1] == "| two separate models | — |"  # separate models cannot sample the joint
    # the second run loads every model from the cache: same weights, same rows (training times included)
    rows2, models2 = ablation(
        steps=4, batch_size=16, progress=False, eval_kwargs=ev, include_oracle=False, cache_root=tmp_path
    )
    assert all(m.loaded for m in models2.values()) and repr(rows2) == repr(rows)  # repr: NaN == NaN
    with pytest.raises(ValueError, match="was trained for"):
        ablation(steps=6, batch_size=16, progress=False, eval_kwargs=ev, reuse={"decoupled": models["decoupled"]})


def test_train_toy_clocks_cache_and_sweep(tmp_path):
    assert [clock_name(c) for c in (Decoupled(), Unified(), AxisMixture(), Decoupled(clean=("label",)))] == [
        "decoupled",
        "unified",
        "axis-mixture",
        "label clean",
    ]
    kw = dict(steps=3, batch_size=8, progress=False, cache_root=tmp_path, net_kwargs=dict(hidden=16, depth=1))
    a = train_toy(Unified(), **kw)
    b = train_toy(Unified(), **kw)
    assert not a.loaded and b.loaded and b.losses == a.losses and b.seconds == a.seconds
    x = make_toy()[0].sample_dict(5, torch.Generator().manual_seed(0))
    ts = {"point": torch.full((5,), 0.5), "label": torch.full((5,), 0.5)}
    assert all(torch.equal(a.net(x, ts)[k], b.net(x, ts)[k]) for k in ("point", "label"))
    assert not train_toy(Decoupled(), **kw).loaded  # another clock, another cache entry
    assert not train_toy(Unified(), **kw, cache=False).loaded
    with pytest.raises(TypeError, match="Clock"):
        train_toy("unified", **kw)
    rows = guidance_sweep(a.net, make_toy(), omegas=(1.0, 2.0), sigmas=(1.0,), intervals=((0.2, 0.8),), n_per_label=4,
                          steps=5)  # fmt: skip
    assert [r["omega"] for r in rows] == [1.0, 2.0]
    assert rows[0]["nfe"] == 5 and rows[1]["nfe"] > 5  # guided steps cost a second call
