"""The occlusion analysis on ground truth, over occluders of any length and start.

For linear motion, a report that holds the last position it saw while the circle is hidden is behind by the
circle's travel since then, ``speed x (j + 1)`` at ``j`` steps since it vanished, along the motion; one that
carries the last seen motion on is exact, and so is the true position; after the circle reappears each reports
the present again.
"""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurodelay as nd
from neurodelay.analysis.occlusion import occlusion_error, occlusion_events
from tests.unit.test_occlusion import PX, report


@st.composite
def occluded_worlds(draw):
    k = draw(st.integers(1, 5))
    n_frames = draw(st.integers(k + 6, 20))
    start = draw(st.one_of(st.none(), st.integers(3, n_frames - k - 1)))
    return nd.MovingCircle(size=32, n_frames=n_frames, occlusion_frames=k, occlusion_start=start)


@settings(max_examples=10, deadline=None)
@given(world=occluded_worlds(), rule=st.sampled_from(["perfect", "hold", "extrapolate"]))
def test_the_error_behind_the_occluder_is_the_travel_the_report_misses(world, rule):
    straight = attrs.evolve(world, occlusion_frames=0, occlusion_start=None)
    ds = report(rule, n=64, world=world)
    out = occlusion_error(ds, calibration=report(n=64, world=straight), n_boot=0)
    f = ds.factors.values
    events = occlusion_events(f[..., 6], first=3)  # the first valid step + 1, and 2 steps before
    assert out["occlusion_error_px"].attrs["n_events"] == len(events) > 0
    speed = np.mean([np.linalg.norm(f[s, t0 - 1, 2:4] - f[s, t0 - 2, 2:4]) * PX for s, t0, _ in events])
    missed = speed * np.arange(1, world.occlusion_frames + 1) if rule == "hold" else np.zeros(world.occlusion_frames)
    np.testing.assert_allclose(out["occlusion_error_px"], missed, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["occlusion_along_px"], -missed, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["occlusion_hold_px"], speed * np.arange(1, world.occlusion_frames + 1), rtol=1e-6)
    after = out["occlusion_reappear_error_px"].values
    np.testing.assert_allclose(after[np.isfinite(after)], 0.0, atol=1e-6)
    assert float(out["occlusion_mean_error_px"]) == pytest.approx(missed.mean(), rel=1e-6, abs=1e-6)
