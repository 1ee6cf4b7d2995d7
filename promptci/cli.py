"""The command line: parse options, call promptci.api, map outcomes to exit codes.

The only module that prints errors. Heavy modules (SDKs, rich, jinja2) are imported inside commands
so `promptci --help` stays fast.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand

from promptci.cliedge import guarded, user_output_to_stderr
from promptci.errors import ExitCode, PromptCIError

app = typer.Typer(
    name="promptci",
    help="Prompts as code: render golden cases, run them against models, score, gate on regressions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # pretty tracebacks print local variables, which can hold a key
    rich_markup_mode=None,
)

RootOption = Annotated[Path | None, typer.Option(
    "--root", metavar="DIR", help="Project root (default: nearest folder with promptci.yaml).")]
ReportFormatOption = Annotated[str, typer.Option(
    "--format", metavar="FORMAT", help="table|json|junit|markdown|github|html")]
OutputOption = Annotated[list[str] | None, typer.Option(
    "--output", "-o", metavar="[FORMAT=]FILE",
    help="Write a report to FILE (format from .json/.xml/.md, or say FORMAT=FILE); repeatable.")]
QuietOption = Annotated[int, typer.Option("--quiet", "-q", count=True, show_default=False, help="Less output.")]
VerboseOption = Annotated[int, typer.Option("--verbose", "-v", count=True, show_default=False,
                                            help="More output (-v: also tracebacks of internal errors).")]
ShardOption = Annotated[str | None, typer.Option(
    "--shard", metavar="I/N", help="Run only shard I of N (e.g. 2/4); join with merge.")]
GithubOption = Annotated[bool, typer.Option(
    "--github/--no-github", help="Under GitHub Actions: annotations and the step summary (default on).")]
ChangedSinceOption = Annotated[str | None, typer.Option(
    "--changed-since", metavar="REV", help="Only cases that changes since git revision REV can affect.")]
MAX_REPEAT = 1000
MAX_CONCURRENCY = 512


class Command(TyperCommand):
    """An argument with a metavar shows just that in --help (PATHS, RUN), not also `<list[Path]>`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument) and param.metavar:
                param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]


