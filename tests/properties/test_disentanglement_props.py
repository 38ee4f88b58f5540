"""Properties of the disentanglement metrics (Hypothesis).

Example counts and deadlines come from the profile loaded in
``tests/conftest.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neurodelay.analysis._discretize import equal_width_codes
from neurodelay.analysis.disentanglement import (
    collapsed_latents,
    correlation_matrix,
    dci,
    matched_correlation_score,
    mig,
    mig_details,
    sap,
)

N = 400
N_FACTOR = 3
N_LATENT = 4


def _representation(seed: int, with_collapsed: bool) -> tuple[np.ndarray, np.ndarray]:
    """A partly entangled representation of a mix of grid and continuous factors."""
    rng = np.random.default_rng(seed)
    factors = np.column_stack(
        [
            rng.choice(np.linspace(0.0, 1.0, 16), size=N),
            rng.uniform(size=N),
            rng.uniform(size=N),
        ]
    )
    mask = rng.uniform(size=(N_FACTOR, N_LATENT)) < 0.6
    mixing = rng.normal(size=(N_FACTOR, N_LATENT)) * mask
    latents = factors @ mixing + rng.uniform(0.01, 0.5) * rng.normal(size=(N, N_LATENT))
    if with_collapsed:
        latents = np.column_stack([latents, np.full(N, rng.normal())])
    return latents, factors


def _scores(latents: np.ndarray, factors: np.ndarray) -> dict[str, float]:
    out = {"mig": mig(latents, factors, n_bins=10), "sap": sap(latents, factors)}
    out.update({f"dci_{k}": v for k, v in dci(latents, factors, seed=1).items()})
    out["matched_mss"] = matched_correlation_score(correlation_matrix(latents, factors))
    return out


@given(
    seed=st.integers(0, 2**32 - 1),
    with_collapsed=st.booleans(),
    data=st.data(),
)
def test_scores_invariant_to_latent_permutation_and_sign(seed, with_collapsed, data):
    latents, factors = _representation(seed, with_collapsed)
    n_latent = latents.shape[1]
    order = data.draw(st.permutations(range(n_latent)), label="order")
    sign_lists = st.lists(st.sampled_from([1.0, -1.0]), min_size=n_latent, max_size=n_latent)
    signs = np.array(data.draw(sign_lists, label="signs"))
    transformed = latents[:, order] * signs[order]

    before, after = _scores(latents, factors), _scores(transformed, factors)
    for key, value in before.items():
        assert np.isfinite(value), key
        assert after[key] == pytest.approx(value, abs=1e-9), key
    # The correlation matrix itself moves with the latents, exactly.
    c_before = correlation_matrix(latents, factors)
    c_after = correlation_matrix(transformed, factors)
    expected = c_before[order] * signs[order][:, None]
    np.testing.assert_allclose(c_after, expected, rtol=0, atol=1e-12)
    flags = collapsed_latents(latents)
    np.testing.assert_array_equal(collapsed_latents(transformed), flags[order])


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def small_pairs(draw):
    n = draw(st.integers(3, 25), label="n_samples")
    n_latent = draw(st.integers(1, 4), label="n_latent")
    n_factor = draw(st.integers(1, 3), label="n_factor")
    latents = draw(hnp.arrays(np.float64, (n, n_latent), elements=finite), label="latents")
    factors = draw(hnp.arrays(np.float64, (n, n_factor), elements=finite), label="factors")
    return latents, factors


def _maybe(metric, *args, **kwargs):
    """Run a metric; an all-constant factor set is the only allowed failure."""
    try:
        return metric(*args, **kwargs)
    except ValueError as error:
        assert "factors must vary" in str(error)
        return None


@given(pair=small_pairs(), n_bins=st.integers(2, 6))
def test_scores_finite_and_bounded_on_arbitrary_inputs(pair, n_bins):
    latents, factors = pair
    c = correlation_matrix(latents, factors)
    assert c.shape == (latents.shape[1], factors.shape[1])
    assert np.all(np.isfinite(c)) and np.all(np.abs(c) <= 1.0)
    np.testing.assert_array_equal(c[collapsed_latents(latents)], 0.0)

    details = _maybe(mig_details, latents, factors, n_bins=n_bins)
    if details is not None:
        for key in ("gap", "mutual_info", "normalized_mi", "factor_entropy"):
            assert np.all(np.isfinite(details[key])), key
        assert 0.0 <= details["mig"] <= 1.0
        assert np.all((details["normalized_mi"] >= 0) & (details["normalized_mi"] <= 1))
    score = _maybe(sap, latents, factors)
    assert score is None or 0.0 <= score <= 1.0
    scores = _maybe(dci, latents, factors)
    if scores is not None:
        assert set(scores) == {"disentanglement", "completeness", "informativeness"}
        assert all(0.0 <= v <= 1.0 for v in scores.values()), scores


@given(pair=small_pairs())
@example(pair=(np.array([[6.13429504e-161], [0.0], [0.0]]), np.array([[0.0], [1.0], [1.0]])))
def test_correlation_matrix_matches_corrcoef_where_defined(pair):
    latents, factors = pair
    c = correlation_matrix(latents, factors)

    def well_defined(x):
        scale = np.abs(x).max(axis=0)
        return x.std(axis=0) > 1e-6 * np.where(scale > 0, scale, 1.0)

    rows, cols = well_defined(latents), well_defined(factors)
    if rows.any() and cols.any():
        z, v = latents[:, rows], factors[:, cols]
        # Correlation does not depend on scale. Columns are scaled to a largest |value| of 1
        # first, so that np.corrcoef's squares do not underflow: for the example above (latent
        # 6e-161, 0, 0) it gave -0.99976 where the correlation is exactly -1 (found in CI).
        z, v = z / np.abs(z).max(axis=0), v / np.abs(v).max(axis=0)
        expected = np.corrcoef(z.T, v.T)[: z.shape[1], z.shape[1] :]
        np.testing.assert_allclose(c[np.ix_(rows, cols)], expected, rtol=0, atol=1e-9)


@given(
    values=hnp.arrays(np.float64, (12, 2), elements=finite),
    exponent=st.integers(-1070, 1010),
    n_bins=st.integers(2, 25),
)
@example(values=np.array([[-1.0, 0.0], [1.0, 1.0]] * 6), exponent=1023, n_bins=20)
def test_equal_width_codes_invariant_to_power_of_two_scaling(values, exponent, n_bins):
    # Multiplying by 2**k is exact while no value under- or overflows, so the
    # bin codes must not move, even when max - min exceeds the largest float.
    scaled = np.ldexp(values, exponent)
    magnitudes = np.abs(values[values != 0])
    if not np.all(np.isfinite(scaled)) or (
        magnitudes.size and np.abs(scaled[values != 0]).min() < np.finfo(float).tiny
    ):
        return  # not an exact rescaling
    np.testing.assert_array_equal(
        equal_width_codes(scaled, n_bins), equal_width_codes(values, n_bins)
    )
