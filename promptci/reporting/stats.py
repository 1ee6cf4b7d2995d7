"""Pure helpers every reporter shares: number formatting, printable text, case labels and the notes every report
prints (the summaries themselves are verdict/summary.py's)."""

from __future__ import annotations

import re

from promptci.types import CaseResult, Review, Run, Score, Summary
from promptci.verdict.money import Money, format_usd
from promptci.verdict.summary import CaseRate, PromptReliability

# C0 controls but newline and tab, DEL and C1 controls: ESC sequences in model output could restyle a
# terminal or a CI log, and NUL breaks some viewers. Bidi embeddings, overrides and isolates reorder
# what a reader sees (a "Trojan Source" line), so they are shown escaped too.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Show control and bidi characters as `\\xNN` / `\\uNNNN` instead of letting a terminal or viewer act on them."""
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub(_escape, text)


WORKFLOW_COMMAND = re.compile(r"^(\s*)::", re.MULTILINE)  # the Actions runner trims the line, then reads "::"


def neutralised(text: str) -> str:
    """printable(text), and `::` at a line's start (after blanks) escaped, so a CI runner reading the log does
    not obey a workflow command (`::error::`, `::add-mask::`...) written by a model, a prompt or a commit."""
    return WORKFLOW_COMMAND.sub(r"\1\\::", printable(text))


# Formatting shared by the text reporters. An unknown value prints as "-", an unknown price as
# "unknown": never as 0, which would read as free.

def format_cost(cost: float | None, unknown: int = 0) -> str:
    return "unknown" if cost is None else Money(cost, unknown).format()


def format_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.1f}s"
    return f"{value:.0f}ms"


def format_rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def format_score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary_parts(summary: Summary, duration: float | None = None) -> list[str]:
    """The totals line as plain pieces: counts, cost, tokens, cache, duration."""
    parts = [
        f"{summary.passed} passed, {summary.failed} failed, {plural(summary.errors, 'error')}, "
        f"{summary.skipped} skipped",
        f"cost {format_cost(summary.cost_usd, summary.cost_unknown)}",
        f"tokens {summary.input_tokens:,} in / {summary.output_tokens:,} out",
    ]
    if summary.cached:
        parts.append(f"{summary.cached} cached (saved {format_usd(summary.saved_usd)})")
    if duration is not None:
        parts.append(f"in {format_duration(duration)}")
    return parts


def case_label(result: CaseResult, with_repeat: bool) -> str:
    """`file:line case-id [model]`, plus the repeat index when the run repeats cases."""
    label = f"{result.file}:{result.line} {result.case_id} [{result.model}]"
    return f"{label} (repeat {result.repeat})" if with_repeat else label


def failing_reasons(result: CaseResult) -> list[str]:
    """`comparator: reason` for every failing score, or the error message for an errored result; a failed
    result whose other comparators raised names them too (`error` holds one line per comparator)."""
    if result.status == "error":
        return [result.error or "error (no message)"]
    failing = [f"{score_name(s)}: {s.reason}" if s.reason else score_name(s) for s in result.scores if not s.passed]
    return failing + ([result.error] if result.error else [])


def score_name(score: Score) -> str:
    """The comparator's name, marked when its score only reports (a judge without a fresh calibration)."""
    return score.comparator if score.gating else f"{score.comparator} (report-only)"


def broken_case_locations(run: Run) -> list[str]:
    """Where each case skipped as broken (--keep-going) is, once each, in report order."""
    return list(dict.fromkeys(b.location for b in run.broken if b.location))


def broken_details(run: Run) -> list[str]:
    """The broken cases' "path:line: message" lines (those that name a place)."""
    return [str(b) for b in run.broken if b.location]


def run_notes(run: Run) -> list[str]:
    """What every report must say at any verbosity: cases skipped as broken or by the budget, stopped models."""
    notes = []
    broken = broken_case_locations(run)
    if broken:
        notes.append(f"{plural(len(broken), 'case')} skipped (broken): {', '.join(broken)}")
    over_budget = [r for r in run.results if r.skip_kind == "budget"]
    if over_budget:
        why = (over_budget[0].skip_reason or "").removeprefix("budget: ")
        if len(over_budget) > 1:
            why = why.replace("sending it would pass", "sending them would pass")
        notes.append(f"{plural(len(over_budget), 'case')} not sent: {why}")
    located = set(broken_details(run))
    notes += [problem for problem in run.problems if problem not in located]
    return notes


def rate_line(rate: CaseRate) -> str:
    """`file:line case [model]: passed 3 of 5 (60%, 95% CI 23%-88%)`, flaky ones marked."""
    low, high = rate.interval
    flaky = " flaky" if rate.is_flaky else ""
    threshold = rate.threshold()
    return (f"{rate.file}:{rate.line} {rate.case_id} [{rate.model}]:{flaky} passed {rate.passed} of {rate.samples} "
            f"({format_rate(rate.pass_rate)}, 95% CI {format_rate(low)}-{format_rate(high)})"
            + (f"; min_pass_rate: {threshold}" if threshold else ""))


def format_fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def pass_k_text(k: int, at_k: float | None, hat_k: float | None) -> str:
    """`pass@5 0.950, pass^5 0.600`: at least one of k samples passes, all k pass."""
    return f"pass@{k} {format_fraction(at_k)}, pass^{k} {format_fraction(hat_k)}"


def reliability_line(row: PromptReliability) -> str:
    """`greet [echo]: pass@5 0.950, pass^5 0.600 (mean over 20 cases)`."""
    return (f"{row.prompt} [{row.model}]: {pass_k_text(row.k, row.pass_at_k, row.pass_hat_k)} "
            f"(mean over {plural(row.cases, 'case')} with {row.k} scored samples)")


def review_of(run: Run, result: CaseResult) -> Review | None:
    """The human review of this result's output (reviews/<prompt>.yaml), when the run was given its reviews."""
    return run.reviews.get((result.prompt, result.case_id, result.model, result.repeat))


def review_text(review: Review) -> str:
    """`reviewed bad by Ada at 2026-12-04T21:00:00Z: too familiar`: the same words in every report."""
    return printable(f"reviewed {review.verdict} by {review.by} at {review.at}" + (f": {review.note}" if review.note
                                                                                    else ""))