def show_version(value: bool) -> None:
    if value:
        from promptci import __version__

        typer.echo(f"promptci {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=show_version,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Prompts as code: render golden cases, run them against models, score, gate on regressions."""


def parse_outputs(outputs: list[str]) -> list[tuple[str, Path]]:
    """`-o FORMAT=FILE`, or `-o FILE` whose suffix names the format (.json, .xml, .md)."""
    from promptci.reporting import FORMATS, format_for_suffix, known_suffixes

    parsed = []
    for item in outputs:
        fmt, sep, path = item.partition("=")
        if not sep:
            implied = format_for_suffix(Path(item))
            if implied is None:
                raise PromptCIError(
                    f"-o {item!r}: the suffix does not say which format to write (known suffixes: "
                    f"{', '.join(known_suffixes())}); name it as FORMAT=FILE, e.g. -o json={item} "
                    f"(formats: {', '.join(FORMATS)})")
            fmt, path = implied, item
        if fmt not in FORMATS:
            raise PromptCIError(f"-o {item!r}: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
        if not path:
            raise PromptCIError(f"-o {item!r}: no file after {fmt}= (write -o {fmt}=FILE)")
        check_report_target(Path(path), item)
        parsed.append((fmt, Path(path)))
    return parsed


def report_targets(fmt: str, outputs: list[str] | None) -> list[tuple[str, Path]]:
    """Check --format and parse the -o targets."""
    from promptci.reporting import FORMATS

    if fmt not in FORMATS:
        raise PromptCIError(f"--format {fmt!r} is not known (known: {', '.join(FORMATS)})")
    return parse_outputs(outputs or [])


def check_ranges(repeat: int, max_cost: float | None) -> None:
    if not 1 <= repeat <= MAX_REPEAT:
        raise PromptCIError(f"--repeat {repeat}: give a number of samples from 1 to {MAX_REPEAT}")
    if max_cost is not None and not (math.isfinite(max_cost) and max_cost >= 0):
        raise PromptCIError(f"--max-cost {max_cost}: give a finite amount of USD, 0 or more (e.g. --max-cost 2.50)")


@app.command(cls=Command)
@guarded
def run(
    paths: Annotated[list[Path] | None, typer.Argument(
        metavar="PATHS", help="Golden files or folders (default: all).", show_default=False)] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", metavar="MODEL", help="PROVIDER:MODEL to run (openai:gpt-4o-mini); repeat for a matrix.")]
    = None,
    keyword: Annotated[str | None, typer.Option(
        "-k", metavar="EXPR", help="Select cases by id, tag or prompt: 'smoke and not slow'.")] = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-j", metavar="N", min=1, max=MAX_CONCURRENCY, help="Requests in flight at once.")] = None,
    fmt: ReportFormatOption = "table",
    output: OutputOption = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Skip broken cases instead of stopping.")] = False,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Answer repeated requests from the cache.")]
    = True,
    replay: Annotated[bool, typer.Option("--replay", help="Offline: recorded responses only.")] = False,
    record: Annotated[bool, typer.Option("--record", help="Write responses to recordings/<prompt>.jsonl.")] = False,
    env: Annotated[str | None, typer.Option(
        "--env", metavar="NAME", help="Apply an environment from promptci.yaml.")] = None,
    max_cost: Annotated[float | None, typer.Option(
        "--max-cost", metavar="USD", help="Stop sending past this many USD.")] = None,
    repeat: Annotated[int, typer.Option(
        "--repeat", metavar="K", help=f"Run each case K times (1..{MAX_REPEAT}).")] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Estimate tokens and cost; send nothing.")]
    = False,
    shard: ShardOption = None,
    baseline_model: Annotated[str | None, typer.Option(
        "--baseline-model", metavar="MODEL",
        help="Upgrade check: exit 1 when another -m model is significantly worse than MODEL.")] = None,
    gate: Annotated[list[str] | None, typer.Option(
        "--gate", metavar="cost|latency",
        help="With --baseline-model, also fail on cost > +10% or p95 latency > +20% and +100 ms.")] = None,
    fail_on_drift: Annotated[bool, typer.Option(
        "--fail-on-drift", help="Exit 1 when a model resolves to another version than in its last run.")] = False,
    changed_since: ChangedSinceOption = None,
    github: GithubOption = True,
    quiet: QuietOption = 0,
    verbose: VerboseOption = 0,
    root: RootOption = None,
) -> None:
    """Run the suite (all goldens, or those under PATHS) and exit non-zero on a regression."""
    from promptci import api

    check_ranges(repeat, max_cost)
    reports = report_targets(fmt, output)
    options = api.RunOptions(
        root=root, paths=tuple(paths or ()), models=tuple(model or ()), keyword=keyword,
        concurrency=concurrency, keep_going=keep_going, use_cache=cache, replay=replay, record=record,
        environment=env, max_cost=max_cost, repeat=repeat, shard=parse_shard(shard) if shard else None,
        baseline_model=baseline_model, gates=tuple(gate or ()), fail_on_drift=fail_on_drift,
        changed_since=changed_since,
    )
    if dry_run:
        if reports:
            raise PromptCIError("--dry-run prints its estimate on stdout; -o is for run reports "
                                "(use --dry-run --format json > FILE)")
        if fmt not in ("table", "json"):
            raise PromptCIError(f"--dry-run writes --format table or json, not {fmt!r}")
        with user_output_to_stderr():
            estimate = api.dry_run(options)
        print_dry_run(estimate, fmt)
        raise typer.Exit(code=int(ExitCode.OK))
    # User code (python providers, comparators, plugins) may print: keep it off the report stream.
    with user_output_to_stderr():
        outcome = run_with_progress(options, verbose - quiet)
    print_selection(outcome.selection, changed_since, verbose - quiet)
    publish(outcome.run, fmt, reports, verbose - quiet, api.discover(root).source, github)
    print_gate(outcome)
    if outcome.not_stored is not None:  # the verdict is printed above; the run's record is incomplete: exit 4
        raise outcome.not_stored
    if not outcome.run.run_id:  # --changed-since selected nothing: nothing ran, nothing was stored
        for note in outcome.notes:
            typer.echo(f"promptci: {note}", err=True)
    raise typer.Exit(code=int(outcome.exit_code))


