"""The --max-cost guard: hold a request's worst case while it is in flight, settle it on its real cost after.

What may be in flight is bounded, so answers longer than any estimate cannot carry the spend past the budget:
a request goes when the spend, what is held for the requests in flight and its own worst case fit the budget.
A request whose worst case is unknown (no max_tokens, no known maximum output of its model) goes alone, when
nothing else is in flight and its estimate fits. Either way the spend passes the budget by at most one
request's worst case. One guard serves a whole command (both sides of a diff, every step of a bisect): it
counts what every run of the command spent, and a run that sets a budget lowers its limit to that budget."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hold:
    """What a request in flight holds of the budget until it settles."""

    amount_usd: float


@dataclass
class BudgetGuard:
    """Stops sending once a request could take the spend past limit_usd (see the module docstring); with no
    limit it only counts."""

    limit_usd: float | None
    spent_usd: float = 0.0
    in_flight_usd: float = 0.0
    in_flight: int = 0
    _waiters: list[asyncio.Future[None]] = field(default_factory=list, repr=False)

    def limit_to(self, limit_usd: float | None) -> None:
        """A run's budget: the command's limit is the smallest budget any of its runs set."""
        if limit_usd is not None:
            self.limit_usd = limit_usd if self.limit_usd is None else min(self.limit_usd, limit_usd)

    async def reserve(self, expected_usd: float, worst_usd: float | None) -> Hold | None:
        """Waits while requests in flight may leave room; None when the budget cannot take this request."""
        while True:
            hold = self.try_reserve(expected_usd, worst_usd)
            if hold is not None or self.in_flight == 0 or not self.has_room(expected_usd):
                return hold
            await self._next_settle()

    def has_room(self, amount_usd: float, held_usd: float = 0.0) -> bool:
        return self.limit_usd is None or self.spent_usd + held_usd + amount_usd <= self.limit_usd

    def try_reserve(self, expected_usd: float, worst_usd: float | None) -> Hold | None:
        fits = worst_usd is not None and self.has_room(worst_usd, self.in_flight_usd)
        goes_alone = self.in_flight == 0 and self.has_room(expected_usd)
        if not (fits or goes_alone or self.limit_usd is None):
            return None
        hold = Hold(max(expected_usd, worst_usd) if worst_usd is not None else expected_usd)
        self.in_flight_usd += hold.amount_usd
        self.in_flight += 1
        return hold

    def settle(self, hold: Hold, actual_usd: float | None) -> None:
        """An unknown actual cost is charged at what was held: never as 0."""
        self.in_flight_usd = max(0.0, self.in_flight_usd - hold.amount_usd)
        self.in_flight -= 1
        self.spent_usd += actual_usd if actual_usd is not None else hold.amount_usd
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _next_settle(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter
