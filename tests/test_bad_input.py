"""Regression tests for issue 11 ("no silent wrong results"): every example of the issue, and every bug the fuzz suite
(tests/test_fuzz.py) found. Each test names the old behaviour it pins down."""

from __future__ import annotations

import math

import pytest
import torch

from diffuse_edu.cache import config_key
from diffuse_edu.categorical import draw_categorical, nats_to_bits_per_token
from diffuse_edu.clocks import Decoupled, Unified
from diffuse_edu.config import get_device, seed_everything
from diffuse_edu.data.digits import from_pixels, load_digits_images, to_pixels
from diffuse_edu.data.labeled_mixture import default_labeled_mixture
from diffuse_edu.data.toys import GaussianMixture, ring_mixture, two_moons
from diffuse_edu.gaussian import GaussianProcess
from diffuse_edu.grids import edm_grid, make_grid
from diffuse_edu.guidance import NoisyGuidance
from diffuse_edu.joint import JointProcess, SingleModality
from diffuse_edu.masked import MaskedProcess
from diffuse_edu.metrics.distances import mmd_rbf, noise_floor, sliced_wasserstein
from diffuse_edu.nets.embeddings import TimeEmbedding
from diffuse_edu.nets.joint_mlp import JointMLP
from diffuse_edu.nets.mlp import TimeMLP
from diffuse_edu.nets.transformer import CausalTransformer
from diffuse_edu.nets.unet import UNet
from diffuse_edu.sampling import count_nfe, sample, sample_joint, sample_masked, simultaneous_reveal_probability
from diffuse_edu.schedules import (
    ScheduleCosine,
    ScheduleLogLinear,
    ScheduleSDScaledLinear,
    ScheduleVPLinear,
    get_schedule,
)
from diffuse_edu.uniform import UniformProcess

K = 4


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def toy_joint() -> JointProcess:
    return JointProcess(
        {"point": GaussianProcess(), "label": MaskedProcess(K)}, event_shapes={"point": (2,), "label": (1,)}
    )


def toy_net(point_width: int = 2, weak_point_width: int | None = None):
    """A joint net over point (B, 2) and label (B, 1); ``weak_point_width`` changes the head on re-noised calls only."""

    def net(xs, ts):
        B = xs["point"].shape[0]
        renoised = bool((ts["label"] > 0).any()) if weak_point_width is not None else False
        width = weak_point_width if renoised else point_width
        return {"point": torch.zeros(B, width), "label": torch.zeros(B, 1, K)}

    return net


# ---------------------------------------------------------------------------------------------------------------------
# The examples of the issue
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ode-heun", "ddpm", "ode-euler"])
def test_wrong_head_width_is_refused_by_the_gaussian_sampler(method):
    # Was: a (B, 1) head for (B, 2) data broadcast silently on the Heun path and in the final denoise.
    with pytest.raises(ValueError, match=r"needs network outputs of shape \(3, 2\)"):
        sample(lambda x, t: torch.zeros(x.shape[0], 1), GaussianProcess(), (3, 2), steps=3, method=method)


def test_wrong_head_width_is_refused_by_the_joint_sampler():
    with pytest.raises(ValueError, match=r"network output\['point'\].*shape \(2, 1\)"):
        sample_joint(toy_joint(), toy_net(point_width=1), 2, steps=2, methods={"point": "ode-heun"})


def test_wrong_head_on_the_guidance_weak_call_is_refused():
    # New: the weak (re-noised) call of guidance is checked at its first call too.
    labels = torch.zeros(2, 1, dtype=torch.long)
    with pytest.raises(ValueError, match=r"guidance, weak call.*shape \(2, 1\)"):
        sample_joint(
            toy_joint(), toy_net(weak_point_width=1), given={"label": labels}, steps=3, guidance=NoisyGuidance(2.0)
        )


@pytest.mark.parametrize("steps", [2, 3, 6, 50])
def test_edm_grid_from_the_default_cosine_is_refused(steps):
    # Was: [1, 1, 1, 1, 1, 1e-4, 0] (not decreasing); with 2-3 steps a degenerate first step of ~1e-16.
    with pytest.raises(ValueError, match="t_max < 1"):
        edm_grid(steps, schedule=ScheduleCosine())
    grid = edm_grid(steps, schedule=ScheduleCosine(), t_max=0.99)
    assert (grid[1:] < grid[:-1]).all()


