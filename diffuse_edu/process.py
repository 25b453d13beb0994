"""The one abstraction: a state space with its own forward process and its own clock t ∈ [0, 1].

Every process (Gaussian, masked, uniform) implements this interface, so :mod:`diffuse_edu.joint` can compose any set
of them. Times are tensors of shape (B,), one clock per example; ``t = 0`` is clean data and ``t = 1`` the prior.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from .schedules import Schedule

__all__ = ["Process"]


class Process(ABC):
    """A forward noising process on one state space, and the pieces of its reverse.

    Subclasses: :class:`~diffuse_edu.gaussian.GaussianProcess`, :class:`~diffuse_edu.masked.MaskedProcess`,
    :class:`~diffuse_edu.uniform.UniformProcess`.
    """

    schedule: Schedule

    @abstractmethod
    def validate(self, x: Tensor, name: str = "x") -> Tensor:
        """Raise one clear error if ``x`` is not a batch of this state space (dtype, shape, range); return it."""

    @abstractmethod
    def prior(self, shape: tuple[int, ...], generator: torch.Generator | None = None, device=None) -> Tensor:
        """A batch drawn from the t = 1 distribution, of shape ``shape`` = (B, *event_shape)."""

    @abstractmethod
    def corrupt(self, x0: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Sample x_t ~ q(x_t | x_0). ``x0`` shape (B, ...), ``t`` shape (B,); returns shape of ``x0``."""

    @abstractmethod
    def loss(self, output: Tensor, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Per-example training loss of shape (B,) for network ``output`` at (x_t, t)."""

    @abstractmethod
    def step(
        self, x_t: Tensor, t: Tensor, s: Tensor, output: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """One reverse step from time t to an earlier time s < t (both shape (B,)), given the network output at t."""

    @abstractmethod
    def denoise(self, x_t: Tensor, t: Tensor, output: Tensor) -> Tensor:
        """The final clean sample at the end of sampling (e.g. x̂₀ for Gaussians, argmax / draw for tokens)."""
