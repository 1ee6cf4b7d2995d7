"""Budget comparators: latency (total and time to first token) and cost of the request.

A failing score's value is limit / measured (how far over the limit it went), clamped to [0, 1].
"""

from __future__ import annotations

from promptci.comparators._common import check_inputs, ignoring_expected, require_number
from promptci.errors import ComparatorError
from promptci.types import Case, Comparator, Completion, Score

COST_UNKNOWN = "cost unknown: add a price for the model under pricing: in promptci.yaml"


def _ratio(limit: float, measured: float) -> float:
    return 1.0 if measured <= limit else max(0.0, min(1.0, limit / measured))


def latency(*, max_ms: float | None = None, max_ttft_ms: float | None = None) -> Comparator:
    """Passes when the request took at most max_ms and its first token came within max_ttft_ms.

    A cached answer passes with the reason "cached: latency not measured": its timing says nothing
    about the model, and failing it would make a warm cache or --replay fail every latency gate.
    """
    if max_ms is None and max_ttft_ms is None:
        raise ComparatorError("comparator 'latency' needs max_ms, max_ttft_ms or both")
    limit_ms = None if max_ms is None else require_number("latency", "max_ms", max_ms, positive=True)
    limit_ttft = None if max_ttft_ms is None else require_number("latency", "max_ttft_ms", max_ttft_ms, positive=True)

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("latency", case, completion, needs_expected=False)
        if failed:
            return failed
        if completion.cached:
            return Score("latency", 1.0, True, "cached: latency not measured")
        value, passed, parts = 1.0, True, []
        if limit_ms is not None:
            ok = completion.latency_ms <= limit_ms
            value, passed = min(value, _ratio(limit_ms, completion.latency_ms)), passed and ok
            parts.append(f"latency {completion.latency_ms:.0f} ms {'<=' if ok else '>'} {limit_ms:g} ms")
        if limit_ttft is not None:
            if completion.ttft_ms is None:
                return Score("latency", 0.0, False, "no time to first token recorded (not streamed)")
            ok = completion.ttft_ms <= limit_ttft
            value, passed = min(value, _ratio(limit_ttft, completion.ttft_ms)), passed and ok
            parts.append(f"time to first token {completion.ttft_ms:.0f} ms {'<=' if ok else '>'} {limit_ttft:g} ms")
        return Score("latency", value, passed, "; ".join(parts))

    return ignoring_expected(score)


def cost(*, max_usd: float | None = None) -> Comparator:
    """Passes when the request cost at most max_usd. An unknown price fails: a gate that cannot be
    checked must not pass silently."""
    if max_usd is None:
        raise ComparatorError("comparator 'cost' needs option 'max_usd'")
    limit = require_number("cost", "max_usd", max_usd)

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("cost", case, completion, needs_expected=False)
        if failed:
            return failed
        spent = completion.cost_usd
        if spent is None:
            return Score("cost", 0.0, False, COST_UNKNOWN)
        if spent <= limit:
            return Score("cost", 1.0, True, f"cost ${spent:.6f} <= ${limit:g}")
        value = 0.0 if limit == 0 else _ratio(limit, spent)
        return Score("cost", value, False, f"cost ${spent:.6f} > ${limit:g}")

    return ignoring_expected(score)
