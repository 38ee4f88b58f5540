"""Flash-lag: the probe world, and analytic answers of linear circuits."""

from __future__ import annotations

import dataclasses

import attrs
import numpy as np
import pytest
import torch
import xarray as xr

from neurodelay import Blend, Circuit, Edge, Extrapolator, MovingCircle, Relay, build_seeded, simulate
from neurodelay.analysis.figures import plot_flash_lag
from neurodelay.analysis.flash_lag import (
    READ_RULES,
    _flash_lag_core,
    _read_core,
    flash_lag,
    flash_lag_battery,
    flash_lag_theory,
    impulse_response,
)
from neurodelay.analysis.lag import LinearReadout, fit_readout, px_per_unit
from neurodelay.circuit import world_shapes
from neurodelay.errors import ConfigError
from neurodelay.worlds import _spec
from neurodelay.worlds.flash import FLASH_CONDITIONS, FlashLagProbe
from tests.helpers import SMALL_WORLD, latent_named_run, small_preset
from tests.unit.test_lag import compensated_circuit, inertia_circuit


WORLD = MovingCircle(n_frames=30, speed_min=0.005, speed_max=0.03)
PROBE = FlashLagProbe(speeds=(0.02, 0.04), flash_step=12)
PX = px_per_unit(32)


@pytest.fixture(scope="module")
def episode():
    return WORLD.sample(32, seed=1)


def measure(circuit, episode, probe=PROBE):
    module = build_seeded(circuit, input_shapes=world_shapes(WORLD))
    readout, _ = fit_readout(simulate(module, episode), "z", from_step=15)
    return flash_lag(module, WORLD, readout, probe)


def test_pure_delay_has_no_flash_lag(episode):
    out = measure(compensated_circuit(2, 0.0), episode)
    np.testing.assert_allclose(out["flash_lag_px"].values, 0.0, atol=1e-4)
    assert int(out["flash_latency_steps"]) == 2
    assert float(out["flash_latency_ms"]) == 20.0


def test_feedforward_extrapolation_sees_the_moving_circle_ahead(episode):
    d = 2
    out = measure(compensated_circuit(d, float(d)), episode)
    v_px = np.asarray(PROBE.speeds) * PX
    lag = out["flash_lag_px"]
    # Ahead by v * d where the circle has moved up to the flash; not where it only starts there.
    np.testing.assert_allclose(lag.sel(condition="standard").values, v_px * d, rtol=1e-3)
    np.testing.assert_allclose(lag.sel(condition="flash_terminated").values, v_px * d, rtol=1e-3)
    np.testing.assert_allclose(lag.sel(condition="flash_initiated").values, 0.0, atol=1e-4)
    # In time, the whole compensated delay: d steps = 20 ms at every speed; larger in px at higher speed.
    np.testing.assert_allclose(out["flash_lag_ms"].sel(condition="standard").values, d * 10.0, rtol=1e-3)
    assert lag.sel(condition="standard").values[1] > lag.sel(condition="standard").values[0]
    np.testing.assert_allclose(out["flash_position_error_px"].values, 0.0, atol=1e-4)


def test_recurrent_inertia_sees_the_moving_circle_behind(episode):
    gamma, alpha = 0.5, 0.5
    out = measure(inertia_circuit(1, gamma, alpha), episode)
    extra = gamma * (1 - alpha) / (1 - gamma)  # lag beyond the conduction delay, steps
    v_px = np.asarray(PROBE.speeds) * PX
    lag = out["flash_lag_px"]
    np.testing.assert_allclose(lag.sel(condition="standard").values, -extra * v_px, rtol=0.01)
    np.testing.assert_allclose(lag.sel(condition="flash_terminated").values, -extra * v_px, rtol=0.01)
    np.testing.assert_allclose(lag.sel(condition="flash_initiated").values, 0.0, atol=1e-4)
    np.testing.assert_allclose(out["flash_lag_ms"].sel(condition="standard").values, -extra * 10.0, rtol=0.01)


def test_core_projects_on_the_motion():
    moving = np.array([[0.6, 0.3], [0.4, 0.3], [0.3, 0.55]])
    flash = np.array([[0.5, 0.7], [0.5, 0.7], [0.7, 0.5]])
    dirs = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(_flash_lag_core(moving, flash, dirs), [0.1, 0.1, 0.05])


