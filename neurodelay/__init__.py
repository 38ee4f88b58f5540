"""neurodelay: build, train and analyse neural circuits in which signals take time to travel."""

from importlib.metadata import PackageNotFoundError, version as _version

from . import presets
from .circuit import Circuit, CircuitModule, Edge
from .components import Blend, ConvDecoder, ConvEncoder, Extrapolator, Relay, RunContext
from .errors import CircuitError, ConfigError, ShapeError, TimeGridError
from .simulation import build_seeded, simulate
from .worlds import CircleOverBlob, Episode, MovingCircle, original_sequences

try:
    __version__ = _version("neurodelay")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Circuit", "CircuitModule", "Edge", "simulate", "build_seeded", "presets",
    "ConvEncoder", "ConvDecoder", "Extrapolator", "Blend", "Relay", "RunContext",
    "CircleOverBlob", "MovingCircle", "Episode", "original_sequences",
    "CircuitError", "ConfigError", "ShapeError", "TimeGridError", "__version__",
]
