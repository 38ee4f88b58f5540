"""analysis.figures: the analyses' figures, from their Datasets or from plain arrays."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from neurodelay.analysis.disentanglement import correlation_matrix
from neurodelay.analysis.figures import plot_correlation


def test_plot_correlation_accepts_correlation_matrix_output():
    rng = np.random.default_rng(0)
    corr = correlation_matrix(rng.normal(size=(20, 3)), rng.normal(size=(20, 2)))
    fig = plot_correlation(corr)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    assert ax.get_xlabel() == "factor" and ax.get_ylabel() == "latent (index)"
    with pytest.raises(TypeError, match=r"corr must be an xarray.DataArray or a 2-D numeric array"):
        plot_correlation({"a": 1})
    with pytest.raises(ValueError, match=r"corr must be 2-D \(latent, factor\), got shape \(3,\)"):
        plot_correlation(np.zeros(3))
