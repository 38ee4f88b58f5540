"""Circuits: components joined by edges that carry conduction delays.

``spec``    :class:`Circuit` and :class:`Edge`, the frozen spec (structure checked when made)
``plan``    :func:`~neurodelay.circuit.plan.make_plan`: edges in steps, schedule, validity, shapes
``module``  :class:`CircuitModule`, the torch module that runs a plan over world streams
``linear``  closed-form execution of cycles linear in their state
"""

from .module import MIN_CLOSED_FORM_STEPS, CircuitModule
from .plan import AUX_TRACES, WORLD_STREAMS, EdgeInfo, Plan, make_plan
from .spec import Circuit, Edge, world_shapes

__all__ = ["Edge", "Circuit", "CircuitModule", "Plan", "EdgeInfo", "WORLD_STREAMS", "AUX_TRACES", "world_shapes",
           "make_plan", "MIN_CLOSED_FORM_STEPS"]