def test_guidance_renoising_is_fresh_per_call_and_repeatable_per_seed():
    seen = []

    def net(xs, ts):
        if bool((ts["label"] > 0).any()):  # the weak call: the label is re-noised
            seen.append(xs["label"].clone())
        B = xs["point"].shape[0]
        return {"point": torch.zeros(B, 2), "label": torch.zeros(B, 1, K)}

    labels = torch.arange(64).remainder(K)[:, None]
    kw = dict(given={"label": labels}, steps=2, guidance=NoisyGuidance(2.0, sigma=0.5))
    g = gen(0)
    sample_joint(toy_joint(), net, generator=g, **kw)
    first = seen[0]
    sample_joint(toy_joint(), net, generator=g, **kw)
    assert not torch.equal(first, seen[-1]), "two calls with one generator must re-noise independently"
    seen.clear()
    sample_joint(toy_joint(), net, generator=gen(0), **kw)
    assert torch.equal(first, seen[0]), "equal seeds must give equal re-noising"


def test_out_of_range_label_reaches_no_embedding():
    net = JointMLP({"point": 2}, {"label": (1, K)}, hidden=8, depth=1, time_dim=8, token_dim=4)
    xs, ts = {"point": torch.zeros(2, 2), "label": torch.tensor([[1], [K + 1]])}, {"point": 0.5, "label": 0.5}
    with pytest.raises(ValueError, match=r"xs\['label'\] holds token ids in \[1, 5\]; expected ids in \[0, 5\)"):
        net(xs, ts)
    xs["label"] = torch.tensor([[1], [K]])  # the mask id is a valid input
    assert net(xs, ts)["label"].shape == (2, 1, K)


def test_a_missing_modality_is_named():
    net = JointMLP({"point": 2}, {"label": (1, K)}, hidden=8, depth=1, time_dim=8, token_dim=4)
    with pytest.raises(ValueError, match=r"missing \['label'\]"):
        net({"point": torch.zeros(2, 2)}, {"point": 0.5, "label": 0.5})
    with pytest.raises(ValueError, match="'x'"):
        SingleModality(lambda x, t: x, "x")({"y": torch.zeros(2)}, {"x": torch.zeros(2)})
    exact = default_labeled_mixture().exact_joint_model(GaussianProcess(), 8)
    with pytest.raises(ValueError, match="'label'"):
        exact({"point": torch.zeros(2, 2)}, {"point": torch.zeros(2), "label": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"missing modality\(ies\) \['label'\]"):
        toy_joint().validate({"point": torch.zeros(2, 2)})


def test_draw_categorical_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        draw_categorical(torch.tensor([[float("nan"), 1.0]]))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ScheduleVPLinear(beta_min=5.0, beta_max=1.0), "beta_min <= beta_max"),
        (lambda: ScheduleVPLinear(beta_min=-0.1), r"beta_min must lie in \[0.0"),
        (lambda: ScheduleVPLinear(0.0, 0.0), "beta_max must lie in"),  # α ≡ 1: no noise at all
        (lambda: ScheduleVPLinear(beta_max=float("nan")), "beta_max must be finite"),
        (lambda: ScheduleSDScaledLinear(beta_start=0.0), "beta_start must lie in"),
        (lambda: ScheduleSDScaledLinear(beta_end=1.5), "beta_end must lie in"),
        (lambda: ScheduleSDScaledLinear(num_train_steps=0), "num_train_steps must be an int >= 1"),
        (lambda: ScheduleSDScaledLinear(num_train_steps=2.5), "num_train_steps must be an int"),
        (lambda: ScheduleCosine(s=-0.01), r"s must lie in \[0.0"),
        (lambda: ScheduleCosine(s=float("nan")), "s must be finite"),
        (lambda: ScheduleCosine(s=1e300), "too large"),
        (lambda: ScheduleCosine(s=True), "s must be a number"),
        (lambda: ScheduleCosine(alpha_end=1.0), "alpha_end must lie in"),
        (lambda: ScheduleLogLinear(eps=1.0), "eps must lie in"),
        (lambda: get_schedule("cosine", beta_max=3.0), r"ScheduleCosine has no parameter\(s\) \['beta_max'\]"),
        (lambda: get_schedule("cosin"), "unknown schedule 'cosin'"),
        (lambda: get_schedule(["cosine"]), "must be a Schedule or one of"),
        (lambda: get_schedule(ScheduleCosine(), s=0.1), "pass one"),  # was: kwargs silently ignored
    ],
)
def test_schedule_parameters_are_checked(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


# ---------------------------------------------------------------------------------------------------------------------
# Bugs the fuzz suite found: schedules, grids, processes
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [True, torch.tensor([True, False]), torch.zeros(2, dtype=torch.complex64)])
def test_schedules_refuse_bool_and_complex_times(t):
    # Was: bools read as 0/1, complex times silently cast to real.
    with pytest.raises(TypeError, match="t must"):
        ScheduleVPLinear().alpha(t)


