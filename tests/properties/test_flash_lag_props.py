"""Properties of the flash-lag probe and battery: paths that fit, blank frames, and linear circuits against theory.

The battery tests drive linear circuits (Relay, Extrapolator, Blend on
``world.factors``) through every condition and readout rule, read with the
exact readout of the circle position, and compare with
:func:`~neurodelay.analysis.flash_lag.flash_lag_theory` (transients
included) and with the closed forms of docs/flash-lag.md.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodelay import MovingCircle
from neurodelay.errors import ConfigError
from neurodelay.worlds import _spec
from neurodelay.worlds.flash import FLASH_CONDITIONS, FlashLagProbe

WORLD = MovingCircle(n_frames=20)


@settings(max_examples=60)
@given(st.data())
def test_check_fits_keeps_every_condition_inside_the_image(data):
    flash_step = data.draw(st.integers(1, 12), label="flash_step")
    n_frames = data.draw(st.integers(flash_step + 1, flash_step + 14), label="n_frames")
    along = data.draw(st.floats(0.05, 0.95), label="flash_along")
    speeds = data.draw(st.lists(st.floats(0.001, 0.2), min_size=1, max_size=3), label="speeds")
    probe = FlashLagProbe(speeds=speeds, flash_step=flash_step, flash_along=along, conditions=FLASH_CONDITIONS)
    try:
        probe.check_fits(n_frames)
    except ConfigError:
        # It refuses only what the standard condition cannot draw.
        pos = probe.circle_positions("standard", max(speeds), n_frames)
        assert (pos < 0).any() or (pos > 1).any()
        return
    for cond in FLASH_CONDITIONS:
        for v in probe.speeds:
            pos = probe.circle_positions(cond, v, n_frames)
            assert (pos >= 0).all() and (pos <= 1).all(), (cond, v)
            assert probe.factors(WORLD, cond, v, n_frames).shape == (4, n_frames, 6)


@settings(max_examples=30)
@given(st.data())
def test_blank_frames_are_the_scene_wherever_the_circle_does_not_reach(data):
    world = MovingCircle(size=data.draw(st.sampled_from([8, 16, 32]), label="size"),
                         radius=data.draw(st.floats(0.02, 0.5), label="radius"),
                         seed_compatible=data.draw(st.booleans(), label="seed_compatible"))
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    f = torch.rand(6, 6, generator=torch.Generator().manual_seed(seed))
    full = world.render(f)
    alone = attrs.evolve(world, blob_brightness=0.0).render(f)
    blank = _spec.render_blob(world, f[:, :2])
    untouched = alone == 0
    assert blank.shape == full.shape and blank.dtype == full.dtype
    assert torch.equal(full[untouched], blank[untouched])


@settings(max_examples=25)
@given(st.data())
def test_battery_of_a_linear_circuit_is_the_theory(data):
    from neurodelay import build_seeded
    from neurodelay.analysis.flash_lag import READ_RULES, flash_lag_battery, flash_lag_theory, impulse_response
    from neurodelay.circuit import world_shapes
    from tests.unit.test_flash_lag import exact_readout, linear_circuit

    flash_step = data.draw(st.integers(2, 10), label="flash_step")  # the start-up before the flash
    d = data.draw(st.integers(0, 4), label="delay_steps")
    kind = data.draw(st.sampled_from(["delay", "extrapolation", "inertia"]), label="circuit")
    params = {}
    if kind == "extrapolation":
        params = {"horizon_steps": data.draw(st.floats(0.0, 3.0), label="horizon_steps")}
    elif kind == "inertia":
        params = {"gamma": data.draw(st.floats(0.0, 0.6), label="gamma"),
                  "alpha": data.draw(st.floats(0.0, 1.5), label="alpha")}
    latency = data.draw(st.integers(0, 4), label="latency_steps")
    window = data.draw(st.integers(1, 5), label="window_steps")
    n_frames = flash_step + d + max(2, latency + 1, window)
    speed = 0.45 / max(flash_step, n_frames - 1 - flash_step)  # the longest path that fits
    probe = FlashLagProbe(speeds=(speed,), flash_step=flash_step, directions=("right", "down"),
                          conditions=FLASH_CONDITIONS)
    module = build_seeded(linear_circuit(kind, d, **params), input_shapes=world_shapes(WORLD))
    out = flash_lag_battery(module, WORLD, exact_readout(), probe, latency_steps=latency, window_steps=window)
    assert out["flash_lag_battery_px"].attrs["n_frames"] == n_frames
    g = impulse_response(kind, n_frames + 2, **params)
    steps = out["flash_lag_battery_ms"].values[..., 0] / 10.0  # (read_at, condition): steps of motion
    for i, rule in enumerate(READ_RULES):
        opt = {"latency": {"latency_steps": latency}, "postdiction": {"window_steps": window}}.get(rule, {})
        theory = np.array([flash_lag_theory(g, c, flash_step=flash_step, read_at=rule, **opt)
                           for c in FLASH_CONDITIONS])
        np.testing.assert_allclose(steps[i], theory, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(theory).max()),
                                   err_msg=rule)
