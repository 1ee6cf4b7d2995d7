"""Exact statistics for repeated samples: Wilson intervals, one-sided Fisher tests for a drop, Holm's
step-down correction and a stratified suite-level test, combined into one family-wise gate.

Pure standard library (integer arithmetic where it can be exact): scipy is only the tests' oracle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

SUITE_WEIGHT = 0.5  # share of alpha spent on the suite test; the cases share the rest
METHOD = ("one-sided Fisher exact test per case and a one-sided Cochran-Mantel-Haenszel test with continuity "
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
    p_value: float  # one-sided Fisher: chance of a drop at least this large if nothing changed
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

    @property
    def is_suite_drop(self) -> bool:
        return self.suite_adjusted <= self.alpha

    @property
    def is_drop(self) -> bool:
        return self.is_suite_drop or any(case.is_drop for case in self.cases)


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


@lru_cache(maxsize=65536)
def fisher_drop_p(passes_a: int, n_a: int, passes_b: int, n_b: int) -> float:
    """One-sided Fisher exact p-value for "B passes less often than A".

    Given the total passes, A's passes are hypergeometric; the p-value is P(A's passes >= observed),
    summed in exact integers (scipy: fisher_exact([[a, n_a-a], [b, n_b-b]], alternative="greater")).
    """
    total_passes = passes_a + passes_b
    total = n_a + n_b
    if total == 0:
        return 1.0
    top = min(n_a, total_passes)
    tail = sum(math.comb(n_a, x) * math.comb(n_b, total_passes - x) for x in range(passes_a, top + 1))
    return min(1.0, tail / math.comb(total, total_passes))


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
    remaining = 1.0
    running = 0.0
    adjusted = [1.0] * m
    for i in order:
        running = max(running, min(1.0, p_values[i] * remaining / w[i]))
        adjusted[i] = running
        remaining -= w[i]
    return adjusted


def drop_verdict(cases: Sequence[CaseCounts], alpha: float = 0.05) -> DropVerdict:
    """Per-case Fisher p-values and the suite CMH p-value, corrected together with weighted Holm.

    The suite test gets half the family's weight so a small drop everywhere is caught; the cases share
    the other half. Cases sampled on one side only (new or removed) are left out.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie within (0, 1), got {alpha}")
    paired = [c for c in cases if c.n_a > 0 and c.n_b > 0]
    case_ps = [fisher_drop_p(c.passes_a, c.n_a, c.passes_b, c.n_b) for c in paired]
    suite_p = cmh_drop_p(paired)
    if not paired:
        return DropVerdict(cases=(), suite_p_value=1.0, suite_adjusted=1.0, alpha=alpha)
    case_weight = (1 - SUITE_WEIGHT) / len(paired)
    adjusted = holm_adjust([suite_p, *case_ps], [SUITE_WEIGHT] + [case_weight] * len(paired))
    tests = tuple(CaseTest(c.key, p, adj, adj <= alpha)
                  for c, p, adj in zip(paired, case_ps, adjusted[1:], strict=True))
    return DropVerdict(cases=tests, suite_p_value=suite_p, suite_adjusted=adjusted[0], alpha=alpha)
