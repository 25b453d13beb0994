"""The one sampling layer: per-modality step methods, per-example given masks, NFE, devices, no autograd.

Reference loops written out here (independent of :mod:`diffuse_edu.sampling`) pin the joint sampler's iteration,
Heun pairing, final denoise and cache; the exact labelled-mixture denoiser pins the conditionals of a mixed batch.
"""

from __future__ import annotations

import math

import pytest
import torch
from fixtures.tiny_discrete import MaskedOracle, make_tiny_distribution
from torch import nn

from diffuse_edu.categorical import estimate_nelbo
from diffuse_edu.data.labeled_mixture import default_labeled_mixture
from diffuse_edu.gaussian import GaussianProcess
from diffuse_edu.grids import make_grid
from diffuse_edu.guidance import NoisyGuidance
from diffuse_edu.joint import JointProcess, SingleModality
from diffuse_edu.masked import MaskedProcess
from diffuse_edu.sampling import (
    count_nfe,
    sample,
    sample_iter,
    sample_joint,
    sample_joint_iter,
    sample_masked,
    sample_uniform,
)
from diffuse_edu.schedules import ScheduleCosine, ScheduleSDScaledLinear
from diffuse_edu.uniform import UniformProcess

K = 8


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Counting(nn.Module):
    """Wraps a joint net and counts its calls."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, xs, ts):
        self.calls += 1
        return self.net(xs, ts)


class PixelCharNet(nn.Module):
    """A tiny joint net over an image (B, 3, 4, 4) and a caption (B, 5) of V = 6 tokens (mask id 6)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.img = nn.Linear(48 + 2, 48)
        self.tok = nn.Embedding(7, 8)
        self.cap = nn.Linear(8 * 5 + 48 + 2, 5 * 6)

    def forward(self, xs, ts):
        x, c = xs["image"], xs["caption"]
        tt = torch.stack([ts["image"], ts["caption"]], 1).to(x.dtype)
        ctx = self.tok(c).flatten(1)
        img = self.img(torch.cat([x.flatten(1) + ctx.mean(1, keepdim=True), tt], 1)).reshape(x.shape)
        cap = self.cap(torch.cat([ctx, x.flatten(1), tt], 1)).reshape(c.shape[0], 5, 6)
        return {"image": img, "caption": cap}


def text_image_joint():
    return JointProcess(
        {"image": GaussianProcess(ScheduleSDScaledLinear(), prediction="eps"), "caption": MaskedProcess(6)},
        event_shapes={"image": (3, 4, 4), "caption": (5,)},
    )


OFFICIAL = dict(
    steps=50,
    grids={"image": "official", "caption": "official"},
    methods={"image": "ode-heun", "caption": "tau-leaping"},
    guidance=NoisyGuidance(omega=3.0, sigma=1.0, left=0.3, right=0.8),
)


# -- the official text–image setting: 149 network calls ---------------------------------------------------------------


def test_official_text_image_setting_costs_149_calls():
    """50 official-grid steps, Heun on pixels, tau-leaping on characters, ω ≠ 1 on (0.3, 0.8): 149 calls."""
    joint, net = text_image_joint(), Counting(PixelCharNet().eval())
    captions = torch.randint(0, 6, (4, 5), generator=gen(0))
    res = sample_joint(joint, net, given={"caption": captions}, generator=gen(1), **OFFICIAL)  # text → image
    assert res.nfe == net.calls == 149
    assert res.guided_steps == 25
    assert torch.equal(res.samples["caption"], captions)
    assert count_nfe(joint, ["image"], **OFFICIAL) == 149
    # A mixed batch: half the rows caption → image, half joint; both modalities move (tau-leaping runs), 149 again.
    net.calls = 0
    rows = torch.tensor([True, True, False, False])
    res = sample_joint(
        joint, net, given={"caption": captions}, given_mask={"caption": rows}, generator=gen(2), **OFFICIAL
    )
    assert res.nfe == net.calls == 149
    assert torch.equal(res.samples["caption"][:2], captions[:2]) and (res.samples["caption"][2:] < 6).all()
    # without guidance: 50 first evaluations + 49 Heun corrections (none on the final denoise)
    net.calls = 0
    plain = {**OFFICIAL, "guidance": None}
    res = sample_joint(joint, net, batch=4, generator=gen(3), **plain)
    assert res.nfe == net.calls == 99 == count_nfe(joint, **plain)


