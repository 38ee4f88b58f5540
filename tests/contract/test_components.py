"""One battery over every component kind in COMPONENTS.

For each kind: the study-schema round trip (YAML mapping -> spec ->
unstructure -> YAML -> spec, equal), build, output shape equal to
``out_shape``, sequence and step execution agree, and a seeded build is
deterministic.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import attrs
import pytest
import torch
import yaml

from neurodelay.components import COMPONENTS, NodeModule, PortShapeError, RunContext
from neurodelay.study import structure_component, unstructure_component

KINDS = sorted(COMPONENTS)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "study-schema.md"


def _raw(kind: str) -> dict:
    """The component's study-file mapping, with small images for speed."""
    raw = {"kind": kind}
    if "size" in attrs.fields_dict(COMPONENTS[kind]):
        raw["size"] = 16
    return raw


def _candidate_shapes(spec) -> list[tuple[int, ...]]:
    shapes = [(3,)]
    if hasattr(spec, "n_latents"):
        shapes.append((spec.n_latents,))
    if hasattr(spec, "size"):
        shapes.append((getattr(spec, "in_channels", 1), spec.size, spec.size))
    return shapes


def _port_shapes(spec) -> tuple[dict, tuple]:
    """Input shapes per port that the component accepts, and its output shape."""
    for combo in itertools.product(_candidate_shapes(spec), repeat=len(spec.ports)):
        shapes = dict(zip(spec.ports, combo))
        try:
            out = spec.out_shape(shapes)
        except PortShapeError:
            continue
        if out is not None:
            return shapes, tuple(out)
    raise AssertionError(f"no input shapes found that {spec!r} accepts")


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


def test_round_trip_through_the_study_schema(kind):
    spec = structure_component(_raw(kind))
    assert isinstance(spec, COMPONENTS[kind])
    text = yaml.safe_dump(unstructure_component(spec))
    again = structure_component(yaml.safe_load(text))
    assert again == spec
    assert unstructure_component(again)["kind"] == kind


def test_unknown_parameter_is_rejected_with_its_path(kind):
    from neurodelay.study import StudyError

    with pytest.raises(StudyError, match=r"\$\.no_such_parameter: unknown key 'no_such_parameter'"):
        structure_component({**_raw(kind), "no_such_parameter": 1})


def test_builds_and_output_shape_matches_out_shape(kind):
    spec = structure_component(_raw(kind))
    shapes, out_shape = _port_shapes(spec)
    torch.manual_seed(0)
    module = spec.build()
    assert isinstance(module, NodeModule)
    n_s, n_t = 2, 5
    inputs = {p: torch.rand(n_s, n_t, *s) for p, s in shapes.items()}
    valid = {p: 0 for p in shapes}
    out, extras = module.forward_sequence(inputs, valid, RunContext())
    assert tuple(out.shape) == (n_s, n_t, *out_shape)
    for v in extras.values():
        assert tuple(v.shape[:2]) == (n_s, n_t)
    # stepping through time gives the same numbers
    state = module.init_state()
    steps = []
    for t in range(n_t):
        y, _, state = module.forward_step({p: x[:, t] for p, x in inputs.items()}, t, valid, state, RunContext())
        steps.append(y)
    torch.testing.assert_close(torch.stack(steps, dim=1), out, rtol=1e-5, atol=1e-6)


def test_seeded_build_is_deterministic(kind):
    spec = structure_component(_raw(kind))
    shapes, _ = _port_shapes(spec)
    modules = []
    for _ in range(2):
        torch.manual_seed(123)
        modules.append(spec.build())
    a, b = (m.state_dict() for m in modules)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k])
    inputs = {p: torch.rand(2, 3, *s, generator=torch.Generator().manual_seed(1)) for p, s in shapes.items()}
    valid = {p: 0 for p in shapes}
    outs = [m.forward_sequence(inputs, valid, RunContext())[0] for m in modules]
    assert torch.equal(outs[0], outs[1])


def test_every_kind_is_documented(kind):
    assert f"`{kind}`" in DOCS.read_text(encoding="utf-8")