def test_probe_geometry_and_rendering():
    probe = FlashLagProbe(speeds=(0.03,), flash_step=4, directions=("right", "up"))
    pos = probe.circle_positions("standard", 0.03, 8)
    np.testing.assert_allclose(pos[:, 4], [[0.5, 0.3], [0.3, 0.5]])  # at the flash's place along the motion
    np.testing.assert_allclose(pos[0, 5] - pos[0, 4], [0.03, 0.0])
    np.testing.assert_allclose(pos[1, 5] - pos[1, 4], [0.0, -0.03])
    init = probe.circle_positions("flash_initiated", 0.03, 8)
    term = probe.circle_positions("flash_terminated", 0.03, 8)
    np.testing.assert_allclose(init[:, :5], np.repeat(init[:, 4:5], 5, axis=1))
    np.testing.assert_allclose(term[:, 4:], np.repeat(term[:, 4:5], 4, axis=1))
    f = probe.factors(WORLD, "flash_initiated", 0.03, 8)
    np.testing.assert_allclose(f[0, :5, 4], 0.0)  # at rest before the flash
    np.testing.assert_allclose(f[0, 5:, 4], 0.03)
    with_flash = probe.episode(WORLD, "standard", 0.03, 8)
    without = probe.episode(WORLD, "standard", 0.03, 8, show_flash=False)
    diff = (with_flash.frames - without.frames).abs().sum(dim=(2, 3, 4))
    assert torch.all(diff[:, 4] > 5.0) and torch.all(diff[:, :4] == 0) and torch.all(diff[:, 5:] == 0)
    assert with_flash.frames.shape == (2, 8, 1, 32, 32)
    ref = probe.reference_episode(WORLD, 8)
    np.testing.assert_allclose(ref.factors[:, :, 2:4].numpy(), np.repeat(probe.flash_positions()[:, None], 8, 1),
                               atol=1e-7)


def test_probe_rejects_paths_that_leave_the_image():
    with pytest.raises(ConfigError, match="lower the speeds"):
        FlashLagProbe(speeds=(0.1,), flash_step=8).check_fits(12)
    with pytest.raises(ConfigError, match="conditions"):
        FlashLagProbe(conditions=("nope",))
    with pytest.raises(ConfigError, match="speeds"):
        FlashLagProbe(speeds=(0.0,))


def test_flash_lag_figure(episode, tmp_path):
    out = measure(compensated_circuit(2, 2.0), episode)
    path = tmp_path / "flash.png"
    plot_flash_lag(out).savefig(path, dpi=60)
    assert path.stat().st_size > 1000
    for name, var in out.data_vars.items():
        assert {"units", "long_name"} <= set(var.attrs), name


# --------------------------------------------------------------------------
# The faithful conditions: flash-initiated (no circle before the flash) and reversal
# --------------------------------------------------------------------------

ALL = FlashLagProbe(speeds=(0.03,), flash_step=4, directions=("right", "up"), conditions=FLASH_CONDITIONS)


@pytest.mark.parametrize("seed_compatible", [False, True])
def test_flash_initiated_shows_no_circle_before_the_flash(seed_compatible):
    world = MovingCircle(seed_compatible=seed_compatible)
    init = ALL.episode(world, "flash_initiated", 0.03, 8)
    rest = ALL.episode(world, "rest_then_move", 0.03, 8)
    blank = _spec.render_blob(world, init.factors[:, :4, :2])
    assert torch.equal(init.frames[:, :4], blank)  # the blob alone, as the world's renderer draws it
    assert not torch.equal(rest.frames[:, :4], blank)  # the old condition shows the circle at rest
    assert torch.equal(init.frames[:, 4:], rest.frames[:, 4:])  # from the flash on: the same frames
    # The factors cannot say "no circle": they hold the flash's place and zero velocity (documented).
    assert torch.equal(init.factors, rest.factors)
    np.testing.assert_array_equal(ALL.circle_visible("flash_initiated", 8), [0, 0, 0, 0, 1, 1, 1, 1])
    for cond in ("standard", "flash_terminated", "reversal", "rest_then_move"):
        assert ALL.circle_visible(cond, 8).all()
    # Each blank frame is the circle's frame wherever the circle does not reach.
    alone = attrs.evolve(world, blob_brightness=0.0).render(rest.factors[:, :4])
    untouched = alone == 0
    assert torch.equal(rest.frames[:, :4][untouched], blank[untouched])


