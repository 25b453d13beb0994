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

Mixing happens in the network's own output space. For a Gaussian modality any of ε, x₀, v is affine in the score at a
fixed (x_t, t), and the weights sum to 1, so the mix is the same whichever is predicted. For a categorical modality
(logits over clean tokens) we mix **log-probabilities**, as the official code does (it mixes the log-scores, which are
log-softmax outputs shifted by a t-dependent constant). Mixing raw logits gives the same distribution, because
softmax ignores the per-row constants by which logits and log-probabilities differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .process import Process

__all__ = ["NoisyGuidance", "mix_outputs", "is_categorical", "renoise_generator"]

RENOISE_SEED_OFFSET = 1_000_003
"""Added to the main generator's seed to seed the re-noising generator (see :func:`renoise_generator`)."""


@dataclass
class NoisyGuidance:
    """Settings of noisy-condition guidance.

    Attributes:
        omega: guidance weight ω (1 = off, > 1 = stronger conditioning).
        sigma: time σ ∈ [0, 1] to which the condition is re-noised for the weak call (1 = classifier-free).
        left, right: guidance is on only while the sampled modality's time t satisfies left < t < right (strict).
        generator: draws the re-noising of the condition. Default: a generator seeded from the sampler's generator
            (see :func:`renoise_generator`), never the sampler's generator itself, so every ω shares the same
            sampling noise (common random numbers across a sweep) and ω = 1 is bit-identical to no guidance.
    """

    omega: float = 1.0
    sigma: float = 1.0
    left: float = 0.0
    right: float = 1.0
    generator: torch.Generator | None = None

    def __post_init__(self):
        for field in ("omega", "sigma", "left", "right"):
            v = getattr(self, field)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v:
                raise TypeError(f"NoisyGuidance.{field} must be a number; got {v!r}.")
        if not 0.0 <= self.sigma <= 1.0:
            raise ValueError(f"NoisyGuidance.sigma must lie in [0, 1]; got {self.sigma}.")
        if not 0.0 <= self.left <= self.right <= 1.0:
            raise ValueError(f"need 0 <= left <= right <= 1; got left={self.left}, right={self.right}.")

    @property
    def enabled(self) -> bool:
        """False when ω = 1: then guidance is skipped entirely (no second call, no re-noising draw)."""
        return self.omega != 1.0

    def active(self, t: float) -> bool:
        """Whether guidance applies to a modality at time ``t``: ω ≠ 1 and left < t < right (strict)."""
        return self.enabled and self.left < t < self.right


def is_categorical(process: Process) -> bool:
    """Whether ``process`` is over tokens (its network outputs logits): it has a ``vocab_size``."""
    return getattr(process, "vocab_size", None) is not None


def mix_outputs(process: Process, strong: Tensor, weak: Tensor, omega: float) -> Tensor:
    """ω·strong + (1 − ω)·weak in the right space for ``process`` (log-probabilities for categorical outputs).

    Args:
        strong: output with the clean condition, shape (B, ...) (logits (B, L, K) for tokens).
        weak: output with the re-noised condition, same shape.
    """
    if strong.shape != weak.shape:
        raise ValueError(f"guided outputs must share a shape; got {tuple(strong.shape)} and {tuple(weak.shape)}.")
    if is_categorical(process):
        strong, weak = strong.log_softmax(-1), weak.log_softmax(-1)
    return omega * strong + (1.0 - omega) * weak


def renoise_generator(guidance: NoisyGuidance, generator: torch.Generator | None) -> torch.Generator | None:
    """The generator for re-noising draws: ``guidance.generator``, else one seeded with the sampler's seed + offset.

    Returns None (torch's global generator) when neither is given.
    """
    if guidance.generator is not None:
        return guidance.generator
    if generator is None:
        return None
    g = torch.Generator(device=generator.device)
    g.manual_seed((generator.initial_seed() + RENOISE_SEED_OFFSET) % 2**63)
    return g
