"""What a run leaves behind: results.nc (record.py), report.md (report.py) and figures (plots.py).

Tiny datasets built directly (no training): netCDF attributes and encoding,
labelled coordinates, report numbers and sections, atomic figure writes,
and the figures' labels.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import netCDF4
import numpy as np
import pytest
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neurodelay.pipeline import plots
from neurodelay.record import traces_to_dataset, write_netcdf
from neurodelay.pipeline.report import write_report, write_sweep_report


def _tiny(n_s=2, n_t=3, n_l=4, size=8, names=("blob_x", "circle_vx")) -> xr.Dataset:
    rng = np.random.default_rng(0)
    return traces_to_dataset({"z": rng.random((n_s, n_t, n_l), dtype=np.float32)}, dt_ms=10,
                             frames=rng.random((n_s, n_t, 1, size, size), dtype=np.float32),
                             factors=rng.random((n_s, n_t, len(names)), dtype=np.float32), factor_names=names)


def _captured(monkeypatch) -> list:
    """Figures passed to plots' saver (replaced: nothing written)."""
    figs = []

    def keep(fig, path):
        figs.append(fig)
        return Path(path)

    monkeypatch.setattr(plots, "_save", keep)
    return figs


# ------------------------------------------------------------------ results.nc
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


# ------------------------------------------------------------------ report.md
def _run_ds() -> xr.Dataset:
    ds = _tiny()
    ds = ds.assign_coords(step=("step", np.array([1, 5]))).assign(
        loss_total=("step", np.array([584.57, 474.03308])),
        mig=((), 0.123456, {"units": "1", "long_name": "mutual information gap"}),
        lag_ms=((), 6.44302, {"units": "ms", "long_name": "representational lag"}))
    ds.attrs.update({"device": "cpu", "seed": 123456, "evaluate_seed": 1000003, "dt_ms": 12.345,
                     "n_parameters": 10, "trained_steps": 5, "train_steps_per_second": 4.0,
                     "train_seconds": 1.25})
    return ds


def _report(tmp_path, ds, **kw) -> str:
    study = SimpleNamespace(name="tiny")
    write_report(tmp_path, study, ds, figures=kw.pop("figures", []), schedule="schedule", study_text="name: tiny",
                 **kw)
    return (tmp_path / "report.md").read_text()


def test_report_gives_seeds_and_time_step_exactly(tmp_path):
    text = _report(tmp_path, _run_ds())
    assert "| seed | 123456 |" in text and "| evaluation seed | 1000003 |" in text
    assert "| time step | 12.345 ms |" in text


def test_report_lists_every_scalar_metric_with_its_dataset_value_and_units(tmp_path):
    ds = _run_ds()
    text = _report(tmp_path, ds)
    assert "## Metrics" in text
    for name in ("mig", "lag_ms"):
        row = re.search(rf"^\| `{name}` \| ([^|]+) \| ([^|]*) \|", text, re.M)
        assert row is not None, name
        assert float(row.group(1)) == pytest.approx(float(ds[name]), rel=1e-3)
    assert re.search(r"^\| `lag_ms` \| [^|]+ \| ms \|", text, re.M)


def test_report_keeps_a_multiline_failure_whole_in_a_code_block(tmp_path):
    message = "ValueError: first line\n\n# not a heading\n```\nlast line"
    text = _report(tmp_path, _run_ds(), failures=[("lag", message)])
    section = text.split("## Failed analyses", 1)[1]
    block = re.search(r"^(`{4,})text\n(.*?)\n\1$", section, re.M | re.S)
    assert block is not None and block.group(2) == message


def test_report_write_leaves_no_temporary_file_when_interrupted(tmp_path, monkeypatch):
    (tmp_path / "report.md").write_text("previous")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _report(tmp_path, _run_ds())
    monkeypatch.undo()
    assert (tmp_path / "report.md").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def _sweep(tmp_path):
    dim = SimpleNamespace(name="gamma", names=("gamma",), paths=("circuit.gamma",), zipped=False, size=2)
    combined = xr.Dataset({"loss_total": (("gamma", "step"), [[3.0, 2.0], [4.0, np.nan]]),
                           "mig": ("gamma", [0.25, 0.5], {"units": "1", "long_name": "mutual information gap"})},
                          coords={"gamma": [0.0, 0.5], "step": [1, 2]})
    points = [SimpleNamespace(point=SimpleNamespace(name=name, values={"circuit.gamma": g}, position={"gamma": i}),
                              status="ok", error="", detail="")
              for i, (name, g) in enumerate((("gamma=0.0", 0.0), ("gamma=0.5#1", 0.5)))]
    outcome = SimpleNamespace(points=points, failed=[])
    return dim, combined, outcome