def test_reversal_comes_back_along_the_named_direction():
    pos = ALL.circle_positions("reversal", 0.03, 8)
    # right: from the right (x > 0.5) towards the flash's place, back to the right after it
    np.testing.assert_allclose(pos[0, :, 0], 0.5 + 0.03 * np.abs(np.arange(8) - 4))
    np.testing.assert_allclose(pos[1, :, 1], 0.5 - 0.03 * np.abs(np.arange(8) - 4))  # up: y decreases after
    np.testing.assert_allclose(pos[:, 4], [[0.5, 0.3], [0.3, 0.5]])
    f = ALL.factors(WORLD, "reversal", 0.03, 8)
    np.testing.assert_allclose(f[0, :5, 4], -0.03)  # velocity: against the named direction up to the flash
    np.testing.assert_allclose(f[0, 5:, 4], 0.03)
    np.testing.assert_allclose(f[1, 5:, 5], -0.03)


def test_rest_then_move_keeps_the_old_flash_initiated_path():
    s = ALL.along("rest_then_move", 0.03, 8)
    np.testing.assert_allclose(s, 0.5 + 0.03 * np.maximum(np.arange(8) - 4, 0))
    np.testing.assert_array_equal(ALL.along("flash_initiated", 0.03, 8), s)


def test_probe_condition_errors_name_the_fix():
    with pytest.raises(ConfigError, match=r"FlashLagProbe\.conditions must be distinct names among .*got "
                                          r"\('initiated',\); use e\.g\. conditions="):
        FlashLagProbe(conditions="initiated")
    for call in (lambda: ALL.along("nope", 0.03, 8), lambda: ALL.circle_visible("nope", 8),
                 lambda: ALL.episode(WORLD, "nope", 0.03, 8)):
        with pytest.raises(ValueError, match=r"condition must be one of \('standard', 'flash_initiated'"):
            call()
    assert FlashLagProbe().conditions == ("standard", "flash_initiated", "flash_terminated", "reversal")


# --------------------------------------------------------------------------
# The battery: when the percept is read, against the linear theory
# --------------------------------------------------------------------------

VEC = "world.factors"
BATTERY = FlashLagProbe(speeds=(0.02, 0.04), flash_step=10, conditions=FLASH_CONDITIONS)
RULE_OPTIONS = {"first": {}, "latency": {"latency_steps": 2}, "postdiction": {"window_steps": 4}}


def exact_readout(n_latents: int = 6) -> LinearReadout:
    """The circle position, read exactly from a trace of the world's factors (channels 2, 3)."""
    coef = np.zeros((n_latents + 1, 2))
    coef[2, 0] = coef[3, 1] = 1.0
    return LinearReadout(node="z", lag_steps=0.0, dt_ms=10.0, mean=np.zeros(n_latents), scale=np.ones(n_latents),
                         coef=coef)


def linear_circuit(kind: str, d: int, horizon_steps: float = 0.0, gamma: float = 0.0,
                   alpha: float = 1.0) -> Circuit:
    """The factors, delayed d steps, through a pure delay, a feed-forward extrapolator or the inertia loop."""
    if kind == "delay":
        return Circuit(nodes={"z": Relay()}, edges=[Edge(VEC, "z", delay_ms=10.0 * d)])
    if kind == "extrapolation":
        return Circuit(nodes={"r": Relay(), "z": Extrapolator(alpha=horizon_steps)},
                       edges=[Edge(VEC, "r", delay_ms=10.0 * d), Edge("r", "z")])
    return Circuit(nodes={"r": Relay(), "z": Blend(gamma=gamma), "pred": Extrapolator(alpha=alpha)},
                   edges=[Edge(VEC, "r", delay_ms=10.0 * d), Edge("r", "z.drive"), Edge("z", "pred", delay_ms=10.0),
                          Edge("pred", "z.prediction")])


