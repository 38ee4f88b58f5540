"""The arithmetic of :mod:`neurodelay.analysis.regions`: region sums, their ratios binned by
circle-blob distance, the bootstrap intervals of the region errors and of ``drawn``, and the
Dataset they are stored in; input checks of images and masks."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy import stats

from neurodelay.analysis._checks import finite_report

__all__ = ["REGIONS"]


#: Regions reported, in order.
REGIONS = ("inside", "edge", "object", "background")
#: Distance bins span [0, 1.25 image widths] (the largest circle-blob distance is 1.24).
_MAX_DISTANCE = 1.25


def _intervals(model_sums: np.ndarray, mean_sums: np.ndarray, counts: np.ndarray, n_boot: int,
               level: float = 0.95, seed: int = 0) -> dict:
    """``drawn``, and bootstrap intervals of the region errors and of ``drawn``.

    Parameters
    ----------
    model_sums, mean_sums, counts : numpy.ndarray, shape (N, R)
        Per resampling unit (image or sequence) and region: the summed
        squared error of the reconstruction and of the mean scene, and the
        pixel count.
    """
    inside = REGIONS.index("inside")

    def drawn_of(m, e):
        return 1.0 - m[inside] / e[inside] if e[inside] > 0 else np.nan

    drawn = drawn_of(model_sums.sum(0), mean_sums.sum(0))
    ci = np.full((len(REGIONS) + 1, 2), np.nan)
    if n_boot > 0 and model_sums.shape[0] >= 2:
        def statistic(i):
            i = np.asarray(i, dtype=np.int64)
            m, e, c = model_sums[i].sum(0), mean_sums[i].sum(0), counts[i].sum(0)
            return np.append(_ratio(m, c), drawn_of(m, e))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample without a region gives NaN
            res = stats.bootstrap((np.arange(model_sums.shape[0]),), statistic, vectorized=False,
                                  n_resamples=int(n_boot), confidence_level=level, method="percentile",
                                  rng=np.random.default_rng(np.random.SeedSequence([int(seed), 0x726567])))
        ci = np.stack([res.confidence_interval.low, res.confidence_interval.high], axis=-1)
    return {"drawn": float(drawn), "region_ci": ci[:-1], "drawn_ci": ci[-1],
            "mean_scene_mse": _ratio(mean_sums.sum(0), counts.sum(0))}


def _interval_vars(iv: dict, n_units: int, unit: str, n_boot: int) -> dict:
    ci_attrs = {"confidence_level": 0.95, "method": f"percentile bootstrap over {unit}", "n_boot": int(n_boot),
                f"n_{unit}": int(n_units)}
    return {
        "region_mse_ci": (("region", "bound"), iv["region_ci"], {
            "units": "1", "long_name": "confidence interval of the region errors", **ci_attrs}),
        "region_mse_mean_scene": ("region", iv["mean_scene_mse"], {
            "units": "1", "long_name": "mean squared error per pixel of the mean scene (the world's frames "
                                       "averaged) on the same images, by region"}),
        "drawn": ((), iv["drawn"], {
            "units": "1", "long_name": "fraction of the circle's inside drawn: 1 - inside error / inside error of "
                                       "the mean scene (0: draws the mean scene; 1: draws the circle)",
            f"n_{unit}": int(n_units)}),
        "drawn_ci": ("bound", iv["drawn_ci"], {"units": "1", "long_name": "confidence interval of drawn",
                                               **ci_attrs}),
    }


_BOUND = {"bound": ("bound", ["lower", "upper"], {"long_name": "bound of the confidence interval"})}


def _region_sums(recon: np.ndarray, target: np.ndarray, masks: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per image and region: sum of squared errors and pixel count.

    Parameters
    ----------
    recon, target : numpy.ndarray, shape (N, H, W)
    masks : dict of str -> numpy.ndarray of bool, shape (N, H, W)

    Returns
    -------
    (numpy.ndarray (N, R), numpy.ndarray (N, R))
        Sums and counts in the order of :data:`REGIONS`.
    """
    sq = (np.asarray(recon, dtype=np.float64) - np.asarray(target, dtype=np.float64)) ** 2
    sums = np.stack([(sq * masks[r]).sum(axis=(-2, -1)) for r in REGIONS], axis=-1)
    counts = np.stack([np.asarray(masks[r]).sum(axis=(-2, -1)) for r in REGIONS], axis=-1).astype(np.float64)
    return sums, counts


def _ratio(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.divide(sums, counts, out=np.full(np.broadcast(sums, counts).shape, np.nan), where=counts > 0)


def _image_array(name: str, value) -> np.ndarray:
    """``value`` as a float64 array, or a ValueError naming ``name``."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be an array of images (N, H, W) with values in [0, 1]; it could not be "
                         f"read as numbers ({error}).") from None


def _check_finite_images(name: str, images: np.ndarray, axes: tuple[str, ...], fix: str,
                         offsets: tuple[int, ...] | None = None) -> None:
    report = finite_report(images, axes, offsets)
    if report is not None:
        raise ValueError(f"{name} must contain only finite values; found {report}. {fix}")


def _check_masks(masks, shape: tuple[int, ...]) -> dict:
    """The region masks as bool arrays of ``shape``, or a KeyError / ValueError saying what is wrong."""
    if not hasattr(masks, "keys"):
        raise TypeError(f"masks must be a dict of region name -> bool array, got {type(masks).__name__}; "
                        f"pass e.g. world.masks(factors).")
    missing = [k for k in REGIONS if k not in masks]
    if missing:
        raise KeyError(f"masks lack the regions {missing}; it must hold {list(REGIONS)} (e.g. world.masks(factors)).")
    out = {}
    for k in REGIONS:
        m = masks[k]
        m = np.asarray(m.detach().cpu() if hasattr(m, "detach") else m)
        if [n for n in m.shape if n != 1] != [n for n in shape if n != 1]:  # singleton axes aside
            raise ValueError(f"masks[{k!r}] must have the images' shape {shape}, got {m.shape}.")
        out[k] = m.reshape(shape).astype(bool)
    return out


def _dataset(res: dict, extra: dict | None = None, coords: dict | None = None, attrs: dict | None = None) -> xr.Dataset:
    edges = res["bin_edges"]
    common = dict(attrs or {})
    data = {
        "region_mse": ("region", res["mse"], {"units": "1", "long_name": "mean squared error per pixel of the "
                                              "reconstruction, by region of the target frame", **common}),
        "region_pixels": ("region", res["pixels"], {"units": "1", "long_name": "mean pixels per image in "
                                                    "each region"}),
        "region_mse_by_distance": (("distance_bin", "region"), res["mse_by_distance"], {
            "units": "1", "long_name": "mean squared error per pixel by region and circle-blob distance "
                                       "(NaN: no pixel)"}),
        "distance_bin_images": ("distance_bin", res["images_by_distance"], {
            "units": "1", "long_name": "images per circle-blob distance bin"}),
    }
    data.update(extra or {})
    all_coords = {
        "region": ("region", list(REGIONS), {"long_name": "image region (docs/original-study.md masks)"}),
        "distance_bin": ("distance_bin", 0.5 * (edges[:-1] + edges[1:]), {
            "units": "px", "long_name": "circle-blob distance (bin centre)"}),
        "distance_bin_lower": ("distance_bin", edges[:-1], {"units": "px", "long_name": "bin lower edge"}),
        "distance_bin_upper": ("distance_bin", edges[1:], {"units": "px", "long_name": "bin upper edge"}),
    }
    all_coords.update(coords or {})
    return xr.Dataset(data, coords=all_coords)


def _from_sums(sums, counts, distance, n_bins, size) -> dict:
    edges = np.linspace(0.0, _MAX_DISTANCE * size, int(n_bins) + 1)
    which = np.clip(np.digitize(distance, edges) - 1, 0, n_bins - 1)
    s = np.zeros((n_bins, len(REGIONS)))
    c = np.zeros((n_bins, len(REGIONS)))
    np.add.at(s, which, sums)
    np.add.at(c, which, counts)
    return {"mse": _ratio(sums.sum(0), counts.sum(0)), "pixels": counts.mean(0), "mse_by_distance": _ratio(s, c),
            "bin_edges": edges, "images_by_distance": np.bincount(which, minlength=n_bins).astype(np.int64)}
