"""neurodelay.testing: each contract check catches the defect it names, results comparison, strategies."""

from __future__ import annotations

import subprocess
import sys
from typing import ClassVar

import attrs
import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import neurodelay as nd
from neurodelay.components import AbstractComponent, FrameModule, NodeModule
from neurodelay.testing import CHECKS, TIMING_ATTRS, assert_results_equal, check_component, component_checks
from neurodelay.testing import strategies as nds


# --------------------------------------------------------------------------- components, good and broken

class _Scale(NodeModule):
    """y = k * x on both paths (k from the spec); subclasses break one rule each."""

    def __init__(self, k=1.0):
        super().__init__()
        self.k = k

    def forward_sequence(self, inputs, valid, ctx):
        return self.k * inputs["in"], {}

    def forward_step(self, inputs, t, valid, state, ctx):
        return self.k * inputs["in"], {}, state


@attrs.frozen
class Good(AbstractComponent):
    kind: ClassVar[str] = "good_scale"
    k: float = 2.0

    def out_shape(self, in_shapes):
        return in_shapes["in"]

    def linear_taps(self):
        return {"in": [(0, float(self.k))]}

    def build(self):
        return _Scale(self.k)


@attrs.define
class NotFrozen(AbstractComponent):
    kind: ClassVar[str] = "not_frozen"
    k: float = 2.0

    def out_shape(self, in_shapes):
        return in_shapes["in"]

    def build(self):
        return _Scale(self.k)


@attrs.frozen
class HoldsATensor(AbstractComponent):
    kind: ClassVar[str] = "holds_a_tensor"
    k: object = attrs.field(factory=lambda: torch.ones(1))

    def out_shape(self, in_shapes):
        return in_shapes["in"]

    def build(self):
        return _Scale(1.0)


@attrs.frozen
class ShadowsRelay(AbstractComponent):
    kind: ClassVar[str] = "relay"

    def out_shape(self, in_shapes):
        return in_shapes["in"]

    def build(self):
        return _Scale(1.0)


class _Mismatch(_Scale):
    def forward_sequence(self, inputs, valid, ctx):
        return 2 * inputs["in"], {}


class _WrongDtype(_Scale):
    def forward_sequence(self, inputs, valid, ctx):
        return inputs["in"].float(), {}

    def forward_step(self, inputs, t, valid, state, ctx):
        return inputs["in"].float(), {}, state


class _NanOnZero(_Scale):
    def forward_sequence(self, inputs, valid, ctx):
        x = inputs["in"]
        return x / x.norm(dim=-1, keepdim=True), {}

    def forward_step(self, inputs, t, valid, state, ctx):
        x = inputs["in"]
        return x / x.norm(dim=-1, keepdim=True), {}, state


class _UnseededInit(_Scale):
    """A parameter drawn from fresh entropy: two builds under one torch seed differ."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(np.random.default_rng().normal(size=3)))

    def forward_sequence(self, inputs, valid, ctx):
        return inputs["in"] * self.w, {}

    def forward_step(self, inputs, t, valid, state, ctx):
        return inputs["in"] * self.w, {}, state


class _NoiseWithoutGenerator(FrameModule):
    """Draws from torch's global generator, not ctx.generator, when asked to sample."""

    def frame(self, x, ctx):
        return (x + torch.randn(x.shape, dtype=x.dtype) if ctx.sample else x), {}


class _StateInAttribute(NodeModule):
    """An integrator whose step keeps its state on the module: a second run starts where the first ended."""

    def __init__(self):
        super().__init__()
        self.total = None

    def forward_sequence(self, inputs, valid, ctx):
        return inputs["in"].cumsum(1), {}

    def forward_step(self, inputs, t, valid, state, ctx):
        x = inputs["in"]
        self.total = x if self.total is None else self.total + x
        return self.total, {}, state


class _InPlace(_Scale):
    def forward_sequence(self, inputs, valid, ctx):
        return inputs["in"].add_(1.0), {}

    def forward_step(self, inputs, t, valid, state, ctx):
        return inputs["in"].add_(1.0), {}, state


class _AccumulatesInPlace(NodeModule):
    """A running sum whose state is its output, updated in place: earlier outputs change."""

    def forward_sequence(self, inputs, valid, ctx):
        return inputs["in"].cumsum(1), {}

    def forward_step(self, inputs, t, valid, state, ctx):
        if state is None:
            state = inputs["in"].clone()
        else:
            state.add_(inputs["in"])
        return state, {}, state


class _UnusedParameter(_Scale):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))


def _broken(kind: str, module_cls, *, taps=None, shape=None):
    """A frozen component class whose build() gives ``module_cls()``."""

    def out_shape(self, in_shapes):
        return shape if shape is not None else in_shapes["in"]

    body = {"kind": kind, "out_shape": out_shape, "build": lambda self: module_cls(),
            "__annotations__": {"kind": ClassVar[str]}, "__module__": __name__}
    if taps is not None:
        body["linear_taps"] = lambda self: taps
    return attrs.frozen(type(kind.title().replace("_", ""), (AbstractComponent,), body))