CASES = [("delay", 2, {}), ("extrapolation", 1, {"horizon_steps": 2.0}), ("extrapolation", 3, {"horizon_steps": 1.5}),
         ("inertia", 1, {"gamma": 0.5, "alpha": 0.5}), ("inertia", 2, {"gamma": 0.5, "alpha": 1.0}),
         ("inertia", 0, {"gamma": 0.3, "alpha": 2.0})]


@pytest.mark.parametrize("kind, d, params", CASES, ids=[f"{k}-d{d}-{p}" for k, d, p in CASES])
def test_battery_measures_the_linear_theory_in_every_condition_and_rule(kind, d, params):
    module = build_seeded(linear_circuit(kind, d, **params), input_shapes=world_shapes(WORLD))
    out = flash_lag_battery(module, WORLD, exact_readout(), BATTERY, latency_steps=2, window_steps=4)
    g = impulse_response(kind, 64, **params)
    v_px = np.asarray(BATTERY.speeds) * PX
    for rule in READ_RULES:
        single = flash_lag(module, WORLD, exact_readout(), BATTERY, read_at=rule, **RULE_OPTIONS[rule])
        for cond in BATTERY.conditions:
            theory = flash_lag_theory(g, cond, flash_step=BATTERY.flash_step, read_at=rule, **RULE_OPTIONS[rule])
            got = out["flash_lag_battery_px"].sel(read_at=rule, condition=cond).values
            # float32 circuits: positions to ~1e-7 factor units, i.e. ~1e-5 steps of motion at these speeds
            np.testing.assert_allclose(got, theory * v_px, rtol=1e-4, atol=1e-4 * v_px.min(), err_msg=(rule, cond))
            np.testing.assert_allclose(out["flash_lag_battery_ms"].sel(read_at=rule, condition=cond).values,
                                       theory * 10.0, rtol=1e-4, atol=1e-3)
            np.testing.assert_allclose(single["flash_lag_px"].sel(condition=cond).values, got, rtol=1e-9, atol=1e-12)
        assert single["flash_lag_px"].attrs["read_at"] == rule
    assert int(out["flash_lag_battery_px"].attrs["perceived_step"]) == BATTERY.flash_step + d


def test_theory_closed_forms():
    """The closed forms of docs/flash-lag.md, in steps of motion, from the general formula."""
    t_f = 9
    for h in (0.0, 0.5, 2.0, 3.0):
        g = impulse_response("extrapolation", 4, horizon_steps=h)
        th = {(c, r, k): flash_lag_theory(g, c, flash_step=t_f, read_at=r, **({"latency_steps": k} if r == "latency"
                                                                            else {"window_steps": k}))
              for c in ("standard", "flash_initiated", "flash_terminated", "reversal")
              for r, k in (("latency", 0), ("latency", 1), ("latency", 3), ("postdiction", 1), ("postdiction", 4),
                           ("postdiction", 6))}
        for k in (1, 3):  # a latency of L >= 1 steps: (L + h, L + h, 0, L + h)
            assert [th[c, "latency", k] for c in ("standard", "flash_initiated", "flash_terminated", "reversal")] \
                == pytest.approx([k + h, k + h, 0.0, k + h])
        assert [th[c, "latency", 0] for c in ("standard", "flash_initiated", "flash_terminated", "reversal")] \
            == pytest.approx([h, 0.0, h, -h])  # read first: the flash-terminated one equals the standard one
        for w in (1, 4, 6):
            m = (w - 1) / 2
            assert [th[c, "postdiction", w] for c in ("standard", "flash_initiated", "flash_terminated", "reversal")] \
                == pytest.approx([m + h, m + h * (w - 1) / w, h / w, m + h * (w - 2) / w])
    # Inertia: read first, (-lambda, 0, -lambda, lambda) once the start-up has settled.
    for gamma, alpha in ((0.5, 0.5), (0.4, 1.5), (0.6, 0.0), (0.5, 1.0)):
        lam = gamma * (1 - alpha) / (1 - gamma)
        g = impulse_response("inertia", 300, gamma=gamma, alpha=alpha)
        assert float(np.sum(np.arange(300) * g)) == pytest.approx(lam, abs=1e-9)
        first = [flash_lag_theory(g, c, flash_step=150) for c in ("standard", "flash_initiated", "flash_terminated",
                                                                  "reversal")]
        assert first == pytest.approx([-lam, 0.0, -lam, lam], abs=1e-9)