def print_gate(outcome) -> None:
    """On stderr, so a machine format on stdout stays whole: which metric failed the gate, and gated metrics
    the run never measured."""
    for failure in outcome.gate_failures:
        typer.echo(f"promptci: gate failed: {failure}", err=True)
    for note in outcome.gate_notes:
        typer.echo(f"promptci: note: {note}", err=True)

def print_selection(selection, since: str | None, verbosity: int) -> None:
    """-v with --changed-since: why each prompt was selected (on stderr: the report owns stdout)."""
    if selection is None or verbosity < 1:
        return
    from promptci.reporting.stats import printable

    if selection.everything:
        typer.echo(printable(f"changed since {since}: every case, as {selection.everything}"), err=True)
        return
    for prompt, reasons in sorted(selection.reasons.items()):
        typer.echo(printable(f"changed since {since}: {prompt}: {'; '.join(reasons)}"), err=True)


def parse_shard(text: str):
    from promptci.selection import parse_shard as parse

    return parse(text)


def is_github_actions() -> bool:
    from promptci.reporting.github import is_github_actions as check

    return check()


def publish(run_record, fmt: str, reports: list[tuple[str, Path]], verbosity: int, project_root: Path,
            github: bool) -> None:
    """The reports of a run or a merge; under GitHub Actions (unless --no-github) also the annotations and
    the step summary. JSON escapes newlines and the github format is commands: only the other formats can
    carry a line of model output that the runner would read as a command, so only they are fenced."""
    with github_commands_paused(github and fmt not in ("json", "github")):
        write_reports(run_record, fmt, reports, verbosity, project_root)
    if github and is_github_actions():
        from promptci.reporting.github import report_to_github

        report_to_github(run_record, project_root, None if fmt == "github" else sys.stderr)


@contextlib.contextmanager
def github_commands_paused(enabled: bool) -> Iterator[None]:
    """Under GitHub Actions the runner reads `::command::` lines from the log: the human report shows model
    output, so commands are stopped around it with a token the output cannot guess."""
    if not (enabled and is_github_actions()):
        yield
        return
    import secrets

    token = secrets.token_hex(16)
    sys.stdout.write(f"::stop-commands::{token}\n")
    sys.stdout.flush()
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stdout.write(f"::{token}::\n")
        sys.stdout.flush()


def run_with_progress(options, verbosity: int):
    from promptci import api
    from promptci.reporting.terminal import Progress

    progress = Progress(verbosity=verbosity)
    try:
        return api.run(options, on_start=progress.start, on_result=progress.advance, on_rate=progress.rate)
    finally:
        progress.stop()


def write_reports(run_record, fmt: str, reports: list[tuple[str, Path]], verbosity: int,
                  project_root: Path | None = None) -> None:
    """The report on stdout (the table, or --format), then every -o file; notes that a machine format
    on stdout cannot carry go to stderr."""
    from promptci.reporting import write_report

    def shaped(report_format: str):
        """GitHub resolves annotation paths from the repository root, which may sit above the project."""
        if report_format != "github" or project_root is None:
            return run_record
        from promptci.reporting.github import repository_prefix, with_repository_paths

        return with_repository_paths(run_record, repository_prefix(project_root))

    if fmt == "table":
        from promptci.reporting.terminal import print_report

        print_report(run_record, verbosity=verbosity)
    else:
        write_report(shaped(fmt), fmt, sys.stdout, verbosity=verbosity)
        from promptci.reporting.stats import run_notes

        for note in (*run_record.notes, *run_notes(run_record)):
            typer.echo(f"promptci: note: {note}", err=True)
    failures = []
    for report_format, path in reports:  # one target failing does not stop the others
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as stream:
                write_report(shaped(report_format), report_format, stream, verbosity=verbosity)
        except OSError as error:
            failures.append(report_write_error(path, report_format, error))
    if failures:
        raise max(failures, key=lambda failure: failure.exit_code)


