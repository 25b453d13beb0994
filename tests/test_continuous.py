"""The continuous recipe (notebook 01, bench_continuous) at toy sizes."""

import pytest
import torch

from diffuse_edu.data.toys import ring_mixture
from diffuse_edu.gaussian import GaussianProcess
from diffuse_edu.recipes.continuous import (
    SAMPLERS,
    default_mixture,
    excess_error,
    quality_vs_nfe,
    score_at,
    steps_for_nfe,
    train_digits_model,
    train_mixture_model,
)


def test_mixture_model_trains_caches_and_reloads(tmp_path):
    kw = dict(hidden=16, depth=1, steps=4, batch_size=32, progress=False, cache_root=tmp_path, device="cpu")
    first = train_mixture_model(**kw)
    again = train_mixture_model(**kw)
    assert not first.loaded and again.loaded and len(first.losses) == 4
    assert again.losses == first.losses and again.seconds == first.seconds and again.n_params == first.n_params
    x, t = torch.randn(5, 2), torch.full((5,), 0.3)
    assert torch.equal(first.net(x, t), again.net(x, t))  # the EMA weights came back exactly
    assert first.process.prediction == "v"
    other = train_mixture_model(mixture=ring_mixture(k=4), **kw)  # another data set, another cache entry
    assert not other.loaded
    eps = train_mixture_model(process=GaussianProcess(prediction="eps"), **kw)  # another process, another entry
    assert not eps.loaded and eps.process.prediction == "eps"
    # without the cache the same seed gives the same model
    plain = train_mixture_model(**{**kw, "cache": False})
    assert torch.equal(plain.net(x, t), first.net(x, t))


def test_digits_model_trains(tmp_path):
    run = train_digits_model(base=8, steps=2, batch_size=8, progress=False, cache_root=tmp_path, device="cpu")
    assert run.process.clip_x0 == 1.0 and len(run.losses) == 2
    out = run.net(torch.zeros(3, 1, 8, 8), torch.full((3,), 0.5))
    assert out.shape == (3, 1, 8, 8)


def test_exact_model_has_no_excess_error_and_scores_agree():
    mix, proc = default_mixture(), GaussianProcess(prediction="v")
    exact = mix.exact_model(proc.schedule, "v")
    rows = excess_error(exact, proc, mix, times=(0.1, 0.9), n=500)
    assert [r["t"] for r in rows] == [0.1, 0.9]
    assert all(r["excess E‖ε̂_net − ε̂_exact‖²"] < 1e-10 and r["irreducible E‖ε − ε̂_exact‖²"] > 0 for r in rows)
    pts = torch.randn(7, 2)
    want = mix.score(pts, torch.full((7,), 0.2), proc.schedule).float()
    assert torch.allclose(score_at(exact, proc, 0.2)(pts), want, atol=1e-4)


def test_quality_vs_nfe_rows_and_budgets():
    assert [steps_for_nfe(m, 10) for m, _ in SAMPLERS] == [10, 10, 10, 5]
    mix, proc = default_mixture(), GaussianProcess(prediction="v")
    exact = mix.exact_model(proc.schedule, "v")
    ref = mix.sample(200, generator=torch.Generator().manual_seed(0))
    metrics = {"mean gap": lambda x: (x.mean(0) - ref.mean(0)).norm().item()}
    out = quality_vs_nfe({"exact": exact}, proc, (200, 2), metrics, nfes=(3, 6))
    assert [(r["sampler"], r["NFE"]) for r in out.rows] == [
        ("ddpm", 3), ("ddpm", 6), ("euler-maruyama", 3), ("euler-maruyama", 6),
        ("ode-euler", 3), ("ode-euler", 6), ("ode-heun", 3), ("ode-heun", 5),
    ]  # fmt: skip
    assert all("mean gap exact" in r for r in out.rows) and out.samples[("ddpm", 6, "exact")].shape == (200, 2)
    again = quality_vs_nfe({"exact": exact}, proc, (200, 2), metrics, samplers=SAMPLERS[:1], nfes=(6,))
    assert torch.equal(again.samples[("ddpm", 6, "exact")], out.samples[("ddpm", 6, "exact")])  # seeded
    assert again.rows[0]["mean gap exact"] == pytest.approx(out.rows[1]["mean gap exact"])
