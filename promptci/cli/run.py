"""`promptci run`: options to api.RunOptions, the progress bar, the dry-run estimate, reports, exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from promptci.cli.common import (
    MAX_REPEAT,
    CacheOption,
    ChangedSinceOption,
    Command,
    ConcurrencyOption,
    DetectOption,
    EnvOption,
    GithubOption,
    KeywordOption,
    OutputOption,
    PathsOption,
    QuietOption,
    ReplayOption,
    ReportFormatOption,
    RootOption,
    ShardOption,
    StoreOption,
    VerboseOption,
    app,
    check_ranges,
    explain_selection,
    parse_repeat,
    with_progress,
)
from promptci.cli.edge import guarded, user_output_to_stderr
from promptci.cli.reports import print_gate, publish
from promptci.errors import ExitCode, PromptCIError

if TYPE_CHECKING:
    from promptci.api import RunOptions
    from promptci.cost.estimate import DryRunReport


@app.command(cls=Command)
@guarded
def run(
    paths: PathsOption = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", metavar="MODEL", help="PROVIDER:MODEL to run (openai:gpt-4o-mini); repeat for a matrix.")]
    = None,
    keyword: KeywordOption = None,
    concurrency: ConcurrencyOption = None,
    fmt: ReportFormatOption = "table",
    output: OutputOption = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Skip broken cases instead of stopping.")] = False,
    cache: CacheOption = True,
    replay: ReplayOption = False,
    record: Annotated[bool, typer.Option("--record", help="Write responses to recordings/<prompt>.jsonl.")] = False,
    env: EnvOption = None,
    max_cost: Annotated[float | None, typer.Option(
        "--max-cost", metavar="USD", help="Stop sending past this many USD.")] = None,
    repeat: Annotated[str, typer.Option(
        "--repeat", metavar="K|auto[:MAX]", help=f"Run each case K times (1..{MAX_REPEAT}); auto, with "
        "--baseline-model: a few samples a model, more only where a case is undecided (sequential, at most MAX "
        "a model, default 48).")] = "1",
    detect: DetectOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Estimate tokens and cost; send nothing.")]
    = False,
    shard: ShardOption = None,
    baseline_model: Annotated[str | None, typer.Option(
        "--baseline-model", metavar="MODEL",
        help="Upgrade check: exit 1 when another -m model is significantly worse than MODEL.")] = None,
    gate: Annotated[list[str] | None, typer.Option(
        "--gate", metavar="cost|latency",
        help="With --baseline-model, also fail on a significant cost increase > +10% or latency > +20% "
             "(paired per-case test).")] = None,
    fail_on_drift: Annotated[bool, typer.Option(
        "--fail-on-drift", help="Exit 1 when a model resolves to another version than in its last run.")] = False,
    changed_since: ChangedSinceOption = None,
    batch: Annotated[bool, typer.Option(
        "--batch", help="Send uncached requests through the providers' batch APIs at half price; re-run the "
                        "same command to collect (exit 3 while batches are open).")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="With --batch: poll until the batches end, then run.")]
    = False,
    batch_errors: Annotated[str, typer.Option(
        "--batch-errors", metavar="live|report",
        help="With --batch: send the requests a batch did not answer live, or report them as case errors.")]
    = "live",
    github: GithubOption = True,
    quiet: QuietOption = 0,
    verbose: VerboseOption = 0,
    root: RootOption = None,
    store: StoreOption = None,
) -> None:
    """Run the suite (all goldens, or those under PATHS) and exit non-zero on a regression."""
    from promptci import api
    from promptci.reporting.targets import report_targets
    from promptci.selection import parse_shard

    samples, design = parse_repeat(repeat, detect=detect)
    check_ranges(samples, max_cost)
    check_auto_repeat(repeat, design is not None, baseline_model, dry_run, batch)
    reports = report_targets(fmt, output)
    options = api.RunOptions(
        root=root, paths=tuple(paths or ()), models=tuple(model or ()), keyword=keyword,
        concurrency=concurrency, keep_going=keep_going, use_cache=cache, replay=replay, record=record,
        environment=env, max_cost=max_cost, repeat=samples, shard=parse_shard(shard) if shard else None,
        changed_since=changed_since,
    )
    judging = api.Judging(baseline_model=baseline_model, gates=tuple(gate or ()), fail_on_drift=fail_on_drift,
                          sequential=design, detect=detect)
    if wait and not batch:
        raise PromptCIError("--wait waits for the batches of --batch: add --batch")
    if batch_errors not in ("live", "report"):
        raise PromptCIError(f"--batch-errors is live or report, not {batch_errors!r}")
    if batch and not dry_run:
        unanswered = prepare_batches(options, wait, report_errors=batch_errors == "report")
        if batch_errors == "report":
            from dataclasses import replace as with_unanswered

            options = with_unanswered(options, batch_unanswered=tuple(unanswered.items()))
        if not options.use_cache:  # the fresh answers just collected are in the cache: the run reads them there
            from dataclasses import replace

            options = replace(options, use_cache=True)
    if dry_run:
        if reports:
            raise PromptCIError("--dry-run prints its estimate on stdout; -o is for run reports "
                                "(use --dry-run --format json > FILE)")
        if fmt not in ("table", "json"):
            raise PromptCIError(f"--dry-run writes --format table or json, not {fmt!r}")
        with user_output_to_stderr():
            estimate = api.dry_run(options)
        from promptci.batch import with_batch_estimate

        estimate = with_batch_estimate(estimate)
        print_dry_run(estimate, fmt)
        raise typer.Exit(code=int(ExitCode.OK))
    # User code (python providers, comparators, plugins) may print: keep it off the report stream.
    with user_output_to_stderr():
        outcome = with_progress(verbose - quiet, lambda progress: api.run(
            options, on_start=progress.start, on_result=progress.advance, on_rate=progress.rate, judging=judging))
    explain_selection(outcome.selection, changed_since, verbose - quiet)
    if verbose - quiet >= 1:
        from promptci.reporting.stats import printable

        for stop in outcome.stops:
            typer.echo(printable(f"promptci: stopped {stop}"), err=True)
    publish(outcome.run, fmt, reports, verbose - quiet, api.discover(root).source, github)
    print_gate(outcome, fmt)
    if outcome.not_stored is not None:  # the verdict is printed above; the run's record is incomplete: exit 4
        raise outcome.not_stored
    if not outcome.run.run_id:  # --changed-since selected nothing: nothing ran, nothing was stored
        for note in outcome.notes:
            typer.echo(f"promptci: {note}", err=True)
    raise typer.Exit(code=int(outcome.exit_code))


def check_auto_repeat(repeat: str, is_auto: bool, baseline_model: str | None, dry_run: bool, batch: bool) -> None:
    """--repeat auto samples where two models disagree: it needs the baseline, and sends in rounds."""
    if not is_auto:
        return
    if baseline_model is None:
        raise PromptCIError(f"--repeat {repeat} samples where two sides disagree: add --baseline-model MODEL (and "
                            "-m for the model to check), use --repeat K, or compare revisions with `promptci diff "
                            f"REV --repeat {repeat}`")
    if dry_run:
        raise PromptCIError(f"--dry-run estimates a fixed number of samples, not --repeat {repeat} (it decides as it "
                            "goes): give --repeat MAX for the most it could send")
    if batch:
        raise PromptCIError(f"--batch cannot serve --repeat {repeat}: each round waits for the last one's answers; "
                            "drop --batch or give --repeat K")


def prepare_batches(options: RunOptions, wait: bool, report_errors: bool) -> dict[str, str]:
    """`run --batch`: collect or submit the plan's batches; while any is open, say how to collect and exit 3.
    Returns the requests a batch collected now did not answer (cache key -> why)."""
    from promptci.batch import check_batch_options
    from promptci.batch import prepare_batches as prepare

    check_batch_options(options)
    outcome = prepare(options, wait)
    if not outcome.is_complete:
        typer.echo(f"promptci: {outcome.waiting} request(s) wait in {len(outcome.open_batches)} open batch(es) "
                   f"({', '.join(outcome.open_batches)}); no verdict yet. Re-run the same command to collect them "
                   "(it never submits them twice), or add --wait; `promptci batch status` shows their progress.",
                   err=True)
        raise typer.Exit(code=int(ExitCode.NO_VERDICT))
    if outcome.answered:
        typer.echo(f"promptci: {len(outcome.answered)} answer(s) collected from provider batches at batch prices "
                   "(answered from the cache below: latency and time to first token not measured)", err=True)
    if outcome.live_only:
        typer.echo(f"promptci: {outcome.live_only} request(s) of providers without a batch API are sent live", err=True)
    if outcome.unanswered:
        what = "reported as errors" if report_errors else "sent live"
        typer.echo(f"promptci: {len(outcome.unanswered)} request(s) got no answer from their batch and are {what}: "
                   f"{'; '.join(sorted(set(outcome.unanswered.values())))[:300]}", err=True)
    return outcome.unanswered


def print_dry_run(report: DryRunReport, fmt: str) -> None:
    """`run --dry-run`: the estimate as a table or a JSON document on stdout; nothing is sent."""
    import json

    if fmt == "json":
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    from promptci.reporting.costtable import print_dry_run as print_table

    print_table(report)


__all__ = ["run"]
