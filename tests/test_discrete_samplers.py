"""Masked and uniform samplers: reveal schedules, the tau-leaping artefact, exactness with an oracle, the cache.

Distribution tests. With N i.i.d. samples over K outcomes, E[TV(empirical, law)] ≤ ½ Σ_x √(p_x(1−p_x)/N)
≤ ½ √((K−1)/N) (Jensen, then Cauchy–Schwarz), and TV moves by at most 1/N when one sample changes, so McDiarmid gives
P(TV ≥ E[TV] + ε) ≤ exp(−2Nε²). With K = 27, N = 20 000 and ε for probability 1e-6 the statistical bound is
0.018 + 0.019 = 0.037. The sampler's own error (its exact law vs p) is computed exactly by propagating the chain
over all 64 noisy states (:func:`masked_sampler_law`) and bounded by the probability of revealing two tokens in one
step (:func:`simultaneous_reveal_probability`), the only error an exact per-token denoiser leaves.
"""

import math

import pytest
import torch
from fixtures.tiny_discrete import (
    MaskedOracle,
    UniformOracle,
    make_tiny_distribution,
    masked_sampler_law,
    total_variation,
    uniform_sampler_law,
)

from diffuse_edu.grids import make_grid
from diffuse_edu.masked import MaskedProcess
from diffuse_edu.sampling import reveal_schedule, sample_masked, sample_uniform, simultaneous_reveal_probability
from diffuse_edu.schedules import ScheduleCosine, ScheduleLogLinear
from diffuse_edu.uniform import UniformProcess

N_SAMPLES = 20_000
K = 27


def stat_bound(n: int = N_SAMPLES, k: int = K, fail: float = 1e-6) -> float:
    """E[TV] bound plus the McDiarmid deviation at failure probability ``fail`` (module docstring)."""
    return 0.5 * math.sqrt((k - 1) / n) + math.sqrt(math.log(1 / fail) / (2 * n))


@pytest.fixture(scope="module")
def tiny():
    return make_tiny_distribution(length=3, vocab_size=3, seed=0)


def _zero_model(V):
    return lambda x, t: torch.zeros(*x.shape, V)


# ---- schedules of reveal probabilities -----------------------------------------------------------------------------


def test_reveal_schedules():
    proc = MaskedProcess(5, ScheduleCosine())
    grid = make_grid("uniform", 20)
    anc, eul, tau = (reveal_schedule(proc, grid, m) for m in ["ancestral", "euler", "tau-leaping"])
    assert anc[-1] == eul[-1] == tau[-1] == 1.0
    a = proc.schedule.alpha(grid)
    # exact ancestral: the survival probabilities telescope to (1 − α(t_k)) / (1 − α(1))
    torch.testing.assert_close(torch.cumprod(1 - anc[:-1], 0), (1 - a[1:-1]) / (1 - a[0]))
    lam = proc.unmask_rate(grid[:-1]) * (grid[:-1] - grid[1:])
    torch.testing.assert_close(eul[:-1], lam[:-1].clamp_max(1))
    torch.testing.assert_close(tau[:-1], (lam * torch.exp(-lam))[:-1])
    # log-linear: α is linear in t, so Euler's rate·Δt is exactly the ancestral probability Δt/t
    ll = MaskedProcess(5)
    torch.testing.assert_close(reveal_schedule(ll, grid, "euler"), reveal_schedule(ll, grid, "ancestral"))
    g = make_grid("official", 50)
    assert g.shape == (51,) and g[0] == 1 and g[-2] == pytest.approx(1e-5) and g[-1] == 0


