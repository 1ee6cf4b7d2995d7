"""Named metrics: comparators carrying `metric: NAME` (and `weight:`) aggregated per prompt x model.

Pure: the report wiring calls metric_table(cases, results). A result's scores follow its case's
comparators in order, which is how each score finds its spec's metric and weight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from promptci.types import Case, CaseResult


@dataclass(frozen=True)
class MetricValue:
    metric: str
    prompt: str
    model: str
    pass_rate: float  # weighted share of passing scores
    mean_score: float  # weighted mean of score values
    scores: int  # how many scores counted


def metric_table(cases: Iterable[Case], results: Iterable[CaseResult]) -> list[MetricValue]:
    """Every metric per (prompt, model), sorted by metric, prompt and model. Results without scores
    (errors, skipped) count towards no metric."""
    specs_by_case = {(case.location.file, case.prompt, case.id): case.comparators for case in cases}
    totals: dict[tuple[str, str, str], list[float]] = {}  # weight, weighted passes, weighted values, count
    for result in results:
        specs = specs_by_case.get((result.file, result.prompt, result.case_id), ())
        for spec, score in zip(specs, result.scores, strict=False):
            if spec.metric is None:
                continue
            total = totals.setdefault((spec.metric, result.prompt, result.model), [0.0, 0.0, 0.0, 0.0])
            total[0] += spec.weight
            total[1] += spec.weight * score.passed
            total[2] += spec.weight * score.value
            total[3] += 1
    return [
        MetricValue(metric, prompt, model, passes / weight if weight else 0.0, values / weight if weight else 0.0,
                    int(count))
        for (metric, prompt, model), (weight, passes, values, count) in sorted(totals.items())
    ]
