"""The Markdown of a Comparison, for the pull-request comment and $GITHUB_STEP_SUMMARY: a verdict line,
the cost and latency table, regressions with their output diff in collapsed sections, then the rest.

Every name and output goes through markdown.py's code spans and fences, and the document through its
comment-size cut, so model output can neither break out nor push the comment over GitHub's limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from promptci.compare import CaseChange, Comparison, GroupTotals
from promptci.reporting.diffview import (
    CHECKS_CHANGED_TITLE,
    TRANSITION_WORDS,
    change_label,
    change_note,
    change_reviews,
    checks_changed_elsewhere,
    count_text,
    flaky_changes,
    format_p,
    fraction_pair,
    header,
    in_order,
    measure_text,
    passing_text,
    rate_text,
    review_line,
    reviewed_elsewhere,
    score_text,
    shown_statistics,
    statistics_lines,
    verdict_line,
)
from promptci.reporting.markdown import (
    MAX_DIFF_CHARS,
    MAX_DOCUMENT_CHARS,
    MAX_RELIABILITY_ROWS,
    code_fence,
    code_span,
    fit_comment,
    items_within_budget,
    truncate,
)
from promptci.reporting.stats import failing_reasons
from promptci.types import Review
from promptci.verdict.diff import decision_of
from promptci.verdict.summary import diff_case_reliability, diff_prompt_reliability

MAX_REVIEWED_LISTED = 20  # reviewed cases outside the listed sections, each a line of at most ~MAX_REVIEW_CHARS
# listed case by case; the rest are counts
DETAILED = ("regressed", "new_failing", "error", "dropped", "fixed", "new", "removed")


def _totals_table(totals: tuple[GroupTotals, ...]) -> list[str]:
    lines = ["| prompt | model | passing A -> B | cost A -> B | mean latency A -> B | tokens A -> B |",
             "|---|---|---:|---:|---:|---:|"]
    for t in totals:
        cells = [code_span(t.prompt, in_table=True), code_span(t.model, in_table=True),
                 passing_text(t), measure_text(t.cost_usd, "usd"),
                 measure_text(t.latency_ms, "ms"), count_text(t.tokens)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _details(change: CaseChange) -> list[str]:
    if not change.output_diff:
        return []
    return ["", "  <details><summary>output diff A -> B</summary>", "",
            *(f"  {line}" if line else "" for line in code_fence(truncate(change.output_diff, MAX_DIFF_CHARS), "text")),
            "", "  </details>"]


def change_item(change: CaseChange, reviews: Sequence[tuple[str, Review]] = ()) -> list[str]:
    """A bullet naming the case, then the human reviews of A's and B's outputs, its score changes, B's failing
    reasons and the output diff."""
    head = f"- {code_span(change_label(change))}"
    if change.renamed_from:
        head += f" (was {code_span(change.renamed_from)})"
    if len(change.before) > 1 or len(change.after) > 1:
        head += f": {rate_text(change)}"
    note = change_note(change)
    if note:
        head += f" ({note})"
    lines = [head, *(f"  - {code_span(review_line(side, review))}" for side, review in reviews)]
    if change.transition in ("regressed", "fixed", "error"):
        lines += [f"  - {code_span(s.comparator)}: {score_text(s.before, s.after)}"
                  for s in change.scores if s.before != s.after]
        if change.diverged:
            lines.append(f"  - conversations diverged at {code_span(change.diverged)}")
    if change.transition in ("regressed", "error") and change.after:
        lines += [f"  - {code_span(reason)}" for reason in failing_reasons(change.after[0])]
    if change.transition in ("regressed", "error"):
        lines += _details(change)
    return lines


def _section(comparison: Comparison, name: str, changes: list[CaseChange], budget: int) -> tuple[list[str], int]:
    """The section's lines within `budget` characters (at least one case), and the characters used."""
    items, used = items_within_budget(changes, lambda c: change_item(c, change_reviews(comparison, c)), budget)
    return ["", f"### {TRANSITION_WORDS[name].capitalize()}: {len(changes)}", "", *items], used


def _flaky(comparison: Comparison) -> list[str]:
    flaky = flaky_changes(comparison)
    if not flaky:
        return []
    lines = ["", f"### Flaky: {len(flaky)}", "", "Repeated samples disagreed:", ""]
    return lines + [f"- {code_span(change_label(c))}: {rate_text(c)}" for c in flaky]


def _checks_changed(comparison: Comparison) -> list[str]:
    changed = checks_changed_elsewhere(comparison, DETAILED)
    if not changed:
        return []
    return ["", f"### {CHECKS_CHANGED_TITLE.capitalize()}: {len(changed)}", "",
            *(f"- {code_span(change_label(c))}" for c in changed)]


