"""Named metrics: comparators carrying `metric: NAME` (and `weight:`) aggregated per prompt x model, and the
gate's thresholds on them (`gate: {metrics: {f1: 0.8}}` in promptci.yaml).

Pure. Each score carries its comparator's metric and weight, so a stored run (`show`, `merge`, a JSON
report read back) gives the same table as the run that made it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from promptci.config import MetricThreshold
from promptci.types import CaseResult


@dataclass(frozen=True)
class MetricValue:
    metric: str
    prompt: str
    model: str
    pass_rate: float  # weighted share of passing scores
    mean_score: float  # weighted mean of score values: the metric's value, which the gate checks
    scores: int  # how many scores counted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MetricFailure:
    """A metric of one prompt x model under its gate threshold."""

    value: MetricValue
    threshold: MetricThreshold

    def __str__(self) -> str:
        return (f"metric {self.value.metric!r} is {self.value.mean_score:.3f} for {self.value.prompt} x "
                f"{self.value.model}, under its threshold {self.threshold.minimum:g} "
                f"(gate.metrics.{self.threshold.name} at {self.threshold.location})")


def metric_table(results: Iterable[CaseResult]) -> list[MetricValue]:
    """Every metric per (prompt, model), sorted by metric, prompt and model. Results without scores
    (errors, skipped) count towards no metric, nor do report-only scores (a judge without a fresh calibration:
    it cannot fail the run, through a metric either); a weight of 0 counts a score without moving the value."""
    totals: dict[tuple[str, str, str], list[float]] = {}  # weight, weighted passes, weighted values, count
    for result in results:
        for score in result.scores:
            if score.metric is None or not score.gating:
                continue
            total = totals.setdefault((score.metric, result.prompt, result.model), [0.0, 0.0, 0.0, 0.0])
            total[0] += score.weight
            total[1] += score.weight * score.passed
            total[2] += score.weight * score.value
            total[3] += 1
    return [
        MetricValue(metric, prompt, model, passes / weight if weight else 0.0, values / weight if weight else 0.0,
                    int(count))
        for (metric, prompt, model), (weight, passes, values, count) in sorted(totals.items())
    ]


def metric_failures(values: Sequence[MetricValue], thresholds: Sequence[MetricThreshold]) -> list[MetricFailure]:
    """Each prompt x model whose metric's value (weighted mean score) is under the gate's threshold."""
    by_name = {threshold.name: threshold for threshold in thresholds}
    return [MetricFailure(value, by_name[value.metric]) for value in values
            if value.metric in by_name and value.mean_score < by_name[value.metric].minimum]


def unmeasured_metrics(values: Sequence[MetricValue], thresholds: Sequence[MetricThreshold]) -> list[MetricThreshold]:
    """Gated metrics that no score of the run counts towards: a gate that cannot fail, worth a note."""
    measured = {value.metric for value in values}
    return [threshold for threshold in thresholds if threshold.name not in measured]
