"""The text–image recipe (notebook 04): sampling modes and their NFE, given entries kept, guidance ω = 1, bad input,
and a tiny end-to-end train + sample + evaluate run."""

import math

import pytest
import torch

from diffuse_edu.clocks import AxisMixture, Decoupled, Unified
from diffuse_edu.data.shapes import load_shapes, max_caption_length, shapes_vocab
from diffuse_edu.guidance import NoisyGuidance
from diffuse_edu.recipes import text_image as ti
from diffuse_edu.recipes.judges import shape_judge
from diffuse_edu.sampling import count_nfe

TINY = dict(width=32, depth=1, heads=2, time_dim=16, freq_dim=16)
LEVEL, SIZE = 3, 16


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    m = ti.train_text_image(level=LEVEL, image_size=SIZE, steps=4, batch_size=8, n_train=32, net=TINY,
                            progress=False, cache_root=root, device="cpu")  # fmt: skip
    # Wake the zero-initialised heads so the outputs depend on the inputs (as after real training).
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.net.parameters():
            if not p.any():
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return m


@pytest.fixture(scope="module")
def data():
    return load_shapes(LEVEL, "test", 6, SIZE)


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_three_tasks_shapes_and_nfe(model, data):
    L = max_caption_length(LEVEL)
    t2i = ti.text_to_image(model, data.texts, steps=5, generator=_g())
    assert t2i.images.shape == (6, 3, SIZE, SIZE) and t2i.captions.shape == (6, L)
    assert t2i.images.dtype == torch.float32 and t2i.images.abs().max() <= 1  # the final denoise clips to [−1, 1]
    i2t = ti.image_to_text(model, data.images, steps=5, generator=_g())
    assert i2t.captions.shape == (6, L) and len(i2t.texts) == 6 and all(isinstance(t, str) for t in i2t.texts)
    pairs = ti.sample_pairs(model, 4, steps=5, generator=_g())
    assert pairs.images.shape == (4, 3, SIZE, SIZE) and pairs.captions.shape == (4, L)
    # Heun on pixels: 2 calls per step except the final denoise; characters: 1 call per step.
    assert t2i.nfe == ti.nfe_of(model, "t2i", 5) == 2 * 5 - 1
    assert i2t.nfe == ti.nfe_of(model, "i2t", 5) == 5
    assert pairs.nfe == ti.nfe_of(model, "joint", 5) == 2 * 5 - 1
    # With guidance: one weak call per evaluation of each iteration whose time is strictly inside (left, right).
    guide = NoisyGuidance(omega=2.0, sigma=0.5, left=0.3, right=0.8)
    times = torch.linspace(1, 0, 6)[:-1]
    guided = int(((times > 0.3) & (times < 0.8)).sum())
    t2i_g = ti.text_to_image(model, data.captions, steps=5, guidance=guide, generator=_g())
    i2t_g = ti.image_to_text(model, data.images, steps=5, guidance=guide, generator=_g())
    heun_guided = sum(2 if i < 4 else 1 for i, t in enumerate(times) if 0.3 < t < 0.8)
    assert t2i_g.nfe == ti.nfe_of(model, "t2i", 5, guidance=guide) == 9 + heun_guided
    assert i2t_g.nfe == ti.nfe_of(model, "i2t", 5, guidance=guide) == 5 + guided
    # and count_nfe with the official text–image setting: 50 steps, official grid, guidance on (0.3, 0.8): 149 calls
    official = NoisyGuidance(omega=2.0, left=0.3, right=0.8)
    assert ti.nfe_of(model, "t2i", 50, grid="official", guidance=official) == 149
    assert count_nfe(model.joint, sampled=["image"], steps=50, grids={"image": "official"}, guidance=official) == 149


def test_given_entries_are_returned_bit_identically(model, data):
    t2i = ti.text_to_image(model, data.captions, steps=3, generator=_g())
    assert torch.equal(t2i.captions, data.captions) and t2i.texts == data.texts
    i2t = ti.image_to_text(model, data.images, steps=3, generator=_g())
    assert torch.equal(i2t.images, data.images)
    # strings in, the same ids out
    assert torch.equal(ti.text_to_image(model, data.texts, steps=2, generator=_g()).captions, data.captions)