USAGE_ERRNOS = frozenset({"EISDIR", "ENOTDIR", "EEXIST", "ENOENT", "ENAMETOOLONG", "EINVAL"})


def report_write_error(path: Path, report_format: str, error: OSError) -> PromptCIError:
    """A path that cannot be a file is a usage error (2); a disk or folder that refuses is the environment's (4)."""
    import errno

    from promptci.errors import EnvironmentFailure

    reason = error.strerror or str(error)
    if errno.errorcode.get(error.errno or 0) in USAGE_ERRNOS:
        return PromptCIError(f"-o {path}: cannot write the {report_format} report there ({reason}); "
                             "give a file path whose folders exist or can be created")
    return EnvironmentFailure(f"-o {path}: cannot write the {report_format} report ({reason}); free space or "
                              "make the folder writable, or write it elsewhere")


def check_report_target(path: Path, option: str) -> None:
    """Before a run spends anything: a target that is a folder, or under a file, can never be written."""
    if path.is_dir():
        raise PromptCIError(f"-o {option!r}: {path} is a folder; give a file path (e.g. {path / 'report.json'})")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise PromptCIError(f"-o {option!r}: {parent} is a file, so {path} cannot be created; give another "
                                    "path")
            return


@app.command(cls=Command)
@guarded
def init(
    root: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to scaffold (default: here).",
                                         show_default=False)] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Scaffold promptci.yaml, a prompt, a golden file and a GitHub Actions workflow."""
    from promptci.scaffold import scaffold_project

    created = scaffold_project(root, force=force)
    for path in created:
        typer.echo(f"created {path}")
    typer.echo("next: promptci run")


@app.command(cls=Command)
@guarded
def lint(root: RootOption = None) -> None:
    """Check every prompt and golden offline (for pre-commit): exit 2 on errors, 0 with warnings only."""
    from promptci.api import discover
    from promptci.loading.lint import lint_project

    settings = discover(root).settings()
    problems = lint_project(settings)
    errors = [p for p in problems if getattr(p, "severity", "error") == "error"]
    for problem in problems:
        typer.echo(f"{problem} [{getattr(problem, 'severity', 'error')}]", err=True)
    if errors:
        typer.echo(f"promptci lint: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)", err=True)
        raise typer.Exit(code=int(ExitCode.USAGE))
    typer.echo(f"promptci lint: ok ({len(problems)} warning(s))")


@app.command(cls=Command)
@guarded
def comparators() -> None:
    """List the comparators installed (built-in and from plugins)."""
    from promptci.registry import comparators as registry

    print_registry(registry)


@app.command(cls=Command)
@guarded
def providers() -> None:
    """List the model providers installed (built-in and from plugins)."""
    from promptci.registry import providers as registry

    print_registry(registry)


def print_registry(registry) -> None:
    """One line a name: its description and options."""
    from promptci.registry import describe

    for name in registry.names():
        summary, options = describe(registry, name)
        shown = f"  (options: {', '.join(options)})" if options else ""
        typer.echo(f"{name:<14} {summary}{shown}".rstrip())


def print_dry_run(report, fmt: str) -> None:
    """`run --dry-run`: the estimate as a table or a JSON document on stdout; nothing is sent."""
    import json

    if fmt == "json":
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    from promptci.reporting.costtable import print_dry_run as print_table

    print_table(report)


CostFormats = ("table", "json", "csv")


@app.command(cls=Command)
@guarded
def cost(
    by: Annotated[list[str] | None, typer.Option(
        "--by", metavar="DIMENSIONS",
        help="Group by day, prompt, model and/or run: repeat or comma-separate (--by day,model).")] = None,
    since: Annotated[str, typer.Option(
        "--since", metavar="AGE|DATE", help="From 7d, 24h, 30m, 2w ago, or a date (2026-11-01, UTC).")] = "7d",
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table|json|csv")] = "table",
    check: Annotated[bool, typer.Option(
        "--check", help="Exit 1 when a UTC day in range spent more than budgets.daily_usd (whole days count).")]
    = False,
    root: RootOption = None,
) -> None:
    """The request ledger: tokens, cost, cache savings and latency, grouped (default --by day)."""
    from promptci import api

    if fmt not in CostFormats:
        raise PromptCIError(f"--format {fmt!r} is not known for cost (known: {', '.join(CostFormats)})")
    report = api.cost_report(root, by or (), since)
    if check and report.daily_usd is None:
        raise PromptCIError("--check needs a daily budget: add `budgets: {daily_usd: 25.00}` to promptci.yaml")
    print_cost_report(report, fmt)
    if check:
        raise typer.Exit(code=int(check_daily_budget(report)))


def since_label(report) -> str:
    return report.since.strftime("%Y-%m-%d %H:%M UTC")


def cost_notes(report) -> list[str]:
    from promptci.cost.pricing import UNKNOWN_PRICE_HINT

    if not report.unknown_price_models:
        return []
    return [f"cost unknown for {', '.join(report.unknown_price_models)} (no price): {UNKNOWN_PRICE_HINT}"]


def print_cost_report(report, fmt: str) -> None:
    import json

    from promptci.cost.ledger import render_csv

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


def check_daily_budget(report) -> ExitCode:
    """--check: name every day over budgets.daily_usd; exit 1 if any, else 0."""
    from promptci.reporting.stats import format_usd

    limit = format_usd(report.daily_usd)
    unpriced = (f" ({report.total.cost_unknown} request(s) with no price are not counted)"
                if report.total.cost_unknown else "")
    over = report.days_over
    if over:
        lines = [f"promptci cost --check: {len(over)} day(s) over the daily budget of {limit}{unpriced}:"]
        lines += [f"  {day}: spent {format_usd(spent)} ({format_usd(spent - report.daily_usd)} over)"
                  for day, spent in over]
        typer.echo("\n".join(lines), err=True)
        return ExitCode.REGRESSION
    highest = max(report.daily_spend, key=lambda item: item[1], default=None)
    peak = f"; highest {highest[0]}: {format_usd(highest[1])}" if highest else ""
    typer.echo(f"promptci cost --check: every day since {report.since.date()} stayed within the daily budget "
               f"of {limit}{peak}{unpriced}", err=True)
    return ExitCode.OK


@app.command(cls=Command)
@guarded
def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N", min=1, help="How many runs, newest first.")] = 20,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table|json")] = "table",
    root: RootOption = None,
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
) -> None:
    """Show a stored run again, in any report format (exit 0: this shows, it does not gate)."""
    from promptci import api

    reports = report_targets(fmt, output)
    with user_output_to_stderr():  # reporter plugins are user code too
        run_record = api.show_run(root, run_id)
    write_reports(run_record, fmt, reports, verbose - quiet, api.discover(root).source)


import_app = typer.Typer(no_args_is_help=True, help="Convert another tool's suite into a promptci project.")
app.add_typer(import_app, name="import")


@import_app.command("promptfoo", cls=Command)
@guarded
def import_promptfoo(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help="The promptfoo config.")]
    = Path("promptfooconfig.yaml"),
    out: Annotated[Path, typer.Option(
        "--out", metavar="DIR", help="Folder to write prompts/, goldens/, promptci.yaml.")] = Path("."),
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table|json")] = "table",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Convert a promptfoo suite, naming every assertion it could not convert (file:line)."""
    from promptci.importers.report import import_promptfoo_suite

    if fmt not in ("table", "json"):
        raise PromptCIError(f"--format {fmt!r} is not known for import (known: table, json)")
    typer.echo(import_promptfoo_suite(config, out, fmt, force), nl=False)


