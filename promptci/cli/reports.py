"""Writing a run's or a comparison's reports: stdout, every -o file, and GitHub Actions' annotations and
step summary. Which reports, and in what shape, is promptci.reporting's; this only sends them."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

if TYPE_CHECKING:
    from promptci.api import RunOutcome
    from promptci.compare import Comparison
    from promptci.reporting.targets import Target
    from promptci.types import Run
    from promptci.verdict.policy import Verdict


def is_github_actions() -> bool:
    from promptci.reporting.github import is_github_actions as check

    return check()


def publish(run_record: Run, fmt: str, reports: list[Target], verbosity: int, project_root: Path,
            github: bool) -> None:
    """The reports of a run or a merge; under GitHub Actions (unless --no-github) also the annotations and
    the step summary. JSON escapes newlines and the github format is commands: only the other formats can
    carry a line of model output that the runner would read as a command, so only they are fenced."""
    run_record = reviewed(run_record, project_root)
    write_reports(run_record, fmt, reports, verbosity, project_root, github)
    if github and is_github_actions():
        from promptci.reporting.github import report_to_github

        report_to_github(run_record, project_root, None if fmt == "github" else sys.stderr)


def write_reports(run_record: Run, fmt: str, reports: list[Target], verbosity: int,
                  project_root: Path | None = None, github: bool = True) -> None:
    """The report on stdout (the table, or --format; fenced from GitHub's command reader), then every -o file;
    notes that a machine format on stdout cannot carry go to stderr. The run comes with its reviews (reviewed())."""
    from promptci.reporting import write_report
    from promptci.reporting.github import commands_paused
    from promptci.reporting.targets import run_for_format

    with commands_paused(github and fmt not in ("json", "github")):
        if fmt == "table":
            from promptci.reporting.terminal import print_report

            print_report(run_record, verbosity=verbosity)
        else:
            from promptci.reporting.stats import run_notes

            write_report(run_for_format(run_record, fmt, project_root), fmt, sys.stdout, verbosity=verbosity)
            for note in (*run_record.notes, *run_notes(run_record)):
                typer.echo(f"promptci: note: {note}", err=True)
        write_files(run_record, reports, verbosity, project_root)


def reviewed(run_record: Run, project_root: Path | None) -> Run:
    """The run with the project's human reviews of its outputs (reviews/*.yaml), which every report shows."""
    if project_root is None:
        return run_record
    from promptci.viewer.reviews import with_reviews

    return with_reviews(project_root, run_record)


def write_files(run_record: Run, reports: list[Target], verbosity: int, project_root: Path | None) -> None:
    from promptci.reporting import write_report
    from promptci.reporting.targets import run_for_format

    write_targets(reports, lambda report_format, stream: write_report(
        run_for_format(run_record, report_format, project_root), report_format, stream, verbosity=verbosity))


def write_targets(reports: list[Target], write: Callable[[str, TextIO], None]) -> None:
    """Every -o file: one target failing does not stop the others; the worst failure is raised after."""
    from promptci.reporting.targets import report_write_error

    failures = []
    for report_format, path in reports:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_whole(path, functools.partial(write, report_format))
        except OSError as error:
            failures.append(report_write_error(path, report_format, error))
    if failures:
        raise max(failures, key=lambda failure: failure.exit_code)


def write_whole(path: Path, write: Callable[[TextIO], None]) -> None:
    """Write a file through a temp file in its folder, renamed over it once complete: a full disk or a crash
    leaves the previous file whole, never a truncated one. A target that is not a regular file (a device such
    as /dev/stdout, a pipe, a folder: its error) is written in place."""
    import os
    import tempfile

    if path.exists() and not path.is_file():
        with path.open("w", encoding="utf-8") as stream:
            write(stream)
        return
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~current_umask()  # not mkstemp's 0600
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with open(handle, "w", encoding="utf-8") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(partial, mode)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_comparison(comparison: Comparison, fmt: str, reports: list[Target], verbosity: int,
                       project_root: Path, github: bool) -> None:
    """publish() for a Comparison: stdout, every -o file, and under GitHub Actions the annotations and summary;
    each with the human reviews of A's and B's outputs, read once here."""
    from promptci.reporting import write_comparison
    from promptci.reporting.github import commands_paused
    from promptci.reporting.targets import comparison_for_format
    from promptci.viewer.reviews import comparison_with_reviews

    comparison = comparison_with_reviews(project_root, comparison)

    with commands_paused(github and fmt not in ("json", "github")):
        write_comparison(comparison_for_format(comparison, fmt, project_root), fmt, sys.stdout, verbosity)
    write_targets(reports, lambda report_format, stream: write_comparison(
        comparison_for_format(comparison, report_format, project_root), report_format, stream, verbosity))
    if github and is_github_actions():
        from promptci.reporting.diff_github import report_comparison_to_github

        report_comparison_to_github(comparison, project_root, None if fmt == "github" else sys.stderr)


def print_gate(outcome: RunOutcome, fmt: str) -> None:
    """The verdict where a machine format on stdout does not carry it for a person: on stderr (the table
    prints it itself)."""
    if fmt != "table":
        print_verdict(outcome.verdict)


def print_verdict(verdict: Verdict) -> None:
    typer.echo(f"promptci: {verdict.line()}", err=True)
    for finding in verdict.findings:
        typer.echo(f"promptci: {finding.text()}", err=True)
    for note in verdict.notes:
        typer.echo(f"promptci: note: {note}", err=True)
