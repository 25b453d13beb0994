"""The training loop, EMA, batch streams, precision and compilation: math and API, seeded and quick.

Checkpoints: tests/test_checkpoint.py; exact resume: tests/test_checkpoint_resume.py; DDP: tests/test_distributed.py.
"""

import importlib
import math
import warnings

import pytest
import torch
from torch import nn

from diffuse_edu.data.batching import BatchStream, infinite_batches
from diffuse_edu.nets.mlp import TimeMLP
from diffuse_edu.train import EMA, _lr_at, train, train_iter

# The module itself (the package exports the function `train` under the same name as the module).
TRAIN_MODULE = importlib.import_module("diffuse_edu.train")


def _regression(seed=0, n=256):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    w = torch.tensor([[1.5], [-2.0], [0.5]])
    return x, x @ w + 0.3


def _mse(model, batch):
    x, y = batch
    return (model(x) - y).pow(2).mean()


def test_loss_decreases_on_toy_regression():
    torch.manual_seed(0)
    x, y = _regression()
    model = nn.Linear(3, 1)
    res = train(
        model,
        _mse,
        infinite_batches(x, y, batch_size=32, generator=torch.Generator().manual_seed(0)),
        steps=300,
        lr=3e-2,
        device="cpu",
        progress=False,
        ema_decay=0.9,
    )
    assert len(res.losses) == 300
    # A linear model fits noiseless linear data: the loss falls by orders of magnitude.
    assert sum(res.losses[-20:]) / 20 < 1e-3 * sum(res.losses[:20]) / 20
    assert torch.allclose(res.model.weight.detach(), torch.tensor([[1.5, -2.0, 0.5]]), atol=1e-2)
    assert res.samples_per_s > 0 and res.seconds > 0
    assert res.ema_model is not None and not res.ema_model.training


def test_train_iter_yields_state_each_step_and_accepts_dicts_and_callables():
    x, y = _regression()
    batches = infinite_batches({"x": x, "y": y}, batch_size=16, generator=torch.Generator().manual_seed(1))
    model = nn.Linear(3, 1)
    states = list(
        train_iter(
            model, lambda m, b: (m(b["x"]) - b["y"]).pow(2).mean(), batches, steps=5, device="cpu", progress=False
        )
    )
    assert [s.step for s in states] == [1, 2, 3, 4, 5]
    assert states[-1].losses == [s.loss for s in states] and states[-1].samples == 80
    # A callable that returns one batch also works.
    res = train(nn.Linear(3, 1), _mse, lambda: (x[:8], y[:8]), steps=3, device="cpu", progress=False)
    assert len(res.losses) == 3


def test_ema_matches_closed_form_on_one_parameter():
    # e_n = d^n p_0 + (1 − d) Σ_k d^{n−k} p_k for parameter values p_1..p_n after each update.
    d = 0.9
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = EMA(model, d, warmup=False)
    values = [2.0, -1.0, 0.5, 3.0]
    for v in values:
        with torch.no_grad():
            model.weight.fill_(v)
        ema.update(model)
    n = len(values)
    expected = d**n * 1.0 + (1 - d) * sum(d ** (n - k) * v for k, v in enumerate(values, start=1))
    assert ema.module.weight.item() == pytest.approx(expected, rel=1e-6)
    target = nn.Linear(1, 1, bias=False)
    ema.copy_to(target)
    assert target.weight.item() == pytest.approx(expected, rel=1e-6)


def test_ema_warmup_decay_sequence():
    # d_n = min(decay, (1 + n)/(10 + n)): 2/11, 3/12, ... until it reaches the target decay.
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, 0.5)
    seen = []
    for _ in range(12):
        seen.append(ema.current_decay())
        ema.update(model)
    assert seen[:3] == pytest.approx([2 / 11, 3 / 12, 4 / 13])
    assert seen[-1] == 0.5 and max(seen) == 0.5
    # With warmup, one update from initial weight w0 to p gives d_1·w0 + (1 − d_1)·p.
    ema = EMA(model, 0.999)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    assert ema.module.weight.item() == pytest.approx(9 / 11)


def test_ema_inside_training_tracks_weights():
    x, y = _regression()
    model = nn.Linear(3, 1)
    w0 = model.weight.detach().clone()
    weights = []
    for s in train_iter(
        model, _mse, lambda: (x, y), steps=4, ema_decay=0.5, ema_warmup=False, device="cpu", progress=False
    ):
        weights.append(s.model.weight.detach().clone())
    expected = w0
    for w in weights:
        expected = 0.5 * expected + 0.5 * w
    assert torch.allclose(s.ema.module.weight, expected, atol=1e-7)


