"""Scene simulator: scripted scenes with planted events and exact ground truth."""

from .config import (
    EVENT_TYPES,
    NEAR_MISS_KINDS,
    NoiseConfig,
    SceneConfig,
    SimulationConfigError,
    load_config,
    validate_config,
)
from .presets import PRESETS, preset_config
from .scene import TIME_ORIGIN, SimResult, simulate
from .writer import FORMATS, write_outputs

__all__ = [
    "EVENT_TYPES",
    "FORMATS",
    "NEAR_MISS_KINDS",
    "PRESETS",
    "TIME_ORIGIN",
    "NoiseConfig",
    "SceneConfig",
    "SimResult",
    "SimulationConfigError",
    "load_config",
    "preset_config",
    "simulate",
    "validate_config",
    "write_outputs",
]
