"""The one rule for a cost nobody knows: None is unknown, never 0, wherever costs are summed."""

from __future__ import annotations

from promptci.types import CaseResult, Status, summarize
from promptci.verdict.money import Money


def test_sum_costs_counts_none_as_unknown_never_as_zero() -> None:
    assert Money.of([0.5, None, 0.25, None]) == Money(0.75, 2)
    assert Money.of([0.0]) == Money(0.0, 0)
    assert Money.of([]) == Money(0.0, 0)
    assert Money.of(iter([None])) == Money(0.0, 1)
    assert Money.of([None]).format() == "unknown" and Money(1.5e-05, 1).format() == "$0.000015 + 1 unknown"


def result(status: Status, cost: float | None, cached: bool = False, output: str | None = "x") -> CaseResult:
    return CaseResult(prompt="p", case_id="c", file="goldens/p.yaml", line=1, model="local:m",
                      status=status, output=output, cost_usd=cost, cached=cached)


def test_a_run_summary_sums_known_costs_and_counts_answers_without_a_price() -> None:
    summary = summarize([result("passed", 0.5), result("failed", None), result("passed", None, cached=True),
                         result("error", None, output=None)])
    assert (summary.cost_usd, summary.cost_unknown) == (0.5, 1)
    # a comparator that raised after the model answered: that answer was billed, its price unknown
    assert summarize([result("error", None)]).cost_unknown == 1
