"""Random minibatches forever, reshuffled every epoch: the input :func:`diffuse_edu.train.train_iter` expects.

:func:`infinite_batches` returns a :class:`BatchStream`, a plain iterator with two extras the training loop uses:

- ``state_dict()`` / ``load_state_dict()``: the shuffling generator's state, the current epoch's permutation and the
  position in it, so a run resumed from a checkpoint draws exactly the batches the uninterrupted run would have.
- ``shard(rank, world_size)``: under data parallelism every rank walks the *same* global stream of
  ``batch_size × world_size`` examples per step and keeps its own slice ``[rank·B, (rank+1)·B)``. No two ranks see the
  same example in a step, and the union of the ranks' batches is exactly the batch one process would draw with
  ``batch_size × world_size``, which is what makes a 2-process run comparable with a 1-process run.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["BatchStream", "infinite_batches"]


class BatchStream(Iterator):
    """An endless iterator of random minibatches (without replacement inside each epoch); see :func:`infinite_batches`.

    Attributes:
        batch_size: examples per batch on this rank (B).
        num_examples: dataset size N.
        generator: the generator that draws each epoch's permutation (None: torch's global one).
        rank, world_size: this rank's slice of the global batch (0 and 1 outside data parallelism).
        epoch: number of permutations drawn so far.
    """

    def __init__(
        self,
        data: list[Tensor],
        keys: list[str] | None,
        batch_size: int,
        generator: torch.Generator | None,
        drop_last: bool,
    ):
        self._data, self._keys = data, keys
        self.batch_size = batch_size
        self.num_examples = data[0].shape[0]
        self.generator = generator
        self.drop_last = drop_last
        self.rank, self.world_size = 0, 1
        self.epoch = 0
        self._perm: Tensor | None = None  # shape (N,), the current epoch's order; None before the first batch
        self._pos = 0  # index in _perm of the next global batch

    # ------------------------------------------------------------------------------------------------------ iteration
    def _global_batch(self) -> int:
        return self.batch_size * self.world_size

    def _epoch_stop(self) -> int:
        # drop_last: every global batch is full, so every rank's batch has exactly batch_size rows.
        g = self._global_batch()
        return self.num_examples - self.num_examples % g if self.drop_last else self.num_examples

    def _placed(self, perm: Tensor) -> Tensor:
        # Data on the GPU, order drawn on the CPU: pinned indices copy without waiting for the GPU's queued work.
        if perm.device.type == "cpu" and any(t.is_cuda for t in self._data):
            return perm.pin_memory()
        return perm

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self):
        if self._perm is None or self._pos >= self._epoch_stop():
            device = self.generator.device if self.generator is not None else torch.device("cpu")
            self._perm = self._placed(torch.randperm(self.num_examples, generator=self.generator, device=device))
            self._pos = 0
            self.epoch += 1
        start = self._pos + self.rank * self.batch_size
        idx = self._perm[start : min(start + self.batch_size, self._pos + self._global_batch())]
        self._pos += self._global_batch()
        parts = [t[idx.to(t.device, non_blocking=True)] for t in self._data]
        if self._keys is not None:
            return dict(zip(self._keys, parts, strict=True))
        return parts[0] if len(parts) == 1 else tuple(parts)

    # -------------------------------------------------------------------------------------------------- data parallel
    def shard(self, rank: int, world_size: int, seed: int | None = None) -> BatchStream:
        """Make this stream rank ``rank``'s slice of a global stream of ``batch_size × world_size`` examples per step.

        Every rank must hold an identically seeded stream (same data, same generator seed, same position): then each
        rank draws the same permutation and keeps rows ``[rank·B, (rank+1)·B)`` of every global batch. Changes the
        stream in place and returns it.

        Args:
            rank: this process's rank, in [0, world_size).
            world_size: number of processes.
            seed: needed only when the stream has no generator and ``world_size > 1``: the global generator differs
                between ranks, so a private generator seeded with ``seed`` (the same on every rank) takes over.
        """
        for name, v in (("rank", rank), ("world_size", world_size)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name} must be an int; got {type(v).__name__}.")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"need world_size >= 1 and 0 <= rank < world_size; got rank={rank}, world_size={world_size}."
            )
        if world_size > 1:
            if not self.drop_last:
                raise ValueError(
                    "shard() needs drop_last=True: with a partial last batch some ranks would get fewer (or no) rows."
                )
            if self.batch_size * world_size > self.num_examples:
                raise ValueError(
                    f"batch_size={self.batch_size} × world_size={world_size} exceeds the {self.num_examples} examples; "
                    "lower batch_size."
                )
            if self.generator is None:
                if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                    raise TypeError(f"seed must be an int (shared by every rank) or None; got {seed!r}.")
                if seed is None:
                    raise ValueError(
                        "a stream without a generator can be sharded only with a seed (shared by all ranks); pass "
                        "generator=torch.Generator().manual_seed(s) to infinite_batches, or seed= to shard()."
                    )
                self.generator = torch.Generator().manual_seed(int(seed))
        self.rank, self.world_size = rank, world_size
        return self

    # ----------------------------------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        """Everything needed to continue the stream exactly: JSON scalars plus tensors (for a checkpoint).

        Returns:
            ``{"epoch", "position", "num_examples", "batch_size", "world_size", "drop_last", "permutation": Tensor |
            None, "generator": ByteTensor | None}`` (``generator`` is None when the stream draws from torch's global
            generator: the training loop saves that one itself).
        """
        return {
            "epoch": self.epoch,
            "position": self._pos,
            "num_examples": self.num_examples,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "drop_last": self.drop_last,
            "permutation": None if self._perm is None else self._perm.cpu().clone(),
            "generator": None if self.generator is None else self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` (of a stream over the same data, same batch size)."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from BatchStream.state_dict(); got {type(state).__name__}.")
        missing = {"epoch", "position", "num_examples", "permutation", "generator"} - set(state)
        if missing:
            raise ValueError(f"state is missing {sorted(missing)}; expected a BatchStream.state_dict().")
        if state["num_examples"] != self.num_examples:
            raise ValueError(
                f"the saved stream ran over {state['num_examples']} examples, this one over {self.num_examples}: "
                "not the same data."
            )
        if state.get("batch_size", self.batch_size) != self.batch_size:
            raise ValueError(
                f"the saved stream drew batches of {state['batch_size']}, this one of {self.batch_size}: "
                "exact continuation needs the same batch_size."
            )
        perm = state["permutation"]
        if perm is not None and (not isinstance(perm, Tensor) or perm.shape != (self.num_examples,)):
            raise ValueError(f"state['permutation'] must be a tensor of shape ({self.num_examples},).")
        if perm is not None and (
            perm.is_floating_point()
            or perm.dtype == torch.bool
            or not torch.equal(perm.cpu().sort().values, torch.arange(self.num_examples))
        ):
            raise ValueError(f"state['permutation'] must be a permutation of 0..{self.num_examples - 1} (integer ids).")
        for key in ("position", "epoch"):  # a position past the epoch's end just starts the next epoch
            v = state[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"state[{key!r}] must be an int >= 0; got {v!r}.")
        gen_state = state["generator"]
        if gen_state is not None:
            if not isinstance(gen_state, Tensor) or gen_state.dtype != torch.uint8:
                raise TypeError(
                    f"state['generator'] must be a generator state (a uint8 tensor) or None; got {gen_state!r:.60}."
                )
            generator = self.generator if self.generator is not None else torch.Generator()
            try:  # on a copy first: a bad state must leave this stream untouched
                torch.Generator(device=generator.device).set_state(gen_state)
            except RuntimeError as err:
                raise ValueError(f"state['generator'] is not a valid generator state: {err}") from None
            # The saved stream had its own generator (e.g. made for a shard): recreate one to hold its state.
            self.generator = generator
            self.generator.set_state(gen_state)
        device = self.generator.device if self.generator is not None else torch.device("cpu")
        self._perm = None if perm is None else self._placed(perm.to(device=device, dtype=torch.long))
        self._pos = int(state["position"])
        self.epoch = int(state["epoch"])

    def __repr__(self) -> str:
        shard = f", rank={self.rank}/{self.world_size}" if self.world_size > 1 else ""
        return f"BatchStream(N={self.num_examples}, batch_size={self.batch_size}, epoch={self.epoch}{shard})"


def infinite_batches(
    *tensors: Tensor | dict[str, Tensor],
    batch_size: int,
    generator: torch.Generator | None = None,
    drop_last: bool = True,
) -> BatchStream:
    """Random minibatches of the given tensors forever (sampling without replacement inside each epoch).

    Args:
        *tensors: one tensor, several tensors of equal length, or one dict of tensors of equal length (N first).
        batch_size: examples per batch (per rank under data parallelism: see :meth:`BatchStream.shard`).
        generator: draws the shuffles (seeded generator → the same batches every run; None: torch's global one).
        drop_last: skip the incomplete last batch of each epoch (so every batch has ``batch_size`` rows).
    Returns:
        A :class:`BatchStream`; ``next()`` gives whatever was given, indexed: a tensor (B, ...), a tuple of tensors,
        or a dict of tensors.
    """
    if not tensors:
        raise ValueError("infinite_batches needs at least one tensor (or a dict of tensors); got none.")
    if len(tensors) == 1 and isinstance(tensors[0], dict):
        data, keys = list(tensors[0].values()), [str(k) for k in tensors[0]]
    else:
        data, keys = list(tensors), None
    if not data or not all(isinstance(t, Tensor) for t in data):
        kinds = sorted({type(t).__name__ for t in data})
        raise TypeError(f"infinite_batches takes tensors, or one dict of tensors; got {kinds or 'an empty dict'}.")
    n = data[0].shape[0] if data[0].ndim else 0
    if any(t.ndim == 0 or t.shape[0] != n for t in data):
        raise ValueError(f"all tensors must share their first dimension; got shapes {[tuple(t.shape) for t in data]}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got {type(generator).__name__}.")
    if not isinstance(drop_last, bool):
        raise TypeError(f"drop_last must be a bool; got {type(drop_last).__name__}.")
    if n == 0:
        raise ValueError("cannot draw batches from an empty dataset (N = 0).")
    if drop_last and batch_size > n:
        raise ValueError(f"batch_size={batch_size} exceeds the {n} examples; lower it or use drop_last=False.")
    return BatchStream(data, keys, batch_size, generator, drop_last)
