"""The one rule for a cost nobody knows: None is unknown, never 0, wherever costs are summed."""

from __future__ import annotations

from promptci.cost.totals import sum_costs
from promptci.types import CaseResult, Status, summarize


def test_sum_costs_counts_none_as_unknown_never_as_zero() -> None:
    assert sum_costs([0.5, None, 0.25, None]) == (0.75, 2)
    assert sum_costs([0.0]) == (0.0, 0)
    assert sum_costs([]) == (0.0, 0)
    assert sum_costs(iter([None])) == (0.0, 1)


def result(status: Status, cost: float | None, cached: bool = False) -> CaseResult:
    return CaseResult(prompt="p", case_id="c", file="goldens/p.yaml", line=1, model="local:m",
                      status=status, output="x", cost_usd=cost, cached=cached)


def test_a_run_summary_sums_known_costs_and_counts_answers_without_a_price() -> None:
    summary = summarize([result("passed", 0.5), result("failed", None), result("passed", None, cached=True),
                         result("error", None)])
    assert (summary.cost_usd, summary.cost_unknown) == (0.5, 1)
