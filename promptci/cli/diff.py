"""Comparing revisions and taking their outputs: `diff`, `bisect` and `accept`."""

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
    RootOption,
    StoreOption,
    VerboseOption,
    app,
    check_ranges,
    explain_selection,
    parse_repeat,
    with_progress,
)
from promptci.cli.edge import guarded, user_output_to_stderr
from promptci.cli.reports import publish_comparison
from promptci.errors import PromptCIError

if TYPE_CHECKING:
    from promptci.diffing import BisectStep


@app.command(cls=Command)
@guarded
def accept(
    paths: PathsOption = None,
    keyword: Annotated[str | None, typer.Option(
        "-k", metavar="EXPR", help="Select cases by id, tag or prompt.")] = None,
    run_id: Annotated[str, typer.Option(
        "--run", metavar="RUN", help="The stored run to accept (default: the last).")] = "last",
    force: Annotated[bool, typer.Option("--force", help="Accept a run with errors or disagreeing samples.")] = False,
    root: RootOption = None,
    store: StoreOption = None,
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
    left = f"; {plural(result.left, 'failing case')} not accepted (the notes say why)" if result.left else ""
    if result.accepted:
        typer.echo(f"accepted {plural(len(result.accepted), 'case')} in {plural(files, 'file')}{left}", err=True)
    else:
        typer.echo(f"nothing accepted: the notes say why for {plural(result.left, 'failing case')}" if result.left
                   else "nothing to accept: no failing case matched", err=True)


@app.command(cls=Command)
@guarded
def diff(
    rev_a: Annotated[str, typer.Argument(metavar="REV_A", help="The revision to compare from (main, HEAD~1, a sha).")],
    rev_b: Annotated[str | None, typer.Argument(
        metavar="[REV_B]", help="The revision to compare to (default: the working tree, uncommitted edits included).",
        show_default=False)] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", metavar="MODEL", help="PROVIDER:MODEL to run at both sides; repeat for a matrix.")] = None,
    keyword: KeywordOption = None,
    repeat: Annotated[str, typer.Option(
        "--repeat", metavar="K|auto[:MAX]", help=f"Sample each case K times at each side (1..{MAX_REPEAT}); auto: "
        "a few samples a side, more only where a case is undecided (sequential, at most MAX a side, default 48)."
    )] = "1",
    alpha: Annotated[float, typer.Option(
        "--alpha", metavar="P", help="With --repeat: the family-wise false-alarm rate of the gate.")] = 0.05,
    detect: DetectOption = None,
    changed_since: ChangedSinceOption = None,
    allow_new_failures: Annotated[bool, typer.Option(
        "--allow-new-failures", help="A case new at REV_B that fails there is reported, but does not fail the "
                                     "diff.")] = False,
    concurrency: ConcurrencyOption = None,
    env: EnvOption = None,
    cache: CacheOption = True,
    replay: ReplayOption = False,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table|json|markdown|github|html")]
    = "table",
    output: OutputOption = None,
    github: GithubOption = True,
    quiet: QuietOption = 0,
    verbose: VerboseOption = 0,
    root: RootOption = None,
    store: StoreOption = None,
) -> None:
    """Run the suite as it stood at REV_A and at REV_B and report what changed per case (exit 1 on a regression)."""
    from promptci import api
    from promptci.reporting.targets import comparison_targets

    samples, design = parse_repeat(repeat, alpha, detect)
    check_ranges(samples, None)
    if not 0 < alpha < 1:
        raise PromptCIError(f"--alpha {alpha}: give a false-alarm rate between 0 and 1 (e.g. --alpha 0.05)")
    reports = comparison_targets(fmt, output)
    options = api.DiffOptions(
        run=api.RunOptions(root=root, models=tuple(model or ()), keyword=keyword, concurrency=concurrency,
                           use_cache=cache, replay=replay, environment=env, repeat=samples,
                           changed_since=changed_since),
        before=rev_a, after=rev_b, alpha=alpha, allow_new_failures=allow_new_failures, sequential=design,
        detect=detect)
    with user_output_to_stderr():
        outcome = with_progress(verbose - quiet, lambda progress: api.diff(
            options, on_start=progress.start, on_result=progress.advance))
    explain_selection(outcome.selection, changed_since, verbose - quiet)
    for note in outcome.notes:
        typer.echo(f"promptci: {note}", err=True)
    if verbose - quiet >= 1:
        from promptci.reporting.stats import printable

        for stop in outcome.stops:
            typer.echo(printable(f"promptci: stopped {stop}"), err=True)
    if outcome.before.results or outcome.after.results:
        publish_comparison(outcome.comparison, fmt, reports, verbose - quiet, api.discover(root).source, github)
    raise typer.Exit(code=int(outcome.exit_code))


@app.command(cls=Command)
@guarded
def bisect(
    good: Annotated[str, typer.Argument(metavar="GOOD", help="A revision where the selected cases pass.")],
    bad: Annotated[str, typer.Argument(metavar="BAD", help="A later revision where one of them fails.")],
    keyword: KeywordOption = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", metavar="MODEL", help="PROVIDER:MODEL to run at every step.")] = None,
    concurrency: ConcurrencyOption = None,
    env: EnvOption = None,
    replay: ReplayOption = False,
    root: RootOption = None,
    store: StoreOption = None,
) -> None:
    """Find the first commit between GOOD and BAD where the selected cases start failing, and show its changes."""
    from promptci import api
    from promptci.reporting.stats import neutralised

    options = api.RunOptions(root=root, models=tuple(model or ()), keyword=keyword, concurrency=concurrency,
                             replay=replay, environment=env)

    def show_step(step: BisectStep) -> None:
        verdict = f"bad ({', '.join(step.failing)})" if step.is_bad else "good"
        typer.echo(neutralised(f"promptci bisect: {step.commit[:12]} {verdict}"), err=True)

    with user_output_to_stderr():
        outcome = api.bisect(options, good, bad, on_step=show_step)
    # the prompts' changes, case ids and a commit subject are anyone's text: no workflow command may reach a CI log
    typer.echo(neutralised(f"first bad commit: {outcome.first_bad} {outcome.subject}"))
    typer.echo(neutralised(f"failing there: {', '.join(outcome.failing)}"))
    typer.echo("")
    typer.echo(neutralised(outcome.changes), nl=not outcome.changes.endswith("\n"))


__all__ = ["accept", "bisect", "diff"]
