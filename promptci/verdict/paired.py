"""The latency and cost gates of `run --baseline-model`: a candidate's per-case figures against the baseline's
on the same cases, tested, not compared as two totals.

Per paired case the difference d = log(candidate / baseline) (the geometric mean over repeated samples): a
ratio, so a slow case and a fast case weigh the same. For two identical models the two sides of a case are
exchangeable, so d is symmetric about 0 whatever its distribution: the one-sided Wilcoxon signed-rank test
(stats.shift_bound) is exact there with no normality assumption. The gate fails when the increase is both
significant (the lower confidence bound of the shift is above 0) and larger than the tolerance (the
Hodges-Lehmann estimate of the ratio is above 1 + tolerance): chance alone fails it at most alpha of the time,
and a significant but negligible increase does not fail it. A case without the figure on either side is
missing evidence: the gate says so and gives no verdict (exit 3) unless it fails on the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from promptci.stats import ShiftBound, percentile, shift_bound
from promptci.types import CaseResult
from promptci.verdict.policy import Finding, Gate, no_verdict, regression

ALPHA = 0.05
TOLERANCE = {Gate.COST: 0.10, Gate.LATENCY: 0.20}
MIN_INCREASE = {Gate.COST: 0.0, Gate.LATENCY: 100.0}  # and at least this much (ms) on the median baseline case
FLOOR_USD = 1e-9  # a free answer against a priced one: a large but finite ratio
CaseKey = tuple[str, str, str]  # golden file, prompt, case id


def answer_cost(result: CaseResult) -> float | None:
    """What the answer costs at its model's price (a cache hit at what it would have cost)."""
    return result.saved_usd if result.cached else result.cost_usd


def measured_latency(result: CaseResult) -> float | None:
    """The latency measured when the answer was obtained (a cache hit keeps it); 0 or less is not a measure."""
    return result.latency_ms if result.latency_ms is not None and result.latency_ms > 0 else None


FIGURES: Mapping[Gate, Callable[[CaseResult], float | None]] = {Gate.COST: answer_cost,
                                                                 Gate.LATENCY: measured_latency}
WHAT = {Gate.COST: "price", Gate.LATENCY: "measured latency"}


@dataclass(frozen=True)
class PairedShift:
    """One gate for one candidate: the paired cases, the test, and the cases that had no figure."""

    gate: Gate
    candidate: str
    baseline: str
    bound: ShiftBound
    missing: tuple[str, ...]  # "file::case" of paired cases without the figure at either model
    baseline_median: float = 0.0  # the median baseline case's figure, for MIN_INCREASE

    @property
    def ratio(self) -> float | None:
        return math.exp(self.bound.estimate) if self.bound.pairs else None

    @property
    def lower_ratio(self) -> float:
        return math.exp(self.bound.lower) if self.bound.lower > -math.inf else 0.0

    @property
    def is_significant(self) -> bool:
        return self.bound.lower > 0

    @property
    def fails(self) -> bool:
        ratio = self.ratio
        return (self.is_significant and ratio is not None and ratio > 1 + TOLERANCE[self.gate]
                and self.baseline_median * (ratio - 1) > MIN_INCREASE[self.gate])

    def summary(self) -> str:
        """`latency x1.48 (95% lower bound x1.21, p = 0.0004, 20 paired cases)`."""
        if not self.bound.pairs:
            return f"{self.gate.value}: no paired case with a {WHAT[self.gate]}"
        return (f"{self.gate.value} x{self.ratio:.2f} ({(1 - ALPHA) * 100:.0f}% lower bound x{self.lower_ratio:.2f}, "
                f"p = {self.bound.p_value:.2g}, {self.bound.pairs} paired cases)")

    def findings(self) -> list[Finding]:
        found = []
        who = f"{self.candidate} vs {self.baseline}"
        if self.fails:
            floor = f" and +{MIN_INCREASE[self.gate]:.0f} ms" if MIN_INCREASE[self.gate] else ""
            found.append(regression(self.gate, f"{who}: {self.summary()}: significantly more than "
                                               f"+{TOLERANCE[self.gate] * 100:.0f}%{floor}", (self.candidate,)))
        if self.missing:
            shown = ", ".join(self.missing[:5]) + (" ..." if len(self.missing) > 5 else "")
            found.append(no_verdict(self.gate, f"{who}: {len(self.missing)} paired case(s) have no "
                                               f"{WHAT[self.gate]}, so the {self.gate.value} gate cannot be "
                                               f"checked ({shown})", self.missing))
        return found


def case_figure(samples: Sequence[CaseResult], figure: Callable[[CaseResult], float | None]) -> float | None:
    """The geometric mean of a case's samples that have an answer; None when one of them lacks the figure."""
    answered = [r for r in samples if r.status in ("passed", "failed")]
    values = [figure(r) for r in answered]
    if not values or any(v is None for v in values):
        return None
    return math.exp(math.fsum(math.log(max(v, FLOOR_USD)) for v in values if v is not None) / len(values))



def paired_shift(gate: Gate, candidate: str, baseline: str, base: Mapping[CaseKey, Sequence[CaseResult]],
                 other: Mapping[CaseKey, Sequence[CaseResult]], alpha: float = ALPHA) -> PairedShift:
    figure = FIGURES[gate]
    differences: list[float] = []
    baselines: list[float] = []
    missing: list[str] = []
    for key in (k for k in base if k in other):
        if not any(r.status in ("passed", "failed") for r in (*base[key], *other[key])):
            continue  # errored or skipped on both: nothing was answered, the error gate speaks for it
        before, after = case_figure(base[key], figure), case_figure(other[key], figure)
        if before is None or after is None:
            missing.append(f"{key[0]}::{key[2]}")
        else:
            differences.append(math.log(max(after, FLOOR_USD) / max(before, FLOOR_USD)))
            baselines.append(before)
    return PairedShift(gate, candidate, baseline, shift_bound(differences, alpha), tuple(missing),
                       percentile(baselines, 50) or 0.0)
