"""The frontier placement of sections 9 and 12 on circuits whose lag and noise gain are known."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from findings.emergent import PLACEMENT_HEADER, n_memory_taps, placement_header, placement_rows

from neurodelay.analysis.kalman import kalman_noise_at_lag, memory_frontier
from tests.helpers import KNOWN_LAG_FACTOR_NAMES

D = 3


def _extrapolating_run(alpha: float, noise: float, seed: int, n: int = 256, n_t: int = 16) -> xr.Dataset:
    """enc = the position 3 steps late plus white noise; z = (1 + alpha) enc(t) - alpha enc(t - 1)."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.2, 0.8, (n, 2))
    vel = rng.uniform(-0.02, 0.02, (n, 2))
    pos = start[:, None] + vel[:, None] * np.arange(n_t)[None, :, None]
    enc = pos[:, np.clip(np.arange(n_t) - D, 0, None)] + rng.normal(0.0, noise, (n, n_t, 2))
    z = enc.copy()
    z[:, 1:] = (1 + alpha) * enc[:, 1:] - alpha * enc[:, :-1]
    factors = np.concatenate([np.zeros((n, n_t, 2)), pos, np.repeat(vel[:, None], n_t, axis=1)], axis=-1)
    return xr.Dataset(
        {"enc": (("sample", "time", "latent"), enc, {"node": "enc", "first_valid_step": D}),
         "z": (("sample", "time", "latent"), z, {"node": "z", "first_valid_step": D + 1}),
         "alpha_learned": ("learned_node", [alpha]),
         "factors": (("sample", "time", "factor"), factors),
         "frames": (("sample", "time", "y", "x"), np.zeros((n, n_t, 32, 32), np.float32))},
        coords={"time": np.arange(n_t) * 10.0, "factor": KNOWN_LAG_FACTOR_NAMES, "learned_node": ["z"]},
        attrs={"dt_ms": 10.0},
    )


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.5])
def test_a_two_tap_circuit_on_white_noise_is_placed_at_its_lag_and_white_noise_gain(alpha):
    n_taps = n_memory_taps(16, D)
    assert n_taps == 12
    rows, means = placement_rows([("two taps", [_extrapolating_run(alpha, 0.01, s) for s in (1, 2, 3)])], D, n_taps)
    assert len(rows) == 1 and len(rows[0]) == len(PLACEMENT_HEADER) == len(placement_header(n_taps))
    assert placement_header(n_taps)[6] == "12-tap frontier at that lag"
    m = means["two taps"]
    white = (1 + alpha) ** 2 + alpha ** 2
    assert m["lag"] == pytest.approx(D - alpha, abs=0.02)
    assert m["err_enc"] == pytest.approx(0.01 * 24, rel=0.1)  # sd 0.01 factor units, 24 px per unit
    assert m["two"] == pytest.approx(white)
    assert m["gain"] == pytest.approx(white, rel=0.05)
    assert m["mem"] == pytest.approx(float(memory_frontier(D, n_taps, m["lag"])), rel=0.02)
    assert m["ratio"] == pytest.approx(m["gain"] / m["mem"], rel=0.05)
    # Each cell is "mean [interval] (n=3)"; the Kalman cell the two q/r values at the mean lag.
    assert rows[0][1].endswith("(n=3)") and "[" in rows[0][1]
    kal = [float(x) for x in rows[0][-1].split(" / ")]
    assert kal == pytest.approx([float(kalman_noise_at_lag(q, D, m["lag"])) for q in (1e-2, 1e-4)], rel=1e-2)
    assert kal[0] > kal[1]  # trusting the motion model more passes less noise, towards 0 for a straight path