def test_read_core_means_the_window_and_refuses_undefined_steps():
    rel = np.arange(12.0).reshape(2, 6)
    defined = np.array([[True] * 6, [False, False, True, True, True, True]])
    np.testing.assert_array_equal(_read_core(rel, defined, 0, 1), [0.0, np.nan])
    np.testing.assert_array_equal(_read_core(rel, defined, 2, 3), [3.0, 9.0])
    np.testing.assert_array_equal(_read_core(rel, defined, 4, 3), [np.nan, np.nan])  # past the end


def test_flash_lag_read_at_is_an_explicit_checked_option():
    module = build_seeded(linear_circuit("extrapolation", 1, horizon_steps=1.0), input_shapes=world_shapes(WORLD))
    probe = FlashLagProbe(speeds=(0.02,), flash_step=6, directions=("right", "left"))
    default = flash_lag(module, WORLD, exact_readout(), probe)
    first = flash_lag(module, WORLD, exact_readout(), probe, read_at="first")
    xr.testing.assert_identical(default, first)
    assert default["flash_lag_px"].attrs["read_at"] == "first"
    assert default["flash_lag_px"].attrs["read_n_steps"] == 1
    assert default["flash_lag_px"].attrs["read_offset_steps"] == 0
    late = flash_lag(module, WORLD, exact_readout(), probe, read_at="latency", latency_steps=3)
    assert late["flash_lag_ms"].attrs["latency_steps"] == 3 and late["flash_lag_ms"].attrs["read_offset_steps"] == 3
    post = flash_lag(module, WORLD, exact_readout(), probe, read_at="postdiction")
    assert post["flash_lag_px"].attrs["window_steps"] == 4 and post["flash_lag_px"].attrs["read_n_steps"] == 4
    assert "averaged over the 4 steps" in post["flash_lag_px"].attrs["long_name"]
    for kw, match in [({"read_at": "later"}, r"read_at must be one of 'first' .* got 'later'"),
                      ({"read_at": None}, r"read_at must be one of"),
                      ({"read_at": "latency", "latency_steps": -1}, r"latency_steps must be an integer >= 0"),
                      ({"read_at": "latency", "latency_steps": True}, r"latency_steps must be an integer >= 0"),
                      ({"read_at": "postdiction", "window_steps": 0}, r"window_steps must be an integer >= 1"),
                      ({"latency_steps": 2}, r"latency_steps applies to read_at='latency' only, got "
                                             r"latency_steps=2 with read_at='first'; drop latency_steps"),
                      ({"read_at": "latency", "window_steps": 3}, r"window_steps applies to read_at='postdiction'"),
                      ({"read_at": "latency", "latency_steps": 2, "n_frames": 9},
                       r"n_frames must exceed flash_step \+ latency \+ last step read = 6 \+ 1 \+ 2, got 9; "
                       r"use n_frames >= 10")]:
        with pytest.raises(ValueError, match=match):
            flash_lag(module, WORLD, exact_readout(), probe, **kw)
    with pytest.raises(ValueError, match=r"window_steps must be an integer >= 1"):
        flash_lag_battery(module, WORLD, exact_readout(), probe, window_steps=0)


