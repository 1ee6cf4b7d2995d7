"""Exact statistics for repeated samples: Wilson intervals, one-sided Fisher and Boschloo tests for a drop,
Holm's step-down correction and a stratified suite-level test, combined into one family-wise gate.

Pure standard library (integer arithmetic where it can be exact): scipy is only the tests' oracle.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from statistics import NormalDist
from typing import Any

SUITE_WEIGHT = 0.5  # share of alpha spent on the suite test; the cases share the rest
METHOD = ("one-sided Boschloo exact test per case and a one-sided Cochran-Mantel-Haenszel test with continuity "
          "correction over all cases, in one weighted Holm step-down family (suite weight 1/2, each case "
          "1/(2m)) holding the family-wise false-alarm rate at alpha")


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class CaseCounts:
    """Passes out of samples for one case at side A (before) and side B (after)."""

    key: str
    passes_a: int
    n_a: int
    passes_b: int
    n_b: int

    def __post_init__(self) -> None:
        if not (0 <= self.passes_a <= self.n_a and 0 <= self.passes_b <= self.n_b):
            raise ValueError(f"{self.key}: passes must lie within 0..n, got {self}")


@dataclass(frozen=True)
class CaseTest:
    key: str
    p_value: float  # one-sided Boschloo: chance of a drop at least this large if nothing changed
    adjusted: float  # after the weighted Holm correction; compare with alpha
    is_drop: bool


@dataclass(frozen=True)
class DropVerdict:
    """The gate's answer: did B pass significantly less often than A, per case or across the suite?"""

    cases: tuple[CaseTest, ...]
    suite_p_value: float
    suite_adjusted: float
    alpha: float
    method: str = METHOD
    adjustment: str = "Holm-adjusted"  # how `adjusted` was adjusted: the reports' column header and suite line

    @property
    def is_suite_drop(self) -> bool:
        return self.suite_adjusted <= self.alpha

    @property
    def is_drop(self) -> bool:
        return self.is_suite_drop or any(case.is_drop for case in self.cases)

    def to_dict(self) -> dict[str, Any]:
        """The verdict as the JSON reports write it (diff `verdict`, the upgrade check's `sequential`)."""
        return {"is_drop": self.is_drop, "alpha": self.alpha, "method": self.method,
                "suite_p_value": self.suite_p_value, "suite_adjusted": self.suite_adjusted,
                "adjustment": self.adjustment, "is_suite_drop": self.is_suite_drop,
                "cases": [{"key": c.key, "p_value": c.p_value, "adjusted": c.adjusted, "is_drop": c.is_drop}
                          for c in self.cases]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DropVerdict:
        """A verdict to_dict wrote, back (a stored run's sequential tests); KeyError/TypeError/ValueError when
        it is not one."""
        cases = tuple(CaseTest(str(c["key"]), float(c["p_value"]), float(c["adjusted"]), bool(c["is_drop"]))
                      for c in data["cases"])
        return cls(cases, float(data["suite_p_value"]), float(data["suite_adjusted"]), float(data["alpha"]),
                   str(data["method"]), str(data["adjustment"]))


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default).

    None when there are no values. p50 of [1, 2, 3, 4] is 2.5; p95 of 1..20 is 19.05.
    """
    return percentile_of_sorted(sorted(values), q)


def percentile_of_sorted(ordered: Sequence[float], q: float) -> float | None:
    """percentile() of values already in ascending order (the ledger's million timings are sorted once)."""
    if not ordered:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def percentile_of_counts(counted: Sequence[tuple[float, int]], q: float) -> float | None:
    """percentile_of_sorted() of the values each repeated its count times, from (value, count) pairs in ascending
    order of value (a histogram): the same arithmetic on the same two values, so the same float to the last bit."""
    total = sum(count for _, count in counted)
    if total == 0:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    position = (total - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, total - 1)
    fraction = position - low
    low_value, high_value = value_at_rank(counted, low), value_at_rank(counted, high)
    return low_value + (high_value - low_value) * fraction


def value_at_rank(counted: Sequence[tuple[float, int]], rank: int) -> float:
    """The value at 0-based `rank` of the (value, count) pairs expanded in order."""
    seen = 0
    for value, count in counted:
        seen += count
        if rank < seen:
            return value
    raise IndexError(f"rank {rank} is past the {seen} values")


def wilson_interval(passes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a pass rate (Wilson 1927); [0, 1] when there are no samples."""
    if n == 0:
        return Interval(0.0, 1.0)
    if not 0 <= passes <= n:
        raise ValueError(f"passes must lie within 0..{n}, got {passes}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    rate = passes / n
    denominator = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if passes == 0 else max(0.0, centre - half)
    high = 1.0 if passes == n else min(1.0, centre + half)
    return Interval(low, high)


KAPPA_METHOD = ("Cohen's kappa with the large-sample standard error of Fleiss, Cohen & Everitt (1969), "
                "interval kappa +/- z*SE clipped to [-1, 1]")


@dataclass(frozen=True)
class Agreement:
    """A judge against human labels, one output each. Positive is pass: tp = both pass, fn = the human passed
    it and the judge failed it, fp = the judge passed what the human failed, tn = both fail."""

    tp: int
    fn: int
    fp: int
    tn: int

    def __post_init__(self) -> None:
        if min(self.tp, self.fn, self.fp, self.tn) < 0:
            raise ValueError(f"agreement counts must be >= 0, got {self}")

    @property
    def n(self) -> int:
        return self.tp + self.fn + self.fp + self.tn

    def tpr(self) -> tuple[float | None, Interval]:
        """Share of the human-passed outputs the judge passes (None without any), with its Wilson interval."""
        return _rate(self.tp, self.tp + self.fn)

    def tnr(self) -> tuple[float | None, Interval]:
        """Share of the human-failed outputs the judge fails, with its Wilson interval."""
        return _rate(self.tn, self.tn + self.fp)

    def kappa(self, confidence: float = 0.95) -> tuple[float | None, Interval | None]:
        """Cohen's kappa and its interval (KAPPA_METHOD); None when chance agreement is 1 (both raters gave
        one label to everything: kappa is undefined)."""
        n = self.n
        if n == 0:
            return None, None
        cells = [[self.tp / n, self.fn / n], [self.fp / n, self.tn / n]]  # rows: human, columns: judge
        rows = [sum(cells[i]) for i in range(2)]
        columns = [cells[0][j] + cells[1][j] for j in range(2)]
        observed = cells[0][0] + cells[1][1]
        chance = rows[0] * columns[0] + rows[1] * columns[1]
        if chance >= 1:
            return None, None
        kappa = (observed - chance) / (1 - chance)
        diagonal = sum(cells[i][i] * (1 - (rows[i] + columns[i]) * (1 - kappa)) ** 2 for i in range(2))
        off = (1 - kappa) ** 2 * sum(cells[i][j] * (columns[i] + rows[j]) ** 2
                                     for i in range(2) for j in range(2) if i != j)
        variance = max(0.0, diagonal + off - (kappa - chance * (1 - kappa)) ** 2) / (n * (1 - chance) ** 2)
        half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(variance)
        return kappa, Interval(max(-1.0, kappa - half), min(1.0, kappa + half))


def _rate(hits: int, n: int) -> tuple[float | None, Interval]:
    return (hits / n if n else None), wilson_interval(hits, n)


def fisher_drop_p(passes_a: int, n_a: int, passes_b: int, n_b: int) -> float:
    """One-sided Fisher exact p-value for "B passes less often than A".

    Given the total passes, A's passes are hypergeometric; the p-value is P(A's passes >= observed),
    summed in exact integers (scipy: fisher_exact([[a, n_a-a], [b, n_b-b]], alternative="greater")).
    """
    tail, ways = _fisher_tail(passes_a, n_a, passes_b, n_b)
    return min(1.0, tail / ways)  # int / int is correctly rounded, however large the integers


@lru_cache(maxsize=4096)
def _fisher_tail(passes_a: int, n_a: int, passes_b: int, n_b: int) -> tuple[int, int]:
    """(ways to draw tables at least as extreme, ways to draw any table) with this total: exact integers."""
    total = passes_a + passes_b
    high = min(n_a, total)
    term = tail = math.comb(n_a, high) * math.comb(n_b, total - high)
    for x in range(high - 1, passes_a - 1, -1):  # C(n_a, x) C(n_b, total - x) from its value at x + 1
        term = term * (x + 1) * (n_b - total + x + 1) // ((n_a - x) * (total - x))
        tail += term
    return tail, math.comb(n_a + n_b, total)


# Ties: a table whose Fisher p-value equals the observed one within this relative tolerance (scipy's) counts
# as at least as extreme. Floating sums decide the others; a table within NEAR of the observed p is decided in
# exact integers.
TIE = 1e-13
NEAR = 1e-9
_RESCALE = 1e200


@lru_cache(maxsize=4096)
def boschloo_drop_p(passes_a: int, n_a: int, passes_b: int, n_b: int) -> float:
    """One-sided Boschloo exact test for "B passes less often than A" (Boschloo 1970).

    An unconditional test that orders tables by their Fisher p-value and takes the largest chance of a
    table at least that extreme over the unknown common pass rate pi: never above its level, and at
    least as powerful as Fisher. That chance is sum_s W_s pi^s (1 - pi)^(N - s), W_s the ways to draw s
    passes in tables at least as extreme; W_s are sums of binomial products too large for floats past
    K ~ 500, so they are kept as logarithms. Its maximum over [0, 1] is found on a grid refined by
    golden-section search (scipy.stats.boschloo_exact searches the same function with shgo).
    """
    if n_a == 0 or n_b == 0:
        return 1.0
    tail, ways = _fisher_tail(passes_a, n_a, passes_b, n_b)
    if tail >= ways:  # every table is at least as extreme
        return 1.0
    observed = Fraction(tail, ways) * Fraction(1 + TIE)
    log_observed = math.log(tail) - math.log(ways) + math.log1p(TIE)
    log_weights = [_log_extreme_ways(total, n_a, n_b, observed, log_observed) for total in range(n_a + n_b + 1)]
    return min(1.0, _max_on_unit_interval(_tail_chance(log_weights)))


def _log_extreme_ways(total: int, n_a: int, n_b: int, observed: Fraction, log_observed: float) -> float:
    """log W_total: the ways to draw tables with `total` passes whose Fisher p-value is at most `observed`,
    -inf when there is none. The p-value P(X >= x | total) falls as x rises, so the extreme tables are those
    from the top x down to the first whose p-value passes `observed`: walked down with the ratio of
    consecutive binomial products, in floats rescaled to stay finite."""
    low, high = max(0, total - n_b), min(n_a, total)
    log_top = _log_comb(n_a, high) + _log_comb(n_b, total - high)
    # compare running sums (in units of the top term, times 10^200 per rescale) with the observed p's share
    log_limit = log_observed + _log_comb(n_a + n_b, total) - log_top
    scaled = 0.0
    term, tail, shift = 1.0, 0.0, 0.0
    limit = math.exp(log_limit) if log_limit < 700 else math.inf
    for x in range(high, low - 1, -1):
        if x < high:
            term *= (x + 1) * (n_b - total + x + 1) / ((n_a - x) * (total - x))  # from the product at x + 1
        tail += term
        if tail > limit * (1 - NEAR) and (tail > limit * (1 + NEAR) or not _is_extreme(x, total, n_a, n_b,
                                                                                        observed)):
            break
        scaled = tail
        if tail > _RESCALE:
            term, tail, scaled = term / _RESCALE, tail / _RESCALE, scaled / _RESCALE
            shift += math.log(_RESCALE)
            log_limit -= math.log(_RESCALE)
            limit = math.exp(log_limit) if log_limit < 700 else math.inf
    return math.log(scaled) + shift + log_top if scaled > 0 else -math.inf


def _is_extreme(x: int, total: int, n_a: int, n_b: int, observed: Fraction) -> bool:
    tail, ways = _fisher_tail(x, n_a, total - x, n_b)
    return Fraction(tail, ways) <= observed


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _tail_chance(log_weights: Sequence[float]) -> Callable[[float], float]:
    """pi -> sum_s W_s pi^s (1 - pi)^(N - s), each term formed in logarithms (it may be 10^600 x 10^-600)."""
    total = len(log_weights) - 1
    terms = [(s, total - s, w) for s, w in enumerate(log_weights) if w != -math.inf]
    at_ends = (math.exp(log_weights[0]), math.exp(log_weights[total]))

    def chance(pi: float) -> float:
        if pi <= 0 or pi >= 1:  # only the table with no pass (pi = 0) or no failure (pi = 1) can occur
            return at_ends[pi >= 1]
        log_pi, log_rest = math.log(pi), math.log1p(-pi)
        exponents = [w + s * log_pi + rest * log_rest for s, rest, w in terms]
        return sum(math.exp(e) for e in exponents if e > -745)  # positive terms: the sum loses no precision

    return chance


def _max_on_unit_interval(f: Callable[[float], float], points: int = 100) -> float:
    grid = [i / points for i in range(points + 1)]
    values = [f(x) for x in grid]
    best = max(range(len(grid)), key=values.__getitem__)
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, points)]
    ratio = (math.sqrt(5) - 1) / 2
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    f_left, f_right = f(left), f(right)
    for _ in range(60):  # the bracket shrinks to ~1e-13 of its width; one new point a step
        if f_left < f_right:
            low, left, f_left = left, right, f_right
            right = low + ratio * (high - low)
            f_right = f(right)
        else:
            high, right, f_right = right, left, f_left
            left = high - ratio * (high - low)
            f_left = f(left)
    return max(values[best], f((low + high) / 2))


def cmh_drop_p(tables: Sequence[CaseCounts]) -> float:
    """One-sided Cochran-Mantel-Haenszel test with continuity correction, stratified by case.

    Sums each case's excess of passes at A over its expectation under "no change" and compares it with
    the summed hypergeometric variance: a small drop on every case adds up. Cases whose outcome never
    varied carry no information (variance 0) and drop out. 1.0 when no case has any.
    """
    excess = variance = 0.0
    for t in tables:
        total = t.n_a + t.n_b
        passes = t.passes_a + t.passes_b
        if total < 2:
            continue
        excess += t.passes_a - t.n_a * passes / total
        variance += t.n_a * t.n_b * passes * (total - passes) / (total * total * (total - 1))
    if variance == 0:
        return 1.0
    statistic = (excess - 0.5) / math.sqrt(variance)
    return 1.0 - NormalDist().cdf(statistic)


def holm_adjust(p_values: Sequence[float], weights: Sequence[float] | None = None) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), optionally weighted.

    Reject hypothesis i at level alpha when its adjusted value <= alpha. Unweighted, the j-th smallest
    p (0-based) is multiplied by (m - j), then made monotone. Weighted, hypotheses are ordered by p/w
    and each p/w is multiplied by the weight still unrejected; weights are normalised to sum to 1.
    """
    m = len(p_values)
    if m == 0:
        return []
    raw = list(weights) if weights is not None else [1.0] * m
    if len(raw) != m or any(w <= 0 for w in raw):
        raise ValueError("holm_adjust needs one positive weight per p-value")
    scale = sum(raw)
    w = [x / scale for x in raw]
    order = sorted(range(m), key=lambda i: (p_values[i] / w[i], i))
    remaining = [0.0] * m  # weight not yet rejected at each step, summed from the end so the last is exact
    total = 0.0
    for step in range(m - 1, -1, -1):
        total += w[order[step]]
        remaining[step] = total
    running = 0.0
    adjusted = [1.0] * m
    for step, i in enumerate(order):
        running = max(running, min(1.0, p_values[i] * remaining[step] / w[i]))
        adjusted[i] = running
    return adjusted


