r"""A wrapper that makes any denoiser of the uniform process apply Bayes' rule for the token it observes.

The exact posterior of one clean token given the noisy string factorises as
:math:`p(x_0^i \mid x_t) \propto q(x_t^i \mid x_0^i)\, p(x_0^i \mid x_t^{-i})`, with
:math:`q(x_t^i \mid x_0^i) = \alpha_t \mathbb{1}[x_t^i = x_0^i] + (1-\alpha_t)/V`. The network supplies the context term
(logits); the wrapper adds :math:`\log q(x_t^i \mid \cdot)`. As t → 0 the output then collapses onto :math:`x_t^i`, as
the exact posterior does — which the uniform ELBO demands: its integrand charges about 1/t for any probability left on
other letters near t = 0, so a plain network starts with a NELBO worse than "know nothing" and trains with huge loss
spikes. (The masked analogue is MDLM's carry-over of unmasked tokens.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_index_tensor, check_positive_int, check_time, net_checks_values
from ..schedules import get_schedule
from .transformer import DiffusionTransformer

__all__ = ["UniformBayesDenoiser"]


class UniformBayesDenoiser(nn.Module):
    """Uniform-diffusion denoiser that applies Bayes' rule for the observed token analytically.

    Args:
        net: ``net(x_t (B, L) long, t (B,)) -> logits (B, L, V)``.
        vocab_size: V.
        schedule: name of the uniform process's schedule (the same α(t)).
    """

    def __init__(self, net: nn.Module, vocab_size: int, schedule: str = "log-linear"):
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be an nn.Module mapping (x_t, t) to logits (B, L, V); got {type(net).__name__}.")
        check_positive_int(vocab_size, "vocab_size", minimum=2)
        out = getattr(net, "vocab_out", None)
        if isinstance(out, int) and out != vocab_size:
            raise ValueError(f"vocab_size={vocab_size}, but net gives logits over {out} symbols (its vocab_out).")
        if not isinstance(schedule, str):
            raise TypeError(
                f"schedule must be a schedule name such as 'log-linear' (saved in config()); got {schedule!r}."
            )
        self.net = net
        self.vocab_size = vocab_size
        self.schedule_name = schedule
        self.schedule = get_schedule(schedule)

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable (used by :mod:`diffuse_edu.checkpoint`)."""
        return {"net": self.net.config(), "vocab_size": self.vocab_size, "schedule": self.schedule_name}

    @classmethod
    def from_config(cls, config: dict) -> UniformBayesDenoiser:
        """Rebuild from :meth:`config` (the inner network is a :class:`DiffusionTransformer`)."""
        return cls(DiffusionTransformer.from_config(config["net"]), config["vocab_size"], config["schedule"])

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        """Logits of p(x_0 | x_t), shape (B, L, V), for ``x_t`` long (B, L) and ``t`` (B,) or a number."""
        # Values (ids, times) only where checking them is free: CPU tensors outside torch.compile.
        check_index_tensor(x_t, "x_t", self.vocab_size, min_ndim=2, values=net_checks_values(x_t))
        if x_t.ndim != 2:
            raise ValueError(f"x_t must have shape (B, L); got {tuple(x_t.shape)}.")
        check_time(t, batch=x_t.shape[0], values=net_checks_values(t))
        logits = self.net(x_t, t)
        if not isinstance(logits, Tensor) or tuple(logits.shape) != (*x_t.shape, self.vocab_size):
            got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(f"net must return logits of shape {(*x_t.shape, self.vocab_size)}; got {got}.")
        t = torch.as_tensor(t, dtype=torch.float64, device=x_t.device).expand(x_t.shape[0])
        a = self.schedule.alpha(t).reshape(-1, *([1] * x_t.ndim))  # (B, 1, 1)
        # log q(x_t^i | x_0^i = y) for every y: log(α·1[y = x_t^i] + (1 − α)/V)
        # (clamped so that t = 0, where the other letters are impossible, still gives finite logits)
        log_lik = torch.log((a * F.one_hot(x_t, self.vocab_size) + (1 - a) / self.vocab_size).clamp_min(1e-30))
        return logits + log_lik.to(logits.dtype)

    def num_params(self) -> int:
        """Number of trainable parameters (those of the wrapped network)."""
        return self.net.num_params()
