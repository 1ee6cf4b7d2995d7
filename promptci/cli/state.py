"""The state itself: `gc` prunes the database so a cached CI state does not grow without bound; `store copy`
moves runs, cache and ledger between the SQLite file and the PostgreSQL team store."""

from __future__ import annotations

from typing import Annotated

import typer

from promptci.cli.common import Command, RootOption, StoreOption, app
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
    store: StoreOption = None,
) -> None:
    """Prune old runs, results and cache rows (keeping what recordings and each branch's last run need) in the
    project's store (the team store when one is configured), vacuum, and say what was freed."""
    from promptci import gc as collecting
    from promptci.project import discover

    report = collecting.collect(discover(root), collecting.GcPolicy(days=days, runs=runs))
    for note in report.notes:
        typer.echo(f"promptci gc: {note}", err=True)
    if report.bytes_before:
        typer.echo(report.line())


store_app = typer.Typer(no_args_is_help=True, help="The store: the SQLite file or the PostgreSQL team store.")
app.add_typer(store_app, name="store")


@store_app.command("copy", cls=Command)
@guarded
def store_copy(
    source: Annotated[str, typer.Option(
        "--from", metavar="STORE", help="An SQLite file (.promptci/promptci.db) or a postgresql:// URL.")],
    target: Annotated[str, typer.Option(
        "--to", metavar="STORE", help="An SQLite file or a postgresql:// URL (a password: from PGPASSWORD).")],
) -> None:
    """Copy runs, results, the response cache and the ledger into another store; a second copy adds nothing."""
    from promptci.storecopy import copy_between

    typer.echo(copy_between(source, target).line(source, target))


__all__ = ["gc", "store_copy"]
