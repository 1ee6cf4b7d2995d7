"""`promptci cost`: the ledger from a time grouped by day, prompt, model and/or run, and the daily spend
against budgets.daily_usd."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from promptci.cost.ledger import (
    CostRow,
    biggest,
    check_dimensions,
    group_order,
    over_budget,
    parse_since,
    row_from_totals,
    rows_to_json,
)
from promptci.project import Project, discover
from promptci.store import LedgerEntry, LedgerTotals, Store, Timings, merged_timings, summed
from promptci.storechoice import has_store, open_store

SPENDER_DIMENSIONS = ("prompt", "branch", "actor")
Group = tuple[str | None, ...]


@dataclass(frozen=True)
class CostReport:
    """The ledger from `since` grouped by `dimensions`, and the daily spend against budgets.daily_usd."""

    since: datetime
    dimensions: tuple[str, ...]
    rows: tuple[CostRow, ...]
    total: CostRow
    unknown_price_models: tuple[str, ...]
    daily_usd: float | None
    daily_spend: tuple[tuple[str, float], ...]  # (UTC day, known spend), whole days from since's day
    # the latest day over budgets.daily_usd: its biggest spenders by prompt, branch and actor (name, known spend)
    top_spenders: tuple[tuple[str, tuple[tuple[str | None, float], ...]], ...] = ()

    @property
    def is_empty(self) -> bool:
        return self.total.requests == 0

    @property
    def days_over(self) -> list[tuple[str, float]]:
        limit = self.daily_usd
        return [] if limit is None else [(day, spent) for day, spent in self.daily_spend if spent > limit]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat().replace("+00:00", "Z"), "by": list(self.dimensions),
            "rows": rows_to_json(self.rows), "total": rows_to_json([self.total])[0],
            "unknown_price_models": list(self.unknown_price_models), "daily_usd": self.daily_usd,
            "daily_spend": [{"day": day, "cost_usd": spent} for day, spent in self.daily_spend],
            "days_over_budget": [{"day": day, "cost_usd": spent} for day, spent in self.days_over],
            "top_spenders": {dimension: [{"name": name, "cost_usd": spent} for name, spent in top]
                             for dimension, top in self.top_spenders},
        }


def parse_dimensions(by: Sequence[str]) -> tuple[str, ...]:
    """`--by day --by model,run` -> ("day", "model", "run"); nothing given -> ("day",)."""
    names = [name.strip() for item in by for name in item.split(",") if name.strip()]
    check_dimensions(names)
    return tuple(dict.fromkeys(names)) or ("day",)


def cost_report(root: Path | None, by: Sequence[str] = ("day",), since: str = "7d",
                now: datetime | None = None) -> CostReport:
    project = discover(root)
    settings = project.settings()
    dimensions = parse_dimensions(by)
    start = parse_since(since, now or datetime.now(timezone.utc))
    if not has_store(project):  # nothing recorded yet: do not create the database just to read it
        return ledger_report(None, start, dimensions, settings.budgets.daily_usd)
    with open_store(project, readonly=True) as store:
        return ledger_report(store, start, dimensions, settings.budgets.daily_usd)


def ledger_report(store: Store | None, start: datetime, dimensions: tuple[str, ...],
                  daily_usd: float | None) -> CostReport:
    """The report summed by the store (a few GROUP BY queries; the percentiles from each group's timings counted per
    whole millisecond); the daily spend counts whole UTC days from start's day. No store: an empty report."""
    since = start.timestamp()
    day_start = datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()
    # one pass sums the groups and each day's spend: the groups by day too, then merged
    with_day = dimensions if "day" in dimensions else (*dimensions, "day")
    by_day, day_timings = store.ledger_summary(since, with_day) if store else ([], {})
    keep = [with_day.index(d) for d in dimensions]
    groups = merged(by_day, keep)
    timings = day_timings if with_day == dimensions else merged_timings(day_timings.items(), keep)
    spend = daily_units(by_day, with_day.index("day"))
    if store and day_start < since:  # the first day's spend is the whole day's, before `since` too
        first_day = start.date().isoformat()
        spend[first_day] = sum(units for _, units in store.ledger_spend(day_start, ["day"], day=first_day))
    spend_by_day = list(spend.items())
    over = over_budget(spend_by_day, daily_usd) if daily_usd is not None else []
    top = top_spenders_of(store, day_start, over[-1][0]) if over and store else ()
    rows, total = timed_rows(dimensions, groups, timings)
    return CostReport(
        since=start, dimensions=dimensions, rows=rows, total=total,
        unknown_price_models=tuple(sorted(store.ledger_unpriced_models(since))) if store else (),
        daily_usd=daily_usd, daily_spend=tuple(over_budget(spend_by_day, 0.0)), top_spenders=top,
    )


