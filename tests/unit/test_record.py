"""record: traces to a results Dataset, labelled and with units, and results.nc written as the design says."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
import torch
import xarray as xr

from neurodelay.record import traces_to_dataset, write_netcdf
from tests.helpers import tiny_results as _tiny

NAN = float("nan")


def test_traces_dataset_labels_every_dimension_and_round_trips(tmp_path):
    ds = _tiny()
    for dim, size in (("sample", 2), ("latent", 4), ("y", 8), ("x", 8)):
        np.testing.assert_array_equal(ds[dim].values, np.arange(size))
        assert ds[dim].attrs["units"] == "1" and ds[dim].attrs["long_name"], dim
    assert ds["time"].attrs["units"] == "ms"
    np.testing.assert_array_equal(ds["time"].values, [0.0, 10.0, 20.0])
    assert ds["factor"].attrs["long_name"] and "circle units" in ds["factors"].attrs["comment"]
    write_netcdf(ds, tmp_path / "r.nc")
    back = xr.load_dataset(tmp_path / "r.nc")
    xr.testing.assert_identical(back, ds)
    assert back["z"].dtype == np.float32 and back["frames"].dtype == np.float32


def test_write_netcdf_stores_bools_none_and_dicts_as_design_says_without_changing_the_dataset(tmp_path):
    ds = _tiny().assign_attrs(flag=True, missing=None, options={"a": 1, "b": [1, 2]}, tags=["x", "y"])
    ds["z"].attrs["learned"] = np.bool_(False)
    write_netcdf(ds, tmp_path / "r.nc")
    back = xr.load_dataset(tmp_path / "r.nc")
    assert back.attrs["flag"] == 1 and back.attrs["missing"] == "null"
    assert back.attrs["options"] == "{a: 1, b: [1, 2]}" and list(back.attrs["tags"]) == ["x", "y"]
    assert back["z"].attrs["learned"] == 0
    assert ds.attrs["flag"] is True and ds.attrs["missing"] is None  # the caller's dataset is untouched
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_netcdf_float_coordinates_carry_no_fill_value_and_float16_is_stored(tmp_path):
    ds = _tiny()
    ds["half"] = ("time", np.array([0.5, 1.5, 2.5], dtype=np.float16))
    write_netcdf(ds, tmp_path / "r.nc")
    with netCDF4.Dataset(tmp_path / "r.nc") as nc:
        assert "_FillValue" not in nc["time"].ncattrs()  # CF: coordinates have no missing values
        assert "_FillValue" in nc["z"].ncattrs()
    assert "_FillValue" not in ds["time"].encoding
    back = xr.load_dataset(tmp_path / "r.nc")
    np.testing.assert_array_equal(back["half"].values, [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(back["time"].values, ds["time"].values)


def test_a_trace_of_any_rank_has_units():

    ds = traces_to_dataset({"grid": np.zeros((2, 3, 4, 5), np.float32), "vec": np.zeros((2, 3, 4), np.float32)},
                           dt_ms=10.0)
    assert ds["grid"].dims == ("sample", "time", "grid_dim0", "grid_dim1")
    for name in ("grid", "vec"):
        assert ds[name].attrs["units"] == "1" and ds[name].attrs["long_name"], name


def test_traces_to_dataset_checks_dt_shapes_and_names():
    x = torch.zeros(2, 3, 4)
    for bad in (0, -10, NAN):
        with pytest.raises(ValueError, match=r"dt_ms must be a positive finite number of ms.*got"):
            traces_to_dataset({"z": x}, dt_ms=bad)
    with pytest.raises(ValueError, match=r"same \(sample, time\) sizes, got trace 'a' \(2, 3\), trace 'b' \(2, 5\)"):
        traces_to_dataset({"a": x, "b": torch.zeros(2, 5, 4)}, dt_ms=10)
    with pytest.raises(ValueError, match=r"factors \(2, 4\)"):
        traces_to_dataset({"a": x}, dt_ms=10, factors=torch.zeros(2, 4, 6))
    with pytest.raises(ValueError, match=r"factor_names must name each of the 4 factors, got 1 names \['a'\]"):
        traces_to_dataset({"a": x}, dt_ms=10, factors=x, factor_names=["a"])
    with pytest.raises(ValueError, match=r"trace 'z' must have shape \(sample, time, \.\.\.\), got shape \(3,\)"):
        traces_to_dataset({"z": torch.zeros(3)}, dt_ms=10)
    ds = traces_to_dataset({"z": x.double()}, dt_ms=10)
    assert ds["z"].dtype == np.float32  # by design: results are float32
    np.testing.assert_array_equal(ds["time"].values, [0.0, 10.0, 20.0])
