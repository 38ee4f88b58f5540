"""Lag: the readout lag recovers the analytic lag of linear circuits; lag-resolved scores."""

from __future__ import annotations

import warnings

import attrs
import numpy as np
import pytest
import torch
import xarray as xr

from neurodelay import Blend, Circuit, Edge, Extrapolator, MovingCircle, simulate
from neurodelay.analysis._lagfit import shift as _shift
from neurodelay.analysis.figures import plot_lag
from neurodelay.analysis.lag import (
    fit_readout,
    lag_resolved_scores,
    px_per_unit,
    representational_lag,
)
from neurodelay.analysis.readout import _readout_lag_core
from neurodelay.components.base import AbstractComponent, FrameModule
from neurodelay.record import traces_to_dataset
from tests.helpers import known_lag_results as results


DT = 10.0
NAN = float("nan")


@attrs.frozen
class Select(AbstractComponent):
    """Test component: picks channels of a vector (the circle position factors by default)."""

    kind = "select_test"
    channels: tuple = (2, 3)

    def out_shape(self, in_shapes):
        return (len(self.channels),)

    def build(self):
        return _SelectModule(self.channels)


class _SelectModule(FrameModule):
    def __init__(self, channels):
        super().__init__()
        self.channels = list(channels)

    def frame(self, x, ctx):
        return x[:, self.channels], {}


def inertia_circuit(d: int, gamma: float, alpha: float) -> Circuit:
    """Circle positions, delayed d steps, into an inertia blend: z = (1-g) drive + g extrap(z[t-1])."""
    return Circuit(
        nodes={"sel": Select(), "z": Blend(gamma=gamma), "pred": Extrapolator(alpha=alpha)},
        edges=[Edge("world.factors", "sel", delay_ms=d * DT), Edge("sel", "z.drive"),
               Edge("z", "pred", delay_ms=DT), Edge("pred", "z.prediction")],
        dt_ms=DT,
    )


def compensated_circuit(d: int, horizon: float) -> Circuit:
    """Circle positions, delayed d steps, extrapolated ``horizon`` steps ahead (feed-forward)."""
    return Circuit(nodes={"sel": Select(), "z": Extrapolator(alpha=horizon)},
                   edges=[Edge("world.factors", "sel", delay_ms=d * DT), Edge("sel", "z")], dt_ms=DT)


@pytest.fixture(scope="module")
def episode():
    world = MovingCircle(n_frames=50, speed_min=0.005, speed_max=0.02)
    return world.sample(48, seed=3)


@pytest.mark.parametrize("d, gamma, alpha", [(2, 0.5, 0.5), (3, 0.4, 1.5), (1, 0.6, 0.0), (2, 0.5, 1.0)])
def test_inertia_lag_matches_analytic(episode, d, gamma, alpha):
    analytic = d + gamma * (1 - alpha) / (1 - gamma)
    ds = simulate(inertia_circuit(d, gamma, alpha), episode)
    out = representational_lag(ds, "z", from_step=25)
    assert abs(float(out["lag_steps"]) - analytic) < 0.05
    assert float(out["lag_ms"]) == pytest.approx(float(out["lag_steps"]) * DT)
    # Constant velocity: the decoded position trails the true one by L * speed along the motion.
    pos = ds["factors"].sel(factor=["circle_x", "circle_y"]).values
    speed_px = np.linalg.norm(pos[:, 1] - pos[:, 0], axis=-1).mean() * px_per_unit(32)
    assert float(out["position_error_px"]) == pytest.approx(-analytic * speed_px, rel=0.1)
    assert out["lag_readout_rmse_px"].dims == ("lag",)
    assert float(out["readout_rmse_px"]) < 0.01


def test_feedforward_extrapolation_removes_the_lag(episode):
    ds = simulate(compensated_circuit(2, 2.0), episode)
    out = representational_lag(ds, "z", from_step=5)
    assert abs(float(out["lag_steps"])) < 0.05
    assert abs(float(out["position_error_px"])) < 0.01
    # An extrapolator that undershoots leaves the rest of the delay: 2 - 0.5 = 1.5 steps.
    ds = simulate(compensated_circuit(2, 0.5), episode)
    assert float(representational_lag(ds, "z", from_step=5)["lag_steps"]) == pytest.approx(1.5, abs=0.05)


