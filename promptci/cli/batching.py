"""`promptci batch list|status|cancel`: the provider batches `run --batch` submitted (re-running the same
`run --batch` command collects them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from promptci.cli.common import Command, RootOption, app
from promptci.cli.edge import guarded
from promptci.errors import PromptCIError

if TYPE_CHECKING:
    from promptci.batch import BatchView

batch_app = typer.Typer(no_args_is_help=True, help="Provider batches submitted by `run --batch`.")
app.add_typer(batch_app, name="batch")

FormatOption = Annotated[str, typer.Option("--format", metavar="FORMAT", help="table|json")]


@batch_app.command("list", cls=Command)
@guarded
def list_(
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N", min=1, help="How many, newest first.")] = 20,
    fmt: FormatOption = "table",
    root: RootOption = None,
) -> None:
    """The stored batches, newest first, as last seen (sends nothing)."""
    from promptci.batch import list_batches

    print_views(list_batches(root, limit), fmt, "no batches yet: `promptci run --batch` submits them")


@batch_app.command(cls=Command)
@guarded
def status(
    batch_ids: Annotated[list[str] | None, typer.Argument(metavar="[BATCH]...", help="Default: every open batch.")]
    = None,
    fmt: FormatOption = "table",
    root: RootOption = None,
) -> None:
    """What the providers say of the open batches (or these) now: state and requests done."""
    from promptci.batch import batch_status

    print_views(batch_status(root, batch_ids or ()), fmt, "no open batches")


@batch_app.command(cls=Command)
@guarded
def cancel(
    batch_ids: Annotated[list[str], typer.Argument(metavar="BATCH...", help="The batch ids (`promptci batch list`).")],
    fmt: FormatOption = "table",
    root: RootOption = None,
) -> None:
    """Cancel batches. Their answers so far are collected by the next `run --batch`; the rest go live then."""
    from promptci.batch import cancel_batches

    print_views(cancel_batches(root, batch_ids), fmt, "nothing to cancel")


def print_views(views: list[BatchView], fmt: str, empty: str) -> None:
    import json

    if fmt not in ("table", "json"):
        raise PromptCIError(f"--format {fmt!r} is not known here (known: table, json)")
    if fmt == "json":
        typer.echo(json.dumps([view.to_dict() for view in views], indent=2))
        return
    if not views:
        typer.echo(empty)
        return
    for view in views:
        d = view.to_dict()
        progress = f" {d['done']}/{d['total']} done" if d["total"] is not None else ""
        collected = "collected" if d["collected"] else "open"
        typer.echo(f"{d['id']}  {d['model']}  {d['requests']} request(s)  {d['state']}{progress}  {collected}  "
                   f"submitted {d['submitted_at']}")


__all__ = ["batch_app"]