def test_guidance_weight_one_is_bit_identical_to_none(model, data):
    one = NoisyGuidance(omega=1.0, sigma=0.3, left=0.0, right=1.0)
    for fn, given in ((ti.text_to_image, data.captions), (ti.image_to_text, data.images)):
        a = fn(model, given, steps=4, generator=_g(3))
        b = fn(model, given, steps=4, guidance=one, generator=_g(3))
        assert torch.equal(a.images, b.images) and torch.equal(a.captions, b.captions) and a.nfe == b.nfe
    # ... and ω ≠ 1 changes the samples
    c = ti.text_to_image(model, data.captions, steps=4, guidance=NoisyGuidance(omega=3.0), generator=_g(3))
    assert not torch.equal(c.images, ti.text_to_image(model, data.captions, steps=4, generator=_g(3)).images)


def test_seeded_sampling_repeats(model, data):
    a = ti.sample_pairs(model, 3, steps=3, generator=_g(5))
    b = ti.sample_pairs(model, 3, steps=3, generator=_g(5))
    assert torch.equal(a.images, b.images) and torch.equal(a.captions, b.captions)
    # batching does not change what one call means (the same generator runs through the chunks)
    c = ti.sample_pairs(model, 3, steps=3, generator=_g(5), batch_size=2)
    assert c.images.shape == a.images.shape


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda m, d: ti.text_to_image(m, ["a Big red heart"]), ValueError, "outside the vocabulary"),
        (lambda m, d: ti.text_to_image(m, ["a big red heart!"]), ValueError, r"outside the vocabulary: \['!'\]"),
        (lambda m, d: ti.text_to_image(m, ["a" * 40]), ValueError, "at most 24"),
        (lambda m, d: ti.text_to_image(m, "a big red heart"), TypeError, "wrap it in a list"),
        (lambda m, d: ti.text_to_image(m, []), TypeError, "non-empty list"),
        (lambda m, d: ti.text_to_image(m, d.captions.float()), TypeError, "integer tensor"),
        (lambda m, d: ti.text_to_image(m, d.captions[:, :10]), ValueError, r"shape \(N, 25\)"),
        (lambda m, d: ti.text_to_image(m, d.captions + 30), ValueError, r"\[0, 25\)"),
        (lambda m, d: ti.image_to_text(m, d.images[:, :, :8, :8]), ValueError, r"\(N, 3, 16, 16\)"),
        (lambda m, d: ti.image_to_text(m, torch.zeros(2, 3, 32, 32)), ValueError, r"\(N, 3, 16, 16\)"),
        (lambda m, d: ti.image_to_text(m, (d.images * 127).to(torch.uint8)), TypeError, "float tensor"),
        (lambda m, d: ti.image_to_text(m, d.images.long()), TypeError, "float tensor"),
        (lambda m, d: ti.image_to_text(m, d.images.numpy()), TypeError, "torch.Tensor"),
        (lambda m, d: ti.image_to_text(m, d.images.clone().fill_(float("nan"))), ValueError, "NaN"),
        (lambda m, d: ti.text_to_image(m.net, d.texts), TypeError, "TextImageModel"),
        (lambda m, d: ti.text_to_image(m, d.texts, steps=0), ValueError, "steps"),
        (lambda m, d: ti.text_to_image(m, d.texts, grid="cosine"), ValueError, "grid"),
        (lambda m, d: ti.text_to_image(m, d.texts, guidance=2.0), TypeError, "NoisyGuidance"),
        (lambda m, d: ti.sample_pairs(m, 0), ValueError, "positive int"),
        (lambda m, d: ti.evaluate(m, tasks=("t2i", "captioning")), ValueError, "tasks"),
    ],
)
def test_bad_input_raises_one_clear_error(model, data, call, exc, match):
    with pytest.raises(exc, match=match):
        call(model, data)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="level"):
        ti.make_joint(6, 16)
    with pytest.raises(ValueError, match="image_size"):
        ti.make_net(3, 24)
    with pytest.raises(ValueError, match="weighting"):
        ti.make_joint(3, 16, weighting="min-snr")
    with pytest.raises(ValueError, match="unknown modality"):
        ti.make_joint(3, 16, loss_weights={"label": 2.0})
    with pytest.raises(TypeError, match="Clock"):
        ti.train_text_image("decoupled", steps=1)
    with pytest.raises(ValueError, match="mode"):
        ti.settings("tpu")


