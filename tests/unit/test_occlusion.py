"""Position error behind an occluder (analysis.occlusion): calibrated on reports whose error is known."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import neurodelay as nd
from neurodelay import registry
from neurodelay.analysis.kalman import best_horizon
from neurodelay.analysis.occlusion import occlusion_error, occlusion_events
from neurodelay.circuit import Circuit, Edge
from neurodelay.components import Relay
from neurodelay.simulation import build_seeded, simulate

WORLD = nd.MovingCircle(size=32, n_frames=16, occlusion_frames=4)
STRAIGHT = nd.MovingCircle(size=32, n_frames=16)
PX = 24.0  # px per circle factor unit at 32 px


def report(rule: str = "perfect", n: int = 128, noise_px: float = 0.0, world=WORLD, delay: int = 0,
           seed: int = 3) -> xr.Dataset:
    """Results whose z is a known report of the circle's position.

    ``perfect``: the true position ``delay`` steps late; ``hold``: the last position seen while the circle is
    hidden; ``extrapolate``: the last seen position carried on at the last seen velocity while it is hidden.
    """
    f = world.trajectories(n, seed=seed)
    p = f[..., 2:4]
    t = np.arange(f.shape[1])
    z = p[:, np.clip(t - delay, 0, None)].copy()
    if rule != "perfect" and f.shape[-1] > 6:
        for s, t0, k in occlusion_events(f[..., 6], first=0):
            steps = np.arange(1, k + 1)[:, None]
            seen, v = p[s, t0 - 1], p[s, t0 - 1] - p[s, t0 - 2]
            z[s, t0:t0 + k] = seen + (v * steps if rule == "extrapolate" else 0.0)
    z = z + np.random.default_rng(0).normal(0, noise_px / PX, z.shape)
    return xr.Dataset(
        {"z": (("sample", "time", "latent"), z, {"node": "z", "first_valid_step": delay}),
         "factors": (("sample", "time", "factor"), f),
         "frames": (("sample", "time", "y", "x"), np.zeros((n, f.shape[1], 32, 32), np.float32))},
        coords={"time": t * 10.0, "factor": list(world.factor_names)}, attrs={"dt_ms": 10.0})


def _speed_px(ds, first: int = 3):
    """Each scored event's speed in px per step at the last visible step (linear motion: constant).

    ``first``: the analysis' default, the first valid step + 1 + ``before`` (2).
    """
    f = ds.factors.values
    return {s: np.linalg.norm(f[s, t0 - 1, 2:4] - f[s, t0 - 2, 2:4]) * PX
            for s, t0, _ in occlusion_events(f[..., 6], first=first)}


def test_events_are_first_occlusions_with_room_before_and_a_reappearance():
    h = np.zeros((4, 10))
    h[0, 3:6] = 1  # scored
    h[1, 1:3] = 1  # starts too early
    h[2, 7:10] = 1  # never reappears
    h[3, 2:4], h[3, 6:8] = 1, 1  # its first run is scored
    assert occlusion_events(h) == [(0, 3, 3), (3, 2, 2)]
    assert occlusion_events(h, first=3) == [(0, 3, 3)]


def test_a_perfect_report_reads_zero_a_held_one_the_travel_and_an_extrapolated_one_zero():
    cal = report(world=STRAIGHT)
    perfect = occlusion_error(report("perfect"), calibration=cal)
    for name in ("occlusion_error_px", "occlusion_reappear_error_px", "occlusion_along_px"):
        np.testing.assert_allclose(perfect[name], 0.0, atol=1e-6)
    assert float(perfect["occlusion_mean_error_px"]) == pytest.approx(0.0, abs=1e-6)
    ext = occlusion_error(report("extrapolate"), calibration=cal)  # linear motion: carried on exactly
    np.testing.assert_allclose(ext["occlusion_error_px"], 0.0, atol=1e-6)
    held_ds = report("hold")
    held = occlusion_error(held_ds, calibration=cal)
    speed = np.mean(list(_speed_px(held_ds).values()))
    # Holding the last seen position falls behind by the travel since then: speed x (steps since vanish + 1).
    np.testing.assert_allclose(held["occlusion_error_px"], speed * np.arange(1, 5), rtol=1e-6)
    np.testing.assert_allclose(held["occlusion_along_px"], -speed * np.arange(1, 5), rtol=1e-6)
    np.testing.assert_allclose(held["occlusion_hold_px"], held["occlusion_error_px"], rtol=1e-9)
    np.testing.assert_allclose(held["occlusion_reappear_error_px"], 0.0, atol=1e-6)  # reports the present again
    assert float(held["occlusion_visible_error_px"]) == pytest.approx(0.0, abs=1e-6)
    assert float(held["occlusion_mean_error_px"]) == pytest.approx(2.5 * speed, rel=1e-6)
    lo, hi = held["occlusion_error_px_ci"].values
    assert (lo <= held["occlusion_error_px"].values).all() and (held["occlusion_error_px"].values <= hi).all()
    assert (hi - lo > 0).all()
    assert held["occlusion_error_px"].attrs["n_events"] == len(_speed_px(held_ds))
    assert held["occlusion_error_px"].attrs["readout_lag_steps"] == pytest.approx(0.0, abs=0.05)


def test_a_late_report_reads_its_lag_and_the_readout_is_calibrated_on_straight_paths():
    late = occlusion_error(report("perfect", delay=3), calibration=report(world=STRAIGHT, delay=3))
    ds = report("perfect", delay=3)
    f = ds.factors.values
    lag_px = np.mean([np.linalg.norm(f[s, t0 - 1, 2:4] - f[s, t0 - 4, 2:4]) * PX
                      for s, t0, _ in occlusion_events(f[..., 6], first=4 + 2)])
    # A report 3 steps late is 3 steps of travel behind the present, visible or not (linear motion).
    assert float(late["occlusion_visible_error_px"]) == pytest.approx(lag_px, rel=1e-3)
    np.testing.assert_allclose(late["occlusion_along_px"], -lag_px, rtol=1e-3)
    assert late["occlusion_error_px"].attrs["readout_lag_steps"] == pytest.approx(3.0, abs=0.05)
    assert late["occlusion_error_px"].attrs["from_step"] == 4  # the first valid step + 1


def test_readout_noise_biases_the_distance_not_the_signed_error():
    out = {}
    for sigma in (0.0, 1.0):
        ds = report("perfect", n=256, noise_px=sigma)
        out[sigma] = occlusion_error(ds, calibration=report(n=256, noise_px=sigma, world=STRAIGHT))
    assert float(out[1.0]["occlusion_mean_error_px"]) == pytest.approx(np.sqrt(np.pi / 2), rel=0.1)
    assert abs(float(out[1.0]["occlusion_along_px"].mean())) < 0.15


def test_no_occluder_no_result_and_bad_arguments_are_refused():
    assert occlusion_error(report(world=STRAIGHT)) is None
    with pytest.raises(ValueError, match="after must be an integer >= 1"):
        occlusion_error(report(), after=0)
    with pytest.raises(ValueError, match="before must be an integer >= 1"):
        occlusion_error(report(), before=True)


def test_a_report_that_carries_no_position_reads_nan_with_its_reason():
    noise = report()
    noise["z"].values[:] = np.random.default_rng(1).normal(size=noise["z"].shape)
    out = occlusion_error(noise, calibration=noise)
    assert np.isnan(out["occlusion_error_px"].values).all() and np.isnan(float(out["occlusion_mean_error_px"]))
    assert "min_r2" in out["occlusion_error_px"].attrs["nan_reason"]


def test_the_best_horizon_behind_an_occluder_falls_far_below_the_delay():
    assert best_horizon(STRAIGHT, 3, n=256)["alpha"] == pytest.approx(3.0)  # unchanged without an occluder
    fixed = nd.MovingCircle(size=32, n_frames=16, occlusion_frames=4, occlusion_start=6)
    out = best_horizon(fixed, 3, n=1024)
    # A perfect encoder that sees nothing on 4 of 16 frames reports a constant there (about the centre);
    # extrapolating the jumps to and from it costs more than the delay it makes up.
    assert -0.6 < out["alpha"] < 0.2 and out["rmse"] < out["rmse_at_delay"]
    np.testing.assert_allclose(out["hidden_report"], [0.5, 0.5], atol=0.05)


def test_the_study_analysis_calibrates_a_circuit_that_reads_the_factors_with_their_layout(tmp_path):
    """A circuit driven by world.factors (7 of them with an occluder) sees the true position throughout: the
    registered analysis simulates its straight, unoccluded calibration paths with the same factor layout."""
    world = nd.MovingCircle(size=32, n_frames=12, occlusion_frames=3)
    circuit = Circuit({"z": Relay()}, [Edge("world.factors", "z", delay_ms=20.0)], dt_ms=10.0)
    module = build_seeded(circuit, world=world, seed=0)
    results = simulate(module, world.sample(32, seed=1))
    ctx = registry.AnalysisContext(study=None, circuit=circuit, module=module, world=world, device="cpu",
                                   out_dir=tmp_path)
    out = registry.available()["occlusion"](results, ctx)
    # The factors carry the position and the velocity while the circle is hidden: read 2 steps late, they still
    # give the present exactly (the readout, calibrated on straight paths, extrapolates with the velocity).
    assert out["occlusion_error_px"].attrs["readout_calibrated_on"] == "linear motion"
    assert out["occlusion_error_px"].attrs["n_events"] > 0
    np.testing.assert_allclose(out["occlusion_error_px"], 0.0, atol=1e-3)
    assert ctx.figures
