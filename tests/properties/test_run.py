"""The command line's contract, fuzzed: whatever a study file or ``--set`` holds, exit 0 or 2, never a traceback.

Hypothesis draws study files and ``--set`` overrides around valid ones
(values of other types and sizes, whole-valued floats, NaN and infinities,
huge and negative integers, hostile names, deep nesting, aliases that
contain themselves, unknown and missing keys) and runs
``python -m neurodelay.run`` on each, in process:

* ``--dry-run``: exit status 0 (the study loads) or 2 (it does not, with a
  one-line ``error:``), no traceback, no "internal error", nothing written;
* real runs of tiny studies: exit status 0 with every output written and
  no temporary file or lock left, or 2 with no folder at all.

The default profile keeps to about 20 s on 2 cores; the ``slow`` tests run
the same properties much deeper (``pytest -m slow tests/properties/test_run.py``).
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from neurodelay.run import main

TINY = {
    "name": "tiny",
    "seed": 3,
    "dt_ms": 10,
    "world": {"kind": "moving_circle", "size": 16, "n_frames": 4},
    "circuit": {"preset": "inertia", "n_latents": 2, "gamma": 0.5, "alpha": 1.0, "input_delay_ms": 10},
    "objective": {"reconstruction": "gaussian", "beta": 0.0},
    "train": {"steps": 2, "batch_size": 2, "lr": 1.0e-3, "log_every": 1, "checkpoint_every": 1},
    "evaluate": {"n_sequences": 3, "batch_size": 2},
    "analyses": [],
}
GRAPH = {
    "name": "graph-form",
    "seed": 1,
    "world": {"kind": "moving_circle", "size": 16, "n_frames": 5},
    "circuit": {
        "nodes": {"enc": {"kind": "conv_encoder", "n_latents": 2}, "z": {"kind": "blend", "gamma": 0.25},
                  "pred": {"kind": "extrapolator", "alpha": 1.0}, "dec": {"kind": "conv_decoder", "n_latents": 2}},
        "edges": [{"source": "world.frames", "target": "enc", "delay_ms": 20},
                  {"source": "enc", "target": "z.drive"},
                  {"source": "z", "target": "pred", "delay_ms": 10},
                  {"source": "pred", "target": "z.prediction"},
                  {"source": "z", "target": "dec"}]},
    "objective": {"reconstruction": "gaussian", "prediction": 0.1, "score_from_step": 0},
    "train": {"steps": 2, "batch_size": 2},
    "evaluate": {"n_sequences": 2},
    "sweep": {"circuit.nodes.z.gamma": [0.0, 0.5]},
}
STATIC = {
    "name": "static",
    "world": {"kind": "circle_over_blob", "size": 16, "circle_values": "even"},
    "circuit": {"preset": "autoencoder", "n_latents": 3, "gaussian": True},
    "objective": {"reconstruction": "bernoulli", "beta_norm": 0.001,
                  "supervise": [{"node": "enc", "factors": ["circle_x", "circle_y", "blob_x"]}]},
    "train": {"steps": 1, "batch_size": 2, "optimizer": "adam", "grad_clip": 1.0},
    "evaluate": {"n_sequences": 2},
    "executor": {"name": "processes:2"},
    "sweep": {"zip": {"seed": [0, 1], "train.lr": [1.0e-3, 1.0e-4]}},
}
BASES = [TINY, GRAPH, STATIC]

#: What the contract forbids on stderr: a traceback, or the message for a YAML study that broke the loader.
FORBIDDEN = ("Traceback", "internal error")

# ------------------------------------------------------------------------------ hostile values
EDGE_INTS = [0, 1, -1, 2, 7, 16, 32, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70, 10**30, -2**63 - 1]
EDGE_FLOATS = [0.0, -0.0, 0.5, 1.0, 2.0, 32.0, 1e-300, 5e-324, 1e-6, 1e6, 1e30, 1e308, -1e308, math.inf, -math.inf,
               math.nan]
EDGE_TEXTS = ["", " ", "\n", "evil\n", "ok\r\n", "a/b", "../x", "..", ".", "-x", "x" * 101, "x" * 300, "²", "١٢",
              "cuda:99", "cpu\n", "rmsprop ", "1e-3", "1e999", "nan", "null", "true", "kind", "world.frames",
              "z.drive", "é", "\x00", "a b", "${HOME}", "%s%n"]
NAMES = st.one_of(st.sampled_from(["tiny", "a", "A.b+c-d_e", "x" * 100, "x" * 101, "0", "evil\n", "a/b", "..",
                                   "-lead", "sp ace", "tab\t", "ünï"]),
                  st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,30}", fullmatch=True),
                  st.text(max_size=20))

scalars = st.one_of(
    st.sampled_from(EDGE_INTS), st.integers(-10**6, 10**6), st.sampled_from(EDGE_FLOATS),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-64, 64).map(float),
    st.sampled_from(EDGE_TEXTS), st.text(max_size=12), st.booleans(), st.none(),
)


def nested(depth: int):
    """A value nested ``depth`` lists deep."""
    value = 1
    for _ in range(depth):
        value = [value]
    return value


values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(["kind", "preset", "nodes", "edges", "x", "seed"]), st.text(max_size=6)),
                    scalars, max_size=3),
    st.integers(1, 60).map(nested),
)


def leaf_paths(value, path=()):
    """Every path of a raw study (mappings and lists), leaves and sections alike."""
    out = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += leaf_paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += leaf_paths(v, path + (i,))
    return out


def _parent(raw, path):
    node = raw
    for p in path[:-1]:
        node = node[p]
    return node


def mutate(raw, data) -> dict:
    """Apply one to three mutations to a copy of ``raw``: replace, delete, add a key, rename."""
    raw = yaml.safe_load(yaml.safe_dump(raw))  # a deep copy
    for _ in range(data.draw(st.integers(1, 3), label="n_mutations")):
        paths = leaf_paths(raw)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = _parent(raw, path)
        how = data.draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "name"]), label="how")
        if how == "replace":
            parent[path[-1]] = data.draw(values, label="value")
        elif how == "delete":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif how == "add" and isinstance(parent, dict):
            key = data.draw(st.one_of(st.sampled_from(["kind", "steps", "sizes", "zip", "dt"]), st.text(max_size=8),
                                      st.integers()), label="new key")
            parent[key] = data.draw(values, label="new value")
        elif how == "name":
            raw["name"] = data.draw(NAMES, label="name")
    return raw


def run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def check_dry_run(text: str, sets=()) -> int:
    """The contract of ``--dry-run`` for a study file's ``text`` and ``--set`` overrides; returns the exit status."""
    folder = Path(tempfile.mkdtemp(prefix="nd-fuzz-"))
    try:
        study = folder / "study.yaml"
        study.write_text(text, encoding="utf-8")
        argv = [study, "--dry-run", "--out", folder / "runs"] + [a for s in sets for a in ("--set", s)]
        code, out, err = run(argv)
        assert code in (0, 2), (code, err)
        assert not any(f in err for f in FORBIDDEN), err
        assert not (folder / "runs").exists(), "a dry run wrote files"
        if code == 2:
            assert err.startswith("error: ") and "invalid" in err or "--" in err or "error:" in err, err
        else:
            assert out.startswith("# resolved study"), out
        return code
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def dump(raw) -> str:
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