def test_beta_is_never_nan_where_alpha_underflows():
    # Was: β = −2α'/α = 0/0 = NaN where α(t) underflows (float32, large beta_max).
    t = torch.tensor([0.0, 0.7, 1.0])
    beta = ScheduleVPLinear(0.1, 2000.0).beta(t)
    torch.testing.assert_close(beta, 0.1 + t * (2000.0 - 0.1))
    assert not ScheduleLogLinear(0.0).beta(t).isnan().any()  # +inf at α(1) = 0, documented


def test_grids_refuse_what_they_used_to_ignore():
    with pytest.raises(ValueError, match="official' grid always ends at t = 0"):
        make_grid("official", 5, t_min=0.2)  # was: t_min silently ignored
    with pytest.raises(TypeError, match="real times"):
        make_grid(torch.tensor([1.0, 0.0], dtype=torch.complex64), None)
    with pytest.raises(TypeError, match="nsr_min must be a number"):
        edm_grid(3, nsr_min="0.002")
    grid = edm_grid(5, schedule=ScheduleSDScaledLinear(), t_max=0.96, t_min=1e-250)  # σ/α(t_min) underflows to 0
    assert grid[-1].item() == 1e-250 and (grid[1:] < grid[:-1]).all()  # was: refused


@pytest.mark.parametrize("event", [(), (2,)])
def test_empty_batches_work_in_the_elementwise_methods(event):
    proc = GaussianProcess()
    x = torch.zeros(0, *event)
    assert proc.corrupt(x, 0.5).shape == x.shape
    assert proc.loss(x, x, x, 0.5).shape == (0,)  # was: IndexError / reshape error
    assert proc.prior((0, *event)).shape == x.shape
    for cat in (MaskedProcess(3), UniformProcess(3)):
        ids = torch.zeros(0, 2, dtype=torch.long)
        assert cat.loss(torch.zeros(0, 2, 3), ids, ids, 0.5).shape == (0,)
        assert cat.prior_kl(ids).shape == (0,)  # was: IndexError


def test_gaussian_loss_on_scalar_data():
    # Was: IndexError for data of shape (B,) (event shape ()).
    proc = GaussianProcess()
    x0 = torch.randn(5)
    assert proc.loss(torch.zeros(5), x0, x0, 0.5).shape == (5,)
    assert torch.isfinite(proc.training_loss(lambda x, t: torch.zeros_like(x), x0, gen()))


def test_training_losses_refuse_empty_batches():
    with pytest.raises(ValueError, match="empty batch"):
        GaussianProcess().training_loss(lambda x, t: x, torch.zeros(0, 2))
    with pytest.raises(ValueError, match="empty batch"):
        MaskedProcess(3).loss_fn()(lambda x, t: torch.zeros(*x.shape, 3), torch.zeros(0, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="empty batch"):
        CausalTransformer(4, 6, width=8, depth=1, heads=2).loss(torch.zeros(0, 3, dtype=torch.long))  # was: NaN


@pytest.mark.parametrize("bad", [0, "seed", 1.5])
def test_generators_of_the_wrong_type(bad):
    # Was: AttributeError ("'int' object has no attribute 'device'") from deep inside the draws.
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        GaussianProcess().corrupt(torch.zeros(2, 2), 0.5, generator=bad)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        draw_categorical(torch.ones(2, 3), generator=bad)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        MaskedProcess(3).prior((2, 2), generator=bad)  # unused by the masked prior, still a mistake


def test_malformed_devices():
    with pytest.raises(ValueError, match="'nodevice' is not a device"):
        GaussianProcess().prior((2, 2), device="nodevice")
    with pytest.raises(ValueError, match="is not a device"):
        Decoupled()(("a",), 2, device="nodevice")
    with pytest.raises(ValueError, match="is not a device"):
        get_device("nodevice")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA device"):
            GaussianProcess().sample_times(2, device="cuda:3")


def test_ddpm_step_at_tiny_and_zero_times():
    # Was: σ_t² floored at 1e-8, so from t = 1e-9 the mean was 1% of x̂₀, and t = s = 0 returned zeros.
    proc = GaussianProcess(prediction="x0", step_method="ddpm")
    x_t, x0 = torch.full((2, 2), 0.3), torch.full((2, 2), 0.7)
    torch.testing.assert_close(proc.step(x_t, 1e-9, 0.0, x0, generator=gen()), x0)
    torch.testing.assert_close(proc.step(x_t, 0.0, 0.0, x0, generator=gen()), x_t)


def test_weighting_callable_is_checked_at_the_door():
    proc = GaussianProcess(weighting=lambda t: torch.ones(3))
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="weighting callable"):
        proc.loss(x, x, x, 0.5)
    proc = GaussianProcess(weighting=lambda t: t * float("nan"))
    with pytest.raises(ValueError, match="weighting callable"):
        proc.training_loss(lambda x, t: x, x)


