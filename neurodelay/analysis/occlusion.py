"""Position error behind an occluder: how far is the reported position from the circle while it is hidden?

In a world with an occluder (``MovingCircle(occlusion_frames=k)``) the circle
vanishes for ``k`` frames and reappears further along its path; the factor
``circle_occluded`` says which frames hide it, and the position factors hold
its true motion throughout. A report that holds the last position it saw
falls behind by the circle's travel since then (speed x steps); one that
extrapolates the motion it saw keeps up with linear motion; extrapolation is
not free all the same, since a delayed circuit reads the blank frames late,
and an extrapolator amplifies the jump between a frame with the circle and
one without.

The reported position is read as :mod:`~neurodelay.analysis.reversal` reads
it (:func:`~neurodelay.analysis.reversal.calibrated_report`): a readout
fitted on the same circuit's traces for straight, unoccluded paths
(``calibration``), applied to the occluded runs. (Fitted on the occluded
runs themselves, it would be pulled by the hidden steps, where the
representation carries no position.)

Events are the sequences whose first occlusion starts at a step ``t0`` with
``before`` visible steps before it from ``from_step`` on (and at least two,
for the direction of the motion last seen), and ends at a step ``t1 = t0 +
k`` before the sequence does: one event per sequence, so that intervals
resample sequences. For each, at the steps ``t0 + j`` (``j`` steps since the
circle vanished, ``0 <= j < k``) and ``t1 + i`` (``i`` steps since it
reappeared, ``0 <= i < after``, those within the sequence), the error
``|d(t) - p(t)|`` of the report ``d`` against the true present position
``p``, in px, and its signed component along the motion last seen
(``u = p(t0 - 1) - p(t0 - 2)``, normalised; negative: behind). Each step's
value is the mean over the events that have that step.

Calibrated on reports whose error is known (tests/unit/test_occlusion.py,
tests/properties/test_occlusion_calibration.py): a perfect report reads 0; a
report that extrapolates linearly from the last visible step reads 0 for
linear motion; one that holds the last seen position reads the circle's
travel since then (``occlusion_hold_px``), ``speed x (j + 1)``. Readout noise
biases the error (a distance) up, and hardly the signed error along the
motion. With Gaussian noise of 0.5, 1 and 2 px per coordinate in the
representation (256 sequences, 242 events, 4 hidden steps, the readout
fitted on equally noisy straight paths), a perfect report reads a mean error
while hidden of 0.64, 1.26 and 2.41 px (about ``sigma sqrt(pi / 2)``, the
mean length of the noise) and an along-motion error of -0.03, -0.07 and
-0.17 px; a report that holds the last seen position (2.10 px noise-free)
reads 2.23, 2.51 and 3.22 px (+0.13, +0.40, +1.11) and an along-motion error
within 0.08 px of its noise-free -2.10. The visible baseline
(``occlusion_visible_error_px``) carries the same bias (0.66, 1.30, 2.47 px
for the perfect report), so compare the errors while hidden with it, or read
the signed error.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import xarray as xr

from neurodelay.analysis._dataset import CIRCLE_FACTORS, default_from_step, frame_size, px_per_unit, \
    representation_variable
from neurodelay.analysis.lag import MIN_R2
from neurodelay.analysis.reversal import calibrated_report

__all__ = ["OCCLUSION_FACTOR", "occlusion_events", "occlusion_error"]

#: The factor that says which frames hide the circle (1) and which draw it (0).
OCCLUSION_FACTOR = "circle_occluded"


def _int(name: str, value, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low} (steps), got {value!r}.")
    return int(value)


def occlusion_events(occluded: np.ndarray, *, first: int = 2) -> list[tuple[int, int, int]]:
    """(sequence, first hidden step t0, hidden steps k) of the first occlusion of each sequence.

    ``occluded`` : (n, T), > 0.5 where the circle is hidden. A sequence counts
    when its first hidden run starts at ``t0 >= max(first, 2)`` (two visible
    steps before it give the direction of the motion last seen) and ends
    before its last step (the circle reappears).
    """
    hidden = np.asarray(occluded) > 0.5
    n_t = hidden.shape[1]
    out = []
    for s in np.nonzero(hidden.any(axis=1))[0]:
        t0 = int(np.argmax(hidden[s]))
        k = int(np.argmin(hidden[s, t0:])) if not hidden[s, t0:].all() else n_t - t0
        if t0 >= max(int(first), 2) and t0 + k <= n_t - 1:
            out.append((int(s), t0, k))
    return out


def _mean(x: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` of the finite entries (NaN where there are none), without warnings."""
    ok = np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, x, 0.0).sum(axis) / ok.sum(axis)


