"""stats.py against published tables, scipy as an oracle, and the issue's simulation of the gate."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp

from promptci.stats import (
    CaseCounts,
    boschloo_drop_p,
    cmh_drop_p,
    drop_verdict,
    fisher_drop_p,
    holm_adjust,
    percentile_of_counts,
    percentile_of_sorted,
    wilson_interval,
)

# Newcombe RG (1998), "Two-sided confidence intervals for the single proportion: comparison of seven
# methods", Statistics in Medicine 17:857-872, Table II, method 3 (Wilson score, no continuity correction).
NEWCOMBE_WILSON = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("passes", "n", "low", "high"), NEWCOMBE_WILSON)
def test_wilson_matches_newcombe_table(passes: int, n: int, low: float, high: float) -> None:
    interval = wilson_interval(passes, n)
    assert interval.low == pytest.approx(low, abs=5e-5)
    assert interval.high == pytest.approx(high, abs=5e-5)


@given(st.integers(0, 60).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_scipy_binomtest(pair: tuple[int, int]) -> None:
    passes, n = pair
    if n == 0:
        assert wilson_interval(0, 0) == wilson_interval(0, 0)
        return
    expected = sp.binomtest(passes, n).proportion_ci(0.95, method="wilson")
    interval = wilson_interval(passes, n)
    assert interval.low == pytest.approx(expected.low, abs=1e-12)
    assert interval.high == pytest.approx(expected.high, abs=1e-12)
    assert 0 <= interval.low <= passes / n <= interval.high <= 1


def test_wilson_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.3"):
        wilson_interval(4, 3)


def test_fisher_lady_tasting_tea() -> None:
    # Fisher (1935), The Design of Experiments, section 2: 3 of 4 cups right, one-sided p = 17/70.
    assert fisher_drop_p(3, 4, 1, 4) == pytest.approx(17 / 70, abs=1e-15)


@given(st.integers(1, 20), st.integers(1, 20), st.data())
def test_fisher_matches_scipy(n_a: int, n_b: int, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, n_a))
    b = data.draw(st.integers(0, n_b))
    expected = sp.fisher_exact([[a, n_a - a], [b, n_b - b]], alternative="greater").pvalue
    assert fisher_drop_p(a, n_a, b, n_b) == pytest.approx(expected, rel=1e-9, abs=1e-14)


def test_fisher_sees_a_drop_not_a_rise() -> None:
    assert fisher_drop_p(10, 10, 2, 10) < 0.001
    assert fisher_drop_p(2, 10, 10, 10) == pytest.approx(1.0)


def test_boschloo_scipy_documented_example() -> None:
    # scipy.stats.boschloo_exact docs, data of Saari et al. (2004), Human Resource Management 43(4): 74 of 117
    # professors and 31 of 63 scientists very satisfied; alternative="greater" gives statistic (the one-sided
    # Fisher p) 0.0483 and p-value 0.0355 as printed (truncated: 0.03556...).
    assert fisher_drop_p(74, 117, 31, 63) == pytest.approx(0.0483, abs=5e-5)
    assert boschloo_drop_p(74, 117, 31, 63) == pytest.approx(0.0355, abs=1e-4)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 15), st.integers(1, 15), st.data())
def test_boschloo_matches_scipy_and_never_exceeds_fisher(n_a: int, n_b: int, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, n_a))
    b = data.draw(st.integers(0, n_b))
    expected = sp.boschloo_exact([[a, b], [n_a - a, n_b - b]], alternative="greater").pvalue
    mine = boschloo_drop_p(a, n_a, b, n_b)
    # Both take a supremum over the nuisance parameter numerically; hypothesis found tables where they part at
    # the 6th significant digit (8/12 vs 2/12: 0.0084430687 here, 0.0084430575 in scipy 1.17.1).
    assert mine == pytest.approx(expected, rel=1e-5, abs=1e-12)
    assert mine <= fisher_drop_p(a, n_a, b, n_b) + 1e-12


def test_boschloo_edges() -> None:
    assert boschloo_drop_p(0, 0, 3, 5) == 1.0
    assert boschloo_drop_p(0, 10, 10, 10) == pytest.approx(1.0)
    assert boschloo_drop_p(10, 10, 0, 10) < 1e-5


def exact_stratified_p(tables: list[CaseCounts]) -> float:
    """The exact conditional test CMH approximates: the sum of A's passes, each stratum hypergeometric."""
    total_dist = np.array([1.0])
    observed = 0
    low_total = 0
    for t in tables:
        passes = t.passes_a + t.passes_b
        low, high = max(0, passes - t.n_b), min(t.n_a, passes)
        pmf = sp.hypergeom(t.n_a + t.n_b, passes, t.n_a).pmf(np.arange(low, high + 1))
        total_dist = np.convolve(total_dist, pmf)
        observed += t.passes_a
        low_total += low
    return float(total_dist[observed - low_total:].sum())


