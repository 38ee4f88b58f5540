"""Analyses of what a circuit learned.

Array-level metrics take ``latents`` (n, n_latent) and ``factors``
(n, n_factor) so any representation can be scored; the other analyses take a
results Dataset (and, where they must show the circuit new stimuli, the
built module and world). Study files pick analyses by name (see
:mod:`neurodelay.analysis.registry`).
"""

from .disentanglement import (
    collapsed_latents,
    correlation_matrix,
    correlation_score,
    dci,
    matched_correlation_score,
    mig,
    mig_details,
    sap,
)
from .figures import plot_correlation, plot_flash_lag, plot_lag, plot_regions, plot_sweeps, plot_traversals
from .flash_lag import flash_lag, flash_lag_battery, flash_lag_theory, impulse_response, perception_latency
from .lag import (
    CIRCLE_FACTORS,
    POSITION_FACTORS,
    LinearReadout,
    fit_readout,
    lag_resolved_scores,
    px_per_unit,
    representation_variable,
    representational_lag,
)
from .regions import (
    REGIONS,
    circle_blob_distance_px,
    factor_grid,
    moving_region_errors,
    region_errors,
    static_region_errors,
)
from .traversals import decoder_input, factor_sweeps, latent_traversals

__all__ = [
    "collapsed_latents", "correlation_matrix", "correlation_score", "matched_correlation_score",
    "mig", "mig_details", "dci", "sap",
    "LinearReadout", "fit_readout", "representational_lag", "lag_resolved_scores",
    "representation_variable", "px_per_unit", "POSITION_FACTORS", "CIRCLE_FACTORS",
    "flash_lag", "flash_lag_battery", "flash_lag_theory", "impulse_response", "perception_latency",
    "region_errors", "static_region_errors", "moving_region_errors", "circle_blob_distance_px",
    "factor_grid", "REGIONS",
    "latent_traversals", "factor_sweeps", "decoder_input",
    "plot_correlation", "plot_traversals", "plot_sweeps", "plot_lag", "plot_flash_lag", "plot_regions",
]
