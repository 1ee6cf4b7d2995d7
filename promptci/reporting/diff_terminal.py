"""The terminal report of a Comparison: A -> B, totals per prompt x model, then the cases that changed
(regressions first, with score changes and the output diff), the statistics of repeats and the verdict.

Shares terminal.py's rules: untrusted text neutralised, 4 KB per case, tables fitted to the width."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.text import Text

from promptci.compare import CaseChange, Comparison, GroupTotals
from promptci.errors import ExitCode
from promptci.reporting.diffview import (
    CHECKS_CHANGED_TITLE,
    RELIABILITY_TITLE,
    TRANSITION_WORDS,
    change_label,
    change_note,
    change_reviews,
    checks_changed_elsewhere,
    count_text,
    flaky_changes,
    format_p,
    header,
    in_order,
    measure_text,
    passing_text,
    prompt_reliability_line,
    rate_text,
    review_line,
    reviewed_elsewhere,
    score_text,
    shown_statistics,
    sides_pass_k_text,
    statistics_lines,
    verdict_line,
)
from promptci.reporting.fit import Column, Sheet, print_fitted
from promptci.reporting.stats import failing_reasons
from promptci.reporting.terminal import capped, colored_diff, indent, make_console, more_bytes_note, one_line, untrusted
from promptci.types import Review
from promptci.verdict.diff import decision_of
from promptci.verdict.summary import diff_case_reliability, diff_prompt_reliability

STYLES = {"regressed": "bold red", "new_failing": "bold red", "error": "bold magenta", "fixed": "bold green",
          "new": "cyan", "removed": "yellow", "flaky": "yellow", "still_failing": "red", "skipped": "dim",
          "still_passing": "green", "dropped": "bold yellow"}
TOTALS_DROP_FIRST = ("tokens", "latency (mean)")
# Shown case by case at default verbosity; the others are a count unless -v.
DETAILED = ("regressed", "new_failing", "error", "dropped", "fixed", "new", "removed", "flaky")
QUIET = ("regressed", "new_failing", "error")
VERBOSE = (*DETAILED, "still_failing", "skipped")


def totals_sheet(totals: tuple[GroupTotals, ...], console: Console) -> Sheet:
    columns = (Column("prompt", is_name=True), Column("model", is_name=True), Column("passing"),
               Column("cost"), Column("latency (mean)"), Column("tokens"))
    rows = tuple((Text(one_line(t.prompt, console)), Text(one_line(t.model, console)),
                  _passing_cell(t), Text(measure_text(t.cost_usd, "usd")),
                  Text(measure_text(t.latency_ms, "ms")), Text(count_text(t.tokens)))
                 for t in totals)
    return Sheet("By prompt and model (A -> B)", columns, rows, TOTALS_DROP_FIRST)


def _passing_cell(totals: GroupTotals) -> Text:
    before, after = totals.passed.before or 0, totals.passed.after or 0
    style = "red" if after < before else "green" if after > before else ""
    return Text(passing_text(totals), style=style)


def _heading(change: CaseChange, console: Console) -> Text:
    word = TRANSITION_WORDS[change.transition].split(" (")[0].upper()
    text = Text(f"{word} ", style=STYLES[change.transition]) + Text(one_line(change_label(change), console))
    note = change_note(change)
    if note:
        text.append(f" ({note})", style="yellow" if change.transition == "dropped" else "")
    if change.renamed_from:
        text.append(f" (was {one_line(change.renamed_from, console)})", style="dim")
    return text


def _capped_text(text: str, console: Console, run_id: str) -> Text:
    head, left_out = capped(text)
    shown = Text(untrusted(head, console))
    return shown + more_bytes_note(left_out, run_id) if left_out else shown


def print_change(console: Console, change: CaseChange, verbosity: int, run_id: str,
                 reviews: Sequence[tuple[str, Review]] = ()) -> None:
    """One case: heading, pass counts when repeated, the human reviews of A's and B's outputs, score changes, B's
    reasons, the output diff."""
    console.print(_heading(change, console), soft_wrap=True)
    if len(change.before) > 1 or len(change.after) > 1:
        console.print(indent(Text(rate_text(change), style="dim"), 2))
    for side, review in reviews:
        console.print(indent(_review_text(side, review, console), 2), soft_wrap=True)
    if change.transition not in ("regressed", "fixed", "error"):
        return
    for score in change.scores:
        if score.before != score.after:
            line = f"{one_line(score.comparator, console)}: {score_text(score.before, score.after)}"
            console.print(indent(Text(line), 2))
    if change.diverged:
        console.print(indent(Text("conversations diverged at " + one_line(change.diverged, console)), 2))
    latest = change.after[0] if change.after else None
    if latest is not None and change.transition != "fixed":
        for reason in failing_reasons(latest):
            console.print(indent(_capped_text(reason, console, run_id), 2))
    if change.output_diff and verbosity >= 0:
        console.print(indent(Text("output A -> B:", style="dim"), 2))
        console.print(indent(colored_diff(change.output_diff, verbosity, console, run_id), 4))


def _review_text(side: str, review: Review, console: Console) -> Text:
    return Text(one_line(review_line(side, review), console), style="bold green" if review.verdict == "good"
                else "bold red")


def print_section(console: Console, comparison: Comparison, name: str, changes: list[CaseChange], verbosity: int,
                  run_id: str) -> None:
    console.print()
    console.print(Text(f"{TRANSITION_WORDS[name]}: {len(changes)}", style=STYLES[name]))
    for change in changes:
        print_change(console, change, verbosity, run_id, change_reviews(comparison, change))


def print_statistics(console: Console, comparison: Comparison, verbosity: int) -> None:
    rows = shown_statistics(comparison, everything=verbosity > 0)
    console.print()
    if rows:
        adjusted = comparison.verdict.adjustment if comparison.verdict else "adjusted"
        columns = (Column("case", is_name=True), Column("passed A -> B"), Column("p-value"), Column(adjusted),
                   Column("drop"))
        cells = tuple((Text(one_line(change_label(r.change), console)), Text(rate_text(r.change).split(" ", 1)[1]),
                       Text(format_p(r.test.p_value)), Text(format_p(r.test.adjusted)),
                       Text("yes" if r.test.is_drop else "no", style="bold red" if r.test.is_drop else ""))
                      for r in rows)
        title = "Repeated samples: every case" if verbosity > 0 else "Repeated samples: cases whose pass rate fell"
        print_fitted(Sheet(title, columns, cells, (adjusted,)), console)
    for line in statistics_lines(comparison):
        console.print(Text(line, style="dim" if line.startswith("method") else ""), soft_wrap=True)


def print_reliability(console: Console, comparison: Comparison, verbosity: int) -> None:
    """With repeats: pass@k and pass^k at A and at B per prompt x model; with -v per case too."""
    cases = diff_case_reliability(comparison)
    rows = diff_prompt_reliability(comparison, cases)
    if not rows:
        return
    console.print()
    console.print(Text(RELIABILITY_TITLE + ":", style="bold"))
    for row in rows:
        console.print(Text("  " + one_line(prompt_reliability_line(row), console)), soft_wrap=True)
    if verbosity > 0:
        for row in cases:
            label = f"{row.file}::{row.case_id} [{row.model}]"
            console.print(Text("    " + one_line(f"{label}: {sides_pass_k_text(row)}", console)), soft_wrap=True)


def render_comparison(comparison: Comparison, console: Console, verbosity: int = 0) -> None:
    """The whole report. -q: regressions, errors and the verdict; -v: every case, still failing included."""
    run_id = comparison.sides[1].run_id or "RUN"
    console.print(Text("promptci diff ", style="bold") + Text(one_line(header(comparison), console)), soft_wrap=True)
    if verbosity >= 0 and comparison.totals:
        console.print()
        print_fitted(totals_sheet(comparison.totals, console), console)
    shown: tuple[str, ...] = QUIET if verbosity < 0 else DETAILED if verbosity == 0 else VERBOSE
    collapsed: list[str] = []
    for name, changes in in_order(comparison):
        if name in shown:
            print_section(console, comparison, name, changes, verbosity, run_id)
        elif name != "still_passing":
            collapsed.append(f"{len(changes)} {TRANSITION_WORDS[name]}")
    flaky = [c for c in flaky_changes(comparison) if c.transition != "flaky"]
    if flaky and verbosity >= 0:
        console.print()
        console.print(Text(f"flaky (samples disagreed): {len(flaky)}", style="yellow"))
        for change in flaky:
            console.print(Text(one_line(change_label(change), console)) + Text(f"  {rate_text(change)}", style="dim"))
    changed_checks = checks_changed_elsewhere(comparison, shown)
    if changed_checks:
        console.print()
        console.print(Text(f"{CHECKS_CHANGED_TITLE}: {len(changed_checks)}", style="yellow"))
        for change in changed_checks:
            console.print(Text(one_line(change_label(change), console)))
    reviewed = reviewed_elsewhere(comparison, shown) if verbosity >= 0 else []
    if reviewed:
        console.print()
        console.print(Text(f"reviewed by a human, not listed above: {len(reviewed)}", style="bold"))
        for change, reviews in reviewed:
            console.print(Text(one_line(f"{change_label(change)} ({TRANSITION_WORDS[change.transition]})", console))
                          + Text(f"  {one_line(reviews, console)}", style="dim"), soft_wrap=True)
    if collapsed:
        console.print()
        console.print(Text(f"{', '.join(collapsed)} (-v lists them)", style="dim"))
    if comparison.verdict is not None:
        print_statistics(console, comparison, verbosity)
    if verbosity >= 0:
        print_reliability(console, comparison, verbosity)
    console.print()
    decision = decision_of(comparison)
    for note in decision.notes:
        console.print(Text("note: ", style="yellow") + Text(one_line(note, console)), soft_wrap=True)
    console.print(Text(decision.head(), style="bold"))
    for finding in decision.findings:
        console.print(Text("  " + one_line(finding.text(), console)), soft_wrap=True)
    bad = decision.exit_code != ExitCode.OK
    console.print(Text(verdict_line(comparison), style="bold red" if bad else "bold green"), soft_wrap=True)


def write_comparison_table(comparison: Comparison, stream: TextIO, verbosity: int = 0) -> None:
    render_comparison(comparison, make_console(stream), verbosity)
