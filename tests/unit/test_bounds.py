"""Every value a study may hold is bounded when it loads (``neurodelay._util.bounds``), with a located message.

Each case here is an input that loaded on the starting code and then failed
(or hung, or leaked a traceback) later; now ``--dry-run`` refuses it with
exit status 2, no traceback and nothing written.
"""

from __future__ import annotations

import warnings

import pytest
import yaml

from neurodelay._util import bounds as _bounds
from neurodelay.executors import parse_executor
from neurodelay.errors import ConfigError
from neurodelay.run import main
from neurodelay.study import StudyError
from neurodelay.sweep import expand

TINY = {
    "name": "tiny",
    "seed": 3,
    "world": {"kind": "moving_circle", "size": 16, "n_frames": 4},
    "circuit": {"preset": "inertia", "n_latents": 2, "gamma": 0.5},
    "objective": {"reconstruction": "gaussian"},
    "train": {"steps": 3, "batch_size": 2, "lr": 1.0e-3, "log_every": 1, "checkpoint_every": 1},
    "evaluate": {"n_sequences": 3, "batch_size": 2},
    "analyses": [],
}


def study_file(tmp_path, text: str | None = None, **changes):
    path = tmp_path / "study.yaml"
    path.write_text(text if text is not None else yaml.safe_dump({**TINY, **changes}, sort_keys=False))
    return path


def dry_run(capsys, tmp_path, path, *sets) -> tuple[int, str]:
    """``--dry-run`` of ``path`` in process: (exit status, stderr); asserts nothing was written."""
    out = tmp_path / "runs"
    argv = [str(path), "--dry-run", "--out", str(out)] + [a for s in sets for a in ("--set", s)]
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    assert not out.exists(), "a dry run wrote files"
    return code, err


def refused(capsys, tmp_path, path, *sets) -> str:
    code, err = dry_run(capsys, tmp_path, path, *sets)
    assert code == 2, err
    return err


# ------------------------------------------------------------------------------ 1. seeds
@pytest.mark.parametrize("where", ["seed", "evaluate.seed"])
def test_a_seed_of_2_64_or_more_is_refused_at_load(capsys, tmp_path, where):
    err = refused(capsys, tmp_path, study_file(tmp_path), f"{where}=1180591620717411303424")
    assert f"$.{where}: a seed must be an integer in [0, 2**64)" in err and "1180591620717411303424" in err
    err = refused(capsys, tmp_path, study_file(tmp_path), f"{where}=-1")
    assert f"$.{where}" in err


def test_a_sweep_of_seeds_beyond_2_64_is_refused_at_its_entry(capsys, tmp_path):
    path = study_file(tmp_path, sweep={"seed": [0, 1180591620717411303424]})
    err = refused(capsys, tmp_path, path)
    assert "$.sweep['seed']: the value 1180591620717411303424" in err and "[0, 2**64)" in err


def test_the_largest_seed_loads():
    study = structure(seed=2**64 - 1, evaluate={"seed": 2**64 - 1})
    assert study.seed == study.evaluate.seed == 2**64 - 1


def structure(**changes):
    from neurodelay.study import structure_study

    return structure_study({**TINY, **changes})


# ------------------------------------------------------------------------------ 2. names
@pytest.mark.parametrize("sets", [[], ['name="ok\\n"']])
def test_a_name_ending_in_a_line_break_is_refused(capsys, tmp_path, sets):
    path = study_file(tmp_path, name="evil\n") if not sets else study_file(tmp_path)
    err = refused(capsys, tmp_path, path, *sets)
    assert "$.name: name must be a non-empty name of letters, digits and _ . + -" in err


def test_a_name_longer_than_a_folder_name_may_be_is_refused(capsys, tmp_path):
    err = refused(capsys, tmp_path, study_file(tmp_path, name="a" * 300))
    assert f"$.name: name must be at most {_bounds.MAX_NAME_LENGTH} characters" in err and "300" in err
    assert structure(name="a" * _bounds.MAX_NAME_LENGTH).name == "a" * _bounds.MAX_NAME_LENGTH


# ------------------------------------------------------------------------------ 3. recursion
def test_a_list_nested_50000_deep_is_refused_without_a_traceback(capsys, tmp_path):
    text = "name: deep\ncircuit: {preset: inertia}\nanalyses: " + "[" * 50_000 + "]" * 50_000 + "\n"
    err = refused(capsys, tmp_path, study_file(tmp_path, text))
    assert "nests mappings and lists too deep" in err and "the study script" not in err


def test_a_list_nested_within_the_reader_but_beyond_the_bound_is_refused(capsys, tmp_path):
    text = "name: deep\ncircuit: {preset: inertia}\nanalyses: " + "[" * 100 + "]" * 100 + "\n"
    err = refused(capsys, tmp_path, study_file(tmp_path, text))
    assert f"more than {_bounds.MAX_DEPTH} levels deep" in err


