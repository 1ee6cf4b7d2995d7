"""What the store remembers: `runs`, `show`, `merge` (shards into one stored run) and `cost` (the ledger)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from promptci.cli.common import (
    Command,
    GithubOption,
    OutputOption,
    QuietOption,
    ReportFormatOption,
    RootOption,
    StoreOption,
    VerboseOption,
    app,
)
from promptci.cli.edge import guarded, user_output_to_stderr
from promptci.cli.reports import print_gate, publish, reviewed, write_reports
from promptci.errors import ExitCode, PromptCIError

if TYPE_CHECKING:
    from promptci.cost.report import CostReport

CostFormats = ("table", "json", "csv")


@app.command(cls=Command)
@guarded
def cost(
    by: Annotated[list[str] | None, typer.Option(
        "--by", metavar="DIMENSIONS",
        help="Group by day, prompt, model, run, branch, actor: repeat or comma-separate (--by day,model).")] = None,
    since: Annotated[str, typer.Option(
        "--since", metavar="AGE|DATE", help="From 7d, 24h, 30m, 2w ago, or a date (2026-11-01, UTC).")] = "7d",
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table|json|csv")] = "table",
    check: Annotated[bool, typer.Option(
        "--check", help="Exit 1 when a UTC day in range spent more than budgets.daily_usd (whole days count).")]
    = False,
    github: GithubOption = True,
    root: RootOption = None,
    store: StoreOption = None,
) -> None:
    """The request ledger: tokens, cost, cache savings and latency, grouped (default --by day)."""
    from promptci.cost.report import cost_report  # not through promptci.api: that imports the whole run machinery
    from promptci.reporting.costsummary import daily_budget_verdict

    if fmt not in CostFormats:
        raise PromptCIError(f"--format {fmt!r} is not known for cost (known: {', '.join(CostFormats)})")
    report = cost_report(root, by or (), since)
    if check and report.daily_usd is None:
        raise PromptCIError("--check needs a daily budget: add `budgets: {daily_usd: 25.00}` to promptci.yaml")
    print_cost_report(report, fmt)
    if check and report.daily_usd is not None:
        verdict = daily_budget_verdict(report, report.daily_usd)
        typer.echo(verdict.message, err=True)
        if verdict.is_over:
            alert_over_budget(report, github)
        raise typer.Exit(code=int(ExitCode.REGRESSION if verdict.is_over else ExitCode.OK))


def alert_over_budget(report: CostReport, github: bool) -> None:
    """The GitHub annotation (under Actions) and the webhook POST naming the top spenders."""
    from promptci.cost.alert import alert_text, github_annotation, post_webhook
    from promptci.reporting.github import is_github_actions

    text = alert_text(report)
    if github and is_github_actions():
        typer.echo(github_annotation(text), err=True)
    problem = post_webhook(text)
    if problem is not None:
        typer.echo(f"warning: {problem}", err=True)


def print_cost_report(report: CostReport, fmt: str) -> None:
    import json

    from promptci.cost.ledger import render_csv
    from promptci.reporting.costsummary import cost_notes, since_label

    if report.is_empty:
        typer.echo(f"no requests recorded since {since_label(report)}", err=fmt != "table")
    if fmt == "json":
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    elif fmt == "csv":
        typer.echo(render_csv(report.rows), nl=False)
    elif not report.is_empty:
        from promptci.reporting.costtable import print_cost

        print_cost(report.rows, report.total, report.dimensions, f"Cost since {since_label(report)}",
                   cost_notes(report))
    if fmt != "table":
        for note in cost_notes(report):
            typer.echo(f"note: {note}", err=True)


@app.command(cls=Command)
@guarded
def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N", min=1, help="How many runs, newest first.")] = 20,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table|json")] = "table",
    root: RootOption = None,
    store: StoreOption = None,
) -> None:
    """The stored runs, newest first: id, start, commit, models, counts, cost."""
    import json

    from promptci import api

    if fmt not in ("table", "json"):
        raise PromptCIError(f"--format {fmt!r} is not known for runs (known: table, json)")
    infos = api.list_runs(root, limit)
    if fmt == "json":
        typer.echo(json.dumps([api.run_info_to_dict(info) for info in infos], indent=2, ensure_ascii=False))
    elif not infos:
        typer.echo("no runs stored yet: `promptci run` stores every run in .promptci/promptci.db")
    else:
        from promptci.reporting.costtable import print_runs

        print_runs(infos)


@app.command(cls=Command)
@guarded
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="A run id, a unique prefix of one, or `last`.")],
    fmt: ReportFormatOption = "table",
    output: OutputOption = None,
    quiet: QuietOption = 0,
    verbose: VerboseOption = 0,
    root: RootOption = None,
    store: StoreOption = None,
) -> None:
    """Show a stored run again, in any report format (exit 0: this shows, it does not gate)."""
    from promptci import api
    from promptci.reporting.targets import report_targets

    reports = report_targets(fmt, output)
    with user_output_to_stderr():  # reporter plugins are user code too
        run_record = api.show_run(root, run_id)
    # Fenced under GitHub Actions like `run`: the table shows model output. No annotations: show does not gate.
    source = api.discover(root).source
    write_reports(reviewed(run_record, source), fmt, reports, verbose - quiet, source, github=True)


@app.command(cls=Command)
@guarded
def merge(
    files: Annotated[list[Path], typer.Argument(
        metavar="FILES", help="JSON results of `run --shard I/N --format json`.", show_default=False)],
    fmt: ReportFormatOption = "table",
    output: OutputOption = None,
    allow_missing_shards: Annotated[bool, typer.Option(
        "--allow-missing-shards", help="Judge the shards given even when some of the run's shards are missing "
                                       "(default: a missing shard is no verdict, exit 3).")] = False,
    github: GithubOption = True,
    quiet: QuietOption = 0,
    verbose: VerboseOption = 0,
    root: RootOption = None,
    store: StoreOption = None,
) -> None:
    """Join the JSON results of shards into one stored run, report it and gate on it like `run`."""
    from promptci import api
    from promptci.reporting.targets import report_targets

    reports = report_targets(fmt, output)
    outcome = api.merge(root, files, allow_missing_shards=allow_missing_shards)
    publish(outcome.run, fmt, reports, verbose - quiet, api.discover(root).source, github)
    print_gate(outcome, fmt)
    raise typer.Exit(code=int(outcome.exit_code))
