"""Tests of the joint process, its training clocks, the joint sampler and noisy guidance.

Randomness is seeded everywhere; Monte-Carlo checks use 5-standard-error bounds (false alarm ≈ 6e-7 per check).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from diffuse_edu.clocks import AxisMixture, Decoupled, Grouped, Unified
from diffuse_edu.data.labeled_mixture import default_labeled_mixture
from diffuse_edu.gaussian import GaussianProcess
from diffuse_edu.grids import uniform_grid
from diffuse_edu.guidance import NoisyGuidance
from diffuse_edu.joint import JointProcess, SingleModality
from diffuse_edu.masked import MaskedProcess
from diffuse_edu.nets.joint_mlp import JointMLP
from diffuse_edu.sampling import count_nfe, sample, sample_joint, sample_masked

K = 8


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class TinyVecNet(nn.Module):
    """A small deterministic net(x, t) -> (B, D) for the reduction tests."""

    def __init__(self, d: int = 2):
        super().__init__()
        torch.manual_seed(0)
        self.f = nn.Sequential(nn.Linear(d + 1, 32), nn.Tanh(), nn.Linear(32, d))

    def forward(self, x, t):
        return self.f(torch.cat([x, t[:, None]], 1))


class TinyTokNet(nn.Module):
    """A small deterministic net(tokens (B, L), t) -> logits (B, L, V)."""

    def __init__(self, v: int = 5):
        super().__init__()
        torch.manual_seed(1)
        self.emb = nn.Embedding(v + 1, 16)
        self.out = nn.Linear(17, v)

    def forward(self, x, t):
        h = self.emb(x)  # (B, L, 16)
        return self.out(torch.cat([h, t[:, None, None].expand(*x.shape, 1)], -1))


class CountingNet(nn.Module):
    """Wraps a joint net; records every call's inputs (cloned) so tests can count calls and inspect inputs."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.calls: list[tuple[dict, dict]] = []

    def forward(self, xs, ts):
        self.calls.append(({k: v.clone() for k, v in xs.items()}, {k: v.clone() for k, v in ts.items()}))
        return self.net(xs, ts)


@pytest.fixture(scope="module")
def toy():
    mix = default_labeled_mixture()
    joint = JointProcess(
        {"point": GaussianProcess(step_method="euler-maruyama"), "label": MaskedProcess(K)},
        event_shapes={"point": (2,), "label": (1,)},
    )
    torch.manual_seed(0)
    net = JointMLP(hidden=32, depth=1, time_dim=16, token_dim=8).eval()
    return mix, joint, net


# -- reduction to one modality --------------------------------------------------------------------------------------


@pytest.mark.parametrize("clock", [Decoupled(), Unified(), Grouped([["x"]])])
@pytest.mark.parametrize("kind", ["gaussian", "masked"])
def test_single_modality_loss_is_bit_identical(clock, kind):
    if kind == "gaussian":
        proc, net, x0 = GaussianProcess(), TinyVecNet(), torch.randn(64, 2, generator=gen(5))
    else:
        proc, net, x0 = MaskedProcess(5), TinyTokNet(), torch.randint(0, 5, (64, 3), generator=gen(5))
    joint = JointProcess({"x": proc})
    got = joint.training_loss(SingleModality(net, "x"), {"x": x0}, clock=clock, generator=gen(1))
    g = gen(1)
    t = torch.rand(64, generator=g)
    x_t = proc.corrupt(x0, t, g)
    want = proc.loss(net(x_t, t), x0, x_t, t).mean()
    assert torch.equal(got, want)
    # gradients too: the same graph
    got.backward()
    g1 = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    want2 = proc.loss(net(x_t, t), x0, x_t, t).mean()
    want2.backward()
    assert all(torch.equal(a, p.grad) for a, p in zip(g1, net.parameters(), strict=False))


@pytest.mark.parametrize("method", ["ddpm", "euler-maruyama", "ode-euler", "ode-heun"])
def test_single_modality_gaussian_sampler_is_bit_identical(method):
    proc, net = GaussianProcess(step_method=method), TinyVecNet()
    joint = JointProcess({"x": proc})
    got = sample_joint(joint, SingleModality(net, "x"), batch=32, shapes={"x": (2,)}, steps=12, generator=gen(3))
    want = sample(net, proc, (32, 2), steps=12, method=method, generator=gen(3))
    assert torch.equal(got.samples["x"], want.samples)
    assert got.nfe == want.nfe == (23 if method == "ode-heun" else 12)