@pytest.mark.parametrize("sets", [["analyses=&a [*a]"], ["circuit.gamma=&a {x: *a}"]])
def test_a_value_that_contains_itself_is_refused(capsys, tmp_path, sets):
    err = refused(capsys, tmp_path, study_file(tmp_path), *sets)
    assert "contains itself" in err and "&a [*a]" in err


def test_a_self_containing_file_is_refused(capsys, tmp_path):
    err = refused(capsys, tmp_path, study_file(tmp_path, "name: x\ncircuit: &c {preset: inertia, loop: *c}\n"))
    assert "contains itself" in err


def test_aliases_that_expand_to_a_billion_values_are_refused_quickly(capsys, tmp_path):
    lines = ["a0: &a0 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    text = "name: x\ncircuit: {preset: inertia}\nanalyses:\n  " + "\n  ".join(
        f"- {line.split(': ', 1)[1]}" for line in lines) + "\n"
    err = refused(capsys, tmp_path, study_file(tmp_path, text))
    assert f"more than {_bounds.MAX_VALUES:,} values" in err


def test_an_integer_of_thousands_of_digits_is_refused(capsys, tmp_path):
    text = f"name: x\nseed: {'9' * 5000}\ncircuit: {{preset: inertia}}\n"
    err = refused(capsys, tmp_path, study_file(tmp_path, text))
    assert "cannot read" in err
    err = refused(capsys, tmp_path, study_file(tmp_path), "seed=" + "9" * 5000)
    assert "cannot be read" in err and "characters)" in err  # the --set is quoted cut, not whole


def test_the_api_refuses_a_self_containing_override():
    loop = []
    loop.append(loop)
    with pytest.raises(StudyError, match="contains itself"):
        load_study_dict(overrides=[("analyses", loop)])


def load_study_dict(overrides):
    from neurodelay.study import apply_overrides

    return apply_overrides(dict(TINY), overrides)


# ------------------------------------------------------------------------------ 4. values that fail at run time
@pytest.mark.parametrize("override, where, text", [
    ("dt_ms=1.0e+308", "$.dt_ms", "dt_ms must be in [1e-06, 1e+06] ms"),
    ("dt_ms=1.0e-300", "$.dt_ms", "dt_ms must be in [1e-06, 1e+06] ms"),
    ("train.steps=1000000000000000000000000000000", "$.train.steps", "at most 2**63 - 1"),
    ("train.steps=1.0e+30", "$.train.steps", "expected an integer, got 1e+30"),
    ("world.n_frames=100000000", "$.world.n_frames", "at most 100,000 frames"),
    ("world.size=16384", "$.world.size", "at most 4096 pixels"),
    ("circuit.input_delay_ms=1.0e+300", "$.circuit.input_delay_ms", "a delay must be at most 100,000 steps"),
    ("circuit.n_latents=99999999999999999999", "$.circuit.n_latents", "at most 2**63 - 1"),
])
def test_values_the_run_cannot_represent_are_refused_at_load(capsys, tmp_path, override, where, text):
    err = refused(capsys, tmp_path, study_file(tmp_path), override)
    assert f"{where}: " in err and text in err, err


def test_a_graph_edge_delay_beyond_the_bound_is_refused_at_its_edge():
    raw = {**TINY, "circuit": {"nodes": {"r": {"kind": "relay"}},
                               "edges": [{"source": "world.factors", "target": "r", "delay_ms": 1.0e12}]},
           "objective": None, "train": {"steps": 0}}
    from neurodelay.study import structure_study

    with pytest.raises(StudyError, match=r"\$\.circuit\.edges\[0\]\.delay_ms: a delay must be at most"):
        structure_study(raw)


# ------------------------------------------------------------------------------ 9. integers
@pytest.mark.parametrize("override, where", [("world.size=32.0", "$.world.size"), ("train.steps=5.0", "$.train.steps"),
                                             ("circuit.n_latents=2.0", "$.circuit.n_latents"),
                                             ("evaluate.n_sequences=3.0", "$.evaluate.n_sequences")])
def test_whole_valued_floats_do_not_pass_for_integers(capsys, tmp_path, override, where):
    err = refused(capsys, tmp_path, study_file(tmp_path), override)
    value = override.split("=")[1]
    assert f"{where}: expected an integer, got {value} (a number with a decimal point); write it without one: " \
           f"{value[:-2]}." in err


