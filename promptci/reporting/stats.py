"""Pure helpers every reporter shares: percentiles, per prompt x model rows, totals and number formatting."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from promptci.cost.totals import format_usd, sum_costs
from promptci.types import CaseResult, Run, Summary, parse_iso

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


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default).

    None when there are no values. p50 of [1, 2, 3, 4] is 2.5; p95 of 1..20 is 19.05.
    """
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def has_response(result: CaseResult) -> bool:
    """True when a model answered (so a price applies), as opposed to a skip or a failed request."""
    if result.status == "skipped":
        return False
    return result.output is not None or result.input_tokens is not None or result.output_tokens is not None


def is_cost_unknown(result: CaseResult) -> bool:
    return result.cost_usd is None and has_response(result) and not result.cached


def result_score(result: CaseResult) -> float | None:
    """The mean of a result's score values; None when it has no scores."""
    return mean([s.value for s in result.scores])


@dataclass(frozen=True)
class GroupRow:
    """Aggregates of one prompt x model cell of the report.

    Tokens count every result that reports them, cached ones included (they describe the answers);
    cost_usd is what was spent (cache hits cost 0) and is None only when no result had a known price.
    Latency and TTFT leave out cache hits, whose timing says nothing about the model.
    """

    prompt: str
    model: str
    total: int
    passed: int
    failed: int
    errors: int
    skipped: int
    pass_rate: float | None  # passed / (total - skipped)
    mean_score: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    cost_unknown: int  # results with an answer but no known price
    saved_usd: float
    cached: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _count(results: Sequence[CaseResult], status: str) -> int:
    return sum(1 for r in results if r.status == status)


def _cost(results: Sequence[CaseResult]) -> tuple[float | None, int]:
    costs = [r.cost_usd for r in results if r.cost_usd is not None or is_cost_unknown(r)]
    known, unknown = sum_costs(costs)
    if unknown == len(costs) and unknown:
        return None, unknown
    return known, unknown


def _timings(results: Sequence[CaseResult]) -> tuple[list[float], list[float]]:
    fresh = [r for r in results if not r.cached]
    latencies = [r.latency_ms for r in fresh if r.latency_ms is not None]
    ttfts = [r.ttft_ms for r in fresh if r.ttft_ms is not None]
    return latencies, ttfts


def build_row(prompt: str, model: str, results: Sequence[CaseResult]) -> GroupRow:
    passed, skipped = _count(results, "passed"), _count(results, "skipped")
    scored = [s for s in (result_score(r) for r in results) if s is not None]
    cost, unknown = _cost(results)
    latencies, ttfts = _timings(results)
    counted = len(results) - skipped
    return GroupRow(
        prompt=prompt,
        model=model,
        total=len(results),
        passed=passed,
        failed=_count(results, "failed"),
        errors=_count(results, "error"),
        skipped=skipped,
        pass_rate=passed / counted if counted else None,
        mean_score=mean(scored),
        input_tokens=sum(r.input_tokens or 0 for r in results if not r.cached),  # billed tokens only
        output_tokens=sum(r.output_tokens or 0 for r in results if not r.cached),
        cost_usd=cost,
        cost_unknown=unknown,
        saved_usd=sum(r.saved_usd or 0.0 for r in results if r.cached),
        cached=sum(1 for r in results if r.cached),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        latency_max_ms=max(latencies, default=None),
        ttft_p50_ms=percentile(ttfts, 50),
        ttft_p95_ms=percentile(ttfts, 95),
    )


def _model_order(run: Run) -> dict[str, int]:
    order = {m: i for i, m in enumerate(run.models)}
    for r in run.results:
        order.setdefault(r.model, len(order))
    return order


def group_rows(run: Run) -> list[GroupRow]:
    """One row per (prompt, model): prompts sorted by name, models in the run's matrix order."""
    groups: dict[tuple[str, str], list[CaseResult]] = {}
    for r in run.results:
        groups.setdefault((r.prompt, r.model), []).append(r)
    order = _model_order(run)
    keys = sorted(groups, key=lambda k: (k[0], order[k[1]]))
    return [build_row(prompt, model, groups[(prompt, model)]) for prompt, model in keys]


def problem_results(run: Run) -> list[CaseResult]:
    """Failed and errored results in file, line, model, repeat order."""
    order = _model_order(run)
    bad = [r for r in run.results if r.status in ("failed", "error")]
    return sorted(bad, key=lambda r: (r.file, r.line, r.case_id, order[r.model], r.repeat))