@pytest.mark.parametrize("final", ["argmax", "sample"])
def test_single_modality_masked_sampler_is_bit_identical(final):
    # 8 uniform steps: grid times k/8 are exact in float32, so both samplers compute the same reveal probabilities.
    proc, net = MaskedProcess(5), TinyTokNet()
    joint = JointProcess({"x": proc})
    got = sample_joint(
        joint, SingleModality(net, "x"), batch=40, shapes={"x": (6,)}, steps=8, generator=gen(4), final={"x": final}
    )
    want = sample_masked(net, proc, (40, 6), steps=8, grid="uniform", cache=False, final=final, generator=gen(4))
    assert torch.equal(got.samples["x"], want.samples)
    assert got.nfe == want.nfe == 8


def test_loss_weights_and_clean_masking():
    proc = GaussianProcess()
    joint = JointProcess({"a": proc, "b": proc}, loss_weights={"a": 2.0, "b": 0.5})
    x0 = {"a": torch.randn(6, 2, generator=gen(0)), "b": torch.randn(6, 2, generator=gen(1))}
    ts = {"a": torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]), "b": torch.full((6,), 0.5)}
    xts = joint.corrupt(x0, ts, gen(2))
    out = {"a": torch.randn(6, 2, generator=gen(3)), "b": torch.randn(6, 2, generator=gen(4))}
    la, lb = proc.loss(out["a"], x0["a"], xts["a"], ts["a"]), proc.loss(out["b"], x0["b"], xts["b"], ts["b"])
    total = joint.loss(out, x0, xts, ts)
    assert torch.allclose(total[1:], 2.0 * la[1:] + 0.5 * lb[1:])
    # the clean modality (t = 0) is a condition, not a target: its loss is dropped
    assert torch.allclose(total[0], 0.5 * lb[0])
    assert torch.equal(xts["a"][0], x0["a"][0])  # α(0) = 1, σ(0) = 0


# -- training clocks ------------------------------------------------------------------------------------------------


def test_time_sampler_marginals():
    proc = GaussianProcess()
    joint = JointProcess({"a": proc, "b": proc, "c": proc})
    n = 200_000
    # U[0,1]: mean 1/2, variance 1/12; the sample mean has s.e. √(1/12/n), the sample variance √(1/180/n)
    # (Var (U − ½)² = 1/80 − 1/144 = 1/180), the sample correlation of independent uniforms ≈ 1/√n.
    ts = joint.sample_times(n, Decoupled(), generator=gen(0))
    for v in ts.values():
        assert abs(v.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / n)
        assert abs(v.var().item() - 1 / 12) < 5 * math.sqrt(1 / 180 / n)
        assert v.min() >= 0 and v.max() < 1
    corr = torch.corrcoef(torch.stack([ts["a"], ts["b"], ts["c"]]))
    assert (corr - torch.eye(3)).abs().max() < 5 / math.sqrt(n)

    ts = joint.sample_times(n, Unified(), generator=gen(1))
    assert torch.equal(ts["a"], ts["b"]) and torch.equal(ts["b"], ts["c"])
    assert abs(ts["a"].mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / n)

    p = 0.3
    for base in (Unified(), Decoupled()):
        ts = joint.sample_times(n, AxisMixture(prob=p, base=base), generator=gen(2))
        clean = torch.stack([ts[k] == 0 for k in "abc"])  # (3, n)
        assert clean.sum(0).max() <= 1  # at most one modality clean per example
        on_axis = clean.any(0).double().mean().item()
        assert abs(on_axis - p) < 5 * math.sqrt(p * (1 - p) / n)
        for row in clean:  # each modality chosen uniformly: p/3 each
            share = row.double().mean().item()
            assert abs(share - p / 3) < 5 * math.sqrt(p / 3 * (1 - p / 3) / n)
        off = ~clean.any(0)
        if isinstance(base, Unified):
            assert torch.equal(ts["a"][off], ts["b"][off])
        # the noised modalities stay U[0, 1] on the axis
        noisy_b = ts["b"][clean[0]]
        assert abs(noisy_b.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / noisy_b.numel())

    ts = joint.sample_times(1000, Decoupled(clean=("b",)), generator=gen(3))
    assert (ts["b"] == 0).all() and (ts["a"] > 0).any()

    ts = joint.sample_times(n, Grouped([["a", "c"]]), generator=gen(4))
    assert torch.equal(ts["a"], ts["c"]) and not torch.equal(ts["a"], ts["b"])
    corr = torch.corrcoef(torch.stack([ts["a"], ts["b"]]))[0, 1].item()
    assert abs(corr) < 5 / math.sqrt(n)
    by_kind = Grouped.by_kind({"a": GaussianProcess(), "b": MaskedProcess(3), "c": GaussianProcess()})
    assert by_kind.groups == (("a", "c"), ("b",))


