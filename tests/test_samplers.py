"""Samplers against the exact score of Gaussian mixtures: convergence in steps, Heun vs Euler, NFE, seeds, grids."""

import pytest
import torch

from diffuse_edu.data.toys import GaussianMixture, ring_mixture
from diffuse_edu.gaussian import GaussianProcess
from diffuse_edu.grids import edm_grid, make_grid, uniform_grid
from diffuse_edu.sampling import nfe_of, sample, sample_iter
from diffuse_edu.schedules import ScheduleCosine, ScheduleLogLinear, ScheduleSDScaledLinear, ScheduleVPLinear

F64 = torch.float64
METHODS = ("ddpm", "euler-maruyama", "ode-euler", "ode-heun")


def gen(seed):
    return torch.Generator().manual_seed(seed)


class Counting:
    """Wraps a model and counts its calls."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.model(x, t)


@pytest.fixture(scope="module")
def ring():
    mix, sched = ring_mixture(k=8, radius=2.0, std=0.2), ScheduleVPLinear()
    return mix, sched, GaussianProcess(sched), mix.exact_model(sched)


@pytest.fixture(scope="module")
def ode_reference(ring):
    # 100 Heun steps on the EDM grid from a fixed prior draw: the ODE's solution map to ~1e-3 accuracy.
    _, _, proc, model = ring
    x_init = proc.prior((500, 2), generator=gen(0)).to(F64)
    ref = sample(model, proc, (500, 2), steps=100, method="ode-heun", grid="edm", x_init=x_init).samples
    return x_init, ref


def _path_error(ring, ode_reference, method, steps, grid):
    _, _, proc, model = ring
    x_init, ref = ode_reference
    out = sample(model, proc, (500, 2), steps=steps, method=method, grid=grid, x_init=x_init).samples
    return (out - ref).pow(2).sum(1).mean().sqrt().item()


@pytest.mark.parametrize("grid", ["uniform", "edm"])
@pytest.mark.parametrize("method", ["ode-euler", "ode-heun"])
def test_ode_error_falls_with_steps(ring, ode_reference, method, grid):
    # The PF-ODE is deterministic, so from the same prior draw the RMS distance to a fine solution is a pure
    # discretisation error: no Monte-Carlo noise to hide a trend.
    errs = [_path_error(ring, ode_reference, method, n, grid) for n in (4, 8, 16, 32)]
    assert all(b < a for a, b in zip(errs, errs[1:], strict=False)), errs
    assert errs[-1] < errs[0] / 5, errs


def test_heun_beats_euler_at_equal_nfe(ring, ode_reference):
    # On the EDM grid (the grid Heun is designed for) at NFE 31 vs 32 and 63 vs 64.
    for heun_steps in (16, 32):
        heun = _path_error(ring, ode_reference, "ode-heun", heun_steps, "edm")
        euler = _path_error(ring, ode_reference, "ode-euler", 2 * heun_steps, "edm")
        assert heun < 0.7 * euler, (heun_steps, heun, euler)


@pytest.mark.parametrize("method", ["ddpm", "euler-maruyama"])
def test_stochastic_error_falls_with_steps(ring, method):
    # Low-variance statistic: Frobenius error of the sample covariance against the mixture's exact covariance.
    # With 3000 samples its Monte-Carlo spread (data vs data) is ~0.03, far below the 4-step error (> 0.5).
    mix, _, proc, model = ring
    errs = []
    for steps in (4, 16, 64):
        x = sample(model, proc, (3000, 2), steps=steps, method=method, generator=gen(0)).samples.to(F64)
        errs.append((torch.cov(x.T) - mix.covariance).norm().item())
    assert errs[0] > errs[1] > errs[2], errs
    assert errs[2] < 0.1 and errs[0] > 0.5, errs


def test_single_gaussian_reached_exactly_by_ode():
    # For a Gaussian target the PF-ODE (and its Heun discretisation, and the final denoise) is an affine map. Start
    # from points whose empirical mean and covariance are *exactly* those of p_1 (whitened, then coloured): the
    # output's empirical moments then equal the target's up to discretisation error alone.
    mu, cov = torch.tensor([[0.5, -1.0]], dtype=F64), torch.tensor([[[1.0, 0.6], [0.6, 0.5]]], dtype=F64)
    target, sched = GaussianMixture(mu, covs=cov), ScheduleSDScaledLinear()
    p1 = target.at_time(1.0, sched)
    z = torch.randn(500, 2, generator=gen(3), dtype=F64)
    z = (z - z.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(z.T))).T
    x_init = p1.means[0] + z @ torch.linalg.cholesky(p1.covs[0]).T
    proc = GaussianProcess(sched, prediction="v")
    out = sample(
        target.exact_model(sched, "v"), proc, (500, 2), steps=40, method="ode-heun", grid="edm", x_init=x_init
    ).samples
    torch.testing.assert_close(out.mean(0), mu[0], atol=2e-3, rtol=0)
    torch.testing.assert_close(torch.cov(out.T), cov[0], atol=2e-3, rtol=0)


@pytest.mark.parametrize("t_min", [0.0, 0.05])
@pytest.mark.parametrize("method", METHODS)
def test_nfe_counts(ring, method, t_min):
    _, _, proc, model = ring
    counter = Counting(model)
    res = sample(counter, proc, (8, 2), steps=5, method=method, t_min=t_min, generator=gen(0))
    assert counter.calls == res.nfe == nfe_of(method, 5, t_min)
    assert res.nfe == (5 if method != "ode-heun" else (9 if t_min == 0 else 10))


@pytest.mark.parametrize("method", METHODS)
def test_seeded_sampling_is_bit_exact(ring, method):
    _, _, proc, model = ring
    a = sample(model, proc, (64, 2), steps=6, method=method, generator=gen(4)).samples
    b = sample(model, proc, (64, 2), steps=6, method=method, generator=gen(4)).samples
    assert torch.equal(a, b)
    assert torch.isfinite(a).all()


def test_trajectory_and_iterator(ring):
    _, _, proc, model = ring
    res = sample(model, proc, (16, 2), steps=7, method="ddpm", generator=gen(2), return_trajectory=True)
    assert res.trajectory.shape == (8, 16, 2)
    assert torch.equal(res.trajectory[0], proc.prior((16, 2), generator=gen(2)))
    assert torch.equal(res.trajectory[-1], res.samples)
    states = list(sample_iter(model, proc, (16, 2), steps=7, method="ddpm", generator=gen(2)))
    assert len(states) == 7 and [s.step for s in states] == list(range(1, 8))
    torch.testing.assert_close(torch.tensor([s.t for s in states], dtype=F64), uniform_grid(7)[1:])
    assert torch.equal(states[-1].x, res.samples) and states[-1].nfe == 7
    assert states[0].x0_hat.shape == (16, 2)


def test_sampling_from_alpha_zero_stays_finite():
    # Cosine with alpha_end = 0: α(1) = 0 exactly. DDPM from t = 1 with an ε-model must not produce NaN.
    mix, sched = ring_mixture(), ScheduleCosine()
    for pred in ("eps", "x0", "v"):
        out = sample(
            mix.exact_model(sched, pred), GaussianProcess(sched, prediction=pred), (256, 2), steps=20, generator=gen(0)
        ).samples
        assert torch.isfinite(out).all()
        assert (torch.cov(out.T.to(F64)) - mix.covariance).norm() < 0.5


@pytest.mark.parametrize("grid_fn", [uniform_grid, edm_grid])
@pytest.mark.parametrize("t_max, t_min", [(1.0, 0.0), (0.9, 0.01)])
def test_grids_decrease_and_hit_endpoints(grid_fn, t_max, t_min):
    g = grid_fn(12, t_max=t_max, t_min=t_min)
    assert g.shape == (13,) and g.dtype == F64
    assert g[0].item() == t_max and g[-1].item() == t_min
    assert (g[1:] < g[:-1]).all()


@pytest.mark.parametrize("sched", [ScheduleVPLinear(), ScheduleSDScaledLinear(), ScheduleCosine(alpha_end=1e-3)])
def test_edm_grid_is_rho_spaced_in_noise_to_signal(sched):
    # ς = σ/α at the grid times must satisfy ς_i^{1/ρ} linear in i (Karras et al. 2022, eq. 5), from ς(t_max) to
    # nsr_min, followed by t = 0.
    rho, steps = 7.0, 10
    g = edm_grid(steps, rho=rho, schedule=sched, nsr_min=0.002)
    nsr = (sched.sigma(g[:-1]) / sched.alpha(g[:-1])) ** (1 / rho)
    want = torch.linspace(nsr[0].item(), 0.002 ** (1 / rho), steps, dtype=F64)
    torch.testing.assert_close(nsr, want, atol=1e-9, rtol=1e-9)
    assert g[-1] == 0
    # With t_min > 0 all steps + 1 points are ρ-spaced between ς(t_max) and ς(t_min).
    g2 = edm_grid(steps, rho=rho, schedule=sched, t_min=0.02)
    nsr2 = (sched.sigma(g2) / sched.alpha(g2)) ** (1 / rho)
    torch.testing.assert_close(nsr2[1:] - nsr2[:-1], (nsr2[1] - nsr2[0]).expand(steps), atol=1e-9, rtol=1e-7)


def test_bad_grid_and_args_raise(ring):
    _, _, proc, model = ring
    with pytest.raises(ValueError, match="strictly decreasing"):
        make_grid(torch.tensor([0.0, 0.5, 1.0]), 2)
    with pytest.raises(ValueError, match="infinite at t_max"):
        edm_grid(10, schedule=ScheduleLogLinear(eps=0.0))  # α(1) = 0 exactly
    with pytest.raises(ValueError, match="steps must be"):
        uniform_grid(0)
    with pytest.raises(ValueError, match="must be one of"):
        sample(model, proc, (4, 2), steps=3, method="rk4")
    g = torch.tensor([1.0, 0.5, 0.2, 0.0])
    assert sample(model, proc, (4, 2), grid=g, generator=gen(0)).nfe == 3
