"""Schedules: VP identity, derivatives against autograd, published endpoint values, monotonicity, bad input."""

import math

import pytest
import torch

from diffuse_edu.schedules import (
    ScheduleCosine,
    ScheduleLogLinear,
    ScheduleSDScaledLinear,
    ScheduleVPLinear,
    get_schedule,
)

ALL = [
    ScheduleVPLinear(),
    ScheduleCosine(),
    ScheduleCosine(alpha_end=1e-3),
    ScheduleSDScaledLinear(),
    ScheduleLogLinear(),
]
IDS = ["vp-linear", "cosine", "cosine-1e-3", "sd", "log-linear"]
T = torch.linspace(0, 1, 201, dtype=torch.float64)
T_INNER = T[1:-1]


@pytest.mark.parametrize("sched", ALL, ids=IDS)
def test_variance_preserving(sched):
    a, s = sched.alpha(T), sched.sigma(T)
    torch.testing.assert_close(a * a + s * s, torch.ones_like(T), atol=1e-12, rtol=0)


@pytest.mark.parametrize("sched", ALL, ids=IDS)
def test_dalpha_matches_autograd(sched):
    t = T_INNER.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(sched.alpha(t).sum(), t)
    torch.testing.assert_close(sched.dalpha(T_INNER), grad, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("sched", ALL, ids=IDS)
def test_monotone_and_endpoints(sched):
    a = sched.alpha(T)
    assert (a[1:] < a[:-1]).all(), "α must be strictly decreasing"
    assert a[0].item() == pytest.approx(1.0, abs=1e-12)
    assert 0 <= a[-1].item() < 0.1
    assert (sched.dalpha(T) <= 0).all()


@pytest.mark.parametrize("sched", ALL, ids=IDS)
def test_log_snr_and_beta_consistent(sched):
    a = sched.alpha(T_INNER)
    torch.testing.assert_close(sched.log_snr(T_INNER), torch.log(a * a / (1 - a * a)), atol=1e-9, rtol=1e-9)
    assert (sched.log_snr(T_INNER)[1:] < sched.log_snr(T_INNER)[:-1]).all()
    torch.testing.assert_close(sched.beta(T_INNER), -2 * sched.dalpha(T_INNER) / a)
    assert sched.log_snr(torch.tensor(0.0, dtype=torch.float64)).item() == math.inf


def test_published_endpoints():
    # Stable-Diffusion scaled linear in continuous time: α(1) = exp(-½ Σ β_i) = 0.0690.
    assert ScheduleSDScaledLinear().alpha(torch.tensor(1.0, dtype=torch.float64)).item() == pytest.approx(
        0.0690, abs=1e-4
    )
    betas = torch.linspace(8.5e-4**0.5, 1.2e-2**0.5, 1000, dtype=torch.float64) ** 2
    discrete = torch.prod(1 - betas).sqrt().item()
    # The discrete product sqrt(Π(1 - β_i)) = 0.0683 differs from exp(-½ Σ β_i) at second order in β (~1%).
    assert ScheduleSDScaledLinear().alpha(1.0).item() == pytest.approx(discrete, rel=1.5e-2)
    # VP linear (beta 0.1 -> 20): log α(1) = -(20 - 0.1)/4 - 0.05.
    assert ScheduleVPLinear().alpha(torch.tensor(1.0, dtype=torch.float64)).item() == pytest.approx(math.exp(-5.025))
    assert ScheduleCosine().alpha(1.0).item() == 0.0
    assert ScheduleLogLinear(eps=1e-3).alpha(1.0).item() == pytest.approx(1e-3, rel=1e-4)  # float32


def test_get_schedule():
    assert isinstance(get_schedule("cosine"), ScheduleCosine)
    with pytest.raises(ValueError, match="unknown schedule"):
        get_schedule("nope")


@pytest.mark.parametrize(
    "bad, err, msg",
    [
        (1.5, ValueError, r"\[0, 1\]"),
        (-0.1, ValueError, r"\[0, 1\]"),
        (torch.tensor([0.5, float("nan")]), ValueError, "NaN"),
        ("0.5", TypeError, "float or a torch.Tensor"),
        ([0.5], TypeError, "float or a torch.Tensor"),
    ],
)
def test_bad_time_raises(bad, err, msg):
    with pytest.raises(err, match=msg):
        ScheduleVPLinear().alpha(bad)
