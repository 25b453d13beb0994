"""diffuse_edu — multimodal diffusion on arbitrary state spaces, rebuilt for learning.

Each modality is a state space with its own forward process and its own clock t ∈ [0, 1]; one network denoises them
all (Rojas et al., *Diffuse Everything*, ICML 2025). The names below are the paper's nouns; everything else lives in
its module (``diffuse_edu.nets``, ``diffuse_edu.data``, ``diffuse_edu.metrics``, ``diffuse_edu.recipes``, …).
"""

from .categorical import CategoricalProcess, draw_categorical, estimate_nelbo, nats_to_bits_per_token
from .clocks import AxisMixture, Clock, Decoupled, Grouped, Mixture, Unified
from .config import FAST, get_device, hardware_summary, is_fast, pick, seed_everything
from .gaussian import GaussianProcess
from .grids import edm_grid, make_grid, official_grid, uniform_grid
from .guidance import NoisyGuidance
from .joint import JointProcess, SingleModality
from .masked import MaskedProcess
from .process import Process
from .sampling import (
    SampleResult,
    SampleState,
    count_nfe,
    sample,
    sample_iter,
    sample_joint,
    sample_joint_iter,
    sample_masked,
    sample_uniform,
)
from .schedules import (
    Schedule,
    ScheduleCosine,
    ScheduleLogLinear,
    ScheduleSDScaledLinear,
    ScheduleVPLinear,
    get_schedule,
)
from .train import train, train_iter
from .uniform import UniformProcess

__version__ = "0.2.0"


def __getattr__(name: str):
    # TabularDiffusion pulls in pandas and the table encoders: imported on first use (`import diffuse_edu` stays light).
    if name == "TabularDiffusion":
        from .recipes.tabular import TabularDiffusion

        return TabularDiffusion
    raise AttributeError(f"module 'diffuse_edu' has no attribute {name!r}")


__all__ = [
    "FAST",
    "AxisMixture",
    "CategoricalProcess",
    "Clock",
    "Decoupled",
    "GaussianProcess",
    "Grouped",
    "JointProcess",
    "MaskedProcess",
    "Mixture",
    "NoisyGuidance",
    "Process",
    "SampleResult",
    "SampleState",
    "Schedule",
    "ScheduleCosine",
    "ScheduleLogLinear",
    "ScheduleSDScaledLinear",
    "ScheduleVPLinear",
    "SingleModality",
    "TabularDiffusion",
    "Unified",
    "UniformProcess",
    "count_nfe",
    "draw_categorical",
    "edm_grid",
    "estimate_nelbo",
    "get_device",
    "get_schedule",
    "hardware_summary",
    "is_fast",
    "make_grid",
    "nats_to_bits_per_token",
    "official_grid",
    "pick",
    "sample",
    "sample_iter",
    "sample_joint",
    "sample_joint_iter",
    "sample_masked",
    "sample_uniform",
    "seed_everything",
    "train",
    "train_iter",
    "uniform_grid",
]
