r"""Joint diffusion over several state spaces, each with its own process and its own clock (Rojas et al. 2025).

A :class:`JointProcess` is a dict of named :class:`~diffuse_edu.process.Process` objects (Gaussian, masked, uniform,
…). Each modality m is noised independently with its own time :math:`t_m`, so the joint forward process factorises,
:math:`q(x_t \mid x_0) = \prod_m q_m(x^m_{t_m} \mid x^m_0)`, and one network
``net(xs: dict, ts: dict) -> dict`` sees every modality's noisy state and every modality's time and returns one output
per modality. The training loss is the weighted sum of the per-modality losses (the multimodal loss of Rojas et al.
2025).

Which times the network is trained on decides what it can do afterwards: the training clocks are small objects in
:mod:`diffuse_edu.clocks` (:class:`~diffuse_edu.clocks.Decoupled`, the paper's, by default).

Sampling lives in :mod:`diffuse_edu.sampling` and guidance in :mod:`diffuse_edu.guidance`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from ._checks import (
    check_device,
    check_event_shape,
    check_generator,
    check_names,
    check_number,
    check_positive_int,
    check_time,
)
from .clocks import Clock, Decoupled
from .process import Process

__all__ = ["JointProcess", "SingleModality"]


class JointProcess:
    """A product of named processes, one clock per modality.

    Args:
        processes: name → process, e.g. ``{"point": GaussianProcess(...), "label": MaskedProcess(8, ...)}``. The
            insertion order is the order in which randomness is drawn (so seeded runs are reproducible).
        loss_weights: name → weight of that modality's loss (default 1 for each).
        event_shapes: name → shape of one example without the batch dimension, e.g. ``{"point": (2,),
            "label": (1,)}``. Optional; when given, :meth:`validate` checks shapes and :meth:`prior` needs no shapes.
        mask_clean_loss: drop a modality's loss on examples where its time is exactly 0. Such a modality is a clean
            condition, not a target: there is nothing to denoise (and an ε-prediction target would be pure noise).
    """

    def __init__(
        self,
        processes: Mapping[str, Process],
        loss_weights: Mapping[str, float] | None = None,
        event_shapes: Mapping[str, Sequence[int]] | None = None,
        mask_clean_loss: bool = True,
    ):
        if not isinstance(processes, Mapping) or not processes:
            raise TypeError("processes must be a non-empty dict of name -> Process.")
        for name, proc in processes.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"modality names must be non-empty strings; got {name!r}.")
            if not isinstance(proc, Process):
                raise TypeError(f"processes[{name!r}] must be a diffuse_edu Process; got {type(proc).__name__}.")
        if loss_weights is not None and not isinstance(loss_weights, Mapping):
            raise TypeError(f"loss_weights must be a dict name -> weight; got {type(loss_weights).__name__}.")
        self.processes: dict[str, Process] = dict(processes)
        self.names: tuple[str, ...] = tuple(self.processes)
        weights = dict(loss_weights or {})
        self._check_names(weights, "loss_weights")
        for name, w in weights.items():
            check_number(w, f"loss_weights[{name!r}]", 0.0)
        self.loss_weights: dict[str, float] = {n: float(weights.get(n, 1.0)) for n in self.names}
        self.event_shapes: dict[str, tuple[int, ...]] | None = None
        if event_shapes is not None:
            self._check_names(event_shapes, "event_shapes", complete=True)
            self.event_shapes = {n: check_event_shape(event_shapes[n], f"event_shapes[{n!r}]") for n in self.names}
        self.mask_clean_loss = bool(mask_clean_loss)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {p!r}" for n, p in self.processes.items())
        return f"JointProcess({{{inner}}}, loss_weights={self.loss_weights})"

    def __getitem__(self, name: str) -> Process:
        self._check_names({name: None}, "modality")
        return self.processes[name]

    # -- input checks -------------------------------------------------------------------------------------------------

    def _check_names(self, d: Mapping, what: str, complete: bool = False) -> None:
        if not isinstance(d, Mapping):
            raise TypeError(f"{what} must be a dict keyed by modality name; got {type(d).__name__}.")
        unknown = [k for k in d if k not in self.names]
        if unknown:
            raise ValueError(f"{what} has unknown modality name(s) {unknown}; the modalities are {list(self.names)}.")
        missing = [n for n in self.names if n not in d]
        if complete and missing:
            raise ValueError(f"{what} is missing modality(ies) {missing}; expected all of {list(self.names)}.")

    def validate(
        self, xs: Mapping[str, Tensor], name: str = "xs", complete: bool = True, values: bool = True, noisy=False
    ) -> dict[str, Tensor]:
        """Raise one clear error naming the modality if ``xs`` is not a batch of this joint space; return it as a dict.

        Checks: known names (and all of them when ``complete``), each modality's own dtype/range rules
        (:meth:`Process.validate`, or :meth:`Process.validate_noisy` when ``noisy``), the event shape when
        :attr:`event_shapes` is set, one shared batch size. ``values=False`` skips the value checks (see
        :mod:`diffuse_edu._checks`).
        """
        self._check_names(xs, name, complete=complete)
        batch = None
        out = {}
        for n in self.names:
            if n not in xs:
                continue
            proc = self.processes[n]
            check = proc.validate_noisy if noisy else proc.validate
            x = check(xs[n], f"{name}[{n!r}]", values=values)
            if x.ndim == 0:
                raise ValueError(f"{name}[{n!r}] must have a batch dimension; got a 0-d tensor.")
            if self.event_shapes is not None and tuple(x.shape[1:]) != self.event_shapes[n]:
                raise ValueError(
                    f"{name}[{n!r}] has shape {tuple(x.shape)}; expected "
                    f"(B, {', '.join(map(str, self.event_shapes[n]))}) (event shape {self.event_shapes[n]})."
                )
            if batch is None:
                batch, first = x.shape[0], n
            elif x.shape[0] != batch:
                raise ValueError(
                    f"batch size mismatch: {name}[{n!r}] has {x.shape[0]} examples but {name}[{first!r}] has {batch}."
                )
            out[n] = x
        return out

    def validate_times(
        self, ts: Mapping[str, Tensor], batch: int, names: Sequence[str], name: str = "ts", device=None
    ) -> dict[str, Tensor]:
        """Check a dict of times: exactly the modalities ``names``, each a number or a (B,) tensor in [0, 1]."""
        self._check_names(ts, name)
        if set(ts) != set(names):
            raise ValueError(f"{name} must have exactly the modalities {sorted(names)}; got {sorted(ts)}.")
        return {n: check_time(ts[n], batch=batch, name=f"{name}[{n!r}]", device=device) for n in names}

    def check_outputs(self, outputs, xts: Mapping[str, Tensor], name: str = "network output", values: bool = True):
        """Raise one clear error unless ``outputs`` is a dict with one correctly shaped output per modality in ``xts``.

        Used once, at the first network call of a sampler or of training: a head of the wrong width must never be
        broadcast silently.
        """
        if not isinstance(outputs, Mapping):
            raise TypeError(f"the {name} must be a dict name -> tensor; got {type(outputs).__name__}.")
        missing = [n for n in xts if n not in outputs]
        if missing:
            raise ValueError(f"the {name} is missing modality(ies) {missing}; it has {sorted(outputs)}.")
        for n, x in xts.items():
            self.processes[n].check_output(outputs[n], x, f"{name}[{n!r}]", values=values)

    # -- forward process ----------------------------------------------------------------------------------------------

    def prior(
        self,
        shapes: Mapping[str, Sequence[int]] | None,
        batch: int,
        generator: torch.Generator | None = None,
        device=None,
        names: Sequence[str] | None = None,
    ) -> dict[str, Tensor]:
        """Draw every modality (or those in ``names``) from its t = 1 distribution, in name order.

        Args:
            shapes: name → event shape (without batch); default :attr:`event_shapes`.
            batch: B (0 gives empty tensors).
            names: a subset of the modality names (default all).
        Returns:
            name → tensor of shape (B, *event_shape).
        """
        check_positive_int(batch, "batch", minimum=0)
        check_generator(generator)
        device = check_device(device)
        if names is None:
            names = self.names
        else:
            self._check_names({n: None for n in check_names(names, "names")}, "names")
            names = tuple(n for n in self.names if n in names)
        shapes = self._shapes(shapes, names)
        return {n: self.processes[n]._prior((batch, *shapes[n]), generator, device) for n in names}

    def _shapes(self, shapes, names) -> dict[str, tuple[int, ...]]:
        if shapes is None:
            if self.event_shapes is None:
                raise ValueError("pass shapes={name: event_shape} (or build the JointProcess with event_shapes=...).")
            shapes = self.event_shapes
        self._check_names(shapes, "shapes")
        missing = [n for n in names if n not in shapes]
        if missing:
            raise ValueError(f"shapes is missing modality(ies) {missing}.")
        return {n: check_event_shape(shapes[n], f"shapes[{n!r}]") for n in names}

    def corrupt(
        self, x0s: Mapping[str, Tensor], ts: Mapping[str, Tensor], generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Noise each modality independently to its own time: x^m_t ~ q_m(· | x^m_0), in name order.

        Args:
            x0s: name → clean batch (B, ...).
            ts: name → times (B,) (or numbers), same names as ``x0s``.
        """
        x0s = self.validate(x0s, "x0s", complete=False)
        if not x0s:
            raise ValueError("x0s is empty; pass at least one modality.")
        check_generator(generator)
        first = next(iter(x0s.values()))
        ts = self.validate_times(ts, first.shape[0], list(x0s), device=first.device)
        return {n: self.processes[n]._corrupt(x0s[n], ts[n].to(x0s[n].device), generator) for n in x0s}

    # -- training -----------------------------------------------------------------------------------------------------

    def loss_terms(
        self,
        outputs: Mapping[str, Tensor],
        x0s: Mapping[str, Tensor],
        xts: Mapping[str, Tensor],
        ts: Mapping[str, Tensor],
    ) -> dict[str, Tensor]:
        """Per-modality, per-example losses (unweighted), name → shape (B,); zero where t = 0 if ``mask_clean_loss``."""
        x0s = self.validate(x0s, "x0s")
        xts = self.validate(xts, "xts", noisy=True)
        for n in self.names:
            if x0s[n].shape != xts[n].shape:
                raise ValueError(
                    f"x0s[{n!r}] and xts[{n!r}] must have the same shape; got {tuple(x0s[n].shape)} and "
                    f"{tuple(xts[n].shape)}."
                )
        batch = next(iter(x0s.values())).shape[0]
        ts = self.validate_times(ts, batch, self.names)
        self.check_outputs(outputs, xts, "outputs")
        return self._loss_terms(outputs, x0s, xts, ts)

    def _loss_terms(self, outputs, x0s, xts, ts) -> dict[str, Tensor]:
        terms = {}
        for n in self.names:
            t = ts[n]
            term = self.processes[n]._loss(outputs[n], x0s[n], xts[n], t)
            if self.mask_clean_loss:
                # torch.where keeps every other value bit-exact (the single-modality reduction relies on it).
                term = torch.where(t > 0, term, torch.zeros_like(term))
            terms[n] = term
        return terms

    def _weighted(self, terms: Mapping[str, Tensor]) -> Tensor:
        total = None
        for n, term in terms.items():
            w = self.loss_weights[n]
            term = term if w == 1.0 else w * term
            total = term if total is None else total + term
        return total

    def loss(
        self,
        outputs: Mapping[str, Tensor],
        x0s: Mapping[str, Tensor],
        xts: Mapping[str, Tensor],
        ts: Mapping[str, Tensor],
    ) -> Tensor:
        """Weighted sum of the per-modality losses Σ_m w_m ℓ_m (Rojas et al. 2025), shape (B,)."""
        return self._weighted(self.loss_terms(outputs, x0s, xts, ts))

    def sample_times(
        self, batch: int, clock: Clock | None = None, generator: torch.Generator | None = None, device=None
    ) -> dict[str, Tensor]:
        """Draw one time per modality and example with ``clock`` (default :class:`~diffuse_edu.clocks.Decoupled`).

        Returns:
            name → times, shape (B,).
        """
        clock = self._clock(clock)
        return clock(self.names, batch, generator=generator, device=device)

    def _clock(self, clock) -> Clock:
        clock = Decoupled() if clock is None else clock
        if not isinstance(clock, Clock):
            raise TypeError(
                f"clock must be a diffuse_edu.clocks.Clock (Decoupled(), Unified(), AxisMixture(), Grouped(...)); "
                f"got {clock!r}."
            )
        clock.check_names(self.names)
        return clock

    def training_loss(
        self,
        net: Callable[[dict, dict], dict],
        x0s: Mapping[str, Tensor],
        clock: Clock | None = None,
        generator: torch.Generator | None = None,
        return_terms: bool = False,
    ):
        """Monte-Carlo estimate of the joint loss on one batch: draw clocks, noise, call ``net`` once; scalar.

        Randomness order: the clock's draws, then each modality's corruption in name order. With one modality and a
        :class:`~diffuse_edu.clocks.Decoupled` or :class:`~diffuse_edu.clocks.Unified` clock this is exactly
        ``proc.loss(net(x_t, t), x0, x_t, t).mean()`` with ``t = U(B)`` and ``x_t = proc.corrupt(x0, t)`` drawn from
        the same generator (tested bit-for-bit).

        Args:
            net: joint network, ``net(xs, ts) -> dict`` of outputs.
            x0s: name → clean batch (B, ...), every modality.
            clock: the training clock (default :class:`~diffuse_edu.clocks.Decoupled`).
            return_terms: also return the per-modality mean losses (a dict of 0-d tensors).
        """
        if not callable(net):
            raise TypeError(f"net must be callable as net(xs, ts) -> dict; got {type(net).__name__}.")
        x0s = self.validate(x0s, "x0s")
        check_generator(generator)
        return self._training_loss(net, x0s, self._clock(clock), generator, True, return_terms)

    def _training_loss(self, net, x0s, clock: Clock, generator, check_output: bool, return_terms: bool = False):
        first = next(iter(x0s.values()))
        batch = first.shape[0]
        if batch == 0:
            raise ValueError("the training batch is empty; expected at least one example.")
        ts = clock(self.names, batch, generator=generator, device=first.device)
        xts = {n: self.processes[n]._corrupt(x0s[n], ts[n], generator) for n in self.names}
        outputs = net(xts, ts)
        if check_output:
            self.check_outputs(outputs, xts)
        terms = self._loss_terms(outputs, x0s, xts, ts)
        loss = self._weighted(terms).mean()
        if return_terms:
            return loss, {n: term.mean() for n, term in terms.items()}
        return loss

    def loss_fn(
        self, clock: Clock | None = None, generator: torch.Generator | None = None
    ) -> Callable[[nn.Module, dict], Tensor]:
        """A ``loss_fn(model, batch)`` for :func:`diffuse_edu.train.train` (batch = dict of clean tensors).

        The first batch is validated in full and the network's outputs checked once; later batches get the free
        structural checks only (no host–device synchronisation per step on a GPU).
        """
        clock = self._clock(clock)
        check_generator(generator)
        first = True

        def fn(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
            nonlocal first
            if not callable(model):
                raise TypeError(f"model must be callable as model(xs, ts) -> dict; got {type(model).__name__}.")
            x0s = self.validate(batch, "batch", values=first)
            loss = self._training_loss(model, x0s, clock, generator, check_output=first)
            first = False
            return loss

        return fn


class SingleModality(nn.Module):
    """Wrap a single-process network ``net(x_t, t)`` as a joint network over one modality ``name``.

    ``SingleModality(net, "x")({"x": x_t}, {"x": t}) == {"x": net(x_t, t)}``: with it a :class:`JointProcess` of one
    modality reproduces the single-process loss and samplers exactly.
    """

    def __init__(self, net: Callable[[Tensor, Tensor], Tensor], name: str = "x"):
        super().__init__()
        if not callable(net):
            raise TypeError(f"net must be callable as net(x_t, t); got {type(net).__name__}.")
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str; got {name!r}.")
        self.net = net
        self.name = name

    def forward(self, xs: Mapping[str, Tensor], ts: Mapping[str, Tensor]) -> dict[str, Tensor]:
        for what, d in (("xs", xs), ("ts", ts)):
            if not isinstance(d, Mapping) or self.name not in d:
                got = sorted(d) if isinstance(d, Mapping) else type(d).__name__
                raise ValueError(f"{what} must be a dict holding modality {self.name!r}; got {got}.")
        return {self.name: self.net(xs[self.name], ts[self.name])}
