"""The command line: parse options, call promptci.api, map outcomes to exit codes.

The only module that prints errors. Heavy modules (SDKs, rich, jinja2) are imported inside commands
so `promptci --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from promptci.errors import ExitCode, PromptCIError

app = typer.Typer(
    name="promptci",
    help="Prompts as code: render golden cases, run them against models, score, gate on regressions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # pretty tracebacks print local variables, which can hold a key
    rich_markup_mode=None,
)

RootOption = Annotated[
    Path | None, typer.Option("--root", help="Project root (default: nearest folder with promptci.yaml).")
]
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")


def redact(text: str) -> str:
    """Replace the value of every secret-looking environment variable: a last line of defence."""
    for name, value in os.environ.items():
        if len(value) >= 8 and name.upper().endswith(SECRET_SUFFIXES) and value in text:
            text = text.replace(value, f"<${name}>")
    return text


def fail(error: PromptCIError) -> NoReturn:
    typer.echo(redact(f"promptci: error: {error}" if "\n" not in str(error) else f"promptci: error:\n{error}"),
               err=True)
    raise typer.Exit(code=int(error.exit_code))


def parse_outputs(outputs: list[str], default_format: str) -> list[tuple[str, Path]]:
    """`-o FILE` (format from --format or the suffix) or `-o FORMAT=FILE`."""
    from promptci.reporting import FORMATS

    suffix_formats = {".json": "json", ".xml": "junit", ".md": "markdown"}
    parsed = []
    for item in outputs:
        fmt, sep, path = item.partition("=")
        if not sep:
            fmt, path = suffix_formats.get(Path(item).suffix, default_format), item
        if fmt not in FORMATS:
            raise PromptCIError(f"-o {item!r}: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
        parsed.append((fmt, Path(path)))
    return parsed


@app.command()
def run(
    paths: Annotated[list[Path] | None, typer.Argument(help="Golden files or folders (default: all).")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model(s) to run; repeat for a matrix.")]
    = None,
    keyword: Annotated[str | None, typer.Option("-k", help="Select cases by id, tag or prompt: 'smoke and not slow'.")]
    = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-j", min=1, max=512,
                                                    help="Requests in flight at once.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table|json|junit|markdown|github")] = "table",
    output: Annotated[list[str] | None, typer.Option("--output", "-o", help="Write a report: FILE or FORMAT=FILE.")]
    = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Skip broken cases instead of stopping.")] = False,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Answer repeated requests from the cache.")]
    = True,
    replay: Annotated[bool, typer.Option("--replay", help="Offline: recorded responses only.")] = False,
    record: Annotated[bool, typer.Option("--record", help="Write responses to recordings/<prompt>.jsonl.")] = False,
    env: Annotated[str | None, typer.Option("--env", help="Apply an environment from promptci.yaml.")] = None,
    max_cost: Annotated[float | None, typer.Option("--max-cost", min=0, help="Stop sending past this many USD.")]
    = None,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Run each case K times.")] = 1,
    quiet: Annotated[int, typer.Option("--quiet", "-q", count=True, help="Less output.")] = 0,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More output.")] = 0,
    root: RootOption = None,
) -> None:
    """Run the suite (all goldens, or those under PATHS) and exit non-zero on a regression."""
    from promptci import api

    try:
        from promptci.reporting import FORMATS

        if fmt not in FORMATS:
            raise PromptCIError(f"--format {fmt!r} is not known (known: {', '.join(FORMATS)})")
        reports = parse_outputs(output or [], fmt if fmt != "table" else "json")
        options = api.RunOptions(
            root=root, paths=tuple(paths or ()), models=tuple(model or ()), keyword=keyword,
            concurrency=concurrency, keep_going=keep_going, use_cache=cache, replay=replay, record=record,
            environment=env, max_cost=max_cost, repeat=repeat,
        )
        outcome = run_with_progress(options, verbose - quiet)
        write_reports(outcome.run, fmt, reports, verbose - quiet)
    except PromptCIError as error:
        fail(error)
    raise typer.Exit(code=int(outcome.exit_code))


def run_with_progress(options, verbosity: int):
    from promptci import api
    from promptci.reporting.terminal import Progress

    progress = Progress(verbosity=verbosity)
    try:
        return api.run(options, on_start=progress.start, on_result=progress.advance)
    finally:
        progress.stop()


def write_reports(run_record, fmt: str, reports: list[tuple[str, Path]], verbosity: int) -> None:
    from promptci.reporting import write_report

    if fmt == "table":
        from promptci.reporting.terminal import print_report

        print_report(run_record, verbosity=verbosity)
    else:
        write_report(run_record, fmt, sys.stdout, verbosity=verbosity)
    for report_format, path in reports:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as stream:
            write_report(run_record, report_format, stream, verbosity=verbosity)


@app.command()
def init(
    root: Annotated[Path, typer.Argument(help="Folder to scaffold (default: here).")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Scaffold promptci.yaml, a prompt, a golden file and a GitHub Actions workflow."""
    from promptci.scaffold import scaffold_project

    try:
        created = scaffold_project(root, force=force)
    except PromptCIError as error:
        fail(error)
    for path in created:
        typer.echo(f"created {path}")
    typer.echo("next: promptci run")


@app.command()
def lint(root: RootOption = None) -> None:
    """Check every prompt and golden offline (for pre-commit): exit 2 on errors, 0 with warnings only."""
    from promptci.api import resolve_root
    from promptci.config import load_settings
    from promptci.loading.lint import lint_project

    try:
        settings = load_settings(resolve_root(root))
        problems = lint_project(settings)
    except PromptCIError as error:
        fail(error)
    errors = [p for p in problems if getattr(p, "severity", "error") == "error"]
    for problem in problems:
        typer.echo(f"{problem} [{getattr(problem, 'severity', 'error')}]", err=True)
    if errors:
        typer.echo(f"promptci lint: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)", err=True)
        raise typer.Exit(code=int(ExitCode.USAGE))
    typer.echo(f"promptci lint: ok ({len(problems)} warning(s))")


@app.command()
def comparators() -> None:
    """List the comparators installed (built-in and from plugins)."""
    from promptci.registry import comparators as registry

    for name in registry.names():
        typer.echo(name)


def main() -> None:
    app()
