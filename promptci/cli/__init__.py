"""The command line: parse options, call promptci.api, map outcomes to exit codes.

The only package that prints errors. One module a family of commands (run; diff, bisect, accept; runs, show,
merge, cost; init, lint, import, comparators, providers; gc), all on the one app of cli.common. Heavy modules
(SDKs, rich, jinja2) are imported inside commands so `promptci --help` stays fast.
"""

from __future__ import annotations

from promptci.cli.common import app

# Importing a family registers its commands; --help lists them in this order.
# isort: off
from promptci.cli import run, project, history, diff, state, view, batching, calibrate  # noqa: F401
# isort: on


def main() -> None:
    import gc

    try:
        app()
    finally:
        gc.freeze()  # the interpreter's last collection would walk every SDK object for nothing


__all__ = ["app", "main"]
