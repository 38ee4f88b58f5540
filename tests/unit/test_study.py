"""The study schema: loading, round trips, overrides, error messages (no runs)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import attrs
import numpy as np
import pytest
import yaml

from neurodelay.circuit import Circuit, Edge
from neurodelay.components import COMPONENTS, ConvDecoder, ConvEncoder
from neurodelay.errors import ConfigError
from neurodelay.training.objectives import Objective, Supervision
from neurodelay.presets import PRESETS
from neurodelay.study import (
    WORLDS,
    EvaluateSettings,
    GraphCircuit,
    PresetCircuit,
    Study,
    StudyError,
    apply_overrides,
    check_study,
    load_study,
    parse_override,
    structure_study,
    study_to_yaml,
    unstructure_study,
)
from neurodelay.study import TrainSettings
from neurodelay.worlds import MovingCircle

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ROOT / "studies"
DOCS = ROOT / "docs" / "study-schema.md"

GRAPH = {
    "name": "g",
    "seed": 1,
    "world": {"kind": "moving_circle", "size": 16, "n_frames": 4},
    "circuit": {
        "nodes": {
            "enc": {"kind": "conv_encoder", "n_latents": 2},
            "z": {"kind": "blend", "gamma": 0.25},
            "pred": {"kind": "extrapolator", "alpha": 1.0},
            "dec": {"kind": "conv_decoder", "n_latents": 2},
        },
        "edges": [
            {"source": "world.frames", "target": "enc", "delay_ms": 10},
            {"source": "enc", "target": "z.drive"},
            {"source": "z", "target": "pred", "delay_ms": 10},
            {"source": "pred", "target": "z.prediction"},
            {"source": "z", "target": "dec"},
        ],
    },
    "objective": {"reconstruction": "gaussian"},
    "train": {"steps": 2, "batch_size": 2},
}


def problems(raw) -> list[tuple[str, str]]:
    with pytest.raises(StudyError) as info:
        structure_study(raw, source="s.yaml")
    return info.value.problems


def mutated(fn) -> dict:
    raw = copy.deepcopy(GRAPH)
    fn(raw)
    return raw


# ------------------------------------------------------------------ the shipped studies
@pytest.mark.parametrize("name", ["quickstart.yaml", "graph_form.yaml", "custom_circuit.py"])
def test_shipped_studies_load_and_round_trip(name):
    study = load_study(STUDIES / name)
    raw = yaml.safe_load(study_to_yaml(study))
    kinds = {type(s).kind: type(s) for s in study.circuit.nodes.values()} \
        if isinstance(study.circuit, GraphCircuit) else None
    assert structure_study(raw, extra_kinds=kinds) == study


def test_quickstart_is_the_issue_study():
    study = load_study(STUDIES / "quickstart.yaml")
    assert study.circuit == PresetCircuit("inertia", (("n_latents", 10), ("gamma", 0.5), ("alpha", 1.0),
                                                      ("input_delay_ms", 10.0), ("size", 32)))
    assert study.objective == Objective(reconstruction="gaussian", beta=0.0, score_from_step=2)
    assert (study.train.batch_size, study.train.optimizer, study.train.lr) == (32, "adam", 1e-4)
    assert study.train.init_from == "package:quickstart_ae"  # the shipped per-frame autoencoder
    assert 0 < study.train.steps <= 2000
    assert study.evaluate.n_sequences == 256
    assert study.build_circuit().dt_ms == 10.0


def test_graph_form_has_the_sweep():
    study = load_study(STUDIES / "graph_form.yaml")
    assert study.sweep.grid == (("circuit.nodes.z.gamma", (0.0, 0.5)),)
    assert study.sweep.n_points == 2
    assert isinstance(study.circuit.nodes["enc"], COMPONENTS["conv_encoder"])


def test_round_trip_of_a_full_study():
    study = structure_study(GRAPH)
    again = structure_study(unstructure_study(study))
    assert again == study
    assert study_to_yaml(again) == study_to_yaml(study)


def test_defaults_and_dt_from_the_study():
    study = structure_study({**GRAPH, "dt_ms": 5, "circuit": {**GRAPH["circuit"], "edges": [
        {**e, "delay_ms": e.get("delay_ms", 0) / 2} for e in GRAPH["circuit"]["edges"]]}})
    assert study.build_circuit().dt_ms == 5.0
    assert study.device == "cpu" and study.analyses is None and study.sweep is None
    assert study.evaluate == EvaluateSettings()
    assert study.evaluate.seed != study.seed


def test_conv_sizes_default_to_the_world():
    study = structure_study(GRAPH)
    assert study.circuit.nodes["enc"].size == 16 and study.circuit.nodes["dec"].size == 16
    preset = structure_study({"name": "p", "world": {"kind": "moving_circle", "size": 64},
                              "circuit": {"preset": "autoencoder"}, "train": {"steps": 0}})
    assert dict(preset.circuit.params)["size"] == 64


def test_yaml_1_1_exponents_are_numbers():
    study = structure_study({**GRAPH, "train": {"steps": 2, "lr": "1e-3"}})
    assert study.train.lr == 1e-3


def test_python_objects_are_accepted():
    circuit = PRESETS["inertia"](n_latents=2, size=16)
    study = Study(name="api", world=WORLDS["moving_circle"](size=16, n_frames=4), circuit=circuit,
                  objective=Objective(), train=TrainSettings(steps=1))
    assert isinstance(study.circuit, GraphCircuit)
    assert structure_study(unstructure_study(study)) == study


# ------------------------------------------------------------------ error messages
def test_unknown_key_suggests_the_closest():
    (path, msg), = problems(mutated(lambda r: r["train"].update(stpes=3)))
    assert path == "$.train.stpes"
    assert "did you mean 'steps'?" in msg


def test_unknown_node_parameter_suggests_the_closest():
    (path, msg), = problems(mutated(lambda r: r["circuit"]["nodes"]["enc"].update(n_latent=3)))
    assert path == "$.circuit.nodes.enc.n_latent" and "did you mean 'n_latents'?" in msg


def test_wrong_types_are_errors():
    (path, msg), = problems(mutated(lambda r: r["train"].update(steps="many")))
    assert path == "$.train.steps" and "expected an integer" in msg
    (path, msg), = problems(mutated(lambda r: r["train"].update(steps=2.5)))
    assert "expected an integer" in msg
    (path, msg), = problems(mutated(lambda r: r["circuit"]["edges"][0].update(fractional="yes")))
    assert path == "$.circuit.edges[0].fractional" and "true or false" in msg


@pytest.mark.parametrize("mutate, path, text", [
    (lambda r: r["circuit"]["edges"][2].update(delay_ms=-10), "$.circuit.edges[2].delay_ms", "must be >= 0"),
    (lambda r: r["circuit"]["nodes"]["z"].update(gamma=1.5), "$.circuit.nodes.z.gamma", "must be in [0, 1]"),
    (lambda r: r["train"].update(batch_size=0), "$.train.batch_size", "batch_size must be an integer >= 1"),
    (lambda r: r.update(evaluate={"n_sequences": 0}), "$.evaluate.n_sequences", ">= 1"),
    (lambda r: r.update(dt_ms=0), "$.dt_ms", "dt_ms must be a positive number"),
])
def test_out_of_range_values_keep_the_validator_text(mutate, path, text):
    (p, msg), = problems(mutated(mutate))
    assert p == path and text in msg


def test_unknown_kind_lists_the_valid_ones():
    (path, msg), = problems(mutated(lambda r: r["circuit"]["nodes"]["z"].update(kind="blender")))
    assert path == "$.circuit.nodes.z.kind"
    assert "did you mean 'blend'?" in msg and all(k in msg for k in COMPONENTS)
    (path, msg), = problems(mutated(lambda r: r["world"].update(kind="disc")))
    assert path == "$.world.kind" and all(k in msg for k in WORLDS)


def test_circuit_errors_carry_the_edge_path():
    (path, msg), = problems(mutated(lambda r: r["circuit"]["edges"][4].update(target="decc")))
    assert path == "$.circuit.edges[4].target" and "'decc' does not exist" in msg and "'dec'" in msg
    (path, msg), = problems(mutated(lambda r: r["circuit"]["edges"][0].update(delay_ms=15)))
    assert path == "$.circuit.edges[0].delay_ms"
    assert "not a whole number of steps" in msg and "10 or 20 ms" in msg
    (path, msg), = problems(mutated(lambda r: r["circuit"]["edges"][2].update(delay_ms=0)))
    assert path == "$.circuit" and "algebraic loop" in msg and "pred -> z -> pred" in msg


def test_preset_parameters_are_checked():
    base = {"name": "p", "circuit": {"preset": "inertia", "gama": 0.2}, "train": {"steps": 0}}
    (path, msg), = problems(base)
    assert path == "$.circuit.gama" and "did you mean 'gamma'?" in msg
    (path, msg), = problems({**base, "circuit": {"preset": "inertia", "gamma": 3}})
    assert path == "$.circuit.gamma" and "must be in [0, 1]" in msg
    (path, msg), = problems({**base, "circuit": {"preset": "inertial"}})
    assert path == "$.circuit.preset" and "did you mean 'inertia'?" in msg
    (path, msg), = problems({**base, "circuit": {"preset": "inertia", "dt_ms": 5}})
    assert "top of the file" in msg


def test_training_a_learnable_circuit_needs_an_objective():
    (path, msg), = problems(mutated(lambda r: r.pop("objective")))
    assert path == "$.objective" and "train.steps: 0" in msg
    structure_study(mutated(lambda r: (r.pop("objective"), r["train"].update(steps=0))))


def test_objective_errors_carry_their_path():
    (path, msg), = problems(mutated(lambda r: r["objective"].update(
        supervise=[{"node": "z", "factors": ["circle_x", "circle_yy"]}])))
    assert path == "$.objective.supervise[0].factors[1]" and "circle_y" in msg


def test_several_problems_are_reported_together():
    found = problems(mutated(lambda r: (r["train"].update(stpes=1, lr="x"), r.update(seeed=2))))
    assert {p for p, _ in found} == {"$.train.stpes", "$.train.lr", "$.seeed"}


def test_sweep_paths_and_values_are_checked():
    (path, msg), = problems({**GRAPH, "sweep": {"circuit.nodes.z.gama": [0.1]}})
    assert "did you mean 'gamma'?" in msg and "gama" in path
    (path, msg), = problems({**GRAPH, "sweep": {"circuit.nodes.z.gamma": [0.5, 2.0]}})
    assert path == "$.sweep['circuit.nodes.z.gamma']" and "sweep point" in msg and "must be in [0, 1]" in msg
    (path, msg), = problems({**GRAPH, "sweep": {"zip": {"train.lr": [0.1, 0.2], "seed": [1]}}})
    assert "equal lengths" in msg
    (path, msg), = problems({**GRAPH, "sweep": {"train.lr": 0.1}})
    assert "non-empty list" in msg


# ------------------------------------------------------------------ overrides
def test_parse_override_reads_yaml_scalars():
    assert parse_override("train.steps=5") == ("train.steps", 5)
    assert parse_override("objective.reconstruction=null") == ("objective.reconstruction", None)
    assert parse_override("circuit.edges[0].delay_ms=[10, 20]") == ("circuit.edges[0].delay_ms", [10, 20])
    with pytest.raises(StudyError, match="key.path=value"):
        parse_override("train.steps")


def test_overrides_follow_the_schema():
    raw = apply_overrides(GRAPH, [("train.lr", 0.5), ("circuit.edges[0].delay_ms", 20),
                                  ("circuit.edges.2.delay_ms", 20), ("evaluate.seed", 3),
                                  ("circuit.nodes.z.gamma", 1.0)])
    study = structure_study(raw)
    assert study.train.lr == 0.5 and study.evaluate.seed == 3 and study.circuit.nodes["z"].gamma == 1.0
    assert study.circuit.edges[0].delay_ms == 20.0 and study.circuit.edges[2].delay_ms == 20.0
    assert GRAPH["train"] == {"steps": 2, "batch_size": 2}  # the input is not modified


@pytest.mark.parametrize("path, text", [
    ("train.stpes", "did you mean 'steps'?"),
    ("circuit.nodes.zz.gamma", "did you mean 'z'?"),
    ("circuit.edges[9].delay_ms", "index 9 does not exist"),
    ("train.lr.x", "is a value"),
    ("world.sise", "did you mean 'size'?"),
])
def test_override_paths_that_do_not_exist(path, text):
    with pytest.raises(StudyError) as info:
        apply_overrides(GRAPH, [(path, 1)])
    assert text in str(info.value) and path in str(info.value)


def test_preset_overrides_know_the_preset_parameters():
    raw = {"name": "p", "circuit": {"preset": "inertia"}, "train": {"steps": 0}}
    assert structure_study(apply_overrides(raw, [("circuit.gamma", 0.9)])).circuit.params[0] == ("gamma", 0.9)
    with pytest.raises(StudyError, match="did you mean 'alpha'"):
        apply_overrides(raw, [("circuit.alpah", 1.0)])


# ------------------------------------------------------------------ files
def test_yaml_syntax_error_names_the_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\ncircuit: {preset: inertia\ntrain: {steps: 0}\n")
    with pytest.raises(StudyError, match=r"YAML syntax error at line 3"):
        load_study(f)


def test_a_key_given_twice_is_refused_not_silently_replaced(tmp_path):
    f = tmp_path / "twice.yaml"
    f.write_text("name: x\ncircuit: {preset: inertia}\ntrain: {steps: 5, lr: 0.5}\ntrain: {batch_size: 4}\n")
    with pytest.raises(StudyError, match=r"key 'train' is given twice \(lines 3 and 4\)"):
        load_study(f)
    f.write_text("name: x\ncircuit: {preset: inertia, gamma: 0.1, gamma: 0.2}\n")
    with pytest.raises(StudyError, match=r"key 'gamma' is given twice"):
        load_study(f)


def test_yaml_tags_that_build_objects_are_refused(tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(StudyError, match="YAML syntax error"):
        load_study(f)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(StudyError, match="file not found"):
        load_study(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(StudyError, match="empty"):
        load_study(tmp_path / "empty.yaml")


def test_load_with_overrides_and_device(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(GRAPH))
    study = load_study(f, ["train.steps=7"], device="cpu")
    assert study.train.steps == 7


# ------------------------------------------------------------------ docs
def _doc_fields() -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    return set(re.findall(r"`([a-z_]+)(?:[`:,])", text))


@pytest.mark.parametrize("cls", [Study, EvaluateSettings, Edge, Objective, Supervision, TrainSettings,
                                 *WORLDS.values(), *COMPONENTS.values()])
def test_docs_describe_every_field(cls):
    missing = {f.name for f in attrs.fields(cls)} - _doc_fields()
    assert not missing, f"docs/study-schema.md does not describe {cls.__name__} fields {missing}"


def test_docs_example_is_a_valid_study():
    text = DOCS.read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    study = structure_study(yaml.safe_load(example))
    assert study.sweep.n_points == 6


def test_a_python_preset_spec_with_an_unknown_name_is_a_located_study_error():
    world = MovingCircle(size=16, n_frames=3)
    with pytest.raises(StudyError, match=r"\$\.circuit\.preset: unknown preset 'inertai'; did you mean 'inertia'"):
        check_study(Study(name="a", world=world, circuit=PresetCircuit("inertai")))  # was: KeyError 'inertai'
    with pytest.raises(ConfigError, match=r"PresetCircuit\.preset: unknown preset 'inertai'.*valid presets"):
        PresetCircuit("inertai").build(10.0)


def test_a_python_preset_spec_with_an_unknown_parameter_suggests_the_right_one():
    world = MovingCircle(size=16, n_frames=3)
    with pytest.raises(StudyError, match=r"\$\.circuit\.gama: unknown parameter 'gama' of preset 'inertia'; "
                                         r"did you mean 'gamma'\?"):
        check_study(Study(name="a", world=world, circuit=PresetCircuit("inertia", {"gama": 0.3, "size": 16})))
    with pytest.raises(ConfigError, match=r"PresetCircuit\.params\.dt_ms: dt_ms is the study's"):
        PresetCircuit("inertia", {"dt_ms": 5.0}).build(10.0)  # was: TypeError, multiple values for dt_ms


def test_numpy_scalars_round_trip_through_yaml():
    circuit = Circuit(nodes={"enc": ConvEncoder(n_latents=np.int64(2), gaussian=True),
                                "dec": ConvDecoder(n_latents=np.int64(2))},
                         edges=[Edge("world.frames", "enc"), Edge("enc", "dec")])
    study = Study(name="np-scalars", circuit=circuit, objective=Objective(beta=np.float32(1)),
                  train=TrainSettings(steps=np.int64(3), batch_size=np.int64(2)))
    text = study_to_yaml(study)
    assert "n_latents: 2" in text and "steps: 3" in text
    assert structure_study(yaml.safe_load(text)) == study
