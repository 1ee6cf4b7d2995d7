"""The HTML report: one self-contained page (no network, works from file://) with filters, search and
side-by-side expected / actual / diff per case, models side by side for a matrix.

Model output is untrusted. It reaches the page only as JSON inside <script type="application/json">
(with <, >, &, U+2028 and U+2029 escaped, so nothing can close the element), and the page's one script
renders it with textContent. A Content-Security-Policy allows only that script and that stylesheet, by
hash: an injected <script> or onerror attribute could not run even if it reached the DOM.
"""

from __future__ import annotations

from typing import Any, TextIO

from promptci.metrics import metric_table
from promptci.reporting.html_assets import PAGE_CSS, PAGE_JS
from promptci.reporting.page import render_page
from promptci.reporting.sidebyside import measure_cells, prompt_sides
from promptci.reporting.stats import (
    broken_details,
    format_cost,
    pass_k_text,
    printable,
    reliability_line,
    review_of,
    review_text,
    run_notes,
    score_name,
)
from promptci.reporting.transcript import transcript_lines
from promptci.types import CaseResult, Review, Run
from promptci.verdict.gates import decision_of
from promptci.verdict.money import Money
from promptci.verdict.summary import CaseRate, case_rates, duration_s, group_rows, prompt_reliability


def _text(value: str | None) -> str | None:
    return printable(value) if value is not None else None


def _case(result: CaseResult, review: Review | None) -> dict[str, Any]:
    failing = [s for s in result.scores if not s.passed]
    return {
        "p": result.prompt, "c": result.case_id, "f": result.file, "l": result.line, "m": result.model,
        "r": result.repeat, "s": result.status, "o": _text(result.output), "x": _text(result.expected),
        "d": _text("\n".join(s.diff for s in failing if s.diff)) or None,
        "why": [_text(f"{score_name(s)}: {s.reason}" if s.reason else score_name(s)) for s in failing],
        "e": _text(result.error or result.skip_reason), "t": list(result.tags),
        "usd": result.cost_usd, "ms": result.latency_ms, "ttft": result.ttft_ms,
        "tin": result.input_tokens, "tout": result.output_tokens, "k": result.cached,
        "rv": [review.verdict, review_text(review)] if review else None,  # a human's review of this output
        "conv": _text("\n".join(transcript_lines(result.transcript))) if result.transcript else None,
    }


def _prompt_sides(run: Run) -> list[dict[str, Any]]:
    """Each golden file's prompts in columns, per model, with the cells every report shows."""
    return [{"file": sides.file, "cases": sides.cases, "prompts": list(sides.prompts),
             "models": [[model, measure_cells(sides, model)] for model in sides.models]}
            for sides in prompt_sides(run)]


def _matrix(run: Run) -> dict[str, Any] | None:
    """With several models: per prompt the models side by side, and every case where they disagree."""
    if len(run.models) < 2:
        return None
    from promptci.matrix import disagreements, side_by_side
    from promptci.reporting.matrixview import MATRIX_METRICS, cell_texts

    first: dict[tuple[str, str, str, str], int] = {}
    for index, result in enumerate(run.results):
        first.setdefault((result.file, result.prompt, result.case_id, result.model), index)
    return {
        "metrics": list(MATRIX_METRICS),
        "rows": [{"prompt": row.prompt, "cells": {cell.model: cell_texts(cell) for cell in row.cells}}
                 for row in side_by_side(run)],
        # each model's output by the index of its first sample in `cases`, which holds it already
        "disagree": [{"p": d.prompt, "c": d.case_id, "f": d.file, "l": d.line,
                      "by": [[model, status, first[(d.file, d.prompt, d.case_id, model)]]
                             for model, status, _ in d.by_model]}
                     for d in disagreements(run)],
    }


def _reliability_text(rate: CaseRate) -> str:
    threshold = rate.threshold()
    return pass_k_text(rate.k, rate.pass_at_k, rate.pass_hat_k) + (f"; min_pass_rate: {threshold}" if threshold else "")


