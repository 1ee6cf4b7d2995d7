"""GitHub Actions workflow annotations: one `::error` per failing or errored case, at its golden's line."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from promptci.reporting.stats import failing_reasons, printable, run_notes, summary_parts
from promptci.types import CaseResult, Run
from promptci.verdict.gates import decision_of
from promptci.verdict.summary import ProblemCase, duration_s, has_repeats, problem_cases

# GitHub truncates long annotation messages anyway; keep the log readable.
MAX_MESSAGE_CHARS = 4000


def escape_data(text: str) -> str:
    """Escape a command's message as @actions/core does: %, CR and LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value: the message escapes plus `:` and `,`, which delimit properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str | int) -> str:
    props = ",".join(f"{key}={escape_property(printable(str(value)))}" for key, value in properties.items())
    text = escape_data(printable(message))
    return f"::{name} {props}::{text}" if props else f"::{name}::{text}"


def _message(result: CaseResult) -> str:
    lines = failing_reasons(result)
    lines += [s.diff for s in result.scores if not s.passed and s.diff]
    text = "\n".join(lines)
    if len(text) > MAX_MESSAGE_CHARS:
        text = f"{text[:MAX_MESSAGE_CHARS]}\n… ({len(text) - MAX_MESSAGE_CHARS} more characters)"
    return text


def _title(problem: ProblemCase, with_repeat: bool) -> str:
    result = problem.result
    verdict = "failed" if result.status == "failed" else "error"
    tally = problem.label(with_repeat).removeprefix(problem.label(False))
    return f"{result.prompt} {result.case_id} {verdict} on {result.model}{tally}"


def annotation(problem: ProblemCase, with_repeat: bool = False) -> str:
    """One `::error` line for a failing case (with --repeat: once, with how many of its samples failed)."""
    properties: dict[str, str | int] = {"file": problem.result.file}
    if problem.result.line:
        properties["line"] = problem.result.line
    properties["title"] = _title(problem, with_repeat)
    return command("error", _message(problem.result), **properties)


def render_annotations(run: Run) -> str:
    with_repeat = has_repeats(run)
    # the notes first, as every report says them at the top: drift and the upgrade verdict
    lines = [command("notice", note, title="promptci") for note in run.notes]
    lines += [annotation(problem, with_repeat) for problem in problem_cases(run)]
    lines += [command("warning", problem, title="promptci") for problem in run.problems]
    # what the problems do not say already: cases the budget kept from sending, the broken cases counted
    lines += [command("notice", note, title="promptci") for note in run_notes(run) if note not in run.problems]
    if run.interrupted:
        lines.append(command("warning", "the run was interrupted: only finished cases are reported",
                             title="promptci"))
    # The totals hold only numbers, but go through a notice so no text can start a command line.
    verdict = decision_of(run)  # the exit code's reasons
    lines += [command("notice", finding.text(), title="promptci verdict") for finding in verdict.findings]
    lines.append(command("notice", " · ".join([*summary_parts(run.summary, duration_s(run)), verdict.head()]),
                         title="promptci"))
    return "\n".join(lines) + "\n"


def write_github(run: Run, stream: TextIO) -> None:
    stream.write(render_annotations(run))


def is_github_actions(environ: dict[str, str] | None = None) -> bool:
    """True inside a GitHub Actions job (the runner sets GITHUB_ACTIONS=true)."""
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


@contextlib.contextmanager
def commands_paused(enabled: bool) -> Iterator[None]:
    """Under GitHub Actions the runner reads `::command::` lines from the log: a human report shows model
    output, so commands are stopped around it on stdout with a token the output cannot guess."""
    if not (enabled and is_github_actions()):
        yield
        return
    import secrets

    token = secrets.token_hex(16)
    sys.stdout.write(f"::stop-commands::{token}\n")
    sys.stdout.flush()
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stdout.write(f"::{token}::\n")
        sys.stdout.flush()


def repository_prefix(project_root: Path) -> str:
    """The project's folder relative to the git repository root ("" at the root, "sub/dir/" below it):
    GitHub resolves an annotation's file= from the repository root, not from the project."""
    try:
        done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=project_root, capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if done.returncode != 0 or not done.stdout.strip():
        return ""
    relative = project_root.resolve().relative_to(Path(done.stdout.strip()).resolve())
    return "" if str(relative) == "." else f"{relative.as_posix()}/"


def with_repository_paths(run: Run, prefix: str) -> Run:
    """The run with each result's file relative to the repository root."""
    if not prefix:
        return run
    return replace(run, results=tuple(replace(r, file=f"{prefix}{r.file}") for r in run.results))


def report_to_github(run: Run, project_root: Path, annotations: TextIO | None,
                     environ: dict[str, str] | None = None) -> None:
    """Auto-mode: annotations (at repository-relative golden lines) to `annotations` (None: already written
    by --format github), and the Markdown summary appended to $GITHUB_STEP_SUMMARY when the runner sets it."""
    from promptci.reporting.markdown import render_markdown

    env = os.environ if environ is None else environ
    if annotations is not None:
        annotations.write(render_annotations(with_repository_paths(run, repository_prefix(project_root))))
    summary_path = env.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as summary:
            summary.write(render_markdown(run) + "\n")
