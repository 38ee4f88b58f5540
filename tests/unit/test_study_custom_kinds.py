"""``--set``, sweeps and ``with_values`` reach the fields of a Python study's own components.

``studies/custom_circuit.py`` defines ``Leaky`` (kind ``leaky``, field
``rate`` in (0, 1]) as its node ``smooth``. Paths are checked against the
schema of the study's components, built-in or not, and values by the
component's own validators, errors located at the path (no runs here).
"""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import ClassVar

import attrs
import pytest

from neurodelay import Circuit, ConvDecoder, ConvEncoder, Edge, MovingCircle
from neurodelay.components import AbstractComponent
from neurodelay.training.objectives import Objective
from neurodelay.study import (
    Study,
    StudyError,
    Sweep,
    apply_overrides,
    check_study,
    load_study,
    structure_study,
    unstructure_study,
    with_values,
)
from neurodelay.sweep import expand, point_study
from neurodelay.study import TrainSettings

SCRIPT = Path(__file__).resolve().parents[2] / "studies" / "custom_circuit.py"
RATE = "circuit.nodes.smooth.rate"


@pytest.fixture(scope="module")
def custom():
    return load_study(SCRIPT)


def problems_of(fn, *args, **kwargs) -> list[tuple[str, str]]:
    with pytest.raises(StudyError) as info:
        fn(*args, **kwargs)
    return info.value.problems


# ------------------------------------------------------------------ --set
def test_set_reaches_a_custom_components_field(custom):
    study = load_study(SCRIPT, [f"{RATE}=0.3"])
    assert type(study.circuit.nodes["smooth"]).kind == "leaky"
    assert study.circuit.nodes["smooth"].rate == 0.3
    expected = unstructure_study(custom)
    expected["circuit"]["nodes"]["smooth"]["rate"] = 0.3
    assert unstructure_study(study) == expected  # nothing else changed
    assert load_study(SCRIPT, [(RATE, 1)]).circuit.nodes["smooth"].rate == 1  # (path, value) pairs too


def test_set_of_a_bad_value_is_located_with_the_components_own_message():
    (path, msg), = problems_of(load_study, SCRIPT, [f"{RATE}=2"])
    assert path == "$.circuit.nodes.smooth.rate"
    assert "rate must be in (0, 1], got 2" in msg and "use e.g. rate: 0.5 (the default)" in msg
    (path, msg), = problems_of(load_study, SCRIPT, [f"{RATE}=fast"])
    assert path == "$.circuit.nodes.smooth.rate" and "fast" in msg


def test_set_of_an_unknown_key_of_a_custom_component_suggests_its_fields():
    (_, msg), = problems_of(load_study, SCRIPT, ["circuit.nodes.smooth.rat=0.3"])
    assert "a leaky has no key 'rat'" in msg and "did you mean 'rate'?" in msg and "Valid: kind, rate." in msg


def test_apply_overrides_takes_the_extra_kinds(custom):
    leaky = type(custom.circuit.nodes["smooth"])
    raw = unstructure_study(custom)
    with pytest.raises(StudyError, match="a component has no key 'rate'"):
        apply_overrides(raw, [(RATE, 0.25)])  # the kind is unknown without them
    changed = apply_overrides(raw, [(RATE, 0.25)], extra_kinds={"leaky": leaky})
    assert changed["circuit"]["nodes"]["smooth"] == {"kind": "leaky", "rate": 0.25}
    assert raw["circuit"]["nodes"]["smooth"]["rate"] == 0.5  # the input is not modified
    assert structure_study(changed, extra_kinds={"leaky": leaky}).circuit.nodes["smooth"].rate == 0.25


# ------------------------------------------------------------------ the Python API
def test_with_values_sets_a_custom_components_field(custom):
    assert with_values(custom, {RATE: 0.25}).circuit.nodes["smooth"].rate == 0.25
    (path, msg), = problems_of(with_values, custom, {RATE: 0.0})
    assert path == "$.circuit.nodes.smooth.rate" and "rate must be in (0, 1], got 0.0" in msg


# ------------------------------------------------------------------ sweeps
def test_a_sweep_of_a_custom_components_field_checks_and_expands(custom):
    study = attrs.evolve(custom, sweep=Sweep(grid=((RATE, (0.3, 1.0)),)))
    check_study(study)
    rates = [point_study(study, p).circuit.nodes["smooth"].rate for p in expand(study)]
    assert rates == [0.3, 1.0]
    loaded = load_study(SCRIPT, [f"sweep={{{RATE}: [0.3, 1.0]}}"])
    assert loaded.sweep == study.sweep
    assert [point_study(loaded, p).circuit.nodes["smooth"].rate for p in expand(loaded)] == [0.3, 1.0]


def test_a_sweep_of_a_custom_component_in_a_zip_group(custom):
    study = attrs.evolve(custom, sweep=Sweep(zip=(((RATE, (0.3, 0.6)), ("seed", (1, 2))),)))
    check_study(study)
    got = [(s.circuit.nodes["smooth"].rate, s.seed) for s in (point_study(study, p) for p in expand(study))]
    assert got == [(0.3, 1), (0.6, 2)]