def test_joint_process_weightings():
    const = ti.make_joint(3, 16)
    assert const["caption"].loss_type == "ce" and const["image"].weighting is None
    assert const.loss_weights == {"image": 10.0, "caption": 1.0}  # the pixels' per-element mean is weighted 10
    assert const["image"].prediction == "v"
    assert ti.make_joint(3, 16, loss_weights={"caption": 0.5}).loss_weights == {"image": 10.0, "caption": 0.5}
    snr = ti.make_joint(3, 16, weighting="snr", loss_weights={"image": 2.0})
    L = max_caption_length(3)
    assert snr["caption"].loss_type == "elbo" and snr["image"].weighting == "min-snr-5"
    assert snr.loss_weights == {"image": 2.0, "caption": pytest.approx(1 / L)}
    assert snr.event_shapes == {"image": (3, 16, 16), "caption": (L,)}
    assert snr["image"].schedule.alpha(torch.tensor(1.0)).item() == pytest.approx(0.069, abs=1e-3)  # SD scaled-linear
    assert ti.make_joint(5, 32, schedule="cosine", prediction="eps")["image"].prediction == "eps"


def test_decode_marks_letters_after_the_end_marker():
    vocab = shapes_vocab()
    ok = torch.tensor([vocab.encode("a red star", 12)])
    bad = ok.clone()
    bad[0, 11] = vocab.stoi["x"] if "x" in vocab.stoi else vocab.stoi["a"]
    assert ti.decode_captions(ok) == ["a red star"]
    assert "_" in ti.decode_captions(bad)[0]  # the parser rejects it: a malformed sample


def test_settings_and_flops(model):
    assert ti.settings("fast")["mode"] == "fast" and ti.settings("gpu")["image_size"] == 32
    assert ti.settings("gpu")["levels"] == (1, 2, 3, 4, 5) and ti.settings("cpu")["image_size"] == 16
    cpu = ti.settings("cpu")
    assert cpu["clock"] is not ti.SETTINGS["cpu"]["clock"]  # a deep copy: safe to edit
    assert ti.clock_name(cpu["clock"]) == "decoupled + 30 % on an axis"
    assert ti.clock_name(ti.settings("gpu")["clock"]) == "decoupled"
    flops = ti.forward_flops(model.net)
    # the linear maps alone cost 2 × (their weights) × tokens: a lower bound
    tokens = model.net.n_patches + model.net.text_len
    linear = sum(p.numel() for n, p in model.net.blocks.named_parameters() if n.endswith("weight") and p.ndim == 2)
    assert flops >= 2 * linear * tokens * 0.5


def test_tiny_end_to_end_train_cache_evaluate(tmp_path, data):
    kw = dict(level=LEVEL, image_size=SIZE, steps=3, batch_size=8, n_train=32, net=TINY, progress=False,
              cache_root=tmp_path, device="cpu")  # fmt: skip
    m = ti.train_text_image(**kw)
    assert not m.loaded and len(m.losses) == 3 and set(m.terms) == {"image", "caption"}
    assert all(len(v) == 3 and all(math.isfinite(x) for x in v) for v in m.terms.values())
    again = ti.train_text_image(**kw)
    assert again.loaded and again.losses == m.losses and again.terms == m.terms
    xs = {"image": data.images, "caption": data.captions}
    ts = {"image": torch.full((6,), 0.5), "caption": torch.full((6,), 0.5)}
    assert all(torch.equal(again.net(xs, ts)[k], m.net(xs, ts)[k]) for k in xs)
    # a task-specific model: the caption is always clean, so its loss is 0 on every step
    t2i = ti.train_text_image(Decoupled(clean=("caption",)), **kw)
    assert t2i.name == "text→image only" and all(v == 0 for v in t2i.terms["caption"])
    assert ti.train_text_image(Unified(), **kw).name == "unified"
    with pytest.warns(UserWarning, match="not trustworthy"):  # a 3-step judge: enough to run the metrics
        judge = shape_judge(LEVEL, SIZE, cache=tmp_path, verbose=False, steps=3, batch_size=8)
    row = ti.evaluate(m, n=4, steps=2, judge=judge, keep=True)
    for key in ("t2i_strict", "i2t_strict", "joint_strict", "i2t_letters", "coverage", "distinct", "fd_floor"):
        assert 0 <= row[key] < math.inf, key
    assert row["t2i_nfe"] == 3 and row["i2t_nfe"] == 2 and set(row["samples"]) == {"t2i", "i2t", "joint"}
    lb = ti.leaderboard_row(LEVEL, row)
    assert lb["mvae"] == "49 / 0 / 0" and lb["t2i"] == 100 * row["t2i_strict"]
    only = ti.evaluate(m, n=4, steps=2, judge=judge, tasks=("i2t",), fd=False)
    assert math.isnan(only["t2i_strict"]) and not math.isnan(only["i2t_strict"])
    steps_rows = ti.compare_caption_steps(m, ("confidence", "ancestral"), n=4, steps=2, judge=judge)
    assert [r["method"] for r in steps_rows] == ["confidence", "ancestral"]
    assert all(r["i2t_nfe"] == 2 and 0 <= r["i2t_strict"] <= 1 for r in steps_rows)
    # the coherence table trains each level with the clock it is given (a setting's "clock"), and reuses what it has
    axis = AxisMixture(0.3, base=Decoupled())
    ev = dict(n=4, steps=2, judge=judge, fd=False)
    rows, models, _ = ti.coherence_by_level(
        (LEVEL,),
        clock=axis,
        image_size=SIZE,
        net=TINY,
        eval_kwargs=ev,
        train_kwargs=dict(steps=3, batch_size=8, n_train=32, cache_root=tmp_path),
    )
    assert [r["level"] for r in rows] == [LEVEL] and repr(models[LEVEL].clock) == repr(axis)
    assert models[LEVEL].name == "decoupled + 30 % on an axis" and not models[LEVEL].loaded
    _, reused, _ = ti.coherence_by_level((LEVEL,), image_size=SIZE, eval_kwargs=ev, reuse={LEVEL: m})
    assert reused[LEVEL] is m