def _interval(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """95 % percentile bootstrap interval over events (rows) of the per-column mean: (2, columns)."""
    n = values.shape[0]
    if n_boot <= 0 or n < 2:
        return np.full((2,) + values.shape[1:], np.nan)
    idx = rng.integers(0, n, (int(n_boot), n))
    means = _mean(values[idx], axis=1)  # (n_boot, columns)
    with warnings.catch_warnings():  # a column no event reaches has no interval (NaN), not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(means, [2.5, 97.5], axis=0)


def occlusion_error(ds: xr.Dataset, node: str | None = None, *, calibration: xr.Dataset | None = None,
                    before: int = 2, after: int = 6, from_step: int | None = None, n_boot: int = 1000,
                    seed: int = 0, min_r2: float = MIN_R2, pixels_per_unit: float | None = None) -> xr.Dataset | None:
    """Error of the reported position while the circle is hidden and after it reappears (module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        Results of a moving world with an occluder: ``factors`` with
        ``circle_x``, ``circle_y``, ``circle_occluded``, and the
        representation trace.
    node : str, optional
        Representation node or variable.
    calibration : xarray.Dataset, optional
        The same circuit's traces (the same variable) on straight,
        unoccluded paths, where the readout is fitted; default ``ds`` itself
        (pulled by the hidden steps).
    before : int
        Visible steps before the circle vanishes whose mean error is the
        baseline ``occlusion_visible_error_px`` (>= 1).
    after : int
        Steps after the circle reappears scored (>= 1).
    from_step : int, optional
        First step at which the report is read (default: the
        representation's first valid step + 1); an event needs ``before``
        steps from it before the circle vanishes.
    n_boot : int
        Bootstrap resamples of the sequences for the intervals (0: none).
    seed : int
        Seed of the readout's split and of the bootstrap.
    min_r2 : float
        Least held-out R^2 of the calibrated readout at which the report is
        read: below it every error is NaN with a ``nan_reason``.
    pixels_per_unit : float, optional
        Default: from the frames' size.

    Returns
    -------
    xarray.Dataset or None
        Over ``steps_since_vanish`` (0 .. k - 1): ``occlusion_error_px``
        (mean distance of the report from the true position, px) with
        ``occlusion_error_px_ci`` (bound), ``occlusion_along_px`` (mean
        signed error along the motion last seen; negative: behind) with its
        ``_ci``, and ``occlusion_hold_px`` (the circle's travel since it was
        last seen: the error of a report that holds the last seen position).
        Over ``steps_since_reappear`` (0 .. after - 1):
        ``occlusion_reappear_error_px`` and ``occlusion_reappear_along_px``
        with their ``_ci``. Scalars with their ``_ci``:
        ``occlusion_visible_error_px`` (the ``before`` visible steps before
        the circle vanishes), ``occlusion_mean_error_px`` (mean over the
        hidden steps) and ``occlusion_reappear_mean_error_px`` (over the
        scored steps after it reappears). Attributes ``n_events``,
        ``readout_r2``, ``readout_lag_steps``. Readout noise biases the
        distances up (a perfect report reads +0.64, +1.26 and +2.41 px at
        0.5, 1 and 2 px of noise per coordinate; module docstring), the
        signed errors hardly (-0.03, -0.07, -0.17 px). None when the runs
        have no occlusion to score.
    """
    before, after = _int("before", before, 1), _int("after", after, 1)
    n_boot = _int("n_boot", n_boot, 0)
    var = representation_variable(ds, node)
    names = [str(n) for n in ds["factor"].values] if "factor" in ds.coords else []
    if OCCLUSION_FACTOR not in names or any(c not in names for c in CIRCLE_FACTORS):
        return None
    start = default_from_step(ds, var, from_step)
    pos = ds["factors"].sel(factor=list(CIRCLE_FACTORS)).values.astype(np.float64)
    events = occlusion_events(ds["factors"].sel(factor=OCCLUSION_FACTOR).values, first=start + before)
    if not events:
        return None
    decoded, readout_attrs, reason = calibrated_report(ds, var, calibration, seed=seed, min_r2=min_r2)
    ppu = float(pixels_per_unit) if pixels_per_unit is not None else px_per_unit(frame_size(ds))
    n_t, n_k = pos.shape[1], max(k for _, _, k in events)
    shape = {"during": (len(events), n_k), "after": (len(events), after)}
    err = {key: np.full(sh, np.nan) for key, sh in shape.items()}
    along = {key: np.full(sh, np.nan) for key, sh in shape.items()}
    hold = np.full(shape["during"], np.nan)
    visible = np.empty(len(events))
    for e, (s, t0, k) in enumerate(events):
        seen = pos[s, t0 - 1]
        u = seen - pos[s, t0 - 2]
        norm = np.linalg.norm(u)
        u = u / norm if norm > 0 else np.full(2, np.nan)
        for key, steps in (("during", np.arange(t0, t0 + k)), ("after", np.arange(t0 + k, min(t0 + k + after, n_t)))):
            diff = (decoded[s, steps] - pos[s, steps]) * ppu
            err[key][e, :len(steps)] = np.linalg.norm(diff, axis=-1)
            along[key][e, :len(steps)] = diff @ u
        hold[e, :k] = np.linalg.norm(pos[s, t0:t0 + k] - seen, axis=-1) * ppu
        visible[e] = np.linalg.norm((decoded[s, t0 - before:t0] - pos[s, t0 - before:t0]) * ppu, axis=-1).mean()
    if reason is not None:
        for a in (*err.values(), *along.values(), visible):
            a[:] = np.nan
    per_event = np.stack([visible, _mean(err["during"], 1), _mean(err["after"], 1)], axis=1)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6F63636C]))
    ci = {name: _interval(a, n_boot, rng) for name, a in (("during", err["during"]), ("after", err["after"]),
                                                           ("along", along["during"]), ("along_after", along["after"]),
                                                           ("scalars", per_event))}
    scalars = _mean(per_event, 0)
    attrs = {"n_events": len(events), **readout_attrs, "before_steps": before, "from_step": start,
             **({"nan_reason": reason} if reason else {})}
    px = {"units": "px"}
    dv, dr, b = ("steps_since_vanish",), ("steps_since_reappear",), ("bound",)
    data = {
        "occlusion_error_px": (dv, _mean(err["during"], 0), {**px, **attrs, "long_name": "mean distance of the "
                               "reported position from the true one, by steps since the circle vanished"}),
        "occlusion_error_px_ci": (b + dv, ci["during"], {**px, "long_name": "95 % bootstrap interval over "
                                                         "sequences of occlusion_error_px"}),
        "occlusion_along_px": (dv, _mean(along["during"], 0), {**px, "long_name": "mean signed error of the report "
                               "along the motion last seen (negative: behind the circle)"}),
        "occlusion_along_px_ci": (b + dv, ci["along"], {**px, "long_name": "95 % bootstrap interval over sequences "
                                                        "of occlusion_along_px"}),
        "occlusion_hold_px": (dv, _mean(hold, 0), {**px, "long_name": "the circle's travel since it was last seen: "
                              "the error of a report that holds the last seen position"}),
        "occlusion_reappear_error_px": (dr, _mean(err["after"], 0), {**px, "long_name": "mean distance of the "
                                        "reported position from the true one, by steps since the circle reappeared"}),
        "occlusion_reappear_error_px_ci": (b + dr, ci["after"], {**px, "long_name": "95 % bootstrap interval over "
                                                                 "sequences of occlusion_reappear_error_px"}),
        "occlusion_reappear_along_px": (dr, _mean(along["after"], 0), {**px, "long_name": "mean signed error of the "
                                        "report along the motion last seen, after the circle reappeared"}),
        "occlusion_reappear_along_px_ci": (b + dr, ci["along_after"], {**px, "long_name": "95 % bootstrap interval "
                                           "over sequences of occlusion_reappear_along_px"}),
    }
    for i, (name, text) in enumerate((("visible", f"over the {before} visible steps before the circle vanishes"),
                                      ("mean", "over the steps the circle is hidden"),
                                      ("reappear_mean", f"over the {after} steps after the circle reappears (those "
                                                        f"within the sequence)"))):
        data[f"occlusion_{name}_error_px"] = ((), scalars[i], {**px, "long_name": f"mean distance of the reported "
                                                               f"position from the true one {text}"})
        data[f"occlusion_{name}_error_px_ci"] = (b, ci["scalars"][:, i], {**px, "long_name": "95 % bootstrap "
                                                 "interval over sequences"})
    return xr.Dataset(data, coords={
        "steps_since_vanish": ("steps_since_vanish", np.arange(n_k), {"units": "steps", "long_name": "steps since "
                                                                      "the circle vanished behind the occluder"}),
        "steps_since_reappear": ("steps_since_reappear", np.arange(after), {"units": "steps", "long_name": "steps "
                                                                           "since the circle reappeared"}),
        "bound": ("bound", ["lower", "upper"])})
