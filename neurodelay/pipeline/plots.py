"""Figures of a run and of a sweep (PNG, matplotlib's Agg canvas; pyplot is not used).

Every figure has labelled axes with units: times in ms, training steps,
world factors in their units (blob positions in image widths, circle positions
and velocities in circle factor units of 0.75 image widths), pixel
intensities in [0, 1].
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .._util.figures import save_figure

__all__ = ["plot_run", "plot_losses", "plot_learned_delays", "plot_frames", "plot_error_time", "plot_latents",
           "plot_sweep", "save_figure"]


def _save(fig: Figure, path: Path) -> Path:
    return save_figure(fig, path)


def plot_run(ds: xr.Dataset, fig_dir, *, recon_node: str | None = None) -> list[tuple[Path, str]]:
    """All standard figures of a run.

    Returns
    -------
    list of (Path, str)
        Each figure's path and caption.
    """
    fig_dir = Path(fig_dir)
    out = []
    if any(v.startswith("loss_") for v in ds.data_vars):
        out.append((plot_losses(ds, fig_dir / "loss.png"), "Training loss per term against the training step."))
    if "reconstruction" in ds:
        if recon_node is None:
            recon_node = ds["reconstruction"].attrs.get("node", "?")
        out.append((plot_frames(ds, fig_dir / "frames.png"),
                    f"Sequence 0: frames, reconstructions (node {recon_node}) and their error over time."))
    if "reconstruction_mse_by_time" in ds:
        out.append((plot_error_time(ds, fig_dir / "error_time.png"),
                    "Reconstruction error per pixel at each step, averaged over the evaluation set."))
    if "delay_ms_history" in ds and ds.sizes.get("step", 0):
        out.append((plot_learned_delays(ds, fig_dir / "learned_delays.png"),
                    "Each learned delay against the training step, with its bounds (dashed)."))
    node = _latent_node(ds)
    if node is not None and "factors" in ds:
        out.append((plot_latents(ds, fig_dir / "latents.png", node),
                    f"Latents of node {ds[node].attrs.get('node', node)} against the world's factors "
                    f"(valid steps of every evaluation sequence)."))
    return out


def plot_losses(ds: xr.Dataset, path) -> Path:
    """Loss history of every term against the training step (log scale when positive)."""
    terms = [v for v in ds.data_vars if v.startswith("loss_")]
    if len(terms) == 2 and "loss_total" in terms:
        terms = [v for v in terms if v != "loss_total"]  # the total equals the only term
    fig = Figure(figsize=(6.4, 4.0))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.91)
    ax = fig.add_subplot()
    steps = ds["step"].values
    marker = {"marker": "o", "ms": 3} if len(steps) <= 20 else {}  # a lone logged step is a point, not a line
    finite = []
    for v in terms:
        y = ds[v].values
        style = {"lw": 2.0, "color": "k", "zorder": 1} if v == "loss_total" else {"lw": 1.3, "zorder": 2}
        style.update(marker)
        ax.plot(steps, y, label=v[len("loss_"):], **style)
        finite.append(y[np.isfinite(y)])
    values = np.concatenate(finite) if finite else np.zeros(0)
    if values.size and np.all(values > 0) and values.max() / values.min() > 30:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training step (optimiser updates)")
    ax.set_ylabel("loss per sequence")
    ax.set_title("training loss (summed over elements and scored steps)")
    ax.grid(True, alpha=0.3)
    ax.legend(title="term", fontsize="small")
    return _save(fig, Path(path))


def plot_learned_delays(ds: xr.Dataset, path) -> Path:
    """Each learned delay (``delay_ms_history``) against the training step, bounds dashed."""
    fig = Figure(figsize=(6.4, 4.0))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.91)
    ax = fig.add_subplot()
    steps = ds["step"].values
    hist = ds["delay_ms_history"]
    marker = {"marker": "o", "ms": 3} if len(steps) <= 20 else {}
    bounds = set()
    for i in range(ds.sizes["delay"]):
        row = hist.isel(delay=i)
        label = str(row["delay"].item()) if "delay" in row.coords else f"delay {i}"  # edge and [channel]
        x = np.concatenate([[0], steps])  # step 0: the initial value
        y = np.concatenate([[float(ds["delay_initial_ms"].isel(delay=i))], row.values])
        ax.plot(x, y, lw=1.3, label=label, **marker)
        bounds |= {float(ds["delay_min_ms"].isel(delay=i)), float(ds["delay_max_ms"].isel(delay=i))}
    for b in sorted(bounds):
        ax.axhline(b, color="0.5", ls="--", lw=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training step (optimiser updates)")
    ax.set_ylabel("delay (ms)")
    ax.set_title("learned delays")
    ax.grid(True, alpha=0.3)
    if ds.sizes["delay"] <= 12:
        ax.legend(fontsize="small")
    return _save(fig, Path(path))


def _time_columns(n_t: int, max_cols: int = 10) -> list[int]:
    if n_t <= max_cols:
        return list(range(n_t))
    return sorted(set(np.linspace(0, n_t - 1, max_cols).round().astype(int).tolist()))


def _mosaic(frames: np.ndarray, cols: list[int], gap: int) -> np.ndarray:
    """Frames (time, y, x) side by side with NaN gaps: (y, n_cols * (x + gap) - gap)."""
    h, w = frames.shape[1:]
    out = np.full((h, len(cols) * (w + gap) - gap), np.nan, dtype=np.float64)
    for c, t in enumerate(cols):
        out[:, c * (w + gap): c * (w + gap) + w] = frames[t]
    return out


def plot_frames(ds: xr.Dataset, path, sample: int = 0) -> Path:
    """Frames, reconstructions and reconstruction errors of one sequence over time.

    Each row is one quantity with the steps side by side (x axis: time in ms).
    """
    rec = ds["reconstruction"].isel(sample=sample).values
    frames = ds["frames"].isel(sample=sample).values
    offset = int(ds["reconstruction"].attrs.get("target_offset_steps", 0))
    times = ds["time"].values
    n_t = len(times)
    cols = _time_columns(n_t)
    target = np.full_like(frames, np.nan)
    for t in range(n_t):
        if 0 <= t + offset < n_t:
            target[t] = frames[t + offset]
    err = rec - target
    lim = max(float(np.nanmax(np.abs(err))) if np.isfinite(err).any() else 0.0, 1e-6)
    h, w = frames.shape[1:]
    gap = max(1, w // 8)
    target_label = "frame t" if offset == 0 else f"frame t{offset:+d}"
    rows = [(frames, "gray", 0.0, 1.0, "frame t", "intensity (0..1)"),
            (rec, "gray", 0.0, 1.0, "reconstruction", "intensity (0..1)"),
            (err, "RdBu_r", -lim, lim, f"error:\nrec. - {target_label}", "error")]
    mosaic_w = len(cols) * (w + gap) - gap
    left, right, top, bottom, between = 1.05, 1.4, 0.45, 0.6, 0.3  # inches
    img_w = min(16.0 - left - right, 1.1 * len(cols))
    width = max(6.4, img_w + left + right)
    left += (width - img_w - left - right) / 2  # centre narrow mosaics
    right = width - left - img_w
    row_h = img_w * h / mosaic_w
    height = top + bottom + len(rows) * row_h + (len(rows) - 1) * between
    fig = Figure(figsize=(width, height))
    centres = [c * (w + gap) + (w - 1) / 2 for c in range(len(cols))]
    axes = []
    for r, (data, cmap_name, vmin, vmax, label, cbar) in enumerate(rows):
        y0 = (bottom + (len(rows) - 1 - r) * (row_h + between)) / height
        ax = fig.add_axes((left / width, y0, (width - left - right) / width, row_h / height))
        cax = fig.add_axes(((width - right + 0.1) / width, y0, 0.12 / width, row_h / height))
        cmap = colormaps[cmap_name].with_extremes(bad="white")
        im = ax.imshow(_mosaic(data, cols, gap), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                       aspect="auto")
        ax.set_yticks([0, h - 1], ["0", f"{h - 1}"], fontsize="x-small")
        ax.set_ylabel(f"{label}\ny (px)", fontsize="small")
        ax.set_xticks(centres, [f"{times[t]:g}" for t in cols], fontsize="x-small")
        for side in ("top", "right", "bottom", "left"):
            ax.spines[side].set_visible(False)
        fig.colorbar(im, cax=cax, label=cbar)
        cax.tick_params(labelsize="x-small")
        axes.append(ax)
    axes[-1].set_xlabel("time since sequence start (ms)")
    fig.suptitle(f"evaluation sequence {sample}: frames, reconstruction and error over time",
                 fontsize="medium")
    return _save(fig, Path(path))


def plot_error_time(ds: xr.Dataset, path) -> Path:
    """Mean squared reconstruction error per pixel against time."""
    fig = Figure(figsize=(6.4, 3.6))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.14, top=0.9)
    ax = fig.add_subplot()
    y = ds["reconstruction_mse_by_time"].values
    t = ds["time"].values
    half = 0.5 * float(t[1] - t[0]) if len(t) > 1 else 0.5 * float(ds.attrs.get("dt_ms", 1.0))
    ax.plot(t, y, "o-", color="C3", label="scored steps")
    for k in np.flatnonzero(~np.isfinite(y)):
        ax.axvspan(t[k] - half, t[k] + half, color="0.85", lw=0,
                   label="not scored (output not valid yet)" if k == np.flatnonzero(~np.isfinite(y))[0] else None)
    ax.set_xlim(t[0] - half, t[-1] + half)
    top = float(np.nanmax(y)) if np.isfinite(y).any() else 1.0
    ax.set_ylim(0, 1.1 * top if top > 0 else 1.0)
    ax.legend(fontsize="small", loc="lower right")
    ax.set_xlabel("time since sequence start (ms)")
    ax.set_ylabel("mean squared error per pixel")
    offset = int(ds["reconstruction"].attrs.get("target_offset_steps", 0)) if "reconstruction" in ds else 0
    ax.set_title("reconstruction error over time" + (f" (target: frame t{offset:+d})" if offset else ""))
    ax.grid(True, alpha=0.3)
    return _save(fig, Path(path))


def _latent_node(ds: xr.Dataset) -> str | None:
    """The vector trace that reconstructions are decoded from, else the first vector trace."""
    vectors = [v for v in ds.data_vars if ds[v].dims == ("sample", "time", "latent") and "node" in ds[v].attrs]
    if not vectors:
        return None
    for preferred in ("z",):
        for v in vectors:
            if ds[v].attrs["node"] == preferred:
                return v
    return vectors[0]


def plot_latents(ds: xr.Dataset, path, node: str, max_points: int = 2000) -> Path:
    """Latents of ``node`` against the world's factors.

    Left: the latent-factor correlation matrix. Right: each latent unit
    against the factor it correlates with most (over the valid steps).
    """
    z = ds[node]
    start = int(z.attrs.get("first_valid_step", 0))
    z = z.isel(time=slice(start, None))
    f = ds["factors"].isel(time=slice(start, None))
    zv = z.values.reshape(-1, z.sizes["latent"])
    fv = f.values.reshape(-1, f.sizes["factor"])
    names = [str(n) for n in ds["factor"].values]
    n_l, n_f = zv.shape[1], fv.shape[1]
    corr = np.array([[_corr(fv[:, j], zv[:, i]) for j in range(n_f)] for i in range(n_l)])
    rng = np.random.default_rng(0)
    pick = rng.choice(len(zv), size=min(max_points, len(zv)), replace=False)
    n_scatter = min(n_l, 6)
    fig = Figure(figsize=(3.4 + 2.3 * n_scatter, 3.6))
    fig.subplots_adjust(left=0.9 / (3.4 + 2.3 * n_scatter), right=0.98, bottom=0.3, top=0.83, wspace=0.8)
    axes = fig.subplots(1, 1 + n_scatter, squeeze=False,
                        width_ratios=[max(1.4, 0.3 * n_f)] + [1.0] * n_scatter)[0]
    ax = axes[0]
    im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(n_f), names, rotation=60, ha="right", fontsize="x-small")
    ax.set_yticks(range(n_l), [str(i) for i in range(n_l)], fontsize="x-small")
    ax.set_xlabel("factor")
    ax.set_ylabel("latent unit")
    ax.set_title("correlation r", fontsize="small")
    cbar = fig.colorbar(im, ax=ax, fraction=0.08, pad=0.03)
    cbar.ax.tick_params(labelsize="x-small")
    for i, ax in enumerate(axes[1:]):
        j = int(np.argmax(np.abs(corr[i])))
        ax.plot(fv[pick, j], zv[pick, i], ".", ms=2, alpha=0.4, color="C0", rasterized=True)
        unit = _factor_unit(names[j])
        ax.set_xlabel(f"{names[j]} ({unit})", fontsize="small")
        ax.set_ylabel(f"latent {i} (a.u.)", fontsize="small")
        ax.set_title(f"r = {corr[i, j]:+.2f}", fontsize="small")
        ax.tick_params(labelsize="x-small")
    fig.suptitle(f"node {z.attrs.get('node', node)}: latents against factors (steps >= {start})")
    return _save(fig, Path(path))


def _factor_unit(name: str) -> str:
    """The unit of a world factor (see ``neurodelay.worlds.circle``): positions, velocities, else generic.

    A blob position factor is in image widths; a circle factor v puts the
    centre at 0.125 + 0.75 v image widths, so circle positions and
    velocities are in circle factor units (0.75 image widths each).
    """
    if name.startswith("circle_v"):
        return "circle units / frame"
    if name in ("circle_x", "circle_y"):
        return "circle units"
    if name.endswith(("_x", "_y")):
        return "image widths"
    return "factor units"


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else 0.0


def plot_sweep(combined: xr.Dataset, dims, path, metric: str) -> Path | None:
    """A metric of every sweep point against the first swept parameter (one line per other point)."""
    import itertools

    if metric not in combined or not dims:
        return None
    da = combined[metric]
    first, others = dims[0], list(dims[1:])
    extra = [d for d in da.dims if d not in [x.name for x in dims]]
    if extra:
        da = da.mean(extra)
    x = combined[first.name].values
    numeric = x.dtype.kind in "if" and not first.zipped
    xs = x if numeric else np.arange(len(x))
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")  # room for multi-line tick labels and long labels
    ax = fig.add_subplot()
    for combo in itertools.product(*(range(d.size) for d in others)):
        line = da.isel({d.name: i for d, i in zip(others, combo)})
        parts = []
        for d, i in zip(others, combo):
            for cname in _varying(combined, d):
                parts.append(f"{cname}={_short(combined[cname].values[i])}")
        ax.plot(xs, line.transpose(first.name).values, "o-", label=textwrap.fill(", ".join(parts), 80) or None)
    if not numeric:
        if first.zipped:
            labels = ["\n".join(f"{c}={combined[c].values[i]}" for c in first.names) for i in range(first.size)]
        else:
            labels = [str(v) for v in x]
        ax.set_xticks(xs, labels, fontsize="small")
    elif np.all(x > 0) and x.max() / x.min() > 100:
        ax.set_xscale("log")
    ax.set_xlabel(textwrap.fill(", ".join(first.paths) + (" (zipped)" if first.zipped else ""), 70))
    ylabel = {"reconstruction_mse": "reconstruction MSE per pixel (evaluation)",
              "final_loss_total": "final training loss (total, per sequence)"}.get(metric, None)
    if ylabel is None:
        units = da.attrs.get("units", "")
        ylabel = da.attrs.get("long_name", metric) + (f" ({units})" if units and units != "1" else "")
    ax.set_ylabel(textwrap.fill(ylabel, 45))
    ax.set_title(f"{metric} across the sweep")
    ax.grid(True, alpha=0.3)
    if others:  # below the axes: zipped points can carry long labels, which inside the axes hid the lines
        fig.legend(fontsize="x-small", loc="outside lower center")
        fig.set_figheight(4.0 + 0.18 * sum(len(t.get_text().splitlines()) for t in fig.legends[0].get_texts()))
    return _save(fig, Path(path))


def _varying(combined: xr.Dataset, dim) -> list[str]:
    """The coordinates of a sweep dimension whose values differ along it (all of them if none does)."""
    names = [c for c in dim.names if len({str(v) for v in np.atleast_1d(combined[c].values)}) > 1]
    return names or list(dim.names)


def _short(value, width: int = 40) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "\u2026"
