"""Known answers and degenerate inputs of the analyses (lag, scores, regions, traversals, flash-lag).

Most tests use small hand-made results Datasets (no circuit): the
representation is a known function of the factors, so the right answer is
known exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from neurodelay import MovingCircle, build_seeded, presets
from neurodelay.analysis.builtin import disentanglement_scores
from neurodelay.analysis.disentanglement import correlation_score, matched_correlation_score
from neurodelay.analysis.lag import LinearReadout, fit_readout, lag_resolved_scores, representational_lag
from neurodelay.analysis.regions import (
    REGIONS,
    circle_blob_distance_px,
    heldout_region_errors,
    moving_region_errors,
    region_errors,
)
from neurodelay.analysis.traversals import factor_sweeps, latent_traversals
from neurodelay.circuit import world_shapes

NAMES = ["blob_x", "blob_y", "circle_x", "circle_y", "circle_vx", "circle_vy"]


def results(n: int = 20, n_t: int = 30, lag: int = 2, z=None, seed: int = 0, first_valid_step: int | None = None):
    """A results Dataset of constant-velocity circles; z[t] = circle position at t - lag (held before lag).

    ``first_valid_step`` defaults to ``lag`` for the default z, else 0.
    """
    if first_valid_step is None:
        first_valid_step = lag if z is None else 0
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.3, 0.7, (n, 2))
    vel = rng.uniform(-0.01, 0.01, (n, 2))
    pos = start[:, None] + vel[:, None] * np.arange(n_t)[None, :, None]
    blob = np.repeat(rng.uniform(0.0, 1.0, (n, 1, 2)), n_t, axis=1)
    factors = np.concatenate([blob, pos, np.repeat(vel[:, None], n_t, axis=1)], axis=-1)
    if z is None:
        z = pos[:, np.clip(np.arange(n_t) - lag, 0, None)]
    return xr.Dataset(
        {"z": (("sample", "time", "latent"), np.asarray(z, dtype=np.float64),
               {"node": "z", "first_valid_step": first_valid_step}),
         "factors": (("sample", "time", "factor"), factors),
         "frames": (("sample", "time", "y", "x"), np.zeros((n, n_t, 32, 32), np.float32))},
        coords={"time": np.arange(n_t) * 10.0, "factor": NAMES},
        attrs={"dt_ms": 10.0},
    )


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


# --------------------------------------------------------------------------
# Lag-resolved scores and Dataset-level disentanglement
# --------------------------------------------------------------------------


def test_latent_following_a_static_factor_has_no_lag():
    ds = results(n=30)
    f = ds["factors"].values
    z = np.concatenate([f[..., :2], ds["z"].values], axis=-1)  # blob (still) and circle 2 steps late
    out = lag_resolved_scores(results(n=30, z=z))
    lags = out["latent_lag_steps"].values
    assert np.isnan(lags[:2]).all()  # was 6 (the edge), paired with circle_x
    np.testing.assert_allclose(lags[2:], [2.0, 2.0], atol=1e-5)  # refined below one step
    assert list(out["latent_lag_factor"].values) == ["blob_x", "blob_y", "circle_x", "circle_y"]


def test_constant_scored_factors_give_nan_with_a_reason():
    ds = results()
    ds["factors"].values[:, :, :2] = 0.1  # the blob never moves in any sample
    lrs = lag_resolved_scores(ds, factors=["blob_x", "blob_y"])
    assert np.isnan(lrs["lag_mig"].values).all()
    assert "constant" in lrs["lag_mig"].attrs["nan_reason"]
    dis = disentanglement_scores(ds, factors=["blob_x", "blob_y"])
    for name in ("mig", "dci_disentanglement", "sap"):
        assert np.isnan(float(dis[name])) and "constant" in dis[name].attrs["nan_reason"], name


def test_lag_resolved_scores_give_a_reason_for_lags_without_rows():
    out = lag_resolved_scores(results(n=1, n_t=3), lags=[0, 2], from_step=0)
    assert np.isnan(out["lag_sap"].values[1])
    assert "lag 2 steps" in out["lag_sap"].attrs["nan_reason"]


def test_disentanglement_scores_take_one_factor_name_and_keep_the_given_order():
    ds = results()
    one = disentanglement_scores(ds, factors="circle_x")  # was split into letters
    assert float(one["dci_informativeness"]) > 0.99
    swapped = ds.assign(z=ds["z"][..., ::-1])  # latent 0 = circle_y, latent 1 = circle_x
    out = disentanglement_scores(swapped, factors=["circle_y", "circle_x"])
    assert float(out["correlation_score"]) < 0.01  # latent i ~ the i-th factor named
    with pytest.raises(ValueError, match="repeat"):
        disentanglement_scores(ds, factors=["circle_x", "circle_x"])


@pytest.mark.parametrize("kwargs, message", [
    ({"max_rows": 0}, r"max_rows must be an integer >= 3, got 0"),
    ({"seed": -1}, r"seed must be a non-negative integer; got -1"),
    ({"factors": []}, r"factors must name at least one factor"),
])
def test_disentanglement_scores_check_their_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        disentanglement_scores(results(), **kwargs)


def test_lag_resolved_scores_reject_an_empty_factor_list():
    with pytest.raises(ValueError, match=r"factors must name at least one factor"):
        lag_resolved_scores(results(), factors=[])


def test_too_few_rows_and_no_time_are_clear_errors():
    with pytest.raises(ValueError, match=r"at least 3 rows.*1 sample\(s\) x 1 step\(s\)"):
        disentanglement_scores(results(n=1, n_t=1))
    empty = results(n=3, n_t=0)
    for fn in (disentanglement_scores, lag_resolved_scores):
        with pytest.raises(ValueError, match=r"at least one time step, got time of length 0"):
            fn(empty)


@pytest.mark.parametrize("fn", [disentanglement_scores, lag_resolved_scores])
def test_non_finite_values_are_located_by_sample_and_step(fn):
    ds = results()
    ds["z"].values[3, 10, 1] = np.nan
    with pytest.raises(ValueError, match=r"representation 'z'.*sample 3, step 10, unit 1"):
        fn(ds)
    ds = results()
    ds["factors"].values[4, 12, 0] = np.inf
    with pytest.raises(ValueError, match=r"factors must contain only finite.*sample 4, step 12, factor 0"):
        fn(ds)


def test_scores_are_seeded():
    ds = results(n=12, z=np.random.default_rng(1).normal(size=(12, 30, 3)))
    for fn in (lambda s: disentanglement_scores(ds, max_rows=100, seed=s),
               lambda s: lag_resolved_scores(ds, lags=[0, 1], max_rows=100, seed=s)):
        xr.testing.assert_identical(fn(3), fn(3))


# --------------------------------------------------------------------------
# Correlation scores
# --------------------------------------------------------------------------


def test_correlation_scores_reject_what_is_not_a_correlation():
    for fn in (correlation_score, matched_correlation_score):
        with pytest.raises(ValueError, match=r"correlations in \[-1, 1\].*row 0, column 1: 5.0"):
            fn(np.array([[1.0, 5.0]]))  # was 8.0
        with pytest.raises(ValueError, match=r"correlation must be a 2-D array of numbers"):
            fn([["a", "b"]])


# --------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------


def _images():
    target = np.zeros((2, 4, 4))
    recon = target.copy()
    recon[0, 0, 0] = 0.5
    masks = {k: np.zeros((2, 4, 4), bool) for k in REGIONS}
    masks["inside"][:, :2, :2] = True
    masks["edge"][:, 2, :2] = True
    masks["object"] = masks["inside"] | masks["edge"]
    masks["background"][:, 3] = True
    return recon, target, masks


def test_region_errors_reject_bad_masks_and_empty_input():
    recon, target, masks = _images()
    with pytest.raises(KeyError, match=r"masks lack the regions \['edge'"):
        region_errors(recon, target, {"inside": masks["inside"]})
    with pytest.raises(ValueError, match=r"masks\['inside'\] must have the images' shape \(2, 4, 4\)"):
        region_errors(recon, target, {k: v[:, :3] for k, v in masks.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was "Mean of empty slice" and NaN
        with pytest.raises(ValueError, match=r"at least one image"):
            region_errors(recon[:0], target[:0], {k: v[:0] for k, v in masks.items()})


def test_region_errors_reject_non_finite_images_and_distances():
    recon, target, masks = _images()
    recon[1, 3, 3] = np.nan  # a background pixel; it made every region NaN
    with pytest.raises(ValueError, match=r"recon must contain only finite values.*image 1, y 3, x 3"):
        region_errors(recon, target, masks)
    recon, target, masks = _images()
    for bad in (np.nan, -5.0):  # NaN went to the last bin, negative to the first
        with pytest.raises(ValueError, match=r"distance_px must hold finite distances >= 0.*image 0"):
            region_errors(recon, target, masks, distance_px=[bad, 1.0], n_bins=2, size=4)


def test_region_errors_count_mask_pixels_not_mask_values():
    recon, target, masks = _images()
    out = region_errors(recon, target, {k: v * 2.0 for k, v in masks.items()})
    np.testing.assert_allclose(out["pixels"], [4, 2, 6, 4])


def test_circle_blob_distance_needs_the_four_position_factors():
    with pytest.raises(ValueError, match=r"at least 4 values along the last axis.*\(3, 3\)"):
        circle_blob_distance_px(np.zeros((3, 3)), 32)  # broadcast a wrong distance


def test_heldout_region_errors_check_n_blob():
    with pytest.raises(ValueError, match=r"n_blob must be an integer >= 1, got 0"):
        heldout_region_errors(None, None, "dec", n_blob=0)


def test_moving_region_errors_reject_a_nan_reconstruction():
    ds = results(n=2, n_t=4)
    rec = np.zeros((2, 4, 32, 32))
    rec[1, 2, 5, 6] = np.nan
    ds["reconstruction"] = (("sample", "time", "y", "x"), rec)
    world = MovingCircle(n_frames=4)
    with pytest.raises(ValueError, match=r"'reconstruction' must contain only finite.*sample 1, step 2, pixel y 5"):
        moving_region_errors(ds, world, steps=[1, 2])
    assert np.isfinite(moving_region_errors(ds, world, steps=[1, 3])["region_mse"].values).all()


# --------------------------------------------------------------------------
# Traversals and flash-lag
# --------------------------------------------------------------------------

WORLD = MovingCircle(n_frames=20)


def test_latent_traversals_reject_non_numeric_latents():
    module = build_seeded(presets.autoencoder(n_latents=3), input_shapes=world_shapes(WORLD), seed=0)
    with pytest.raises(ValueError, match=r"latents must be an array of numbers of shape \(n, M\)"):
        latent_traversals(module, "dec", [[0.0, 1.0, 2.0], [1.0]])


def test_factor_sweeps_reject_a_repeated_factor():
    from tests.unit.test_traversals import factor_circuit

    module = build_seeded(factor_circuit(), input_shapes=world_shapes(WORLD))
    with pytest.raises(ValueError, match=r"factors must not repeat a name"):
        factor_sweeps(module, WORLD, "z", factors=["circle_x", "circle_x"])


def test_flash_lag_checks_probe_and_reports_nan_for_a_readout_without_lag():
    from neurodelay.analysis.flash_lag import flash_lag
    from neurodelay.worlds.flash import FlashLagProbe
    from tests.unit.test_lag import compensated_circuit

    module = build_seeded(compensated_circuit(1, 0.0), input_shapes=world_shapes(WORLD))
    probe = FlashLagProbe(speeds=(0.02,), flash_step=6, directions=("right", "left"))
    readout = LinearReadout(node="z", lag_steps=float("nan"), dt_ms=10.0, mean=np.zeros(2), scale=np.ones(2),
                            coef=np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(TypeError, match=r"probe must be a FlashLagProbe"):
        flash_lag(module, WORLD, readout, "standard")
    with pytest.raises(TypeError, match=r"show_flash must be True or False"):
        flash_lag(module, WORLD, readout, probe, show_flash="no")
    out = flash_lag(module, WORLD, readout, probe)
    assert np.isnan(out["flash_lag_px"].values).all()  # was 0: a readout with no lag decodes no position
    assert "no lag" in out["flash_lag_px"].attrs["nan_reason"]
