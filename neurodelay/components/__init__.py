"""Circuit components: frozen attrs specs whose ``build()`` returns a torch module."""

from .areas import ConvDecoder, ConvEncoder
from .base import AbstractComponent, FrameModule, NodeModule, PortShapeError, RunContext
from .delays import DelayLine, delay_sequence, project_delays, shift
from .temporal import Blend, Extrapolator, Relay

#: Component classes by their study-file ``kind``.
COMPONENTS: dict[str, type[AbstractComponent]] = {
    cls.kind: cls for cls in (ConvEncoder, ConvDecoder, Extrapolator, Blend, Relay)
}

__all__ = [
    "AbstractComponent", "NodeModule", "FrameModule", "RunContext", "PortShapeError",
    "ConvEncoder", "ConvDecoder", "Extrapolator", "Blend", "Relay",
    "DelayLine", "delay_sequence", "project_delays", "shift", "COMPONENTS",
]
