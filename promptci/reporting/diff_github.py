"""GitHub Actions annotations of a Comparison: `::error` at each regressed case's golden line, `::warning`
where B has no verdict, `::notice` for each fixed case, then the verdict. Escaped by github.py's rules."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from promptci.compare import CaseChange, Comparison
from promptci.reporting.diffview import change_label, header, rate_text, score_text, verdict_line
from promptci.reporting.github import MAX_MESSAGE_CHARS, command, repository_prefix
from promptci.reporting.stats import failing_reasons
from promptci.verdict.diff import decision_of

KINDS = {"regressed": ("error", "regressed"), "new_failing": ("error", "is new and fails"),
         "error": ("warning", "has no verdict"), "fixed": ("notice", "fixed")}


def _message(change: CaseChange) -> str:
    lines = [f"{change_label(change)}: {change.transition.replace('_', ' ')}"]
    if len(change.before) > 1 or len(change.after) > 1:
        lines.append(rate_text(change))
    lines += [f"{s.comparator}: {score_text(s.before, s.after)}" for s in change.scores if s.before != s.after]
    if change.diverged:
        lines.append(f"conversations diverged at {change.diverged}")
    if change.transition != "fixed" and change.after:
        lines += failing_reasons(change.after[0])
    if change.output_diff and change.transition != "fixed":
        lines += ["output A -> B:", change.output_diff]
    text = "\n".join(lines)
    if len(text) > MAX_MESSAGE_CHARS:
        text = f"{text[:MAX_MESSAGE_CHARS]}\n… ({len(text) - MAX_MESSAGE_CHARS} more characters)"
    return text


def annotation(change: CaseChange) -> str:
    kind, verb = KINDS[change.transition]
    properties: dict[str, str | int] = {"file": change.file}
    if change.line:
        properties["line"] = change.line
    properties["title"] = f"{change.prompt} {change.case_id} {verb} on {change.model}"
    return command(kind, _message(change), **properties)


def render_comparison_annotations(comparison: Comparison) -> str:
    lines = [annotation(c) for name in KINDS for c in comparison.with_transition(name)]  # type: ignore[arg-type]
    decision = decision_of(comparison)
    lines += [command("notice", note, title="promptci diff") for note in decision.notes]
    lines.append(command("notice", f"{header(comparison)}: {verdict_line(comparison)} ({decision.head()})",
                         title="promptci diff"))
    return "\n".join(lines) + "\n"


def write_comparison_github(comparison: Comparison, stream: TextIO) -> None:
    stream.write(render_comparison_annotations(comparison))


def with_repository_paths(comparison: Comparison, prefix: str) -> Comparison:
    """The comparison with each case's golden file relative to the repository root."""
    if not prefix:
        return comparison
    return replace(comparison, changes=tuple(replace(c, file=f"{prefix}{c.file}") for c in comparison.changes))


def report_comparison_to_github(comparison: Comparison, project_root: Path, annotations: TextIO | None,
                                environ: Mapping[str, str] | None = None) -> None:
    """Auto-mode for `diff`, as github.report_to_github is for `run`: annotations at repository-relative
    golden lines (None: already written by --format github), and the Markdown appended to
    $GITHUB_STEP_SUMMARY when the runner sets it."""
    from promptci.reporting.diff_markdown import render_comparison_markdown

    env = os.environ if environ is None else environ
    if annotations is not None:
        annotations.write(render_comparison_annotations(with_repository_paths(comparison,
                                                                              repository_prefix(project_root))))
    summary_path = env.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as summary:
            summary.write(render_comparison_markdown(comparison) + "\n")