def duration_s(run: Run) -> float | None:
    """Wall time of the run from its ISO 8601 timestamps; None when unfinished or unparsable."""
    if not run.finished_at:
        return None
    try:
        return max((parse_iso(run.finished_at) - parse_iso(run.started_at)).total_seconds(), 0.0)
    except (ValueError, TypeError):
        return None


# Formatting shared by the text reporters. An unknown value prints as "-", an unknown price as
# "unknown": never as 0, which would read as free.

def format_cost(cost: float | None, unknown: int = 0) -> str:
    if cost is None:
        return "unknown"
    if unknown and cost == 0:
        return "unknown"
    text = format_usd(cost)
    return f"{text} + {unknown} unknown" if unknown else text


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


def has_repeats(run: Run) -> bool:
    return any(r.repeat for r in run.results)


def failing_reasons(result: CaseResult) -> list[str]:
    """`comparator: reason` for every failing score, or the error message for an errored result."""
    if result.status == "error":
        return [result.error or "error (no message)"]
    return [f"{s.comparator}: {s.reason}" if s.reason else s.comparator for s in result.scores if not s.passed]


# A --keep-going problem names the broken case's file and line first: "goldens/x.yaml:12: why".
BROKEN_CASE = re.compile(r"^(?P<location>[^\s:]+\.(?:ya?ml|csv|jsonl?|txt|j2|jinja|md):\d+): ")


def broken_case_locations(run: Run) -> list[str]:
    """Where each case skipped as broken (--keep-going) is, once each, in report order."""
    found = (BROKEN_CASE.match(problem) for problem in run.problems)
    return list(dict.fromkeys(match.group("location") for match in found if match))


def run_notes(run: Run) -> list[str]:
    """What every report must say at any verbosity: cases skipped as broken or by the budget, stopped models."""
    notes = []
    broken = broken_case_locations(run)
    if broken:
        notes.append(f"{plural(len(broken), 'case')} skipped (broken): {', '.join(broken)}")
    over_budget = [r for r in run.results if r.status == "skipped" and (r.skip_reason or "").startswith("budget")]
    if over_budget:
        why = (over_budget[0].skip_reason or "").removeprefix("budget: ")
        if len(over_budget) > 1:
            why = why.replace("sending it would pass", "sending them would pass")
        notes.append(f"{plural(len(over_budget), 'case')} not sent: {why}")
    notes += [problem for problem in run.problems if not BROKEN_CASE.match(problem)]
    return notes
@dataclass(frozen=True)
class CaseRate:
    """A repeated case x model: how many of its scored samples passed, the 95% Wilson interval of that rate,
    and whether the samples disagreed (flaky: some passed, some failed)."""

    prompt: str
    case_id: str
    model: str
    file: str
    line: int
    passed: int
    samples: int  # scored samples (passed or failed); errors and skips leave no verdict
    pass_rate: float | None
    interval: tuple[float, float]

    @property
    def is_flaky(self) -> bool:
        return 0 < self.passed < self.samples

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "case_id": self.case_id, "model": self.model, "file": self.file,
                "line": self.line, "passed": self.passed, "samples": self.samples, "pass_rate": self.pass_rate,
                "interval": list(self.interval), "flaky": self.is_flaky}


def case_rates(run: Run) -> list[CaseRate]:
    """Per case x model of a repeated run (none without --repeat), in the run's order."""
    from promptci.stats import wilson_interval

    if not has_repeats(run):
        return []
    samples: dict[tuple[str, str, str, str], list[CaseResult]] = {}
    for r in run.results:
        samples.setdefault((r.file, r.prompt, r.case_id, r.model), []).append(r)
    rates = []
    for (file, prompt, case_id, model), results in samples.items():
        scored = [r for r in results if r.status in ("passed", "failed")]
        passed = sum(r.status == "passed" for r in scored)
        interval = wilson_interval(passed, len(scored))
        rates.append(CaseRate(prompt, case_id, model, file, results[0].line, passed, len(scored),
                              passed / len(scored) if scored else None, (interval.low, interval.high)))
    return rates


def flaky_cases(run: Run) -> list[CaseRate]:
    """Repeated cases whose samples disagreed: some passed, some did not."""
    return [rate for rate in case_rates(run) if rate.is_flaky]


def rate_line(rate: CaseRate) -> str:
    """`file:line case [model]: passed 3 of 5 (60%, 95% CI 23%-88%)`, flaky ones marked."""
    low, high = rate.interval
    flaky = " flaky" if rate.is_flaky else ""
    return (f"{rate.file}:{rate.line} {rate.case_id} [{rate.model}]:{flaky} passed {rate.passed} of {rate.samples} "
            f"({format_rate(rate.pass_rate)}, 95% CI {format_rate(low)}-{format_rate(high)})")
