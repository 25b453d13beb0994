"""The sampling layer: one joint sampler (:mod:`~diffuse_edu.sampling.joint`) and thin single-family wrappers."""

from .discrete import reveal_schedule, sample_masked, sample_uniform, simultaneous_reveal_probability
from .gaussian import GaussianSampleState, nfe_of, sample, sample_iter
from .joint import SampleResult, SampleState, count_nfe, model_device, sample_joint, sample_joint_iter

__all__ = [
    "GaussianSampleState",
    "SampleResult",
    "SampleState",
    "count_nfe",
    "model_device",
    "nfe_of",
    "reveal_schedule",
    "sample",
    "sample_iter",
    "sample_joint",
    "sample_joint_iter",
    "sample_masked",
    "sample_uniform",
    "simultaneous_reveal_probability",
]
