"""pipeline.plots: a run's and a sweep's figures, written atomically, with their labels.

Tiny datasets built directly (no training). The results.nc cases are in
test_record.py, the report's in test_report.py.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neurodelay.pipeline import plots
from tests.helpers import tiny_results as _tiny


def _captured(monkeypatch) -> list:
    """Figures passed to plots' saver (replaced: nothing written)."""
    figs = []

    def keep(fig, path):
        figs.append(fig)
        return Path(path)

    monkeypatch.setattr(plots, "_save", keep)
    return figs


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


def test_sweep_legend_of_long_zipped_labels_sits_below_the_axes_and_fits(tmp_path, monkeypatch):
    figs = _captured(monkeypatch)
    seed = SimpleNamespace(name="seed", names=("seed",), zipped=False, size=2, paths=("seed",))
    names = ("supervise", "edges_1_learn_delay", "edges_1_max_delay_ms", "constant")
    zipped = SimpleNamespace(name="zip", names=names, zipped=True, size=2, paths=names)
    long = "[{'node': 'v1', 'factors': ['circle_x', 'circle_y']}, {'node': 'z', 'factors': ['circle_x']}]"
    combined = xr.Dataset({"lag_ms": (("seed", "zip"), [[1.0, 2.0], [1.5, 2.5]], {"units": "ms"})},
                          coords={"seed": [1, 2], "zip": [0, 1], "supervise": ("zip", [long, long[:40]]),
                                  "edges_1_learn_delay": ("zip", [False, True]),
                                  "edges_1_max_delay_ms": ("zip", ["null", "40"]), "constant": ("zip", [7, 7])})
    plots.plot_sweep(combined, [seed, zipped], tmp_path / "s.png", "lag_ms")
    fig = figs[0]
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert all("constant=" not in t for t in texts)  # a coordinate that does not vary is not repeated
    assert all(len(line) <= 80 for t in texts for line in t.splitlines()) and "\u2026" in texts[0]
    box, axes = legend.get_window_extent(renderer), fig.axes[0].get_window_extent(renderer)
    assert box.y1 <= axes.y0 and box.x0 >= 0 and box.x1 <= fig.bbox.x1  # below the axes, inside the figure
