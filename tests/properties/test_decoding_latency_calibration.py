"""decoding_latency on theory chains with readout noise: a flash arrives when the path delivers it, and a moving
circle is read delay - horizon late, whatever the delay, the horizon and the pixel noise of the moving world."""

from __future__ import annotations

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodelay.analysis.decoding_latency import decoding_latency
from tests.unit.test_decoding_latency import WORLD, _chain


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d1=st.integers(1, 3), alpha=st.floats(0.0, 3.0), noise=st.sampled_from([0.0, 0.05, 0.1]))
def test_onset_is_the_delay_and_motion_latency_the_delay_minus_the_horizon(d1, alpha, noise):
    world = attrs.evolve(WORLD, pixel_noise=noise)
    out = decoding_latency(_chain(d1, 1, alpha, 0.0), world, areas=["v1"], n_samples=96, n_boot=0)
    assert float(out["flash_onset_ms"].sel(area="v1")) == 10 * (1 + d1)
    motion = float(out["motion_latency_ms"].sel(area="v1")) / 10
    assert abs(motion - (1 + d1 - alpha)) <= 0.1, (d1, alpha, noise, motion)
