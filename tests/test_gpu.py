"""CUDA checks: every sampler, ``train`` and the guided joint sampler on the GPU against the CPU with one generator.

Marked ``gpu`` and skipped without CUDA (CI has none); ``scripts/gpu_check.sh`` runs them on a GPU machine. A CPU
``torch.Generator`` draws the same numbers whatever the device the data live on, so the CUDA and CPU runs see the same
noise; results then agree up to floating-point differences of the two devices' kernels (Gaussian samplers), and
discrete samplers agree on all but a tiny share of tokens (a category whose cumulative probability differs in the last
bits between devices can flip one draw, which then changes that sequence's later context).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from diffuse_edu.gaussian import GaussianProcess
from diffuse_edu.guidance import NoisyGuidance
from diffuse_edu.joint import JointProcess
from diffuse_edu.masked import MaskedProcess
from diffuse_edu.nets.joint_mlp import JointMLP
from diffuse_edu.nets.mlp import TimeMLP
from diffuse_edu.nets.transformer import DiffusionTransformer
from diffuse_edu.sampling import sample, sample_joint, sample_masked, sample_uniform
from diffuse_edu.schedules import ScheduleCosine
from diffuse_edu.train import train
from diffuse_edu.uniform import UniformProcess

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run by scripts/gpu_check.sh)"),
]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)  # a CPU generator, used for both devices


def both(build):
    torch.manual_seed(0)
    cpu = build().eval()
    gpu = build().eval()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.cuda()


@pytest.mark.parametrize("method", ["ddpm", "euler-maruyama", "ode-euler", "ode-heun"])
def test_gaussian_sampler_on_cuda_matches_cpu(method):
    cpu, gpu = both(lambda: TimeMLP(dim=2, hidden=64, depth=2))
    proc = GaussianProcess(ScheduleCosine(alpha_end=1e-3), step_method=method)
    a = sample(cpu, proc, (512, 2), steps=20, generator=gen(1)).samples
    b = sample(gpu, proc, (512, 2), steps=20, generator=gen(1)).samples
    assert b.device.type == "cuda"
    torch.testing.assert_close(b.cpu(), a, atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("kind", ["masked", "uniform"])
def test_discrete_samplers_on_cuda_match_cpu(kind):
    V, L = 6, 8
    cpu, gpu = both(lambda: DiffusionTransformer(V + 1, V, L, width=32, depth=1, heads=2))
    if kind == "masked":
        proc, fn, kw = MaskedProcess(V), sample_masked, {"method": "tau-leaping"}
    else:
        proc, fn, kw = UniformProcess(V), sample_uniform, {}
    a = fn(cpu, proc, (256, L), 16, generator=gen(2), **kw).samples
    b = fn(gpu, proc, (256, L), 16, generator=gen(2), **kw).samples
    assert b.device.type == "cuda"
    assert (a == b.cpu()).double().mean() > 0.97


def test_guided_joint_sampler_on_cuda_matches_cpu():
    joint = JointProcess(
        {"point": GaussianProcess(step_method="ode-heun"), "label": MaskedProcess(8)},
        event_shapes={"point": (2,), "label": (1,)},
    )
    cpu, gpu = both(lambda: JointMLP(hidden=64, depth=2))
    labels = torch.randint(0, 8, (256, 1), generator=gen(3))
    mask = torch.arange(256) % 2 == 0
    kwargs = dict(given={"label": labels}, given_mask={"label": mask}, steps=20,
                  methods={"label": "tau-leaping"}, guidance=NoisyGuidance(2.0, 1.0, 0.3, 0.8))  # fmt: skip
    a = sample_joint(joint, cpu, generator=gen(4), **kwargs)
    b = sample_joint(joint, gpu, generator=gen(4), **kwargs)
    assert all(v.device.type == "cuda" for v in b.samples.values()) and a.nfe == b.nfe
    assert torch.equal(b.samples["label"][mask].cpu(), labels[mask])
    close = (b.samples["point"].cpu() - a.samples["point"]).abs().amax(1) < 1e-2
    assert close.double().mean() > 0.95


def test_train_on_cuda():
    proc = GaussianProcess()
    model = TimeMLP(dim=2, hidden=64, depth=2)
    data = torch.randn(4096, 2)

    def batches():
        return data[torch.randint(0, 4096, (256,))]

    res = train(model, proc.loss_fn(), batches, steps=50, device="cuda", progress=False)
    assert next(res.model.parameters()).device.type == "cuda" and len(res.losses) == 50
    assert all(torch.isfinite(torch.tensor(res.losses)))
    out = sample(res.ema_model, proc, (64, 2), steps=10, generator=gen(5)).samples
    assert out.device.type == "cuda" and torch.isfinite(out).all()


def test_model_on_cuda_with_cpu_inputs_and_generator():
    """The device follows the model: CPU conditions and a CPU generator work with a CUDA model."""
    joint = JointProcess({"point": GaussianProcess(), "label": MaskedProcess(8)},
                         event_shapes={"point": (2,), "label": (1,)})  # fmt: skip
    net = JointMLP(hidden=32, depth=1).cuda().eval()
    res = sample_joint(joint, net, given={"label": torch.zeros(16, 1, dtype=torch.long)}, steps=5, generator=gen(6))
    assert res.samples["point"].device.type == "cuda"
    assert isinstance(net, nn.Module)
