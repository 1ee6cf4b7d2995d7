"""The state folder itself: `gc` prunes the database so a cached CI state does not grow without bound."""

from __future__ import annotations

from typing import Annotated

import typer

from promptci.cli.common import Command, RootOption, app
from promptci.cli.edge import guarded


@app.command(cls=Command)
@guarded
def gc(
    days: Annotated[float | None, typer.Option(
        "--days", metavar="N", help="Prune runs that started more than N days ago (and billed ledger rows as old).")]
    = 30,
    runs: Annotated[int | None, typer.Option(
        "--runs", metavar="N", help="Keep at most the N newest runs.")] = 100,
    root: RootOption = None,
) -> None:
    """Prune old runs, results and cache rows (keeping what recordings and each branch's last run need), vacuum,
    and say what was freed."""
    from promptci import gc as collecting
    from promptci.project import discover

    report = collecting.collect(discover(root), collecting.GcPolicy(days=days, runs=runs))
    for note in report.notes:
        typer.echo(f"promptci gc: {note}", err=True)
    if report.bytes_before:
        typer.echo(report.line())


__all__ = ["gc"]
