"""Money: a known amount plus how many amounts were unknown. The one rule for summing costs (ledger, runs,
diffs, gates) and the one formatter: an unknown cost is never 0 and a nonzero cost never prints as $0.00.

A leaf module (it imports nothing of promptci at run time) so that types.py and cost/ may use it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptci.types import CaseResult


@dataclass(frozen=True)
class Money:
    """`known` USD summed over the amounts that had a price, and `unknown` amounts that had none."""

    known: float = 0.0
    unknown: int = 0

    @classmethod
    def of(cls, amounts: Iterable[float | None]) -> Money:
        """Sum `amounts`; each None counts as one unknown, never as 0."""
        known = 0.0
        unknown = 0
        for amount in amounts:
            if amount is None:
                unknown += 1
            else:
                known += amount
        return cls(known, unknown)

    def __add__(self, other: Money) -> Money:
        return Money(self.known + other.known, self.unknown + other.unknown)

    @property
    def is_complete(self) -> bool:
        return self.unknown == 0

    @property
    def amount(self) -> float | None:
        """The total when every amount was known, else None (a gate cannot compare it)."""
        return self.known if self.is_complete else None

    def format(self) -> str:
        """`$0.0012`, `$1.20 + 2 unknown`, or `unknown` when nothing had a price."""
        if self.unknown and self.known == 0:
            return "unknown"
        text = format_usd(self.known)
        return f"{text} + {self.unknown} unknown" if self.unknown else text


def format_usd(value: float) -> str:
    """$1,234.50, $0.00312; a nonzero amount never reads as $0.00 (three significant digits however small)."""
    if value == 0:
        return "$0.00"
    if not math.isfinite(value):
        return f"${value}"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1:
        return f"{sign}${value:,.2f}"
    decimals = 2 - math.floor(math.log10(value))
    digits = f"{value:.{decimals}f}".rstrip("0")
    whole, _, fraction = digits.partition(".")
    return f"{sign}${whole}.{fraction.ljust(2, '0')}"


def has_answer(result: CaseResult) -> bool:
    """A model answered (so a price applies): not a skip, and an output or token counts came back."""
    if result.status == "skipped":
        return False
    return result.output is not None or result.input_tokens is not None or result.output_tokens is not None


def spent(results: Iterable[CaseResult]) -> Money:
    """What the results cost to obtain: known costs, a fresh answer without a price as unknown; a cache hit
    and an unanswered request billed nothing."""
    return Money.of(r.cost_usd for r in results
                    if r.cost_usd is not None or (has_answer(r) and not r.cached))


def priced(results: Iterable[CaseResult]) -> Money:
    """What the answers cost at their model's price, a cache hit at what it would have cost: the quantity a
    comparison of models or revisions needs (the cache's luck is not the model's price)."""
    return Money.of(r.saved_usd if r.cached else r.cost_usd for r in results if has_answer(r))
