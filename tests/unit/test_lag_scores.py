"""analysis.lag_scores (lag-resolved scores) and the Dataset-level disentanglement scores: known answers,
degenerate inputs.

The tests use small hand-made results Datasets (no circuit,
tests.helpers.known_lag_results): the representation is a known function of
the factors, so the right answer is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from neurodelay.analysis.builtin import disentanglement_scores
from neurodelay.analysis.lag import lag_resolved_scores
from neurodelay.record import traces_to_dataset
from neurodelay.worlds import MovingCircle
from tests.helpers import known_lag_results as results


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


def _lag_dataset():
    g = torch.Generator().manual_seed(0)
    factors = torch.rand(6, 5, 6, generator=g)
    return traces_to_dataset({"z": torch.rand(6, 5, 2, generator=g)}, dt_ms=10, factors=factors,
                             factor_names=MovingCircle().factor_names)


def test_lag_resolved_scores_single_factor_name():
    ds = _lag_dataset()
    one = lag_resolved_scores(ds, factors="circle_x", lags=[0, 1], from_step=0)
    listed = lag_resolved_scores(ds, factors=["circle_x"], lags=[0, 1], from_step=0)
    assert "(circle_x)" in one["lag_mig"].attrs["long_name"]
    np.testing.assert_array_equal(one["lag_mig"].values, listed["lag_mig"].values)
