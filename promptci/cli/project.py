"""The project itself: `init`, `lint`, `import`, and the installed `comparators` and `providers`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from promptci.cli.common import Command, RootOption, app
from promptci.cli.edge import guarded
from promptci.errors import ExitCode, PromptCIError

if TYPE_CHECKING:
    from promptci.registry import Registry


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
    from promptci import api

    problems = api.lint(root)
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


def print_registry(registry: Registry) -> None:
    """One line a name: its description and options."""
    from promptci.registry import describe

    for name in registry.names():
        summary, options = describe(registry, name)
        shown = f"  (options: {', '.join(options)})" if options else ""
        typer.echo(f"{name:<14} {summary}{shown}".rstrip())


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
