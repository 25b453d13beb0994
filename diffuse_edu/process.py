"""The one abstraction: a state space with its own forward process and its own clock t ∈ [0, 1].

Every process (Gaussian, masked, uniform) implements this contract, so :class:`~diffuse_edu.joint.JointProcess`, the
guidance and the one sampler in :mod:`diffuse_edu.sampling` compose any set of them without knowing which is which.
Times are tensors of shape (B,), one clock per example; ``t = 0`` is clean data and ``t = 1`` the prior.

**Validate at the door, trust inside.** Each public method (:meth:`Process.corrupt`, :meth:`Process.loss`,
:meth:`Process.step`, :meth:`Process.denoise`, …) checks its arguments once and then calls the matching underscored
method (``_corrupt``, ``_loss``, ``_step``, ``_denoise``), which holds only the math. Samplers and training loops
validate at their own entry and call the underscored methods in their loops, so no step pays for checks — on a GPU
every value check is a host–device synchronisation. The remaining public helpers that samplers call per step
(:meth:`Process.hold`, :meth:`Process.mix`, :meth:`Process.predict`, :meth:`Process.correct`, and each subclass's
conversions) take trusted inputs and say so.

**Empty batches** (B = 0) work in the elementwise methods (:meth:`Process.prior`, :meth:`Process.corrupt`,
:meth:`Process.loss`, :meth:`Process.step`, :meth:`Process.denoise`) and return empty results; the Monte-Carlo
estimates (:meth:`Process.training_loss`, :meth:`Process.loss_fn`, :meth:`Process.sample_times`) refuse them, since a
mean over no example is NaN.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor

from ._checks import (
    check_device,
    check_float_tensor,
    check_generator,
    check_positive_int,
    check_shape,
    check_time,
    has_values,
)
from ._random import stratified_times
from .schedules import Schedule

__all__ = ["Process"]


class Process(ABC):
    """A forward noising process on one state space, and the pieces of its reverse.

    Subclasses: :class:`~diffuse_edu.gaussian.GaussianProcess`, and the
    :class:`~diffuse_edu.categorical.CategoricalProcess` family (:class:`~diffuse_edu.masked.MaskedProcess`,
    :class:`~diffuse_edu.uniform.UniformProcess`).

    Class attributes a subclass sets:
        kind: ``"gaussian"``, ``"masked"`` or ``"uniform"``.
        categorical: whether network outputs are logits over clean tokens (guidance then mixes log-probabilities).
        step_methods: the reverse-step methods :meth:`step` accepts; the first is the default.
        two_stage_methods: methods needing a second network call per step (a predictor, then a corrector at the
            next time: Heun). The sampler calls :meth:`predict` and :meth:`correct` for them instead of :meth:`step`.
        denoise_modes: the modes of :meth:`denoise` (the first is the default).
    """

    kind: ClassVar[str] = "process"
    categorical: ClassVar[bool] = False
    step_methods: ClassVar[tuple[str, ...]] = ()
    two_stage_methods: ClassVar[tuple[str, ...]] = ()
    denoise_modes: ClassVar[tuple[str, ...]] = ()
    schedule: Schedule

    # -- validation ---------------------------------------------------------------------------------------------------

    @abstractmethod
    def validate(self, x: Tensor, name: str = "x", values: bool = True) -> Tensor:
        """Raise one clear error if ``x`` is not a batch (B, ...) of clean data of this state space; return it.

        ``values=False`` checks only type, dtype and dimensions (free on any device).
        """

    def validate_noisy(self, x_t: Tensor, name: str = "x_t", values: bool = True) -> Tensor:
        """Like :meth:`validate` for a noisy state (the masked process also allows its mask symbol)."""
        return self.validate(x_t, name, values)

    @abstractmethod
    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape the network must return for a state of shape ``x_shape`` (logits add a vocabulary axis)."""

    def check_output(self, output, x_t: Tensor, name: str = "output", values: bool = True) -> Tensor:
        """Raise one clear error unless ``output`` is a (finite) float tensor of :meth:`output_shape` (x_t.shape)."""
        check_float_tensor(output, name, min_ndim=1, values=False)
        want = self.output_shape(tuple(x_t.shape))
        if tuple(output.shape) != want:
            raise ValueError(
                f"{name} has shape {tuple(output.shape)}, but a {self.kind} modality with data of shape "
                f"{tuple(x_t.shape)} needs network outputs of shape {want}; check the network's head for this modality."
            )
        if values and has_values(output) and not torch.isfinite(output).all():
            raise ValueError(f"{name} contains NaN or infinite values (the network diverged or got bad input).")
        return output

    def check_method(self, method: str | None) -> str:
        """Resolve ``method`` (None: the default) and check it is one this process supports."""
        if method is None:
            return self.step_methods[0]
        if method not in self.step_methods:
            raise ValueError(f"method for a {self.kind} process must be one of {self.step_methods}; got {method!r}.")
        return method

    def check_denoise_mode(self, mode: str | None) -> str:
        """Resolve a :meth:`denoise` ``mode`` (None: the default) and check it."""
        if mode is None:
            return self.denoise_modes[0]
        if mode not in self.denoise_modes:
            raise ValueError(f"mode for a {self.kind} process must be one of {self.denoise_modes}; got {mode!r}.")
        return mode

    def _times(self, t, x: Tensor, name: str = "t") -> Tensor:
        return check_time(t, batch=x.shape[0], name=name, device=x.device).to(x.device)

    @staticmethod
    def _per_example(v: Tensor) -> Tensor:
        """(B, ...) -> (B, N) with N the number of elements per example (also for B = 0 and for shape (B,))."""
        return v.reshape(v.shape[0], math.prod(v.shape[1:]))

    # -- forward process ----------------------------------------------------------------------------------------------

    def prior(self, shape: tuple[int, ...], generator: torch.Generator | None = None, device=None) -> Tensor:
        """A batch drawn from the t = 1 distribution, of shape ``shape`` = (B, *event_shape) (B = 0 allowed)."""
        shape = check_shape(shape, "shape")
        check_generator(generator)
        return self._prior(shape, generator, check_device(device))

    @abstractmethod
    def _prior(self, shape: tuple[int, ...], generator: torch.Generator | None, device) -> Tensor:
        """:meth:`prior` on trusted inputs."""

    def corrupt(self, x0: Tensor, t, generator: torch.Generator | None = None) -> Tensor:
        """Sample x_t ~ q(x_t | x_0). ``x0`` shape (B, ...), ``t`` shape (B,) or a number; returns shape of ``x0``."""
        x0 = self.validate(x0, "x0")
        check_generator(generator)
        return self._corrupt(x0, self._times(t, x0), generator)

    @abstractmethod
    def _corrupt(self, x0: Tensor, t: Tensor, generator: torch.Generator | None) -> Tensor:
        """:meth:`corrupt` on trusted inputs."""

    def hold(self, x0: Tensor, t: Tensor, generator: torch.Generator | None) -> Tensor:
        """What a *given* element looks like at time t when the rest of its modality is still being sampled (trusted).

        The replacement method of conditioning (Song et al. 2021, imputation): by default a fresh draw of
        q(x_t | x₀), so the network sees the condition at the noise level it was trained on. The masked process
        overrides it: a revealed token is a valid state at every time, so it stays clean.
        """
        return self._corrupt(x0, t, generator)

    # -- training -----------------------------------------------------------------------------------------------------

    def loss(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Per-example training loss of shape (B,) for network ``output`` at (x_t, t)."""
        x0 = self.validate(x0, "x0")
        x_t = self.validate_noisy(x_t, "x_t")
        if x0.shape != x_t.shape:
            raise ValueError(f"x0 and x_t must have the same shape; got {tuple(x0.shape)} and {tuple(x_t.shape)}.")
        self.check_output(output, x_t)
        t = self._times(t, x0)
        self._check_loss_setup(t)
        return self._loss(output, x0, x_t, t)

    def _check_loss_setup(self, t: Tensor) -> None:  # noqa: B027 - an optional hook, empty by default
        """Checks of user-supplied loss settings at times ``t`` (e.g. a weighting callable), once at the door."""

    @abstractmethod
    def _loss(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """:meth:`loss` on trusted inputs."""

    def sample_times(
        self, batch: int, generator: torch.Generator | None = None, device=None, stratified: bool = True
    ) -> Tensor:
        """Training times, shape (B,): stratified ``(u + i/B) mod 1`` (or i.i.d. U[0, 1)), float32."""
        check_positive_int(batch, "batch")
        check_generator(generator)
        return stratified_times(batch, generator=generator, device=check_device(device), antithetic=stratified)

    def training_loss(
        self,
        model: Callable[[Tensor, Tensor], Tensor],
        x0: Tensor,
        generator: torch.Generator | None = None,
        stratified: bool = True,
    ) -> Tensor:
        """Monte-Carlo estimate of the training objective on a batch: a scalar (mean of :meth:`loss`).

        Draws the times (:meth:`sample_times`), then x_t (:meth:`corrupt`), and scores ``model(x_t, t)``. ``x0`` shape
        (B, ...); all randomness from ``generator``, in that order.
        """
        x0 = self._check_training(model, x0, generator, "x0")
        return self._training_loss(model, x0, generator, stratified, check_output=True)

    def _check_training(self, model, x0, generator, name: str, values: bool = True) -> Tensor:
        if not callable(model):
            raise TypeError(f"model must be callable as model(x_t, t); got {type(model).__name__}.")
        x0 = self.validate(x0, name, values=values)
        if x0.ndim and x0.shape[0] == 0:
            raise ValueError(f"{name} is an empty batch; the training loss is a mean over at least one example.")
        check_generator(generator)
        return x0

    def _training_loss(self, model, x0: Tensor, generator, stratified: bool, check_output: bool = False) -> Tensor:
        t = stratified_times(x0.shape[0], generator=generator, device=x0.device, antithetic=stratified)
        t = t.to(self._time_dtype())
        x_t = self._corrupt(x0, t, generator)
        out = model(x_t, t)
        if check_output:
            self.check_output(out, x_t, "model output")
            self._check_loss_setup(t)
        return self._loss(out, x0, x_t, t).mean()

    def _time_dtype(self) -> torch.dtype:
        """The dtype of training times (:meth:`sample_times`)."""
        return torch.float32

    def loss_fn(self, generator: torch.Generator | None = None, stratified: bool = True):
        """``loss_fn(model, x0)`` for :func:`diffuse_edu.train.train`: :meth:`training_loss` with this generator.

        The first batch is validated in full (values included) and the model's output checked once; later batches
        get the free structural checks only (see :mod:`diffuse_edu._checks`).
        """
        first = True

        check_generator(generator)

        def fn(model, x0: Tensor) -> Tensor:
            nonlocal first
            x0 = self._check_training(model, x0, None, "batch", values=first)
            loss = self._training_loss(model, x0, generator, stratified, check_output=first)
            first = False
            return loss

        return fn

    # -- reverse process ----------------------------------------------------------------------------------------------

    def _check_step(self, x_t, t, s, output) -> tuple[Tensor, Tensor, Tensor]:
        x_t = self.validate_noisy(x_t, "x_t")
        self.check_output(output, x_t)
        t, s = self._times(t, x_t, "t"), self._times(s, x_t, "s")
        if has_values(t) and (s > t).any():
            raise ValueError("a reverse step needs s <= t for every example (time runs from 1 to 0); got some s > t.")
        return x_t, t, s

    def step(
        self,
        x_t: Tensor,
        t: Tensor,
        s: Tensor,
        output: Tensor,
        *,
        generator: torch.Generator | None = None,
        method: str | None = None,
    ) -> Tensor:
        """One reverse step from time t to an earlier time s < t (both shape (B,)), given the network output at t.

        Args:
            method: one of :attr:`step_methods` (default: the first). Two-stage methods (Heun) need two network
                calls and are run by the sampler through :meth:`predict` and :meth:`correct`.
        """
        method = self.check_method(method)
        if method in self.two_stage_methods:
            raise ValueError(f"{method!r} needs a second network call per step; use diffuse_edu.sampling for it.")
        check_generator(generator)
        x_t, t, s = self._check_step(x_t, t, s, output)
        return self._step(x_t, t, s, output, generator, method)

    @abstractmethod
    def _step(self, x_t: Tensor, t: Tensor, s: Tensor, output: Tensor, generator, method: str) -> Tensor:
        """:meth:`step` on trusted inputs."""

    def predict(self, x_t: Tensor, t: Tensor, s: Tensor, output: Tensor, method: str) -> Tensor:
        """First stage of a two-stage method: the predictor state at time s (trusted inputs)."""
        raise NotImplementedError(f"{type(self).__name__} has no two-stage step methods.")

    def correct(
        self, x_t: Tensor, x_pred: Tensor, t: Tensor, s: Tensor, output_t: Tensor, output_s: Tensor, method: str
    ) -> Tensor:
        """Second stage: x_s from the outputs at (x_t, t) and at the predictor (x_pred, s) (trusted inputs)."""
        raise NotImplementedError(f"{type(self).__name__} has no two-stage step methods.")

    def denoise(
        self, x_t: Tensor, t, output: Tensor, *, generator: torch.Generator | None = None, mode: str | None = None
    ) -> Tensor:
        """The final clean sample at the end of sampling, from the network output at (x_t, t).

        Args:
            mode: one of :attr:`denoise_modes` (Gaussian: ``"mean"``, Tweedie's x̂₀; categorical: ``"argmax"`` or
                ``"sample"``); default the first.
            generator: draws, for modes that draw.
        """
        mode = self.check_denoise_mode(mode)
        check_generator(generator)
        x_t = self.validate_noisy(x_t, "x_t")
        self.check_output(output, x_t)
        return self._denoise(x_t, self._times(t, x_t), output, generator, mode)

    @abstractmethod
    def _denoise(self, x_t: Tensor, t: Tensor, output: Tensor, generator, mode: str) -> Tensor:
        """:meth:`denoise` on trusted inputs."""

    # -- guidance -----------------------------------------------------------------------------------------------------

    def mix(self, strong: Tensor, weak: Tensor, omega: float) -> Tensor:
        """ω·strong + (1 − ω)·weak, in the space where guidance is linear for this process (trusted inputs).

        Gaussian outputs (ε, x₀, v) are affine in the score at a fixed (x_t, t), so they mix as they are; categorical
        processes override this to mix log-probabilities.
        """
        return omega * strong + (1.0 - omega) * weak