def test_gaussian_process_takes_schedule_names():
    assert isinstance(GaussianProcess("cosine").schedule, ScheduleCosine)  # was: TypeError (categorical accepted)


def test_posterior_probs_checks_x0_probs():
    proc = MaskedProcess(3)
    x_t = torch.full((2, 2), 3)
    with pytest.raises(ValueError, match="must sum to 1"):
        proc.posterior_probs(x_t, torch.ones(2, 2, 3), 0.5, 0.2)  # was: unnormalised weights used as they were
    with pytest.raises(ValueError, match="shape of x_t"):
        proc.posterior_probs(x_t, torch.zeros(2, 1, dtype=torch.long), 0.5, 0.2)  # was: broadcast silently
    with pytest.raises(ValueError, match=">= 0"):
        negative = torch.tensor([1.2, -0.2, 0.0]).expand(2, 2, 3)
        UniformProcess(3).posterior_probs(torch.zeros(2, 2, dtype=torch.long), negative, 0.5, 0.2)


def test_rates_and_reveal_probabilities_check_times():
    proc = MaskedProcess(3)
    with pytest.raises(ValueError, match="NaN"):
        proc.unmask_rate(torch.tensor([0.5, float("nan")]))  # was: NaN out
    with pytest.raises(ValueError, match="s <= t"):
        proc.reveal_probability(0.2, 0.5)
    with pytest.raises(ValueError, match="finite"):
        nats_to_bits_per_token(float("nan"), 3)


def test_uniform_elbo_is_finite_at_the_ends_of_the_clock():
    # Was: NaN at t = 1 when α(1) = 0 (∞ · 0), and at t = 0 in float32 for the cosine schedule (α rounds to 1).
    for proc, t in (
        (UniformProcess(2, ScheduleLogLinear(0.0)), 1.0),
        (UniformProcess(2, "cosine", compute_dtype=torch.float32), 0.0),
    ):
        x0 = torch.tensor([[0], [1]])
        x_t = torch.tensor([[1], [1]])
        out = proc.elbo_terms(torch.randn(2, 1, 2), x0, x_t, t)
        assert torch.isfinite(out).all() and (out >= 0).all()


# ---------------------------------------------------------------------------------------------------------------------
# Joint process, clocks, samplers
# ---------------------------------------------------------------------------------------------------------------------


def test_joint_event_shapes_and_prior_names():
    procs = {"point": GaussianProcess(), "label": MaskedProcess(K)}
    with pytest.raises(ValueError, match="positive ints"):
        JointProcess(procs, event_shapes={"point": (2.5,), "label": (1,)})  # was: silently truncated to 2
    with pytest.raises(TypeError, match="tuple of positive ints"):
        JointProcess(procs, event_shapes={"point": 2, "label": (1,)})  # was: 'int' object is not iterable
    joint = toy_joint()
    with pytest.raises(TypeError, match="list or tuple of modality names"):
        joint.prior(None, 2, names="point")  # was: substring matching
    with pytest.raises(ValueError, match="unknown modality"):
        joint.prior(None, 2, names=["pt"])  # was: {} silently
    with pytest.raises(ValueError, match="batch must be an int >= 0"):
        joint.prior(None, -1)


def test_joint_loss_terms_compare_x0_and_xt_shapes():
    joint = JointProcess({"point": GaussianProcess(), "label": MaskedProcess(K)})  # no event_shapes
    x0s = {"point": torch.zeros(2, 2), "label": torch.zeros(2, 1, dtype=torch.long)}
    xts = {"point": torch.zeros(2, 3), "label": torch.zeros(2, 1, dtype=torch.long)}
    outs = {"point": torch.zeros(2, 3), "label": torch.zeros(2, 1, K)}
    with pytest.raises(ValueError, match=r"x0s\['point'\] and xts\['point'\] must have the same shape"):
        joint.loss_terms(outs, x0s, xts, {"point": 0.5, "label": 0.5})


