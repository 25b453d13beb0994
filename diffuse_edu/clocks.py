r"""Training clocks: how the per-modality times are drawn for one training batch.

Which times a joint network is trained on decides what it can do afterwards. With modalities m = 1..M each clock
returns a dict name → times of shape (B,):

* :class:`Decoupled` — independent :math:`t_m \sim U[0, 1]` (the paper): the whole unit cube, so one model does joint
  sampling (the diagonal), every conditional (a modality held at t = 0) and noisy guidance (a modality re-noised to some
  σ).
* :class:`Unified` — one shared t (the baseline the paper argues against): only the diagonal.
* :class:`AxisMixture` — a base clock (unified by default), except that with probability ``prob`` one modality,
  chosen uniformly, is clean (t = 0) while the others keep their noisy times: the diagonal plus the axes.
* :class:`Grouped` — modalities in one group share a clock, groups are independent: the paper's tabular setting
  (one clock for all columns, or one per column type), and :class:`Decoupled` / :class:`Unified` as its two ends.
* :class:`Mixture` — each example takes its times from one of several clocks, chosen at random: e.g. half the batch
  on one shared clock (the diagonal, for joint sampling) and half decoupled (every conditional, for imputation).

Every clock takes ``clean=(names…)``: those modalities are always at t = 0 (e.g. ``Decoupled(clean=("label",))``
trains a label → point conditional model only). Randomness is drawn in a fixed order, whatever the values, so seeded
runs repeat bit-exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._checks import check_device, check_generator, check_names, check_positive_int, check_probability
from ._random import rand

__all__ = ["Clock", "Decoupled", "Unified", "AxisMixture", "Grouped", "Mixture"]


class Clock:
    """Base class: ``clock(names, batch, generator=None, device=None) -> {name: times (B,)}``.

    Args:
        clean: modalities always at t = 0.
    """

    def __init__(self, clean: Sequence[str] = ()):
        self.clean = check_names(clean, "clean (a sequence of modality names, e.g. ('label',))", allow_empty=True)

    def check_names(self, names: Sequence[str]) -> None:
        """Raise a clear error if this clock refers to a modality outside ``names``."""
        unknown = [c for c in self.referenced() if c not in names]
        if unknown:
            raise ValueError(f"{self!r} names modality(ies) {unknown}, but the modalities are {list(names)}.")

    def referenced(self) -> tuple[str, ...]:
        """Every modality name this clock mentions (checked against the joint process)."""
        return self.clean

    def __call__(
        self, names: Sequence[str], batch: int, generator: torch.Generator | None = None, device=None
    ) -> dict[str, Tensor]:
        names = check_names(names, "names")
        check_positive_int(batch, "batch")
        check_generator(generator)
        device = check_device(device)
        self.check_names(names)
        ts = self._draw(names, batch, generator, device)
        for n in self.clean:
            ts[n] = torch.zeros_like(ts[n])
        return ts

    def _draw(self, names: tuple[str, ...], batch: int, generator, device) -> dict[str, Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if v not in ((), None))
        return f"{type(self).__name__}({params})"


class Decoupled(Clock):
    """Independent U[0, 1) times, one per modality and example (one U(B) draw per modality, in name order)."""

    def _draw(self, names, batch, generator, device):
        return {n: rand(batch, generator, device) for n in names}


class Unified(Clock):
    """One shared U[0, 1) time per example for every modality (one U(B) draw)."""

    def _draw(self, names, batch, generator, device):
        shared = rand(batch, generator, device)
        return {n: shared.clone() for n in names}


class AxisMixture(Clock):
    """A base clock, plus: with probability ``prob`` one modality (chosen uniformly) is set to t = 0.

    Args:
        prob: share of examples put on an axis, in [0, 1].
        base: the off-axis clocks (default :class:`Unified`: diagonal + axes).
        clean: modalities always at t = 0.

    Draws: the base clock's, then U(B) for "on an axis?" and U(B) for which modality.
    """

    def __init__(self, prob: float = 0.5, base: Clock | None = None, clean: Sequence[str] = ()):
        super().__init__(clean)
        self.prob = check_probability(prob, "prob")
        base = Unified() if base is None else base
        if not isinstance(base, Clock) or isinstance(base, AxisMixture):
            raise TypeError(f"base must be a Clock other than AxisMixture (e.g. Unified()); got {base!r}.")
        self.base = base

    def referenced(self) -> tuple[str, ...]:
        return self.clean + self.base.referenced()

    def _draw(self, names, batch, generator, device):
        ts = self.base(names, batch, generator, device)
        on_axis = rand(batch, generator, device) < self.prob
        # which modality is clean: uniform over the M modalities (floor(M·U) < M since U < 1)
        pick = (rand(batch, generator, device) * len(names)).long()
        for i, n in enumerate(names):
            ts[n] = torch.where(on_axis & (pick == i), torch.zeros_like(ts[n]), ts[n])
        return ts


class Grouped(Clock):
    """Modalities in one group share one U[0, 1) time; groups are independent.

    Args:
        groups: a list of groups, each a list of modality names, e.g. ``[["age", "hours"], ["workclass", …]]`` (one
            clock per column type) or ``[all_columns]`` (one clock for the whole row: the official tabular setting).
            A modality in no group gets a clock of its own. A name may appear in one group only.
        clean: modalities always at t = 0.

    Draws: one U(B) per group in the given order, then one per ungrouped modality in name order.
    """

    def __init__(self, groups: Sequence[Sequence[str]], clean: Sequence[str] = ()):
        super().__init__(clean)
        if isinstance(groups, str) or not isinstance(groups, Sequence) or not groups:
            raise TypeError(f"groups must be a non-empty list of lists of modality names; got {groups!r}.")
        seen: set[str] = set()
        out = []
        for g in groups:
            if isinstance(g, str) or not isinstance(g, Sequence) or not g or not all(isinstance(n, str) for n in g):
                raise TypeError(f"each group must be a non-empty list of modality names; got {g!r}.")
            dup = seen.intersection(g)
            if dup or len(set(g)) != len(g):
                raise ValueError(f"a modality may belong to one group only; repeated: {sorted(dup) or list(g)}.")
            seen.update(g)
            out.append(tuple(g))
        self.groups = tuple(out)

    def referenced(self) -> tuple[str, ...]:
        return self.clean + tuple(n for g in self.groups for n in g)

    @classmethod
    def by_kind(cls, processes: dict, clean: Sequence[str] = ()) -> Grouped:
        """One clock per process kind (e.g. all Gaussian columns share one, all masked columns another)."""
        if not hasattr(processes, "items") or not processes:
            raise TypeError(f"processes must be a non-empty dict name -> Process; got {processes!r}.")
        kinds: dict[str, list[str]] = {}
        for name, proc in processes.items():
            kinds.setdefault(proc.kind, []).append(name)
        return cls(list(kinds.values()), clean=clean)

    def _draw(self, names, batch, generator, device):
        ts = {}
        for g in self.groups:
            shared = rand(batch, generator, device)
            for n in g:
                ts[n] = shared.clone()
        for n in names:
            if n not in ts:
                ts[n] = rand(batch, generator, device)
        return {n: ts[n] for n in names}


class Mixture(Clock):
    """Each example draws its times from one of ``clocks``, chosen with probabilities ``probs``.

    Args:
        clocks: two or more clocks (not mixtures themselves).
        probs: their probabilities (non-negative, summing to 1); default uniform.
        clean: modalities always at t = 0.

    Draws: each clock's full batch in order, then U(B) to choose per example.
    """

    def __init__(self, clocks: Sequence[Clock], probs: Sequence[float] | None = None, clean: Sequence[str] = ()):
        super().__init__(clean)
        clocks = tuple(clocks) if not isinstance(clocks, Clock) else ()
        if len(clocks) < 2 or not all(isinstance(c, Clock) and not isinstance(c, Mixture) for c in clocks):
            raise TypeError(f"clocks must be two or more Clock objects (not Mixtures); got {clocks!r}.")
        if probs is not None and (isinstance(probs, (str, bytes)) or not hasattr(probs, "__iter__")):
            raise TypeError(f"probs must be a sequence of probabilities, one per clock; got {probs!r}.")
        probs = (
            [1.0 / len(clocks)] * len(clocks) if probs is None else [check_probability(p, "probs[i]") for p in probs]
        )
        if len(probs) != len(clocks) or abs(sum(probs) - 1.0) > 1e-9:
            raise ValueError(f"probs must have one probability per clock, summing to 1; got {probs!r}.")
        self.clocks, self.probs = clocks, tuple(probs)

    def referenced(self) -> tuple[str, ...]:
        return self.clean + tuple(n for c in self.clocks for n in c.referenced())

    def _draw(self, names, batch, generator, device):
        draws = [c(names, batch, generator, device) for c in self.clocks]
        u = rand(batch, generator, device)
        edges = torch.tensor(self.probs, dtype=torch.float64).cumsum(0)[:-1].tolist()
        pick = torch.zeros(batch, dtype=torch.long, device=u.device)
        for e in edges:  # which clock: the first whose cumulative probability exceeds u
            pick = pick + (u >= e).long()
        ts = {}
        for n in names:
            t = draws[0][n]
            for i in range(1, len(draws)):
                t = torch.where(pick == i, draws[i][n], t)
            ts[n] = t
        return ts