# -- sampling: given modalities, NFE, guidance ----------------------------------------------------------------------


def test_given_modalities_are_untouched(toy):
    mix, joint, net = toy
    pts, labels = mix.sample(24, gen(0))
    given_label = labels[:, None]
    keep = given_label.clone()
    spy = CountingNet(net)
    res = sample_joint(joint, spy, given={"label": given_label}, steps=6, generator=gen(1))
    assert res.samples["label"] is given_label and torch.equal(given_label, keep)
    assert res.samples["label"].dtype == torch.long
    for xs, ts in spy.calls:
        assert torch.equal(xs["label"], keep) and (ts["label"] == 0).all()
    given_pts = pts.clone()
    res = sample_joint(joint, spy, given={"point": given_pts}, steps=4, generator=gen(2))
    assert res.samples["point"] is given_pts and torch.equal(given_pts, pts)
    assert (res.samples["label"] < K).all() and res.samples["label"].shape == (24, 1)


def test_network_call_counts(toy):
    mix, joint, net = toy
    spy = CountingNet(net)
    res = sample_joint(joint, spy, batch=16, steps={"point": 12, "label": 5}, generator=gen(0))
    assert res.nfe == len(spy.calls) == 12  # one call per iteration, max over modalities
    # alignment "start": the label moves on the first 5 calls, then sits at t = 0
    label_times = [ts["label"][0].item() for _, ts in spy.calls]
    assert label_times[:5] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2]) and label_times[5:] == [0.0] * 7
    assert (res.samples["label"] < K).all()
    spy.calls.clear()
    res = sample_joint(joint, spy, batch=16, steps={"point": 12, "label": 5}, align="end", generator=gen(0))
    label_times = [ts["label"][0].item() for _, ts in spy.calls]
    assert label_times[:8] == [1.0] * 8 and label_times[7:] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    spy.calls.clear()
    _, labels = mix.sample(16, gen(1))
    res = sample_joint(joint, spy, given={"label": labels[:, None]}, steps=7, generator=gen(2))
    assert res.nfe == len(spy.calls) == 7
    spy.calls.clear()
    guid = NoisyGuidance(omega=2.0, sigma=1.0, left=0.25, right=0.75)
    res = sample_joint(joint, spy, given={"label": labels[:, None]}, steps=10, guidance=guid, generator=gen(2))
    # grid 1.0, 0.9, ..., 0.1 at the calls: strictly inside (0.25, 0.75): 0.7, 0.6, 0.5, 0.4, 0.3 → 5 extra calls
    assert res.guided_steps == 5 and res.nfe == len(spy.calls) == 15
    assert count_nfe(joint, ["point"], 10, guidance=guid) == 15 and count_nfe(joint, ["point"], 10) == 10


def test_guidance_interval_is_strict(toy):
    mix, joint, net = toy
    _, labels = mix.sample(8, gen(0))
    grid = uniform_grid(10)
    left, right = grid[7].item(), grid[3].item()  # exactly 0.3 and 0.7 as the sampler sees them
    guid = NoisyGuidance(omega=3.0, sigma=0.5, left=left, right=right)
    assert not guid.active(left) and not guid.active(right) and guid.active(0.5)
    spy = CountingNet(net)
    res = sample_joint(joint, spy, given={"label": labels[:, None]}, steps=10, guidance=guid, generator=gen(1))
    # calls at t = 1.0, 0.9, ..., 0.1: only 0.6, 0.5, 0.4 lie strictly inside (0.3, 0.7)
    assert res.guided_steps == 3 and res.nfe == len(spy.calls) == 13
    weak_times = [ts["label"][0].item() for _, ts in spy.calls if ts["label"][0] > 0]
    assert weak_times == [0.5, 0.5, 0.5]  # the weak calls see the label re-noised to σ