def test_mixture_clock_probs():
    from diffuse_edu.clocks import Mixture

    with pytest.raises(TypeError, match="probs must be a sequence"):
        Mixture([Unified(), Decoupled()], 0.5)  # was: 'float' object is not iterable
    with pytest.raises(ValueError, match="summing to 1"):
        Mixture([Unified(), Decoupled()], [0.7, 0.7])


@pytest.mark.parametrize("names", ["point", ("a", "a"), ()])
def test_clock_names(names):
    # Was: "point" gave five modalities p, o, i, n, t; duplicates collapsed; () gave {}.
    with pytest.raises((TypeError, ValueError), match="names"):
        Unified()(names, 3)


def test_sample_joint_checks_every_named_setting():
    joint, net, labels = toy_joint(), toy_net(), torch.zeros(2, 1, dtype=torch.long)
    given = {"label": labels}
    # Settings for a modality that happens to be given were ignored: a typo went unnoticed.
    with pytest.raises(ValueError, match="must be one of"):
        sample_joint(joint, net, given=given, steps=2, methods={"label": "ddpm"})
    with pytest.raises(ValueError, match="must be one of"):
        sample_joint(joint, net, given=given, steps=2, final={"label": "mean"})
    with pytest.raises(ValueError, match=r"steps\['label'\] must be an int >= 1"):
        sample_joint(joint, net, given=given, steps={"label": 0, "point": 2})
    with pytest.raises(ValueError, match="given everywhere"):
        sample_joint(joint, net, given=given, steps=2, init={"label": labels})
    with pytest.raises(ValueError, match=r"init\['point'\] has shape \(2, 3\); expected \(2, 2\)"):
        sample_joint(joint, net, 2, steps=2, init={"point": torch.zeros(2, 3)})  # was: accepted
    with pytest.raises(ValueError, match="t_eps"):
        sample_joint(joint, net, 2, steps=2, t_eps=0.0)
    with pytest.raises(ValueError, match="is not a device"):
        sample_joint(joint, net, 2, steps=2, device="nodevice")
    with pytest.raises(TypeError, match="given must be a dict"):
        sample_joint(joint, net, steps=2, given=labels)


def test_count_nfe_checks_sampled_and_guidance():
    with pytest.raises(TypeError, match="sampled"):
        count_nfe(toy_joint(), "point")  # was: iterated as 'p', 'o', ...
    with pytest.raises(TypeError, match="NoisyGuidance"):
        count_nfe(toy_joint(), ["point"], guidance=2.0)  # was: AttributeError


def test_sample_masked_edm_grid_uses_the_process_schedule():
    proc = MaskedProcess(3, ScheduleLogLinear())
    res = sample_masked(lambda x, t: torch.zeros(*x.shape, 3), proc, (2, 2), 4, grid="edm", generator=gen())
    torch.testing.assert_close(res.grids, edm_grid(4, schedule=proc.schedule))  # was: the VP-linear schedule's grid


def test_simultaneous_reveal_probability_long_sequences():
    # Was: OverflowError (L! as a float) from L ≈ 171.
    r = torch.tensor([0.3, 0.5, 1.0], dtype=torch.float64)
    assert simultaneous_reveal_probability(r, 2) == pytest.approx(1 - 2 * (0.3 * 0.35 * 2 + 0.35 * 0.35))
    assert simultaneous_reveal_probability(torch.full((500,), 0.01, dtype=torch.float64), 300) == 1.0
    with pytest.raises(TypeError, match="reveal_probs"):
        simultaneous_reveal_probability(["a"], 2)


# ---------------------------------------------------------------------------------------------------------------------
# Networks, data, metrics, config
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: TimeMLP(dim=True),  # was: built with dim 1
        lambda: TimeMLP(out_dim=0),  # was: a network with no output
        lambda: UNet(8, channel_mults=(0,)),
        lambda: UNet(8, dropout=1.0),
        lambda: UNet(8, time_dim=0),
        lambda: TimeEmbedding(8, freq_dim=7),  # was: failed at the first forward
        lambda: TimeEmbedding(8, scale=float("inf")),
        lambda: JointMLP({3: 2}),
        lambda: JointMLP(discrete={"label": (True, 4)}),
    ],
)
def test_network_constructors(make):
    with pytest.raises((ValueError, TypeError)):
        make()


