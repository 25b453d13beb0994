"""The labelled 2D mixture of notebook 3: every 'exact' number is checked against an independent computation.

Monte-Carlo checks use 5-standard-error bounds.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import multivariate_normal

from diffuse_edu.data.labeled_mixture import LabeledMixture, default_labeled_mixture
from diffuse_edu.gaussian import GaussianProcess
from diffuse_edu.metrics.joint import (
    coherence,
    label_marginal_tv,
    label_tv_floor,
    score_joint,
    score_label_to_point,
    score_point_to_label,
    spread_ratio,
)
from diffuse_edu.schedules import ScheduleCosine, ScheduleVPLinear


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def mix() -> LabeledMixture:
    return default_labeled_mixture()


def test_posterior_matches_brute_force_bayes(mix):
    pts, _ = mix.sample(500, gen(0))
    post = mix.bayes_posterior(pts)
    assert torch.allclose(post.sum(1), torch.ones(500, dtype=torch.float64), atol=1e-12)
    # brute force with scipy: w_y N(x; μ_y, Σ_y), normalised
    dens = torch.stack(
        [
            torch.as_tensor(
                mix.weights[k].item()
                * multivariate_normal(mix.means[k].numpy(), mix.covs[k].numpy()).pdf(pts.double().numpy())
            )
            for k in range(mix.num_classes)
        ],
        1,
    )
    assert torch.allclose(post, dens / dens.sum(1, keepdim=True), atol=1e-10)
    assert torch.equal(mix.bayes_label(pts), dens.argmax(1))
    # the posterior is not trivial: a fair share of points is genuinely ambiguous
    assert (post.max(1).values < 0.9).double().mean() > 0.05


def test_bayes_accuracy_grid_vs_monte_carlo(mix):
    acc = mix.bayes_accuracy()
    assert abs(acc - mix.bayes_accuracy(cells=800)) < 1e-4  # the quadrature has converged
    mc, se = mix.bayes_accuracy_mc(100_000, gen(1))
    assert abs(acc - mc) < 5 * se
    assert 0.85 < acc < 0.97  # overlapping components: neither trivial nor hopeless
    # Σ_y w_y · (share of N_y inside its Bayes region) = ∫ max_y w_y N_y = the Bayes accuracy
    assert abs(mix.exact_region_share() - acc) < 1e-9


def test_posterior_sampling_accuracy(mix):
    # drawing y' ~ p(y | x) instead of the argmax: accuracy E_x Σ_y p(y|x)², strictly below the Bayes accuracy
    pts, labels = mix.sample(100_000, gen(2))
    post = mix.bayes_posterior(pts)
    drawn = torch.multinomial(post, 1, generator=gen(3))[:, 0]
    p = (drawn == labels).double().mean().item()
    exact = mix.posterior_sampling_accuracy()
    assert abs(p - exact) < 5 * math.sqrt(exact * (1 - exact) / 100_000)
    assert exact < mix.bayes_accuracy() - 0.01


def test_region_share_of_exact_conditionals(mix):
    shares = mix.exact_region_shares()
    for y in (0, 2, 7):
        x = mix.conditional(y).sample(20_000, gen(10 + y))
        got = mix.region_share(x, torch.full((20_000,), y))
        assert abs(got - shares[y].item()) < 5 * math.sqrt(shares[y].item() * (1 - shares[y].item()) / 20_000)
    assert shares.min() < 0.9 and shares.max() > 0.99  # overlapping and isolated components


@pytest.mark.parametrize("schedule", [ScheduleVPLinear(), ScheduleCosine(alpha_end=1e-3)])
def test_conditional_score_matches_autograd(mix, schedule):
    cond = mix.conditional(5)
    x = torch.randn(64, 2, generator=gen(4), dtype=torch.float64).requires_grad_(True)
    t = torch.rand(64, generator=gen(5), dtype=torch.float64) * 0.98 + 0.01
    logp = cond.log_prob_t(x, t, schedule)
    (grad,) = torch.autograd.grad(logp.sum(), x)
    assert torch.allclose(cond.score(x.detach(), t, schedule), grad, atol=1e-10)
    # closed form for one Gaussian: −(α²Σ + σ²I)⁻¹(x − αμ)
    a, s = schedule.alpha(t), schedule.sigma(t)
    cov = a[:, None, None] ** 2 * mix.covs[5] + s[:, None, None] ** 2 * torch.eye(2, dtype=torch.float64)
    want = -torch.linalg.solve(cov, (x.detach() - a[:, None] * mix.means[5]).unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(grad, want, atol=1e-10)


def test_exact_joint_model(mix):
    gp = GaussianProcess(schedule=ScheduleVPLinear(), prediction="eps")
    net = mix.exact_joint_model(gp, mask_id=8)
    x = torch.randn(16, 2, generator=gen(6))
    t = torch.full((16,), 0.3)
    masked = torch.full((16, 1), 8)
    out = net({"point": x, "label": masked}, {"point": t, "label": torch.ones(16)})
    # masked label: the whole mixture's ε̂ = −σ · score
    want = -gp.schedule.sigma(t)[:, None] * mix.mixture.score(x, t, gp.schedule)
    assert torch.allclose(out["point"], want.float(), atol=1e-5)
    # revealed label y: component y alone
    lab = torch.full((16, 1), 3)
    out = net({"point": x, "label": lab}, {"point": t, "label": torch.zeros(16)})
    want = -gp.schedule.sigma(t)[:, None] * mix.conditional(3).score(x, t, gp.schedule)
    assert torch.allclose(out["point"], want.float(), atol=1e-5)
    # at point time 0 the label logits are the Bayes posterior
    out = net({"point": x, "label": masked}, {"point": torch.zeros(16), "label": torch.ones(16)})
    assert torch.allclose(out["label"][:, 0].double().softmax(1), mix.bayes_posterior(x), atol=1e-5)


def test_metrics_on_exact_samples(mix):
    n = 20_000
    pts, labels = mix.sample(n, gen(7))
    # coherence of the true joint = Bayes accuracy (binomial s.e.)
    acc = mix.bayes_accuracy()
    assert abs(coherence(labels, mix.bayes_label(pts)) - acc) < 5 * math.sqrt(acc * (1 - acc) / n)
    # label TV of an exact sample is at its floor; E TV ≈ Σ_y √(w(1−w)/n) · √(2/π) / 2 (normal approximation)
    floor, _ = label_tv_floor(mix.weights, n, generator=gen(8))
    approx = 0.5 * math.sqrt(2 / math.pi) * sum(math.sqrt(w * (1 - w) / n) for w in mix.weights.tolist())
    assert abs(floor - approx) < 0.25 * approx
    assert label_marginal_tv(labels, mix.weights) < floor + 5 * floor
    all_zero = torch.zeros(100, dtype=torch.long)
    assert label_marginal_tv(all_zero, mix.weights) == pytest.approx(1 - mix.weights[0].item())
    x = mix.conditional(1).sample(5000, gen(9))
    assert spread_ratio(x, mix.conditional(1).sample(5000, gen(10))) == pytest.approx(1.0, abs=0.05)
    assert spread_ratio(0.5 * x, x) == pytest.approx(0.5)


def test_bad_input(mix):
    with pytest.raises(ValueError, match=r"points must have shape \(n, 2\)"):
        mix.bayes_posterior(torch.zeros(4, 3))
    with pytest.raises(TypeError, match="floating-point"):
        mix.bayes_label(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"label must be an int in \[0, 8\)"):
        mix.conditional(8)
    with pytest.raises(ValueError, match=r"token ids in \[0, 9\]; expected ids in \[0, 8\)"):
        mix.region_share(torch.zeros(2, 2), torch.tensor([0, 9]))


def test_scores_of_exact_samples_sit_at_the_exact_answers(mix):
    # Scored as if a perfect sampler had drawn them, exact samples must reach the exact references.
    n, k = 4000, mix.num_classes
    pts, true = mix.sample(n, gen(11))
    bayes = mix.bayes_label(pts)
    r = score_point_to_label(
        bayes, true, true, bayes, bayes_accuracy=mix.bayes_accuracy(),
        posterior_sampling_accuracy=mix.posterior_sampling_accuracy(), nfe=3,
    )  # fmt: skip
    assert r.classify_accuracy == r.bayes_accuracy_same_points and r.agreement_with_bayes == 1.0
    assert r.sampled_accuracy == 1.0 and r.n == n and r.nfe == 3
    assert abs(r.classify_accuracy - r.bayes_accuracy) < 5 * r.se
    # label -> point: exact conditional samples as the "generated" points
    m = 1500
    labels = torch.arange(k).repeat_interleave(m)
    points = torch.cat([mix.conditional(y).sample(m, gen(20 + y)) for y in range(k)])
    refs = {y: (mix.conditional(y).sample(m, gen(40 + y)), mix.conditional(y).sample(m, gen(60 + y))) for y in range(k)}
    exact = mix.exact_region_shares()
    r = score_label_to_point(
        points, labels, mix.bayes_label(points), refs, exact_region_share=exact.mean().item(), generator=gen(12)
    )
    se = torch.sqrt(exact * (1 - exact) / m)
    assert (torch.tensor(r.per_label_share, dtype=torch.float64) - exact).abs().le(5 * se + 1e-12).all()
    assert r.n_per_label == m and r.spread == pytest.approx(1.0, abs=0.06) and r.sw < 3 * r.sw_floor
    # joint: exact samples are coherent at the Bayes accuracy, their label TV at its floor
    data, data2 = mix.sample(n, gen(13))[0], mix.sample(n, gen(14))[0]
    floor = label_tv_floor(mix.weights, n, generator=gen(15))[0]
    r = score_joint(
        pts, true, bayes, data, data2, mix.weights, label_tv_floor=floor, bayes_accuracy=mix.bayes_accuracy(),
        generator=gen(16),
    )  # fmt: skip
    acc = mix.bayes_accuracy()
    assert abs(r.coherence - acc) < 5 * math.sqrt(acc * (1 - acc) / n)
    assert r.label_tv < 5 * floor and r.point_sw < 3 * r.point_sw_floor and r.n == n