def timed_rows(dimensions: tuple[str, ...], groups: Sequence[LedgerTotals], timings: Mapping[Group, Timings]
               ) -> tuple[tuple[CostRow, ...], CostRow]:
    """The groups' CostRows sorted by their values, and the total row (its sums exact: whole numbers)."""
    rows = [row_from_totals(dimensions, group, *timings.get(group.group, ([], [])))
            for group in sorted(groups, key=lambda g: group_order(g.group))]
    return tuple(rows), row_from_totals((), summed((), groups), *merged_timings(timings.items(), [])[()])


def merged(groups: Sequence[LedgerTotals], keep: Sequence[int]) -> list[LedgerTotals]:
    """The groups merged by the values at the positions `keep` (every field is a whole number: the sums are exact)."""
    by_key: dict[tuple[str | None, ...], list[LedgerTotals]] = {}
    for group in groups:
        by_key.setdefault(tuple(group.group[i] for i in keep), []).append(group)
    return [members[0] if len(members) == 1 and len(keep) == len(members[0].group) else summed(key, members)
            for key, members in by_key.items()]


def daily_units(groups: Sequence[LedgerTotals], day_at: int) -> dict[str | None, int]:
    """Each UTC day's known spend in USD units, from groups that include the day."""
    spend: dict[str | None, int] = {}
    for group in groups:
        spend[group.group[day_at]] = spend.get(group.group[day_at], 0) + group.cost_units
    return spend


def top_spenders_of(store: Store, day_start: float, day: str
                    ) -> tuple[tuple[str, tuple[tuple[str | None, float], ...]], ...]:
    """The biggest spenders of one UTC day by prompt, branch and actor, from one GROUP BY over the three."""
    spend = store.ledger_spend(day_start, SPENDER_DIMENSIONS, day=day)
    tops = []
    for index, dimension in enumerate(SPENDER_DIMENSIONS):
        by_name: dict[str | None, int] = {}
        for group, units in spend:
            by_name[group[index]] = by_name.get(group[index], 0) + units
        tops.append((dimension, tuple(biggest(by_name.items()))))
    return tuple(tops)


def cost_tables(project: Project, since: str, dimensions: Sequence[str], now: datetime | None = None
                ) -> tuple[dict[str, tuple[CostRow, ...]], CostRow]:
    """The ledger from `since` ("7d", a date) grouped by each of `dimensions` in turn, summed by the store as `cost`
    sums it (the viewer's cost page), and the total."""
    start = parse_since(since, now or datetime.now(timezone.utc))
    if not has_store(project):  # nothing recorded yet: do not create the database just to read it
        reports = [ledger_report(None, start, (d,), None) for d in dimensions]
    else:
        with open_store(project, readonly=True) as store:
            reports = [ledger_report(store, start, (d,), None) for d in dimensions]
    return {d: report.rows for d, report in zip(dimensions, reports, strict=True)}, reports[0].total


def read_ledger(project: Project, since: str) -> list[LedgerEntry]:
    """The ledger rows themselves (a viewer bundle's cost page groups its chosen runs' rows in Python)."""
    if not has_store(project):  # nothing recorded yet: do not create the database just to read it
        return []
    with open_store(project, readonly=True) as store:
        return store.ledger(since=since)
