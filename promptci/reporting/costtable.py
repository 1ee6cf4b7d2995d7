"""Terminal tables for `promptci cost`, `promptci runs` and `promptci run --dry-run`.

Imported only by those commands, so rich is imported at the top. An unknown price prints as
"unknown", never as $0.00, which would read as free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich.text import Text

from promptci.cost.estimate import DEFAULT_OUTPUT_TOKENS, DryRunReport, DryRunRow
from promptci.cost.ledger import CostRow
from promptci.cost.totals import format_usd
from promptci.reporting.fit import Column, Sheet, print_fitted
from promptci.reporting.stats import format_cost, format_ms, printable
from promptci.reporting.terminal import make_console
from promptci.store import RunInfo


def _cost_text(text: str) -> Text:
    return Text(text, style="yellow" if "unknown" in text else "")


# promptci cost ----------------------------------------------------------------------------------

COST_METRICS = ("requests", "tokens in/out", "cost", "cache hits", "saved", "errors", "p50", "p95")
COST_DROP_FIRST = ("p95", "p50", "saved", "cache hits", "errors", "tokens in/out", "requests")


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


def cost_sheet(rows: Sequence[CostRow], total: CostRow, dimensions: Sequence[str], title: str) -> Sheet:
    """One line per group, then a total line when there is more than one group."""
    columns = (*(Column(d, is_name=True) for d in dimensions), *(Column(m) for m in COST_METRICS))
    cells = [(*(Text(printable(row.value(d) or "-")) for d in dimensions), *cost_cells(row)) for row in rows]
    bold: frozenset[int] = frozenset()
    if len(rows) > 1 and dimensions:
        cells.append((Text("total"), *(Text("") for _ in dimensions[1:]), *cost_cells(total)))
        bold = frozenset({len(cells) - 1})
    return Sheet(title, columns, tuple(cells), COST_DROP_FIRST, bold)


def print_cost(rows: Sequence[CostRow], total: CostRow, dimensions: Sequence[str], title: str,
               notes: Sequence[str] = (), stream: TextIO | None = None) -> None:
    console = make_console(stream)
    print_fitted(cost_sheet(rows, total, dimensions, title), console)
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


RUNS_DROP_FIRST = ("skipped", "errors", "commit", "cost", "state", "command")


def runs_sheet(infos: Sequence[RunInfo]) -> Sheet:
    columns = (Column("id", is_name=True), Column("started (UTC)", is_name=True), Column("command", is_name=True),
               Column("commit"),
               Column("models", is_name=True), *(Column(n) for n in ("passed", "failed", "errors", "skipped", "cost")),
               Column("state"))
    cells = []
    for info in infos:
        s = info.summary
        cells.append((
            Text(info.run_id), Text(info.started_at.replace("T", " ")[:19]), Text(printable(info.command or "-")),
            Text(commit_label(info)),
            Text(printable(", ".join(info.models))), Text(str(s.passed)),
            Text(str(s.failed), style="red" if s.failed else ""),
            Text(str(s.errors), style="magenta" if s.errors else ""), Text(str(s.skipped)),
            _cost_text(format_cost(s.cost_usd, s.cost_unknown)),
            Text(run_state(info), style="yellow"),
        ))
    return Sheet("Runs (newest first)", columns, tuple(cells), RUNS_DROP_FIRST)


def print_runs(infos: Sequence[RunInfo], stream: TextIO | None = None) -> None:
    console = make_console(stream)
    print_fitted(runs_sheet(infos), console)


# promptci run --dry-run -------------------------------------------------------------------------

def dry_run_cost(row: DryRunRow) -> str:
    if row.is_free:
        return "free (local)"
    if row.cost_usd is None:
        return "unknown price"
    return format_usd(row.cost_usd)


DRY_RUN_DROP_FIRST = ("cached", "requests", "cases", "max_tokens", "input tokens", "est. output tokens")


def dry_run_sheet(report: DryRunReport) -> Sheet:
    columns = (Column("prompt", is_name=True), Column("model", is_name=True),
               *(Column(n) for n in ("cases", "requests", "cached", "input tokens", "est. output tokens",
                                     "max_tokens", "est. cost")))
    cells = []
    for row in report.rows:
        output = f"{row.output_tokens:,}" + ("" if row.is_output_bound else "*")
        cells.append((
            Text(printable(row.prompt)), Text(printable(row.model)), Text(f"{row.cases:,}"),
            Text(f"{row.requests:,}"), Text(f"{row.cached:,}"), Text(f"{row.input_tokens:,}"), Text(output),
            Text("unset" if row.max_tokens is None else f"{row.max_tokens:,}"), _cost_text(dry_run_cost(row)),
        ))
    unknown = report.unknown_price_models
    total_cost = format_usd(report.cost_usd) + (f" + {len(unknown)} unknown" if unknown else "")
    cells.append((
        Text("total"), Text(""), Text(f"{report.total('cases'):,}"),
        Text(f"{report.total('requests'):,}"), Text(f"{report.total('cached'):,}"),
        Text(f"{report.total('input_tokens'):,}"), Text(f"{report.total('output_tokens'):,}"), Text(""),
        _cost_text(total_cost),
    ))
    return Sheet("Dry run: nothing was sent", columns, tuple(cells), DRY_RUN_DROP_FIRST, frozenset({len(cells) - 1}))


def dry_run_footer(report: DryRunReport) -> list[str]:
    methods = sorted(set().union(*(r.methods for r in report.rows)))
    lines = [f"input tokens counted by {', '.join(methods) or '-'} (cached and local requests cost nothing)",
             "est. output tokens: params.max_tokens per request, an upper bound (the model may stop earlier)"]
    if any(not r.is_output_bound for r in report.rows):
        lines.append(f"* no max_tokens in the prompt: {DEFAULT_OUTPUT_TOKENS} tokens a request assumed, not a bound")
    return lines


def print_dry_run(report: DryRunReport, stream: TextIO | None = None) -> None:
    console = make_console(stream)
    print_fitted(dry_run_sheet(report), console)
    for line in dry_run_footer(report):
        console.print(Text(line, style="dim"), soft_wrap=True)
    for note in (*report.notes, *report.problems):
        console.print(Text("note: ", style="yellow") + Text(printable(note)), soft_wrap=True)
