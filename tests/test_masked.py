"""Masked (absorbing) process: forward marginals, the NELBO against exact likelihoods, the reverse step, input checks.

Monte-Carlo bounds are 5 standard errors: for a (near-)Gaussian estimate a 5-s.e. miss has probability ~6e-7, and
every test is seeded, so a failure means a bug, not bad luck.
"""

import math

import pytest
import torch
from fixtures.tiny_discrete import (
    MaskedOracle,
    exact_discrete_time_nelbo,
    make_tiny_distribution,
    masked_sampler_law,
)

from diffuse_edu.categorical import draw_categorical, nats_to_bits_per_token, stratified_times
from diffuse_edu.masked import MaskedProcess
from diffuse_edu.schedules import ScheduleCosine, ScheduleLogLinear


@pytest.fixture(scope="module")
def tiny():
    return make_tiny_distribution(length=3, vocab_size=3, seed=0)


def _per_config(est, se, R, K):
    """Average R replicates of each of K configurations (rows laid out as configs.repeat(R, 1))."""
    est, se = est.view(R, K), se.view(R, K)
    return est.mean(0), se.pow(2).sum(0).sqrt() / R


# ---- forward process ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", [ScheduleLogLinear(), ScheduleCosine()])
def test_masked_fraction_is_one_minus_alpha(schedule):
    proc = MaskedProcess(7, schedule)
    g = torch.Generator().manual_seed(0)
    B, L = 400, 250
    x0 = torch.randint(0, 7, (B, L), generator=g)
    for t in [0.0, 0.1, 0.5, 0.9, 1.0]:
        x_t = proc.corrupt(x0, torch.full((B,), t), generator=g)
        frac = (x_t == proc.mask_id).double().mean().item()
        p = 1 - schedule.alpha(torch.tensor(t, dtype=torch.float64)).item()
        # binomial: n = B·L independent tokens, s.e. = sqrt(p(1−p)/n)
        se = math.sqrt(p * (1 - p) / (B * L))
        assert abs(frac - p) <= 5 * se + 1e-12, (t, frac, p)
        # unmasked tokens are the clean ones
        keep = x_t != proc.mask_id
        assert torch.equal(x_t[keep], x0[keep])


def test_marginal_probs_rows_sum_to_one():
    proc = MaskedProcess(4)
    x0 = torch.tensor([[0, 3, 1]])
    q = proc.marginal_probs(x0, torch.tensor([0.3]))
    assert q.shape == (1, 3, 5)
    torch.testing.assert_close(q.sum(-1), torch.ones(1, 3, dtype=torch.float64))
    assert q[0, 0, 4].item() == pytest.approx(1 - proc.schedule.alpha(torch.tensor(0.3)).item(), abs=1e-6)


def test_prior_is_all_mask():
    proc = MaskedProcess(5)
    x = proc.prior((2, 4))
    assert x.dtype == torch.long and (x == 5).all()


def test_stratified_times_cover_every_stratum_once():
    g = torch.Generator().manual_seed(1)
    t = stratified_times(64, generator=g)
    assert t.shape == (64,) and (t >= 0).all() and (t < 1).all()
    # (u + i/n) mod 1: exactly one time per interval [k/n, (k+1)/n)
    assert torch.equal(torch.sort((t.double() * 64).floor().long()).values, torch.arange(64))
    assert MaskedProcess(3).sample_times(8, g).shape == (8,)


def test_draw_categorical_matches_probs_and_uses_float64():
    g = torch.Generator().manual_seed(2)
    probs = torch.tensor([0.0, 0.1, 0.6, 0.3, 1e-3])
    n = 200_000
    x = draw_categorical(probs.expand(n, 5), generator=g)
    freq = torch.bincount(x, minlength=5).double() / n
    p = probs.double() / probs.sum()
    se = (p * (1 - p) / n).sqrt()
    assert (freq - p).abs().le(5 * se + 1e-12).all(), freq  # binomial per category
    assert freq[0] == 0  # zero-probability category never drawn
    # the default is an inverse-CDF draw with a float64 uniform: reproduce it by hand from the same seed
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    pr = torch.softmax(torch.randn(6, 5, generator=torch.Generator().manual_seed(4)), -1)
    got = draw_categorical(pr, generator=g1)
    u = 1.0 - torch.rand(6, generator=g2, dtype=torch.float64)
    cdf = pr.double().cumsum(-1)
    want = (cdf < (u * cdf[:, -1]).unsqueeze(-1)).sum(-1)
    assert torch.equal(got, want)
    assert MaskedProcess(3).sampling_dtype == torch.float64


# ---- the NELBO against exact likelihoods ---------------------------------------------------------------------------