def test_a_bad_swept_value_of_a_custom_component_is_located_at_the_sweep_entry(custom):
    study = attrs.evolve(custom, sweep=Sweep(grid=((RATE, (0.3, 1.5)),)))
    (path, msg), = problems_of(check_study, study)
    assert path == f"$.sweep[{RATE!r}]"
    assert f"the value 1.5 (sweep point {RATE}=1.5)" in msg and "rate must be in (0, 1], got 1.5" in msg
    (path, msg), = problems_of(load_study, SCRIPT, [f"sweep={{{RATE}: [0.3, 1.5]}}"])
    assert path == f"$.sweep[{RATE!r}]" and "rate must be in (0, 1]" in msg


def test_an_unknown_swept_key_of_a_custom_component_suggests_its_fields(custom):
    study = attrs.evolve(custom, sweep=Sweep(grid=(("circuit.nodes.smooth.rte", (0.3, 0.6)),)))
    (path, msg), = problems_of(check_study, study)
    assert path == "$.sweep['circuit.nodes.smooth.rte']" and "did you mean 'rate'?" in msg


def test_a_set_of_a_swept_custom_field_is_refused_at_the_sweep_entry():
    (path, msg), = problems_of(load_study, SCRIPT, [f"sweep={{{RATE}: [0.3, 0.6]}}", f"{RATE}=0.9"])
    assert path == f"$.sweep[{RATE!r}]" and "overrides a swept value" in msg


# ------------------------------------------------------------------ custom conv areas follow world.size
@attrs.frozen
class WideEncoder(ConvEncoder):
    """A custom conv area (it has a ``size``), under a kind of its own."""

    kind = "wide_encoder"


def _sized_study(size: int = 32) -> Study:
    return Study(
        name="sized",
        world=MovingCircle(size=size, n_frames=4),
        circuit=Circuit(nodes={"enc": WideEncoder(n_latents=2, size=size), "dec": ConvDecoder(n_latents=2, size=size)},
                        edges=[Edge("world.frames", "enc", delay_ms=10.0), Edge("enc", "dec")], dt_ms=10.0),
        objective=Objective(reconstruction="gaussian"),
        train=TrainSettings(steps=1, batch_size=2),
    )


def test_a_custom_conv_area_follows_a_new_world_size():
    point = with_values(_sized_study(32), {"world.size": 16})
    assert point.circuit.nodes["enc"].size == point.circuit.nodes["dec"].size == 16
    study = attrs.evolve(_sized_study(32), sweep=Sweep(grid=(("world.size", (16, 32)),)))
    check_study(study)
    assert [point_study(study, p).circuit.nodes["enc"].size for p in expand(study)] == [16, 32]


def test_a_custom_conv_area_left_without_size_takes_the_worlds():
    raw = copy.deepcopy(unstructure_study(_sized_study(16)))
    del raw["circuit"]["nodes"]["enc"]["size"]
    study = structure_study(raw, extra_kinds={"wide_encoder": WideEncoder})
    assert study.circuit.nodes["enc"].size == 16


def test_a_python_study_with_a_custom_conv_area_takes_set_world_size(tmp_path):
    script = tmp_path / "sized.py"
    script.write_text(textwrap.dedent("""
        import attrs
        from neurodelay import Circuit, ConvDecoder, ConvEncoder, Edge, MovingCircle
        from neurodelay.training.objectives import Objective
        from neurodelay.study import Study
        from neurodelay.study import TrainSettings

        @attrs.frozen
        class WideEncoder(ConvEncoder):
            kind = "wide_encoder"

        def study():
            return Study(name="sized", world=MovingCircle(size=32, n_frames=4),
                         circuit=Circuit(nodes={"enc": WideEncoder(n_latents=2, size=32),
                                                "dec": ConvDecoder(n_latents=2, size=32)},
                                         edges=[Edge("world.frames", "enc", delay_ms=10.0), Edge("enc", "dec")],
                                         dt_ms=10.0),
                         objective=Objective(reconstruction="gaussian"), train=TrainSettings(steps=1, batch_size=2))
    """))
    study = load_study(script, ["world.size=16"])
    assert study.circuit.nodes["enc"].size == study.circuit.nodes["dec"].size == 16
    kept = load_study(script, ["world.size=16", "circuit.nodes.enc.size=16"])
    assert kept.circuit.nodes["enc"].size == 16



@attrs.frozen
class Window(AbstractComponent):
    """A custom component whose ``size`` is not an image size (a window of steps)."""

    kind: ClassVar[str] = "window"
    size: int = 32

    def build(self):
        raise NotImplementedError  # never built: only the size rules are checked


def test_a_custom_size_that_is_not_an_image_size_stays_put():
    from neurodelay.study.sizes import _fill_sizes, _follow_world_size

    kinds = {"wide_encoder": WideEncoder, "window": Window}
    assert not Window.size_is_image and WideEncoder.size_is_image
    raw = copy.deepcopy(unstructure_study(_sized_study(32)))
    raw["circuit"]["nodes"]["w"] = {"kind": "window", "size": 32}
    raw["world"]["size"] = 16
    nodes = _follow_world_size(raw, 32, ["world.size"], kinds)["circuit"]["nodes"]
    assert "size" not in nodes["enc"] and nodes["w"]["size"] == 32  # enc takes the new world's size below
    filled, _ = _fill_sizes(raw, kinds)
    assert filled["circuit"]["nodes"]["enc"]["size"] == 16 and filled["circuit"]["nodes"]["w"]["size"] == 32
    del raw["circuit"]["nodes"]["w"]["size"]
    assert "size" not in _fill_sizes(raw, kinds)[0]["circuit"]["nodes"]["w"]  # left to its own default
