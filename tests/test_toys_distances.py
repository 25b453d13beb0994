"""Toy mixtures (exact diffused density, score, posterior mean) and two-sample distances against their noise floor."""

import functools
import math

import pytest
import torch

from diffuse_edu.data.toys import GaussianMixture, grid_mixture, ring_mixture, spiral, two_moons
from diffuse_edu.gaussian import GaussianProcess
from diffuse_edu.metrics.distances import energy_distance, mmd_rbf, noise_floor, sliced_wasserstein
from diffuse_edu.schedules import ScheduleCosine, ScheduleVPLinear

F64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def full_mix():
    # Three components in 3D with full, diagonal-free covariances and unequal weights.
    a = torch.randn(3, 3, 3, generator=gen(0), dtype=F64)
    covs = a @ a.transpose(1, 2) * 0.2 + 0.05 * torch.eye(3, dtype=F64)
    means = torch.randn(3, 3, generator=gen(1), dtype=F64) * 2
    return GaussianMixture(means, covs=covs, weights=[0.5, 0.3, 0.2])


@pytest.mark.parametrize("sched", [ScheduleVPLinear(), ScheduleCosine()])
def test_score_matches_autograd_of_log_prob(full_mix, sched):
    x = torch.randn(40, 3, generator=gen(2), dtype=F64).requires_grad_(True)
    t = torch.linspace(0, 1, 40, dtype=F64)  # per-example times, both ends included
    (grad,) = torch.autograd.grad(full_mix.log_prob_t(x, t, sched).sum(), x)
    torch.testing.assert_close(full_mix.score(x.detach(), t, sched), grad, atol=1e-10, rtol=1e-8)


def test_log_prob_is_normalised_and_matches_diffused_mixture():
    mix, sched = ring_mixture(k=4, radius=1.0, std=0.3), ScheduleVPLinear()
    # Riemann sum over a 2D box holding all but ~1e-9 of the mass.
    ticks = torch.linspace(-7, 7, 351, dtype=F64)
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    pts = torch.stack([gx.flatten(), gy.flatten()], 1)
    for t in (0.0, 0.4):
        mass = mix.log_prob_t(pts, t, sched).exp().sum() * (ticks[1] - ticks[0]) ** 2
        assert abs(mass.item() - 1) < 1e-6
        torch.testing.assert_close(mix.at_time(t, sched).log_prob(pts), mix.log_prob_t(pts, t, sched))
    torch.testing.assert_close(mix.log_prob(pts[:10]), mix.log_prob_t(pts[:10], 0.0, sched))