# -- single modality: the joint sampler against loops written out here ----------------------------------------------


class VecNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.f = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 2))

    def forward(self, x, t):
        return self.f(torch.cat([x, t[:, None]], 1))


def reference_gaussian(model, proc, n, steps, method, generator):
    """The textbook loop: step times in float64, Heun = Euler predictor + trapezoid, x̂₀ on the step into 0."""
    grid = make_grid("uniform", steps)
    x = proc.prior((n, 2), generator=generator)
    calls = 0
    for i in range(steps):
        t, s = grid[i].item(), grid[i + 1].item()
        t64, s64 = torch.full((n,), t, dtype=torch.float64), torch.full((n,), s, dtype=torch.float64)
        out = model(x, torch.full((n,), t))
        calls += 1
        if s == 0.0:
            x = proc.denoise(x, t64, out)
        elif method == "ode-heun":
            x_pred = proc.predict(x, t64, s64, out)
            out_s = model(x_pred, torch.full((n,), s))
            calls += 1
            x = proc.correct(x, x_pred, t64, s64, out, out_s)
        else:
            x = proc.step(x, t64, s64, out, generator=generator, method=method)
    return x, calls


@pytest.mark.parametrize("method", ["ddpm", "euler-maruyama", "ode-euler", "ode-heun"])
def test_gaussian_methods_match_the_reference_loop(method):
    proc, net = GaussianProcess(ScheduleCosine(alpha_end=1e-3)), VecNet().eval()
    with torch.no_grad():
        want, calls = reference_gaussian(net, proc, 64, 10, method, gen(5))
    joint = JointProcess({"x": proc})
    got = sample_joint(joint, SingleModality(net), 64, shapes={"x": (2,)}, steps=10, methods={"x": method},
                       generator=gen(5))  # fmt: skip
    assert torch.equal(got.samples["x"], want) and got.nfe == calls
    wrapped = sample(net, proc, (64, 2), steps=10, method=method, generator=gen(5))
    assert torch.equal(wrapped.samples, want) and wrapped.nfe == calls
    states = list(sample_iter(net, proc, (64, 2), steps=10, method=method, generator=gen(5)))
    assert torch.equal(states[-1].x, want) and [s.step for s in states] == list(range(1, 11))


def reference_masked(model, proc, n, length, steps, method, cache, generator):
    """Reveal each masked token w.p. r_k (the method's formula), decode the rest at the end; optional cache."""
    grid = make_grid("official", steps)
    x = torch.full((n, length), proc.mask_id)
    out, calls, changed = None, 0, True
    for k in range(steps):
        t, s = grid[k].item(), grid[k + 1].item()
        if out is None or changed or not cache:
            out = model(x, torch.full((n,), t))
            calls += 1
        if k == steps - 1:
            new = proc.denoise(x, torch.full((n,), t), out, generator=generator, mode="sample")
        else:
            r = proc.reveal_probability(torch.full((n,), t, dtype=torch.float64),
                                        torch.full((n,), s, dtype=torch.float64), method)  # fmt: skip
            new = proc.reveal(x, out, r, generator)
        changed, x = not torch.equal(new, x), new
    return x, calls


@pytest.mark.parametrize("method", ["ancestral", "tau-leaping", "euler"])
def test_masked_methods_and_cache_match_the_reference_loop(method):
    dist = make_tiny_distribution()
    proc, oracle = MaskedProcess(dist.vocab_size, ScheduleCosine()), MaskedOracle(dist)
    L = dist.length
    want, calls = reference_masked(oracle, proc, 300, L, 30, method, False, gen(6))
    got = sample_masked(oracle, proc, (300, L), 30, method=method, cache=False, generator=gen(6))
    assert torch.equal(got.samples, want) and got.nfe == calls == 30
    # The cache: the exact masked denoiser ignores t, so reusing its output is exact — same samples, fewer calls
    # (a small batch over many steps, so that many steps reveal nothing).
    plain, _ = reference_masked(oracle, proc, 4, L, 60, method, False, gen(7))
    want_c, calls_c = reference_masked(oracle, proc, 4, L, 60, method, True, gen(7))
    got_c = sample_masked(oracle, proc, (4, L), 60, method=method, cache=True, generator=gen(7))
    assert torch.equal(got_c.samples, plain) and torch.equal(want_c, plain)
    assert got_c.nfe == calls_c < 30


