"""Text side: the surname corpus, the two transformers and the bits/char metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from diffuse_edu.data.text import PAD, CharVocab, load_surnames, read_surnames, split_of, surnames_path
from diffuse_edu.metrics.text import (
    ar_bits_per_char,
    bits_per_char,
    diversity,
    n_chars,
    nelbo_bits_per_char,
    novelty,
    sample_entropy,
    unigram_bits_per_char,
)
from diffuse_edu.nets.transformer import CausalTransformer, DiffusionTransformer

# ---------------------------------------------------------------- data


@pytest.fixture(scope="module")
def test_split():
    return load_surnames("test")


def test_vocab_round_trip():
    vocab = CharVocab("hello world".replace(" ", "") + "xyz")
    assert vocab.vocab_size == len(set("helloworldxyz")) + 1 and vocab.itos[0] == PAD
    words = ["hello", "x", "wordy"]
    tok = vocab.encode_batch(words, 8)
    assert tok.shape == (3, 8) and tok.dtype == torch.long
    assert vocab.decode(tok) == words and vocab.decode(tok[0]) == "hello"
    assert vocab.decode_raw(tok[1]) == "x" + PAD * 7
    assert vocab.n_chars(tok).tolist() == [6, 2, 6]


def test_vocab_bad_input():
    vocab = CharVocab("abc")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.encode("abd", 8)
    with pytest.raises(ValueError, match="max_len=3 leaves room for 2"):
        vocab.encode("abc", 3)
    with pytest.raises(ValueError, match="reserved for padding"):
        CharVocab("ab" + PAD)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 4\)"):
        vocab.decode(torch.tensor([1, 4]))
    with pytest.raises(ValueError, match="a letter follows the end"):
        vocab.decode(torch.tensor([1, 0, 2]), strict=True)
    assert vocab.decode(torch.tensor([1, 0, 2])) == "a"  # non-strict: cut at the end


def test_well_formed():
    vocab = CharVocab("ab")
    tok = torch.tensor([[1, 2, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0], [2, 2, 2, 2]])
    assert vocab.is_well_formed(tok).tolist() == [True, False, False, True]


def test_corpus_shapes_and_padding(test_split):
    d = test_split
    assert d.tokens.dtype == torch.long and d.tokens.shape == (len(d.strings), 16) and d.n_dropped == 0
    assert d.vocab.vocab_size == 27 and "".join(d.vocab.chars) == "abcdefghijklmnopqrstuvwxyz"
    assert d.vocab.decode(d.tokens[:50]) == d.strings[:50]
    # every name ends with at least one PAD and nothing but PAD follows it
    assert (d.tokens[:, -1] == 0).all() and d.vocab.is_well_formed(d.tokens).all()
    assert (d.vocab.n_chars(d.tokens) == torch.tensor([len(s) + 1 for s in d.strings])).all()
    assert torch.equal(d.vocab.n_chars(d.tokens), n_chars(d.tokens, d.vocab.pad_id))  # data and metric agree
    short = load_surnames("test", max_len=12)
    assert short.n_dropped == sum(len(s) > 11 for s in d.strings) > 0 and len(short) + short.n_dropped == len(d)


def test_split_disjoint_and_deterministic(test_split):
    words, _ = read_surnames()
    assert len(words) == 88799 == len(set(words))  # distinct names: no duplicates to weigh
    splits = [split_of(w) for w in words]
    assert splits == [split_of(w) for w in words]  # a pure function of the spelling
    sizes = {s: splits.count(s) for s in ("train", "valid", "test")}
    assert sum(sizes.values()) == len(words)
    # hash buckets: each share within 4 binomial standard deviations of 80/10/10
    for name, share in (("train", 0.8), ("valid", 0.1), ("test", 0.1)):
        assert abs(sizes[name] / len(words) - share) < 4 * math.sqrt(share * (1 - share) / len(words))
    assert len(test_split) == sizes["test"]
    assert set(test_split.strings) == {w for w, s in zip(words, splits, strict=True) if s == "test"}


def test_checksum_failure_raises(tmp_path):
    bad = tmp_path / "dist.all.last"
    bad.write_text(surnames_path().read_text()[:-20])
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_surnames("train", path=bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_surnames("train", path=tmp_path / "missing")
    assert len(load_surnames("all", path=bad, sha256=None, limit=50)) == 50  # opting out of the check works


def test_load_bad_arguments():
    with pytest.raises(ValueError, match="split must be one of"):
        load_surnames("dev")
    with pytest.raises(ValueError, match="max_len must be an int"):
        load_surnames("test", max_len=1)


# ---------------------------------------------------------------- networks


def test_transformer_shapes_and_params():
    torch.manual_seed(0)
    den = DiffusionTransformer(28, 27, 16, width=32, depth=2, heads=4)
    ar = CausalTransformer(27, 16, width=32, depth=2, heads=4)
    x = torch.randint(0, 28, (3, 16))
    assert den(x, torch.rand(3)).shape == (3, 16, 27)
    assert den(x[:, :10], 0.5).shape == (3, 10, 27)  # shorter sequences and a scalar time work
    assert ar(x.clamp_max(26)).shape == (3, 16, 27)
    # same trunk: the denoiser only adds the time embedding
    extra = sum(p.numel() for p in den.time_emb.parameters())
    assert den.num_params() - extra == ar.num_params()
    adaln = DiffusionTransformer(28, 27, 16, width=32, depth=2, heads=4, time_conditioning="adaln")
    assert adaln(x, torch.rand(3)).shape == (3, 16, 27) and adaln.num_params() > den.num_params()
    blind = DiffusionTransformer(28, 27, 16, width=32, depth=2, heads=4, time_conditioning="none")
    assert blind.num_params() == ar.num_params() and torch.equal(blind(x, torch.zeros(3)), blind(x, torch.ones(3)))


def _perturbation_effect(fn, x, pos, vocab):
    """Max change of the output at every position when token ``pos`` changes; shape (L,)."""
    y = x.clone()
    y[:, pos] = (y[:, pos] + 1) % vocab
    return (fn(y) - fn(x)).abs().amax(dim=(0, 2))


def test_bidirectional_sees_future_causal_does_not():
    torch.manual_seed(0)
    den = DiffusionTransformer(10, 9, 8, width=32, depth=2, heads=2).eval()
    ar = CausalTransformer(9, 8, width=32, depth=2, heads=2).eval()
    x = torch.randint(0, 9, (2, 8))
    t = torch.full((2,), 0.5)
    d_eff = _perturbation_effect(lambda z: den(z, t), x, 5, 9)
    a_eff = _perturbation_effect(ar, x, 5, 9)
    assert (d_eff[:5] > 1e-4).all()  # earlier positions see a later token
    # logits at position i predict x_i from x_<i: positions ≤ 5 are blind to x_5, later ones see it
    assert (a_eff[:6] == 0).all() and (a_eff[6:] > 1e-4).all()
    # the time input matters for the denoiser
    assert not torch.allclose(den(x, torch.zeros(2)), den(x, torch.ones(2)))


def test_ar_nll_matches_manual_and_normalises():
    torch.manual_seed(1)
    V, L = 3, 3
    ar = CausalTransformer(V, L, width=16, depth=1, heads=2).eval()
    x = torch.tensor([[2, 0, 1]])
    manual = 0.0
    for i in range(L):
        # the prefix x_<i (padded with anything: later slots are masked out) predicts x_i
        logits = ar(torch.cat([x[:, :i], torch.zeros(1, L - i, dtype=torch.long)], dim=1))[0, i]
        manual -= F.log_softmax(logits, -1)[x[0, i]].item()
    assert ar.nll(x).item() == pytest.approx(manual, rel=1e-5)
    # exact likelihood: probabilities of all V^L sequences sum to one
    grid = torch.cartesian_prod(*[torch.arange(V)] * L)
    assert torch.exp(-ar.nll(grid).double()).sum().item() == pytest.approx(1.0, abs=1e-5)


def test_ar_sample_seeded_and_shapes():
    torch.manual_seed(2)
    ar = CausalTransformer(5, 6, width=16, depth=1, heads=2).eval()
    a = ar.sample(7, generator=torch.Generator().manual_seed(3))
    b = ar.sample(7, generator=torch.Generator().manual_seed(3))
    assert a.shape == (7, 6) and a.dtype == torch.long and torch.equal(a, b) and a.max() < 5


def test_network_bad_inputs():
    den = DiffusionTransformer(6, 5, 4, width=16, depth=1, heads=2)
    ar = CausalTransformer(5, 4, width=16, depth=1, heads=2)
    with pytest.raises(ValueError, match=r"expected ids in \[0, 6\)"):
        den(torch.full((2, 4), 6), torch.rand(2))
    with pytest.raises(TypeError, match="integer tensor"):
        den(torch.rand(2, 4), torch.rand(2))
    with pytest.raises(ValueError, match=r"shape \(B, L\)"):
        den(torch.zeros(2, 4, 1, dtype=torch.long), torch.rand(2))
    with pytest.raises(ValueError, match="max_len=4"):
        ar(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        den(torch.zeros(2, 4, dtype=torch.long), torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="divisible by heads"):
        CausalTransformer(5, 4, width=10, heads=3)
    with pytest.raises(ValueError, match="time_conditioning"):
        DiffusionTransformer(6, 5, 4, time_conditioning="concat")


# ---------------------------------------------------------------- metrics


def test_unigram_closed_form():
    vocab = CharVocab("ab")
    train = vocab.encode_batch(["ab", "a", "aab"], 5)  # letters: a×4, b×2, ends×3 → 9 events
    test = vocab.encode_batch(["ba", "b"], 5)  # b, a, end, b, end: 5 characters
    p = {"a": 4 / 9, "b": 2 / 9, "end": 3 / 9}
    closed = -(2 * math.log2(p["b"]) + math.log2(p["a"]) + 2 * math.log2(p["end"])) / 5
    res = unigram_bits_per_char(train, test, vocab.vocab_size)
    assert res.bpc == pytest.approx(closed, rel=1e-12) and res.n_chars == 5 and res.stderr == 0
    with pytest.raises(ValueError, match="never occurs"):
        unigram_bits_per_char(vocab.encode_batch(["a"], 3), test, vocab.vocab_size)
    assert math.isfinite(unigram_bits_per_char(vocab.encode_batch(["a"], 3), test, 3, smoothing=1.0).bpc)


def test_bits_per_char_and_ar_metric():
    assert bits_per_char(torch.tensor([math.log(2) * 3, math.log(2) * 5]), torch.tensor([2, 2])) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="must be positive"):
        bits_per_char(1.0, 0)
    torch.manual_seed(0)
    ar = CausalTransformer(4, 5, width=16, depth=1, heads=2)
    vocab = CharVocab("abc")
    x = vocab.encode_batch(["abc", "c", "ba"], 5)
    res = ar_bits_per_char(ar, x, batch_size=2)
    assert res.bpc == pytest.approx(ar.nll(x).sum().item() / (4 + 2 + 3) / math.log(2), rel=1e-6)
    assert res.n_chars == 9 == int(n_chars(x).sum())


def test_nelbo_bits_per_char_aggregates_the_process_estimator():
    from diffuse_edu.masked import MaskedProcess

    torch.manual_seed(0)
    vocab = CharVocab("abc")
    x = vocab.encode_batch(["abc", "c", "ba", "cab", "a"], 5)
    proc = MaskedProcess(vocab.vocab_size)
    den = DiffusionTransformer(5, 4, 5, width=16, depth=1, heads=2)
    res = nelbo_bits_per_char(proc, den, x, n_samples=4, batch_size=2, generator=torch.Generator().manual_seed(1))
    # the same draws, batch by batch, by hand: the totals add, the per-name variances add
    g = torch.Generator().manual_seed(1)
    parts = [proc.nelbo(den, b, n_samples=4, generator=g, reduction="none") for b in (x[:2], x[2:4], x[4:])]
    est, se = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    chars = 4 + 2 + 3 + 4 + 2
    assert res.n_chars == chars and res.n_names == 5
    assert res.bpc == pytest.approx(est.sum().item() / chars / math.log(2), rel=1e-9)
    assert res.stderr == pytest.approx(se.pow(2).sum().sqrt().item() / chars / math.log(2), rel=1e-9)
    assert res.stderr > 0
    with pytest.raises(TypeError, match="nelbo"):
        nelbo_bits_per_char(object(), den, x)


def test_novelty_diversity_entropy():
    train = ["ab", "ba", "abc"]
    samples = ["ab", "ab", "xy", "zz"]
    assert novelty(samples, train) == 0.5 and diversity(samples) == 0.75
    with pytest.raises(TypeError, match="list of strings"):
        novelty("ab", train)
    with pytest.raises(TypeError, match="only strings"):
        diversity([1, 2])
    with pytest.raises(ValueError, match="empty"):
        diversity([])
    tok = torch.tensor([[1, 2, 0, 0], [1, 1, 0, 0]])
    assert sample_entropy(tok, 3) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert sample_entropy(tok, 3, per_sample=True) == pytest.approx(0.5)  # 1 bit and 0 bits


# ---------------------------------------------------------------- recipes (notebook 02, benchmark)


def test_text_recipe_same_budget_and_cache_round_trip(tmp_path):
    from diffuse_edu.recipes.text import TextSetup, bits_per_char_table, text_cache_dir, train_text_models

    vocab = CharVocab("abc")
    data = vocab.encode_batch(["ab", "cab", "a", "bca", "cc", "b"] * 4, 5)
    setup = TextSetup(vocab.vocab_size, 5, width=16, depth=1, heads=2, steps=3, batch_size=4, warmup=1)
    first = train_text_models(setup, data, cache_root=tmp_path, device="cpu", progress=False)
    assert first.loaded == () and all(len(v) == 3 for v in first.losses.values())
    assert first.models["masked"].vocab_in == 5 and first.models["uniform"].net.vocab_in == 4
    assert text_cache_dir(setup, tmp_path).parent == tmp_path / "text"
    again = train_text_models(setup, data, cache_root=tmp_path, device="cpu", progress=False)
    assert again.loaded == ("masked", "uniform", "ar") and again.seconds == first.seconds
    x = data[:6]
    for k in ("masked", "uniform"):
        t = torch.full((6,), 0.5)
        assert torch.equal(again.models[k](x, t), first.models[k](x, t))  # the EMA weights came back exactly
    assert torch.equal(again.models["ar"].nll(x), first.models["ar"].nll(x))
    # same budget, same batches: retraining one kind without the cache gives the very same weights
    fresh = train_text_models(setup, data, kinds=("masked",), cache=False, device="cpu", progress=False)
    assert fresh.loaded == () and set(fresh.models) == {"masked"} and fresh.losses["masked"] == first.losses["masked"]
    table = bits_per_char_table(again, data, x, n_samples=2, generator=torch.Generator().manual_seed(0))
    assert set(table) == {"masked", "uniform", "ar", "unigram"}
    assert table["masked"].stderr > 0 and table["ar"].stderr == 0
    with pytest.raises(ValueError, match="kinds must be among"):
        train_text_models(setup, data, kinds=("gpt",))


def test_uniform_bayes_denoiser_is_the_exact_posterior():
    from diffuse_edu.nets.uniform_bayes import UniformBayesDenoiser
    from diffuse_edu.uniform import UniformProcess

    # With a context-blind network whose logits are log p(x0), the output must be Bayes' posterior
    # p(x0 | x_t) ∝ q(x_t | x0) p(x0) of a single token, computed here by brute force.
    V, proc = 4, UniformProcess(4)
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4])

    class Prior(torch.nn.Module):
        def forward(self, x, t):
            return prior.log().expand(*x.shape, V)

    net = UniformBayesDenoiser(Prior(), V)
    x_t = torch.tensor([[0, 3]])
    for t in (0.0, 0.3, 1.0):
        post = torch.softmax(net(x_t, torch.tensor([t])).double(), -1)[0]
        a = float(proc.schedule.alpha(torch.tensor(t, dtype=torch.float64)))
        for i, obs in enumerate(x_t[0].tolist()):
            lik = torch.tensor([a * (y == obs) + (1 - a) / V for y in range(V)], dtype=torch.float64)
            assert torch.allclose(post[i], lik * prior / (lik * prior).sum(), atol=1e-6)
