"""study.checks, through load_study: errors name the key written (file or ``--set``), the constraint, the value, a fix.

The cases come from an audit that applied single bad edits to the shipped
studies, through the YAML file and through ``--set``; each one here was
located at another key, or left the fix out, or was accepted silently.
Also: sweeps that name a path twice (or one inside another) and ``--set``
of a swept path are refused when the study is loaded.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
import yaml

from neurodelay.run import main
from neurodelay.study import StudyError, Sweep, check_study, load_study, structure_study
from neurodelay.sweep import expand, point_study

STUDIES = Path(__file__).resolve().parents[2] / "studies"
Q, G, S = "quickstart.yaml", "graph_form.yaml", "inertia_gamma_sweep.yaml"


def _set(raw: dict, path: str, value) -> None:
    tokens = [int(t[1:-1]) if t.startswith("[") else t for t in re.findall(r"[^.\[\]]+|\[\d+\]", path)]
    node = raw
    for t in tokens[:-1]:
        node = node[t]
    node[tokens[-1]] = value


def _edited(tmp_path: Path, study: str, edit) -> Path:
    raw = yaml.safe_load((STUDIES / study).read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / study
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _problems(path, overrides=()) -> list[tuple[str, str]]:
    with pytest.raises(StudyError) as info:
        load_study(path, overrides)
    return info.value.problems


# (study, dotted path, value as YAML text, expected location, texts the message holds)
LOCATED = {
    "world size filled into a preset": (Q, "world.size", "20", "$.world.size",
                                        ["world.size (given: 20)", "circuit.size", "multiple of 16", "use 32 or 64"]),
    "world size filled into graph nodes": (G, "world.size", "40", "$.world.size",
                                           ["circuit.nodes.enc.size, circuit.nodes.dec.size", "got 40"]),
    "preset delay off the grid": (Q, "circuit.input_delay_ms", "15", "$.circuit.input_delay_ms",
                                  ["input_delay_ms=15.0", "not a whole number of steps", "10 or 20 ms"]),
    "negative preset delay": (Q, "circuit.input_delay_ms", "-10", "$.circuit.input_delay_ms",
                              ["input_delay_ms=-10.0", "must be >= 0", "Use 0"]),
    "dt off the preset's delay": (Q, "dt_ms", "3", "$.circuit.input_delay_ms", ["dt_ms=3", "9 or 12 ms"]),
    "unknown port": (G, "circuit.edges[1].target", "z.drv", "$.circuit.edges[1].target",
                     ["no port 'drv'", "did you mean 'drive'?"]),
    "unknown world stream": (G, "circuit.edges[0].source", "world.framez", "$.circuit.edges[0].source",
                             ["no stream 'world.framez'", "available: world.factors, world.frames"]),
    "executor name": (S, "executor", "{name: foo}", "$.executor.name", ["executor 'foo' is not known", "valid:"]),
    "executor worker count": (S, "executor", "{name: 'processes:0'}", "$.executor.name",
                              ["worker count >= 1", "e.g. processes:2"]),
    "speed_min without speed_max": (Q, "world.speed_min", "0.1", "$.world.speed_min",
                                    ["speed_min=0.1", "given together", "set both"]),
    "score_from_step past the sequence": (Q, "objective.score_from_step", "10", "$.objective.score_from_step",
                                          ["score_from_step: 10", "10 frame(s)", "smaller score_from_step"]),
    "lr without a fix": (Q, "train.lr", "0", "$.train.lr", ["got 0.0", "use e.g. lr: 0.0001 (the default)"]),
    "device without a fix": (Q, "device", "gpu", "$.device", ["got 'gpu'", "use e.g. device: cpu"]),
    "n_sequences without a fix": (Q, "evaluate.n_sequences", "0", "$.evaluate.n_sequences",
                                  ["got 0", "use e.g. n_sequences: 256"]),
    "blend gamma without a fix": (G, "circuit.nodes.z.gamma", "2", "$.circuit.nodes.z.gamma",
                                  ["in [0, 1], got 2.0", "use e.g. gamma: 0.5"]),
}


@pytest.mark.parametrize("via", ["yaml", "set"])
@pytest.mark.parametrize("case", list(LOCATED))
def test_errors_name_the_key_written_and_a_fix(case, via, tmp_path):
    study, path, value, where, texts = LOCATED[case]
    if via == "yaml":
        found = _problems(_edited(tmp_path, study, lambda r: _set(r, path, yaml.safe_load(value))))
    else:  # graph_form.yaml sweeps circuit.nodes.z.gamma: drop its sweep, a --set of it would be refused
        found = _problems(STUDIES / study, [*(["sweep=null"] if study == G else []), f"{path}={value}"])
    assert [p for p, _ in found] == [where], found
    for text in texts:
        assert text in found[0][1], (text, found[0][1])


def test_a_node_named_world_is_located_at_the_node(tmp_path):
    found = _problems(_edited(tmp_path, G, lambda r: r["circuit"]["nodes"].update(world={"kind": "relay"})))
    assert found == [("$.circuit.nodes.world",
                      "node name 'world' is not allowed: use a Python identifier other than 'world'.")]


# (study, edit of the raw sweep, expected location, texts)
SWEEP_LOCATED = {
    "bad path in a zip": (G, {"zip": {"train.lrr": [0.1, 0.2], "seed": [1, 2]}}, "$.sweep.zip['train.lrr']",
                          ["did you mean 'lr'?"]),
    "bad path in the second zip group": (G, {"zip": [{"train.lr": [0.1, 0.2]}, {"seedd": [1, 2]}]},
                                         "$.sweep.zip[1]['seedd']", ["did you mean 'seed'?"]),
    "bad grid value": (G, {"circuit.nodes.z.gamma": [0.0, 2.0]}, "$.sweep['circuit.nodes.z.gamma']",
                       ["the value 2.0", "sweep point circuit.nodes.z.gamma=2.0", "must be in [0, 1]"]),
    "bad zipped value": (S, {"zip": {"circuit.gaussian": [False, True], "objective.beta_norm": [-1.0, 0.001]}},
                         "$.sweep.zip['objective.beta_norm']", ["the value -1.0", "finite number >= 0"]),
    "bad preset value": (S, {"circuit.gamma": [0.0, 1.5]}, "$.sweep['circuit.gamma']",
                         ["the value 1.5", "must be in [0, 1]"]),
    "bad swept world size": (Q, {"world.size": [16, 24]}, "$.sweep['world.size']",
                             ["the value 24", "world.size (given: 24)", "multiple of 16"]),
    "name": (G, {"name": ["a", "b"]}, "$.sweep['name']", ["names the sweep's folder", "remove it from sweep"]),
    "executor": (S, {"executor.name": ["local", "processes:2"]}, "$.sweep['executor.name']",
                 ["cannot be swept", "--executor"]),
    "zip lengths": (G, {"zip": {"train.lr": [0.1, 0.2], "seed": [1]}}, "$.sweep.zip",
                    ["train.lr: 2, seed: 1", "give each path as many values"]),
    "an empty sweep": (G, {}, "$.sweep", ["no path", "sweep: null"]),
}


@pytest.mark.parametrize("case", list(SWEEP_LOCATED))
def test_sweep_errors_are_located_at_the_sweep_entry(case, tmp_path):
    study, sweep, where, texts = SWEEP_LOCATED[case]
    found = _problems(_edited(tmp_path, study, lambda r: r.update(sweep=sweep)))
    assert [p for p, _ in found] == [where], found
    for text in texts:
        assert text in found[0][1], (text, found[0][1])


def test_set_into_the_sweep_says_how_to_set_it():
    (path, msg), = _problems(STUDIES / S, ["sweep.circuit.gamma=[0.0, 1.0]"])
    assert "--set 'sweep={circuit.gamma: [0.0, 1.0]}'" in msg and "sweep=null" in msg


def test_an_index_into_the_sweep_says_it_is_a_mapping():
    (path, msg), = _problems(STUDIES / S, ["sweep[0]=x"])
    assert "not a list" in msg and "--set 'sweep={train.lr: [0.001, 0.0001]}'" in msg, msg
    assert "{0]" not in msg, msg
    # The example the message gives is itself a valid --set.
    study = load_study(STUDIES / S, ["sweep={train.lr: [0.001, 0.0001]}"])
    assert [p.train.lr for p in (point_study(study, pt) for pt in expand(study))] == [0.001, 0.0001]


def test_a_swept_world_size_reaches_the_conv_sizes():
    study = load_study(STUDIES / Q, ["sweep={world.size: [16, 64]}"])
    points = [point_study(study, point) for point in expand(study)]
    sizes = [(p.world.size, dict(p.circuit.params)["size"]) for p in points]
    assert sizes == [(16, 16), (64, 64)]
    graph = load_study(STUDIES / G, ["sweep={world.size: [16, 64]}"])
    one = point_study(graph, expand(graph)[0])
    assert one.circuit.nodes["enc"].size == one.circuit.nodes["dec"].size == 16


def test_a_shipped_sweep_keeps_its_point_studies():
    """Sweeps that do not change the world's size give the same point studies as before."""
    study = load_study(STUDIES / S)
    first = point_study(study, expand(study)[0])
    assert dict(first.circuit.params)["size"] == 32 and first.world.size == 32


