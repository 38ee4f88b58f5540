"""Flash-lag: the probe world, and analytic answers of linear circuits."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch

from neurodelay import MovingCircle, build_seeded, simulate
from neurodelay.analysis.figures import plot_flash_lag
from neurodelay.analysis.flash_lag import _flash_lag_core, flash_lag
from neurodelay.analysis.lag import fit_readout, px_per_unit
from neurodelay.circuit import world_shapes
from neurodelay.errors import ConfigError
from neurodelay.worlds import _spec
from neurodelay.worlds.flash import FLASH_CONDITIONS, FlashLagProbe
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
