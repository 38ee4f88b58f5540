"""Overshoot at a reversal (analysis.reversal): calibrated on circuits whose report is known."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import neurodelay as nd
from neurodelay.analysis.reversal import reversal_events, reversal_overshoot
from neurodelay.testing import delayed_report

WORLD = nd.MovingCircle(size=32, n_frames=16, motion="reversal")


def report(delay: int, alpha: float, n: int = 128, noise_px: float = 0.0, world=WORLD) -> xr.Dataset:
    """Results whose z is the circle's position ``delay`` steps late, extrapolated ``alpha`` steps."""
    return delayed_report(world, delay, alpha, n=n, noise_px=noise_px)


def test_events_are_isolated_turns_with_room_after_them():
    p = np.zeros((2, 12, 2))
    p[0, :, 0] = [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 4, 5]  # turns at steps 4 and 7
    p[1, :, 1] = [0, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4, 3]  # one turn, at step 8
    # Scored: p(r - 1) (the turning point) to p(r - 1 + window); no other turn within window steps either side.
    assert reversal_events(p, 3) == [(0, 4), (0, 7), (1, 8)]
    assert reversal_events(p, 4) == [(1, 8)]  # the two turns of sequence 0 are 3 steps apart
    assert reversal_events(p, 5) == [] and reversal_events(p[:1], 2) == [(0, 4), (0, 7)]  # no room after step 8


def test_an_extrapolating_report_overshoots_by_its_horizon_and_a_late_one_does_not():
    straight = nd.MovingCircle(size=32, n_frames=16)

    def overshoot(delay, alpha, **kw):
        return reversal_overshoot(report(delay, alpha, **kw), calibration=report(delay, alpha, world=straight),
                                  window=5)

    ext = overshoot(3, 3.0)
    # Three steps after the last step before the turn the report is the old motion extrapolated 3 steps.
    p = report(3, 3.0).factors.values[..., 2:4]
    expected = np.mean([3 * np.linalg.norm(p[s, r - 1] - p[s, r - 2]) * 24 for s, r in reversal_events(p, 5)])
    assert float(ext["reversal_overshoot_px"]) == pytest.approx(expected, rel=0.02)
    assert float(ext["reversal_peak_ms"]) == pytest.approx(30.0)
    lo, hi = ext["reversal_overshoot_px_ci"].values
    assert lo <= float(ext["reversal_overshoot_px"]) <= hi
    late = overshoot(3, 0.0)
    assert abs(float(late["reversal_overshoot_px"])) < 1e-6  # reaches the turning point, turns there
    now = overshoot(0, 0.0)
    assert float(now["reversal_overshoot_px"]) == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(now["reversal_excursion_px"], now["reversal_excursion_true_px"], atol=1e-6)
    assert ext["reversal_overshoot_px"].attrs["n_events"] >= 20
    assert ext["reversal_overshoot_px"].attrs["readout_lag_steps"] == pytest.approx(0.0, abs=0.05)
    assert late["reversal_overshoot_px"].attrs["readout_lag_steps"] == pytest.approx(3.0, abs=0.05)
    # Calibrated on the reversal runs themselves, the readout is pulled by the turns (the reason for straight paths).
    pulled = reversal_overshoot(report(3, 3.0), window=5)
    assert float(pulled["reversal_overshoot_px"]) < 0.95 * float(ext["reversal_overshoot_px"])


def test_noise_does_not_make_an_overshoot_of_a_late_report_beyond_its_interval():
    straight = nd.MovingCircle(size=32, n_frames=16)
    noisy = reversal_overshoot(report(3, 0.0, n=256, noise_px=1.0), window=5,
                               calibration=report(3, 0.0, n=256, noise_px=1.0, world=straight))
    # The peak of a noisy excursion is biased up (a max over steps); the instrument says by how much here.
    assert float(noisy["reversal_overshoot_px"]) < 1.0


def test_a_world_without_turns_has_no_result_and_a_bad_window_is_refused():
    linear = nd.MovingCircle(size=32, n_frames=16)
    assert reversal_events(linear.trajectories(16, seed=0)[..., 2:4], 3) == []
    with pytest.raises(ValueError, match="window"):
        reversal_overshoot(report(0, 0.0), window=0)


def test_a_report_that_carries_no_position_reads_nan_with_its_reason():
    noise = report(0, 0.0)
    noise["z"].values[:] = np.random.default_rng(1).normal(size=noise["z"].shape)
    out = reversal_overshoot(noise, calibration=noise, window=4)
    assert np.isnan(float(out["reversal_overshoot_px"])) and np.isnan(float(out["reversal_peak_ms"]))
    assert "min_r2" in out["reversal_overshoot_px"].attrs["nan_reason"]