def drop_verdict(cases: Sequence[CaseCounts], alpha: float = 0.05) -> DropVerdict:
    """Per-case Boschloo p-values and the suite CMH p-value, corrected together with weighted Holm.

    The suite test gets half the family's weight so a small drop everywhere is caught; the cases share
    the other half. Cases sampled on one side only (new or removed) are left out.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie within (0, 1), got {alpha}")
    paired = [c for c in cases if c.n_a > 0 and c.n_b > 0]
    case_ps = [boschloo_drop_p(c.passes_a, c.n_a, c.passes_b, c.n_b) for c in paired]
    suite_p = cmh_drop_p(paired)
    if not paired:
        return DropVerdict(cases=(), suite_p_value=1.0, suite_adjusted=1.0, alpha=alpha)
    case_weight = (1 - SUITE_WEIGHT) / len(paired)
    adjusted = holm_adjust([suite_p, *case_ps], [SUITE_WEIGHT] + [case_weight] * len(paired))
    tests = tuple(CaseTest(c.key, p, adj, adj <= alpha)
                  for c, p, adj in zip(paired, case_ps, adjusted[1:], strict=True))
    return DropVerdict(cases=tests, suite_p_value=suite_p, suite_adjusted=adjusted[0], alpha=alpha)


# Paired differences (the latency and cost gates) ---------------------------------------------------------

EXACT_SIGNED_RANK_MAX = 50  # past this many pairs (or with tied ranks) the normal approximation, as scipy does


@dataclass(frozen=True)
class ShiftBound:
    """A one-sided test that paired differences d_i lean above 0 (Wilcoxon signed-rank) and its matching
    confidence bound for the shift: `estimate` is the Hodges-Lehmann estimate (median of Walsh averages),
    `lower` the (1 - alpha) lower confidence bound, `p_value` the one-sided p of "no shift"."""

    pairs: int
    estimate: float
    lower: float
    p_value: float
    exact: bool


def _signed_rank_counts(n: int) -> list[int]:
    """counts[t]: how many of the 2^n sign patterns of ranks 1..n give a positive-rank sum of t."""
    counts = [1] + [0] * (n * (n + 1) // 2)
    top = 0
    for rank in range(1, n + 1):
        top += rank
        for t in range(top, rank - 1, -1):
            counts[t] += counts[t - rank]
    return counts


def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks (1-based) of values, ties sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def signed_rank_greater_p(differences: Sequence[float]) -> tuple[float, bool]:
    """One-sided Wilcoxon signed-rank p-value for "the differences lean above 0" (zeros dropped, Wilcoxon's
    way); (p, exact). Exact by counting sign patterns for up to EXACT_SIGNED_RANK_MAX untied pairs, else
    the normal approximation with tie and continuity corrections (scipy.stats.wilcoxon, zero_method="wilcox",
    alternative="greater", correction=True)."""
    nonzero = [d for d in differences if d != 0]
    n = len(nonzero)
    if n == 0:
        return 1.0, True
    ranks = _ranks([abs(d) for d in nonzero])
    positive = sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0)
    tied = len(set(ranks)) < n
    if n <= EXACT_SIGNED_RANK_MAX and not tied:
        counts = _signed_rank_counts(n)
        at_least = sum(counts[math.ceil(positive - 1e-9):])
        return min(1.0, at_least / 2**n), True
    mean = n * (n + 1) / 4
    ties = [ranks.count(r) for r in set(ranks)]
    variance = n * (n + 1) * (2 * n + 1) / 24 - sum(t**3 - t for t in ties) / 48
    if variance <= 0:
        return 1.0, False
    z = (positive - mean - 0.5) / math.sqrt(variance)
    return 1.0 - NormalDist().cdf(z), False


def _critical_positive_count(n: int, alpha: float) -> int:
    """The smallest t with P(T+ >= t) <= alpha under "no shift" for n untied pairs (T+ ranges 0..n(n+1)/2)."""
    total = n * (n + 1) // 2
    if n <= EXACT_SIGNED_RANK_MAX:
        counts = _signed_rank_counts(n)
        tail = 0
        for t in range(total, -1, -1):
            tail += counts[t]
            if tail / 2**n > alpha:
                return t + 1
        return 0
    z = NormalDist().inv_cdf(1 - alpha)
    return math.ceil(total / 2 + 0.5 + z * math.sqrt(n * (n + 1) * (2 * n + 1) / 24))


def shift_bound(differences: Sequence[float], alpha: float = 0.05) -> ShiftBound:
    """The signed-rank test of a positive shift and its lower confidence bound from the Walsh averages
    (Hodges and Lehmann 1963): the bound exceeds 0 exactly when the test rejects at alpha (untied case)."""
    values = list(differences)
    n = len(values)
    p_value, exact = signed_rank_greater_p(values)
    if n == 0:
        return ShiftBound(0, 0.0, -math.inf, 1.0, True)
    walsh = sorted((values[i] + values[j]) / 2 for i in range(n) for j in range(i, n))
    middle = len(walsh) // 2
    estimate = walsh[middle] if len(walsh) % 2 else (walsh[middle - 1] + walsh[middle]) / 2
    critical = _critical_positive_count(n, alpha)
    index = len(walsh) - critical  # 0-based: W_(N - t + 1) in 1-based order statistics
    lower = -math.inf if critical > len(walsh) or index < 0 else walsh[index]
    return ShiftBound(n, estimate, lower, p_value, exact)


def min_repeat_to_flag_one_case(cases: int, alpha: float = 0.05, largest: int = 64) -> int | None:
    """The smallest K at which one case going K/K -> 0/K, every other case unchanged at K/K, is flagged by
    drop_verdict (Boschloo per case, CMH over the cases, this very weighted Holm family) among `cases` cases;
    None when no K up to `largest` does."""
    for k in range(1, largest + 1):
        if single_drop_is_flagged(cases, k, alpha):
            return k
    return None


@lru_cache(maxsize=1024)
def single_drop_is_flagged(cases: int, k: int, alpha: float) -> bool:
    dropped = CaseCounts("dropped", k, k, 0, k)
    unchanged = [CaseCounts(f"same-{i}", k, k, k, k) for i in range(max(cases, 1) - 1)]
    return drop_verdict([dropped, *unchanged], alpha).is_drop


# What a fixed --repeat K can detect (issue 19: power you can see) ------------------------------------------

POWER_BASE_RATE = 0.9  # the pass rate at A the power lines assume
POWER_TARGET = 0.8


def case_drop_power(cases: int, k: int, drop: float, alpha: float = 0.05, base: float = POWER_BASE_RATE) -> float:
    """Exact chance that one case passing at `base` at A and `base - drop` at B, K samples a side, is flagged
    by its own Boschloo test at its first Holm step (p <= alpha x its weight 1/(2m)), among `cases` cases: a
    lower bound on drop_verdict's power for that case (later Holm steps and the suite test only add)."""
    level = alpha * (1 - SUITE_WEIGHT) / max(cases, 1)
    after = min(max(base - drop, 0.0), 1.0)
    chance_a = [math.comb(k, a) * base**a * (1 - base) ** (k - a) for a in range(k + 1)]
    chance_b = [math.comb(k, b) * after**b * (1 - after) ** (k - b) for b in range(k + 1)]
    return sum(chance_a[a] * chance_b[b] for a in range(k + 1) for b in range(a)
               if chance_a[a] * chance_b[b] > 1e-12 and boschloo_drop_p(a, k, b, k) <= level)