def test_grad_clipping_bounds_the_update():
    # Huge targets give a huge gradient; with clipping the total norm after clipping is exactly grad_clip.
    model = nn.Linear(2, 1)
    x, y = torch.ones(4, 2), torch.full((4, 1), 1e4)
    seen = {}

    def loss_fn(m, b):
        loss = _mse(m, b)
        seen["model"] = m
        return loss

    state = next(train_iter(model, loss_fn, lambda: (x, y), steps=1, grad_clip=0.5, device="cpu", progress=False))
    assert state.grad_norm > 1e3  # reported norm is the one before clipping
    clipped = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    assert clipped.item() == pytest.approx(0.5, rel=1e-5)


def test_lr_warmup_and_decay():
    kw = dict(lr=1.0, steps=110, warmup=10, min_lr=0.0)
    assert _lr_at(0, decay="constant", **kw) == pytest.approx(0.1)
    assert _lr_at(9, decay="constant", **kw) == pytest.approx(1.0)
    assert _lr_at(10, decay="cosine", **kw) == pytest.approx(1.0)
    assert _lr_at(60, decay="cosine", **kw) == pytest.approx(0.5)
    assert _lr_at(60, decay="linear", **kw) == pytest.approx(0.5)


def test_seeded_training_is_bit_exact():
    def run():
        torch.manual_seed(3)
        model = TimeMLP(dim=2, hidden=32, depth=2, time_dim=16)
        data = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))

        def loss_fn(m, x):  # uses the global generator: covered by seed=
            t = torch.rand(x.shape[0])
            return (m(x, t) - x).pow(2).mean()

        return train(
            model,
            loss_fn,
            infinite_batches(data, batch_size=16, generator=torch.Generator().manual_seed(0)),
            steps=20,
            seed=7,
            device="cpu",
            progress=False,
        )

    a, b = run(), run()
    assert a.losses == b.losses
    for pa, pb in zip(a.ema_model.parameters(), b.ema_model.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0), "steps"),
        (dict(steps=5, lr=0.0), "lr"),
        (dict(steps=5, lr=float("nan")), "lr"),
        (dict(steps=5, warmup=10), "warmup"),
        (dict(steps=5, lr_decay="step"), "lr_decay"),
        (dict(steps=5, ema_decay=1.0), "ema_decay"),
        (dict(steps=5, grad_clip=-1.0), "grad_clip"),
        (dict(steps=5, amp="fp16"), "amp"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    x, y = _regression()
    with pytest.raises(ValueError, match=match):
        next(train_iter(nn.Linear(3, 1), _mse, lambda: (x, y), device="cpu", progress=False, **kwargs))


def test_nan_loss_and_nonscalar_loss_raise():
    x, y = _regression()
    y[0] = float("nan")
    with pytest.raises(FloatingPointError, match="diverged"):
        train(nn.Linear(3, 1), _mse, lambda: (x, y), steps=3, device="cpu", progress=False)
    with pytest.raises(ValueError, match="scalar"):
        train(
            nn.Linear(3, 1),
            lambda m, b: (m(b[0]) - b[1]).pow(2),
            lambda: _regression(),
            steps=1,
            device="cpu",
            progress=False,
        )
    with pytest.raises(ValueError, match="ran out"):
        train(nn.Linear(3, 1), _mse, iter([_regression()]), steps=2, device="cpu", progress=False)


def test_infinite_batches_epochs_and_errors():
    x = torch.arange(10.0)
    it = infinite_batches(x, batch_size=5, generator=torch.Generator().manual_seed(0))
    epoch = torch.cat([next(it), next(it)])
    assert torch.equal(epoch.sort().values, x)  # one epoch = a permutation
    it = infinite_batches(x, batch_size=4, drop_last=False, generator=torch.Generator().manual_seed(0))
    assert [len(next(it)) for _ in range(3)] == [4, 4, 2]
    with pytest.raises(ValueError, match="first dimension"):
        next(infinite_batches(x, torch.zeros(3), batch_size=2))
    with pytest.raises(ValueError, match="exceeds"):
        next(infinite_batches(x, batch_size=11))
    assert math.isfinite(float(next(infinite_batches({"a": x}, batch_size=2))["a"].sum()))


def _old_infinite_batches(x, batch_size, generator, drop_last=True):
    # The generator-function implementation this package shipped before BatchStream: the stream must not change.
    n = x.shape[0]
    while True:
        perm = torch.randperm(n, generator=generator)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            yield x[perm[start : start + batch_size]]


@pytest.mark.parametrize("drop_last", [True, False])
def test_batch_stream_draws_what_the_old_generator_drew(drop_last):
    x = torch.arange(23.0)
    new = infinite_batches(x, batch_size=5, generator=torch.Generator().manual_seed(4), drop_last=drop_last)
    old = _old_infinite_batches(x, 5, torch.Generator().manual_seed(4), drop_last)
    for _ in range(20):  # several epochs
        assert torch.equal(next(new), next(old))
    # Without a generator both draw from torch's global one.
    torch.manual_seed(1)
    a = [next(infinite_batches(x, batch_size=5)) for _ in range(2)]
    torch.manual_seed(1)
    b = [next(_old_infinite_batches(x, 5, None)) for _ in range(2)]
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def test_batch_stream_state_dict_continues_exactly():
    x, y = torch.arange(30.0), torch.arange(30) * 2
    a = infinite_batches({"x": x, "y": y}, batch_size=7, generator=torch.Generator().manual_seed(0))
    for _ in range(5):  # past the first epoch (4 batches), into the second
        next(a)
    state = a.state_dict()
    assert state["epoch"] == 2 and state["position"] == 7 and state["permutation"].shape == (30,)
    expected = [next(a) for _ in range(6)]
    b = infinite_batches({"x": x, "y": y}, batch_size=7, generator=torch.Generator().manual_seed(99))
    b.load_state_dict(state)
    for e in expected:
        got = next(b)
        assert torch.equal(got["x"], e["x"]) and torch.equal(got["y"], e["y"])
    with pytest.raises(ValueError, match="same batch_size"):
        infinite_batches(x, batch_size=5).load_state_dict(state)
    with pytest.raises(ValueError, match="not the same data"):
        infinite_batches(x[:20], batch_size=7).load_state_dict(state)


def test_shards_split_the_one_process_global_batch():
    x = torch.arange(40.0)
    one = infinite_batches(x, batch_size=8, generator=torch.Generator().manual_seed(2))
    ranks = [
        infinite_batches(x, batch_size=4, generator=torch.Generator().manual_seed(2)).shard(r, 2) for r in range(2)
    ]
    assert isinstance(ranks[0], BatchStream) and "rank=1/2" in repr(ranks[1])
    for _ in range(12):  # 2.4 epochs: every global batch is rank 0's rows then rank 1's
        assert torch.equal(next(one), torch.cat([next(ranks[0]), next(ranks[1])]))
    with pytest.raises(ValueError, match="seed"):
        infinite_batches(x, batch_size=4).shard(1, 2)
    s = infinite_batches(x, batch_size=4).shard(1, 2, seed=5)  # a private generator, the same on every rank
    assert s.generator is not None and s.generator.initial_seed() == 5
    with pytest.raises(ValueError, match="drop_last"):
        infinite_batches(x, batch_size=4, drop_last=False).shard(0, 2)
    with pytest.raises(ValueError, match="rank"):
        infinite_batches(x, batch_size=4).shard(2, 2)
    with pytest.raises(ValueError, match="exceeds"):
        infinite_batches(x, batch_size=30).shard(0, 2, seed=0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(batch_size=0), ValueError, "batch_size must be a positive integer; got 0"),
        (dict(batch_size=True), ValueError, "batch_size"),
        (dict(batch_size=2, generator=3), TypeError, "generator must be a torch.Generator or None; got int"),
        (dict(batch_size=2, drop_last=1), TypeError, "drop_last must be a bool"),
    ],
)
def test_infinite_batches_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        infinite_batches(torch.zeros(4), **kwargs)
    with pytest.raises(TypeError, match="tensors"):
        infinite_batches([1, 2], batch_size=1)