def test_steps_without_a_circle_are_nan_with_a_reason():
    module = build_seeded(linear_circuit("delay", 2), input_shapes=world_shapes(WORLD))
    probe = FlashLagProbe(speeds=(0.02,), flash_step=6, directions=("right", "left"),
                          conditions=("standard", "flash_initiated"))
    out = flash_lag_battery(module, WORLD, exact_readout(), probe, latency_steps=1, window_steps=2)
    course = out["flash_lag_px_by_read_offset"]
    steps = out["read_offset_steps"].values  # from the flash's first representation, step 6 + 2
    init = course.sel(condition="flash_initiated", speed=course["speed"][0]).values
    std = course.sel(condition="standard", speed=course["speed"][0]).values
    assert np.isnan(init[steps < 0]).all() and np.isfinite(init[steps >= 0]).all()  # no circle before the flash
    assert steps[0] == -6 and np.isfinite(std).all()  # from the representation's first valid step on
    assert "flash_initiated before the flash" in course.attrs["nan_reason"]
    assert np.isfinite(out["flash_lag_battery_px"].values).all()  # every rule reads from the flash's arrival on
    assert "nan_reason" not in out["flash_lag_battery_px"].attrs
    # A rule that reads past the sequences is NaN with the reason; the others are numbers.
    short = flash_lag_battery(module, WORLD, exact_readout(), probe, n_frames=10, latency_steps=1, window_steps=3)
    px = short["flash_lag_battery_px"]
    assert np.isnan(px.sel(read_at="postdiction").values).all()
    assert np.isfinite(px.sel(read_at=["first", "latency"]).values).all()
    assert "read_at='postdiction' reads up to 2 steps after step 8, past the sequences' 10 steps" \
        in px.attrs["nan_reason"]
    # A probe whose paths fit no sequence long enough for the window: the battery shortens them and says so.
    fast = FlashLagProbe(speeds=(0.05,), flash_step=10, directions=("right", "left"))  # paths fit 21 steps
    late = build_seeded(linear_circuit("delay", 8), input_shapes=world_shapes(WORLD))  # the window needs 10 + 8 + 4
    out = flash_lag_battery(module=late, world=WORLD, readout=exact_readout(), probe=fast)
    px = out["flash_lag_battery_px"]
    assert px.attrs["n_frames"] == 21
    assert np.isnan(px.sel(read_at="postdiction").values).all()
    np.testing.assert_allclose(px.sel(read_at="latency", condition="standard").values, 2 * 0.05 * PX)
    assert "read_at='postdiction' reads up to 3 steps after step 18, past the sequences' 21 steps" \
        in px.attrs["nan_reason"]
    with pytest.raises(ConfigError, match="lower the speeds"):
        flash_lag(late, WORLD, exact_readout(), fast, read_at="postdiction")
    # No readout lag: nothing is decoded.
    blind = dataclasses.replace(exact_readout(), lag_steps=float("nan"))
    nan = flash_lag_battery(module, WORLD, blind, probe)
    assert np.isnan(nan["flash_lag_battery_px"].values).all()
    assert "no lag" in nan["flash_lag_battery_px"].attrs["nan_reason"]


def test_the_human_pattern_needs_a_later_readout():
    """Fitted readouts (as a study fits them): read first, FF extrapolation gives the opposite of the human
    pattern; read 2 steps later, a pure delay and FF extrapolation both give it (docs/flash-lag.md)."""
    episode = WORLD.sample(32, seed=1)
    probe = FlashLagProbe(speeds=(0.02, 0.04), flash_step=12)
    ratios = {}
    for name, circuit in (("delay", compensated_circuit(2, 0.0)), ("extrapolation", compensated_circuit(2, 2.0))):
        module = build_seeded(circuit, input_shapes=world_shapes(WORLD))
        readout, _ = fit_readout(simulate(module, episode), "z", from_step=15)
        out = flash_lag_battery(module, WORLD, readout, probe)
        ratios[name] = out["flash_lag_battery_ratio"]
        std = out["flash_lag_battery_ms"].sel(condition="standard").mean("speed")
        h = 2.0 if name == "extrapolation" else 0.0
        np.testing.assert_allclose(std.values, np.array([h, 2 + h, 1.5 + h]) * 10.0, rtol=0.02, atol=0.05)
    ext = ratios["extrapolation"]
    np.testing.assert_allclose(ext.sel(read_at="first", condition=["flash_initiated", "flash_terminated"]).values,
                               [0.0, 1.0], atol=0.01)
    assert np.isnan(ratios["delay"].sel(read_at="first")).all()  # no standard flash-lag to compare with
    assert "below 0.1 of a step" in ratios["delay"].attrs["nan_reason"]
    for r in ratios.values():
        np.testing.assert_allclose(r.sel(read_at="latency", condition=["flash_initiated", "flash_terminated",
                                                                       "reversal"]).values, [1.0, 0.0, 1.0],
                                   atol=0.02)
        post = r.sel(read_at="postdiction")
        assert post.sel(condition="flash_initiated") >= 0.75 and abs(post.sel(condition="flash_terminated")) <= 0.25