def test_readout_core_recovers_a_fractional_lag_through_a_mixing():
    rng = np.random.default_rng(0)
    n, n_t = 40, 30
    start = rng.uniform(0.2, 0.8, (n, 2))
    vel = rng.uniform(-0.01, 0.01, (n, 2))
    pos = start[:, None] + vel[:, None] * np.arange(n_t)[None, :, None]
    true_lag = 1.37
    steps = np.arange(5, n_t)
    delayed = np.zeros_like(pos)
    delayed[:, steps] = _shift(pos, true_lag, steps)
    mixing = rng.normal(size=(2, 3))
    z = delayed @ mixing + np.array([0.3, -1.0, 2.0])
    out = _readout_lag_core(z, pos, steps, np.arange(-2, 6), np.arange(0, n, 2), np.arange(1, n, 2))
    assert out["lag"] == pytest.approx(true_lag, abs=1e-3)
    assert out["mse"] < 1e-12
    assert np.argmin(out["mse_curve"]) in (3, 4)  # whole lags 1 and 2 bracket 1.37
    assert not out["at_edge"]


def test_shift_is_exact_for_linear_motion_including_extension():
    pos = (np.arange(6, dtype=float)[None, :, None] * np.array([0.1, -0.2]) + 0.5)
    got = _shift(pos, 2.5, np.arange(6))
    want = (np.arange(6) - 2.5)[None, :, None] * np.array([0.1, -0.2]) + 0.5
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_lag_resolved_scores_find_each_latents_lag(episode):
    ds = simulate(inertia_circuit(2, 0.5, 1.0), episode)  # L = d = 2
    out = lag_resolved_scores(ds, "z", from_step=25)
    np.testing.assert_allclose(out["latent_lag_steps"].values, [2.0, 2.0], atol=1e-5)
    assert list(out["latent_lag_factor"].values) == ["circle_x", "circle_y"]
    at2 = out["lag_correlation"].sel(lag=20.0)
    assert float(at2.sel(factor="circle_x")[0]) == pytest.approx(1.0, abs=1e-6)
    assert float(at2.sel(factor="circle_y")[1]) == pytest.approx(1.0, abs=1e-6)
    # Scores peak at the true lag.
    assert int(out["lag_step"][np.argmax(out["lag_mig"].values)]) == 2
    assert int(out["lag_step"][np.argmax(out["lag_dci_informativeness"].values)]) == 2
    for name, var in out.data_vars.items():
        assert "long_name" in var.attrs, name


def test_outputs_are_labelled_and_plot(episode, tmp_path):
    ds = simulate(inertia_circuit(1, 0.5, 0.5), episode)
    lag = representational_lag(ds, "z", from_step=20)
    scores = lag_resolved_scores(ds, "z", from_step=20)
    merged = xr.merge([lag, scores], compat="no_conflicts", join="outer")
    for name, var in merged.data_vars.items():
        assert "long_name" in var.attrs, name
        if name != "latent_lag_factor":
            assert "units" in var.attrs, name
    assert merged["lag"].attrs["units"] == "ms"
    path = tmp_path / "lag.png"
    plot_lag(lag, scores).savefig(path, dpi=60)
    assert path.stat().st_size > 1000


def test_fit_readout_checks_its_arguments(episode):
    ds = simulate(inertia_circuit(1, 0.5, 0.5), episode)
    with pytest.raises(ValueError, match="from_step"):
        fit_readout(ds, "z", from_step=50)
    with pytest.raises(ValueError, match="increasing"):
        fit_readout(ds, "z", lags=[2, 1])
    with pytest.raises(KeyError, match="nope"):
        fit_readout(ds, "nope")
    readout, _ = fit_readout(ds, "z", from_step=20)
    with pytest.raises(ValueError, match="latents"):
        readout.decode(np.zeros((3, 5)))


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_a_nonlinear_code_reads_the_lag_of_its_linear_twin(delay):
    """Tuning curves of the position (a smooth nonlinear code): the encoding model's bumps fit it, no bias.

    With the position alone as the model's features, such a code with no delay read 0.05 steps (256
    sequences), and per-frame beta-VAEs with no delay read 0.14-0.39.
    """
    from neurodelay.analysis.calibration import linear_representation

    world = MovingCircle(size=32, n_frames=10)
    ds = linear_representation(world, 128, gamma=0.0, alpha=0.0, delay_steps=delay, n_latents=8, seed=2,
                               embedding="tuning")
    out = representational_lag(ds, "z", pixels_per_unit=24.0, n_boot=0)
    assert float(out["lag_steps"]) == pytest.approx(delay, abs=0.01)
    with pytest.raises(ValueError, match="embedding"):
        linear_representation(world, 4, embedding="quadratic")