# ------------------------------------------------------------------ a path swept twice
TWICE = {
    "grid, spelled two ways": ({"circuit.edges[0].delay_ms": [10, 20], "circuit.edges.0.delay_ms": [30, 40]},
                               "$.sweep['circuit.edges.0.delay_ms']",
                               ["swept twice", "$.sweep['circuit.edges[0].delay_ms']"]),
    "grid and zip": ({"circuit.nodes.z.gamma": [0.0, 0.5],
                      "zip": {"circuit.nodes.z.gamma": [0.1, 0.2], "seed": [1, 2]}},
                     "$.sweep.zip['circuit.nodes.z.gamma']", ["swept twice", "$.sweep['circuit.nodes.z.gamma']"]),
    "two zip groups": ({"zip": [{"train.lr": [0.1, 0.2]}, {"train.lr": [0.3, 0.4]}]},
                       "$.sweep.zip[1]['train.lr']", ["swept twice", "$.sweep.zip[0]['train.lr']"]),
    "one zip group, spelled two ways": ({"zip": {"circuit.edges[0].delay_ms": [10, 20],
                                                 "circuit.edges.0.delay_ms": [30, 40]}},
                                        "$.sweep.zip['circuit.edges.0.delay_ms']", ["swept twice"]),
    "a section and a key in it": ({"train": [{"steps": 1}, {"steps": 2}], "zip": {"train.lr": [0.1, 0.2]}},
                                  "$.sweep.zip['train.lr']",
                                  ["train.lr overlaps train", "replaces the whole train section"]),
    "a key and its section": ({"train.lr": [0.1, 0.2], "zip": {"train": [{"steps": 1}, {"steps": 2}]}},
                              "$.sweep.zip['train']", ["train overlaps train.lr", "sweep only one of them"]),
    "an edge and the edge list": ({"circuit.edges[0].delay_ms": [10, 20],
                                   "circuit.edges": [[], [{"source": "world.frames", "target": "enc"}]]},
                                  "$.sweep['circuit.edges']", ["overlaps circuit.edges[0].delay_ms"]),
}


