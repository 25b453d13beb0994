r"""Noisy-condition guidance for a joint model (Rojas et al. 2025, and the official code's ``forward_with_cfg``).

A decoupled model knows p(x | y_σ) for *every* noise level σ of the condition y, because it was trained with
independent clocks. Guidance extrapolates from the weakly conditioned output to the fully conditioned one:

.. math::  \tilde f = \omega\, f(x_t, t;\ y, 0) + (1 - \omega)\, f(x_t, t;\ y_\sigma, \sigma),
           \qquad y_\sigma \sim q(y_\sigma \mid y).

σ = 1 re-noises the condition all the way to the prior: classifier-free guidance, with the "unconditional" model
obtained for free from the same network. σ < 1 keeps part of the condition. ω = 1 is no guidance; ω > 1 sharpens
p(x | y) towards its modes (more accurate, less diverse). Guidance is applied only while the sampled modality's time
lies strictly inside (``left``, ``right``) (guidance interval, Kynkäänniemi et al. 2024; the official sampler also
tests ``left < t < right``).

Each process knows how its outputs mix (:meth:`~diffuse_edu.process.Process.mix`). For a Gaussian modality any of ε,
x₀, v is affine in the score at a fixed (x_t, t), and the weights sum to 1, so the mix is the same whichever is
predicted. For a categorical modality (logits over clean tokens) it mixes **log-probabilities**, as the official code
does (it mixes the log-scores, which are log-softmax outputs shifted by a t-dependent constant).

The re-noising draws come from a side stream derived from the sampler's generator at the start of each call
(:func:`~diffuse_edu._random.derived_generator`): they never shift the main stream, so ω = 1 is bit-identical to no
guidance and a sweep over ω shares its sampling noise; and since the main generator's state moves on with every call,
two calls with one generator re-noise independently, while two calls with equal seeds are identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import check_number

__all__ = ["NoisyGuidance"]


@dataclass
class NoisyGuidance:
    """Settings of noisy-condition guidance.

    Attributes:
        omega: guidance weight ω (1 = off, > 1 = stronger conditioning).
        sigma: time σ ∈ [0, 1] to which the condition is re-noised for the weak call (1 = classifier-free).
        left, right: guidance is on only while a sampled modality's time t satisfies left < t < right (strict).
        generator: draws the re-noising of the condition. Default (None): a side stream derived from the sampler's
            generator at each call (see the module docstring), never the sampler's generator itself.
    """

    omega: float = 1.0
    sigma: float = 1.0
    left: float = 0.0
    right: float = 1.0
    generator: torch.Generator | None = None

    def __post_init__(self):
        self.omega = check_number(self.omega, "NoisyGuidance.omega")
        self.sigma = check_number(self.sigma, "NoisyGuidance.sigma", 0.0, 1.0)
        self.left = check_number(self.left, "NoisyGuidance.left", 0.0, 1.0)
        self.right = check_number(self.right, "NoisyGuidance.right", 0.0, 1.0)
        if not self.left <= self.right:
            raise ValueError(f"need NoisyGuidance.left <= right; got left={self.left}, right={self.right}.")
        if self.generator is not None and not isinstance(self.generator, torch.Generator):
            raise TypeError(f"NoisyGuidance.generator must be a torch.Generator or None; got {self.generator!r}.")

    @property
    def enabled(self) -> bool:
        """False when ω = 1: then guidance is skipped entirely (no second call, no re-noising draw)."""
        return self.omega != 1.0

    def active(self, t: float) -> bool:
        """Whether guidance applies to a modality at time ``t``: ω ≠ 1 and left < t < right (strict)."""
        return self.enabled and self.left < t < self.right
