"""`promptci view`: the local viewer (runs, a run, two runs compared, a case's history, cost; reviews), or
with --bundle the same pages as static files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promptci.cli.common import Command, RootOption, StoreOption, app
from promptci.cli.edge import guarded


@app.command(cls=Command)
@guarded
def view(
    bundle: Annotated[Path | None, typer.Option(
        "--bundle", metavar="DIR", help="Write the pages as static files into DIR instead of serving them.")] = None,
    runs: Annotated[list[str] | None, typer.Option(
        "--run", metavar="RUN", help="With --bundle: a run to include (repeat; default: the last 10).")] = None,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (default: a free one).")] = 0,
    no_open: Annotated[bool, typer.Option("--no-open", help="Do not open a browser.")] = False,
    root: RootOption = None,
    store: StoreOption = None,
) -> None:
    """Browse stored runs, compare two, follow a case across commits, see cost, and review outputs."""
    if bundle is not None:
        from promptci.viewer.bundle import write_bundle

        written = write_bundle(root, bundle, tuple(runs or ()))
        typer.echo(f"wrote {len(written)} files; open {bundle / 'index.html'}")
        return
    from promptci.viewer.server import make_viewer

    viewer = make_viewer(root, port)
    typer.echo(f"promptci view: {viewer.login_url}")
    typer.echo("(the token in this address allows reviews and accepting goldens; Ctrl-C stops)", err=True)
    if not no_open:
        import webbrowser

        webbrowser.open(viewer.login_url)
    try:
        viewer.server.serve_forever()
    finally:
        viewer.server.server_close()
