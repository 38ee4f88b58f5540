"""neurodelay: build, train and analyse neural circuits in which signals take time to travel."""

from . import presets
from ._util.version import package_version
from .circuit import Circuit, CircuitModule, Edge
from .components import Blend, ConvDecoder, ConvEncoder, Extrapolator, Relay, RunContext
from .errors import CircuitError, ConfigError, ShapeError, TimeGridError
from .simulation import build_seeded, simulate
from .worlds import CircleOverBlob, Episode, MovingCircle, original_sequences

__version__ = package_version()

__all__ = [
    "Circuit", "CircuitModule", "Edge", "simulate", "build_seeded", "presets",
    "ConvEncoder", "ConvDecoder", "Extrapolator", "Blend", "Relay", "RunContext",
    "CircleOverBlob", "MovingCircle", "Episode", "original_sequences",
    "CircuitError", "ConfigError", "ShapeError", "TimeGridError", "__version__",
]
