"""Training and sampling throughput of notebooks 01-03's models, for comparing two checkouts of the package.

The same workloads run against the diffuse_edu found in the folder given first; the API differences between the
layout before the sampling-layer redesign (samplers.py, discrete_samplers.py, joint_sampling.py, string clock modes)
and after it are bridged here. One torch thread; each number is the best of three runs. Run the two checkouts one
after the other (or interleaved, several times) so that they share the machine's load.

    git worktree add /tmp/before 286b018                      # the last commit before the redesign
    python scripts/compare_throughput.py /tmp/before before    # -> /tmp/throughput-before.json
    python scripts/compare_throughput.py . after              # -> /tmp/throughput-after.json
"""

import json
import sys
import time


def best(fn, reps: int = 3) -> float:
    """Seconds of the fastest of ``reps`` runs, after one warm-up."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def train_rate(torch, model, loss, steps: int = 20) -> float:
    """Optimiser steps per second of AdamW on ``loss(model)``."""
    opt = torch.optim.AdamW(model.parameters(), 1e-3)

    def run():
        for _ in range(steps):
            value = loss(model)
            opt.zero_grad()
            value.backward()
            opt.step()

    return steps / best(run)


def main(root: str, tag: str) -> dict:
    sys.path.insert(0, root)
    import torch

    from diffuse_edu.gaussian import GaussianProcess
    from diffuse_edu.joint import JointProcess
    from diffuse_edu.masked import MaskedProcess
    from diffuse_edu.nets.joint_mlp import JointMLP
    from diffuse_edu.nets.mlp import TimeMLP
    from diffuse_edu.nets.transformer import DiffusionTransformer
    from diffuse_edu.nets.unet import UNet
    from diffuse_edu.schedules import ScheduleCosine
    from diffuse_edu.uniform import UniformProcess

    try:
        from diffuse_edu.clocks import Decoupled
        from diffuse_edu.sampling import sample, sample_joint, sample_masked, sample_uniform

        clock = {"clock": Decoupled()}
    except ImportError:  # the layout before the redesign
        from diffuse_edu.discrete_samplers import sample_masked, sample_uniform
        from diffuse_edu.joint_sampling import sample_joint
        from diffuse_edu.samplers import sample

        clock = {"mode": "decoupled"}

    torch.set_num_threads(1)
    torch.manual_seed(0)

    def g(seed):
        return torch.Generator().manual_seed(seed)

    out = {}
    # notebook 01: the mixture model and the digits U-Net
    proc = GaussianProcess(ScheduleCosine(alpha_end=1e-3), prediction="v")
    mlp = TimeMLP(dim=2, hidden=128, depth=3)
    x = torch.randn(512, 2)
    out["nb01 mixture: train steps/s (B=512)"] = train_rate(torch, mlp, lambda m: proc.training_loss(m, x, g(0)))
    mlp.eval()
    for method, steps in (("ddpm", 50), ("ode-heun", 25)):
        secs = best(lambda m=method, s=steps: sample(mlp, proc, (4096, 2), steps=s, method=m, generator=g(1)))
        out[f"nb01 mixture: sample points/s ({steps} {method} steps)"] = 4096 / secs
    unet = UNet(image_size=8, in_channels=1, base=32, channel_mults=(1, 2))
    img = torch.randn(64, 1, 8, 8)
    out["nb01 digits: train steps/s (B=64)"] = train_rate(torch, unet, lambda m: proc.training_loss(m, img, g(0)), 10)
    unet.eval()
    secs = best(lambda: sample(unet, proc, (64, 1, 8, 8), steps=50, generator=g(2)), reps=2)
    out["nb01 digits: sample images/s (50 ddpm)"] = 64 / secs
    # notebook 02: masked and uniform text models
    V, L = 27, 16
    mp, up = MaskedProcess(V), UniformProcess(V)
    tm = DiffusionTransformer(V + 1, V, L, width=96, depth=3, heads=4)
    tok = torch.randint(0, V, (128, L))

    def masked_loss(m):
        t = mp.sample_times(128, g(0))
        xt = mp.corrupt(tok, t, g(1))
        return mp.loss(m(xt, t), tok, xt, t).mean()

    out["nb02 masked: train steps/s (B=128)"] = train_rate(torch, tm, masked_loss, 10)
    tm.eval()
    secs = best(lambda: sample_masked(tm, mp, (256, L), 50, generator=g(3)), reps=2)
    out["nb02 masked: sample names/s (50 ancestral, cache)"] = 256 / secs
    tu = DiffusionTransformer(V, V, L, width=96, depth=3, heads=4).eval()
    secs = best(lambda: sample_uniform(tu, up, (256, L), 50, generator=g(4)), reps=2)
    out["nb02 uniform: sample names/s (50 steps)"] = 256 / secs
    # notebook 03: a point and its label
    joint = JointProcess(
        {"point": GaussianProcess(step_method="euler-maruyama"), "label": MaskedProcess(8)},
        event_shapes={"point": (2,), "label": (1,)},
    )
    jm = JointMLP(hidden=128, depth=3)
    batch = {"point": torch.randn(512, 2), "label": torch.randint(0, 8, (512, 1))}
    jl = lambda m: joint.training_loss(m, batch, generator=g(0), **clock)  # noqa: E731
    out["nb03 joint: train steps/s (B=512)"] = train_rate(torch, jm, jl)
    jm.eval()
    out["nb03 joint: sample pairs/s (50 steps)"] = 2048 / best(
        lambda: sample_joint(joint, jm, 2048, steps=50, generator=g(5))
    )
    labels = torch.randint(0, 8, (2048, 1))
    out["nb03 label->point: pairs/s (50 steps)"] = 2048 / best(
        lambda: sample_joint(joint, jm, given={"label": labels}, steps=50, generator=g(6))
    )
    with open(f"/tmp/throughput-{tag}.json", "w") as f:
        json.dump(out, f, indent=1)
    for k, v in out.items():
        print(f"{tag}  {k}: {v:,.1f}")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python scripts/compare_throughput.py PACKAGE_ROOT TAG")
    main(sys.argv[1], sys.argv[2])
