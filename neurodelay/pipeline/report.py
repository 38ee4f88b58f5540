"""Markdown reports of a run and of a sweep (figures linked by relative paths)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np
import xarray as xr

from .._util.files import write_text_atomic
from .plots import plot_sweep

__all__ = ["write_report", "write_sweep_report", "key_numbers"]


def _fmt(x, digits: int = 4) -> str:
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if not math.isfinite(x):
            return str(x)
        return f"{x:.{digits}g}"
    return str(x)


def _exact(x) -> str:
    """A number as written (shortest round-trip form, no thousands separators): seeds, time steps."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return np.format_float_positional(x, trim="-") if math.isfinite(x) else str(x)
    return str(x)


def _link(rel: str) -> str:
    """A relative path as a Markdown link target (``#``, spaces, parentheses percent-encoded)."""
    return quote(rel, safe="/=,+-._~")


def key_numbers(ds: xr.Dataset) -> list[tuple[str, str]]:
    """The run's key numbers as (quantity, value) rows."""
    a = ds.attrs
    rows = [("device", a.get("device", "?")), ("seed", _exact(a.get("seed", "?")))]
    if "evaluate_seed" in a:
        rows.append(("evaluation seed", _exact(a["evaluate_seed"])))
    rows += [("time step", f"{_exact(a.get('dt_ms', float('nan')))} ms"),
            ("learnable parameters", _fmt(a.get("n_parameters", 0)))]
    steps = int(a.get("trained_steps", 0))
    rows.append(("training steps", _fmt(steps)))
    if steps:
        sps = float(a.get("train_steps_per_second", 0.0))
        rows.append(("training speed", f"{_fmt(sps, 3)} steps/s" if sps > 0 else "n/a (nothing left to train)"))
        rows.append(("training time", f"{_fmt(float(a.get('train_seconds', 0.0)), 3)} s"))
    for v in ds.data_vars:
        if v.startswith("loss_") and ds[v].dims == ("step",) and ds.sizes["step"]:
            rows.append((f"final loss: {v[5:]} (step {int(ds['step'].values[-1])})", _fmt(ds[v].values[-1])))
    rows.append(("evaluation sequences", _fmt(ds.sizes.get("sample", 0))))
    rows.append(("frames per sequence", _fmt(ds.sizes.get("time", 0))))
    if "reconstruction_mse" in ds:
        rows.append(("reconstruction MSE per pixel (evaluation)", _fmt(float(ds["reconstruction_mse"]))))
    return rows


#: Scalar variables already among the key numbers.
_KEY_VARIABLES = ("reconstruction_mse",)


def metric_rows(ds: xr.Dataset) -> list[tuple[str, str, str, str]]:
    """Every scalar result variable of ``ds`` (analyses' metrics) as (variable, value, units, meaning) rows."""
    rows = []
    for name, da in ds.data_vars.items():
        if da.ndim != 0 or name in _KEY_VARIABLES or da.dtype.kind not in "iuf":
            continue
        value = da.values.item()
        units = str(da.attrs.get("units", ""))
        rows.append((f"`{name}`", _fmt(value), "" if units == "1" else units, str(da.attrs.get("long_name", ""))))
    return rows


def learned_delay_rows(ds: xr.Dataset) -> list[tuple[str, str, str, str, str]]:
    """The learned delays as (edge, channel, initial ms, learned ms, bounds ms) rows (none if none)."""
    if "delay_ms" not in ds or "delay" not in ds.dims:
        return []
    rows = []
    for i in range(ds.sizes["delay"]):
        row = ds.isel(delay=i)
        channel = int(row["delay_channel"]) if "delay_channel" in row.coords else -1
        rows.append((f"`{row['delay_edge'].item()}`" if "delay_edge" in row.coords else str(i),
                     "all" if channel < 0 else str(channel), _fmt(float(row["delay_initial_ms"])),
                     _fmt(float(row["delay_ms"])),
                     f"{_fmt(float(row['delay_min_ms']))} to {_fmt(float(row['delay_max_ms']))}"))
    return rows


