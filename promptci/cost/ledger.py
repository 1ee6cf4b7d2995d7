"""`promptci cost`: the request ledger grouped by day, prompt, model and/or run, as plain rows.

Rendering as a table is the reporting layer's job; CSV and JSON rows are made here.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from promptci.cost.totals import Money, counts_toward_cost
from promptci.errors import PromptCIError
from promptci.stats import percentile, percentile_of_counts
from promptci.store import LedgerEntry, LedgerTotals, parse_iso, usd_of_units, usd_units

DIMENSIONS: tuple[str, ...] = ("day", "prompt", "model", "run", "branch", "actor")
METRICS: tuple[str, ...] = (
    "requests", "input_tokens", "output_tokens", "cached_input_tokens", "cost_usd", "cost_unknown",
    "saved_usd", "cache_hits", "errors", "judge_requests", "p50_latency_ms", "p95_latency_ms",
    "p50_ttft_ms", "p95_ttft_ms",
)
SINCE_FORMS = "a span like 7d, 24h, 30m or 2w, or a date like 2026-11-01"
SPAN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class CostRow:
    """One group of ledger rows. Tokens count fresh requests only (a cache hit bills nothing);
    cost_usd sums the known costs and cost_unknown counts answered requests with no price, so an
    unknown cost is never shown as 0. Latency percentiles are over fresh, successful requests (`cost` rounds each
    timing to whole milliseconds first: store.whole_ms)."""

    group: tuple[tuple[str, str | None], ...]  # (("day", "2026-11-27"), ("model", "openai:gpt-4o-mini"))
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown: int = 0
    saved_usd: float = 0.0
    cache_hits: int = 0
    errors: int = 0
    judge_requests: int = 0
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    p50_ttft_ms: float | None = None
    p95_ttft_ms: float | None = None

    def value(self, dimension: str) -> str | None:
        return dict(self.group).get(dimension)


def day_of(entry: LedgerEntry) -> str:
    return parse_iso(entry.at).astimezone(timezone.utc).date().isoformat()


KEY_OF: dict[str, Callable[[LedgerEntry], str | None]] = {
    "day": day_of,
    "prompt": lambda e: e.prompt,
    "model": lambda e: e.model,
    "run": lambda e: e.run_id,
    "branch": lambda e: e.branch,
    "actor": lambda e: e.actor,
}


def check_dimensions(by: Sequence[str]) -> None:
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown:
        raise PromptCIError(f"cannot group by {', '.join(unknown)}: use any of {', '.join(DIMENSIONS)}")


def aggregate(entries: Sequence[LedgerEntry], by: Sequence[str]) -> list[CostRow]:
    """Group entries by the given dimensions (none: one total row), sorted by the group's values."""
    check_dimensions(by)
    dimensions = tuple(dict.fromkeys(by))
    groups: dict[tuple[str | None, ...], list[LedgerEntry]] = {}
    for entry in entries:
        groups.setdefault(tuple(KEY_OF[d](entry) for d in dimensions), []).append(entry)
    if not dimensions and not groups:
        groups[()] = []
    ordered = sorted(groups.items(), key=lambda item: group_order(item[0]))
    return [summarize_group(tuple(zip(dimensions, values, strict=True)), members) for values, members in ordered]


def group_order(values: Sequence[str | None]) -> tuple[tuple[str, bool], ...]:
    """Groups sort by their values, a missing one (None) as "" and after a real ""."""
    return tuple((v or "", v is None) for v in values)


def known_usd(amounts: Iterable[float]) -> float:
    """The exact sum of dollar amounts, as the store sums them (store.usd_units): the same whatever their order."""
    return usd_of_units(sum(usd_units(amount) for amount in amounts))


def summarize_group(group: tuple[tuple[str, str | None], ...], entries: Iterable[LedgerEntry]) -> CostRow:
    totals = {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cached_input_tokens": 0,
              "cost_unknown": 0, "cache_hits": 0, "errors": 0, "judge_requests": 0}
    saved: list[float] = []
    costs: list[float | None] = []
    latencies: list[float] = []
    ttfts: list[float] = []
    for e in entries:
        totals["requests"] += 1
        totals["judge_requests"] += e.kind == "judge"
        if counts_toward_cost(e.cost_usd, e.status == "ok"):
            costs.append(e.cost_usd)
        if e.saved_usd is not None:
            saved.append(e.saved_usd)
        if e.status == "cached":
            totals["cache_hits"] += 1
            continue
        if e.status == "error":
            totals["errors"] += 1
        totals["input_tokens"] += e.input_tokens or 0
        totals["output_tokens"] += e.output_tokens or 0
        totals["cached_input_tokens"] += e.cached_input_tokens or 0
        if e.status == "ok":
            if e.latency_ms is not None:
                latencies.append(e.latency_ms)
            if e.ttft_ms is not None:
                ttfts.append(e.ttft_ms)
    cost = Money(known_usd(c for c in costs if c is not None), sum(c is None for c in costs))
    totals["cost_unknown"] = cost.unknown
    return CostRow(group=group, cost_usd=cost.known, saved_usd=known_usd(saved), **totals,
                   p50_latency_ms=percentile(latencies, 50), p95_latency_ms=percentile(latencies, 95),
                   p50_ttft_ms=percentile(ttfts, 50), p95_ttft_ms=percentile(ttfts, 95))