def test_log_every_gives_the_same_run_and_catches_nan_at_the_sync():
    # The CUDA mode (losses read back every k steps) run on the CPU: the same numbers, fewer syncs.
    def run(log_every):
        torch.manual_seed(0)
        x, y = _regression()
        batches = infinite_batches(x, y, batch_size=16, generator=torch.Generator().manual_seed(0))
        return list(
            train_iter(nn.Linear(3, 1), _mse, batches, steps=10, device="cpu", progress=False, log_every=log_every)
        )

    every, lazy = run(1), run(4)
    assert every[-1].losses == lazy[-1].losses and len(lazy[-1].losses) == 10
    assert [s.loss for s in every] == [s.loss for s in lazy]
    assert all(isinstance(s.loss, float) and isinstance(s.grad_norm, float) for s in lazy)
    x, y = _regression()
    bad = (x.clone(), y.clone())
    bad[1][0] = float("nan")
    calls = iter([(x, y), bad, (x, y), (x, y)] + [(x, y)] * 10)
    with pytest.raises(FloatingPointError, match="at step 2 "):
        train(nn.Linear(3, 1), _mse, lambda: next(calls), steps=8, log_every=4, device="cpu", progress=False)


def test_train_state_and_result_fields():
    x, y = _regression()
    states = list(train_iter(nn.Linear(3, 1), _mse, lambda: (x[:8], y[:8]), steps=3, device="cpu", progress=False))
    s = states[-1]
    assert (s.step, s.rank, s.world_size, s.samples) == (3, 0, 1, 24) and s.lr == 1e-3
    assert repr(s).startswith("TrainState(step=3, lr=0.001")
    res = train(nn.Linear(3, 1), _mse, lambda: (x[:8], y[:8]), steps=3, device="cpu", progress=False)
    assert (res.step, res.world_size, res.precision, res.compiled, res.checkpoint) == (3, 1, "fp32", False, None)


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16), ("fp32", None)])
def test_precision_runs_on_cpu_under_autocast(precision, dtype):
    seen = {}

    def loss_fn(m, x):
        out = m(x, torch.full((x.shape[0],), 0.5))
        seen["autocast"] = torch.is_autocast_enabled("cpu")
        seen["dtype"] = out.dtype
        return (out.float() - x).pow(2).mean()

    torch.manual_seed(0)
    model = TimeMLP(dim=2, hidden=16, depth=1, time_dim=8)
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    batches = infinite_batches(data, batch_size=16, generator=torch.Generator().manual_seed(0))
    res = train(model, loss_fn, batches, steps=6, lr=1e-2, precision=precision, device="cpu", progress=False)
    assert res.precision == precision and all(math.isfinite(v) for v in res.losses)
    assert seen["autocast"] == (dtype is not None)
    assert seen["dtype"] == (dtype or torch.float32)
    assert next(res.model.parameters()).dtype == torch.float32  # weights, optimiser and EMA stay fp32