def test_cmh_close_to_the_exact_stratified_test() -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        p = rng.uniform(0.4, 0.9, 12)
        a = rng.binomial(10, p)
        b = rng.binomial(10, np.clip(p - 0.1, 0, 1))
        tables = [CaseCounts(str(i), int(x), 10, int(y), 10) for i, (x, y) in enumerate(zip(a, b, strict=True))]
        exact = exact_stratified_p(tables)
        assert cmh_drop_p(tables) == pytest.approx(exact, abs=0.02)


def test_cmh_by_hand() -> None:
    # Two strata: A 8/10 vs B 5/10, and A 9/10 vs B 6/10.
    tables = [CaseCounts("x", 8, 10, 5, 10), CaseCounts("y", 9, 10, 6, 10)]
    excess = (8 - 10 * 13 / 20) + (9 - 10 * 15 / 20)
    variance = 10 * 10 * 13 * 7 / (400 * 19) + 10 * 10 * 15 * 5 / (400 * 19)
    expected = 1 - sp.norm.cdf((excess - 0.5) / math.sqrt(variance))
    assert cmh_drop_p(tables) == pytest.approx(expected, rel=1e-12)


def test_cmh_without_information_is_one() -> None:
    assert cmh_drop_p([CaseCounts("x", 10, 10, 10, 10)]) == 1.0
    assert cmh_drop_p([]) == 1.0


def test_holm_last_step_is_exact() -> None:
    # Found by hypothesis: subtracting weights one by one left 1 - 8/9 just under 1/9, so the last p of 1.0
    # came out 0.9999999999999984, below its own raw value.
    assert holm_adjust([0.0] * 8 + [1.0])[-1] == 1.0


def test_holm_by_hand() -> None:
    # sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> made monotone: 0.06
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([]) == []
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_holm_equal_weights_is_holm_and_never_below_raw(p_values: list[float]) -> None:
    plain = holm_adjust(p_values)
    assert holm_adjust(p_values, [3.0] * len(p_values)) == pytest.approx(plain)
    assert all(adj >= p - 1e-15 for adj, p in zip(plain, p_values, strict=True))
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    assert all(plain[i] <= plain[j] + 1e-15 for i, j in itertools.pairwise(order))


def test_weighted_holm_spends_weight() -> None:
    # Ordered by p/w (0.02, 0.08, 0.12): 0.01 * 1/0.5 = 0.02; then 0.02 * 0.5/0.25 = 0.04; then
    # 0.03 * 0.25/0.25 = 0.03, raised to 0.04 to keep the step-down monotone.
    assert holm_adjust([0.01, 0.03, 0.02], [0.5, 0.25, 0.25]) == pytest.approx([0.02, 0.04, 0.04])


def test_holm_rejects_bad_weights() -> None:
    with pytest.raises(ValueError, match="one positive weight"):
        holm_adjust([0.1, 0.2], [1.0])


def test_verdict_names_the_case_that_dropped() -> None:
    cases = [CaseCounts(f"c{i}", 9, 10, 9, 10) for i in range(10)] + [CaseCounts("broken", 10, 10, 0, 10)]
    verdict = drop_verdict(cases, alpha=0.05)
    assert verdict.is_drop
    assert [c.key for c in verdict.cases if c.is_drop] == ["broken"]
    assert "Holm" in verdict.method and "Boschloo" in verdict.method


def test_verdict_quiet_on_noise_and_ignores_one_sided_cases() -> None:
    cases = [CaseCounts("a", 7, 10, 5, 10), CaseCounts("b", 8, 10, 9, 10), CaseCounts("new", 0, 0, 0, 10)]
    verdict = drop_verdict(cases)
    assert not verdict.is_drop
    assert [c.key for c in verdict.cases] == ["a", "b"]


def test_verdict_without_pairs_and_bad_alpha() -> None:
    assert not drop_verdict([]).is_drop
    with pytest.raises(ValueError, match="alpha"):
        drop_verdict([], alpha=1.5)


def test_counts_checked() -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.n"):
        CaseCounts("x", 11, 10, 0, 10)