def smallest_case_drop(cases: int, k: int, alpha: float = 0.05, base: float = POWER_BASE_RATE,
                       power: float = POWER_TARGET) -> float | None:
    """The smallest drop (in steps of 0.05) that case_drop_power flags with `power`; None when not even a drop
    to 0 is."""
    steps = [round(0.05 * i, 2) for i in range(1, int(base / 0.05 + 1e-9) + 1)] + [base]
    return next((d for d in steps if case_drop_power(cases, k, d, alpha, base) >= power), None)


def suite_drop_power(cases: int, k: int, drop: float, alpha: float = 0.05, base: float = POWER_BASE_RATE,
                     trials: int = 400, seed: int = 19) -> float:
    """Simulated (fixed seed) chance that every case falling from `base` by `drop` is caught by the suite's
    CMH test at its first Holm step (p <= alpha x 1/2)."""
    draws = random.Random(seed)
    after = min(max(base - drop, 0.0), 1.0)

    def binomial(p: float) -> int:
        return sum(draws.random() < p for _ in range(k))

    caught = 0
    for _ in range(trials):
        tables = [CaseCounts(str(i), binomial(base), k, binomial(after), k) for i in range(cases)]
        caught += cmh_drop_p(tables) <= alpha * SUITE_WEIGHT
    return caught / trials