# --------------------------------------------------------------------------
# Readout lag: NaN with a reason where no lag exists
# --------------------------------------------------------------------------


def test_readout_lag_of_a_constant_representation_is_nan_and_of_an_exact_shift_is_the_shift():
    # A collapsed representation (a blend at gamma = 1): every lag is as good as another (was 6, the edge).
    ds = results(z=np.ones((20, 30, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "edge of the searched range" warning either
        out = representational_lag(ds)
    for name in ("lag_steps", "lag_ms", "readout_rmse_px", "position_error_px"):
        assert np.isnan(float(out[name])), name
        assert "constant" in out[name].attrs["nan_reason"], name
    assert np.isnan(out["position_error_px_by_time"].values).all()
    readout, info = fit_readout(ds)
    assert np.isnan(readout.lag_steps) and "constant" in info["undefined_reason"]
    out = representational_lag(results(lag=2))
    assert float(out["lag_steps"]) == pytest.approx(2.0, abs=1e-6)
    assert out["lag_steps"].attrs["readout_r2"] == pytest.approx(1.0, abs=1e-9)
    assert "nan_reason" not in out["lag_steps"].attrs


def test_readout_lag_without_motion_is_nan():
    ds = results()
    f = ds["factors"].values
    f[:, :, 2:4] = f[:, :1, 2:4]
    f[:, :, 4:] = 0.0
    ds["z"].values[:] = f[:, :, 2:4]
    out = representational_lag(ds)
    assert np.isnan(float(out["lag_steps"]))
    assert "does not move" in out["lag_steps"].attrs["nan_reason"]


def test_readout_lag_of_noise_is_nan():
    ds = results(n=30, z=np.random.default_rng(0).normal(size=(30, 30, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = representational_lag(ds)
    assert np.isnan(float(out["lag_steps"]))
    assert "no better than its mean" in out["lag_steps"].attrs["nan_reason"]


def _lag_dataset(nan_at=None):
    g = torch.Generator().manual_seed(0)
    z = torch.rand(6, 5, 2, generator=g)
    if nan_at is not None:
        z[nan_at] = NAN
    return traces_to_dataset({"z": z}, dt_ms=10, factors=torch.rand(6, 5, 6, generator=g),
                             frames=torch.zeros(6, 5, 1, 8, 8), factor_names=MovingCircle().factor_names)


def test_fit_readout_names_a_nan_in_the_representation():
    ds = _lag_dataset(nan_at=(1, 3, 0))
    msg = r"the representation 'z' .*must contain only finite values; found 1 NaN .*sample 1, step 3, unit 0"
    with pytest.raises(ValueError, match=msg):
        fit_readout(ds, lags=[0, 1], from_step=1)
    with pytest.raises(ValueError, match=msg):
        representational_lag(ds, lags=[0, 1], from_step=1)


def test_fit_readout_ignores_a_nan_before_the_steps_used():
    readout, info = fit_readout(_lag_dataset(nan_at=(1, 0, 0)), lags=[0, 1], from_step=1)
    assert np.isfinite(info["mse"])


def test_pixels_per_unit_must_be_positive():
    ds = _lag_dataset()
    for bad in (-24, NAN, "24"):
        with pytest.raises(ValueError, match=r"pixels_per_unit must be a finite number > 0, got"):
            representational_lag(ds, lags=[0, 1], from_step=1, pixels_per_unit=bad)
    with pytest.raises(ValueError, match=r"size must be a finite number > 0, got -1"):
        px_per_unit(-1)
    assert px_per_unit(32) == 24.0


def test_readout_seed_and_a_single_lag():
    ds = _lag_dataset()
    for bad in (1.7, -1, True):
        with pytest.raises(ValueError, match=r"seed must be a non-negative integer; got"):
            fit_readout(ds, lags=[0, 1], from_step=1, seed=bad)
    # 6 random sequences: a linear readout (a quadratic one overfits them and reads no position)
    one, info = fit_readout(ds, lags=1, from_step=1, readout_degree=1)
    listed, info_listed = fit_readout(ds, lags=[1], from_step=1, readout_degree=1)
    assert one.lag_steps == 1.0
    np.testing.assert_array_equal(info["mse_curve"], info_listed["mse_curve"])
    with pytest.raises(ValueError, match=r"lags must be a whole number of steps or a non-empty sequence.*got 1.5"):
        fit_readout(ds, lags=1.5, from_step=1)
