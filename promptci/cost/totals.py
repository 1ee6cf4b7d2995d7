"""The one rule for "cost unknown": a cost of None is unknown, never 0. Every place that sums costs goes
through sum_costs, and every place that prints one through reporting.stats.format_cost."""

from __future__ import annotations

from collections.abc import Iterable


def is_known(cost: float | None) -> bool:
    return cost is not None


def counts_toward_cost(cost: float | None, answered_fresh: bool) -> bool:
    """Whether a request's cost is summed: when it is known, or when a fresh (billed) answer has no price, so
    that one counts as unknown. An error or a cache hit without a price billed nothing."""
    return cost is not None or answered_fresh


def sum_costs(costs: Iterable[float | None]) -> tuple[float, int]:
    """(sum of the known costs, how many were unknown). Callers pass only the costs that were billed
    (answered, not from the cache), so a count of unknown ones means answers with no price."""
    known = 0.0
    unknown = 0
    for cost in costs:
        if cost is None:
            unknown += 1
        else:
            known += cost
    return known, unknown