def test_guidance_identity_at_omega_one(toy):
    mix, joint, net = toy
    pts, labels = mix.sample(32, gen(0))
    for given in ({"label": labels[:, None]}, {"point": pts}):
        g_plain, g_guided = gen(7), gen(7)
        plain = sample_joint(joint, net, given=given, steps=9, generator=g_plain)
        same = sample_joint(
            joint,
            net,
            given=given,
            steps=9,
            generator=g_guided,
            guidance=NoisyGuidance(omega=1.0, sigma=0.3, left=0.0, right=1.0),
        )
        for k in plain.samples:
            assert torch.equal(plain.samples[k], same.samples[k])
        assert plain.nfe == same.nfe == 9
        assert torch.equal(g_plain.get_state(), g_guided.get_state())
    # ω ≠ 1 changes the output but never the main generator's consumption (re-noising draws from a side stream)
    g_a, g_b = gen(7), gen(7)
    a = sample_joint(joint, net, given={"label": labels[:, None]}, steps=9, generator=g_a)
    b = sample_joint(
        joint,
        net,
        given={"label": labels[:, None]},
        steps=9,
        generator=g_b,
        guidance=NoisyGuidance(omega=4.0, sigma=1.0),
    )
    assert not torch.equal(a.samples["point"], b.samples["point"])
    assert torch.equal(g_a.get_state(), g_b.get_state())


def test_guidance_renoising_is_fresh_per_call_and_reproducible(toy):
    """Two guided calls sharing one generator re-noise differently; equal seeds give identical samples."""
    mix, joint, net = toy
    _, labels = mix.sample(16, gen(0))
    spy = CountingNet(net)
    guid = NoisyGuidance(omega=2.0, sigma=0.6, left=0.0, right=1.0)
    g = gen(3)
    sample_joint(joint, spy, given={"label": labels[:, None]}, steps=4, guidance=guid, generator=g)
    first = [xs["label"] for xs, ts in spy.calls if ts["label"][0] > 0]
    spy.calls.clear()
    sample_joint(joint, spy, given={"label": labels[:, None]}, steps=4, guidance=guid, generator=g)
    second = [xs["label"] for xs, ts in spy.calls if ts["label"][0] > 0]
    assert len(first) == len(second) == 3
    assert any(not torch.equal(a, b) for a, b in zip(first, second, strict=False))  # independent re-noising
    a = sample_joint(joint, net, given={"label": labels[:, None]}, steps=4, guidance=guid, generator=gen(9))
    b = sample_joint(joint, net, given={"label": labels[:, None]}, steps=4, guidance=guid, generator=gen(9))
    assert torch.equal(a.samples["point"], b.samples["point"])


def test_process_mix_spaces():
    gp, mp = GaussianProcess(), MaskedProcess(4)
    a, b = torch.randn(3, 2, generator=gen(0)), torch.randn(3, 2, generator=gen(1))
    assert torch.allclose(gp.mix(a, b, 2.5), 2.5 * a - 1.5 * b)
    la, lb = torch.randn(3, 1, 4, generator=gen(2)), torch.randn(3, 1, 4, generator=gen(3))
    mixed = mp.mix(la, lb, 2.5)
    # log-prob mixing equals logit mixing up to a per-row constant: same distribution
    assert torch.allclose(mixed.softmax(-1), (2.5 * la - 1.5 * lb).softmax(-1), atol=1e-6)


def test_exact_oracle_recovers_conditionals():
    """With the exact joint denoiser, label→point lands in the Bayes regions at the exact conditional's rate, and
    point→label classification is the Bayes classifier (one call)."""
    mix = default_labeled_mixture()
    joint = JointProcess(
        {"point": GaussianProcess(step_method="euler-maruyama"), "label": MaskedProcess(K)},
        event_shapes={"point": (2,), "label": (1,)},
    )
    oracle = mix.exact_joint_model(joint["point"], mask_id=K)
    pts, _ = mix.sample(2000, gen(0))
    cls = sample_joint(joint, oracle, given={"point": pts}, steps=1, generator=gen(1))
    assert torch.equal(cls.samples["label"][:, 0], mix.bayes_label(pts))
    labels = torch.full((2000, 1), 7)
    res = sample_joint(joint, oracle, given={"label": labels}, steps=40, generator=gen(2))
    share, exact = mix.region_share(res.samples["point"], labels[:, 0]), mix.exact_region_share(7)
    # 2000 draws: s.e. √(p(1−p)/n) ≈ 0.0067; allow 5 s.e. plus 0.01 for 40 Euler–Maruyama steps
    assert abs(share - exact) < 5 * math.sqrt(exact * (1 - exact) / 2000) + 0.01


# -- bad input ------------------------------------------------------------------------------------------------------