def test_oracle_nelbo_equals_true_nll(tiny):
    """With α(1) = 0 and the exact denoiser, the continuous-time NELBO equals −log p(x₀) for every x₀ (MDLM §3)."""
    proc = MaskedProcess(3, ScheduleLogLinear(eps=0.0))
    g = torch.Generator().manual_seed(5)
    R, K = 200, tiny.configs.shape[0]
    est, se = proc.nelbo(MaskedOracle(tiny), tiny.configs.repeat(R, 1), n_samples=16, generator=g, reduction="none")
    est, se = _per_config(est, se, R, K)
    nll = tiny.nll(tiny.configs)
    # 27 configurations, each within 5 s.e. (the s.e. is the i.i.d. formula, conservative for stratified times)
    assert ((est - nll).abs() <= 5 * se).all(), (est - nll) / se
    # and the data average: E_p[NELBO] = H(p)
    mean, mean_se = (tiny.probs * est).sum(), (tiny.probs.pow(2) * se.pow(2)).sum().sqrt()
    assert abs(mean.item() - tiny.entropy()) <= 5 * mean_se.item()
    assert mean_se < 0.02  # the test has teeth: H(p) ≈ 2.51 nats, the factorised model is 0.47 nats worse


def test_nelbo_with_default_schedule_is_a_bound(tiny):
    """α(1) = ε = 1e-3: E_p[NELBO] ≥ H(p), and the excess is at most the ε-sized prior-term effect."""
    proc = MaskedProcess(3)
    g = torch.Generator().manual_seed(6)
    x0 = tiny.sample(8000, generator=g)
    est, se = proc.nelbo(MaskedOracle(tiny), x0, n_samples=8, generator=g)
    H = tiny.entropy()
    # x0 is a sample from p, so its mean NLL differs from H: compare with the sample's own mean NLL
    nll = tiny.nll(x0).mean().item()
    assert est.item() >= nll - 5 * se.item()
    # with α(1) = ε the bound moves by at most ε·L·(log V + max NLL) (prior KL plus tokens left unmasked at t = 1)
    slack = 1e-3 * 3 * (math.log(3) + tiny.nll(tiny.configs).max().item())
    assert est.item() <= nll + slack + 5 * se.item()
    assert abs(nll - H) < 0.05


def test_wrong_denoiser_nelbo_exceeds_nll(tiny):
    """A factorised denoiser (the exact oracle of the product of marginals q) scores −log q(x₀) per sequence, so its
    data-average NELBO is the cross-entropy H(p) + KL(p‖q) > H(p)."""
    proc = MaskedProcess(3, ScheduleLogLinear(eps=0.0))
    q = tiny.factorised()
    g = torch.Generator().manual_seed(7)
    R, K = 200, tiny.configs.shape[0]
    est, se = proc.nelbo(MaskedOracle(q), tiny.configs.repeat(R, 1), n_samples=16, generator=g, reduction="none")
    est, se = _per_config(est, se, R, K)
    assert ((est - q.nll(tiny.configs)).abs() <= 5 * se).all()
    mean, mean_se = (tiny.probs * est).sum().item(), (tiny.probs.pow(2) * se.pow(2)).sum().sqrt().item()
    cross_entropy = (tiny.probs * q.nll(tiny.configs)).sum().item()
    assert abs(mean - cross_entropy) <= 5 * mean_se
    assert mean - tiny.entropy() > 10 * mean_se  # strictly worse than the truth, by far more than the MC error


def test_uniform_logits_score_log_v_per_token():
    """Zero logits put 1/V on every token: NELBO = L log V exactly in expectation (nats), log2 V bits per token."""
    proc = MaskedProcess(5)
    g = torch.Generator().manual_seed(8)
    x0 = torch.randint(0, 5, (2000, 6), generator=g)
    est, se = proc.nelbo(lambda x, t: torch.zeros(*x.shape, 5), x0, n_samples=8, generator=g)
    assert abs(est.item() - 6 * math.log(5)) <= 5 * se.item()
    assert nats_to_bits_per_token(6 * math.log(5), 6) == pytest.approx(math.log2(5))


def test_exact_discrete_time_nelbo_bounds_the_chain_nll(tiny):
    """Exact enumeration, no Monte Carlo: for T ancestral steps the discrete-time NELBO is ≥ −log of the chain's
    output law for every x₀ (the ELBO inequality), and its data average decreases towards H(p) as T grows
    (revealing several tokens in one step with independent draws is the only gap)."""
    proc = MaskedProcess(3, ScheduleLogLinear(eps=0.0))
    oracle = MaskedOracle(tiny)
    averages = []
    for T in [1, 4, 32]:
        grid = torch.linspace(1, 0, T + 1, dtype=torch.float64)
        nelbo = exact_discrete_time_nelbo(proc, oracle, tiny.configs, grid)
        law = masked_sampler_law(oracle, proc.reveal_probability(grid[:-1], grid[1:]))
        assert (nelbo >= -law.log() - 1e-9).all()
        averages.append((tiny.probs * nelbo).sum().item())
    # one step reveals everything independently from the marginals: exactly the factorised model's cross-entropy
    assert averages[0] == pytest.approx(tiny.factorised().entropy(), abs=1e-9)
    assert averages[0] > averages[1] > averages[2] > tiny.entropy()
    assert averages[2] - tiny.entropy() < 0.02


