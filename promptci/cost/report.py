"""`promptci cost`: the ledger from a time grouped by day, prompt, model and/or run, and the daily spend
against budgets.daily_usd."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from promptci.cost.ledger import (
    CostRow,
    aggregate,
    check_dimensions,
    days_over_budget,
    parse_since,
    rows_to_json,
    top_spenders,
)
from promptci.project import Project, discover
from promptci.store import LedgerEntry, parse_iso
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
    day_start = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    with_whole_days = read_ledger(project, day_start.isoformat())
    entries = [e for e in with_whole_days if parse_iso(e.at) >= start]
    unknown = sorted({e.model for e in entries if e.status == "ok" and e.cost_usd is None})
    daily_usd = settings.budgets.daily_usd
    over = days_over_budget(with_whole_days, daily_usd) if daily_usd is not None else []
    top = tuple((dimension, tuple(top_spenders(with_whole_days, over[-1][0], dimension)))
                for dimension in SPENDER_DIMENSIONS) if over else ()
    return CostReport(
        since=start, dimensions=dimensions, rows=tuple(aggregate(entries, dimensions)),
        total=aggregate(entries, [])[0], unknown_price_models=tuple(unknown), daily_usd=settings.budgets.daily_usd,
        daily_spend=tuple(days_over_budget(with_whole_days, 0.0)), top_spenders=top,
    )


def read_ledger(project: Project, since: str) -> list[LedgerEntry]:
    if not has_store(project):  # nothing recorded yet: do not create the database just to read it
        return []
    with open_store(project, readonly=True) as store:
        return store.ledger(since=since)