def test_network_input_dtype_and_time_forms():
    mlp = TimeMLP(2, hidden=8, depth=1, time_dim=8)
    with pytest.raises(TypeError, match="dtype torch.float64 but the network's parameters are torch.float32"):
        mlp(torch.zeros(3, 2, dtype=torch.float64), 0.5)  # was: RuntimeError deep inside nn.Linear
    net = JointMLP({"point": 2}, {"label": (1, K)}, hidden=8, depth=1, time_dim=8, token_dim=4)
    out = net({"point": torch.zeros(3, 2), "label": torch.zeros(3, 1, dtype=torch.long)}, {"point": 0.5, "label": 1})
    assert out["point"].shape == (3, 2)  # numbers broadcast, as in TimeMLP (was: AttributeError)


def test_mixtures_and_toy_generators():
    with pytest.raises(ValueError, match="means contains NaN"):
        GaussianMixture(torch.tensor([[0.0, float("nan")]]))  # was: accepted, NaN densities
    with pytest.raises(ValueError, match=r"K, D >= 1"):
        GaussianMixture(torch.zeros(0, 2))  # was: ZeroDivisionError
    with pytest.raises(TypeError, match="k must be an int"):
        ring_mixture(k=2.5)  # was: silently 3 components
    with pytest.raises(ValueError, match="radius must be finite"):
        ring_mixture(radius=float("nan"))
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        two_moons(0)
    with pytest.raises(ValueError, match="noise must lie in"):
        two_moons(5, noise=-0.1)
    m = GaussianMixture(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="single time"):
        m.at_time(torch.rand(3), ScheduleCosine())  # was: RuntimeError from .item()
    with pytest.raises(TypeError, match="schedule must be a diffuse_edu Schedule"):
        m.score(torch.zeros(2, 2), 0.5, "cosine")  # was: AttributeError


def test_labeled_mixture_quadrature_and_oracle():
    mix = default_labeled_mixture()
    with pytest.raises(ValueError, match="cells must be an int >= 100"):
        mix.bayes_accuracy(10)  # was: 1.13, a probability above 1
    with pytest.raises(ValueError, match="one integer id"):
        mix.conditional(torch.tensor([1, 2]))
    net = mix.exact_joint_model(GaussianProcess(), mix.num_classes)
    ts = {"point": torch.zeros(2), "label": torch.zeros(2)}
    with pytest.raises(ValueError, match=r"expected ids in \[0, 9\)"):
        net({"point": torch.zeros(2, 2), "label": torch.tensor([[9], [1]])}, ts)  # was: IndexError
    net = mix.exact_joint_model(GaussianProcess(), 10)  # a mask id beyond the classes: 8 and 9 are no label
    with pytest.raises(ValueError, match="not the mask id"):
        net({"point": torch.zeros(2, 2), "label": torch.tensor([[9], [1]])}, ts)


def test_digits_helpers():
    with pytest.raises(TypeError, match="p must be a real tensor"):
        from_pixels(torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"pixel values in \[0, 16\]"):
        from_pixels(torch.full((2,), 20.0))
    with pytest.raises(ValueError, match="NaN"):
        to_pixels(torch.tensor([float("nan")]))
    with pytest.raises(TypeError, match="seed must be an int"):
        load_digits_images(seed=True)


def test_distances_refuse_degenerate_settings():
    x, y = torch.randn(5, 2), torch.randn(6, 2)
    with pytest.raises(ValueError, match="n_projections must be an int >= 1"):
        sliced_wasserstein(x, y, n_projections=0)  # was: NaN
    with pytest.raises(ValueError, match=r"p must lie in \[1.0"):
        sliced_wasserstein(x, y, p=0)  # was: ZeroDivisionError
    with pytest.raises(ValueError, match="finite"):
        mmd_rbf(x, y, bandwidths=[float("nan")])  # was: NaN
    with pytest.raises(ValueError, match="median pairwise distance of 0"):
        mmd_rbf(torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="metric must return a finite number"):
        noise_floor(lambda n, g: torch.randn(n, 2, generator=g), lambda a, b: float("nan"), 4)


def test_config_and_cache():
    with pytest.raises(TypeError, match="seed must be an int"):
        seed_everything(True)
    with pytest.raises(TypeError, match="config must be a dict"):
        config_key([1, 2])
    assert math.isfinite(float(seed_everything(3).initial_seed()))