# ---- the two losses ------------------------------------------------------------------------------------------------


def test_elbo_and_ce_losses():
    g = torch.Generator().manual_seed(9)
    x0 = torch.randint(0, 4, (6, 10), generator=g)
    t = torch.rand(6, generator=g) * 0.9 + 0.05
    elbo, ce = MaskedProcess(4, loss_type="elbo"), MaskedProcess(4, loss_type="ce")
    x_t = elbo.corrupt(x0, t, generator=g)
    out = torch.randn(6, 10, 4, generator=g, requires_grad=True)
    l_elbo, l_ce = elbo.loss(out, x0, x_t, t), ce.loss(out, x0, x_t, t)
    assert l_elbo.shape == l_ce.shape == (6,)
    # log-linear: weight −α'/(1−α) = 1/t exactly, and ce = Σ_masked CE / L
    torch.testing.assert_close(l_elbo, l_ce * 10 / t, rtol=1e-5, atol=1e-6)
    # carry-over: the logits of unmasked positions get no gradient
    l_elbo.sum().backward()
    unmasked = x_t != elbo.mask_id
    assert out.grad[unmasked].abs().max() == 0
    assert out.grad[~unmasked].abs().max() > 0


def test_loss_is_finite_at_t_zero_and_one():
    proc = MaskedProcess(3)
    x0 = torch.tensor([[0, 1, 2]])
    out = torch.zeros(1, 3, 3, requires_grad=True)
    for t in [0.0, 1.0]:
        tt = torch.tensor([t])
        x_t = proc.corrupt(x0, tt)
        loss = proc.loss(out, x0, x_t, tt)
        loss.sum().backward()
        assert torch.isfinite(loss).all() and torch.isfinite(out.grad).all()


# ---- the reverse step ----------------------------------------------------------------------------------------------


def test_step_reveals_with_the_exact_probability_and_keeps_unmasked_tokens():
    proc = MaskedProcess(6, ScheduleCosine())
    g = torch.Generator().manual_seed(10)
    B, L = 500, 200
    x0 = torch.randint(0, 6, (B, L), generator=g)
    t, s = torch.full((B,), 0.7), torch.full((B,), 0.4)
    x_t = proc.corrupt(x0, t, generator=g)
    out = torch.randn(B, L, 6, generator=g)
    x_s = proc.step(x_t, t, s, out, generator=g)
    masked = x_t == proc.mask_id
    assert torch.equal(x_s[~masked], x_t[~masked])  # unmasked tokens never change
    revealed = masked & (x_s != proc.mask_id)
    assert (x_s[revealed] < 6).all()
    r = proc.reveal_probability(torch.tensor(0.7), torch.tensor(0.4)).item()
    a = proc.schedule.alpha(torch.tensor([0.7, 0.4], dtype=torch.float64))
    assert r == pytest.approx(((a[1] - a[0]) / (1 - a[0])).item())
    n = masked.sum().item()
    frac = revealed.sum().item() / n
    assert abs(frac - r) <= 5 * math.sqrt(r * (1 - r) / n)  # binomial over the n masked tokens
    # posterior_probs is the same law: rows sum to one, mask column 1 − r
    post = proc.posterior_probs(x_t[:2], torch.softmax(out[:2], -1), t[:2], s[:2])
    torch.testing.assert_close(post.sum(-1), torch.ones(2, L, dtype=torch.float64))