def report_data(run: Run) -> dict[str, Any]:
    """Everything the page shows, as plain JSON."""
    summary = run.summary
    rates = case_rates(run)
    return {
        "run": {"id": run.run_id, "commit": run.git.commit, "dirty": run.git.dirty, "started": run.started_at,
                "seconds": duration_s(run), "models": list(run.models), "interrupted": run.interrupted,
                # at the top, as every report: drift and the verdict, then budget, rate-limit and stopped models
                "verdict": printable(decision_of(run).line()),  # the exit code's words, first on the page
                "notes": [printable(note) for note in (*run.notes, *run_notes(run))],
                "problems": [printable(p) for p in broken_details(run)]},  # broken cases' details
        "summary": {"total": summary.total, "passed": summary.passed, "failed": summary.failed,
                    "errors": summary.errors, "skipped": summary.skipped, "cost_usd": summary.cost_usd,
                    "cost_text": Money(summary.cost_usd, summary.cost_unknown).format(),
                    "cached": summary.cached, "input_tokens": summary.input_tokens,
                    "output_tokens": summary.output_tokens},
        "groups": [{**row.to_dict(), "cost_text": format_cost(row.cost_usd, row.cost_unknown)}
                   for row in group_rows(run)],
        "metrics": [[v.metric, v.prompt, v.model, v.mean_score, v.pass_rate, v.scores]
                    for v in metric_table(run.results)],
        "sides": _prompt_sides(run),
        "matrix": _matrix(run),
        # with --repeat: per case x model [prompt, case, model, file, line, passed, samples, low, high, flaky]
        "rates": [[r.prompt, r.case_id, r.model, r.file, r.line, r.passed, r.samples, *r.interval, r.is_flaky]
                  for r in rates],
        # in the same order: "pass@k …, pass^k …[; min_pass_rate: …]"; then pass@k / pass^k per prompt x model
        "rates_k": [printable(_reliability_text(r)) for r in rates],
        "reliability": [printable(reliability_line(row)) for row in prompt_reliability(run, rates)],
        "cases": [_case(r, review_of(run, r)) for r in run.results],
    }


_BODY = """<header>
<h1>promptci run <code id="run-id"></code></h1>
<p id="run-meta"></p>
<p id="counts"></p>
<ul id="notes"></ul>
<ul id="problems"></ul>
</header>
<section><h2>By prompt and model</h2><table id="groups"><thead><tr><th>prompt</th><th>model</th><th>passed</th>
<th>failed</th><th>errors</th><th>pass rate</th><th>cost (USD)</th><th>tokens in / out</th>
<th>latency p50 / p95 (ms)</th><th>TTFT p50 (ms)</th></tr></thead><tbody></tbody></table></section>
<section id="metrics-section" hidden><h2>Metrics</h2><table id="metrics"><thead><tr><th>metric</th><th>prompt</th>
<th>model</th><th>value</th><th>pass rate</th><th>scores</th></tr></thead><tbody></tbody></table></section>
<section id="sides-section" hidden><h2>Prompts side by side</h2><div id="sides"></div></section>
<section id="matrix-section" hidden><h2>Models side by side</h2><table id="matrix"><thead><tr id="matrix-head">
<th>prompt</th><th>metric</th></tr></thead><tbody></tbody></table>
<h3 id="disagree-title"></h3><div id="disagree"></div></section>
<section id="rates-section" hidden><h2>Pass rate per case</h2><p id="rates-summary"></p><ul id="flaky"></ul>
<h3>Reliability (pass@k: one of k samples passes; pass^k: all k pass)</h3><ul id="reliability"></ul>
<details id="rates-details"><summary>every repeated case</summary><table id="rates"><thead><tr><th>case</th>
<th>model</th><th>where</th><th>passed</th><th>pass rate (95% CI)</th><th></th><th>pass@k, pass^k</th></tr></thead>
<tbody></tbody></table>
</details></section>
<section><h2>Cases</h2>
<form id="filters">
<label>prompt <select id="f-prompt"><option value="">all</option></select></label>
<label>model <select id="f-model"><option value="">all</option></select></label>
<label>status <select id="f-status"><option value="">all</option><option>passed</option><option>failed</option>
<option>error</option><option>skipped</option></select></label>
<label>tag <select id="f-tag"><option value="">all</option></select></label>
<label>search <input id="f-q" type="search" placeholder="id, output, reason"></label>
<button type="button" id="expand-all">expand shown</button>
</form>
<p id="shown"></p>
<table id="cases"><thead><tr id="cases-head"><th>case</th></tr></thead><tbody></tbody></table>
</section>
"""


def render_html(run: Run) -> str:
    return render_page("promptci report", _BODY, PAGE_CSS, PAGE_JS, report_data(run))


def write_html(run: Run, stream: TextIO) -> None:
    stream.write(render_html(run))
