"""The --max-cost guard: reserve an estimate before sending, settle it with the real cost after."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BudgetGuard:
    """Stops sending once spent + in-flight estimates would pass limit_usd."""

    limit_usd: float
    spent_usd: float = 0.0
    in_flight_usd: float = 0.0

    def try_reserve(self, estimate_usd: float) -> bool:
        if self.spent_usd + self.in_flight_usd + estimate_usd > self.limit_usd:
            return False
        self.in_flight_usd += estimate_usd
        return True

    def settle(self, estimate_usd: float, actual_usd: float | None) -> None:
        """An unknown actual cost is charged at its estimate: never as 0."""
        self.in_flight_usd -= estimate_usd
        self.spent_usd += actual_usd if actual_usd is not None else estimate_usd
