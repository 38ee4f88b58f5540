"""Known-answer tests of the array-level disentanglement metrics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from neurodelay.analysis._discretize import equal_width_codes
from neurodelay.analysis.disentanglement import (
    collapsed_latents,
    correlation_matrix,
    correlation_score,
    dci,
    matched_correlation_score,
    mig,
    mig_details,
    sap,
)
from neurodelay.analysis.mutual_info import _mig_from_discrete
from neurodelay.analysis.predictability import _dci_from_importance


N = 2000
N_FACTOR = 4
GRID = np.linspace(0.0, 1.0, 16)


def _factors(kind: str, seed: int = 0, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "continuous":
        return rng.uniform(0.0, 1.0, size=(n, N_FACTOR))
    if kind == "grid":
        return rng.choice(GRID, size=(n, N_FACTOR))
    raise AssertionError(kind)


KINDS = ["continuous", "grid"]


# --------------------------------------------------------------------------
# Acceptance: identity, random codes, duplicated codes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_identity_representation_scores_high(kind):
    factors = _factors(kind)
    latents = factors.copy()
    assert mig(latents, factors) >= 0.9
    scores = dci(latents, factors)
    assert scores["disentanglement"] >= 0.9
    assert scores["completeness"] >= 0.9
    assert scores["informativeness"] >= 0.9
    assert sap(latents, factors) >= 0.9


@pytest.mark.parametrize("kind", KINDS)
def test_affine_identity_scores_like_identity(kind):
    # Rescaling, shifting and flipping each code must not matter.
    factors = _factors(kind)
    latents = factors * np.array([3.0, -0.5, 10.0, -2.0]) + 7.0
    assert mig(latents, factors) >= 0.9
    assert dci(latents, factors)["disentanglement"] >= 0.9
    assert sap(latents, factors) >= 0.9


@pytest.mark.parametrize("kind", KINDS)
def test_independent_random_codes_score_low(kind):
    factors = _factors(kind)
    latents = np.random.default_rng(1).normal(size=(N, N_FACTOR))
    assert mig(latents, factors) <= 0.2
    scores = dci(latents, factors)
    assert scores["disentanglement"] <= 0.2
    assert scores["informativeness"] <= 0.2
    assert sap(latents, factors) <= 0.2


@pytest.mark.parametrize("n_factor", [4, 2])
def test_random_codes_score_low_for_every_draw(n_factor):
    # Not just one lucky draw: with importances from |coefficient| alone the
    # noise of an uninformative code looks peaked, and DCI disentanglement of
    # random codes exceeds 0.2 in a sizeable share of draws.
    factors = _factors("continuous")[:, :n_factor]
    for seed in range(20):
        latents = np.random.default_rng(100 + seed).normal(size=(N, 4))
        assert dci(latents, factors)["disentanglement"] <= 0.2, seed
        assert mig(latents, factors) <= 0.2, seed
        assert sap(latents, factors) <= 0.2, seed


def test_random_codes_many_latents_score_low():
    factors = _factors("continuous")
    latents = np.random.default_rng(2).normal(size=(N, 10))
    assert mig(latents, factors) <= 0.2
    assert dci(latents, factors)["disentanglement"] <= 0.2
    assert sap(latents, factors) <= 0.2


def test_one_duplicated_latent_zeroes_its_factor_gap():
    factors = _factors("continuous")
    latents = np.column_stack([factors[:, 0], factors])  # [f0, f0, f1, f2, f3]
    details = mig_details(latents, factors)
    assert details["gap"][0] == 0.0
    assert np.all(details["gap"][1:] >= 0.9)
    identity = mig(factors, factors)
    assert details["mig"] == pytest.approx(identity * 3 / 4, abs=0.01)


def test_every_factor_duplicated_gives_mig_below_0_1():
    factors = _factors("continuous")
    latents = np.concatenate([factors, factors], axis=1)
    assert mig(latents, factors) < 0.1
    assert mig(latents, factors) == pytest.approx(0.0, abs=1e-12)
    assert sap(latents, factors) == pytest.approx(0.0, abs=1e-12)


def test_every_factor_duplicated_halves_dci_completeness():
    # Ridge splits a duplicated code's weight evenly: each factor spreads over
    # 2 of 8 codes, so completeness = 1 - log(2) / log(8) = 2/3, while every
    # code still serves one factor (disentanglement ~ 1).
    factors = _factors("continuous")
    latents = np.concatenate([factors, factors], axis=1)
    scores = dci(latents, factors)
    assert scores["completeness"] == pytest.approx(1 - math.log(2) / math.log(8), abs=0.01)
    assert scores["disentanglement"] >= 0.99


# --------------------------------------------------------------------------
# MIG against a slow, direct implementation of its definition
# --------------------------------------------------------------------------


def _slow_bin(column: np.ndarray, n_bins: int) -> list[int]:
    lo, hi = float(column.min()), float(column.max())
    if hi == lo:
        return [0] * len(column)
    edges = [lo + (hi - lo) * b / n_bins for b in range(n_bins + 1)]
    codes = []
    for value in column:
        for b in range(n_bins):
            last = b == n_bins - 1
            if edges[b] <= value < edges[b + 1] or (last and value >= edges[b]):
                codes.append(b)
                break
        else:  # pragma: no cover - every value lies in [lo, hi]
            raise AssertionError(value)
    return codes


def _slow_mig(latents: np.ndarray, factors: np.ndarray, n_bins: int) -> tuple[float, np.ndarray]:
    n, n_latent = latents.shape
    n_factor = factors.shape[1]
    lat = [_slow_bin(latents[:, j], n_bins) for j in range(n_latent)]
    fac = []
    for k in range(n_factor):
        values = sorted(set(factors[:, k].tolist()))
        if len(values) <= n_bins:
            fac.append([values.index(x) for x in factors[:, k].tolist()])
        else:
            fac.append(_slow_bin(factors[:, k], n_bins))
    normalized = np.zeros((n_latent, n_factor))
    gaps = []
    for k in range(n_factor):
        states_b = sorted(set(fac[k]))
        p_b = {b: sum(1 for s in range(n) if fac[k][s] == b) / n for b in states_b}
        entropy = -sum(p * math.log(p) for p in p_b.values())
        if entropy == 0:
            continue
        for j in range(n_latent):
            states_a = sorted(set(lat[j]))
            p_a = {a: sum(1 for s in range(n) if lat[j][s] == a) / n for a in states_a}
            info = 0.0
            for a in states_a:
                for b in states_b:
                    p_ab = sum(1 for s in range(n) if lat[j][s] == a and fac[k][s] == b) / n
                    if p_ab > 0:
                        info += p_ab * math.log(p_ab / (p_a[a] * p_b[b]))
            normalized[j, k] = info / entropy
        column = sorted(normalized[:, k].tolist(), reverse=True)
        gaps.append(column[0] - (column[1] if n_latent > 1 else 0.0))
    return sum(gaps) / len(gaps), normalized


@pytest.mark.parametrize("n_bins", [5, 20])
def test_mig_matches_slow_definition(n_bins):
    rng = np.random.default_rng(3)
    n = 150
    factors = np.column_stack(
        [
            rng.choice(np.linspace(0, 1, 4), size=n),  # discrete: 4 values
            rng.uniform(size=n),  # continuous: binned
            rng.normal(size=n),
        ]
    )
    mixing = rng.normal(size=(3, 4))
    latents = factors @ mixing + 0.3 * rng.normal(size=(n, 4))
    latents[:, 3] = np.tanh(2 * factors[:, 1]) + 0.05 * rng.normal(size=n)
    expected, expected_normalized = _slow_mig(latents, factors, n_bins)
    details = mig_details(latents, factors, n_bins=n_bins)
    assert abs(details["mig"] - expected) <= 1e-9
    np.testing.assert_allclose(details["normalized_mi"], expected_normalized, rtol=0, atol=1e-9)
    assert abs(mig(latents, factors, n_bins=n_bins) - expected) <= 1e-9


def test_mig_from_discrete_known_answers():
    # Two exactly independent, balanced binary factors.
    i = np.arange(400)
    a, b = i % 2, (i // 2) % 2
    factors = np.column_stack([a, b])
    perfect = _mig_from_discrete(np.column_stack([a, b]), factors)
    assert perfect["mig"] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(perfect["factor_entropy"], [math.log(2)] * 2, atol=1e-12)
    np.testing.assert_allclose(perfect["mutual_info"], np.diag([math.log(2)] * 2), atol=1e-12)
    swapped = _mig_from_discrete(np.column_stack([b * 7 + 3, a]), factors)  # labels arbitrary
    assert swapped["mig"] == pytest.approx(1.0, abs=1e-12)
    duplicated = _mig_from_discrete(np.column_stack([a, a, b]), factors)
    np.testing.assert_allclose(duplicated["gap"], [0.0, 1.0], atol=1e-12)
    assert duplicated["mig"] == pytest.approx(0.5, abs=1e-12)
    # XOR carries no information about either factor on its own.
    xor = _mig_from_discrete(np.column_stack([a ^ b]), factors)
    assert xor["mig"] == pytest.approx(0.0, abs=1e-12)
    # One latent: the gap is the top score itself.
    single = _mig_from_discrete(a[:, None], factors[:, :1])
    assert single["mig"] == pytest.approx(1.0, abs=1e-12)


def test_mig_from_discrete_rejects_all_constant_factors():
    with pytest.raises(ValueError, match="every factor takes a single value"):
        _mig_from_discrete(np.zeros((10, 2), dtype=int), np.ones((10, 2), dtype=int))


def test_equal_width_bins_match_numpy_histogram():
    rng = np.random.default_rng(4)
    values = rng.normal(size=(1000, 3)) * [1.0, 50.0, 1e-3] + [0.0, -7.0, 2.0]
    codes = equal_width_codes(values, 20)
    for j in range(3):
        counts, _ = np.histogram(values[:, j], bins=20)
        np.testing.assert_array_equal(np.bincount(codes[:, j], minlength=20), counts)
    constant = equal_width_codes(np.full((5, 1), 3.0), 20)
    np.testing.assert_array_equal(constant, 0)


def test_factor_discrete_rule():
    rng = np.random.default_rng(5)
    n = 500
    factors = np.column_stack(
        [
            rng.integers(0, 20, size=n),  # 20 values: discrete at n_bins=20
            rng.integers(0, 21, size=n),  # 21 values: binned
            rng.uniform(size=n),
        ]
    ).astype(float)
    latents = rng.normal(size=(n, 2))
    auto = mig_details(latents, factors)
    np.testing.assert_array_equal(auto["factor_discrete"], [True, False, False])
    forced = mig_details(latents, factors, factor_discrete=[True, True, False])
    np.testing.assert_array_equal(forced["factor_discrete"], [True, True, False])
    assert mig_details(latents, factors, factor_discrete=False)["factor_discrete"].sum() == 0
    # A discrete factor with unevenly spaced values is used by its values: a
    # latent that tells the three values apart captures it fully, whereas
    # binning the factor would merge 0 and 0.01 into one bin.
    index = rng.integers(0, 3, size=n)
    skewed = np.array([0.0, 0.01, 1.0])[index][:, None]
    latent = index[:, None].astype(float)
    as_values = mig_details(latent, skewed)
    assert as_values["mig"] == pytest.approx(1.0, abs=1e-12)
    p = np.bincount(index) / n
    assert as_values["factor_entropy"][0] == pytest.approx(-(p * np.log(p)).sum(), abs=1e-12)
    binned = mig_details(latent, skewed, factor_discrete=False)
    p2 = np.array([p[0] + p[1], p[2]])
    assert binned["factor_entropy"][0] == pytest.approx(-(p2 * np.log(p2)).sum(), abs=1e-12)


def test_constant_factor_is_skipped():
    factors = _factors("continuous", n=600)
    latents = factors + 0.1 * np.random.default_rng(6).normal(size=factors.shape)
    padded = np.column_stack([factors, np.full(600, 0.5)])
    details = mig_details(latents, padded)
    np.testing.assert_array_equal(details["factor_used"], [True] * 4 + [False])
    assert details["gap"][4] == 0.0
    assert details["mig"] == pytest.approx(mig(latents, factors), abs=1e-12)
    assert sap(latents, padded) == pytest.approx(sap(latents, factors), abs=1e-12)
    with_constant = dci(latents, padded)
    without = dci(latents, factors)
    for key in without:
        assert with_constant[key] == pytest.approx(without[key], abs=1e-9)


# --------------------------------------------------------------------------
# Collapsed latents and the correlation analysis
# --------------------------------------------------------------------------


def test_correlation_matrix_identity_is_diagonal_ones():
    factors = _factors("continuous")
    c = correlation_matrix(factors, factors)
    assert c.shape == (4, 4)
    np.testing.assert_allclose(np.diag(c), 1.0, atol=1e-12)
    assert np.max(np.abs(c - np.diag(np.diag(c)))) < 0.1
    assert correlation_score(c) < 0.01


def test_correlation_matrix_matches_corrcoef():
    rng = np.random.default_rng(7)
    factors = rng.uniform(size=(300, 3))
    latents = factors @ rng.normal(size=(3, 5)) + rng.normal(size=(300, 5))
    c = correlation_matrix(latents, factors)
    expected = np.corrcoef(latents.T, factors.T)[:5, 5:]
    np.testing.assert_allclose(c, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("value", [0.0, 0.3, -1e6])
def test_collapsed_latent_gives_zeros_not_nan(value):
    factors = _factors("continuous", n=800)
    latents = np.column_stack([factors[:, :2], np.full(800, value), factors[:, 2:]])
    np.testing.assert_array_equal(collapsed_latents(latents), [False, False, True, False, False])
    c = correlation_matrix(latents, factors)
    assert np.all(np.isfinite(c))
    np.testing.assert_array_equal(c[2], 0.0)
    details = mig_details(latents, factors)
    np.testing.assert_array_equal(details["normalized_mi"][2], 0.0)
    # A zero-score extra latent changes no top-two gap.
    assert details["mig"] == pytest.approx(mig(factors, factors), abs=1e-12)
    assert sap(latents, factors) == pytest.approx(sap(factors, factors), abs=1e-12)
    scores = dci(latents, factors)
    assert all(np.isfinite(list(scores.values())))
    assert scores["disentanglement"] >= 0.9


def test_all_latents_collapsed_score_zero():
    factors = _factors("continuous", n=300)
    latents = np.ones((300, 3))
    assert np.all(correlation_matrix(latents, factors) == 0.0)
    assert mig(latents, factors) == 0.0
    assert sap(latents, factors) == 0.0
    assert dci(latents, factors) == {
        "disentanglement": 0.0,
        "completeness": 0.0,
        "informativeness": 0.0,
    }


def test_mig_ignores_the_jitter_of_a_collapsed_latent():
    # A latent that is collapsed by the documented rule (std <= 1e-10 * its
    # largest magnitude) but whose tiny jitter follows factor 0 exactly.
    # Correlation, SAP and DCI give it zero weight; MIG must too, instead of
    # binning the jitter and scoring it as a perfect copy of factor 0.
    rng = np.random.default_rng(21)
    factors = np.column_stack([rng.integers(0, 5, size=600), rng.uniform(size=600)]).astype(float)
    jitter = 1.0 + 1e-13 * factors[:, 0]
    latents = np.column_stack([factors, jitter])
    np.testing.assert_array_equal(collapsed_latents(latents), [False, False, True])
    np.testing.assert_array_equal(correlation_matrix(latents, factors)[2], 0.0)
    details = mig_details(latents, factors)
    np.testing.assert_array_equal(details["normalized_mi"][2], 0.0)
    assert details["mig"] == pytest.approx(mig(factors, factors), abs=1e-12)
    assert sap(latents, factors) == pytest.approx(sap(factors, factors), abs=1e-12)


def test_mig_skips_a_factor_constant_up_to_jitter_like_sap_and_dci():
    rng = np.random.default_rng(22)
    factors = rng.uniform(size=(600, 2))
    latents = factors + 0.05 * rng.normal(size=factors.shape)
    nearly_constant = 1.0 + 1e-13 * rng.normal(size=600)
    padded = np.column_stack([factors, nearly_constant])
    details = mig_details(latents, padded)
    np.testing.assert_array_equal(details["factor_used"], [True, True, False])
    assert details["gap"][2] == 0.0
    assert details["mig"] == pytest.approx(mig(latents, factors), abs=1e-12)
    assert sap(latents, padded) == pytest.approx(sap(latents, factors), abs=1e-12)
    for metric in (mig, sap, dci):
        with pytest.raises(ValueError, match=r"factors must vary"):
            metric(latents, nearly_constant[:, None])


def test_mig_bins_columns_whose_range_exceeds_the_largest_float():
    # max - min overflows to inf for a column from -1.5e308 to 1.5e308; the
    # codes must still follow floor((x - min) / (max - min) * n_bins).
    rng = np.random.default_rng(23)
    index = rng.integers(0, 5, size=500)
    wide = ((index / 2.0 - 1.0) * 1.5e308)[:, None]
    assert np.all(np.isfinite(wide))
    with np.errstate(all="raise"):
        codes = equal_width_codes(wide, 20)
    np.testing.assert_array_equal(codes[:, 0], np.minimum(index * 5, 19))
    np.testing.assert_array_equal(codes, equal_width_codes(wide / 4.0, 20))
    factors = np.column_stack([index, rng.uniform(size=500)]).astype(float)
    latents = np.column_stack([wide[:, 0], factors[:, 1]])
    assert mig(latents, factors) == pytest.approx(mig(factors, factors), abs=1e-12)
    assert mig(factors, np.column_stack([wide[:, 0], factors[:, 1]]), factor_discrete=False) == (
        pytest.approx(mig(factors, factors, factor_discrete=False), abs=1e-12)
    )


def test_collapsed_latents_tolerance():
    rng = np.random.default_rng(8)
    jitter = np.column_stack([1.0 + 1e-6 * rng.normal(size=100), rng.normal(size=100)])
    np.testing.assert_array_equal(collapsed_latents(jitter), [False, False])
    np.testing.assert_array_equal(collapsed_latents(jitter, tol=1e-3), [True, False])
    factors = (jitter[:, :1] - 1.0) * 1e6  # the jitter itself, magnified
    assert correlation_matrix(jitter, factors)[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert correlation_matrix(jitter, factors, tol=1e-3)[0, 0] == 0.0


@pytest.mark.parametrize("a", [0.5, 1.0, 2.0])
def test_sap_known_answer(a):
    # f and g are exactly orthogonal, zero-mean, unit-variance sequences, so
    # R^2(f | f + a g) = 1 / (1 + a^2) and R^2(f | g) = 0.
    i = np.arange(400)
    f = np.where(i % 2 == 0, 1.0, -1.0)
    g = np.where((i // 2) % 2 == 0, 1.0, -1.0)
    latents = np.column_stack([f + a * g, g])
    assert sap(latents, f[:, None]) == pytest.approx(1 / (1 + a**2), abs=1e-12)
    # Factor g: R^2(g | f + a g) = a^2 / (1 + a^2), R^2(g | g) = 1.
    assert sap(latents, g[:, None]) == pytest.approx(1 - a**2 / (1 + a**2), abs=1e-12)
    # A single latent: the score is the top R^2 itself.
    assert sap(latents[:, :1], f[:, None]) == pytest.approx(1 / (1 + a**2), abs=1e-12)


def test_correlation_score_known_values():
    swapped = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert correlation_score(swapped) == pytest.approx(1.0)  # 4 entries off by 1, / 4
    assert matched_correlation_score(swapped) == pytest.approx(0.0)
    rectangular = np.array([[1.0, 0.0], [0.0, -1.0], [0.5, 0.0]])
    # (C - I): [[0, 0], [0, -2], [0.5, 0]] -> (4 + 0.25) / 6 entries
    assert correlation_score(rectangular) == pytest.approx(4.25 / 6)
    assert matched_correlation_score(rectangular) == pytest.approx(0.25 / 6)


def test_matched_correlation_score_equals_brute_force():
    rng = np.random.default_rng(9)
    for n_latent, n_factor in [(3, 3), (4, 2), (4, 3)]:
        c = rng.uniform(-1, 1, size=(n_latent, n_factor))
        best = math.inf
        for order in itertools.permutations(range(n_latent)):
            for signs in itertools.product([1.0, -1.0], repeat=n_latent):
                best = min(best, correlation_score(c[list(order)] * np.array(signs)[:, None]))
        assert matched_correlation_score(c) == pytest.approx(best, abs=1e-12)


# --------------------------------------------------------------------------
# DCI core and determinism
# --------------------------------------------------------------------------


def test_dci_from_importance_known_values():
    identity = _dci_from_importance(np.eye(3))
    assert identity["disentanglement"] == pytest.approx(1.0)
    assert identity["completeness"] == pytest.approx(1.0)
    uniform = _dci_from_importance(np.ones((3, 4)))
    assert uniform["disentanglement"] == pytest.approx(0.0, abs=1e-12)
    assert uniform["completeness"] == pytest.approx(0.0, abs=1e-12)
    # One code serving 2 of 4 factors equally, another unused.
    r = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    scores = _dci_from_importance(r)
    assert scores["disentanglement"] == pytest.approx(0.5)  # 1 - log2/log4
    assert scores["completeness"] == pytest.approx(1.0)  # each factor on one code
    zero = _dci_from_importance(np.zeros((2, 2)))
    assert zero["disentanglement"] == 0.0 and zero["completeness"] == 0.0


def test_dci_is_seeded():
    factors = _factors("continuous", n=600)
    latents = factors @ np.random.default_rng(10).normal(size=(4, 4))
    assert dci(latents, factors, seed=3) == dci(latents, factors, seed=3)
    assert dci(latents, factors, seed=3) != dci(latents, factors, seed=4)


def test_torch_inputs_give_numpy_results():
    torch = pytest.importorskip("torch")
    factors = _factors("grid", n=500)
    latents = factors + 0.05 * np.random.default_rng(11).normal(size=factors.shape)
    tz, tv = torch.tensor(latents, requires_grad=True), torch.tensor(factors)
    assert mig(tz, tv) == mig(latents, factors)
    assert sap(tz, tv) == sap(latents, factors)
    assert dci(tz, tv) == dci(latents, factors)
    np.testing.assert_array_equal(correlation_matrix(tz, tv), correlation_matrix(latents, factors))
    half = torch.tensor(latents, dtype=torch.bfloat16)
    assert np.isfinite(mig(half, tv))


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------

GOOD = np.random.default_rng(12).uniform(size=(20, 2))

ALL_METRICS = [
    pytest.param(correlation_matrix, id="correlation_matrix"),
    pytest.param(mig, id="mig"),
    pytest.param(sap, id="sap"),
    pytest.param(dci, id="dci"),
]


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_mismatched_samples_rejected(metric):
    with pytest.raises(ValueError, match=r"same number of samples.*\(20, 2\).*\(19, 2\)"):
        metric(GOOD, GOOD[:19])


@pytest.mark.parametrize("metric", ALL_METRICS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_rejected(metric, bad):
    latents = GOOD.copy()
    latents[3, 1] = bad
    message = r"latents must contain only finite values.*row 3, column 1"
    with pytest.raises(ValueError, match=message):
        metric(latents, GOOD)
    with pytest.raises(ValueError, match=r"factors must contain only finite values"):
        metric(GOOD, latents)


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_too_few_samples_rejected(metric):
    with pytest.raises(ValueError, match=r"latents must have at least \d samples.*n_samples=1"):
        metric(GOOD[:1], GOOD[:1])


def test_dci_needs_three_samples():
    with pytest.raises(ValueError, match=r"at least 3 samples.*n_samples=2"):
        dci(GOOD[:2], GOOD[:2])


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_wrong_rank_rejected(metric):
    message = r"latents must be a 2-D array.*shape \(20,\).*reshape\(-1, 1\)"
    with pytest.raises(ValueError, match=message):
        metric(GOOD[:, 0], GOOD)
    with pytest.raises(ValueError, match=r"factors must be a 2-D array.*3-D"):
        metric(GOOD, GOOD[:, :, None])


def test_no_columns_and_bad_dtype_rejected():
    with pytest.raises(ValueError, match=r"factors must have at least one column.*\(20, 0\)"):
        mig(GOOD, np.zeros((20, 0)))
    with pytest.raises(ValueError, match=r"latents must hold real numbers.*<U"):
        sap(np.full((20, 2), "a"), GOOD)
    with pytest.raises(ValueError, match=r"latents must hold real numbers.*complex"):
        sap(GOOD + 1j, GOOD)


@pytest.mark.parametrize("n_bins", [1, 0, 2.5, True, "20"])
def test_bad_n_bins_rejected(n_bins):
    with pytest.raises(ValueError, match=r"n_bins must be an integer >= 2.*n_bins=20"):
        mig(GOOD, GOOD, n_bins=n_bins)


def test_bad_factor_discrete_rejected():
    message = r"factor_discrete must be None, a bool, or a sequence of 2 bools"
    with pytest.raises(ValueError, match=message):
        mig(GOOD, GOOD, factor_discrete=[True])
    with pytest.raises(ValueError, match=r"factor_discrete"):
        mig(GOOD, GOOD, factor_discrete=[1, 0])


@pytest.mark.parametrize("metric", [mig, sap, dci])
def test_all_constant_factors_rejected(metric):
    with pytest.raises(ValueError, match=r"factors must vary"):
        metric(GOOD, np.ones((20, 2)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_fraction": 0.0}, r"test_fraction must be a number in \(0, 1\); got 0.0"),
        ({"test_fraction": 1.5}, r"test_fraction must be a number in \(0, 1\)"),
        ({"ridge_alpha": 0.0}, r"ridge_alpha must be a finite number > 0; got 0.0"),
        ({"ridge_alpha": float("nan")}, r"ridge_alpha must be a finite number > 0"),
        ({"seed": -1}, r"seed must be a non-negative integer; got -1"),
        ({"seed": 1.5}, r"seed must be a non-negative integer"),
    ],
)
def test_bad_dci_options_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        dci(GOOD, GOOD, **kwargs)


def test_bad_correlation_inputs_rejected():
    with pytest.raises(ValueError, match=r"correlation must be a non-empty 2-D array.*\(3,\)"):
        correlation_score(np.ones(3))
    with pytest.raises(ValueError, match=r"correlation must contain only finite values.*1 NaN"):
        matched_correlation_score(np.array([[np.nan, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"tol must be a finite number >= 0; got -1"):
        collapsed_latents(GOOD, tol=-1)


def test_correlation_scores_reject_what_is_not_a_correlation():
    for fn in (correlation_score, matched_correlation_score):
        with pytest.raises(ValueError, match=r"correlations in \[-1, 1\].*row 0, column 1: 5.0"):
            fn(np.array([[1.0, 5.0]]))  # was 8.0
        with pytest.raises(ValueError, match=r"correlation must be a 2-D array of numbers"):
            fn([["a", "b"]])
