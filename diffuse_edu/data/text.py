"""US-census surnames as a character-level text corpus (shipped by the ``names`` package; no network needed).

The file ``names/dist.all.last`` lists 88,799 *distinct* surnames from the 1990 US census, with the share of the
population carrying each one. We model the list of names (type level): every distinct surname counts once. The
frequency column is kept in :attr:`Surnames.freq` but not used for weighting, because it is rounded to 0.001 % and
reads 0.000 for about 79 % of the names, so weighting by it would mostly mean throwing the rare names away.

**Variable lengths: padding, no separate end marker.** Names are lower-cased and written into a fixed window of
``max_len`` positions, followed by ``PAD`` tokens. The first ``PAD`` *is* the end marker: it says "the name stops
here", and every later position is ``PAD`` by construction. An extra ``END`` token followed by ``PAD`` would carry
exactly the same information with one more symbol, so we do not add it. The sequence models (masked diffusion, uniform
diffusion, the autoregressive baseline) all score the whole window of ``max_len`` tokens, pads included; the pads after
the first cost almost nothing once a model has learnt the rule. Bits per character are then

    total negative log-likelihood in bits / Σ_names (len(name) + 1),

where the "+ 1" counts the end of each name (its first ``PAD``): the standard convention for character models with an
end-of-sequence symbol. The longest surname has 13 letters, so the default ``max_len = 16`` keeps every name and always
leaves room for the end; shorter windows drop the names that do not fit (:attr:`Surnames.n_dropped` says how many).

**Split.** Each name goes to train / validation / test by a hash of its spelling (SHA-256, 80 / 10 / 10 buckets). That
is deterministic across machines, library versions and seeds, and a name never moves when the list changes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "SURNAMES_SHA256",
    "PAD",
    "CharVocab",
    "Surnames",
    "surnames_path",
    "read_surnames",
    "split_of",
    "load_surnames",
]

#: SHA-256 of ``names/dist.all.last`` in ``names==0.3.0`` (88,799 lines).
SURNAMES_SHA256 = "b0e2b3743ccbad641ca48b344c24cdebcd1d9a1f76dc6dbf05986f2919f0b4e1"
#: The padding symbol in decoded strings (also the end of a name).
PAD = "_"
_SPLITS = ("train", "valid", "test")
# Hash buckets out of 100: [0, 80) train, [80, 90) validation, [90, 100) test.
_BOUNDS = {"train": (0, 80), "valid": (80, 90), "test": (90, 100)}


class CharVocab:
    """A character vocabulary: token 0 is ``PAD`` (which also ends a name), then the characters in sorted order.

    Args:
        chars: the characters to include (duplicates and order do not matter); must not contain ``PAD``.
    """

    def __init__(self, chars):
        if isinstance(chars, bytes) or not isinstance(chars, (str, Iterable)) or isinstance(chars, Mapping):
            raise TypeError(f"chars must be a string or a sequence of single characters; got {type(chars).__name__}.")
        chars = list(chars)
        if not all(isinstance(c, str) for c in chars):
            raise TypeError(
                f"chars must hold single characters (str); got {sorted({type(c).__name__ for c in chars})}."
            )
        chars = sorted(set(chars))
        if not chars:
            raise ValueError("CharVocab needs at least one character.")
        if PAD in chars:
            raise ValueError(f"the character {PAD!r} is reserved for padding; remove it from the vocabulary.")
        if any(len(c) != 1 for c in chars):
            raise ValueError(f"CharVocab expects single characters; got {[c for c in chars if len(c) != 1][:3]}.")
        self.chars: list[str] = chars
        self.itos: list[str] = [PAD] + chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}

    pad_id: int = 0

    def _ids(self, tokens) -> Tensor:
        """``tokens`` (a tensor or nested lists) as integer ids of shape (L,) or (N, L) in [0, vocab_size)."""
        if isinstance(tokens, (str, bytes)) or tokens is None:
            raise TypeError(f"tokens must be integer ids (a tensor or nested lists); got {type(tokens).__name__}.")
        try:
            t = torch.as_tensor(tokens)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"tokens must be integer ids (a tensor or nested lists of ints): {err}") from None
        if t.numel() == 0 and t.is_floating_point() and not isinstance(tokens, Tensor):
            t = t.long()  # [] or [[]]: no ids at all (torch reads an empty list as float)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool or t.ndim not in (1, 2):
            raise ValueError(f"tokens must be integer ids of shape (L,) or (N, L); got {t.dtype} {tuple(t.shape)}.")
        if t.numel() and (t.min() < 0 or t.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}); got [{t.min().item()}, {t.max().item()}].")
        return t

    @property
    def vocab_size(self) -> int:
        """Number of token ids, PAD included (the masked process adds its mask id = ``vocab_size`` on top)."""
        return len(self.itos)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"CharVocab(vocab_size={self.vocab_size}, chars={''.join(self.chars)!r})"

    def encode(self, word: str, max_len: int) -> list[int]:
        """Token ids of ``word`` padded with ``PAD`` to ``max_len``; raises if it does not fit with its end."""
        if not isinstance(word, str):
            raise TypeError(f"encode expects a str, got {type(word).__name__}.")
        _check_max_len(max_len)
        if len(word) + 1 > max_len:
            raise ValueError(f"{word!r} has {len(word)} characters; max_len={max_len} leaves room for {max_len - 1}.")
        unknown = sorted(set(word) - set(self.chars))
        if unknown:
            raise ValueError(f"{word!r} contains characters outside the vocabulary: {unknown}.")
        return [self.stoi[c] for c in word] + [self.pad_id] * (max_len - len(word))

    def encode_batch(self, words: list[str], max_len: int) -> Tensor:
        """Encode a list of strings; returns long tensor shape (N, max_len)."""
        if isinstance(words, str) or not isinstance(words, (list, tuple)):
            raise TypeError(f"words must be a list of strings; got {type(words).__name__}.")
        _check_max_len(max_len)
        return torch.tensor([self.encode(w, max_len) for w in words], dtype=torch.long).reshape(len(words), max_len)

    def decode(self, tokens, strict: bool = False) -> str | list[str]:
        """Strings from token ids: a name stops at its first ``PAD``.

        Args:
            tokens: shape (L,) or (N, L) ids in [0, vocab_size) (a tensor or nested lists).
            strict: raise if a letter follows a ``PAD`` (an ill-formed sequence) instead of cutting there.
        Returns:
            One string for shape (L,), a list of N strings for shape (N, L).
        """
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool; got {strict!r}.")
        t = self._ids(tokens)
        rows = t.tolist() if t.ndim == 2 else [t.tolist()]
        out = []
        for row in rows:
            n = row.index(self.pad_id) if self.pad_id in row else len(row)
            if strict and any(i != self.pad_id for i in row[n:]):
                raise ValueError(f"ill-formed sequence {self.decode_raw(row)!r}: a letter follows the end (PAD).")
            out.append("".join(self.itos[i] for i in row[:n]))
        return out[0] if t.ndim == 1 else out

    def decode_raw(self, tokens) -> str | list[str]:
        """Every position as a character (``PAD`` shown as ``_``), e.g. ``'smith___'``; shape (L,) or (N, L)."""
        t = self._ids(tokens)
        rows = t.tolist() if t.ndim == 2 else [t.tolist()]
        out = ["".join(self.itos[i] for i in row) for row in rows]
        return out[0] if t.ndim == 1 else out

    def is_well_formed(self, tokens: Tensor) -> Tensor:
        """Bool shape (N,): at least one letter, and no letter after the first ``PAD``."""
        tokens = self._ids(tokens)
        is_pad = tokens == self.pad_id
        # once a PAD is seen, every later position must be PAD: cumulative "seen a pad" ≤ is_pad.
        seen = torch.cumsum(is_pad.long(), dim=-1) > 0
        has_letter = ~is_pad[..., 0] if tokens.shape[-1] else torch.zeros(tokens.shape[:-1], dtype=torch.bool)
        return (~(seen & ~is_pad)).all(dim=-1) & has_letter

    def n_chars(self, tokens: Tensor) -> Tensor:
        """Denominator of bits/char per sequence: letters before the first ``PAD``, plus 1 for the end. Shape (N,).

        (:func:`diffuse_edu.metrics.text.n_chars` counts the same way; a test checks that the two agree.)
        """
        tokens = self._ids(tokens)
        before_end = torch.cumsum((tokens == self.pad_id).long(), dim=-1) == 0  # (N, L)
        return before_end.sum(-1) + 1


@dataclass
class Surnames:
    """One split of the surname corpus.

    Attributes:
        tokens: long tensor shape (N, max_len): letters then ``PAD`` (id 0).
        vocab: the shared :class:`CharVocab` (same for every split).
        strings: the N lower-case names, in the same order as ``tokens``.
        freq: float tensor shape (N,): percent of the 1990 US population with that name (rounded; 0 for most).
        split: ``"train"``, ``"valid"`` or ``"test"``.
        n_dropped: names of this split left out because they do not fit ``max_len`` with their end.
    """

    tokens: Tensor
    vocab: CharVocab
    strings: list[str]
    freq: Tensor
    split: str
    n_dropped: int

    @property
    def max_len(self) -> int:
        return self.tokens.shape[1]

    def __len__(self) -> int:
        return len(self.strings)


def surnames_path() -> Path:
    """Where the ``names`` package keeps its surname list (found without importing the package)."""
    spec = importlib.util.find_spec("names")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the `names` package is not installed; `pip install names==0.3.0` ships the surnames.")
    return Path(list(spec.submodule_search_locations)[0]) / "dist.all.last"


def _check_max_len(max_len) -> None:
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive int (the window length); got {max_len!r}.")


def _check_path(path, name: str = "path") -> None:
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str, an os.PathLike or None; got {type(path).__name__}.")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=4)
def _read_cached(path: str, sha256: str | None) -> tuple[tuple[str, ...], tuple[float, ...]]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"surname list not found at {p}; install `names==0.3.0` or pass path=.")
    if sha256 is not None:
        got = _sha256(p)
        if got != sha256:
            raise ValueError(
                f"checksum mismatch for {p}: sha256 {got}, expected {sha256}. The file differs from names==0.3.0's; "
                "reinstall the package (or pass sha256=None to skip the check at your own risk)."
            )
    words, freqs = [], []
    for line in p.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        words.append(parts[0].lower())
        freqs.append(float(parts[1]) if len(parts) > 1 else 0.0)
    if not words:
        raise ValueError(f"{p} holds no names.")
    return tuple(words), tuple(freqs)


def read_surnames(
    path: str | Path | None = None, sha256: str | None = SURNAMES_SHA256
) -> tuple[list[str], list[float]]:
    """All surnames (lower case, file order) and their population percentages, after checking the file's SHA-256.

    Args:
        path: the file; default :func:`surnames_path`.
        sha256: the expected checksum; ``None`` skips the check.
    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the checksum differs.
    """
    _check_path(path)
    if sha256 is not None and not isinstance(sha256, str):
        raise TypeError(f"sha256 must be a hex string or None; got {type(sha256).__name__}.")
    words, freqs = _read_cached(str(path or surnames_path()), sha256)
    return list(words), list(freqs)


def split_of(word: str) -> str:
    """The split a name belongs to, from the SHA-256 of its spelling: 80 % train, 10 % valid, 10 % test."""
    if not isinstance(word, str):
        raise TypeError(f"word must be a str; got {type(word).__name__}.")
    bucket = int.from_bytes(hashlib.sha256(word.encode("utf-8")).digest()[:8], "big") % 100
    for name, (lo, hi) in _BOUNDS.items():
        if lo <= bucket < hi:
            return name
    raise AssertionError("unreachable")


def load_surnames(
    split: str = "train",
    max_len: int = 16,
    path: str | Path | None = None,
    sha256: str | None = SURNAMES_SHA256,
    limit: int | None = None,
) -> Surnames:
    """Load one split of the surname corpus as padded token ids.

    Args:
        split: ``"train"``, ``"valid"`` or ``"test"`` (``"all"`` returns every name).
        max_len: window length L; names longer than L − 1 letters are dropped (none at the default 16).
        path, sha256: see :func:`read_surnames`.
        limit: keep only the first ``limit`` names of the split (file order = most common first).
    Returns:
        :class:`Surnames` with ``tokens`` shape (N, max_len).
    """
    if split not in (*_SPLITS, "all"):
        raise ValueError(f"split must be one of {_SPLITS + ('all',)}; got {split!r}.")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2:
        raise ValueError(f"max_len must be an int ≥ 2 (one letter + the end); got {max_len!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None; got {limit!r}.")
    words, freqs = read_surnames(path, sha256)
    # The vocabulary comes from the whole file, so every split shares the same ids.
    vocab = CharVocab("".join(words))
    keep_w, keep_f, dropped = [], [], 0
    for w, f in zip(words, freqs, strict=True):
        if split != "all" and split_of(w) != split:
            continue
        if len(w) + 1 > max_len:
            dropped += 1
            continue
        keep_w.append(w)
        keep_f.append(f)
    if limit is not None:
        keep_w, keep_f = keep_w[:limit], keep_f[:limit]
    tokens = vocab.encode_batch(keep_w, max_len)
    return Surnames(tokens, vocab, keep_w, torch.tensor(keep_f, dtype=torch.float32), split, dropped)