def parse_since(text: str, now: datetime) -> datetime:
    """"7d", "24h", "30m", "2w" before now, or a date ("2026-11-01", from its midnight UTC) or an
    ISO time; an aware UTC datetime. A naive `now` is taken as UTC."""
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    span = SPAN.match(text)
    if span:
        try:
            return (now - timedelta(**{SPAN_UNITS[span.group(2)]: int(span.group(1))})).astimezone(timezone.utc)
        except OverflowError:
            raise PromptCIError(f"--since {text!r} reaches back before the year 1; give a shorter span, "
                                "such as 365d, or a date") from None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            day = date.fromisoformat(text.strip())
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        return parse_iso(text.strip()).astimezone(timezone.utc)
    except ValueError:
        raise PromptCIError(f"--since {text!r} is not understood: give {SINCE_FORMS}") from None


def days_over_budget(entries: Iterable[LedgerEntry], daily_usd: float) -> list[tuple[str, float]]:
    """(day, known spend) for every UTC day whose spend passed daily_usd, in date order."""
    spend: dict[str, int] = {}
    for entry in entries:
        if entry.cost_usd:
            day = day_of(entry)
            spend[day] = spend.get(day, 0) + usd_units(entry.cost_usd)
    return over_budget(spend.items(), daily_usd)


def over_budget(spend: Iterable[tuple[str | None, int]], daily_usd: float) -> list[tuple[str, float]]:
    """(day, spend in dollars) of the days whose spend in USD units passed daily_usd, in date order."""
    days = sorted((day, usd_of_units(units)) for day, units in spend if day is not None)
    return [(day, usd) for day, usd in days if usd > daily_usd]


def top_spenders(entries: Iterable[LedgerEntry], day: str, dimension: str, limit: int = 3
                 ) -> list[tuple[str | None, float]]:
    """The `limit` biggest (name, known spend) by `dimension` on one UTC day, biggest first (then by name)."""
    spend: dict[str | None, int] = {}
    for entry in entries:
        if entry.cost_usd and day_of(entry) == day:
            name = KEY_OF[dimension](entry)
            spend[name] = spend.get(name, 0) + usd_units(entry.cost_usd)
    return biggest(spend.items(), limit)


def biggest(spend: Iterable[tuple[str | None, int]], limit: int = 3) -> list[tuple[str | None, float]]:
    """The `limit` biggest (name, spend in dollars) of (name, spend in USD units), biggest first (then by name)."""
    named = ((name, usd_of_units(units)) for name, units in spend)
    return sorted(named, key=lambda item: (-item[1], item[0] or "", item[0] is None))[:limit]


def row_from_totals(dimensions: Sequence[str], totals: LedgerTotals, latencies: Sequence[tuple[float, int]],
                    ttfts: Sequence[tuple[float, int]]) -> CostRow:
    """A CostRow from the store's sums and the group's timings in whole milliseconds (Store.ledger_summary:
    (value, count) in ascending order of value)."""
    return CostRow(
        group=tuple(zip(dimensions, totals.group, strict=True)), requests=totals.requests,
        input_tokens=totals.input_tokens, output_tokens=totals.output_tokens,
        cached_input_tokens=totals.cached_input_tokens, cost_usd=usd_of_units(totals.cost_units),
        cost_unknown=totals.cost_unknown, saved_usd=usd_of_units(totals.saved_units), cache_hits=totals.cache_hits,
        errors=totals.errors, judge_requests=totals.judge_requests,
        p50_latency_ms=percentile_of_counts(latencies, 50), p95_latency_ms=percentile_of_counts(latencies, 95),
        p50_ttft_ms=percentile_of_counts(ttfts, 50), p95_ttft_ms=percentile_of_counts(ttfts, 95))


def rows_to_json(rows: Sequence[CostRow]) -> list[dict[str, Any]]:
    """Each row as a flat dict: its dimensions first, then the metrics."""
    return [{**dict(row.group), **{m: getattr(row, m) for m in METRICS}} for row in rows]


def render_csv(rows: Sequence[CostRow]) -> str:
    dimensions = [d for d, _ in rows[0].group] if rows else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*dimensions, *METRICS])
    for record in rows_to_json(rows):
        writer.writerow(["" if record[c] is None else record[c] for c in (*dimensions, *METRICS)])
    return out.getvalue()