def test_precision_default_and_deprecated_amp():
    x, y = _regression()
    run = lambda **kw: train(nn.Linear(3, 1), _mse, lambda: (x, y), steps=1, device="cpu", progress=False, **kw)
    assert run().precision == "fp32"  # the CPU default
    with pytest.warns(DeprecationWarning, match="precision="):
        assert run(amp=False).precision == "fp32"
    with pytest.warns(DeprecationWarning):
        assert run(amp="auto").precision == "fp32"  # auto never autocasts on the CPU, as before
    with pytest.raises(ValueError, match="not both"):
        run(amp=True, precision="bf16")


def _tiny_setup():
    # A plain MLP: inductor compiles it in a few seconds from a cold cache (TimeMLP's validating forward takes ~1 min).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.SiLU(), nn.Linear(16, 2))
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))

    def loss_fn(m, x):
        noise = torch.randn(x.shape)  # global generator: the denoising target
        return (m(x + noise) - noise).pow(2).mean()

    batches = infinite_batches(data, batch_size=16, generator=torch.Generator().manual_seed(0))
    return model, loss_fn, batches


def test_compile_matches_eager_or_says_why_it_was_skipped(capsys):
    eager = train(*_tiny_setup(), steps=4, seed=0, device="cpu", progress=False)
    model, loss_fn, batches = _tiny_setup()
    res = train(model, loss_fn, batches, steps=4, seed=0, device="cpu", progress=False, compile=True)
    out = capsys.readouterr().out
    if res.compiled:
        # Inductor fuses and reorders float operations: equal up to rounding, not bit for bit.
        assert res.losses == pytest.approx(eager.losses, rel=1e-4, abs=1e-6)
    else:
        assert "compile=True skipped:" in out
        print(out)  # the reason, in the test log
    assert getattr(model, "_compiled_call_impl", None) is None  # the model is plain again after training


