"""The optimal observer's lag-noise frontier: closed forms, and inertia as the random-walk observer."""

from __future__ import annotations

import numpy as np
import pytest

import neurodelay as nd
from neurodelay.analysis.kalman import frontier, memory_frontier, observer_lag_noise, steady_state_gain
from neurodelay.analysis.theory import steady_state_lag, theory_circuit


@pytest.mark.parametrize("q", [0.003, 0.1, 2.0])
@pytest.mark.parametrize("d", [0, 1, 3])
def test_the_random_walk_observer_is_exponential_smoothing(q, d):
    k = float(steady_state_gain("random_walk", q)[0][0, 0])
    assert k == pytest.approx((-q + np.sqrt(q * q + 4 * q)) / 2)  # the scalar Riccati equation's root
    lag, noise = observer_lag_noise("random_walk", q, d)
    assert lag == pytest.approx(d + (1 - k) / k, rel=1e-9)
    assert noise == pytest.approx(k / (2 - k), rel=1e-9)


def test_inertia_without_extrapolation_sits_on_the_random_walk_frontier():
    names = nd.MovingCircle().factor_names
    for q, d in ((0.05, 1), (1.0, 2)):
        k = float(steady_state_gain("random_walk", q)[0][0, 0])
        circuit = nd.presets.inertia(n_latents=2, gamma=1 - k, alpha=0.0, input_delay_ms=10 * d)
        th, _ = theory_circuit(circuit, "z")
        lag, _ = steady_state_lag(th, "z", names, n_steps=600)
        # d + gamma (1 - alpha) / (1 - gamma) with gamma = 1 - K is the observer's d + (1 - K) / K
        assert lag == pytest.approx(observer_lag_noise("random_walk", q, d)[0], abs=1e-3)


def test_the_constant_velocity_observer_has_no_lag_and_pays_in_noise():
    lags, noise = [], []
    for d in (0, 1, 2, 4):
        a, b = observer_lag_noise("constant_velocity", 0.1, d)
        lags.append(a)
        noise.append(b)
    np.testing.assert_allclose(lags, 0.0, atol=1e-9)
    assert np.all(np.diff(noise) > 0)  # extrapolating further passes more noise
    # The noise gain is the sum of squares of the filter's impulse response: simulate it.
    k, _ = steady_state_gain("constant_velocity", 0.1)
    f, h = np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([[1.0, 0.0]])
    a = (np.eye(2) - k @ h) @ f
    resp, x = [], k.copy()
    for _ in range(2000):
        resp.append(float((np.linalg.matrix_power(f, 2) @ x)[0, 0]))
        x = a @ x
    assert np.sum(np.square(resp)) == pytest.approx(observer_lag_noise("constant_velocity", 0.1, 2)[1], rel=1e-6)
    assert np.sum(resp) == pytest.approx(1.0, rel=1e-6)


def test_the_frontier_and_its_checks():
    fr = frontier("random_walk", 1)
    assert fr["observer_lag_steps"].dims == ("q_over_r",)
    assert np.all(np.diff(fr["observer_lag_steps"].values) < 0)  # trusting the observations more: less lag,
    assert np.all(np.diff(fr["observer_noise"].values) > 0)  # more noise
    with pytest.raises(ValueError, match="model must be one of"):
        frontier("brownian", 1)
    with pytest.raises(ValueError, match="q_over_r"):
        steady_state_gain("random_walk", 0.0)
    with pytest.raises(ValueError, match="delay_steps"):
        observer_lag_noise("random_walk", 0.1, 1.5)


def test_the_best_horizon_is_the_delay_for_linear_motion_and_less_with_reversals():
    import neurodelay as nd
    from neurodelay.analysis.kalman import best_horizon

    linear = nd.MovingCircle(size=32, n_frames=16)
    for d in (0, 1, 3):
        out = best_horizon(linear, d, n=256)
        assert out["alpha"] == pytest.approx(d, abs=1e-9) and out["rmse"] < 1e-12
    turning = best_horizon(nd.MovingCircle(size=32, n_frames=16, motion="reversal"), 3, n=512)
    assert 0.5 < turning["alpha"] < 2.0 and turning["rmse"] < turning["rmse_at_delay"]
    with pytest.raises(ValueError, match="delay_steps"):
        best_horizon(linear, -1)