def test_confidence_step_reveals_the_ancestral_count_at_the_most_confident_positions():
    proc = MaskedProcess(5)
    B, L = 64, 12
    g = torch.Generator().manual_seed(3)
    x0 = torch.randint(0, 5, (B, L), generator=g)
    t, s = torch.full((B,), 0.8), torch.full((B,), 0.5)
    x_t = proc.corrupt(x0, t, generator=g)
    # peaked logits: position j puts probability 1 − 4e-9·(j + 1) on token j mod 5 (the other draws practically never
    # happen), so the confidence of the drawn value falls with j (float64 draws resolve the differences)
    out = torch.zeros(B, L, 5, dtype=torch.float64)
    for j in range(L):
        out[:, j] = math.log(1e-9 * (j + 1))
        out[:, j, j % 5] = 0.0
    a = proc.step(x_t, t, s, out, generator=torch.Generator().manual_seed(7), method="ancestral")
    gc = torch.Generator().manual_seed(7)
    c = proc.step(x_t, t, s, out, generator=gc, method="confidence")
    masked = x_t == proc.mask_id
    assert torch.equal(c[~masked], x_t[~masked])  # unmasked tokens never change
    # the same coins decide how many: equal counts per sequence, and the generator is consumed alike
    assert torch.equal((a != proc.mask_id).sum(1), (c != proc.mask_id).sum(1))
    ga = torch.Generator().manual_seed(7)
    proc.step(x_t, t, s, out, generator=ga, method="ancestral")
    assert torch.equal(ga.get_state(), gc.get_state())
    # the revealed positions are the most confident masked ones: here the first masked positions of each row
    new = masked & (c != proc.mask_id)
    for b in range(B):
        pos = masked[b].nonzero().flatten()
        k = int(new[b].sum())
        want = torch.zeros(L, dtype=torch.bool)
        want[pos[:k]] = True
        assert torch.equal(new[b], want), (b, new[b], want)
        assert torch.equal(c[b, pos[:k]], pos[:k] % 5)  # the drawn values follow the logits
    # a last step (s = 0) reveals everything, like the ancestral one
    last = proc.step(x_t, t, torch.zeros(B), out, generator=g, method="confidence")
    assert not (last == proc.mask_id).any()


def test_confidence_method_in_the_samplers():
    from diffuse_edu.nets.transformer import DiffusionTransformer
    from diffuse_edu.sampling import sample_masked

    torch.manual_seed(0)
    V, L = 6, 8
    net = DiffusionTransformer(V + 1, V, L, width=32, depth=1, heads=2).eval()
    proc = MaskedProcess(V, step_method="confidence")
    res = sample_masked(net, proc, (16, L), 10, generator=torch.Generator().manual_seed(1))
    assert res.samples.shape == (16, L) and not (res.samples == proc.mask_id).any()
    assert res.nfe == 10
    same = sample_masked(net, proc, (16, L), 10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(same.samples, res.samples)
    cached = sample_masked(net, proc, (16, L), 10, generator=torch.Generator().manual_seed(1), cache=True)
    assert torch.equal(cached.samples, res.samples)  # the cache skips calls, never changes the draws
    with pytest.raises(ValueError, match="confidence"):
        MaskedProcess(V, step_method="confident")


def test_denoise_removes_every_mask():
    proc = MaskedProcess(4)
    g = torch.Generator().manual_seed(11)
    x_t = torch.tensor([[4, 1, 4, 0], [4, 4, 4, 4]])
    out = torch.randn(2, 4, 4, generator=g)
    for mode in ["argmax", "sample"]:
        x = proc.denoise(x_t, torch.tensor([0.5, 0.5]), out, mode=mode, generator=g)
        assert (x < 4).all()
        assert x[0, 1] == 1 and x[0, 3] == 0
    assert torch.equal(proc.denoise(x_t, torch.tensor([0.5, 0.5]), out)[1], out[1].argmax(-1))


# ---- bad input -----------------------------------------------------------------------------------------------------


def test_bad_input_raises_one_clear_error():
    proc = MaskedProcess(3)
    x0 = torch.tensor([[0, 1, 2]])
    t = torch.tensor([0.5])
    out = torch.zeros(1, 3, 3)
    with pytest.raises(ValueError, match=r"expected ids in \[0, 3\)"):
        proc.corrupt(torch.tensor([[0, 3, 1]]), t)
    with pytest.raises(ValueError, match=r"expected ids in \[0, 4\)"):
        proc.loss(out, x0, torch.tensor([[0, 5, 1]]), t)
    with pytest.raises(TypeError, match="integer tensor"):
        proc.corrupt(x0.float(), t)
    with pytest.raises(ValueError, match="needs network outputs of shape"):
        proc.loss(torch.zeros(1, 3, 4), x0, x0, t)
    with pytest.raises(ValueError, match="needs network outputs of shape"):
        proc.step(x0, t, t, torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        proc.corrupt(x0, torch.tensor([1.5]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        proc.step(x0, t, torch.tensor([-0.1]), out)
    with pytest.raises(ValueError, match="s <= t"):
        proc.step(x0, torch.tensor([0.2]), torch.tensor([0.6]), out)
    with pytest.raises(ValueError, match="same shape"):
        proc.loss(torch.zeros(1, 4, 3), x0, torch.tensor([[0, 1, 2, 0]]), t)
    with pytest.raises(ValueError, match="NaN or infinite"):
        proc.loss(torch.full((1, 3, 3), float("nan")), x0, x0, t)
    with pytest.raises(ValueError, match="loss_type"):
        MaskedProcess(3, loss_type="mse")
    with pytest.raises(ValueError, match="mode"):
        proc.denoise(x0, t, out, mode="beam")