@app.command(cls=Command)
@guarded
def merge(
    files: Annotated[list[Path], typer.Argument(
        metavar="FILES", help="JSON results of `run --shard I/N --format json`.", show_default=False)],
    fmt: ReportFormatOption = "table",
    output: OutputOption = None,
    github: GithubOption = True,
    quiet: QuietOption = 0,
    verbose: VerboseOption = 0,
    root: RootOption = None,
) -> None:
    """Join the JSON results of shards into one stored run, report it and gate on it like `run`."""
    from promptci import api

    reports = report_targets(fmt, output)
    outcome = api.merge(root, files)
    publish(outcome.run, fmt, reports, verbose - quiet, api.discover(root).source, github)
    print_gate(outcome)
    raise typer.Exit(code=int(outcome.exit_code))


@app.command(cls=Command)
@guarded
def accept(
    paths: Annotated[list[Path] | None, typer.Argument(
        metavar="PATHS", help="Golden files or folders (default: all).", show_default=False)] = None,
    keyword: Annotated[str | None, typer.Option(
        "-k", metavar="EXPR", help="Select cases by id, tag or prompt.")] = None,
    run_id: Annotated[str, typer.Option(
        "--run", metavar="RUN", help="The stored run to accept (default: the last).")] = "last",
    force: Annotated[bool, typer.Option("--force", help="Accept a run with errors or disagreeing samples.")] = False,
    root: RootOption = None,
) -> None:
    """Write a run's outputs into `expected` of its failing cases, keeping comments and order; prints the diff."""
    from promptci import accept as accepting
    from promptci.reporting.stats import plural, printable

    result = accepting.accept(root, run_id, paths=tuple(paths or ()), keyword=keyword, force=force)
    if result.diff:
        typer.echo(printable(result.diff), nl=False)
    for note in result.notes:
        typer.echo(f"note: {printable(note)}", err=True)
    files = len({a.file for a in result.accepted})
    typer.echo(f"accepted {plural(len(result.accepted), 'case')} in {plural(files, 'file')}"
               if result.accepted else "nothing to accept: no failing case matched", err=True)


