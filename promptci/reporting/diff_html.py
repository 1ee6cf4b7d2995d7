"""The HTML page of a Comparison: A -> B, totals, and every case with its transition, filterable, with A's and
B's outputs side by side and the output diff. Same safety as html.py: data only as escaped JSON, rendered
with textContent, under a Content-Security-Policy that allows only this page's script and style."""

from __future__ import annotations

from typing import Any, TextIO

from promptci.compare import CaseChange, Comparison, GroupTotals, Measure, side_status
from promptci.reporting.diff_html_assets import DIFF_CSS, DIFF_JS
from promptci.reporting.diffview import (
    SHOWN_ORDER,
    case_statistics,
    change_label,
    change_reviews,
    flaky_changes,
    format_p,
    header,
    measure_text,
    prompt_reliability_line,
    rate_text,
    review_line,
    sides_pass_k_text,
    statistics_lines,
    verdict_line,
)
from promptci.reporting.page import render_page
from promptci.reporting.stats import failing_reasons, printable
from promptci.types import CaseResult, Review
from promptci.verdict.diff import decision_of
from promptci.verdict.summary import diff_case_reliability, diff_prompt_reliability


def _text(value: str | None) -> str | None:
    return printable(value) if value is not None else None


def _pair(measure: Measure) -> list[float | None]:
    return [measure.before, measure.after]


def _status(samples: tuple[CaseResult, ...]) -> str:
    return side_status(samples) if samples else "absent"


def _case(change: CaseChange, p_value: str | None, reviews: list[tuple[str, Review]]) -> dict[str, Any]:
    repeated = len(change.before) > 1 or len(change.after) > 1
    passes_a, n_a, passes_b, n_b = change.counts
    return {
        "p": printable(change.prompt), "c": printable(change.case_id), "m": printable(change.model),
        "f": printable(change.file), "l": change.line, "t": change.transition,
        "a": _status(change.before), "b": _status(change.after),
        "ra": f"{passes_a}/{n_a}" if repeated and change.before else None,
        "rb": f"{passes_b}/{n_b}" if repeated and change.after else None,
        "oa": _text(change.before[0].output) if change.before else None,
        "ob": _text(change.after[0].output) if change.after else None,
        "d": _text(change.output_diff),
        "sc": [[printable(s.comparator), s.before, s.after] for s in change.scores],
        "why": [printable(f"comparator changed: {c}") for c in change.checks_changed]
        + ([printable(r) for r in failing_reasons(change.after[0])] if change.after else []),
        "usd": _pair(change.cost_usd), "usd_text": measure_text(change.cost_usd, "usd"), "ms": _pair(change.latency_ms),
        "pv": p_value,
        "rv": [[review.verdict, review_line(side, review)] for side, review in reviews],  # humans' reviews, A then B
    }


def _group(totals: GroupTotals) -> dict[str, Any]:
    return {"prompt": printable(totals.prompt), "model": printable(totals.model), "passed": _pair(totals.passed),
            "cases": _pair(totals.cases), "cost_usd": _pair(totals.cost_usd),
            "cost_text": measure_text(totals.cost_usd, "usd"), "latency_ms": _pair(totals.latency_ms),
            "tokens": _pair(totals.tokens)}


def comparison_data(comparison: Comparison) -> dict[str, Any]:
    """Everything the page shows, as plain JSON: cases most urgent first."""
    adjustment = comparison.verdict.adjustment if comparison.verdict else "adjusted"
    case_rows = diff_case_reliability(comparison)
    pass_k = {(r.file, r.prompt, r.case_id, r.model): sides_pass_k_text(r) for r in case_rows}
    p_values = {id(s.change): f"p {format_p(s.test.p_value)}, {adjustment} {format_p(s.test.adjusted)}"
                for s in case_statistics(comparison)}
    ordered = sorted(comparison.changes, key=lambda c: SHOWN_ORDER.index(c.transition))
    return {
        "header": printable(header(comparison)),
        "verdict": f"{decision_of(comparison).line()} · {verdict_line(comparison)}",
        "decision_notes": [printable(note) for note in decision_of(comparison).notes],
        "statistics": statistics_lines(comparison),
        "transitions": list(SHOWN_ORDER),
        "groups": [_group(t) for t in comparison.totals],
        "flaky": [printable(f"{change_label(c)}: {rate_text(c)}") for c in flaky_changes(comparison)],
        "reliability": [printable(prompt_reliability_line(r)) for r in diff_prompt_reliability(comparison, case_rows)],
        "cases": [{**_case(c, p_values.get(id(c)), change_reviews(comparison, c)),
                   "pk": pass_k.get((c.file, c.prompt, c.case_id, c.model))} for c in ordered],
    }


_BODY = """<header>
<h1>promptci diff <code id="sides"></code></h1>
<p id="verdict"></p>
<ul id="statistics"></ul>
</header>
<section><h2>By prompt and model (A → B)</h2><table id="groups"><thead><tr><th>prompt</th><th>model</th>
<th>passing</th><th>cost (USD)</th><th>mean latency (ms)</th><th>tokens</th></tr></thead><tbody></tbody></table>
</section>
<section id="flaky-section" hidden><h2>Flaky cases</h2><ul id="flaky"></ul></section>
<section id="reliability-section" hidden><h2>Reliability A → B (pass@k: one of k samples passes; pass^k: all k pass)
</h2><ul id="reliability"></ul></section>
<section><h2>Cases</h2>
<form id="filters">
<label>transition <select id="f-transition"><option value="">all</option></select></label>
<label>prompt <select id="f-prompt"><option value="">all</option></select></label>
<label>model <select id="f-model"><option value="">all</option></select></label>
<label>search <input id="f-q" type="search" placeholder="id, output, reason"></label>
<button type="button" id="expand-all">expand shown</button>
</form>
<p id="shown"></p>
<table id="cases"><thead><tr><th>case</th><th>transition</th><th>A</th><th>B</th><th>test</th></tr></thead>
<tbody></tbody></table>
</section>
"""


def render_comparison_html(comparison: Comparison) -> str:
    return render_page("promptci diff", _BODY, DIFF_CSS, DIFF_JS, comparison_data(comparison))


def write_comparison_html(comparison: Comparison, stream: TextIO) -> None:
    stream.write(render_comparison_html(comparison))
