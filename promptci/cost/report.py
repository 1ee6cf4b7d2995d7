"""`promptci cost`: the ledger from a time grouped by day, prompt, model and/or run, and the daily spend
against budgets.daily_usd."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from promptci.cost.ledger import (
    PERCENTILES,
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
from promptci.store import LedgerEntry, LedgerTotals, Store
from promptci.storechoice import has_store, open_store

SPENDER_DIMENSIONS = ("prompt", "branch", "actor")


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
    """The report summed by the store (a few small queries, whatever the size of the ledger); the daily spend
    counts whole UTC days from start's day. No store: an empty report."""
    since = start.timestamp()
    day_start = datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()
    groups = store.ledger_totals(since, dimensions) if store else []
    spend_by_day = store.ledger_spend(day_start, "day") if store else []
    over = over_budget(spend_by_day, daily_usd) if daily_usd is not None else []
    top = tuple((dimension, tuple(biggest(store.ledger_spend(day_start, dimension, day=over[-1][0]))))
                for dimension in SPENDER_DIMENSIONS) if over and store else ()
    return CostReport(
        since=start, dimensions=dimensions, rows=ranked_rows(store, since, dimensions, groups),
        total=ranked_rows(store, since, (), [summed(groups)])[0],
        unknown_price_models=tuple(sorted(store.ledger_unpriced_models(since))) if store else (),
        daily_usd=daily_usd, daily_spend=tuple(over_budget(spend_by_day, 0.0)), top_spenders=top,
    )


def ranked_rows(store: Store | None, since: float, dimensions: tuple[str, ...], groups: Sequence[LedgerTotals]
                ) -> tuple[CostRow, ...]:
    """CostRows of the groups, sorted by their values, with their latency and TTFT percentiles."""
    latency = store.ledger_ranked(since, dimensions, "latency_ms", PERCENTILES) if store and groups else {}
    ttft = store.ledger_ranked(since, dimensions, "ttft_ms", PERCENTILES) if store and groups else {}
    ordered = sorted(groups, key=lambda g: group_order(g.group))
    return tuple(row_from_totals(dimensions, g, latency.get(g.group), ttft.get(g.group)) for g in ordered)


def summed(groups: Sequence[LedgerTotals]) -> LedgerTotals:
    """The total of the groups (every field is a whole number, so the sum is exact)."""
    names = [f.name for f in fields(LedgerTotals) if f.name != "group"]
    return LedgerTotals((), *(sum(getattr(g, name) for g in groups) for name in names))


def read_ledger(project: Project, since: str) -> list[LedgerEntry]:
    """The ledger rows themselves (the viewer's cost page groups a few runs' rows in Python)."""
    if not has_store(project):  # nothing recorded yet: do not create the database just to read it
        return []
    with open_store(project, readonly=True) as store:
        return store.ledger(since=since)