@app.command(cls=Command)
@guarded
def diff(
    rev_a: Annotated[str, typer.Argument(metavar="REV_A", help="The revision to compare from (main, HEAD~1, a sha).")],
    rev_b: Annotated[str | None, typer.Argument(
        metavar="[REV_B]", help="The revision to compare to (default: the working tree, uncommitted edits included).",
        show_default=False)] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", metavar="MODEL", help="PROVIDER:MODEL to run at both sides; repeat for a matrix.")] = None,
    keyword: Annotated[str | None, typer.Option(
        "-k", metavar="EXPR", help="Select cases by id, tag or prompt: 'smoke and not slow'.")] = None,
    repeat: Annotated[int, typer.Option(
        "--repeat", metavar="K", help=f"Sample each case K times at each side (1..{MAX_REPEAT}).")] = 1,
    alpha: Annotated[float, typer.Option(
        "--alpha", metavar="P", help="With --repeat: the family-wise false-alarm rate of the gate.")] = 0.05,
    changed_since: ChangedSinceOption = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-j", metavar="N", min=1, max=MAX_CONCURRENCY, help="Requests in flight at once.")] = None,
    env: Annotated[str | None, typer.Option(
        "--env", metavar="NAME", help="Apply an environment from promptci.yaml.")] = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Answer repeated requests from the cache.")]
    = True,
    replay: Annotated[bool, typer.Option("--replay", help="Offline: recorded responses only.")] = False,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table|json|markdown|github|html")]
    = "table",
    output: OutputOption = None,
    github: GithubOption = True,
    quiet: QuietOption = 0,
    verbose: VerboseOption = 0,
    root: RootOption = None,
) -> None:
    """Run the suite as it stood at REV_A and at REV_B and report what changed per case (exit 1 on a regression)."""
    from promptci import api

    check_ranges(repeat, None)
    if not 0 < alpha < 1:
        raise PromptCIError(f"--alpha {alpha}: give a false-alarm rate between 0 and 1 (e.g. --alpha 0.05)")
    reports = comparison_targets(fmt, output)
    options = api.DiffOptions(
        run=api.RunOptions(root=root, models=tuple(model or ()), keyword=keyword, concurrency=concurrency,
                           use_cache=cache, replay=replay, environment=env, repeat=repeat,
                           changed_since=changed_since),
        before=rev_a, after=rev_b, alpha=alpha)
    with user_output_to_stderr():
        outcome = diff_with_progress(options, verbose - quiet)
    print_selection(outcome.selection, changed_since, verbose - quiet)
    for note in outcome.notes:
        typer.echo(f"promptci: {note}", err=True)
    if outcome.before.results or outcome.after.results:
        publish_comparison(outcome.comparison, fmt, reports, verbose - quiet, api.discover(root).source, github)
    raise typer.Exit(code=int(outcome.exit_code))


