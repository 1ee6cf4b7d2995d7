"""The words around a cost report: the period it covers, its notes, and the daily budget verdict of --check."""

from __future__ import annotations

from dataclasses import dataclass

from promptci.cost.report import CostReport
from promptci.cost.totals import format_usd


@dataclass(frozen=True)
class BudgetVerdict:
    """`cost --check`: whether some day spent more than budgets.daily_usd, and the message saying so."""

    is_over: bool
    message: str


def since_label(report: CostReport) -> str:
    return report.since.strftime("%Y-%m-%d %H:%M UTC")


def cost_notes(report: CostReport) -> list[str]:
    from promptci.cost.pricing import UNKNOWN_PRICE_HINT

    if not report.unknown_price_models:
        return []
    return [f"cost unknown for {', '.join(report.unknown_price_models)} (no price): {UNKNOWN_PRICE_HINT}"]


def daily_budget_verdict(report: CostReport, daily_usd: float) -> BudgetVerdict:
    """Name every day over the daily budget, or say the highest day stayed within it."""
    limit = format_usd(daily_usd)
    unpriced = (f" ({report.total.cost_unknown} request(s) with no price are not counted)"
                if report.total.cost_unknown else "")
    over = report.days_over
    if over:
        lines = [f"promptci cost --check: {len(over)} day(s) over the daily budget of {limit}{unpriced}:"]
        lines += [f"  {day}: spent {format_usd(spent)} ({format_usd(spent - daily_usd)} over)" for day, spent in over]
        return BudgetVerdict(is_over=True, message="\n".join(lines))
    highest = max(report.daily_spend, key=lambda item: item[1], default=None)
    peak = f"; highest {highest[0]}: {format_usd(highest[1])}" if highest else ""
    return BudgetVerdict(is_over=False, message=f"promptci cost --check: every day since {report.since.date()} stayed "
                                                f"within the daily budget of {limit}{peak}{unpriced}")