def test_memory_frontier_is_the_least_noise_of_any_observer_at_its_lag():
    d = 3
    # Two taps: the extrapolator h = (1 + a, -a) is the only observer at lag d - a.
    for a in (0.0, 1.0, 2.5, 3.0):
        assert memory_frontier(d, 2, d - a) == pytest.approx((1 + a) ** 2 + a ** 2)
    # More memory never costs noise, and at lag d + (n - 1) / 2 the plain mean reaches 1 / n.
    lags = np.linspace(-1, 6, 15)
    for n in (3, 5, 12):
        assert np.all(memory_frontier(d, n, lags) <= memory_frontier(d, n - 1, lags) + 1e-12)
        assert memory_frontier(d, n, d + (n - 1) / 2) == pytest.approx(1 / n)
    # Any other observer with the same gain and lag passes more noise (random ones, from the null space).
    rng = np.random.default_rng(0)
    n, lag = 8, 0.5
    k = np.arange(n)
    a = np.stack([np.ones(n), k])
    h0 = np.linalg.lstsq(a, np.array([1.0, lag - d]), rcond=None)[0]
    null = np.linalg.svd(a)[2][2:]
    for _ in range(50):
        h = h0 + rng.normal(size=n - 2) @ null
        assert h.sum() == pytest.approx(1) and (k * h).sum() + d == pytest.approx(lag)
        assert (h ** 2).sum() >= memory_frontier(d, n, lag) - 1e-12
    with pytest.raises(ValueError, match="n_taps must be >= 2"):
        memory_frontier(d, 1, 0.0)


def test_kalman_noise_at_lag_extends_the_constant_velocity_observer_to_any_lag():
    from neurodelay.analysis.kalman import kalman_noise_at_lag

    d, q = 3, 0.05
    # Read at lag 0 it is observer_lag_noise's observer of the present.
    assert kalman_noise_at_lag(q, d, 0.0) == pytest.approx(observer_lag_noise("constant_velocity", q, d)[1], rel=1e-9)
    # Its impulse response, (1, d - lag) (A^k K), sums to 1 and lags a ramp by `lag`; the noise gain is its sum of
    # squares.
    k, _ = steady_state_gain("constant_velocity", q)
    f, h = np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([[1.0, 0.0]])
    a = (np.eye(2) - k @ h) @ f
    for lag in (0.4, 1.7, 3.0):
        resp, x = [], k.copy()
        for _ in range(3000):
            resp.append(float(np.array([1.0, d - lag]) @ x[:, 0]))
            x = a @ x
        resp = np.asarray(resp)
        assert resp.sum() == pytest.approx(1.0, rel=1e-6)
        assert d + (np.arange(resp.size) * resp).sum() == pytest.approx(lag, abs=1e-6)
        assert kalman_noise_at_lag(q, d, lag) == pytest.approx(np.sum(resp ** 2), rel=1e-6)
    # Shapes follow the lags; less extrapolation passes less noise; so does trusting the motion model more, towards 0.
    lags = np.array([[0.0, 1.0], [2.0, 3.0]])
    assert kalman_noise_at_lag(q, d, lags).shape == (2, 2)
    assert np.all(np.diff(kalman_noise_at_lag(q, d, np.linspace(0, d, 7))) < 0)
    ladder = [float(kalman_noise_at_lag(x, d, 1.5)) for x in (1e-1, 1e-2, 1e-4, 1e-6, 1e-8)]
    assert np.all(np.diff(ladder) < 0) and ladder[-1] < 0.02
    with pytest.raises(ValueError, match="delay_steps"):
        kalman_noise_at_lag(q, 1.5, 0.0)
    with pytest.raises(ValueError, match="lag_steps"):
        kalman_noise_at_lag(q, d, np.nan)
    with pytest.raises(ValueError, match="q_over_r"):
        kalman_noise_at_lag(0.0, d, 0.0)


def test_the_memory_frontier_is_the_kalman_filter_of_a_straight_path_after_n_observations():
    # With no process noise and a flat prior, the Kalman filter of (position, velocity) after n observations is the
    # least-squares line through them; read at lag `lag` its noise gain is the memory frontier's.
    d = 3
    f, h = np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([[1.0, 0.0]])
    for n in (2, 5, 12):
        p = np.eye(2) * 1e9  # prior covariance (units of r): effectively none
        for i in range(n):
            if i:
                p = f @ p @ f.T
            k = p @ h.T / (h @ p @ h.T + 1.0)
            p = (np.eye(2) - k @ h) @ p
        for lag in (0.0, 1.3, 3.0):
            out = np.array([1.0, d - lag])
            assert out @ p @ out == pytest.approx(float(memory_frontier(d, n, lag)), rel=1e-5)