def _alarm_rate(rng: np.random.Generator, trials: int, drop: float, alpha: float = 0.05) -> float:
    cases, k = 20, 10
    alarms = 0
    for _ in range(trials):
        p = rng.uniform(0.5, 0.95, cases)
        a = rng.binomial(k, p)
        b = rng.binomial(k, np.clip(p - drop, 0, 1))
        counts = [CaseCounts(str(i), int(x), k, int(y), k) for i, (x, y) in enumerate(zip(a, b, strict=True))]
        alarms += drop_verdict(counts, alpha).is_drop
    return alarms / trials


def test_simulation_family_wise_false_alarms_stay_under_alpha() -> None:
    trials, alpha = 3000, 0.05
    rate = _alarm_rate(np.random.default_rng(20261201), trials, drop=0.0, alpha=alpha)
    assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / trials)


def test_simulation_catches_a_thirty_point_drop_everywhere() -> None:
    assert _alarm_rate(np.random.default_rng(8), 500, drop=0.30) >= 0.90


def test_simulation_naive_per_case_test_would_cry_wolf() -> None:
    # The reason for the correction: uncorrected p < 0.05 over 20 unchanged cases alarms far more often.
    rng = np.random.default_rng(3)
    naive = 0
    for _ in range(500):
        p = rng.uniform(0.5, 0.95, 20)
        a, b = rng.binomial(10, p), rng.binomial(10, p)
        naive += any(fisher_drop_p(int(x), 10, int(y), 10) < 0.05 for x, y in zip(a, b, strict=True))
    assert naive / 500 > 0.15


# Large K (issue 16, item 11): --repeat allows 1,000 samples a side; the exact tests must not overflow there.
# scipy 1.x, boschloo_exact([[a, b], [n_a - a, n_b - b]], alternative="greater").pvalue, about 8 s a table:
SCIPY_BOSCHLOO_K1000 = [
    (600, 1000, 560, 1000, 0.03570208509365519),
    (1000, 1000, 990, 1000, 0.0008403052845458629),
    (5, 1000, 0, 1000, 0.028659863772779407),
    (300, 1000, 300, 1000, 0.509452756151942),
]


@pytest.mark.parametrize(("a", "n_a", "b", "n_b", "expected"), SCIPY_BOSCHLOO_K1000)
def test_boschloo_at_k_1000_matches_scipy(a: int, n_a: int, b: int, n_b: int, expected: float) -> None:
    mine = boschloo_drop_p(a, n_a, b, n_b)
    assert mine == pytest.approx(expected, rel=1e-4)
    assert mine <= fisher_drop_p(a, n_a, b, n_b) + 1e-12


def test_boschloo_at_k_600_matches_scipy_live() -> None:
    expected = sp.boschloo_exact([[530, 500], [70, 100]], alternative="greater").pvalue
    assert boschloo_drop_p(530, 600, 500, 600) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(("a", "n_a", "b", "n_b"), [(600, 1000, 560, 1000), (1000, 1000, 0, 1000), (3, 700, 9, 650),
                                                   (520, 520, 519, 520)])
def test_fisher_at_large_k_matches_scipy(a: int, n_a: int, b: int, n_b: int) -> None:
    expected = sp.fisher_exact([[a, n_a - a], [b, n_b - b]], alternative="greater").pvalue
    assert fisher_drop_p(a, n_a, b, n_b) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_the_gate_works_over_the_whole_repeat_range() -> None:
    # --repeat 1000: a case at 990/1000 that drops to 950/1000 is a drop; one that stays put is not.
    cases = [CaseCounts("same", 990, 1000, 989, 1000), CaseCounts("worse", 990, 1000, 950, 1000)]
    verdict = drop_verdict(cases)
    assert [c.key for c in verdict.cases if c.is_drop] == ["worse"]
    assert not drop_verdict([CaseCounts("same", 520, 520, 519, 520)]).is_drop


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 2000).map(float), st.integers(1, 40)), max_size=30, unique_by=lambda p: p[0]),
       st.one_of(st.sampled_from([0, 50, 95, 100]), st.floats(0, 100, allow_nan=False)))
def test_percentile_of_counts_is_the_expanded_values_percentile_to_the_last_bit(
        counted: list[tuple[float, int]], q: float) -> None:
    counted.sort()
    expanded = [value for value, count in counted for _ in range(count)]
    assert percentile_of_counts(counted, q) == percentile_of_sorted(expanded, q)
    if expanded:
        assert percentile_of_counts(counted, q) == pytest.approx(float(np.percentile(expanded, q)), abs=1e-9)


def test_percentile_of_counts_of_nothing_and_a_bad_q() -> None:
    assert percentile_of_counts([], 50) is None
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile_of_counts([(1.0, 2)], 101)