def comparison_targets(fmt: str, outputs: list[str] | None) -> list[tuple[str, Path]]:
    """Check --format and -o against the formats a diff is written in."""
    from promptci.reporting import COMPARISON_FORMATS

    targets = report_targets(fmt, outputs)
    for name in (fmt, *(f for f, _ in targets)):
        if name not in COMPARISON_FORMATS:
            raise PromptCIError(f"format {name!r} has no report of a diff "
                                f"(diff writes: {', '.join(COMPARISON_FORMATS)})")
    return targets


def diff_with_progress(options, verbosity: int):
    from promptci import api
    from promptci.reporting.terminal import Progress

    progress = Progress(verbosity=verbosity)
    try:
        return api.diff(options, on_start=progress.start, on_result=progress.advance)
    finally:
        progress.stop()


def publish_comparison(comparison, fmt: str, reports: list[tuple[str, Path]], verbosity: int, project_root: Path,
                       github: bool) -> None:
    """publish() for a Comparison: stdout, every -o file, and under GitHub Actions the annotations and summary."""
    from promptci.reporting import write_comparison

    def shaped(report_format: str):
        """GitHub resolves annotation paths from the repository root, which may sit above the project."""
        if report_format != "github":
            return comparison
        from promptci.reporting.diff_github import repository_prefix, with_repository_paths

        return with_repository_paths(comparison, repository_prefix(project_root))

    with github_commands_paused(github and fmt not in ("json", "github")):
        write_comparison(shaped(fmt), fmt, sys.stdout, verbosity)
    for report_format, path in reports:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as stream:
                write_comparison(shaped(report_format), report_format, stream, verbosity)
        except OSError as error:
            raise PromptCIError(f"-o {path}: cannot write the {report_format} report: {error.strerror or error}") \
                from None
    if github and is_github_actions():
        from promptci.reporting.diff_github import report_comparison_to_github

        report_comparison_to_github(comparison, project_root, None if fmt == "github" else sys.stderr)


@app.command(cls=Command)
@guarded
def bisect(
    good: Annotated[str, typer.Argument(metavar="GOOD", help="A revision where the selected cases pass.")],
    bad: Annotated[str, typer.Argument(metavar="BAD", help="A later revision where one of them fails.")],
    keyword: Annotated[str | None, typer.Option(
        "-k", metavar="EXPR", help="Select cases by id, tag or prompt: 'smoke and not slow'.")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", metavar="MODEL", help="PROVIDER:MODEL to run at every step.")] = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-j", metavar="N", min=1, max=MAX_CONCURRENCY, help="Requests in flight at once.")] = None,
    env: Annotated[str | None, typer.Option(
        "--env", metavar="NAME", help="Apply an environment from promptci.yaml.")] = None,
    replay: Annotated[bool, typer.Option("--replay", help="Offline: recorded responses only.")] = False,
    root: RootOption = None,
) -> None:
    """Find the first commit between GOOD and BAD where the selected cases start failing, and show its changes."""
    from promptci import api
    from promptci.reporting.stats import printable

    options = api.RunOptions(root=root, models=tuple(model or ()), keyword=keyword, concurrency=concurrency,
                             replay=replay, environment=env)

    def show_step(step) -> None:
        verdict = f"bad ({', '.join(step.failing)})" if step.is_bad else "good"
        typer.echo(printable(f"promptci bisect: {step.commit[:12]} {verdict}"), err=True)

    with user_output_to_stderr():
        outcome = api.bisect(options, good, bad, on_step=show_step)
    typer.echo(printable(f"first bad commit: {outcome.first_bad} {outcome.subject}"))
    typer.echo(printable(f"failing there: {', '.join(outcome.failing)}"))
    typer.echo("")
    typer.echo(printable(outcome.changes), nl=not outcome.changes.endswith("\n"))


def main() -> None:
    import gc

    try:
        app()
    finally:
        gc.freeze()  # the interpreter's last collection would walk every SDK object for nothing


if __name__ == "__main__":
    main()
