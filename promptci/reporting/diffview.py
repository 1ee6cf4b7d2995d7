"""Pure helpers every Comparison writer shares: the order and words of transitions, case labels, the
header naming A and B, changes of cost and latency as text, the per-case tests and the verdict line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from promptci.compare import CaseChange, Comparison, GroupTotals, Measure, Side, Transition, side_status
from promptci.cost.totals import format_usd
from promptci.errors import ExitCode
from promptci.reporting.stats import format_fraction, format_ms, plural, review_text
from promptci.stats import CaseTest
from promptci.types import Review
from promptci.verdict.diff import decision_of
from promptci.verdict.policy import Gate
from promptci.verdict.summary import SidesReliability, threshold_text

# Most urgent first: what a reviewer must look at, then what changed, then what did not.
SHOWN_ORDER: tuple[Transition, ...] = ("regressed", "new_failing", "error", "dropped", "fixed", "new", "removed",
                                       "flaky", "still_failing", "skipped", "still_passing")
TRANSITION_WORDS: dict[str, str] = {
    "regressed": "regressed (passed -> failed)", "fixed": "fixed (failed -> passed)", "new": "new",
    "new_failing": "new and failing",
    "removed": "removed", "still_failing": "still failing", "still_passing": "still passing", "flaky": "flaky",
    "error": "error (no verdict)", "skipped": "skipped",
    "dropped": "dropped (not significant)",
}
MAX_REVIEW_CHARS = 240  # a review's line in a diff report: the note is cut, the full text is in reviews/
STATUS_WORDS: dict[ExitCode, str] = {ExitCode.OK: "PASSED", ExitCode.REGRESSION: "REGRESSED",
                                     ExitCode.NO_VERDICT: "NO VERDICT"}


def change_label(change: CaseChange) -> str:
    """`file:line case-id [model]`, as a Run report names a case, and how its comparators changed A -> B."""
    label = f"{change.file}:{change.line} {change.case_id} [{change.model}]"
    return f"{label} ({'; '.join(change.checks_changed)})" if change.checks_changed else label


def side_label(side: Side) -> str:
    """`HEAD~1 (3f2a1b0c9d8e)`, `working tree (3f2a1b0c9d8e, uncommitted changes)`."""
    details = [side.git.commit[:12]] if side.git.commit else []
    if side.git.dirty:
        details.append("uncommitted changes")
    return f"{side.revision} ({', '.join(details)})" if details else side.revision


def header(comparison: Comparison) -> str:
    before, after = comparison.sides
    return f"{side_label(before)} -> {side_label(after)}"


def signed(value: float, unit: str) -> str:
    sign = "+" if value > 0 else "-" if value < 0 else "±"
    magnitude = format_usd(abs(value)) if unit == "usd" else format_ms(abs(value))
    return f"{sign}{magnitude}"


def measure_text(measure: Measure, unit: str) -> str:
    """`$0.0012 -> $0.0015 (+$0.000300)`; a side without a value shows `-`, never 0."""
    def one(value: float | None) -> str:
        if value is None:
            return "-"
        return format_usd(value) if unit == "usd" else format_ms(value)

    delta = measure.delta
    change = f" ({signed(delta, unit)})" if delta is not None else ""
    return f"{one(measure.before)} -> {one(measure.after)}{change}"


def count_text(measure: Measure) -> str:
    def one(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    return f"{one(measure.before)} -> {one(measure.after)}"


def passing_text(totals: GroupTotals) -> str:
    """`3/5 -> 2/5`: cases passing out of cases present at each side."""
    def one(passed: float | None, cases: float | None) -> str:
        return "-" if not cases else f"{passed or 0:,.0f}/{cases:,.0f}"

    return f"{one(totals.passed.before, totals.cases.before)} -> {one(totals.passed.after, totals.cases.after)}"


def score_text(before: float | None, after: float | None) -> str:
    def one(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    return f"{one(before)} -> {one(after)}"


def rate_text(change: CaseChange) -> str:
    """`passed 9/10 -> 4/10`, the samples that had a verdict at each side."""
    passes_a, n_a, passes_b, n_b = change.counts
    return f"passed {passes_a}/{n_a} -> {passes_b}/{n_b}"


def drop_words(change: CaseChange) -> str:
    """`dropped (not significant at K = 3)`: every sample passed at A and failed at B, yet the test could not
    call it a drop with this K (never "flaky": flaky is mixed outcomes within a side)."""
    return f"dropped (not significant at K = {change.repeat})"


def new_words(change: CaseChange) -> str:
    """What a new case does at B: `passes`, `fails`, `has no verdict (error)` or `skipped`."""
    status = side_status(change.after)
    return {"passed": "passes", "failed": "fails", "error": "has no verdict (error)"}.get(status, status)


def threshold_note(change: CaseChange) -> str | None:
    """How B's min_pass_rate decided a repeated case at B: `min_pass_rate at B: 7/10 passed, Wilson lower 0.40 <
    0.7 required`; None without one."""
    thresholds = [r.min_pass_rate for r in change.after if r.min_pass_rate is not None]
    _, _, passes_b, n_b = change.counts
    if not thresholds or len(change.after) < 2 or not n_b:
        return None
    return f"min_pass_rate at B: {threshold_text(passes_b, n_b, min(thresholds))}"


def change_note(change: CaseChange) -> str | None:
    """The words a case's line adds to its transition: whether a new case passes, a drop's K, how B's
    min_pass_rate decided it."""
    notes = [new_words(change) if change.transition == "new" and change.after else None,
             drop_words(change) if change.transition == "dropped" else None, threshold_note(change)]
    return "; ".join(note for note in notes if note) or None


def change_reviews(comparison: Comparison, change: CaseChange) -> list[tuple[str, Review]]:
    """The human reviews of the case's outputs, ("A", review) then ("B", review): each review once per side (the
    samples that gave one output share its review)."""
    found: list[tuple[str, Review]] = []
    for side, samples, reviews in (("A", change.before, comparison.reviews[0]), ("B", change.after,
                                                                                  comparison.reviews[1])):
        for result in samples:
            review = reviews.get((result.prompt, result.case_id, result.model, result.repeat))
            if review is not None and (side, review) not in found:
                found.append((side, review))
    return found


def review_line(side: str, review: Review) -> str:
    """`B: reviewed bad by Ada at 2026-12-04T21:00:00Z: too familiar`, on one line and at most
    MAX_REVIEW_CHARS (a note is the reviewer's text: printable, never markup)."""
    return shortened(f"{side}: {review_text(review)}".replace("\n", "\\n").replace("\t", " "))


def shortened(text: str) -> str:
    """At most MAX_REVIEW_CHARS: a cut line ends in an ellipsis."""
    return text if len(text) <= MAX_REVIEW_CHARS else text[: MAX_REVIEW_CHARS - 1] + "…"


def reviewed_elsewhere(comparison: Comparison, listed: Sequence[str]) -> list[tuple[CaseChange, str]]:
    """Reviewed cases that no listed section names (still passing, still failing...), each with its review lines:
    a human's verdict on an output is worth a line even when the comparators saw no change."""
    return [(c, "; ".join(review_line(side, r) for side, r in reviews)) for c in comparison.changes
            if c.transition not in listed and (reviews := change_reviews(comparison, c))]


def in_order(comparison: Comparison) -> list[tuple[Transition, list[CaseChange]]]:
    """The transitions present, most urgent first, each with its cases."""
    return [(name, found) for name in SHOWN_ORDER if (found := comparison.with_transition(name))]


def counts_text(comparison: Comparison) -> str:
    return ", ".join(f"{len(found)} {TRANSITION_WORDS[name].split(' (')[0]}" for name, found in in_order(comparison))


@dataclass(frozen=True)
class CaseStatistics:
    change: CaseChange
    test: CaseTest


def case_statistics(comparison: Comparison) -> list[CaseStatistics]:
    """Each tested case beside its test. The verdict tests the cases sampled at both sides, in the order
    of `changes`, so they pair up in order."""
    if comparison.verdict is None:
        return []
    paired = [c for c in comparison.changes if c.counts[1] > 0 and c.counts[3] > 0]
    return [CaseStatistics(c, t) for c, t in zip(paired, comparison.verdict.cases, strict=True)]


def statistics_lines(comparison: Comparison) -> list[str]:
    """The suite test and the method, as plain sentences (the per-case p-values are a table)."""
    verdict = comparison.verdict
    if verdict is None:
        return []
    return [f"suite p-value {format_p(verdict.suite_p_value)} ({verdict.adjustment} "
            f"{format_p(verdict.suite_adjusted)}), "
            f"alpha {verdict.alpha:g}: {'a drop across the suite' if verdict.is_suite_drop else 'no suite-wide drop'}",
            f"method: {verdict.method}"]


def format_p(value: float) -> str:
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def shown_statistics(comparison: Comparison, everything: bool) -> list[CaseStatistics]:
    """The cases worth a row: any whose pass rate fell (all with `everything`), smallest p first."""
    rows = case_statistics(comparison)
    if not everything:
        rows = [r for r in rows if _fell(r.change)]
    return sorted(rows, key=lambda r: (r.test.adjusted, r.test.p_value))


def _fell(change: CaseChange) -> bool:
    passes_a, n_a, passes_b, n_b = change.counts
    return passes_b * n_a < passes_a * n_b


def verdict_line(comparison: Comparison) -> str:
    """`REGRESSED: 2 regressed, 1 fixed, 40 still passing`: the status word of the verdict's exit code, then
    counts."""
    decision = decision_of(comparison)
    code = decision.exit_code
    word = STATUS_WORDS.get(code, code.name)
    reason = ""
    if decision.by_gate(Gate.REGRESSION) and not comparison.with_transition("regressed", "new_failing"):
        reason = " (the pass rate fell across the suite)"
    counts = counts_text(comparison) or "no cases"
    return f"{word}{reason}: {counts}"


CHECKS_CHANGED_TITLE = "comparators changed A -> B (their verdicts do not compare as they stand)"


def checks_changed_elsewhere(comparison: Comparison, listed: Sequence[str]) -> list[CaseChange]:
    """Cases whose comparators changed A -> B and that no listed section names: a loosened check can keep a
    worse output passing, so a report names them even when they are still passing."""
    return [c for c in comparison.changes if c.checks_changed and c.transition not in listed]


def flaky_changes(comparison: Comparison) -> list[CaseChange]:
    """Cases whose repeated samples disagreed at either side, whatever their transition."""
    return [c for c in comparison.changes if c.is_flaky]


RELIABILITY_TITLE = "reliability A -> B (pass@k: one of k samples passes; pass^k: all k pass)"


def fraction_pair(values: tuple[float | None, float | None]) -> str:
    """`0.950 -> 0.800`: at A, then at B (`-` where a side has none)."""
    return f"{format_fraction(values[0])} -> {format_fraction(values[1])}"


def sides_pass_k_text(row: SidesReliability) -> str:
    """`pass@5 0.950 -> 0.800, pass^5 0.600 -> 0.200`: at A, then at B."""
    return f"pass@{row.k} {fraction_pair(row.pass_at_k)}, pass^{row.k} {fraction_pair(row.pass_hat_k)}"


def prompt_reliability_line(row: SidesReliability) -> str:
    """`greet [m]: pass@5 0.950 -> 0.800, pass^5 0.600 -> 0.200 (mean over 4 -> 4 cases with 5 scored samples)`."""
    counted = (plural(row.cases[0], "case") if row.cases[0] == row.cases[1]
               else f"{row.cases[0]} -> {plural(row.cases[1], 'case')}")
    return f"{row.prompt} [{row.model}]: {sides_pass_k_text(row)} (mean over {counted} with {row.k} scored samples)"
