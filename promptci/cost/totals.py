"""The one rule for "cost unknown": a cost of None is unknown, never 0. Every place that sums costs goes
through sum_costs, and every place that prints one through reporting.stats.format_cost (money itself
through format_usd, here so that the client's messages need nothing from reporting)."""

from __future__ import annotations

import math
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


def format_usd(value: float) -> str:
    """The one money formatter: $1,234.50, $0.00312; a nonzero amount never reads as $0.00."""
    if value == 0:
        return "$0.00"
    if not math.isfinite(value):
        return f"${value}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    # Small amounts keep three significant digits however small: $0.00312, $0.0000150, $0.000000000001.
    decimals = 2 - math.floor(math.log10(abs(value)))
    digits = f"{value:.{decimals}f}".rstrip("0")
    whole, _, fraction = digits.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"