@pytest.mark.parametrize("case", list(TWICE))
def test_a_path_swept_twice_is_refused(case, tmp_path):
    sweep, where, texts = TWICE[case]
    found = _problems(_edited(tmp_path, G, lambda r: r.update(sweep=sweep)))
    assert [p for p, _ in found] == [where], found
    for text in texts:
        assert text in found[0][1], (text, found[0][1])


def test_a_python_sweep_naming_a_path_twice_is_refused():
    study = load_study(STUDIES / G)
    twice = Sweep(grid=(("seed", (0, 1)),), zip=((("seed", (2, 3)), ("train.lr", (0.1, 0.2))),))
    with pytest.raises(StudyError, match=r"seed is swept twice"):
        check_study(attrs.evolve(study, sweep=twice))


def test_sibling_paths_are_not_an_overlap():
    raw = yaml.safe_load((STUDIES / G).read_text(encoding="utf-8"))
    raw["sweep"] = {"circuit.nodes.z.gamma": [0.0, 0.5], "zip": {"train.lr": [0.1, 0.2], "train.steps": [1, 2]}}
    assert structure_study(raw).sweep.n_points == 4


# ------------------------------------------------------------------ --set of a swept path
CONFLICTS = {
    "the swept path": (G, ["circuit.nodes.z.gamma=0.1"], "$.sweep['circuit.nodes.z.gamma']",
                       ["--set circuit.nodes.z.gamma=0.1", "every sweep point sets circuit.nodes.z.gamma",
                        "(0.0, 0.5)", "never run"]),
    "the same edge, spelled otherwise": (G, ["sweep={'circuit.edges[0].delay_ms': [10, 20]}",
                                             "circuit.edges.0.delay_ms=30"],
                                         "$.sweep['circuit.edges[0].delay_ms']", ["--set circuit.edges.0.delay_ms=30"]),
    "a section that gives the swept path": (G, ["circuit.nodes.z={kind: blend, gamma: 0.1}"],
                                            "$.sweep['circuit.nodes.z.gamma']",
                                            ["its value gives circuit.nodes.z.gamma"]),
    "a key inside a swept section": (G, ["sweep={train: [{steps: 1}, {steps: 2}]}", "train.lr=0.5"],
                                     "$.sweep['train']", ["replaces the whole train section", "train.lr included"]),
    "a zipped path": (S, ["objective.beta_norm=0.1"], "$.sweep.zip['objective.beta_norm']",
                      ["--set objective.beta_norm=0.1"]),
    "a swept preset parameter": (S, ["circuit.gamma=0.3"], "$.sweep['circuit.gamma']", ["--set circuit.gamma=0.3"]),
}


