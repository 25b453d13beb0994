r"""Text metrics in bits per character, and sample statistics (quality, novelty, diversity, entropy).

Bits per character (bpc) of a set of names is the total negative log-likelihood in bits divided by the number of
characters, where each name counts its letters **plus one** for its end (the first ``PAD``, see
:mod:`diffuse_edu.data.text`). All models score the same fixed window of L tokens, pads included, so the numbers
compare directly:

* **masked / uniform diffusion**: the NELBO, an *upper bound* on −log p(x), estimated by Monte Carlo over t and x_t;
  we report its standard error (MDLM, Sahoo et al. 2024, eq. 10).
* **autoregressive**: the exact −log p(x) = −Σ_i log p(x_i | x_<i).
* **unigram**: every character (and the end) drawn independently from the training frequencies — the floor any model
  should beat.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_finite, check_index_tensor, check_number, check_positive_int

__all__ = [
    "LN2",
    "BitsPerChar",
    "SampleReport",
    "n_chars",
    "bits_per_char",
    "unigram_bits_per_char",
    "ar_bits_per_char",
    "nelbo_bits_per_char",
    "generative_bits_per_char",
    "novelty",
    "diversity",
    "sample_entropy",
    "sample_report",
]

LN2 = math.log(2.0)


@dataclass
class BitsPerChar:
    """A bits/char figure with its Monte-Carlo standard error (0 for exact likelihoods).

    Attributes:
        bpc: total bits / total characters.  stderr: standard error of ``bpc`` (Monte-Carlo only).
        n_names: sequences scored.  n_chars: the denominator (letters + one end per name).
    """

    bpc: float
    stderr: float
    n_names: int
    n_chars: int

    def __str__(self) -> str:
        err = f" ± {self.stderr:.4f}" if self.stderr else ""
        return f"{self.bpc:.4f}{err} bits/char ({self.n_names} names)"


def _check_tokens(tokens, name: str = "tokens", vocab_size: int | None = None, nonempty: bool = True) -> Tensor:
    check_index_tensor(tokens, name, vocab_size if vocab_size is not None else torch.iinfo(torch.long).max)
    if tokens.ndim != 2:
        raise ValueError(f"{name} must have shape (N, L); got shape {tuple(tokens.shape)}.")
    if nonempty and (tokens.shape[0] < 1 or tokens.shape[1] < 1):
        raise ValueError(f"{name} is empty (shape {tuple(tokens.shape)}); a metric needs at least one sequence.")
    return tokens


def _check_pad_id(pad_id, vocab_size: int | None = None) -> int:
    if isinstance(pad_id, bool) or not isinstance(pad_id, int) or pad_id < 0:
        raise ValueError(f"pad_id must be a non-negative int (a token id); got {pad_id!r}.")
    if vocab_size is not None and pad_id >= vocab_size:
        raise ValueError(f"pad_id={pad_id} is not a token id of a vocabulary of {vocab_size}.")
    return pad_id


def _as_numbers(x, name: str) -> Tensor:
    """A number or a tensor/array/list of real numbers as a float64 tensor (bools and strings refused)."""
    if isinstance(x, (bool, str, bytes)) or x is None:
        raise TypeError(f"{name} must be a number or a tensor of numbers; got {x!r:.40}.")
    try:
        t = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a number or a tensor of numbers: {err}") from None
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must hold real numbers; got dtype {t.dtype}.")
    return t.to(torch.float64)


def n_chars(tokens: Tensor, pad_id: int = 0) -> Tensor:
    """Characters per sequence for the bpc denominator: letters before the first ``PAD`` + 1 (the end). Shape (N,)."""
    _check_tokens(tokens, nonempty=False)
    _check_pad_id(pad_id)
    before_end = torch.cumsum((tokens == pad_id).long(), dim=-1) == 0  # (N, L)
    return before_end.sum(-1) + 1


def bits_per_char(nll_nats, chars) -> float:
    """Total NLL in nats (tensor of any shape, or a number) over total characters, in bits: Σ nll / (Σ chars · ln 2)."""
    nll, n = _as_numbers(nll_nats, "nll_nats"), _as_numbers(chars, "chars")
    check_finite(nll, "nll_nats")
    check_finite(n, "chars")
    if (n < 0).any() or (n != n.round()).any():
        raise ValueError("chars must hold non-negative whole numbers (characters per sequence).")
    total, count = float(nll.sum()), float(n.sum())
    if count <= 0:
        raise ValueError(f"the character count must be positive; got {count}.")
    if total < 0:
        raise ValueError(f"the total NLL must be >= 0 nats (a negative log-probability); got {total:.4g}.")
    return total / count / LN2


def unigram_bits_per_char(
    train_tokens: Tensor, test_tokens: Tensor, vocab_size: int, pad_id: int = 0, smoothing: float = 0.0
) -> BitsPerChar:
    r"""Exact bits/char of the unigram model fitted to the training counts.

    Each letter c has probability :math:`p(c) = (n_c + s) / (n + (V)s)` and the end of a name (its first ``PAD``)
    :math:`p(\text{end}) = (n_\text{names} + s) / (\ldots)`, where n counts letters and ends of the training set; the
    pads after the end are certain. The bpc is :math:`-\frac{1}{\ln 2}\sum \log p / \sum(\text{len}+1)` on the test set.

    Args:
        train_tokens, test_tokens: long shape (N, L), letters then ``PAD``.
        vocab_size: V (the ``PAD`` id doubles as the end symbol).
        smoothing: add-s counts (0 = maximum likelihood; raises if a test letter was never seen).
    """
    check_positive_int(vocab_size, "vocab_size", minimum=2)
    _check_tokens(train_tokens, "train_tokens", vocab_size)
    _check_tokens(test_tokens, "test_tokens", vocab_size)
    _check_pad_id(pad_id, vocab_size)
    smoothing = check_number(smoothing, "smoothing", 0.0)

    def counts(tok: Tensor) -> Tensor:
        # Letters before the end, plus one "end" event (counted on the PAD id) per name.
        before_end = torch.cumsum((tok == pad_id).long(), dim=-1) == 0
        c = torch.bincount(tok[before_end], minlength=vocab_size).double()
        c[pad_id] += tok.shape[0]
        return c

    train_c = counts(train_tokens) + smoothing
    logp = torch.log(train_c / train_c.sum())
    test_c = counts(test_tokens)
    if torch.isinf(logp[test_c > 0]).any():
        raise ValueError("a test token never occurs in the training set; use smoothing > 0.")
    nats = -(test_c * torch.where(test_c > 0, logp, torch.zeros_like(logp))).sum()
    chars = int(test_c.sum().item())
    return BitsPerChar(float(nats) / chars / LN2, 0.0, test_tokens.shape[0], chars)


def _batched(tokens: Tensor, batch_size: int) -> Iterable[Tensor]:
    check_positive_int(batch_size, "batch_size")  # before the generator starts: the error points at the caller
    return _batches(tokens, batch_size)


def _batches(tokens: Tensor, batch_size: int) -> Iterable[Tensor]:
    for i in range(0, tokens.shape[0], batch_size):
        yield tokens[i : i + batch_size]


@torch.no_grad()
def ar_bits_per_char(model, tokens: Tensor, pad_id: int = 0, batch_size: int = 2048) -> BitsPerChar:
    """Exact bits/char of an autoregressive model (anything with ``nll(x) -> (B,)`` nats) on ``tokens`` (N, L)."""
    _check_tokens(tokens)
    _check_pad_id(pad_id)
    if not callable(getattr(model, "nll", None)) or not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must have an nll(x) method (e.g. CausalTransformer); got {type(model).__name__}.")
    batches = _batched(tokens, batch_size)
    param = next(model.parameters(), None)
    device = param.device if param is not None else tokens.device
    was_training = model.training
    model.eval()
    nll = torch.cat([model.nll(b.to(device)).double().cpu() for b in batches])
    model.train(was_training)
    chars = n_chars(tokens, pad_id)
    return BitsPerChar(bits_per_char(nll, chars), 0.0, tokens.shape[0], int(chars.sum()))


@torch.no_grad()
def nelbo_bits_per_char(
    process,
    model,
    tokens: Tensor,
    pad_id: int = 0,
    n_samples: int = 8,
    batch_size: int = 1024,
    generator: torch.Generator | None = None,
) -> BitsPerChar:
    r"""Monte-Carlo NELBO in bits/char with its standard error, from the process's own estimator.

    For each batch, ``process.nelbo(model, x0, n_samples, reduction="none")`` (e.g.
    :meth:`~diffuse_edu.masked.MaskedProcess.nelbo`) returns every sequence's NELBO estimate in nats and its standard
    error from ``n_samples`` stratified times. Different sequences use independent draws, so the variance of the total
    is the sum of the per-sequence variances (this counts the Monte-Carlo error only, not the choice of test names).
    Costs ``n_samples`` network calls per batch.

    Args:
        process: a discrete process with a ``nelbo`` method (masked or uniform).
        model: the denoiser, ``model(x_t, t) -> logits (B, L, V)``.
        tokens: clean test sequences, long shape (N, L).
        n_samples: times per sequence (≥ 2 for the error bar).
        batch_size: sequences per network call.
        generator: source of all randomness.
    """
    _check_tokens(tokens)
    _check_pad_id(pad_id)
    if not callable(getattr(process, "nelbo", None)):
        raise TypeError(f"process must have a nelbo(model, x0, ...) estimator; got {type(process).__name__}.")
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t); got {type(model).__name__}.")
    check_positive_int(n_samples, "n_samples", minimum=2)  # the standard error needs two draws
    batches = _batched(tokens, batch_size)
    param = next(model.parameters(), None) if hasattr(model, "parameters") else None
    device = param.device if param is not None else tokens.device
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    est, var = [], []
    for batch in batches:
        e, se = process.nelbo(model, batch.to(device), n_samples=n_samples, generator=generator, reduction="none")
        est.append(e.double().cpu())
        var.append(se.double().cpu() ** 2)
    if hasattr(model, "train"):
        model.train(was_training)
    chars = n_chars(tokens, pad_id)
    total_chars = float(chars.sum())
    stderr = math.sqrt(float(torch.cat(var).sum())) / total_chars / LN2
    return BitsPerChar(bits_per_char(torch.cat(est), chars), stderr, tokens.shape[0], int(total_chars))


def generative_bits_per_char(ar_model, samples: Tensor, pad_id: int = 0, batch_size: int = 2048) -> float:
    """Quality of generated sequences: their bits/char under an autoregressive judge (generative perplexity = 2^bpc).

    Sequences are scored as generated (an ill-formed one, with a letter after its end, costs the judge many bits).
    ``samples`` long shape (N, L).
    """
    return ar_bits_per_char(ar_model, samples, pad_id, batch_size).bpc


def _as_strings(samples, name: str) -> list[str]:
    if isinstance(samples, str) or not isinstance(samples, Iterable):
        raise TypeError(f"{name} must be a list of strings; got {type(samples).__name__}.")
    samples = list(samples)
    if not all(isinstance(s, str) for s in samples):
        raise TypeError(f"{name} must contain only strings (decode token ids with CharVocab.decode first).")
    return samples


def novelty(samples, train) -> float:
    """Share of samples (a list of strings, repeats counted) that do not occur in the training set."""
    samples = _as_strings(samples, "samples")
    if not samples:
        raise ValueError("samples is empty.")
    train = set(_as_strings(train, "train"))
    return sum(s not in train for s in samples) / len(samples)


def diversity(samples) -> float:
    """Share of distinct strings among the samples (1 = no repeats)."""
    samples = _as_strings(samples, "samples")
    if not samples:
        raise ValueError("samples is empty.")
    return len(set(samples)) / len(samples)


def sample_entropy(tokens: Tensor, vocab_size: int, pad_id: int | None = 0, per_sample: bool = False) -> float:
    """Entropy in bits of the token histogram of generated sequences (``pad_id`` excluded when given).

    ``per_sample=False``: one histogram pooled over every sample (the unigram entropy of the generated text).
    ``per_sample=True``: each sample's own histogram, averaged (Zheng et al. 2024, who use it to expose the lowered
    temperature of float32 categorical draws). ``tokens`` long shape (N, L).
    """
    check_positive_int(vocab_size, "vocab_size")
    _check_tokens(tokens, "tokens", vocab_size)
    if pad_id is not None:
        _check_pad_id(pad_id, vocab_size)
    if not isinstance(per_sample, bool):
        raise TypeError(f"per_sample must be a bool; got {per_sample!r}.")
    rows = tokens if per_sample else tokens.reshape(1, -1)
    ents = []
    for row in rows:
        if pad_id is not None:
            row = row[row != pad_id]
        if row.numel() == 0:
            ents.append(0.0)
            continue
        p = torch.bincount(row, minlength=vocab_size).double() / row.numel()
        p = p[p > 0]
        ents.append(float(-(p * p.log2()).sum()))
    return sum(ents) / len(ents)


@dataclass
class SampleReport:
    """Statistics of a batch of generated names.

    Attributes:
        gen_bpc: bits/char under the autoregressive judge (lower = more data-like).
        novelty: share not in the training set.  diversity: share of distinct names.
        well_formed: share with ≥ 1 letter and no letter after the end.  entropy: pooled letter entropy in bits.
        n: number of samples.
    """

    gen_bpc: float
    novelty: float
    diversity: float
    well_formed: float
    entropy: float
    n: int


def sample_report(samples: Tensor, vocab, ar_model, train_strings) -> SampleReport:
    """All sample statistics at once for token ids ``samples`` (N, L) and a character vocabulary ``vocab`` (e.g.
    :class:`~diffuse_edu.data.text.CharVocab`: ``vocab_size``, ``pad_id``, ``decode``, ``is_well_formed``)."""
    if not all(hasattr(vocab, a) for a in ("vocab_size", "pad_id", "decode", "is_well_formed")):
        raise TypeError(f"vocab must be a character vocabulary (e.g. CharVocab); got {type(vocab).__name__}.")
    _check_tokens(samples, "samples", vocab.vocab_size)
    train_strings = set(_as_strings(train_strings, "train_strings"))
    strings = vocab.decode(samples)
    return SampleReport(
        gen_bpc=generative_bits_per_char(ar_model, samples, vocab.pad_id),
        novelty=novelty(strings, train_strings),
        diversity=diversity(strings),
        well_formed=float(vocab.is_well_formed(samples).float().mean()),
        entropy=sample_entropy(samples, vocab.vocab_size, vocab.pad_id),
        n=samples.shape[0],
    )
