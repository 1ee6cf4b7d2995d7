"""Terminal tables for `promptci cost`, `promptci runs` and `promptci run --dry-run`.

Imported only by those commands, so rich is imported at the top. An unknown price prints as
"unknown", never as $0.00, which would read as free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich import box
from rich.table import Table
from rich.text import Text

from promptci.costreport import CostRow
from promptci.estimate import DEFAULT_OUTPUT_TOKENS, DryRunReport, DryRunRow
from promptci.reporting.stats import format_cost, format_ms, format_usd, printable
from promptci.reporting.terminal import make_console
from promptci.store import RunInfo


def _table(title: str) -> Table:
    return Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)


def _right(table: Table, *names: str) -> None:
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)


def _cost_text(text: str) -> Text:
    return Text(text, style="yellow" if "unknown" in text else "")


# promptci cost ----------------------------------------------------------------------------------

COST_METRICS = ("requests", "tokens in/out", "cost", "cache hits", "saved", "errors", "p50", "p95")


def cost_cells(row: CostRow) -> list[Text]:
    return [
        Text(f"{row.requests:,}"),
        Text(f"{row.input_tokens:,}/{row.output_tokens:,}"),
        _cost_text(format_cost(row.cost_usd, row.cost_unknown)),
        Text(f"{row.cache_hits:,}"),
        Text(format_usd(row.saved_usd) if row.cache_hits else "-"),
        Text(f"{row.errors:,}", style="red" if row.errors else ""),
        Text(format_ms(row.p50_latency_ms)),
        Text(format_ms(row.p95_latency_ms)),
    ]


def cost_table(rows: Sequence[CostRow], total: CostRow, dimensions: Sequence[str], title: str) -> Table:
    """One line per group, then a total line when there is more than one group."""
    table = _table(title)
    for dimension in dimensions:
        table.add_column(dimension, overflow="fold")
    _right(table, *COST_METRICS)
    for row in rows:
        names = [Text(printable(row.value(d) or "-")) for d in dimensions]
        table.add_row(*names, *cost_cells(row))
    if len(rows) > 1 and dimensions:
        labels = [Text("total", style="bold"), *(Text("") for _ in dimensions[1:])]
        table.add_row(*labels, *cost_cells(total), style="bold", end_section=True)
    return table


def print_cost(rows: Sequence[CostRow], total: CostRow, dimensions: Sequence[str], title: str,
               notes: Sequence[str] = (), stream: TextIO | None = None) -> None:
    console = make_console(stream)
    console.print(cost_table(rows, total, dimensions, title))
    for note in notes:
        console.print(Text("note: ", style="yellow") + Text(printable(note)), soft_wrap=True)


# promptci runs ----------------------------------------------------------------------------------

def run_state(info: RunInfo) -> str:
    if info.interrupted:
        return "interrupted"
    return "" if info.finished_at else "unfinished"


def commit_label(info: RunInfo) -> str:
    if not info.commit:
        return "-"
    return info.commit[:10] + ("+dirty" if info.dirty else "")


def runs_table(infos: Sequence[RunInfo]) -> Table:
    table = _table("Runs (newest first)")
    table.add_column("id", no_wrap=True)
    table.add_column("started (UTC)", no_wrap=True)
    table.add_column("commit", no_wrap=True)
    table.add_column("models", overflow="fold")
    _right(table, "passed", "failed", "errors", "skipped", "cost")
    table.add_column("state", no_wrap=True)
    for info in infos:
        s = info.summary
        table.add_row(
            Text(info.run_id), Text(info.started_at.replace("T", " ")[:19]), Text(commit_label(info)),
            Text(printable(", ".join(info.models))), Text(str(s.passed)),
            Text(str(s.failed), style="red" if s.failed else ""),
            Text(str(s.errors), style="magenta" if s.errors else ""), Text(str(s.skipped)),
            _cost_text(format_cost(s.cost_usd, s.cost_unknown)),
            Text(run_state(info), style="yellow"),
        )
    return table


def print_runs(infos: Sequence[RunInfo], stream: TextIO | None = None) -> None:
    make_console(stream).print(runs_table(infos))


# promptci run --dry-run -------------------------------------------------------------------------

def dry_run_cost(row: DryRunRow) -> str:
    if row.is_free:
        return "free (local)"
    if row.cost_usd is None:
        return "unknown price"
    return format_usd(row.cost_usd)


def dry_run_table(report: DryRunReport) -> Table:
    table = _table("Dry run: nothing was sent")
    table.add_column("prompt", overflow="fold")
    table.add_column("model", overflow="fold")
    _right(table, "cases", "requests", "cached", "input tokens", "est. output tokens", "est. cost")
    for row in report.rows:
        output = f"{row.output_tokens:,}" + ("" if row.is_output_bound else "*")
        table.add_row(
            Text(printable(row.prompt)), Text(printable(row.model)), Text(f"{row.cases:,}"),
            Text(f"{row.requests:,}"), Text(f"{row.cached:,}"), Text(f"{row.input_tokens:,}"), Text(output),
            _cost_text(dry_run_cost(row)),
        )
    unknown = report.unknown_price_models
    total_cost = format_usd(report.cost_usd) + (f" + {len(unknown)} unknown" if unknown else "")
    table.add_row(
        Text("total", style="bold"), Text(""), Text(f"{report.total('cases'):,}"),
        Text(f"{report.total('requests'):,}"), Text(f"{report.total('cached'):,}"),
        Text(f"{report.total('input_tokens'):,}"), Text(f"{report.total('output_tokens'):,}"),
        _cost_text(total_cost), style="bold",
    )
    return table


def dry_run_footer(report: DryRunReport) -> list[str]:
    methods = sorted(set().union(*(r.methods for r in report.rows)))
    lines = [f"input tokens counted by {', '.join(methods) or '-'} (cached and local requests cost nothing)",
             "est. output tokens: params.max_tokens per request, an upper bound (the model may stop earlier)"]
    if any(not r.is_output_bound for r in report.rows):
        lines.append(f"* no max_tokens in the prompt: {DEFAULT_OUTPUT_TOKENS} tokens a request assumed, not a bound")
    return lines


def print_dry_run(report: DryRunReport, stream: TextIO | None = None) -> None:
    console = make_console(stream)
    console.print(dry_run_table(report))
    for line in dry_run_footer(report):
        console.print(Text(line, style="dim"), soft_wrap=True)
    for note in (*report.notes, *report.problems):
        console.print(Text("note: ", style="yellow") + Text(printable(note)), soft_wrap=True)