def test_uniform_sampler_through_the_joint_sampler():
    proc = UniformProcess(5)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Embedding(5, 5))
    model = lambda x, t: net(x) * t[:, None, None]  # noqa: E731
    res = sample_uniform(model, proc, (16, 3), 6, generator=gen(0))
    joint = JointProcess({"x": proc})
    got = sample_joint(joint, SingleModality(model), 16, shapes={"x": (3,)}, steps=6, final={"x": "sample"},
                       generator=gen(0))  # fmt: skip
    assert torch.equal(res.samples, got.samples["x"]) and res.nfe == 6 and res.samples.max() < 5


# -- per-example given masks ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy():
    mix = default_labeled_mixture()
    joint = JointProcess(
        {"point": GaussianProcess(step_method="euler-maruyama"), "label": MaskedProcess(K)},
        event_shapes={"point": (2,), "label": (1,)},
    )
    return mix, joint, mix.exact_joint_model(joint["point"], mask_id=K)


def test_all_or_nothing_mask_reproduces_given(toy):
    mix, joint, oracle = toy
    pts, labels = mix.sample(64, gen(0))
    for name, value in (("label", labels[:, None]), ("point", pts)):
        plain = sample_joint(joint, oracle, given={name: value}, steps=8, generator=gen(1))
        for mask in (torch.ones(64, dtype=torch.bool), torch.ones_like(value, dtype=torch.bool)):
            masked = sample_joint(joint, oracle, given={name: value}, given_mask={name: mask}, steps=8,
                                  generator=gen(1))  # fmt: skip
            for k in plain.samples:
                assert torch.equal(plain.samples[k], masked.samples[k])
            assert plain.nfe == masked.nfe == 8
    # an all-False mask is no condition at all: the unconditional result
    free = sample_joint(joint, oracle, 64, steps=8, generator=gen(2))
    none = sample_joint(joint, oracle, given={"label": labels[:, None]},
                        given_mask={"label": torch.zeros(64, dtype=torch.bool)}, steps=8, generator=gen(2))  # fmt: skip
    assert all(torch.equal(free.samples[k], none.samples[k]) for k in free.samples)


def test_given_entries_are_returned_bit_identically():
    """Per-element masks on a Gaussian and a masked modality: every given entry comes back unchanged."""
    joint, net = text_image_joint(), PixelCharNet().eval()
    images = torch.randn(6, 3, 4, 4, generator=gen(0))
    captions = torch.randint(0, 6, (6, 5), generator=gen(1))
    img_mask = torch.rand(6, 3, 4, 4, generator=gen(2)) < 0.5  # inpainting: half the pixels
    cap_mask = torch.rand(6, 5, generator=gen(3)) < 0.4  # infilling: some characters
    cap_mask[0] = True  # row 0: the whole caption given (image from text, partly)
    res = sample_joint(
        joint, net, given={"image": images, "caption": captions}, given_mask={"image": img_mask, "caption": cap_mask},
        steps=7, methods={"image": "ode-heun", "caption": "tau-leaping"}, generator=gen(4),
        guidance=NoisyGuidance(omega=2.0, left=0.2, right=0.9),
    )  # fmt: skip
    assert torch.equal(res.samples["image"][img_mask], images[img_mask])
    assert torch.equal(res.samples["caption"][cap_mask], captions[cap_mask])
    assert (res.samples["caption"] < 6).all() and torch.isfinite(res.samples["image"]).all()
    assert not torch.equal(res.samples["image"][~img_mask], images[~img_mask])