def test_one_state_space_baseline_end_to_end(tmp_path, data):
    """Captions as Gaussian one-hot vectors: the round trip is exact, the network reads vectors, and the three tasks
    return ids (decoded by rounding) with the given entries kept; an ids net refuses vectors with a clear error."""
    ids = data.captions
    vec = ti.captions_to_vectors(ids)
    V = shapes_vocab().vocab_size
    assert vec.shape == (*ids.shape, V) and set(vec.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(ti.vectors_to_captions(vec), ids)
    assert torch.equal(ti.vectors_to_captions(vec + 0.4 * torch.randn(vec.shape, generator=_g())), ids)  # rounding
    jp = ti.make_joint(LEVEL, SIZE, caption_space="vectors")
    assert ti.caption_space(jp) == "vectors" and ti.caption_space(ti.make_joint(LEVEL, SIZE)) == "tokens"
    assert jp.loss_weights == {"image": 10.0, "caption": 10.0}
    kw = dict(level=LEVEL, image_size=SIZE, steps=3, batch_size=8, n_train=32, net=TINY, progress=False,
              cache_root=tmp_path, device="cpu", joint=dict(caption_space="vectors"))  # fmt: skip
    m = ti.train_text_image(**kw)
    assert m.net.text_input == "vectors" and all(math.isfinite(x) for x in m.losses)
    assert ti.train_text_image(**kw).loaded  # its own cache entry
    tokens = ti.train_text_image(**{**kw, "joint": None})
    assert not tokens.loaded and tokens.net.text_input == "ids"  # a different configuration, not a cache hit
    t2i = ti.text_to_image(m, data.texts, steps=3, generator=_g())
    assert torch.equal(t2i.captions, ids) and t2i.images.shape == (6, 3, SIZE, SIZE)  # the given caption, as ids
    i2t = ti.image_to_text(m, data.images, steps=3, generator=_g())
    assert torch.equal(i2t.images, data.images) and i2t.captions.dtype == torch.long and i2t.captions.shape == ids.shape
    assert i2t.nfe == ti.nfe_of(m, "i2t", 3) == 5  # Heun on the caption vectors: 2 calls a step, 1 at the end
    pairs = ti.sample_pairs(m, 4, steps=3, generator=_g())
    assert pairs.captions.shape == (4, ids.shape[1]) and len(pairs.texts) == 4
    with pytest.raises(TypeError, match="integer token ids"):
        tokens.net({"image": data.images, "caption": vec}, {"image": 0.5, "caption": 0.5})
    with pytest.raises(TypeError, match="float caption vectors"):
        m.net({"image": data.images, "caption": ids}, {"image": 0.5, "caption": 0.5})
    with pytest.raises(ValueError, match="caption_space"):
        ti.make_joint(LEVEL, SIZE, caption_space="embeddings")


def test_ablation_rows_at_equal_compute(tmp_path):
    with pytest.warns(UserWarning, match="not trustworthy"):
        judge = shape_judge(LEVEL, SIZE, cache=tmp_path, verbose=False, steps=3, batch_size=8)
    tr = dict(steps=4, batch_size=8, n_train=32, cache_root=tmp_path)
    rows, models = ti.ablation(level=LEVEL, image_size=SIZE, net=TINY, train_kwargs=tr, device="cpu",
                               eval_kwargs=dict(n=4, steps=2, judge=judge, fd=False))  # fmt: skip
    axis, axis90 = "decoupled + 30 % on an axis", "decoupled + 90 % on an axis"
    names = ["decoupled", "unified", axis, axis90, "two task-specific models", "one state space"]
    assert [r["model"] for r in rows] == names
    assert {r["model"]: r["examples"] for r in rows} == dict.fromkeys([r["model"] for r in rows], 32)
    assert ti.caption_space(models["one state space"].joint) == "vectors"
    assert repr(models[axis].clock) == repr(AxisMixture(0.3, base=Decoupled()))
    assert repr(models[axis90].clock) == repr(AxisMixture(0.9, base=Decoupled()))
    assert math.isnan(rows[4]["joint_strict"]) and not math.isnan(rows[5]["joint_strict"])


def test_axis_sweep_trains_one_model_per_share_and_reuses_what_it_is_handed(tmp_path):
    with pytest.warns(UserWarning, match="not trustworthy"):
        judge = shape_judge(LEVEL, SIZE, cache=tmp_path, verbose=False, steps=3, batch_size=8)
    tr = dict(steps=3, batch_size=8, n_train=32, cache_root=tmp_path)
    ev = dict(n=4, steps=2, judge=judge, fd=False)
    kw = dict(level=LEVEL, image_size=SIZE, net=TINY, train_kwargs=tr, device="cpu", eval_kwargs=ev)
    rows, models = ti.axis_sweep((0.0, 1.0), **kw)
    assert [(r["prob"], r["model"]) for r in rows] == [(0.0, "decoupled"), (1.0, "decoupled + 100 % on an axis")]
    assert repr(models["decoupled"].clock) == "Decoupled()"
    assert repr(models["decoupled + 100 % on an axis"].clock) == repr(AxisMixture(1.0, base=Decoupled()))
    assert all(r["examples"] == 24 and 0 <= r["i2t_strict"] <= 1 for r in rows)
    # a model handed in is used as it is (and its metrics, when given), not trained again
    mark = dict(rows[0], t2i_strict=0.123)
    again, reused = ti.axis_sweep((0.0,), reuse={"decoupled": models["decoupled"]}, evaluated={"decoupled": mark},
                                  **kw)  # fmt: skip
    assert reused["decoupled"] is models["decoupled"] and again[0]["t2i_strict"] == 0.123
    with pytest.raises(ValueError, match="trained for 3 steps; this sweep gives it 5"):
        ti.axis_sweep((0.0,), reuse={"decoupled": models["decoupled"]}, **{**kw, "train_kwargs": {**tr, "steps": 5}})
    with pytest.raises(ValueError, match="each share in probs"):
        ti.axis_sweep((0.3, 1.5), **kw)
    with pytest.raises((TypeError, ValueError), match="each share in probs"):
        ti.axis_sweep((0.3, "a lot"), **kw)
    with pytest.raises(ValueError, match="repeat"):
        ti.axis_sweep((0.3, 0.3), **kw)
    with pytest.raises(TypeError, match="non-empty sequence"):
        ti.axis_sweep((), **kw)


def test_bench_without_cuda_exits_cleanly_and_cli_overrides(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "bench_text_image.py"
    spec = importlib.util.spec_from_file_location("bench_text_image", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(device="cuda") == ""
    assert "no CUDA device" in capsys.readouterr().out
    # --axis / --two-stream override the setting's clock and network (the throughput section alone: a few steps)
    args = bench._parse(["--fast", "--sections", "throughput", "--axis", "0.5", "--two-stream", "--device", "cpu"])
    assert args["axis"] == 0.5 and args["two_stream"] is True
    text = bench.main(**{**args, "argv": []})
    assert "clock `AxisMixture(prob=0.5, base=Decoupled())`" in text and "'two_stream': True" in text
    assert "clock `Decoupled()`" in bench.main(fast=True, sections=("throughput",), axis=0.0, device="cpu")
    with pytest.raises(SystemExit):
        bench._parse(["--axis", "1.5"])
    assert "expected a share in [0, 1]" in capsys.readouterr().err