def test_compile_failure_falls_back_to_eager_with_the_same_draws(capsys, monkeypatch):
    import torch._dynamo.exc

    def broken_compile(self, *args, **kwargs):
        def fail(*a, **k):
            torch.rand(3)  # a draw that the retry must undo
            raise torch._dynamo.exc.InternalTorchDynamoError("no backend here")

        self._compiled_call_impl = fail

    monkeypatch.setattr(nn.Module, "compile", broken_compile)
    monkeypatch.setattr(TRAIN_MODULE, "_compile_unavailable", lambda device: None)
    eager = train(*_tiny_setup(), steps=3, seed=0, device="cpu", progress=False)
    res = train(*_tiny_setup(), steps=3, seed=0, device="cpu", progress=False, compile=True)
    assert (
        not res.compiled
        and "torch.compile failed (InternalTorchDynamoError: no backend here)" in capsys.readouterr().out
    )
    assert res.losses == eager.losses  # bit-identical: the failed attempt's random draws were rewound


def test_compile_without_a_compiler_is_skipped_with_the_reason(capsys, monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(TRAIN_MODULE.shutil, "which", lambda name: None)
    res = train(*_tiny_setup(), steps=2, device="cpu", progress=False, compile=True)
    assert not res.compiled and "needs a C++ compiler" in capsys.readouterr().out


def test_unmanaged_generator_warns_when_it_matters(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = _regression()

    def loss_fn(m, b):
        noise = 0.0 * torch.randn(b[1].shape, generator=g)
        return (m(b[0]) - b[1] + noise).pow(2).mean()

    kw = dict(steps=2, device="cpu", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no checkpoint, no DDP: the generator is the caller's business
        train(nn.Linear(3, 1), loss_fn, lambda: (x, y), **kw)
    with pytest.warns(UserWarning, match="loss_fn holds a torch.Generator .* generators="):
        train(nn.Linear(3, 1), loss_fn, lambda: (x, y), checkpoint_dir=tmp_path / "a", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(nn.Linear(3, 1), loss_fn, lambda: (x, y), checkpoint_dir=tmp_path / "b", generators=[g], **kw)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(precision="fp8"), ValueError, "precision must be 'bf16', 'fp16', 'fp32' or None .auto.; got 'fp8'"),
        (dict(compile="yes"), TypeError, "compile must be a bool; got 'yes'"),
        (dict(checkpoint_every=5), ValueError, "checkpoint_every needs checkpoint_dir"),
        (dict(resume="latest"), ValueError, "resume='latest' needs checkpoint_dir"),
        (dict(resume=3), TypeError, "resume must be None, 'latest' or a checkpoint path; got int"),
        (dict(log_every=0), ValueError, "log_every must be a positive integer or None; got 0"),
        (dict(keep_checkpoints=0), ValueError, "keep_checkpoints"),
        (dict(betas=(1.0, 0.9)), ValueError, "betas must be two numbers in"),
        (dict(seed=-1), ValueError, "seed must be a non-negative integer"),
        (dict(generators=[1]), TypeError, r"generators\['0'\] must be a torch.Generator; got int"),
        (dict(generators="g"), TypeError, "generators must be"),
        (dict(config=[1]), TypeError, "config must be a dict"),
        (dict(distributed="auto"), TypeError, "distributed must be None"),
        (dict(distributed=True), ValueError, "not launched by torchrun"),
        (dict(device=3), TypeError, "device must be None, a str"),
        (dict(weight_decay=-1), ValueError, "weight_decay must be a finite number >= 0; got -1"),
        (dict(min_lr=1.0), ValueError, "min_lr must lie in"),
        (dict(ema_warmup=1), TypeError, "ema_warmup must be a bool"),
        (dict(ddp_kwargs=[]), TypeError, "ddp_kwargs must be a dict"),
        (dict(steps=2.0), ValueError, "steps must be a positive integer; got 2.0"),
    ],
)
def test_new_bad_arguments_raise_at_the_call(kwargs, error, match):
    x, y = _regression()
    kwargs = {"steps": 5, "device": "cpu", "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        train_iter(nn.Linear(3, 1), _mse, lambda: (x, y), **kwargs)  # raised by the call itself: no next()
    with pytest.raises(TypeError, match="batches must be an iterator, an iterable or a callable"):
        train_iter(nn.Linear(3, 1), _mse, 42, steps=1)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module; got str"):
        train_iter("model", _mse, lambda: (x, y), steps=1)