def smallest_suite_drop(cases: int, k: int, alpha: float = 0.05, base: float = POWER_BASE_RATE,
                        power: float = POWER_TARGET) -> float | None:
    """The smallest drop on every case (in steps of 0.01) that suite_drop_power catches with `power`, by
    bisection (power rises with the drop); None when not even a drop to 0 is."""
    low, high = 0, round(base * 100)
    if suite_drop_power(cases, k, high / 100, alpha, base) < power:
        return None
    while high - low > 1:
        middle = (low + high) // 2
        if suite_drop_power(cases, k, middle / 100, alpha, base) >= power:
            high = middle
        else:
            low = middle
    return high / 100


POWER_MAX_K = 50  # above, the exact per-case sum takes seconds: the line says it was not computed


@lru_cache(maxsize=256)
def power_line(cases: int, k: int, alpha: float = 0.05) -> str:
    """What --repeat K detects for this suite with 80% power, for cases passing 90% at A."""
    if k > POWER_MAX_K:
        return f"power: not computed above K = {POWER_MAX_K} ({cases} cases, K = {k} detects more than K = 50 does)"
    one = smallest_case_drop(cases, k, alpha)
    suite = smallest_suite_drop(cases, k, alpha)
    one_text = f"a drop of {one * 100:.0f} points on one case" if one is not None else "no drop on one case alone"
    suite_text = (f"a drop of {suite * 100:.0f} points on every case" if suite is not None else
                  "no drop across the suite")
    return (f"power: with {cases} cases, K = {k} and alpha {alpha:g}, for cases passing 90% at A, 80% power to flag "
            f"{one_text} (exact, Boschloo at its Holm share) and {suite_text} (CMH, simulated, seed 19)")
