"""Report writers: one module per format, chosen by name. Importing this package imports no rich."""

from __future__ import annotations

from typing import TextIO

from promptci.errors import PromptCIError
from promptci.types import Run

FORMATS = ("table", "json", "junit", "markdown", "github", "html")


def write_report(run: Run, fmt: str, stream: TextIO, verbosity: int = 0) -> None:
    """Write `run` to `stream` in `fmt`; `verbosity` (-1 quiet, 0, 1 verbose) only shapes the table."""
    if fmt == "table":
        from promptci.reporting.terminal import write_table

        write_table(run, stream, verbosity)
    elif fmt == "json":
        from promptci.reporting.jsonreport import write_json

        write_json(run, stream)
    elif fmt == "junit":
        from promptci.reporting.junit import write_junit

        write_junit(run, stream)
    elif fmt == "markdown":
        from promptci.reporting.markdown import write_markdown

        write_markdown(run, stream)
    elif fmt == "github":
        from promptci.reporting.github import write_github

        write_github(run, stream)
    elif fmt == "html":
        from promptci.reporting.html import write_html

        write_html(run, stream)
    else:
        raise PromptCIError(f"unknown report format {fmt!r} (known: {', '.join(FORMATS)})")


__all__ = ["FORMATS", "write_report"]