def test_mixed_batch_matches_the_exact_conditionals(toy):
    """Rows 0–1999 label → point, 2000–3999 point → label, 4000–5999 joint, in one call of the exact denoiser."""
    mix, joint, oracle = toy
    n = 2000
    pts, labels = mix.sample(3 * n, gen(0))
    labels[:n] = 7
    given = {"point": pts, "label": labels[:, None]}
    rows = torch.arange(3 * n)
    mask = {"label": rows < n, "point": (rows >= n) & (rows < 2 * n)}
    res = sample_joint(joint, oracle, given=given, given_mask=mask, steps=40, final={"label": "sample"},
                       generator=gen(1))  # fmt: skip
    out_pts, out_lab = res.samples["point"], res.samples["label"][:, 0]
    assert torch.equal(out_pts[n : 2 * n], pts[n : 2 * n]) and torch.equal(out_lab[:n], labels[:n])
    # label → point: share of points in label 7's Bayes region vs the exact share (5 s.e. + 0.01 for 40 SDE steps)
    share, exact = mix.region_share(out_pts[:n], out_lab[:n]), mix.exact_region_share(7)
    assert abs(share - exact) < 5 * math.sqrt(exact * (1 - exact) / n) + 0.01
    # point → label: a draw from the exact posterior hits the generating label w.p. E[p(y | x)], computed exactly
    post = mix.bayes_posterior(pts[n : 2 * n])  # (n, K)
    p_true = post.gather(1, labels[n : 2 * n, None])[:, 0].double()
    hits = (out_lab[n : 2 * n] == labels[n : 2 * n]).double()
    assert abs(hits.mean() - p_true.mean()) < 5 * (p_true * (1 - p_true)).sum().sqrt() / n
    # joint: the label marginal is the mixture weights, and points fall in their label's region at the Bayes rate
    counts = torch.bincount(out_lab[2 * n :], minlength=K).double() / n
    tv = 0.5 * (counts - mix.weights).abs().sum().item()
    assert tv < 0.5 * math.sqrt((K - 1) / n) + math.sqrt(math.log(1e6) / (2 * n))
    share_j = mix.region_share(out_pts[2 * n :], out_lab[2 * n :])
    assert abs(share_j - mix.exact_region_share()) < 5 * math.sqrt(0.25 / n) + 0.01