def test_sweep_report_links_a_point_name_with_hash_and_leaves_the_dataset_alone(tmp_path):
    dim, combined, outcome = _sweep(tmp_path)
    before = combined.copy(deep=True)
    write_sweep_report(tmp_path, SimpleNamespace(name="s"), [dim], outcome, combined)
    text = (tmp_path / "report.md").read_text()
    assert "](gamma=0.5%231/report.md)" in text  # '#' would start a fragment
    xr.testing.assert_identical(combined, before)
    assert "| 4 | 0.5 |" in text  # final_loss_total: the last finite loss_total


# ------------------------------------------------------------------ figures
def test_figures_are_written_atomically(tmp_path, monkeypatch):
    ds = _tiny().assign(reconstruction_mse_by_time=("time", [np.nan, 0.5, 0.25]))
    path = tmp_path / "figures" / "error_time.png"
    path.parent.mkdir()
    path.write_bytes(b"previous")

    def half_written(self, fname, **kw):
        if hasattr(fname, "write"):
            fname.write(b"\x89PNG half")
        else:
            Path(fname).write_bytes(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", half_written)
    with pytest.raises(KeyboardInterrupt):
        plots.plot_error_time(ds, path)
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in path.parent.iterdir()) == ["error_time.png"]


def test_an_analysis_figure_is_written_atomically_too(tmp_path, monkeypatch):
    from neurodelay.registry import AnalysisContext

    ctx = AnalysisContext(study=None, circuit=None, module=None, world=None, device="cpu", out_dir=tmp_path)
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    assert ctx.save_figure(fig, "lag", "caption").read_bytes()[:4] == b"\x89PNG"
    assert ctx.figures == [(tmp_path / "figures" / "lag.png", "caption")]

    def half_written(self, fname, **kw):
        fname.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", half_written)
    with pytest.raises(KeyboardInterrupt):
        ctx.save_figure(fig, "lag")
    assert (tmp_path / "figures" / "lag.png").read_bytes()[:8] != b"\x89PNG hal"
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["lag.png"]


def test_save_figure_writes_a_png(tmp_path):
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    out = plots.save_figure(fig, tmp_path / "f.png")
    assert out.read_bytes()[:4] == b"\x89PNG" and len(list(tmp_path.iterdir())) == 1


def test_loss_figure_shows_a_single_logged_step(monkeypatch):
    figs = _captured(monkeypatch)
    ds = _tiny().assign_coords(step=("step", [1])).assign(loss_total=("step", [2.0]))
    plots.plot_losses(ds, "unused.png")
    (line,) = figs[0].axes[0].lines
    assert line.get_marker() not in (None, "None", "", " ")


def test_run_figures_name_the_reconstruction_node_from_the_dataset(monkeypatch):
    _captured(monkeypatch)
    ds = _tiny()
    ds["reconstruction"] = ds["frames"].copy()
    ds["reconstruction"].attrs = {"node": "dec", "units": "1", "long_name": "reconstruction"}
    captions = [c for _, c in plots.plot_run(ds, "figs")]
    assert any("(node dec)" in c for c in captions) and not any("None" in c for c in captions)


def test_latent_figure_does_not_call_an_unknown_factor_a_position(monkeypatch):
    figs = _captured(monkeypatch)
    ds = _tiny(n_l=1, names=("speed",))
    ds["z"].attrs["node"] = "z"
    plots.plot_latents(ds, "unused.png", "z")
    assert figs[0].axes[1].get_xlabel() == "speed (factor units)"


def test_sweep_figure_labels_fit_inside_the_figure(tmp_path, monkeypatch):
    figs = _captured(monkeypatch)
    names = ("delay_ms", "alpha", "gamma")
    dim = SimpleNamespace(name="zip", names=names, zipped=True, size=2,
                          paths=("circuit.edges[0].delay_ms", "circuit.nodes.ff.alpha", "circuit.nodes.z.gamma"))
    combined = xr.Dataset({"lag_ms": ("zip", [3.0, 8.0], {"units": "ms", "long_name": "representational lag"})},
                          coords={"zip": [0, 1], "delay_ms": ("zip", [0, 10]), "alpha": ("zip", [0.0, 1.0]),
                                  "gamma": ("zip", [0.0, 0.5])})
    plots.plot_sweep(combined, [dim], tmp_path / "s.png", "lag_ms")
    fig = figs[0]
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    for artist in (ax.xaxis.label, ax.yaxis.label, ax.title, *ax.get_xticklabels()):
        box = artist.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, artist.get_text()


def test_a_trace_of_any_rank_has_units():
    from neurodelay.record import traces_to_dataset

    ds = traces_to_dataset({"grid": np.zeros((2, 3, 4, 5), np.float32), "vec": np.zeros((2, 3, 4), np.float32)},
                           dt_ms=10.0)
    assert ds["grid"].dims == ("sample", "time", "grid_dim0", "grid_dim1")
    for name in ("grid", "vec"):
        assert ds[name].attrs["units"] == "1" and ds[name].attrs["long_name"], name
