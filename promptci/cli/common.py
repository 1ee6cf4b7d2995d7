"""What every command shares: the typer app, the option types, the Command class and range checks.
Imports nothing heavy, so `promptci --help` stays fast."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand

from promptci.errors import PromptCIError
from promptci.ranges import MAX_REPEAT as MAX_REPEAT  # re-exported: the commands name it in their --help
from promptci.ranges import check_repeat

if TYPE_CHECKING:
    from promptci.changes import ChangeSelection
    from promptci.reporting.terminal import Progress
    from promptci.sequential import Design

_Outcome = TypeVar("_Outcome")

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
DetectOption = Annotated[float | None, typer.Option(
    "--detect", metavar="DROP", help="With --repeat auto: choose MAX so that a drop of DROP (0.3: 30 points) on "
    "any one case is flagged with 80% power (simulated).")]
QuietOption = Annotated[int, typer.Option("--quiet", "-q", count=True, show_default=False, help="Less output.")]
VerboseOption = Annotated[int, typer.Option("--verbose", "-v", count=True, show_default=False,
                                            help="More output (-v: also tracebacks of internal errors).")]
ShardOption = Annotated[str | None, typer.Option(
    "--shard", metavar="I/N", help="Run only shard I of N (e.g. 2/4); join with merge.")]
GithubOption = Annotated[bool, typer.Option(
    "--github/--no-github", help="Under GitHub Actions: annotations and the step summary (default on).")]
ChangedSinceOption = Annotated[str | None, typer.Option(
    "--changed-since", metavar="REV", help="Only cases that changes since git revision REV can affect.")]
MAX_CONCURRENCY = 512
KeywordOption = Annotated[str | None, typer.Option(
    "-k", metavar="EXPR", help="Select cases by id, tag or prompt: 'smoke and not slow'.")]
ConcurrencyOption = Annotated[int | None, typer.Option(
    "--concurrency", "-j", metavar="N", min=1, max=MAX_CONCURRENCY, help="Requests in flight at once.")]
EnvOption = Annotated[str | None, typer.Option(
    "--env", metavar="NAME", help="Apply an environment from promptci.yaml.")]
CacheOption = Annotated[bool, typer.Option("--cache/--no-cache", help="Answer repeated requests from the cache.")]
ReplayOption = Annotated[bool, typer.Option("--replay", help="Offline: recorded responses only.")]


def check_store_choice(value: str | None) -> str | None:
    """--store's values (storechoice.STORE_CHOICES); anything else is a usage error (exit 2) that says them."""
    from promptci.storechoice import STORE_CHOICES, store_choices

    if value is None or value in STORE_CHOICES:
        return value
    from promptci.secrets import redact_dsn

    raise typer.BadParameter(f"{redact_dsn(value)!r}: {store_choices()}")


StoreOption = Annotated[str | None, typer.Option(
    "--store", metavar="local", callback=check_store_choice, show_default=False,
    help="local: this machine's database (.promptci/promptci.db), not the team store promptci.yaml or "
         "PROMPTCI_STORE names.")]
PathsOption = Annotated[list[Path] | None, typer.Argument(
    metavar="PATHS", help="Golden files or folders (default: all).", show_default=False)]


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


def parse_repeat(text: str, alpha: float = 0.05, detect: float | None = None) -> tuple[int, Design | None]:
    """--repeat K (fixed samples a side) or auto[:MAX] (the sequential design, at most MAX samples a side);
    --detect DROP (auto only) is checked here and chooses MAX once the cases are known (seqtarget.py)."""
    if detect is not None and not 0 < detect < 1:
        raise PromptCIError(f"--detect {detect:g}: give the drop in pass rate to detect as a fraction between 0 and "
                            "1 (e.g. --detect 0.3 for a 30-point drop)")
    word, _, maximum = text.strip().partition(":")
    if word == "auto":
        from dataclasses import replace

        from promptci.sequential import Design

        default = Design()
        try:
            top = int(maximum) if maximum else default.maximum
        except ValueError:
            top = 0
        if not default.first <= top <= MAX_REPEAT:
            raise PromptCIError(f"--repeat {text}: give auto:MAX with MAX from {default.first} to {MAX_REPEAT} "
                                f"(e.g. --repeat auto:{default.maximum})")
        if detect is not None and not maximum:  # --detect picks MAX, up to its own cap
            from promptci.seqtarget import DETECT_CAP

            top = DETECT_CAP
        return 1, replace(default, maximum=top, alpha=alpha if 0 < alpha < 1 else default.alpha)
    if detect is not None:
        raise PromptCIError(f"--detect {detect:g} chooses the sequential design of --repeat auto: add --repeat auto "
                            f"(or drop --detect to sample a fixed --repeat {text} times)")
    try:
        return int(text), None
    except ValueError:
        raise PromptCIError(f"--repeat {text}: give a number of samples from 1 to {MAX_REPEAT}, or auto, or "
                            f"auto:MAX") from None


def check_ranges(repeat: int, max_cost: float | None) -> None:
    check_repeat(repeat)
    if max_cost is not None and not (math.isfinite(max_cost) and max_cost >= 0):
        raise PromptCIError(f"--max-cost {max_cost}: give a finite amount of USD, 0 or more (e.g. --max-cost 2.50)")


def echo_lines(lines: list[str]) -> None:
    """Notes and explanations on stderr (the report owns stdout), escaped: they can quote model output."""
    from promptci.reporting.stats import printable

    for line in lines:
        typer.echo(printable(line), err=True)


def with_progress(verbosity: int, work: Callable[[Progress], _Outcome]) -> _Outcome:
    """`work` given the progress bar to report to; the bar is taken down however it ends."""
    from promptci.reporting.terminal import Progress

    progress = Progress(verbosity=verbosity)
    try:
        return work(progress)
    finally:
        progress.stop()


def explain_selection(selection: ChangeSelection | None, changed_since: str | None, verbosity: int) -> None:
    """With -v, which cases --changed-since chose and why."""
    if selection is not None and verbosity >= 1:
        echo_lines(selection.explain(changed_since))
