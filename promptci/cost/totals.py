"""The one rule for "cost unknown" lives in verdict/money.py (Money: a known sum and a count of unknown
amounts, and format_usd); this module keeps the ledger's rule of which requests are summed, and re-exports
the formatter for the client's messages."""

from __future__ import annotations

from promptci.verdict.money import Money, format_usd

__all__ = ["Money", "counts_toward_cost", "format_usd"]


def counts_toward_cost(cost: float | None, answered_fresh: bool) -> bool:
    """Whether a request's cost is summed: when it is known, or when a fresh (billed) answer has no price, so
    that one counts as unknown. An error or a cache hit without a price billed nothing."""
    return cost is not None or answered_fresh