def test_bad_input_raises_one_clear_error(toy):
    mix, joint, net = toy
    batch = mix.sample_dict(8, gen(0))
    with pytest.raises(ValueError, match="unknown modality name.*'caption'"):
        joint.training_loss(net, {**batch, "caption": batch["label"]})
    with pytest.raises(ValueError, match="unknown modality name.*'text'"):
        sample_joint(joint, net, given={"text": batch["label"]})
    with pytest.raises(ValueError, match="missing modality.*'label'"):
        joint.training_loss(net, {"point": batch["point"]})
    with pytest.raises(ValueError, match=r"batch size mismatch.*'label'.*7.*'point'.*8"):
        joint.training_loss(net, {"point": batch["point"], "label": batch["label"][:7]})
    with pytest.raises(ValueError, match=r"given\['label'\] has shape \(8,\); expected \(B, 1\)"):
        sample_joint(joint, net, given={"label": batch["label"][:, 0]})
    with pytest.raises(ValueError, match=r"given\['point'\] has shape \(8, 3\)"):
        sample_joint(joint, net, given={"point": torch.randn(8, 3)})
    with pytest.raises(TypeError, match=r"given\['label'\] must be an integer tensor"):
        sample_joint(joint, net, given={"label": batch["label"].float()})
    with pytest.raises(TypeError, match=r"given\['point'\] must be a floating-point tensor"):
        sample_joint(joint, net, given={"point": batch["point"].long()})
    with pytest.raises(ValueError, match=r"given\['label'\] holds token ids in \[9, 9\]; expected ids in \[0, 8\)"):
        sample_joint(joint, net, given={"label": torch.full((8, 1), 9)})
    with pytest.raises(ValueError, match="batch=4 but the given modalities have batch size 8"):
        sample_joint(joint, net, batch=4, given={"label": batch["label"]})
    with pytest.raises(ValueError, match="needs a given modality to re-noise"):
        sample_joint(joint, net, batch=4, guidance=NoisyGuidance(omega=2.0))
    with pytest.raises(TypeError, match="clock must be a diffuse_edu.clocks.Clock"):
        joint.sample_times(4, "independent")
    with pytest.raises(ValueError, match=r"names modality\(ies\) \['text'\]"):
        joint.sample_times(4, Decoupled(clean=("text",)))
    with pytest.raises(ValueError, match=r"sigma must lie in \[0.0, 1.0\]"):
        NoisyGuidance(omega=2.0, sigma=1.5)
    with pytest.raises(ValueError, match="left <= right"):
        NoisyGuidance(omega=2.0, left=0.8, right=0.2)


def test_three_state_spaces_compose():
    """Gaussian + masked + uniform in one joint model: loss, conditional on any subset, per-modality steps."""
    from diffuse_edu.uniform import UniformProcess

    joint = JointProcess(
        {"x": GaussianProcess(), "m": MaskedProcess(5), "u": UniformProcess(4)},
        event_shapes={"x": (3,), "m": (2,), "u": (3,)},
        loss_weights={"u": 0.5},
    )
    torch.manual_seed(0)
    net = JointMLP(continuous={"x": 3}, discrete={"m": (2, 5), "u": (3, 4)}, hidden=32, depth=1, time_dim=8).eval()
    batch = {"x": torch.randn(10, 3), "m": torch.randint(0, 5, (10, 2)), "u": torch.randint(0, 4, (10, 3))}
    for clock in (Decoupled(), Unified(), AxisMixture(), Grouped.by_kind(joint.processes)):
        loss = joint.training_loss(net, batch, clock=clock, generator=gen(0))
        assert loss.ndim == 0 and torch.isfinite(loss)
    spy = CountingNet(net)
    res = sample_joint(joint, spy, given={"m": batch["m"], "x": batch["x"]}, steps={"u": 6}, generator=gen(1))
    assert res.nfe == len(spy.calls) == 6 and res.samples["u"].shape == (10, 3) and (res.samples["u"] < 4).all()
    assert res.samples["m"] is batch["m"] and res.samples["x"] is batch["x"]
    res = sample_joint(joint, net, batch=10, steps={"x": 4, "m": 3, "u": 5}, generator=gen(2))
    assert res.nfe == 5 and (res.samples["m"] < 5).all() and res.samples["x"].dtype == torch.float32
    # guidance from two given modalities at once: both re-noised to σ in the weak call
    spy.calls.clear()
    res = sample_joint(
        joint,
        spy,
        given={"m": batch["m"], "x": batch["x"]},
        steps={"u": 4},
        generator=gen(3),
        guidance=NoisyGuidance(omega=2.0, sigma=0.5),
    )
    # calls at t = 1, .75, .5, .25; t = 1 is not strictly inside (0, 1), the other three are guided
    assert res.nfe == len(spy.calls) == 4 + 3
    weak = [ts for _, ts in spy.calls if ts["x"][0] > 0]
    assert len(weak) == 3 and all((ts["x"] == 0.5).all() and (ts["m"] == 0.5).all() for ts in weak)
