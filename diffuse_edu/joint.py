r"""Joint diffusion over several state spaces, each with its own process and its own clock (Rojas et al. 2025).

A :class:`JointProcess` is a dict of named :class:`~diffuse_edu.process.Process` objects (Gaussian, masked, uniform,
…). Each modality m is noised independently with its own time :math:`t_m`, so the joint forward process factorises,
:math:`q(x_t \mid x_0) = \prod_m q_m(x^m_{t_m} \mid x^m_0)`, and one network
``net(xs: dict, ts: dict) -> dict`` sees every modality's noisy state and every modality's time and returns one output
per modality. The training loss is the weighted sum of the per-modality losses (the multimodal loss of Rojas et al.
2025).

Which times the network is trained on decides what it can do afterwards (:meth:`JointProcess.sample_times`):

* ``"decoupled"`` — independent :math:`t_m \sim U[0, 1]` (the paper): the whole unit square (cube), so one model
  does joint sampling (the diagonal), every conditional (a modality held at t = 0) and noisy guidance (a modality
  re-noised to some σ).
* ``"unified"`` — one shared t (the baseline the paper argues against): only the diagonal.
* ``"axis-mixture"`` — the base clocks (unified by default), except that with probability ``axis_prob`` one modality,
  chosen uniformly, is clean (t = 0) while the others keep their noisy times: the diagonal plus the axes.

Sampling lives in :mod:`diffuse_edu.joint_sampling` and guidance in :mod:`diffuse_edu.guidance`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .process import Process

__all__ = ["TIME_MODES", "JointProcess", "SingleModality"]

TIME_MODES = ("decoupled", "unified", "axis-mixture")


def _rand(n: int, generator: torch.Generator | None, device) -> Tensor:
    """U[0, 1) draws of shape (n,), taken from ``generator`` on its own device, then moved to ``device``."""
    if generator is None:
        return torch.rand(n, device=device)
    return torch.rand(n, generator=generator, device=generator.device).to(device)


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
        self.processes: dict[str, Process] = dict(processes)
        self.names: tuple[str, ...] = tuple(self.processes)
        weights = dict(loss_weights or {})
        self._check_names(weights, "loss_weights")
        for name, w in weights.items():
            if not isinstance(w, (int, float)) or isinstance(w, bool) or not w >= 0:
                raise ValueError(f"loss_weights[{name!r}] must be a number >= 0; got {w!r}.")
        self.loss_weights: dict[str, float] = {n: float(weights.get(n, 1.0)) for n in self.names}
        self.event_shapes: dict[str, tuple[int, ...]] | None = None
        if event_shapes is not None:
            self._check_names(event_shapes, "event_shapes", complete=True)
            self.event_shapes = {n: tuple(int(d) for d in event_shapes[n]) for n in self.names}
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

    def validate(self, xs: Mapping[str, Tensor], name: str = "xs", complete: bool = True) -> dict[str, Tensor]:
        """Raise one clear error naming the modality if ``xs`` is not a batch of this joint space; return it as a dict.

        Checks: known names (and all of them when ``complete``), each modality's own dtype/range rules
        (:meth:`Process.validate`), the event shape when :attr:`event_shapes` is set, one shared batch size.
        """
        self._check_names(xs, name, complete=complete)
        batch = None
        out = {}
        for n in self.names:
            if n not in xs:
                continue
            x = self.processes[n].validate(xs[n], f"{name}[{n!r}]")
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

    def validate_times(self, ts: Mapping[str, Tensor], batch: int, names: Sequence[str], name: str = "ts") -> dict:
        """Check a dict of times: the same names as ``names``, each a float (B,) tensor in [0, 1]."""
        from ._checks import check_time

        self._check_names(ts, name)
        if set(ts) != set(names):
            raise ValueError(f"{name} must have exactly the modalities {sorted(names)}; got {sorted(ts)}.")
        return {n: check_time(ts[n], batch=batch, name=f"{name}[{n!r}]") for n in names}

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
            batch: B.
        Returns:
            name → tensor of shape (B, *event_shape).
        """
        names = self.names if names is None else tuple(n for n in self.names if n in names)
        shapes = self._shapes(shapes, names)
        return {n: self.processes[n].prior((batch, *shapes[n]), generator=generator, device=device) for n in names}

    def _shapes(self, shapes, names) -> dict[str, tuple[int, ...]]:
        if shapes is None:
            if self.event_shapes is None:
                raise ValueError("pass shapes={name: event_shape} (or build the JointProcess with event_shapes=...).")
            shapes = self.event_shapes
        self._check_names(shapes, "shapes")
        missing = [n for n in names if n not in shapes]
        if missing:
            raise ValueError(f"shapes is missing modality(ies) {missing}.")
        return {n: tuple(shapes[n]) for n in names}

    def corrupt(
        self, x0s: Mapping[str, Tensor], ts: Mapping[str, Tensor], generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Noise each modality independently to its own time: x^m_t ~ q_m(· | x^m_0), in name order.

        Args:
            x0s: name → clean batch (B, ...).
            ts: name → times (B,), same names as ``x0s``.
        """
        x0s = self.validate(x0s, "x0s", complete=False)
        batch = next(iter(x0s.values())).shape[0]
        ts = self.validate_times(ts, batch, list(x0s))
        return {n: self.processes[n].corrupt(x0s[n], ts[n], generator) for n in x0s}

    # -- training -----------------------------------------------------------------------------------------------------

    def loss_terms(
        self,
        outputs: Mapping[str, Tensor],
        x0s: Mapping[str, Tensor],
        xts: Mapping[str, Tensor],
        ts: Mapping[str, Tensor],
    ) -> dict[str, Tensor]:
        """Per-modality, per-example losses (unweighted), name → shape (B,); zero where t = 0 if ``mask_clean_loss``."""
        self._check_names(outputs, "outputs", complete=True)
        terms = {}
        for n in self.names:
            t = ts[n]
            term = self.processes[n].loss(outputs[n], x0s[n], xts[n], t)
            if self.mask_clean_loss:
                # torch.where keeps every other value bit-exact (the single-modality reduction relies on it).
                term = torch.where(t > 0, term, torch.zeros_like(term))
            terms[n] = term
        return terms

    def loss(
        self,
        outputs: Mapping[str, Tensor],
        x0s: Mapping[str, Tensor],
        xts: Mapping[str, Tensor],
        ts: Mapping[str, Tensor],
    ) -> Tensor:
        """Weighted sum of the per-modality losses Σ_m w_m ℓ_m (Rojas et al. 2025), shape (B,)."""
        total = None
        for n, term in self.loss_terms(outputs, x0s, xts, ts).items():
            w = self.loss_weights[n]
            term = term if w == 1.0 else w * term
            total = term if total is None else total + term
        return total

    def sample_times(
        self,
        batch: int,
        mode: str = "decoupled",
        *,
        axis_prob: float = 0.5,
        axis_base: str = "unified",
        clean: Sequence[str] = (),
        generator: torch.Generator | None = None,
        device=None,
    ) -> dict[str, Tensor]:
        """Draw one time per modality and example (the training clocks).

        Args:
            batch: B.
            mode: ``"decoupled"`` (independent U[0, 1] per modality), ``"unified"`` (one shared U[0, 1]) or
                ``"axis-mixture"`` (``axis_base`` clocks, then with probability ``axis_prob`` one modality chosen
                uniformly is set to t = 0).
            axis_prob: share of examples put on an axis in ``"axis-mixture"``.
            axis_base: the off-axis clocks of ``"axis-mixture"``: ``"unified"`` (diagonal + axes) or ``"decoupled"``.
            clean: modalities always at t = 0 (e.g. ``("label",)`` trains a label→point conditional model only).
        Returns:
            name → times, shape (B,). Randomness is drawn in a fixed order (one U(B) per modality for decoupled, one
            U(B) for unified, then U(B) and a uniform index (B,) for the axes), whatever the values.
        """
        if mode not in TIME_MODES:
            raise ValueError(f"mode must be one of {TIME_MODES}; got {mode!r}.")
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ValueError(f"batch must be a positive int; got {batch!r}.")
        self._check_names({c: None for c in clean}, "clean")
        base = mode if mode != "axis-mixture" else axis_base
        if base not in ("decoupled", "unified"):
            raise ValueError(f"axis_base must be 'decoupled' or 'unified'; got {axis_base!r}.")
        if base == "unified":
            shared = _rand(batch, generator, device)
            ts = {n: shared.clone() for n in self.names}
        else:
            ts = {n: _rand(batch, generator, device) for n in self.names}
        if mode == "axis-mixture":
            if not 0.0 <= axis_prob <= 1.0:
                raise ValueError(f"axis_prob must lie in [0, 1]; got {axis_prob!r}.")
            on_axis = _rand(batch, generator, device) < axis_prob
            # which modality is clean: uniform over the M modalities (floor(M·U) < M since U < 1)
            pick = (_rand(batch, generator, device) * len(self.names)).long()
            for i, n in enumerate(self.names):
                ts[n] = torch.where(on_axis & (pick == i), torch.zeros_like(ts[n]), ts[n])
        for n in clean:
            ts[n] = torch.zeros_like(ts[n])
        return ts

    def training_loss(
        self,
        net: Callable[[dict, dict], dict],
        x0s: Mapping[str, Tensor],
        mode: str = "decoupled",
        generator: torch.Generator | None = None,
        **time_kwargs,
    ) -> Tensor:
        """Monte-Carlo estimate of the joint loss on one batch: draw clocks, noise, call ``net`` once; scalar.

        Randomness order: :meth:`sample_times`, then :meth:`corrupt` in name order. With one modality and
        ``mode="decoupled"`` or ``"unified"`` this is exactly ``proc.loss(net(x_t, t), x0, x_t, t).mean()`` with
        ``t = U(B)`` and ``x_t = proc.corrupt(x0, t)`` drawn from the same generator (tested bit-for-bit).

        Args:
            net: joint network, ``net(xs, ts) -> dict`` of outputs.
            x0s: name → clean batch (B, ...), every modality.
            mode, time_kwargs: passed to :meth:`sample_times`.
        """
        x0s = self.validate(x0s, "x0s")
        batch = next(iter(x0s.values())).shape[0]
        device = next(iter(x0s.values())).device
        ts = self.sample_times(batch, mode, generator=generator, device=device, **time_kwargs)
        xts = {n: self.processes[n].corrupt(x0s[n], ts[n], generator) for n in self.names}
        outputs = net(xts, ts)
        return self.loss(outputs, x0s, xts, ts).mean()

    def loss_fn(
        self, mode: str = "decoupled", generator: torch.Generator | None = None, **time_kwargs
    ) -> Callable[[nn.Module, dict], Tensor]:
        """A ``loss_fn(model, batch)`` for :func:`diffuse_edu.train.train` (batch = dict of clean tensors)."""
        if mode not in TIME_MODES:
            raise ValueError(f"mode must be one of {TIME_MODES}; got {mode!r}.")

        def fn(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
            return self.training_loss(model, batch, mode=mode, generator=generator, **time_kwargs)

        return fn


class SingleModality(nn.Module):
    """Wrap a single-process network ``net(x_t, t)`` as a joint network over one modality ``name``.

    ``SingleModality(net, "x")({"x": x_t}, {"x": t}) == {"x": net(x_t, t)}``: with it a :class:`JointProcess` of one
    modality reproduces the single-process loss and samplers exactly.
    """

    def __init__(self, net: Callable[[Tensor, Tensor], Tensor], name: str = "x"):
        super().__init__()
        self.net = net
        self.name = name

    def forward(self, xs: Mapping[str, Tensor], ts: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {self.name: self.net(xs[self.name], ts[self.name])}
