"""GaussianProcess: closed-form marginals, conversions, loss, the three reverse steps, robustness, bad input."""

import itertools

import pytest
import torch

from diffuse_edu.gaussian import (
    GaussianProcess,
    convert,
    eps_to_score,
    eps_to_x0,
    v_to_x0,
    x0_to_eps,
)
from diffuse_edu.schedules import ScheduleCosine, ScheduleSDScaledLinear, ScheduleVPLinear

F64 = torch.float64
KINDS = ("eps", "x0", "v")


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("sched", [ScheduleVPLinear(), ScheduleCosine(), ScheduleSDScaledLinear()])
def test_corrupt_marginals_match_closed_form(sched):
    # x_t | x0 ~ N(α x0, σ² I). With N draws the sample mean has standard error σ/√N and the sample variance
    # σ²√(2/(N-1)); we allow 5 standard errors (a false alarm has probability ~1e-6 per entry).
    n, x0_row = 20000, torch.tensor([1.5, -0.5, 0.0], dtype=F64)
    proc = GaussianProcess(sched)
    for t in (0.05, 0.3, 0.7, 1.0):
        x_t = proc.corrupt(x0_row.expand(n, 3).clone(), torch.full((n,), t, dtype=F64), generator=gen(1))
        a, s = sched.alpha(torch.tensor(t, dtype=F64)), sched.sigma(torch.tensor(t, dtype=F64))
        assert ((x_t.mean(0) - a * x0_row).abs() <= 5 * s / n**0.5 + 1e-12).all()
        assert ((x_t.var(0) - s**2).abs() <= 5 * s**2 * (2 / (n - 1)) ** 0.5).all()


def test_corrupt_per_example_times_and_noise():
    proc = GaussianProcess()
    x0 = torch.randn(6, 2, 2, generator=gen(0))
    t = torch.linspace(0, 1, 6)
    c = proc.corrupt_with_noise(x0, t, generator=gen(3))
    a = proc.schedule.alpha(t)[:, None, None]
    torch.testing.assert_close(c.x_t, a * x0 + (1 - a * a).sqrt() * c.eps)
    torch.testing.assert_close(c.x_t[0], x0[0])  # t = 0 is clean data