def _reviewed(comparison: Comparison) -> list[str]:
    """Reviewed cases no section lists (still passing...), at most MAX_REVIEWED_LISTED of them."""
    reviewed = reviewed_elsewhere(comparison, DETAILED)
    if not reviewed:
        return []
    lines = ["", f"### Reviewed by a human, not listed above: {len(reviewed)}", ""]
    lines += [f"- {code_span(change_label(c))} {TRANSITION_WORDS[c.transition]}: {code_span(reviews)}"
              for c, reviews in reviewed[:MAX_REVIEWED_LISTED]]
    left = len(reviewed) - MAX_REVIEWED_LISTED
    return lines + ([f"- … {left} more (the JSON and HTML reports have every review)"] if left > 0 else [])


def _collapsed(comparison: Comparison) -> list[str]:
    counts = [f"{len(found)} {TRANSITION_WORDS[name]}" for name, found in in_order(comparison)
              if name not in DETAILED and name != "flaky"]
    return ["", f"Not listed: {', '.join(counts)}."] if counts else []


def _statistics(comparison: Comparison) -> list[str]:
    if comparison.verdict is None:
        return []
    lines = ["", "### Repeated samples", ""]
    rows = shown_statistics(comparison, everything=False)
    if rows:
        lines += [f"| case | passed A -> B | p-value | {comparison.verdict.adjustment} | drop |",
                  "|---|---:|---:|---:|---|"]
        lines += [f"| {code_span(change_label(r.change), in_table=True)} | {rate_text(r.change).split(' ', 1)[1]} | "
                  f"{format_p(r.test.p_value)} | {format_p(r.test.adjusted)} | {'yes' if r.test.is_drop else 'no'} |"
                  for r in rows]
        lines.append("")
    return lines + [f"- {line}" for line in statistics_lines(comparison)]


def _reliability(comparison: Comparison) -> list[str]:
    """With repeats: pass@k and pass^k at A and at B per prompt x model, then per case in a <details>."""
    cases = diff_case_reliability(comparison)
    rows = diff_prompt_reliability(comparison, cases)
    if not rows:
        return []
    k = rows[0].k
    lines = ["", f"### Reliability at k = {k}, A -> B", "",
             f"pass@{k}: at least one of {k} samples passes; pass^{k}: all {k} pass (unbiased estimators, mean over "
             "the cases with k scored samples at that side).", "",
             "| prompt | model | cases A -> B | pass@k A -> B | pass^k A -> B |", "|---|---|---:|---:|---:|"]
    lines += [f"| {code_span(r.prompt, in_table=True)} | {code_span(r.model, in_table=True)} | "
              f"{r.cases[0]} -> {r.cases[1]} | {fraction_pair(r.pass_at_k)} | {fraction_pair(r.pass_hat_k)} |"
              for r in rows]
    lines += ["", f"<details><summary>pass@{k} and pass^{k} per case ({len(cases)})</summary>", "",
              "| case | model | pass@k A -> B | pass^k A -> B |", "|---|---|---:|---:|"]
    lines += [f"| {code_span(f'{r.file}::{r.case_id}', in_table=True)} | {code_span(r.model, in_table=True)} | "
              f"{fraction_pair(r.pass_at_k)} | {fraction_pair(r.pass_hat_k)} |" for r in cases[:MAX_RELIABILITY_ROWS]]
    if len(cases) > MAX_RELIABILITY_ROWS:
        lines += ["", f"{len(cases) - MAX_RELIABILITY_ROWS} more in the JSON report (`--format json`)."]
    return [*lines, "", "</details>"]


def render_comparison_markdown(comparison: Comparison) -> str:
    decision = decision_of(comparison)
    lines = [f"## promptci diff {code_span(header(comparison))}", "", f"**{verdict_line(comparison)}**",
             "", decision.head(), *(f"- {code_span(f.text())}" for f in decision.findings),
             *(f"- note: {code_span(note)}" for note in decision.notes)]
    if comparison.totals:
        lines += ["", *_totals_table(comparison.totals)]
    tail = (_flaky(comparison) + _checks_changed(comparison) + _reviewed(comparison) + _collapsed(comparison)
            + _statistics(comparison) + _reliability(comparison))
    budget = MAX_DOCUMENT_CHARS - sum(len(line) + 1 for line in lines + tail)
    for name, changes in in_order(comparison):
        if name in DETAILED:
            section, used = _section(comparison, name, changes, budget)
            lines += section
            budget -= used
    return fit_comment("\n".join(lines + tail) + "\n")


def write_comparison_markdown(comparison: Comparison, stream: TextIO) -> None:
    stream.write(render_comparison_markdown(comparison))