BROKEN = {
    "frozen_attrs_spec": [NotFrozen(), HoldsATensor()],
    "spec_round_trip": [ShadowsRelay()],
    "output_shape_and_dtype": [_broken("wrong_shape", _Scale, shape=(5,)), _broken("wrong_dtype", _WrongDtype)],
    "step_matches_sequence": [_broken("mismatch", _Mismatch)],
    "finite_on_zero_input": [_broken("nan_on_zero", _NanOnZero)],
    "deterministic": [_broken("unseeded_init", _UnseededInit), _broken("noise_without_generator",
                                                                        _NoiseWithoutGenerator)],
    "state_and_reset": [_broken("state_in_attribute", _StateInAttribute)],
    "no_in_place_changes": [_broken("in_place", _InPlace), _broken("accumulates_in_place", _AccumulatesInPlace)],
    "gradients": [_broken("unused_parameter", _UnusedParameter)],
    "linear_taps": [_broken("wrong_taps", _Scale, taps={"in": [(0, 2.0)]})],
}


def _spec(item):
    return item() if isinstance(item, type) else item


def test_a_good_component_passes_every_check():
    assert check_component(Good()) == CHECKS
    assert check_component(Good) == CHECKS  # a class is made with its defaults


@pytest.mark.parametrize("check, item", [(c, i) for c, items in BROKEN.items() for i in items],
                         ids=lambda v: v if isinstance(v, str) else getattr(v, "kind", type(v).__name__))
def test_each_check_fails_with_the_component_the_check_and_a_fix(check, item):
    spec = _spec(item)
    with pytest.raises(AssertionError) as err:
        check_component(spec)
    message = str(err.value)
    assert f"fails check {check!r}" in message, message
    assert type(spec).__name__ in message and "\n  fix: " in message


def test_skipping_the_failing_check_runs_the_others():
    spec = _spec(BROKEN["linear_taps"][0])
    assert check_component(spec, skip=["linear_taps"]) == tuple(c for c in CHECKS if c != "linear_taps")


def test_component_checks_gives_each_check_by_name():
    pairs = component_checks(Good())
    assert [name for name, _ in pairs] == list(CHECKS)
    for _, check in pairs:
        check()