# ------------------------------------------------------------------------------ raw YAML that yaml.dump would not write
HOSTILE_TEXTS = [
    "analyses: &a [*a]",
    "circuit: &c {preset: inertia, x: *c}",
    "analyses: " + "[" * 5000 + "]" * 5000,
    "analyses: " + "[" * 40 + "]" * 40,
    "seed: " + "9" * 5000,
    "seed: !!python/object/apply:os.system ['echo pwned']",
    "train: !!python/name:os.system",
    "name: !!binary aGVsbG8=",
    "world: !!set {a, b}",
    "dt_ms: 2001-01-01",
    "name: a\nname: b",
    "? [a, b]\n: 1",
    "evaluate: {seed: 0x10}",
    "train: {steps: 0o17}",
    "train: {steps: 1_000}",
    "dt_ms: .inf",
    "dt_ms: .nan",
    "train: {lr: 1e-3}",
    "train: {lr: 1e999}",
    "train: {steps: 5.0}",
    "world: {size: 32.0}",
    "%YAML 1.1\n---\nname: x",
    "---\n...\n---\n",
    "\t",
    "a: b: c",
    "- just\n- a list",
    "\x00",
    # found by this test: a key that is no text, a kind or preset that is a list
    "0: 1\nnull: 2",
    "world: {kind: []}",
    "circuit: {preset: [inertia]}",
    "circuit: {nodes: {a: {kind: {x: 1}}}, edges: []}",
]


def with_text(base: dict, extra: str) -> str:
    """``base`` as YAML with ``extra`` lines after it (a later key replaces nothing: duplicates are refused)."""
    keys = {line.split(":")[0].strip() for line in extra.splitlines() if ":" in line and not line.startswith(" ")}
    return dump({k: v for k, v in base.items() if k not in keys}) + extra + "\n"


# ------------------------------------------------------------------------------ --set overrides
SET_PATHS = ["name", "seed", "dt_ms", "device", "world", "world.kind", "world.size", "world.n_frames",
             "world.speed_min", "world.dataset", "circuit", "circuit.preset", "circuit.n_latents", "circuit.gamma",
             "circuit.input_delay_ms", "circuit.nodes.z.gamma", "circuit.edges[0].delay_ms", "circuit.edges.9",
             "objective", "objective.beta", "objective.supervise", "train", "train.steps", "train.lr",
             "train.batch_size", "train.optimizer", "train.init_from", "evaluate.n_sequences", "evaluate.seed",
             "analyses", "analyses[0]", "sweep", "sweep.seed", "executor", "executor.name", "executor.mem_gb",
             "nope", "train.nope", "", ".", "a..b", "[0]", "train[0]", "circuit.edges[99999999999999999999]"]
