"""Errors say what they are about as data (``field``, ``edge``, ``node``, ``value``), and the study layer
locates them in the file from that data, not by reading their messages."""

from __future__ import annotations

import pickle

import pytest

from neurodelay import Circuit, Edge
from neurodelay.components import Blend, ConvDecoder, ConvEncoder, Extrapolator
from neurodelay.errors import CircuitError, ConfigError, ShapeError, TimeGridError
from neurodelay.simulation import build_seeded
from neurodelay.study import structure_study
from neurodelay.study.checks import _circuit_path, _objective_path
from neurodelay.study.problems import StudyError
from neurodelay.study.spec import TrainSettings, parse_executor
from neurodelay.training.objectives import Objective, Supervision, check_objective
from neurodelay.worlds import MovingCircle

NODES = {"enc": ConvEncoder(n_latents=4), "z": Blend(gamma=0.5), "p": Extrapolator(), "dec": ConvDecoder(n_latents=4)}


def _edges(**changes):
    edges = [Edge("world.frames", "enc", delay_ms=20), Edge("enc", "z.drive"), Edge("z", "p", delay_ms=10),
             Edge("p", "z.prediction"), Edge("z", "dec")]
    for i, edge in changes.items():
        edges[int(i[1:])] = edge
    return edges


@pytest.mark.parametrize("edges, error, edge, field", [
    (_edges(e4=Edge("z", "deck")), CircuitError, 4, "target"),
    (_edges(e1=Edge("enc", "z.drv")), CircuitError, 1, "target"),
    (_edges(e1=Edge("ebc", "z.drive")), CircuitError, 1, "source"),
    (_edges(e0=Edge("world.frames", "enc", delay_ms=15)), TimeGridError, 0, "delay_ms"),
    (_edges(e2=Edge("z", "p", learn_delay=True)), CircuitError, 2, "learn_delay"),
    (_edges(e2=Edge("z", "p", delay_ms=10, max_delay_ms=40)), CircuitError, 2, "max_delay_ms"),
])
def test_circuit_errors_name_their_edge_and_key(edges, error, edge, field):
    with pytest.raises(error) as info:
        Circuit(nodes=NODES, edges=edges)
    assert (info.value.edge, info.value.field, info.value.node) == (edge, field, None)


def test_an_off_grid_delay_carries_its_value_and_survives_pickling():
    with pytest.raises(TimeGridError) as info:
        Circuit(nodes=NODES, edges=_edges(e0=Edge("world.frames", "enc", delay_ms=15)))
    back = pickle.loads(pickle.dumps(info.value))
    assert (back.edge, back.field, back.value, str(back)) == (0, "delay_ms", 15.0, str(info.value))


def test_node_and_shape_errors_name_their_node_or_edge():
    with pytest.raises(CircuitError) as info:
        Circuit(nodes={**NODES, "world": Blend()}, edges=_edges())
    assert info.value.node == "world" and info.value.edge is None
    with pytest.raises(CircuitError) as info:
        Circuit(nodes=NODES, edges=_edges(e3=Edge("p", "enc")))  # z.prediction left unconnected
    assert info.value.node == "z"
    circuit = Circuit(nodes={**NODES, "dec": ConvDecoder(n_latents=5)}, edges=_edges())
    with pytest.raises(ShapeError) as info:
        build_seeded(circuit, world=MovingCircle())
    assert (info.value.edge, info.value.field) == (4, "source")


def test_objective_errors_name_their_key():
    module = build_seeded(Circuit(nodes=NODES, edges=_edges()), world=MovingCircle())
    names = MovingCircle().factor_names
    for objective, field in [
        (Objective(reconstruction="gaussian", reconstruct="deck"), "objective.reconstruct"),
        (Objective(reconstruction=None, beta=1.0), "objective.beta"),
        (Objective(supervise=[Supervision("zz", ("circle_x",))]), "objective.supervise[0].node"),
        (Objective(supervise=[Supervision("z", ("circle_x",))]), "objective.supervise[0].factors"),
        (Objective(supervise=[Supervision("z", ("a", "b", "c", "d"))]), "objective.supervise[0].factors[0]"),
        (Objective(reconstruction=None), "objective"),
    ]:
        with pytest.raises(ConfigError) as info:
            check_objective(objective, module, names, n_frames=10)
        assert info.value.field == field, str(info.value)


def test_spec_errors_name_their_field():
    with pytest.raises(ValueError) as info:
        TrainSettings(steps=-1)
    assert info.value.field == "steps"
    with pytest.raises(ConfigError) as info:
        MovingCircle(speed_min=0.01)
    assert info.value.field == "speed_min"
    with pytest.raises(ConfigError) as info:
        parse_executor("pbs")
    assert info.value.field == "name"


def test_the_study_error_names_the_field_from_the_root():
    with pytest.raises(StudyError) as info:
        structure_study({"name": "x", "circuit": {"preset": "inertia"}, "train": {"steps": -1}})
    assert info.value.field == "train.steps"
    assert info.value.problems == [("$.train.steps", "steps must be an integer >= 0, got -1; 0 only simulates; "
                                                     "use e.g. steps: 1000 (the default).")]
    graph = {"name": "x", "circuit": {"nodes": {"enc": {"kind": "conv_encoder"}, "dec": {"kind": "conv_decoder"}},
                                      "edges": [{"source": "world.frames", "target": "enc"},
                                                {"source": "enc", "target": "deck"}]}}
    with pytest.raises(StudyError) as info:
        structure_study(graph)
    assert info.value.field == "circuit.edges[1].target"


def test_the_study_layer_reads_the_data_not_the_message():
    """A message that says one thing and data that say another: the path follows the data."""
    misleading = "edge 0 (a -> b): source 'a' is not a node"
    assert _circuit_path(CircuitError(misleading, edge=3, field="delay_ms")) == "$.circuit.edges[3].delay_ms"
    assert _circuit_path(CircuitError(misleading, node="z")) == "$.circuit.nodes.z"
    assert _circuit_path(CircuitError(misleading)) == "$.circuit"
    assert _objective_path(ConfigError("objective.beta: ...", field="objective.supervise[1].node")) \
        == "$.objective.supervise[1].node"
    assert _objective_path(ValueError("objective.beta: ...")) == "$.objective"
