"""diffuse_edu — multimodal diffusion on arbitrary state spaces, rebuilt for learning.

Each modality is a state space with its own forward process and its own clock t ∈ [0, 1]; one network denoises them
all (Rojas et al., *Diffuse Everything*, ICML 2025).
"""

from .config import FAST, get_device, hardware_summary, is_fast, pick, seed_everything
from .schedules import (
    Schedule,
    ScheduleCosine,
    ScheduleLogLinear,
    ScheduleSDScaledLinear,
    ScheduleVPLinear,
    get_schedule,
)

__version__ = "0.1.0"
from .discrete_samplers import DiscreteSampleResult, sample_masked, sample_uniform
from .gaussian import GaussianProcess
from .masked import MaskedProcess, draw_categorical, estimate_nelbo, nats_to_bits_per_token, stratified_times
from .samplers import SampleResult, edm_grid, sample, sample_iter, uniform_grid
from .uniform import UniformProcess