def test_tau_leaping_leaves_about_2_7_percent_masked_at_50_steps():
    """The official code's artefact: a move with two or more Poisson jumps is rejected, so at 50 steps (log-linear,
    official grid) Π_k (1 − λ_k e^{−λ_k}) ≈ 2.7% of tokens are still masked when the final denoise comes."""
    proc = MaskedProcess(2)
    r = reveal_schedule(proc, make_grid("official", 50), "tau-leaping")
    expected = torch.prod(1 - r[:-1]).item()
    assert expected == pytest.approx(0.0273, abs=5e-4)
    shape = (500, 100)
    res = sample_masked(
        _zero_model(2), proc, shape, 50, method="tau-leaping", generator=torch.Generator().manual_seed(0)
    )
    n = shape[0] * shape[1]  # tokens reveal independently of each other: binomial s.e. ≈ 0.0007
    assert abs(res.still_masked_before_final - expected) <= 5 * math.sqrt(expected * (1 - expected) / n)
    assert (res.samples < 2).all()
    # exact ancestral on the same grid leaves only the α-mass below t_min = 1e-5
    anc = sample_masked(_zero_model(2), proc, shape, 50, generator=torch.Generator().manual_seed(0))
    assert anc.still_masked_before_final < 1e-3


# ---- exactness with the oracle -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,schedule",
    [("ancestral", ScheduleLogLinear()), ("euler", ScheduleCosine()), ("tau-leaping", ScheduleLogLinear())],
)
def test_masked_samplers_reproduce_the_distribution(tiny, method, schedule):
    proc = MaskedProcess(3, schedule)
    oracle = MaskedOracle(tiny)
    steps = 100
    r = reveal_schedule(proc, make_grid("official", steps), method)
    law = masked_sampler_law(oracle, r)
    bias_bound = simultaneous_reveal_probability(r, 3)
    # the sampler's exact law is within the simultaneous-reveal bound of p (≈ 0.03 here; actual ≈ 0.005)
    assert total_variation(law, tiny.probs) <= bias_bound
    res = sample_masked(
        oracle, proc, (N_SAMPLES, 3), steps, method=method, cache=False, generator=torch.Generator().manual_seed(1)
    )
    emp = tiny.empirical(res.samples)
    assert total_variation(emp, law) <= stat_bound()
    assert total_variation(emp, tiny.probs) <= stat_bound() + bias_bound
    # the test has power: the product of marginals is 0.39 away
    assert total_variation(emp, tiny.factorised().probs) > 3 * (stat_bound() + bias_bound)
    assert res.nfe == steps


def test_uniform_sampler_reproduces_its_exact_law_which_converges_to_p(tiny):
    proc = UniformProcess(3)
    oracle = UniformOracle(tiny, proc)
    tvs = [
        total_variation(uniform_sampler_law(oracle, torch.linspace(1, 0, T + 1, dtype=torch.float64)), tiny.probs)
        for T in (4, 16, 32)
    ]
    # discretisation error of the factorised reverse kernel shrinks ~1/T (0.166, 0.043, 0.021)
    assert tvs[0] > tvs[1] > tvs[2]
    assert tvs[2] < 0.03
    steps = 32
    law = uniform_sampler_law(oracle, torch.linspace(1, 0, steps + 1, dtype=torch.float64))
    res = sample_uniform(oracle, proc, (N_SAMPLES, 3), steps, generator=torch.Generator().manual_seed(2))
    emp = tiny.empirical(res.samples)
    assert total_variation(emp, law) <= stat_bound()
    assert total_variation(emp, tiny.probs) <= stat_bound() + tvs[2]
    assert res.nfe == steps == oracle.calls


# ---- invariants, cache, float64 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ancestral", "euler", "tau-leaping"])
def test_never_emit_mask_never_change_unmasked(method):
    proc = MaskedProcess(4, ScheduleCosine())
    g = torch.Generator().manual_seed(3)
    model = lambda x, t: torch.randn(*x.shape, 4, generator=g)  # noqa: E731 - any logits will do
    res = sample_masked(
        model, proc, (64, 12), 30, method=method, return_trajectory=True, generator=torch.Generator().manual_seed(4)
    )
    traj = res.trajectory
    assert len(traj) == 31 and (traj[0] == proc.mask_id).all()
    for before, after in zip(traj[:-1], traj[1:], strict=False):
        unmasked = before != proc.mask_id
        assert torch.equal(after[unmasked], before[unmasked])
        assert ((after == proc.mask_id) <= (before == proc.mask_id)).all()  # no new masks
    assert (res.samples < 4).all() and torch.equal(res.samples, traj[-1])