def test_bad_masks_are_refused(toy):
    mix, joint, oracle = toy
    pts, labels = mix.sample(4, gen(0))
    with pytest.raises(TypeError, match=r"given_mask\['label'\] must be a bool tensor"):
        sample_joint(joint, oracle, given={"label": labels[:, None]}, given_mask={"label": torch.ones(4)})
    with pytest.raises(ValueError, match=r"given_mask\['point'\] has shape \(3,\)"):
        sample_joint(joint, oracle, given={"point": pts}, given_mask={"point": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"given_mask names modality\(ies\) \['point'\] with no values"):
        sample_joint(joint, oracle, given={"label": labels[:, None]},
                     given_mask={"point": torch.ones(4, dtype=torch.bool)})  # fmt: skip
    with pytest.raises(ValueError, match="every modality is given everywhere"):
        sample_joint(joint, oracle, given={"label": labels[:, None], "point": pts})


# -- NFE bookkeeping --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("align", ["start", "end"])
def test_count_nfe_matches_the_sampler(align):
    joint, net = text_image_joint(), Counting(PixelCharNet().eval())
    captions = torch.randint(0, 6, (3, 5), generator=gen(0))
    plans = [
        dict(steps={"image": 7, "caption": 4}, methods={"image": "ode-heun"}),
        dict(
            steps={"image": 3, "caption": 9},
            methods={"image": "ode-heun", "caption": "euler"},
            guidance=NoisyGuidance(2.0, left=0.1, right=0.7),
        ),  # fmt: skip
        dict(steps=5, grids={"image": "edm"}, methods={"image": "ddpm"}),
    ]
    for plan in plans:
        net.calls = 0
        given = {"caption": captions} if plan.get("guidance") else None
        mask = {"caption": torch.tensor([True, False, True])} if given else None
        res = sample_joint(joint, net, 3, given=given, given_mask=mask, align=align, generator=gen(1), **plan)
        assert res.nfe == net.calls == count_nfe(joint, align=align, has_condition=bool(given), **plan)


# -- no autograd graphs; the device follows the model ----------------------------------------------------------------


def test_no_sampler_output_requires_grad(toy):
    mix, joint, _ = toy
    from diffuse_edu.nets.joint_mlp import JointMLP

    net = JointMLP(hidden=16, depth=1, time_dim=8, token_dim=4)  # parameters require grad
    assert all(p.requires_grad for p in net.parameters())
    _, labels = mix.sample(8, gen(0))
    states = list(sample_joint_iter(joint, net, given={"label": labels[:, None]}, steps=5,
                                    guidance=NoisyGuidance(2.0), generator=gen(1)))  # fmt: skip
    for st in states:
        assert not any(v.requires_grad for v in list(st.xs.values()) + list(st.outputs.values()))
    res = sample_joint(joint, net, 8, steps=4, generator=gen(2), return_trajectory=True)
    assert not any(v.requires_grad for d in res.trajectory for v in d.values())
    vec = VecNet()
    assert not sample(vec, GaussianProcess(), (4, 2), steps=3, method="ode-heun").samples.requires_grad
    assert not any(s.x.requires_grad or s.x0_hat.requires_grad for s in sample_iter(vec, GaussianProcess(), (4, 2), 3))


class MetaRecorder(nn.Module):
    """A joint net whose parameters live on the ``meta`` device (no data, no memory) and that records the device of
    every input. Any tensor a sampler builds on the CPU instead of the model's device would either reach the net (and
    be recorded) or meet a meta tensor in an operation (and raise). This is how the CPU tests catch device
    mismatches that would break on a GPU."""

    def __init__(self, out_shapes: dict):
        super().__init__()
        self.w = nn.Parameter(torch.empty(3, device="meta"))
        self.out_shapes, self.devices = out_shapes, set()

    def forward(self, xs, ts):
        for v in list(xs.values()) + list(ts.values()):
            self.devices.add(v.device.type)
        b = next(iter(xs.values())).shape[0]
        return {n: torch.zeros(b, *s, device=self.w.device) for n, s in self.out_shapes.items()}


def test_samplers_build_everything_on_the_models_device():
    joint = text_image_joint()
    net = MetaRecorder({"image": (3, 4, 4), "caption": (5, 6)})
    captions = torch.randint(0, 6, (4, 5), generator=gen(0))  # a CPU condition is moved to the model's device
    res = sample_joint(joint, net, given={"caption": captions}, given_mask={"caption": torch.tensor([1, 0, 1, 0]) > 0},
                       generator=gen(1), **{**OFFICIAL, "steps": 6})  # fmt: skip
    assert net.devices == {"meta"} and all(v.device.type == "meta" for v in res.samples.values())
    single = MetaRecorder({"x": (2,)})
    res = sample(lambda x, t: single({"x": x}, {"x": t})["x"], GaussianProcess(), (4, 2), steps=3, device="meta",
                 method="ode-heun", generator=gen(2))  # fmt: skip
    assert single.devices == {"meta"} and res.samples.device.type == "meta"

    class TokenMeta(nn.Module):
        def __init__(self, v):
            super().__init__()
            self.inner, self.v = MetaRecorder({"x": (3, v)}), v

        def forward(self, x, t):
            return self.inner({"x": x}, {"x": t})["x"]

    for proc, fn in ((MaskedProcess(4), sample_masked), (UniformProcess(4), sample_uniform)):
        model = TokenMeta(4)
        kwargs = {"cache": False} if fn is sample_masked else {}
        res = fn(model, proc, (5, 3), 4, generator=gen(3), **kwargs)
        assert model.inner.devices == {"meta"} and res.samples.device.type == "meta"
    # a metric that calls a model: the NELBO estimate runs on the model's device
    model = TokenMeta(4)
    est, se = estimate_nelbo(MaskedProcess(4), model, torch.randint(0, 4, (5, 3)), n_samples=2, generator=gen(4))
    assert model.inner.devices == {"meta"} and est.device.type == "meta"


def test_a_wrong_output_shape_is_refused_at_the_first_call():
    joint = text_image_joint()
    bad = MetaRecorder({"image": (3, 4, 4), "caption": (5, 7)})  # one logit too many
    with pytest.raises(ValueError, match=r"network output\['caption'\] has shape \(2, 5, 7\).*\(2, 5, 6\)"):
        sample_joint(joint, bad, 2, steps=3)
    with pytest.raises(ValueError, match=r"has shape \(4, 1\).*needs network outputs of shape \(4, 2\)"):
        sample(lambda x, t: x[:, :1], GaussianProcess(), (4, 2), steps=3, method="ode-heun")
    with pytest.raises(ValueError, match="NaN or infinite"):
        sample(lambda x, t: x * float("nan"), GaussianProcess(), (4, 2), steps=3)