@pytest.mark.parametrize("pred", ["eps", "x0", "v"])
def test_exact_model_is_consistent(full_mix, pred):
    sched = ScheduleVPLinear()
    proc = GaussianProcess(sched, prediction=pred)
    x = torch.randn(30, 3, generator=gen(3), dtype=F64)
    t = torch.rand(30, generator=gen(4), dtype=F64) * 0.98 + 0.01
    out = full_mix.exact_model(sched, pred)(x, t)
    a, s = sched.alpha(t)[:, None], sched.sigma(t)[:, None]
    score = full_mix.score(x, t, sched)
    # ε̂ = −σ · score, and Tweedie: α x̂0 = x + σ² score.
    torch.testing.assert_close(proc.to_eps(x, t, out), -s * score, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(a * proc.to_x0(x, t, out), x + s**2 * score, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(proc.to_x0(x, t, out), full_mix.posterior_mean(x, t, sched), atol=1e-9, rtol=1e-9)


def test_exact_model_where_alpha_is_zero(full_mix):
    # At α = 0 the posterior mean of x0 is the data mean and E[ε | x_t] = x_t.
    sched = ScheduleCosine()
    x, t = torch.randn(5, 3, generator=gen(5), dtype=F64), torch.ones(5, dtype=F64)
    torch.testing.assert_close(full_mix.exact_model(sched, "x0")(x, t), full_mix.mean.expand(5, 3))
    torch.testing.assert_close(full_mix.exact_model(sched, "eps")(x, t), x)


def test_posterior_component_and_sampling(full_mix):
    x, labels = full_mix.sample(20000, generator=gen(6), return_labels=True, dtype=F64)
    r = full_mix.posterior_component(x, 0.0, ScheduleVPLinear())
    torch.testing.assert_close(r.sum(1), torch.ones(20000, dtype=F64))
    # Label frequencies within 5 binomial standard errors of the weights; mean within 5 standard errors.
    freq = torch.bincount(labels, minlength=3).to(F64) / 20000
    assert ((freq - full_mix.weights).abs() <= 5 * (full_mix.weights * (1 - full_mix.weights) / 20000).sqrt()).all()
    se = (full_mix.covariance.diagonal() / 20000).sqrt()
    assert ((x.mean(0) - full_mix.mean).abs() <= 5 * se).all()
    # Responsibilities must agree with the true labels most of the time (components are well separated here).
    assert (r.argmax(1) == labels).to(F64).mean() > 0.9
    assert torch.equal(full_mix.sample(7, generator=gen(1)), full_mix.sample(7, generator=gen(1)))


def test_ready_made_toys():
    ring, grid = ring_mixture(k=8, radius=2.0, std=0.1), grid_mixture(side=3, spacing=1.5)
    assert ring.n_components == 8 and torch.allclose(ring.means.norm(dim=1), torch.full((8,), 2.0, dtype=F64))
    assert grid.n_components == 9 and torch.allclose(grid.mean, torch.zeros(2, dtype=F64), atol=1e-12)
    for fn in (two_moons, spiral):
        a, b = fn(500, generator=gen(0)), fn(500, generator=gen(0))
        assert a.shape == (500, 2) and torch.equal(a, b) and torch.isfinite(a).all()
        assert a.abs().max() < 4


def test_mixture_bad_input_raises():
    with pytest.raises(ValueError, match="means must have shape"):
        GaussianMixture(torch.zeros(3))
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture(torch.zeros(1, 2), covs=torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        ring_mixture().score(torch.zeros(4, 3), 0.5, ScheduleVPLinear())


@pytest.fixture(scope="module")
def two_moon_floor():
    sw = functools.partial(sliced_wasserstein, generator=gen(9))
    return {
        "sw": (sw, noise_floor(two_moons, sw, n=1000, repeats=6, generator=gen(10))),
        "mmd": (mmd_rbf, noise_floor(two_moons, mmd_rbf, n=1000, repeats=6, generator=gen(11))),
        "energy": (energy_distance, noise_floor(two_moons, energy_distance, n=1000, repeats=6, generator=gen(12))),
    }


@pytest.mark.parametrize("name", ["sw", "mmd", "energy"])
def test_distances_vs_noise_floor(two_moon_floor, name):
    metric, floor = two_moon_floor[name]
    x, y = two_moons(1000, generator=gen(20)), two_moons(1000, generator=gen(21))
    same = metric(x, y)
    shifted = metric(x, y + torch.tensor([0.5, 0.0]))
    assert same < floor.mean + 4 * floor.std + 1e-12, (same, floor)
    assert shifted > floor.mean + 10 * floor.std, (shifted, floor)
    assert floor.std > 0 and len(floor.values) == 6


def test_sliced_wasserstein_of_a_translation():
    # y = x + c: each projection is shifted by θ·c, so SW₂² = E_θ (θ·c)² = ‖c‖²/D for θ uniform on the sphere.
    x = torch.randn(300, 2, generator=gen(0), dtype=F64)
    c = torch.tensor([0.6, -0.8], dtype=F64)
    sw = sliced_wasserstein(x, x + c, n_projections=4000, generator=gen(1))
    assert sw == pytest.approx(1 / math.sqrt(2), rel=0.02)
    assert sliced_wasserstein(x, x.clone(), generator=gen(1)) == 0.0
    assert energy_distance(x, x + c) > 0


def test_distance_bad_input_raises():
    with pytest.raises(ValueError, match="same number of features"):
        sliced_wasserstein(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(TypeError, match="floating-point"):
        energy_distance(torch.zeros(5, 2, dtype=torch.long), torch.zeros(5, 2))
    ref = two_moons(50, generator=gen(0))
    fl = noise_floor(two_moons, energy_distance, n=40, repeats=3, generator=gen(1), reference=ref)
    assert len(fl.values) == 3 and all(math.isfinite(v) for v in fl.values)
    with pytest.raises(ValueError, match="repeats"):
        noise_floor(two_moons, energy_distance, n=10, repeats=1)
