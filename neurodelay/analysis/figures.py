"""Figures of the analyses (matplotlib, Agg backend; save as PNG).

Each function takes the Dataset an analysis returns and gives back a
``matplotlib.figure.Figure`` (made without pyplot, so no display and no
global state); save it with ``fig.savefig(path, dpi=100)`` or
``AnalysisContext.save_figure``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["plot_correlation", "plot_traversals", "plot_sweeps", "plot_lag", "plot_flash_lag", "plot_regions",
           "plot_gamma_transfer", "plot_decoding_latency"]

_SCORES = (("lag_mig", "MIG"), ("lag_dci_disentanglement", "DCI disentanglement"),
           ("lag_dci_completeness", "DCI completeness"), ("lag_dci_informativeness", "DCI informativeness"),
           ("lag_sap", "SAP"))
_REGION_COLORS = {"inside": "tab:orange", "edge": "tab:red", "object": "tab:purple", "background": "tab:blue"}


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def plot_correlation(corr: xr.DataArray | np.ndarray, title: str = "latent-factor correlation") -> Figure:
    """Heatmap of a (latent x factor) correlation matrix, values written in the cells.

    Parameters
    ----------
    corr : xarray.DataArray or array_like, shape (n_latent, n_factor)
        Correlations in [-1, 1]. A DataArray's second dim's coordinate
        labels the columns; a plain array (e.g. from
        :func:`~neurodelay.analysis.correlation_matrix`) is read as dims
        ``latent`` and ``factor``, its columns labelled by index.
    title : str
    """
    if isinstance(corr, xr.DataArray):
        if corr.ndim != 2:
            raise ValueError(f"corr must be 2-D (latent, factor), got dims {corr.dims}.")
        c = np.asarray(corr.values, dtype=float)
        rows, cols = corr.dims
        col_labels = [str(v) for v in corr[cols].values] if cols in corr.coords else [str(i) for i in range(c.shape[1])]
    else:
        c = _matrix(corr)
        rows, cols = "latent", "factor"
        col_labels = [str(i) for i in range(c.shape[1])]
    fig = _figure(1.2 + 0.9 * c.shape[1], 1.2 + 0.45 * c.shape[0] + 0.8)
    ax = fig.add_subplot()
    im = ax.imshow(c, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (i, j), v in np.ndenumerate(c):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                color="white" if abs(v) > 0.6 else "black")
    ax.set_xticks(range(c.shape[1]), col_labels, rotation=30, ha="right")
    ax.set_yticks(range(c.shape[0]), [str(i) for i in range(c.shape[0])])
    ax.set_xlabel(cols.replace("_", " "))
    ax.set_ylabel(f"{rows.replace('_', ' ')} (index)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="Pearson r")
    return fig


def _matrix(corr) -> np.ndarray:
    """A plain (latent, factor) correlation matrix as float64, or a TypeError / ValueError saying what to pass."""
    if hasattr(corr, "detach"):
        corr = corr.detach().cpu().numpy()
    try:
        c = np.asarray(corr, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"corr must be an xarray.DataArray or a 2-D numeric array (latent, factor), got "
                        f"{type(corr).__name__}; pass e.g. correlation_matrix(latents, factors).") from None
    if c.ndim != 2:
        raise ValueError(f"corr must be 2-D (latent, factor), got shape {c.shape}.")
    return c


def plot_traversals(ds: xr.Dataset) -> Figure:
    """Grid of decoded latent traversals: one row per latent, one column per value.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`neurodelay.analysis.traversals.latent_traversals`.
    """
    img = ds["traversal_images"]
    unit = img.dims[0]
    m, n = img.shape[:2]
    values = ds["traversal_value"].values
    # A plain grid (no constrained layout: it is slow with many image axes).
    fig = Figure(figsize=(1.0 * n + 0.6, 1.1 * m + 0.5))
    fig.subplots_adjust(left=0.6 / (1.0 * n + 0.6), right=0.99, bottom=0.02, top=1 - 0.45 / (1.1 * m + 0.5),
                        wspace=0.08, hspace=0.3)
    axes = fig.subplots(m, n, squeeze=False)
    for j in range(m):
        for s in range(n):
            ax = axes[j, s]
            ax.imshow(img.values[j, s], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{values[j, s]:.2f}", fontsize=7, pad=2)
            if s == 0:
                ax.set_ylabel(f"{unit} {j}", fontsize=9)
    fig.suptitle("latent traversals (value of the swept latent above each image; others at their mean)",
                 fontsize=9)
    return fig


def plot_sweeps(ds: xr.Dataset) -> Figure:
    """Representation along each factor sweep, and the sweep correlation matrix.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`neurodelay.analysis.traversals.factor_sweeps`.
    """
    z = ds["sweep_latents"]
    factors = [str(f) for f in ds["sweep_factor"].values]
    x = ds["sweep_value"].values
    fig = _figure(3.0 * len(factors) + 3.5, 3.2)
    sub = fig.subfigures(1, 2, width_ratios=[3.0 * len(factors), 3.5])
    axes = sub[0].subplots(1, len(factors), sharey=True, squeeze=False)[0]
    for k, name in enumerate(factors):
        ax = axes[k]
        for j in range(z.shape[-1]):
            ax.plot(x, z.values[k, :, j], marker=".", label=f"latent {j}")
        ax.set_xlabel(f"{name} (factor units)")
        ax.set_title(f"sweep of {name}", fontsize=9)
    axes[0].set_ylabel("latent value")
    if z.shape[-1] <= 10:
        axes[-1].legend(fontsize=7, loc="best")
    c = ds["sweep_correlation"].values
    ax = sub[1].add_subplot()
    im = ax.imshow(c, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (i, j), v in np.ndenumerate(c):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if abs(v) > 0.6 else "black")
    ax.set_xticks(range(len(factors)), factors, rotation=30, ha="right")
    ax.set_yticks(range(c.shape[0]))
    ax.set_xlabel("swept factor")
    ax.set_ylabel("latent (index)")
    ax.set_title(f"sweep correlation (mss {float(ds['sweep_correlation_score']):.3f})", fontsize=9)
    sub[1].colorbar(im, ax=ax, label="Pearson r")
    return fig


def plot_lag(lag: xr.Dataset, scores: xr.Dataset | None = None) -> Figure:
    """Lag curves: readout error against lag, lag-resolved scores, position error over time.

    Parameters
    ----------
    lag : xarray.Dataset
        From :func:`neurodelay.analysis.lag.representational_lag`.
    scores : xarray.Dataset, optional
        From :func:`neurodelay.analysis.lag.lag_resolved_scores`.
    """
    n_panels = 3 if scores is not None else 2
    fig = _figure(4.0 * n_panels, 3.4)
    axes = fig.subplots(1, n_panels)
    lag_ms = lag["lag"].values
    ax = axes[0]
    ax.plot(lag_ms, lag["lag_readout_rmse_px"].values, marker="o", color="tab:blue", label="readout error (held out)")
    if "lag_encoding_residual" in lag and np.isfinite(lag["lag_encoding_residual"].values).any():
        twin = ax.twinx()
        twin.plot(lag_ms, lag["lag_encoding_residual"].values, marker="s", color="tab:purple", lw=1)
        twin.set_ylabel("encoding model residual (whitened)", color="tab:purple", fontsize=8)
    est = float(lag["lag_ms"])
    if np.isfinite(est):
        ax.axvline(est, color="tab:red", ls="--", label=f"estimate {est:.1f} ms ({float(lag['lag_steps']):.2f} steps)")
        if "lag_ms_ci" in lag and np.isfinite(lag["lag_ms_ci"].values).all():
            lo, hi = lag["lag_ms_ci"].values
            ax.axvspan(lo, hi, color="tab:red", alpha=0.15, lw=0,
                       label=f"{lag['lag_ms_ci'].attrs.get('confidence_level', 0.95):.0%} interval")
    else:
        ax.set_title("no lag read", fontsize=10)
    if "lag_theory_steps" in lag and np.isfinite(float(lag["lag_theory_steps"])):
        th = float(lag["lag_theory_steps"]) * (lag_ms[1] - lag_ms[0] if len(lag_ms) > 1 else 1.0) \
            / (float(lag["lag_step"][1] - lag["lag_step"][0]) if len(lag_ms) > 1 else 1.0)
        ax.axvline(th, color="0.3", ls=":", label=f"linear theory {th:.1f} ms")
    ax.set_xlabel("lag of the world behind the representation (ms)")
    ax.set_ylabel("readout error (px per coordinate)")
    if np.isfinite(est):
        ax.set_title("circle position vs lag", fontsize=10)
    ax.legend(fontsize=7)
    if scores is not None:
        ax = axes[1]
        s_ms = scores["lag"].values
        for var, label in _SCORES:
            if var in scores:
                ax.plot(s_ms, scores[var].values, marker=".", label=label)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("lag of the factors behind the latents (ms)")
        ax.set_ylabel("score (0 to 1)")
        ax.set_title("lag-resolved disentanglement", fontsize=10)
        ax.legend(fontsize=7)
    ax = axes[-1]
    t = lag["time"].values
    ax.plot(t, lag["position_error_px_by_time"].values, marker="o", color="tab:green")
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("decoded - true position along motion (px)")
    pe = float(lag["position_error_px"])
    ax.set_title(f"signed position error (mean {pe:.2f} px)" if np.isfinite(pe) else "signed position error (not "
                 "read: see the lag)", fontsize=10)
    return fig


def plot_gamma_transfer(tr: xr.Dataset) -> Figure:
    """Reconstruction error and lag against the gamma applied at evaluation.

    Parameters
    ----------
    tr : xarray.Dataset
        From :func:`neurodelay.analysis.transfer.gamma_transfer`.
    """
    fig = _figure(8.0, 3.2)
    axes = fig.subplots(1, 2)
    g = tr["eval_gamma"].values
    trained = float(tr.attrs.get("trained_gamma", np.nan))
    for ax, var, label in ((axes[0], "transfer_reconstruction_mse", "reconstruction MSE per pixel"),
                           (axes[1], "transfer_lag_steps", "representational lag (steps)")):
        ax.plot(g, tr[var].values, marker="o", color="tab:blue")
        ax.axvline(trained, color="tab:red", ls="--", label=f"trained at {trained:g}")
        ax.set_xlabel("gamma applied at evaluation")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    return fig


def plot_flash_lag(fl: xr.Dataset) -> Figure:
    """Flash-lag bars: per condition, one bar per speed; with the battery, one panel per readout rule.

    Parameters
    ----------
    fl : xarray.Dataset
        From :func:`neurodelay.analysis.flash_lag.flash_lag` (bars in px and
        ms), or with the variables of
        :func:`~neurodelay.analysis.flash_lag.flash_lag_battery` (the
        registered analysis writes both): bars in ms for each readout rule,
        and the flash-lag read at each step around the flash (mean over
        speeds, in ms), with the steps each rule reads marked.
    """
    if "flash_lag_battery_ms" in fl:
        return _plot_flash_lag_battery(fl)
    conds = [str(c).replace("_", " ") for c in fl["condition"].values]
    speeds = fl["speed"].values
    fig = _figure(9.0, 3.6)
    axes = fig.subplots(1, 2)
    for ax, var, unit in ((axes[0], "flash_lag_px", "px"), (axes[1], "flash_lag_ms", "ms")):
        _flash_bars(ax, fl[var].values, conds, speeds)
        ax.set_ylabel(f"flash-lag ({unit})")
    axes[0].legend(title="speed", fontsize=8)
    steps = int(fl["flash_latency_steps"])
    fig.suptitle(f"flash-lag: moving circle ahead of the flash (> 0) or behind (< 0), when the flash is seen "
                 f"({steps} step{'s' if steps != 1 else ''} = {float(fl['flash_latency_ms']):.0f} ms after it "
                 f"is shown)", fontsize=10)
    return fig


def _flash_bars(ax, vals: np.ndarray, conds: list, speeds: np.ndarray) -> None:
    """Bars of vals (condition, speed) grouped by condition, one colour per speed."""
    n_s = len(speeds)
    width = 0.8 / n_s
    x = np.arange(len(conds))
    for j in range(n_s):
        ax.bar(x - 0.4 + width * (j + 0.5), vals[:, j], width, label=f"{speeds[j]:.0f} px/s")
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xticks(x, conds, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("condition")


def _plot_flash_lag_battery(fl: xr.Dataset) -> Figure:
    conds = [str(c).replace("_", " ") for c in fl["condition"].values]
    speeds = fl["speed"].values
    rules = [str(r) for r in fl["read_at"].values]
    offsets = fl["read_at_offset_steps"].values
    n_read = fl["read_at_n_steps"].values
    fig = _figure(4.0 * (len(rules) + 1), 4.0)
    axes = fig.subplots(1, len(rules) + 1)
    lag = fl["flash_lag_battery_ms"].values
    finite = lag[np.isfinite(lag)]
    lo, hi = (min(0.0, finite.min()), max(0.0, finite.max())) if finite.size else (-1.0, 1.0)
    pad = 0.08 * (hi - lo or 1.0)
    for i, (ax, rule) in enumerate(zip(axes, rules)):
        _flash_bars(ax, lag[i], conds, speeds)
        ax.set_ylim(lo - pad, hi + pad)
        if n_read[i] > 1:
            ax.set_title(f"{rule}: mean of {n_read[i]} steps from the flash's arrival", fontsize=9)
        elif offsets[i] > 0:
            ax.set_title(f"{rule}: {offsets[i]} step{'s' if offsets[i] != 1 else ''} after the flash arrives",
                         fontsize=9)
        else:
            ax.set_title(f"{rule}: when the flash arrives", fontsize=9)
    axes[0].set_ylabel("flash-lag (ms)")
    axes[0].legend(title="speed", fontsize=7)
    ax = axes[-1]
    t, steps = fl["read_offset"].values, fl["read_offset_steps"].values
    dt_ms = float(t[steps != 0][0] / steps[steps != 0][0]) if (steps != 0).any() else 1.0
    # Steps without a circle are NaN for every speed alike: the mean keeps them NaN (gaps in the lines).
    mean = (fl["flash_lag_px_by_read_offset"].values / fl["speed_px_per_step"].values[None, :, None]).mean(1) * dt_ms
    near = steps >= -3  # from 3 steps before the flash's arrival: long before it, the lines only diverge
    for c, name in enumerate(conds):
        ax.plot(t[near], mean[c, near], marker=".", label=name)
    for i, rule in enumerate(rules):
        start = offsets[i] * dt_ms
        if n_read[i] > 1:
            ax.axvspan(start, start + (n_read[i] - 1) * dt_ms, color="0.85", zorder=0, label=f"{rule} window")
        else:
            ax.axvline(start, color="0.5", ls="--" if offsets[i] else "-", lw=0.8)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xlabel("time read, from the flash's arrival (ms)")
    ax.set_ylabel("flash-lag (ms), mean over speeds")
    ax.set_title("read at each step (lines: first, latency)", fontsize=9)
    ax.legend(fontsize=7)
    steps = int(fl["flash_latency_steps"])
    fig.suptitle(f"flash-lag: moving circle ahead of the flash (> 0) or behind (< 0); the flash arrives "
                 f"{steps} step{'s' if steps != 1 else ''} = {float(fl['flash_latency_ms']):.0f} ms after it is "
                 f"shown", fontsize=10)
    return fig


def plot_regions(reg: xr.Dataset) -> Figure:
    """Reconstruction error by region: overall, against circle-blob distance, and over time.

    Parameters
    ----------
    reg : xarray.Dataset
        From :mod:`neurodelay.analysis.regions`.
    """
    has_time = "region_mse_by_time" in reg
    n_panels = 3 if has_time else 2
    fig = _figure(4.0 * n_panels, 3.4)
    axes = fig.subplots(1, n_panels)
    regions = [str(r) for r in reg["region"].values]
    vals = reg["region_mse"].values
    ax = axes[0]
    ax.bar(regions, vals, color=[_REGION_COLORS.get(r, "0.5") for r in regions])
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v:.2g}", ha="center", va="bottom", fontsize=8)
    _log_if_positive(ax, vals)
    ax.set_xlabel("region")
    ax.set_ylabel("MSE per pixel (intensity$^2$)")
    ax.set_title("reconstruction error by region", fontsize=10)
    ax = axes[1]
    d = reg["distance_bin"].values
    by_d = reg["region_mse_by_distance"].values
    for i, r in enumerate(regions):
        ax.plot(d, by_d[:, i], marker="o", label=r, color=_REGION_COLORS.get(r))
    _log_if_positive(ax, by_d)
    ax.set_xlabel("circle-blob distance (px)")
    ax.set_ylabel("MSE per pixel (intensity$^2$)")
    ax.set_title("error vs circle-blob distance", fontsize=10)
    ax.legend(fontsize=8)
    if has_time:
        ax = axes[2]
        t = reg["time"].values
        by_t = reg["region_mse_by_time"].values
        for i, r in enumerate(regions):
            ax.plot(t, by_t[:, i], marker="o", label=r, color=_REGION_COLORS.get(r))
        _log_if_positive(ax, by_t)
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("MSE per pixel (intensity$^2$)")
        ax.set_title("error over time", fontsize=10)
    setting = reg["region_mse"].attrs.get("setting")
    if setting:
        fig.suptitle(f"reconstruction error by region ({setting})", fontsize=10)
    return fig


def plot_occlusion(occ: xr.Dataset) -> Figure:
    """Error of the reported position before, while and after the circle is hidden (one time axis).

    Parameters
    ----------
    occ : xarray.Dataset
        From :func:`neurodelay.analysis.occlusion.occlusion_error`.
    """
    fig = _figure(5.6, 3.4)
    ax = fig.subplots()
    k = occ.sizes["steps_since_vanish"]
    during = np.arange(k)
    after = k + occ["steps_since_reappear"].values
    for x, name in ((during, "occlusion_error_px"), (after, "occlusion_reappear_error_px")):
        ci = occ[f"{name}_ci"].values
        ax.fill_between(x, ci[0], ci[1], color="C0", alpha=0.25, lw=0)
        ax.plot(x, occ[name].values, marker="o", color="C0", label="report" if x is during else None)
    ax.plot(during, occ["occlusion_hold_px"].values, ls="--", color="0.4", label="holding the last seen position")
    ax.axhline(float(occ["occlusion_visible_error_px"]), color="C2", lw=1, label="visible, before it vanishes")
    ax.axvspan(-0.5, k - 0.5, color="0.85", zorder=0, label="hidden")
    ax.set_xlabel("steps since the circle vanished")
    ax.set_ylabel("distance from the circle (px)")
    ax.set_title(f"position error behind the occluder ({occ['occlusion_error_px'].attrs.get('n_events', '?')} "
                 f"sequences)", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def _log_if_positive(ax, values) -> None:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size and np.all(v > 0):
        ax.set_yscale("log")


def plot_decoding_latency(ds: xr.Dataset) -> Figure:
    """Time-resolved decoding per area: the flash's held-out R^2 by latency, and each area's latencies.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`neurodelay.analysis.decoding_latency.decoding_latency`.
    """
    dt = float(ds["flash_onset_ms"].attrs.get("dt_ms", 10.0))
    areas = [str(a) for a in ds["area"].values]
    fig = _figure(10.0, 3.6)
    left, right = fig.subplots(1, 2)
    ms = ds["latency_step"].values * dt
    for i, area in enumerate(areas):
        line, = left.plot(ms, ds["decoding_flash_r2"].values[i], marker=".", label=area)
        motion = float(ds["motion_latency_ms"].values[i])
        if np.isfinite(motion):
            left.axvline(motion, color=line.get_color(), linestyle=":", linewidth=1)
    left.axhline(float(ds["flash_onset_ms"].attrs.get("min_r2", 0.5)), color="grey", linewidth=0.8)
    left.set_xlabel("time after the flash (ms)")
    left.set_ylabel("held-out R$^2$ of the flash's place")
    left.set_title("flash decoding by latency (dotted: motion latency)", fontsize=9)
    left.legend(fontsize=7, loc="best")
    y = np.arange(len(areas))
    for name, var, marker in (("flash onset", "flash_onset_ms", "o"), ("motion latency", "motion_latency_ms", "s")):
        vals = ds[var].values
        ci = ds[f"{var}_ci"].values
        err = np.abs(np.stack([vals - ci[:, 0], ci[:, 1] - vals]))
        right.errorbar(vals, y, xerr=np.where(np.isfinite(err), err, 0), marker=marker, linestyle="none",
                       capsize=3, label=name)
    right.set_yticks(y, areas)
    right.invert_yaxis()
    right.set_xlabel("latency (ms)")
    right.set_title("per area: arrival of a flash, lag of a moving circle", fontsize=9)
    right.legend(fontsize=7, loc="best")
    return fig
