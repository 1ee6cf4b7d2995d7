"""Report writers by name: format -> writer of a Run and of a Comparison (`diff` writes every format but
junit), with the file suffixes that imply it. Writers are "module:function" strings imported on first use,
so this imports no rich."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from promptci.errors import PromptCIError
from promptci.types import Run

if TYPE_CHECKING:  # compare.py imports the comparators: not at `promptci --help`
    from promptci.compare import Comparison


@dataclass(frozen=True)
class Reporter:
    """One output format. `run_writer` is called as fn(run, stream) or, with `takes_verbosity`,
    fn(run, stream, verbosity); `comparison_writer` is the same for a Comparison (None: not offered)."""

    name: str
    run_writer: str
    suffixes: tuple[str, ...] = ()
    takes_verbosity: bool = False
    comparison_writer: str | None = None


REPORTERS: dict[str, Reporter] = {
    reporter.name: reporter
    for reporter in (
        Reporter("table", "promptci.reporting.terminal:write_table", takes_verbosity=True,
                 comparison_writer="promptci.reporting.diff_terminal:write_comparison_table"),
        Reporter("json", "promptci.reporting.jsonreport:write_json", suffixes=(".json",),
                 comparison_writer="promptci.reporting.diff_json:write_comparison_json"),
        Reporter("junit", "promptci.reporting.junit:write_junit", suffixes=(".xml",)),
        Reporter("markdown", "promptci.reporting.markdown:write_markdown", suffixes=(".md", ".markdown"),
                 comparison_writer="promptci.reporting.diff_markdown:write_comparison_markdown"),
        Reporter("github", "promptci.reporting.github:write_github",
                 comparison_writer="promptci.reporting.diff_github:write_comparison_github"),
        Reporter("html", "promptci.reporting.html:write_html", suffixes=(".html", ".htm"),
                 comparison_writer="promptci.reporting.diff_html:write_comparison_html"),
    )
}
FORMATS = tuple(REPORTERS)


def reporter(fmt: str) -> Reporter:
    if fmt not in REPORTERS:
        raise PromptCIError(f"unknown report format {fmt!r} (known: {', '.join(FORMATS)})")
    return REPORTERS[fmt]


def format_for_suffix(path: Path) -> str | None:
    """The format a file name implies (`report.xml` -> junit), or None when the suffix says nothing."""
    suffix = path.suffix.lower()
    return next((r.name for r in REPORTERS.values() if suffix in r.suffixes), None)


def known_suffixes() -> list[str]:
    return [suffix for r in REPORTERS.values() for suffix in r.suffixes]


def load_writer(spec: str) -> Any:
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


def write_report(run: Run, fmt: str, stream: TextIO, verbosity: int = 0) -> None:
    """Write `run` to `stream` in `fmt`; `verbosity` (-1 quiet, 0, 1 verbose) only shapes the table."""
    chosen = reporter(fmt)
    writer = load_writer(chosen.run_writer)
    if chosen.takes_verbosity:
        writer(run, stream, verbosity)
    else:
        writer(run, stream)


COMPARISON_FORMATS = tuple(name for name, r in REPORTERS.items() if r.comparison_writer)


def write_comparison(comparison: Comparison, fmt: str, stream: TextIO, verbosity: int = 0) -> None:
    """Write what `promptci diff` found to `stream` in `fmt`; `verbosity` only shapes the table."""
    chosen = reporter(fmt)
    if chosen.comparison_writer is None:
        raise PromptCIError(f"format {fmt!r} has no report of a diff (diff writes: {', '.join(COMPARISON_FORMATS)})")
    writer = load_writer(chosen.comparison_writer)
    if chosen.takes_verbosity:
        writer(comparison, stream, verbosity)
    else:
        writer(comparison, stream)


__all__ = ["COMPARISON_FORMATS", "FORMATS", "REPORTERS", "Reporter", "format_for_suffix", "known_suffixes", "reporter",
           "write_comparison", "write_report"]