def test_check_component_checks_its_arguments():
    with pytest.raises(TypeError, match="AbstractComponent"):
        check_component(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown checks"):
        check_component(Good(), skip=["nope"])
    with pytest.raises(ValueError, match="n_steps must be an integer >= 3"):
        check_component(Good(), n_steps=2)
    with pytest.raises(ValueError, match="input_shapes must map each of the component's ports"):
        check_component(Good(), input_shapes={"x": (3,)})
    assert check_component(nd.Blend(), input_shapes={"drive": (5,), "prediction": (5,)}) == CHECKS


def test_a_module_with_only_a_step_function_gets_the_sequence_function():
    @attrs.frozen
    class Integrator(AbstractComponent):
        kind: ClassVar[str] = "integrator_step_only"

        def out_shape(self, in_shapes):
            return in_shapes["in"]

        def build(self):
            return _RunningSum()

    assert check_component(Integrator()) == CHECKS


class _RunningSum(NodeModule):
    """Defines only forward_step."""

    def forward_step(self, inputs, t, valid, state, ctx):
        y = inputs["in"] if state is None else state + inputs["in"]
        return y, {}, y


def test_importing_neurodelay_testing_does_not_need_hypothesis():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import neurodelay, neurodelay.testing\n"
            "assert 'neurodelay.testing.strategies' not in sys.modules\n"
            "try:\n    import neurodelay.testing.strategies\nexcept ImportError:\n    print('needs hypothesis')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "needs hypothesis"


# --------------------------------------------------------------------------- assert_results_equal

def _results() -> xr.Dataset:
    ds = xr.Dataset(
        {"z": (("sample", "time", "latent"), np.arange(24, dtype=np.float32).reshape(2, 3, 4), {"units": "1"}),
         "lag": ((), np.float64(np.nan))},
        coords={"time": ("time", [0.0, 10.0, 20.0], {"units": "ms"}), "latent": ["a", "b", "c", "d"]},
        attrs={"seed": 3, "study": "name: x\n", "train_seconds": 1.5},
    )
    return ds


def test_equal_results_pass_nan_included_and_timing_ignored(tmp_path):
    a, b = _results(), _results()
    b.attrs["train_seconds"] = 99.0
    assert_results_equal(a, b)
    a.to_netcdf(tmp_path / "a.nc")
    b.to_netcdf(tmp_path / "b.nc")
    assert_results_equal(tmp_path / "a.nc", str(tmp_path / "b.nc"))
    assert_results_equal(a, tmp_path / "b.nc")
    assert "train_seconds" in TIMING_ATTRS


def test_the_first_differing_variable_is_named_with_the_size_of_the_difference():
    a, b = _results(), _results()
    b["z"][1, 2, 3] = 23.5
    with pytest.raises(AssertionError, match=r"data variable 'z': 1 of 24 values differ \(compared exactly\); "
                                             r"largest difference 0\.5, relative 0\.0213 at sample=1, "
                                             r"time=2 \(time 20\.0\), latent=3 \(latent 'd'\)"):
        assert_results_equal(a, b)
    assert_results_equal(a, b, exact=False, rtol=0.05)
    with pytest.raises(AssertionError, match=r"rtol=0\.001"):
        assert_results_equal(a, b, exact=False, rtol=1e-3)


@pytest.mark.parametrize("change, match", [
    (lambda ds: ds.drop_vars("lag"), r"data variables differ: only in a \['lag'\], only in b \[\]"),
    (lambda ds: ds.isel(time=[0, 1]), r"dimensions differ: time: 3 in a, 2 in b"),
    (lambda ds: ds.assign_coords(time=[0.0, 10.0, 30.0]), r"coordinate 'time': 1 of 3 values differ"),
    (lambda ds: ds.assign(lag=np.float64(1.0)), r"data variable 'lag': 1 of 1 values differ .* 1 differ in NaN"),
    (lambda ds: ds.assign(z=ds["z"].astype(np.float64)), r"'z' has dtype float32 in a and float64 in b"),
    (lambda ds: ds.assign_attrs(seed=4), r"the Dataset's attribute 'seed' differs: 3 in a, 4 in b"),
    (lambda ds: ds.assign(z=ds["z"].assign_attrs(units="px")), r"data variable 'z' attribute 'units' differs"),
])
def test_each_kind_of_difference_is_named(change, match):
    with pytest.raises(AssertionError, match=match):
        assert_results_equal(_results(), change(_results()))


def test_attributes_can_be_left_out_and_arguments_are_checked():
    assert_results_equal(_results(), _results().assign_attrs(seed=4), check_attrs=False)
    assert_results_equal(_results(), _results().assign_attrs(seed=4), ignore_attrs=["seed", *TIMING_ATTRS])
    with pytest.raises(TypeError, match="path of a results.nc"):
        assert_results_equal(_results(), 3)
    with pytest.raises(ValueError, match="rtol must be a finite number"):
        assert_results_equal(_results(), _results(), rtol=-1)
    with pytest.raises(TypeError, match="ignore_attrs=\\['seed'\\]"):
        assert_results_equal(_results(), _results(), ignore_attrs="seed")


def test_results_of_two_simulations_of_one_seed_are_equal():
    world = nd.MovingCircle(size=16, n_frames=4)
    episode = world.sample(2, seed=0)
    circuit = nd.presets.autoencoder(n_latents=2, size=16)
    a, b = (nd.simulate(circuit, episode, seed=0) for _ in range(2))
    assert_results_equal(a, b)
    c = nd.simulate(circuit, episode, seed=1)
    with pytest.raises(AssertionError, match="results differ: data variable"):
        assert_results_equal(a, c)


# --------------------------------------------------------------------------- strategies

@settings(max_examples=25, deadline=None)
@given(world=nds.worlds(), seed=st.integers(0, 2**32 - 1))
def test_drawn_worlds_sample_seeded_episodes_of_their_shape(world, seed):
    a, b = world.sample(2, seed=seed), world.sample(2, seed=seed)
    assert tuple(a.frames.shape) == (2, world.n_frames, *world.frame_shape)
    assert tuple(a.factors.shape) == (2, world.n_frames, world.n_factors)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.factors, b.factors)
    assert float(a.frames.min()) >= 0 and float(a.frames.max()) <= 1


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_drawn_circuits_run_the_same_stepped_and_whole(data):
    n_c = data.draw(st.integers(1, 3), label="n_channels")
    circuit = data.draw(nds.circuits(n_channels=n_c), label="circuit")
    x = data.draw(nds.signals(n_steps=data.draw(st.integers(1, 12), label="n_t"), n_channels=n_c), label="x")
    module = circuit.build(input_shapes=nds.vector_shapes(n_c))
    auto, step = module({nds.VECTOR: x}), module({nds.VECTOR: x}, mode="step")
    assert auto.keys() == step.keys()
    for k in auto:
        scale = 1 + float(step[k].abs().max())
        torch.testing.assert_close(auto[k], step[k], rtol=0, atol=1e-9 * scale)


@settings(max_examples=5, deadline=None)
@given(circuit=nds.circuits(max_nodes=2, image_size=16, n_channels=2), world=nds.moving_circles(sizes=(16,)))
def test_drawn_image_circuits_simulate_a_drawn_world(circuit, world):
    ds = nd.simulate(circuit, world.sample(2, seed=0), seed=0)
    assert ds["dec"].shape[-2:] == (16, 16)