SET_TEXTS = ["&a [*a]", "[" * 3000 + "]" * 3000, "{", "]", "!!python/object/apply:os.system ['true']", "1e999",
             "9" * 5000, "'ok\\n'", '"evil\\n"', "null", "", "[]", "{}", "{seed: [0, 18446744073709551616]}",
             "{train.lr: [0.1, 0.1]}", "{zip: {seed: [0, 1], train.lr: [1]}}", "processes:0", "dask:local:99999",
             "slurm", "{name: processes:300}", "cuda", "cuda:0", "{kind: conv_encoder}", "{preset: nope}"]

overrides = st.tuples(
    st.sampled_from(SET_PATHS),
    st.one_of(st.sampled_from(SET_TEXTS), values.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()
                                                     .removesuffix("...").strip())),
).map(lambda pv: f"{pv[0]}={pv[1]}")

def fast(n: int) -> settings:
    """The default profile's settings for a property of ``n`` examples."""
    return settings(max_examples=n, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def deep(n: int) -> settings:
    """The slow profile's: ``n`` examples, every health check off (the drawn studies are large on purpose)."""
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck))


@fast(150)
@given(st.data())
def test_mutated_study_files_exit_0_or_2_and_write_nothing(data):
    base = data.draw(st.sampled_from(BASES), label="base")
    check_dry_run(dump(mutate(base, data)))


@fast(60)
@given(st.sampled_from(BASES), st.sampled_from(HOSTILE_TEXTS))
def test_hostile_yaml_exits_0_or_2(base, extra):
    check_dry_run(with_text(base, extra))


@fast(120)
@given(st.sampled_from(BASES), st.lists(overrides, min_size=1, max_size=3))
@example(TINY, ["world=0", "world.kind=null"])  # found by this test: a path through a value that is no section
@example(TINY, ["train=1e999", "train.steps=1e999"])
@example(GRAPH, ["circuit.edges=[]", "circuit.edges[0].delay_ms=1"])
def test_hostile_overrides_exit_0_or_2(base, sets):
    check_dry_run(dump(base), sets)


def test_the_valid_bases_load():
    for base in BASES:
        assert check_dry_run(dump(base)) == 0


# ------------------------------------------------------------------------------ real runs
small_changes = st.fixed_dictionaries({}, optional={
    "name": NAMES,
    "seed": st.one_of(st.sampled_from([0, 2**63, 2**64 - 1, 2**64, -1]), st.integers(0, 2**64 - 1)),
    "dt_ms": st.sampled_from([10, 5.0, 1e-6, 1e6, 1e308, 0]),
    "train.steps": st.sampled_from([0, 1, 2, 2.0, -1, 10**30]),
    "evaluate.seed": st.sampled_from([0, 2**64 - 1, 2**64]),
    "evaluate.n_sequences": st.sampled_from([1, 2, 3.0, 0]),
    "circuit.input_delay_ms": st.sampled_from([0, 10, 20, 15, 1e300, -10]),
    "circuit.alpha": st.sampled_from([0.0, 1.0, -2.5, 1e30]),
})


def check_real_run(changes: dict) -> None:
    """A real run of TINY with ``changes`` (dotted paths): 0 with whole outputs, or 2 with no folder.

    A training that diverges (exit 1, "training diverged") is the run's outcome, not a schema gap: it
    is allowed, with its message and no traceback.
    """
    folder = Path(tempfile.mkdtemp(prefix="nd-fuzz-run-"))
    try:
        study = folder / "study.yaml"
        study.write_text(dump(TINY), encoding="utf-8")
        sets = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                for k, v in changes.items()]
        code, _, err = run([study, "--out", folder / "runs", "--quiet"] + [a for s in sets for a in ("--set", s)])
        assert not any(f in err for f in FORBIDDEN), err
        runs = folder / "runs"
        if code == 2:
            assert not runs.exists() or not any(runs.rglob("*")), sorted(runs.rglob("*"))
            return
        if code == 1:
            assert err.startswith("run failed: training diverged"), err
            return
        assert code == 0, err
        (run_dir,) = runs.iterdir()
        names = {p.name for p in run_dir.iterdir()}
        assert {"results.nc", "report.md", "study.resolved.yaml", "figures"} <= names, names
        assert not list(run_dir.rglob("*.tmp")) and ".lock" not in names
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@fast(4)
@given(small_changes)
def test_real_runs_of_drawn_tiny_studies_exit_0_or_2(changes):
    check_real_run(changes)


# ------------------------------------------------------------------------------ the deep profile
@pytest.mark.slow
@deep(5000)
@given(st.data())
def test_deep_mutated_study_files(data):
    base = data.draw(st.sampled_from(BASES), label="base")
    check_dry_run(dump(mutate(base, data)))


@pytest.mark.slow
@deep(3000)
@given(st.sampled_from(BASES), st.lists(overrides, min_size=1, max_size=5))
def test_deep_hostile_overrides(base, sets):
    check_dry_run(dump(base), sets)


@pytest.mark.slow
@deep(60)
@given(small_changes)
def test_deep_real_runs(changes):
    check_real_run(changes)