def test_seeded_corrupt_reproduces():
    proc, x0 = GaussianProcess(), torch.randn(5, 4, generator=gen(0))
    a = proc.corrupt(x0, torch.full((5,), 0.5), generator=gen(7))
    b = proc.corrupt(x0, torch.full((5,), 0.5), generator=gen(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, proc.corrupt(x0, torch.full((5,), 0.5), generator=gen(8)))


def _levels(n, lo=0.02, hi=0.98):
    alpha = torch.empty(n, 1, dtype=F64).uniform_(lo, hi, generator=gen(11))
    return alpha, (1 - alpha**2).sqrt()


@pytest.mark.parametrize("src, dst", list(itertools.permutations(KINDS + ("score",), 2)))
def test_conversions_invert_each_other(src, dst):
    a, s = _levels(64)
    x_t, value = torch.randn(64, 3, generator=gen(1), dtype=F64), torch.randn(64, 3, generator=gen(2), dtype=F64)
    there = convert(value, src, dst, x_t, a, s)
    torch.testing.assert_close(convert(there, dst, src, x_t, a, s), value, atol=1e-10, rtol=1e-10)


def test_conversions_agree_with_definitions():
    a, s = _levels(64)
    x0, eps = torch.randn(64, 3, generator=gen(1), dtype=F64), torch.randn(64, 3, generator=gen(2), dtype=F64)
    x_t, v = a * x0 + s * eps, a * eps - s * x0
    for src, val in zip(KINDS, (eps, x0, v), strict=False):
        for dst, want in zip(KINDS, (eps, x0, v), strict=False):
            torch.testing.assert_close(convert(val, src, dst, x_t, a, s), want, atol=1e-10, rtol=1e-10)


def test_score_of_gaussian_data():
    # Data N(m, c² I) → p_t = N(α m, (α²c² + σ²) I): score −(x − αm)/(α²c² + σ²),
    # and E[ε | x_t] = σ(x − αm)/(α²c² + σ²).
    a, s = _levels(32)
    m, c = 0.7, 1.3
    x = torch.randn(32, 2, generator=gen(4), dtype=F64)
    var = a**2 * c**2 + s**2
    eps_hat = s * (x - a * m) / var
    torch.testing.assert_close(eps_to_score(eps_hat, s), -(x - a * m) / var)
    torch.testing.assert_close(convert(-(x - a * m) / var, "score", "eps", x, a, s), eps_hat)


def test_robust_where_alpha_or_sigma_is_zero():
    # Cosine with alpha_end = 0 has α(1) = 0; every schedule has σ(0) = 0. Nothing may become NaN or infinite.
    x = torch.randn(4, 2, generator=gen(0))
    one, zero = torch.ones(4), torch.zeros(4)
    for pred in KINDS:
        proc = GaussianProcess(ScheduleCosine(alpha_end=0.0), prediction=pred, weighting="min-snr-5")
        for t in (one, zero):
            for to in KINDS + ("score",):
                assert torch.isfinite(proc.convert(x, x, t, to)).all()
            assert torch.isfinite(proc.loss(x, x, x, t)).all()
            assert torch.isfinite(proc.denoise(x, t, x)).all()
        for method in ("ddpm", "euler-maruyama", "ode-euler"):
            assert torch.isfinite(proc.step(x, one, torch.full((4,), 0.9), x, generator=gen(1), method=method)).all()
    # Exact where no division is needed: v → x0 at α = 0 is −v; at σ = 0 it is x_t.
    torch.testing.assert_close(v_to_x0(x, x, torch.zeros(1), torch.ones(1)), -x)
    # An exact ε at α = 0 (x_t = ε) gives x̂₀ = 0/floor = 0, not NaN.
    assert eps_to_x0(x, x, torch.zeros(1), torch.ones(1)).abs().max() == 0
    assert x0_to_eps(x, x, torch.ones(1), torch.zeros(1)).abs().max() == 0


@pytest.mark.parametrize("pred", KINDS)
def test_loss_zero_for_exact_target(pred):
    proc = GaussianProcess(prediction=pred)
    x0 = torch.randn(16, 3, 4, generator=gen(0), dtype=F64)
    t = torch.rand(16, generator=gen(1), dtype=F64) * 0.95 + 0.05
    c = proc.corrupt_with_noise(x0, t, generator=gen(2))
    a = proc.schedule.alpha(t)[:, None, None]
    s = proc.schedule.sigma(t)[:, None, None]
    exact = {"eps": c.eps, "x0": x0, "v": a * c.eps - s * x0}[pred]
    loss = proc.loss(exact, x0, c.x_t, t)
    assert loss.shape == (16,)
    assert loss.abs().max() < 1e-20
    assert (proc.loss(exact + 0.1, x0, c.x_t, t) - 0.01).abs().max() < 1e-12  # mean over non-batch dims


def test_weightings_are_consistent_across_parameterisations():
    # Min-SNR-γ and "snr" are defined on the x0 error: from the same wrong x̂0, the ε, x0 and v losses must agree, and
    # "snr" must equal the unweighted ε loss.
    x0 = torch.randn(32, 2, generator=gen(0), dtype=F64)
    t = torch.rand(32, generator=gen(1), dtype=F64) * 0.9 + 0.05
    x_t = GaussianProcess().corrupt(x0, t, generator=gen(2))
    x0_hat = x0 + 0.3 * torch.randn(32, 2, generator=gen(3), dtype=F64)
    for weighting in ("min-snr-5", "snr"):
        losses = []
        for pred in KINDS:
            p = GaussianProcess(prediction=pred, weighting=weighting)
            losses.append(p.loss(p.convert(x0_hat, x_t, t, to=pred, src="x0"), x0, x_t, t))
        torch.testing.assert_close(losses[0], losses[1])
        torch.testing.assert_close(losses[2], losses[1])
    p_eps = GaussianProcess(prediction="eps")
    torch.testing.assert_close(p_eps.loss(p_eps.convert(x0_hat, x_t, t, to="eps", src="x0"), x0, x_t, t), losses[1])
    p_min = GaussianProcess(prediction="x0", weighting="min-snr-5").loss_weight(t)
    a2 = GaussianProcess().schedule.alpha(t) ** 2
    torch.testing.assert_close(p_min, (a2 / (1 - a2)).clamp_max(5))
    p_call, p_plain = GaussianProcess(prediction="x0", weighting=lambda tt: 2 * tt), GaussianProcess(prediction="x0")
    torch.testing.assert_close(p_call.loss(x0_hat, x0, x_t, t), 2 * t * p_plain.loss(x0_hat, x0, x_t, t))


def test_ddpm_step_is_exact_gaussian_posterior():
    # q(x_s | x_t, x0) by Bayes from q(x_s | x0) = N(α_s x0, σ_s²) and q(x_t | x_s) = N(α_{t|s} x_s, σ²_{t|s}):
    # precision 1/σ_s² + α_{t|s}²/σ²_{t|s}, mean var·(α_s x0/σ_s² + α_{t|s} x_t/σ²_{t|s}). 5 standard errors again.
    n, t, s = 40000, 0.6, 0.35
    proc = GaussianProcess(prediction="x0")
    tt, ss = torch.full((n,), t, dtype=F64), torch.full((n,), s, dtype=F64)
    x0 = torch.full((n, 1), 0.8, dtype=F64)
    x_t = torch.full((n, 1), -0.4, dtype=F64)
    x_s = proc.step(x_t, tt, ss, x0, generator=gen(5), method="ddpm")
    a_t, a_s = proc.schedule.alpha(tt[0]), proc.schedule.alpha(ss[0])
    a_ts, var_s = a_t / a_s, 1 - a_s**2
    var_ts = 1 - a_t**2 - a_ts**2 * var_s
    var = 1 / (1 / var_s + a_ts**2 / var_ts)
    mean = var * (a_s * 0.8 / var_s + a_ts * -0.4 / var_ts)
    assert abs(x_s.mean() - mean) < 5 * (var / n) ** 0.5
    assert abs(x_s.var() - var) < 5 * var * (2 / (n - 1)) ** 0.5
    # The step into s = 0 is x̂0 itself.
    torch.testing.assert_close(proc.step(x_t[:3], tt[:3], torch.zeros(3, dtype=F64), x0[:3], method="ddpm"), x0[:3])


def test_euler_steps_for_standard_normal_data():
    # Data N(0, I) keeps p_t = N(0, I): E[ε | x_t] = σ x_t, the score is −x, the PF-ODE drift is 0, and the reverse
    # SDE drift is −½βx + βx = ½βx.
    proc = GaussianProcess()
    x = torch.randn(8, 2, generator=gen(0), dtype=F64)
    t, s = torch.full((8,), 0.5, dtype=F64), torch.full((8,), 0.45, dtype=F64)
    eps_hat = proc.schedule.sigma(t)[:, None] * x
    torch.testing.assert_close(proc.to_score(x, t, eps_hat), -x)
    torch.testing.assert_close(proc.step(x, t, s, eps_hat, method="ode-euler"), x)
    beta, h = proc.schedule.beta(t)[:, None], 0.05
    z = torch.randn(8, 2, generator=gen(9), dtype=F64)
    em = proc.step(x, t, s, eps_hat, generator=gen(9), method="euler-maruyama")
    torch.testing.assert_close(em, x - h * 0.5 * beta * x + (beta * h).sqrt() * z)


def test_prior_and_denoise():
    proc = GaussianProcess(prediction="x0", clip_x0=1.0)
    p = proc.prior((3, 5), generator=gen(0))
    assert p.shape == (3, 5) and torch.equal(p, proc.prior((3, 5), generator=gen(0)))
    assert proc.denoise(p, torch.full((3,), 0.5), 3 * p).abs().max() <= 1.0


def test_bad_input_raises_one_clear_error():
    proc = GaussianProcess()
    with pytest.raises(TypeError, match="floating-point"):
        proc.corrupt(torch.ones(4, 2, dtype=torch.long), torch.full((4,), 0.5))
    with pytest.raises(ValueError, match="NaN"):
        proc.corrupt(torch.tensor([[0.0, float("nan")]]), torch.full((1,), 0.5))
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        proc.corrupt(torch.zeros(4, 2), torch.full((3,), 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        proc.corrupt(torch.zeros(4, 2), torch.full((4,), 1.5))
    with pytest.raises(ValueError, match="same shape"):
        proc.loss(torch.zeros(4, 2), torch.zeros(4, 3), torch.zeros(4, 2), torch.full((4,), 0.5))
    with pytest.raises(ValueError, match="s <= t"):
        proc.step(torch.zeros(2, 2), torch.full((2,), 0.3), torch.full((2,), 0.5), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="prediction must be one of"):
        GaussianProcess(prediction="score")
    with pytest.raises(ValueError, match="weighting"):
        GaussianProcess(weighting="min-snr-x")
    with pytest.raises(ValueError, match="must be one of"):
        proc.step(torch.zeros(2, 2), torch.full((2,), 0.5), torch.full((2,), 0.3), torch.zeros(2, 2), method="heun")


def test_training_loss_matches_manual_computation():
    proc = GaussianProcess(prediction="v")
    net = lambda x, t: x * t[:, None]  # any deterministic "network"
    x0 = torch.randn(8, 2, generator=gen(0))
    got = proc.training_loss(net, x0, generator=gen(1))
    g = gen(1)
    u = torch.rand((1,), generator=g, dtype=torch.float64)
    t = (
        (u + torch.arange(8, dtype=torch.float64) / 8) % 1.0
    ).float()  # stratified times: one per stratum [i/8, (i+1)/8)
    assert sorted((t * 8).floor().long().tolist()) == list(range(8))
    c = proc.corrupt_with_noise(x0, t, generator=g)
    torch.testing.assert_close(got, proc.loss(net(c.x_t, t), x0, c.x_t, t).mean())
    torch.testing.assert_close(proc.loss_fn(gen(1))(net, x0), got)
