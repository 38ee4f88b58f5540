"""Analyses of what a circuit learned.

Array-level metrics take ``latents`` (n, n_latent) and ``factors``
(n, n_factor) so any representation can be scored.
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

__all__ = [
    "collapsed_latents", "correlation_matrix", "correlation_score", "matched_correlation_score",
    "mig", "mig_details", "dci", "sap",
]
