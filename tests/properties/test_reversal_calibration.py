"""The reversal analysis on ground truth: a report extrapolated ``alpha`` steps from ``d`` steps late.

Noise-free, its largest excursion past a turning point is ``alpha`` steps of the circle's travel before the
turn (``d`` steps after the last step before it); a report that only lags (alpha 0) does not overshoot.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurodelay as nd
from neurodelay.analysis.reversal import reversal_events, reversal_overshoot
from tests.unit.test_reversal import report

STRAIGHT = nd.MovingCircle(size=32, n_frames=16)


@settings(max_examples=8, deadline=None)
@given(delay=st.integers(0, 3), fraction=st.sampled_from([0.0, 0.5, 1.0]))
def test_overshoot_is_the_horizon_times_the_speed(delay, fraction):
    alpha = fraction * delay
    ds = report(delay, alpha)
    out = reversal_overshoot(ds, calibration=report(delay, alpha, world=STRAIGHT), window=5, n_boot=0)
    p = ds.factors.values[..., 2:4]
    events = reversal_events(p, 5)
    expected = np.mean([alpha * np.linalg.norm(p[s, r - 1] - p[s, r - 2]) * 24 for s, r in events])
    assert float(out["reversal_overshoot_px"]) == pytest.approx(expected, rel=0.02, abs=1e-6)
    if alpha > 0:
        assert float(out["reversal_peak_ms"]) == pytest.approx(10.0 * delay)