def _fenced(text: str, info: str = "text") -> list[str]:
    """``text`` in a fenced code block whose fence is longer than any backtick run inside it."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return [fence + info, text.rstrip(), fence]


def _last_finite(da: xr.DataArray, dim: str) -> xr.DataArray:
    """The last finite value along ``dim`` (NaN where there is none)."""
    def last(a):
        ok = np.isfinite(a)
        idx = a.shape[-1] - 1 - np.argmax(ok[..., ::-1], axis=-1)
        out = np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]
        return np.where(ok.any(axis=-1), out, np.nan)

    return xr.apply_ufunc(last, da.compute(), input_core_dims=[[dim]])


def _table(rows, header=("quantity", "value")) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |")
    return lines


def write_report(out_dir, study, ds: xr.Dataset, *, figures, schedule: str, study_text: str,
                 failures=(), wall_seconds: float = 0.0, resumed: bool = False) -> Path:
    """Write ``report.md`` of a run.

    Parameters
    ----------
    out_dir : path-like
        The run's folder (figures are linked relative to it).
    study : Study
    ds : xarray.Dataset
        The results as written to ``results.nc``.
    figures : list of (Path, str)
        Figure paths and captions.
    schedule : str
        The circuit's schedule (``Plan.describe``).
    study_text : str
        The resolved study (YAML).
    failures : list of (str, str)
        Failed analyses and their errors.
    wall_seconds : float
        Wall time of the whole run, in s.
    resumed : bool
        Whether training resumed from a checkpoint.
    """
    out_dir = Path(out_dir)
    a = ds.attrs
    lines = [f"# {study.name}", "",
             f"neurodelay {a.get('neurodelay_version', '?')}, torch {a.get('torch_version', '?')}. "
             f"Results: [`results.nc`](results.nc); study: [`study.resolved.yaml`](study.resolved.yaml)"
             + (", training resumed from `checkpoint.pt`." if resumed else "."), "",
             "## Key numbers", ""]
    rows = key_numbers(ds) + [("wall time of the run (training, evaluation, analyses)", f"{_fmt(wall_seconds, 3)} s")]
    lines += _table(rows) + [""]
    if failures:
        lines += ["## Failed analyses", ""]
        for n, m in failures:  # the whole message, however many lines (a list item breaks on blank lines)
            lines += [f"### {n}", ""] + _fenced(str(m)) + [""]
    metrics = metric_rows(ds)
    if metrics:
        lines += ["## Metrics", "", "Scalar results of the analyses, as stored in `results.nc`.", ""]
        lines += _table(metrics, ("variable", "value", "units", "meaning")) + [""]
    delays = learned_delay_rows(ds)
    if delays:
        lines += ["## Learned delays", "", "Each learned delay at the start and at the end of training "
                  "(`delay_ms` in `results.nc`; `delay_ms_history` over the logged steps).", ""]
        lines += _table(delays, ("edge", "channel", "initial (ms)", "learned (ms)", "bounds (ms)")) + [""]
    if figures:
        lines += ["## Figures", ""]
        for path, caption in figures:
            rel = Path(os.path.relpath(Path(path), out_dir)).as_posix()
            text = " ".join(str(caption).split())
            alt = text.replace("[", "(").replace("]", ")")
            lines += [f"![{alt}]({_link(rel)})", "", f"*{text}*", ""]
    lines += ["## Circuit schedule", "", "```text", schedule.rstrip(), "```", "",
              "## Study", "", "```yaml", study_text.rstrip(), "```", ""]
    path = out_dir / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path


#: Scalar per-run metrics shown against the swept parameters, when present.
_SWEEP_METRICS = ("reconstruction_mse", "final_loss_total", "mig", "dci_disentanglement", "sap",
                  "correlation_score", "lag_ms")


def write_sweep_report(out_dir, study, dims, outcome, combined: xr.Dataset | None) -> Path:
    """Write the sweep's ``report.md``: every point with its status, metric and error; a figure.

    The table gives each failed point's error on one line (``po.error``);
    the Failures section gives the whole of it (``po.detail``, when there
    is more).
    """
    out_dir = Path(out_dir)
    metrics: list[str] = []
    if combined is not None:
        combined = combined.copy(deep=False)  # the columns added below are the report's, not the caller's
        if "loss_total" in combined and "step" in combined.dims:
            combined["final_loss_total"] = _last_finite(combined["loss_total"], "step")
        names = {d.name for d in dims}
        metrics = [m for m in _SWEEP_METRICS if m in combined and set(combined[m].dims) <= names]
        for m in metrics:  # one equal at every point is stored once (see neurodelay.sweep.combine)
            missing = {d.name: combined.sizes[d.name] for d in dims if d.name not in combined[m].dims}
            if missing:
                combined[m] = combined[m].expand_dims(missing).transpose(*[d.name for d in dims])
    n_ok = sum(p.status in ("ok", "skipped") for p in outcome.points)
    lines = [f"# Sweep {study.name}", "",
             f"{len(outcome.points)} points; {n_ok} with results, {len(outcome.failed)} failed. "
             + ("Combined results: [`sweep.nc`](sweep.nc)." if combined is not None else "No results to combine."),
             "", "Swept: " + "; ".join(
                 f"`{d.name}` = {', '.join(d.paths)}" + (" (zipped)" if d.zipped else "") for d in dims), ""]
    figures = []
    for m in metrics:
        fig = plot_sweep(combined, dims, out_dir / "figures" / f"sweep_{m}.png", m)
        if fig is not None:
            figures.append((m, fig))
    delays = (combined is not None and "delay_ms" in combined and "delay" in combined.dims
              and set(combined["delay_ms"].dims) <= {d.name for d in dims} | {"delay"})
    header = (["point"] + [n for d in dims for n in d.names] + ["status"] + (metrics or ["metric"])
              + (["learned delays (ms)"] if delays else []) + ["error"])
    rows = []
    for po in outcome.points:
        p = po.point
        vals = [str(p.values[path]) for d in dims for path in d.paths]
        values = []
        for m in metrics or [None]:
            value = ""
            if m is not None and po.status in ("ok", "skipped"):
                sel = combined[m].isel({d.name: i for d, i in zip(dims, p.position.values())})
                if sel.ndim == 0:
                    value = _fmt(float(sel))
            values.append(value)
        if delays:  # each learned delay of the point, in the order of the `delay` dimension
            learned = ""
            if po.status in ("ok", "skipped"):
                sel = combined["delay_ms"].isel({d.name: i for d, i in zip(dims, p.position.values())
                                                 if d.name in combined["delay_ms"].dims})
                learned = ", ".join(_fmt(float(v)) for v in np.asarray(sel.values).ravel() if np.isfinite(v))
            values.append(learned)
        link = f"[{p.name}]({_link(p.name)}/report.md)" if po.status in ("ok", "skipped") else p.name
        rows.append([link] + vals + [po.status] + values + [po.error])
    lines += ["## Points", ""] + _table(rows, header) + [""]
    if delays:
        lines += ["Learned delays: `delay_ms` in `sweep.nc`, in the order of its `delay` dimension ("
                  + ", ".join(f"`{v}`" for v in combined["delay"].values) + ").", ""]
    if "final_loss_total" in metrics:
        lines += ["`final_loss_total`: each point's last finite `loss_total` (over `step` in `sweep.nc`); "
                  "the other columns are `sweep.nc` variables of the same name.", ""]
    if figures:
        lines += ["## Figures", ""]
        for m, fig in figures:
            lines += [f"![{m} across the sweep](figures/{_link(fig.name)})", "", f"*{m} across the sweep.*", ""]
    if outcome.failed:
        lines += ["## Failures", ""]
        for po in outcome.failed:  # the whole error (traceback, a Slurm job's error stream), not only its summary
            lines += [f"### {po.point.name}", ""] + _fenced(po.detail or po.error) + [""]
    path = out_dir / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path