def test_cache_gives_identical_samples_with_fewer_calls(tiny):
    proc = MaskedProcess(3)
    results = {}
    for cache in (True, False):
        oracle = MaskedOracle(tiny)  # time-independent, as the optimal masked denoiser is
        results[cache] = sample_masked(
            oracle, proc, (8, 3), 100, cache=cache, generator=torch.Generator().manual_seed(5)
        )
        assert results[cache].nfe == oracle.calls
    assert torch.equal(results[True].samples, results[False].samples)
    assert results[False].nfe == 100
    # 8 × 3 = 24 tokens can change the state in at most 24 of the 100 iterations
    assert results[True].nfe <= 25 < results[False].nfe


def test_float64_draws_by_default_and_float32_optional(tiny):
    assert MaskedProcess(3).sampling_dtype == torch.float64
    assert UniformProcess(3).sampling_dtype == torch.float64
    proc32 = MaskedProcess(3, sampling_dtype=torch.float32)
    res = sample_masked(MaskedOracle(tiny), proc32, (100, 3), 10, generator=torch.Generator().manual_seed(6))
    assert (res.samples < 3).all()


def test_final_argmax_and_seeded_runs_are_bit_exact():
    proc = MaskedProcess(5)
    model = lambda x, t: torch.arange(5.0).expand(*x.shape, 5)  # noqa: E731 - argmax is always token 4
    res = sample_masked(
        model, proc, (50, 6), 5, method="tau-leaping", final="argmax", generator=torch.Generator().manual_seed(7)
    )
    again = sample_masked(
        model, proc, (50, 6), 5, method="tau-leaping", final="argmax", generator=torch.Generator().manual_seed(7)
    )
    assert torch.equal(res.samples, again.samples)
    assert res.still_masked_before_final > 0  # tokens left for the final denoise


def test_bad_input_raises_one_clear_error():
    proc = MaskedProcess(3)
    with pytest.raises(ValueError, match=r"needs network outputs of shape \(2, 3, 3\)"):
        sample_masked(lambda x, t: torch.zeros(*x.shape, 4), proc, (2, 3), 5)
    with pytest.raises(ValueError, match="must be one of"):
        sample_masked(_zero_model(3), proc, (2, 3), 5, method="heun")
    with pytest.raises(ValueError, match="steps must be"):
        sample_masked(_zero_model(3), proc, (2, 3), 0)
    with pytest.raises(ValueError, match="strictly decreasing"):
        sample_masked(_zero_model(3), proc, (2, 3), 2, grid=torch.tensor([0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match="grid must be"):
        sample_masked(_zero_model(3), proc, (2, 3), 2, grid="cosine")


@pytest.mark.parametrize("shape", [(5,), (4, 2, 3)])
def test_any_batch_shape_works(shape):
    """Tokens of shape (B,) (one label per example) or (B, H, W) go through every method unchanged."""
    V = 4
    g = torch.Generator().manual_seed(8)
    model = lambda x, t: torch.zeros(*x.shape, V)  # noqa: E731
    for proc in (MaskedProcess(V), UniformProcess(V)):
        x0 = torch.randint(0, V, shape, generator=g)
        t = proc.sample_times(shape[0], g)
        x_t = proc.corrupt(x0, t, generator=g)
        out = model(x_t, t)
        assert proc.loss(out, x0, x_t, t).shape == (shape[0],)
        assert proc.step(x_t, t, t * 0.5, out, generator=g).shape == shape
        assert proc.denoise(x_t, t, out).shape == shape
        est, se = proc.nelbo(model, x0, n_samples=4, generator=g)
        assert est.ndim == 0 and torch.isfinite(est) and se >= 0
    assert sample_masked(model, MaskedProcess(V), shape, 6, generator=g).samples.shape == shape
    assert sample_uniform(model, UniformProcess(V), shape, 6, generator=g).samples.shape == shape