def test_registered_flash_lag_writes_the_battery(tmp_path):
    from neurodelay.analysis.builtin import run_flash_lag
    from tests.unit.test_traversals import _Context

    circuit = compensated_circuit(1, 1.0)
    module = build_seeded(circuit, input_shapes=world_shapes(WORLD))
    ds = simulate(module, WORLD.sample(16, seed=2))
    ctx = _Context(study=None, circuit=circuit, module=module, world=WORLD, device="cpu", out_dir=tmp_path)
    out = run_flash_lag(ds, ctx)
    assert out["flash_lag_px"].dims == ("condition", "speed") and out["flash_lag_px"].attrs["read_at"] == "first"
    assert out["flash_lag_battery_px"].dims == ("read_at", "condition", "speed")
    assert list(out["read_at"].values) == ["first", "latency", "postdiction"]
    assert list(out["condition"].values) == ["standard", "flash_initiated", "flash_terminated", "reversal"]
    assert out["read_at_offset_steps"].values.tolist() == [0, 2, 0]
    assert out["read_at_n_steps"].values.tolist() == [1, 1, 4]
    np.testing.assert_allclose(out["flash_lag_battery_px"].sel(read_at="first").values, out["flash_lag_px"].values,
                               rtol=1e-9, atol=1e-12)
    for name, var in out.data_vars.items():
        assert {"units", "long_name"} <= set(var.attrs), name
    out.to_netcdf(tmp_path / "fl.nc", engine="netcdf4")
    back = xr.open_dataset(tmp_path / "fl.nc")
    assert back["flash_lag_battery_px"].dims == ("read_at", "condition", "speed")
    assert {p.name for p, _ in ctx.figures} == {"flash_lag.png"}
    plot_flash_lag(out).savefig(tmp_path / "battery.png", dpi=50)
    assert (tmp_path / "battery.png").stat().st_size > 1000


WORLD_20 = MovingCircle(n_frames=20)


def test_flash_lag_checks_probe_and_reports_nan_for_a_readout_without_lag():
    from neurodelay.analysis.flash_lag import flash_lag
    from neurodelay.worlds.flash import FlashLagProbe
    from tests.unit.test_lag import compensated_circuit

    module = build_seeded(compensated_circuit(1, 0.0), input_shapes=world_shapes(WORLD_20))
    probe = FlashLagProbe(speeds=(0.02,), flash_step=6, directions=("right", "left"))
    readout = LinearReadout(node="z", lag_steps=float("nan"), dt_ms=10.0, mean=np.zeros(2), scale=np.ones(2),
                            coef=np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(TypeError, match=r"probe must be a FlashLagProbe"):
        flash_lag(module, WORLD_20, readout, "standard")
    with pytest.raises(TypeError, match=r"show_flash must be True or False"):
        flash_lag(module, WORLD_20, readout, probe, show_flash="no")
    out = flash_lag(module, WORLD_20, readout, probe)
    assert np.isnan(out["flash_lag_px"].values).all()  # was 0: a readout with no lag decodes no position
    assert "no lag" in out["flash_lag_px"].attrs["nan_reason"]


@pytest.fixture(scope="module")
def latent_named():
    return latent_named_run()


def test_flash_lag_finds_the_node_of_a_readout_fitted_on_a_renamed_trace(latent_named):
    world, module, ds = latent_named
    assert "node_latent" in ds.data_vars and ds["node_latent"].attrs["node"] == "latent"
    readout, _ = fit_readout(ds, "latent")
    assert readout.node == "node_latent"
    probe = FlashLagProbe(speeds=(0.04,))
    default = flash_lag(module, world, readout, probe)  # was: KeyError 'node_latent' is not a node
    given = flash_lag(module, world, readout, probe, node="latent")
    assert default["flash_lag_px"].attrs["node"] == "latent"
    np.testing.assert_array_equal(default["flash_lag_px_by_direction"].values,
                                  given["flash_lag_px_by_direction"].values)
    assert int(default["flash_latency_steps"]) == 1


@pytest.fixture(scope="module")
def inertia():
    return small_preset("inertia")


def test_flash_lag_rejects_a_readout_of_another_node(inertia):
    readout = LinearReadout(node="z", lag_steps=0.0, dt_ms=10.0, mean=np.zeros(2), scale=np.ones(2),
                            coef=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"node='enc' is not the node the readout was fitted on \('z'\)"):
        flash_lag(inertia, SMALL_WORLD, readout, node="enc")
