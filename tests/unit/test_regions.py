"""Reconstruction error by region: pooled MSE, masks, static grid and moving frames."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from neurodelay import Circuit, CircleOverBlob, Edge, MovingCircle, Relay, build_seeded, presets, simulate
from neurodelay.analysis.figures import plot_regions
from neurodelay.analysis.regions import (
    REGIONS,
    circle_blob_distance_px,
    factor_grid,
    moving_region_errors,
    region_errors,
    static_region_errors,
)
from neurodelay.analysis.regions import (
    heldout_region_errors,
)
from neurodelay.circuit import world_shapes
from tests.helpers import SMALL_WORLD, small_preset
from tests.helpers import known_lag_results as results


def relay(delay_steps: int = 0) -> Circuit:
    return Circuit(nodes={"out": Relay()}, edges=[Edge("world.frames", "out", delay_ms=10.0 * delay_steps)])


def test_pooled_error_per_region_by_hand():
    target = np.zeros((2, 4, 4))
    recon = np.zeros((2, 4, 4))
    recon[0, 0, 0] = 0.5  # inside of image 0
    recon[1, 3, 3] = 1.0  # background of image 1
    masks = {k: np.zeros((2, 4, 4), bool) for k in REGIONS}
    masks["inside"][:, :2, :2] = True  # 4 px per image
    masks["edge"][:, 2, :2] = True  # 2 px per image
    masks["object"] = masks["inside"] | masks["edge"]
    masks["background"][:, 3, :] = True  # 4 px per image
    out = region_errors(recon, target, masks, distance_px=[1.0, 30.0], n_bins=2, size=32)
    mse = dict(zip(REGIONS, out["mse"]))
    assert mse["inside"] == pytest.approx(0.25 / 8)
    assert mse["edge"] == 0.0
    assert mse["object"] == pytest.approx(0.25 / 12)
    assert mse["background"] == pytest.approx(1.0 / 8)
    np.testing.assert_allclose(out["pixels"], [4, 2, 6, 4])
    # Bin 0 holds image 0 only, bin 1 image 1 only.
    np.testing.assert_allclose(out["mse_by_distance"][:, 0], [0.25 / 4, 0.0])
    np.testing.assert_allclose(out["mse_by_distance"][:, 3], [0.0, 1.0 / 4])
    np.testing.assert_array_equal(out["images_by_distance"], [1, 1])


def test_grid_and_distance():
    grid = factor_grid(3)
    assert grid.shape == (81, 4)
    np.testing.assert_allclose(grid[1], [0, 0, 0, 0.5])
    assert len(np.unique(grid, axis=0)) == 81
    # circle centre 0.75 * 0.5 + 0.125 = 0.5 image widths; blob at 0.5: distance 0.
    assert circle_blob_distance_px(np.array([0.5, 0.5, 0.5, 0.5]), 32) == pytest.approx(0.0)
    assert circle_blob_distance_px(np.array([0.0, 0.5, 0.5, 0.5]), 32) == pytest.approx(16.0)
    with pytest.raises(ValueError, match="grid_size"):
        factor_grid(1)


@pytest.mark.parametrize("seed_compatible, sizes", [
    (False, {"object": (28, 37), "edge": (15, 25), "inside": (8, 16), "background": (900, 970)}),  # r = 3.2 px
    # docs/original-study.md (the original generator): object ~40, edge ~27, inside ~13, background ~940 pixels.
    (True, {"object": (35, 45), "edge": (22, 32), "inside": (9, 17), "background": (900, 970)}),
])
def test_static_grid_identity_has_no_error_and_masks_have_the_right_size(seed_compatible, sizes):
    world = CircleOverBlob(seed_compatible=seed_compatible)
    module = build_seeded(relay(), input_shapes=world_shapes(world))
    out = static_region_errors(module, world, "out", grid_size=4)
    np.testing.assert_array_equal(out["region_mse"].values, 0.0)
    px = dict(zip(REGIONS, out["region_pixels"].values))
    for region, (lo, hi) in sizes.items():
        assert lo < px[region] < hi, (region, px[region])
    assert int(out["distance_bin_images"].sum()) == 4**4
    assert out["region_mse"].attrs["units"] == "1"


def test_moving_errors_follow_the_target_frame(tmp_path):
    world = MovingCircle(n_frames=6, speed_min=0.05, speed_max=0.1)
    ep = world.sample(16, seed=0)
    ds = simulate(relay(1), ep)  # out[t] = frame[t - 1]
    ahead = moving_region_errors(ds, world, recon="out", offset_steps=-1, steps=range(1, 6))
    np.testing.assert_allclose(ahead["region_mse"].values, 0.0, atol=1e-12)
    now = moving_region_errors(ds, world, recon="out", offset_steps=0, steps=range(1, 6))
    mse = dict(zip(REGIONS, now["region_mse"].values))
    # A circle drawn one step late: the error sits on the circle, little of it in the background.
    assert mse["edge"] > 10 * mse["background"] and mse["inside"] > 10 * mse["background"]
    assert np.isnan(now["region_mse_by_time"].values[0]).all()
    assert np.isfinite(now["region_mse_by_time"].values[1:]).all()
    for name, var in now.data_vars.items():
        assert {"units", "long_name"} <= set(var.attrs), name
    path = tmp_path / "regions.png"
    plot_regions(now).savefig(path, dpi=60)
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="offset"):
        moving_region_errors(ds, world, recon="out", offset_steps=3, steps=range(1, 6))


def _moving_results(n=48, seed=0):
    from neurodelay import MovingCircle

    world = MovingCircle(size=32, n_frames=10)
    ep = world.sample(n, seed=seed)
    frames = ep.frames[:, :, 0].numpy()
    ds = xr.Dataset({"frames": (("sample", "time", "y", "x"), frames),
                     "factors": (("sample", "time", "factor"), ep.factors.numpy())},
                    coords={"factor": list(world.factor_names), "time": np.arange(10) * 10.0})
    return world, ds, frames


def test_motion_asymmetry_tells_a_lagging_reconstruction_from_a_leading_one():
    world, ds, f = _moving_results()
    shifted = {"lagging": np.concatenate([f[:, :1], f[:, :-1]], 1), "leading": np.concatenate([f[:, 1:], f[:, -1:]], 1),
               "exact": f}
    out = {k: moving_region_errors(ds.assign(reconstruction=(("sample", "time", "y", "x"), v)), world,
                                   steps=range(1, 9), n_boot=100) for k, v in shifted.items()}
    assert float(out["exact"]["motion_asymmetry"]) == 0.0
    assert float(out["exact"]["drawn"]) == 1.0
    lag, lead = out["lagging"], out["leading"]
    assert lag["motion_asymmetry_ci"].values[0] > 0.05  # too bright behind, too dark ahead
    assert float(lag["error_behind"]) > 0 > float(lag["error_ahead"])
    assert lead["motion_asymmetry_ci"].values[1] < -0.05
    assert float(lag["motion_asymmetry"]) == pytest.approx(-float(lead["motion_asymmetry"]), rel=0.05)


def test_drawn_is_zero_for_the_mean_scene_and_one_for_the_frames():
    world, ds, f = _moving_results()
    mean = np.broadcast_to(f.reshape(-1, 32, 32).mean(0), f.shape)
    out = moving_region_errors(ds.assign(reconstruction=(("sample", "time", "y", "x"), mean)), world, n_boot=100)
    assert float(out["drawn"]) == pytest.approx(0.0, abs=1e-6)  # the mean of float32 frames
    assert out["drawn_ci"].values[0] <= 0.0 <= out["drawn_ci"].values[1]
    ci = out["region_mse_ci"].sel(region="inside").values
    assert ci[0] <= float(out["region_mse"].sel(region="inside")) <= ci[1]
    np.testing.assert_allclose(out["region_mse_mean_scene"].values, out["region_mse"].values, rtol=1e-5)


# --------------------------------------------------------------------------
# Bad input
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


def test_moving_region_errors_on_a_simulate_result_names_the_reconstruction_to_pass():
    world = MovingCircle(size=16, n_frames=3)
    ds = simulate(presets.autoencoder(n_latents=2, size=16), world.sample(2))
    with pytest.raises(KeyError, match=r"no 'reconstruction' variable.*recon=.*here: 'dec'"):
        moving_region_errors(ds, world)
    assert moving_region_errors(ds, world, recon="dec")["region_mse"].shape == (4,)


@pytest.fixture(scope="module")
def autoencoder():
    return small_preset("autoencoder")


@pytest.fixture(scope="module")
def autoencoder_results(autoencoder):
    return simulate(autoencoder, SMALL_WORLD.sample(3, seed=0))


def test_static_region_errors_check_batch_size_bins_and_node(autoencoder):
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match=rf"batch_size must be an integer >= 1, got {bad}"):
            static_region_errors(autoencoder, SMALL_WORLD, "dec", grid_size=2, batch_size=bad)
    with pytest.raises(ValueError, match=r"n_bins must be an integer >= 1, got 0"):
        static_region_errors(autoencoder, SMALL_WORLD, "dec", grid_size=2, n_bins=0)
    with pytest.raises(ValueError, match=r"recon_node='z' must output images shaped like the world's frames, "
                                         r"\(1, 32, 32\).*has shape \(2,\)"):
        static_region_errors(autoencoder, SMALL_WORLD, "z", grid_size=2)


def test_region_errors_check_bins():
    rng = np.random.default_rng(0)
    images = rng.random((2, 8, 8))
    masks = {k: np.ones((2, 8, 8), bool) for k in ("inside", "edge", "object", "background")}
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match=rf"n_bins must be an integer >= 1, got {bad}"):
            region_errors(images, images, masks, distance_px=[1.0, 2.0], n_bins=bad)


def test_moving_region_errors_check_recon_world_steps_and_bins(autoencoder_results):
    with pytest.raises(ValueError, match=r"n_bins must be an integer >= 1, got 0"):
        moving_region_errors(autoencoder_results, SMALL_WORLD, recon="dec", n_bins=0)
    with pytest.raises(ValueError, match=r"recon='z' must be images shaped like the frames"):
        moving_region_errors(autoencoder_results, SMALL_WORLD, recon="z")
    with pytest.raises(ValueError, match=r"world.size=64 must be the frames' width, 32 px"):
        moving_region_errors(autoencoder_results, MovingCircle(size=64), recon="dec")
    for bad in ([1.7], [-1], [3]):
        with pytest.raises(ValueError, match=r"steps must be whole steps in \[0, 2\].*got \["):
            moving_region_errors(autoencoder_results, SMALL_WORLD, recon="dec", offset_steps=0, steps=bad)
    with pytest.raises(ValueError, match=r"offset_steps must be a whole number of steps, got 0.5"):
        moving_region_errors(autoencoder_results, SMALL_WORLD, recon="dec", offset_steps=0.5)