@pytest.mark.parametrize("case", list(CONFLICTS))
def test_set_of_a_swept_path_is_refused(case):
    study, overrides, where, texts = CONFLICTS[case]
    found = _problems(STUDIES / study, overrides)
    assert [p for p, _ in found] == [where], found
    for text in texts:
        assert text in found[0][1], (text, found[0][1])


def test_device_of_a_swept_device_is_refused(tmp_path):
    path = _edited(tmp_path, G, lambda r: r.update(sweep={"device": ["cpu", "cuda"]}))
    with pytest.raises(StudyError) as info:
        load_study(path, device="cpu")
    (where, msg), = info.value.problems
    assert where == "$.sweep['device']" and msg.startswith("--device cpu overrides a swept value")


@pytest.mark.parametrize("overrides", [
    ["circuit.nodes.z={kind: blend}"],                 # a section without the swept key: the sweep adds it
    ["circuit.nodes.pred.alpha=0.5", "train.lr=0.5"],  # not swept
    ["sweep={circuit.nodes.pred.alpha: [0.5, 1.0]}", "circuit.nodes.z.gamma=0.1"],  # the sweep replaced first
    ["sweep=null", "circuit.nodes.z.gamma=0.1"],
])
def test_set_beside_the_sweep_is_accepted(overrides):
    load_study(STUDIES / G, overrides)


def test_cli_refuses_set_of_a_swept_path_with_exit_2(tmp_path, capsys):
    code = main([str(STUDIES / G), "--out", str(tmp_path / "runs"), "--set", "circuit.nodes.z.gamma=0.1"])
    err = capsys.readouterr().err
    assert code == 2 and "$.sweep['circuit.nodes.z.gamma']: --set circuit.nodes.z.gamma=0.1" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()