# ------------------------------------------------------------------------------ memory
def test_a_study_plainly_beyond_the_machines_memory_is_refused_with_the_estimate(monkeypatch):
    monkeypatch.setattr(_bounds, "machine_memory", lambda device="cpu": 2**30)  # a 1 GiB machine
    from neurodelay.study import structure_study

    with pytest.raises(StudyError) as caught:
        structure_study({**TINY, "evaluate": {"n_sequences": 2_000_000}})
    (path, msg), = caught.value.problems
    assert path == "$.evaluate.n_sequences"
    assert "the evaluation set needs at least" in msg and "2,000,000 sequences x 4 frames" in msg and "1 GiB" in msg
    with pytest.raises(StudyError, match=r"\$\.train\.batch_size: a training batch needs at least"):
        structure_study({**TINY, "train": {**TINY["train"], "batch_size": 2_000_000}})
    with pytest.raises(StudyError, match=r"\$\.circuit: the circuit's parameters need at least .* float32 values"):
        structure_study({**TINY, "circuit": {**TINY["circuit"], "n_latents": 20_000_000}})
    structure_study(TINY)  # the tiny study fits


def test_memory_is_not_checked_against_this_machine_for_a_slurm_job_without_mem_gb(monkeypatch):
    monkeypatch.setattr(_bounds, "machine_memory", lambda device="cpu": 2**30)
    from neurodelay.study import structure_study

    big = {**TINY, "evaluate": {"n_sequences": 2_000_000}, "sweep": {"seed": [0, 1]}}
    structure_study({**big, "executor": {"name": "slurm"}})  # the job's memory is not known here
    with pytest.raises(StudyError, match="more than the 1 GiB of a Slurm job"):
        structure_study({**big, "executor": {"name": "slurm", "mem_gb": 1}})


# ------------------------------------------------------------------------------ 10. sweeps
def test_a_large_sweep_says_so_before_it_is_checked():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = structure(sweep={"seed": list(range(_bounds.LARGE_SWEEP))})
    assert len(expand(study)) == _bounds.LARGE_SWEEP
    assert [str(w.message) for w in caught if issubclass(w.category, _bounds.LargeSweepWarning)] == [
        f"the sweep has {_bounds.LARGE_SWEEP:,} points, each a run of its own; checking them all takes about "
        f"{max(1, round(_bounds.LARGE_SWEEP * 0.001))} s or more before anything runs."]


def test_the_cli_prints_the_large_sweep_warning_as_one_line(capsys, tmp_path):
    code, err = dry_run(capsys, tmp_path, study_file(tmp_path, sweep={"seed": list(range(_bounds.LARGE_SWEEP))}))
    assert code == 0 and err.startswith(f"warning: the sweep has {_bounds.LARGE_SWEEP:,} points"), err


def test_a_sweep_beyond_the_most_points_is_refused_before_its_points_are_checked(capsys, tmp_path):
    sweep = {"seed": list(range(1000)), "train.lr": [1.0e-3 * (i + 1) for i in range(101)]}
    err = refused(capsys, tmp_path, study_file(tmp_path, sweep=sweep))
    assert "$.sweep: the sweep has 101,000 points" in err and f"more than {_bounds.MAX_SWEEP_POINTS:,}" in err


def test_long_point_names_are_cut_with_a_hash():
    from neurodelay.study.points import MAX_POINT_NAME, _folder

    a, b = _folder("delay_ms=" + "10.0-" * 100), _folder("delay_ms=" + "10.0-" * 99 + "20.0")
    assert len(a) == len(b) == MAX_POINT_NAME and a != b and a[:150] == b[:150]
    assert _folder("gamma=0.5,seed=1") == "gamma=0.5,seed=1"  # short names are as they were


@pytest.mark.parametrize("name", ["processes:0", "processes:100000000000", "processes:²", "processes:١",
                                  "dask:local:0", "dask:local:100000", "dask:local:x"])
def test_worker_counts_are_bounded(name):
    with pytest.raises(ConfigError, match=r"worker count >= 1 \(at most 256\)"):
        parse_executor(name)
    assert parse_executor("dask:localhost:8786") == ("dask", "localhost:8786")  # a scheduler, not a local cluster
    assert parse_executor("processes:256") == ("processes", "256")


# ------------------------------------------------------------------------------ the bounds themselves
def test_raw_problem_walks_without_recursion_and_each_shared_part_once():
    deep = []
    inner = deep
    for _ in range(10_000):
        inner.append([])
        inner = inner[0]
    assert "levels deep" in _bounds.raw_problem({"a": deep})
    shared = [0] * 10
    for _ in range(7):  # 10**8 values once expanded, 80 containers
        shared = [shared] * 10
    assert "values" in _bounds.raw_problem({"a": shared})
    assert _bounds.raw_problem({"a": [[1, 2], {"b": [3]}], "c": "text"}) is None


def test_integer_problems_bound_seeds_and_every_other_integer():
    assert _bounds.integer_problems({"seed": 2**64 - 1, "evaluate": {"seed": 0}, "train": {"steps": 2**63 - 1}}) == []
    problems = dict(_bounds.integer_problems({"seed": 2**64, "train": {"steps": -2**63 - 1},
                                              "circuit": {"edges": [{"delay_ms": 2**70}]},
                                              "sweep": {"seed": [2**80]}}))
    assert set(problems) == {"$.seed", "$.train.steps", "$.circuit.edges[0].delay_ms"}
