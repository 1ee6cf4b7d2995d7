"""A Markdown summary for $GITHUB_STEP_SUMMARY and pull-request comments.

Anything that comes from a model or a project file goes inside a code span or a code fence sized
so its content cannot close it: no raw HTML, no @mentions, no table breaks from model output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO, TypeVar

from promptci.metrics import metric_table
from promptci.reporting.sidebyside import measure_cells, prompt_sides
from promptci.reporting.stats import (
    case_label,
    failing_reasons,
    format_cost,
    format_fraction,
    format_ms,
    format_rate,
    format_score,
    printable,
    review_of,
    review_text,
    summary_parts,
)
from promptci.reporting.transcript import transcript_lines
from promptci.types import CaseResult, Review, Run
from promptci.verdict.gates import decision_of
from promptci.verdict.policy import Verdict
from promptci.verdict.summary import (
    GroupRow,
    ProblemCase,
    case_rates,
    duration_s,
    flaky_cases,
    group_rows,
    has_repeats,
    problem_cases,
    prompt_reliability,
)

MAX_OUTPUT_CHARS = 1500
MAX_DIFF_CHARS = 3000
# GitHub refuses comments over 65,536 characters; stop listing failures well before that, and cut the
# whole document (with a note) if the rest still does not fit.
MAX_COMMENT_CHARS = 65_536
MAX_DOCUMENT_CHARS = 60_000

_BACKTICK_RUN = re.compile("`+")


def _longest_backtick_run(text: str) -> int:
    return max((len(m.group()) for m in _BACKTICK_RUN.finditer(text)), default=0)


def code_span(text: str, in_table: bool = False) -> str:
    """Inline code that shows `text` literally: one line, delimited by more backticks than it holds."""
    flat = printable(text).replace("\n", " ")
    if not flat.strip():
        return "*(empty)*"
    ticks = "`" * (_longest_backtick_run(flat) + 1)
    # CommonMark strips one space on each side, which lets content start or end with a backtick.
    padded = f" {flat} " if flat[0] == "`" or flat[-1] == "`" else flat
    span = f"{ticks}{padded}{ticks}"
    # GFM splits table cells at `|` before it parses code spans, so it must be escaped there too.
    return span.replace("|", "\\|") if in_table else span


def code_fence(text: str, info: str = "") -> list[str]:
    """A fenced block whose fence is longer than any backtick run inside, so nothing can break out."""
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    body = printable(text)
    return [f"{fence}{info}", *body.split("\n"), fence]


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit} more characters not shown)"


def _indent(lines: list[str], prefix: str = "   ") -> list[str]:
    return [f"{prefix}{line}" if line else "" for line in lines]


MARKS = {"PASSED": "✅", "FAILED": "❌", "NO VERDICT": "⚠️", "INTERRUPTED": "⚠️"}


def verdict_lines(verdict: Verdict) -> list[str]:
    """The verdict line in bold, then every finding and note: the exit code's reasons, as the PR comment says."""
    lines = [f"**{MARKS[verdict.label]} {verdict.head()}**"]
    lines += [f"- {code_span(finding.text())}" for finding in verdict.findings]
    lines += [f"- note: {code_span(note)}" for note in verdict.notes]
    return lines


def _totals(run: Run) -> list[str]:
    summary = run.summary
    verdict = decision_of(run)
    totals = " · ".join(summary_parts(summary, duration_s(run)))
    lines = [*verdict_lines(verdict), "", f"{MARKS[verdict.label]} {totals}"]
    if run.interrupted:
        lines.append("")
        lines.append("⚠️ The run was interrupted: only finished cases are reported.")
    return lines


def _cost_cell(row: GroupRow) -> str:
    cost = format_cost(row.cost_usd, row.cost_unknown)
    return f"{cost} ({row.cached} cached)" if row.cached else cost


def _table_row(row: GroupRow) -> str:
    cells = [
        code_span(row.prompt, in_table=True),
        code_span(row.model, in_table=True),
        f"{row.passed}/{row.total - row.skipped}",
        format_rate(row.pass_rate),
        format_score(row.mean_score),
        f"{row.input_tokens:,} / {row.output_tokens:,}",
        _cost_cell(row),
        f"{format_ms(row.latency_p50_ms)} / {format_ms(row.latency_p95_ms)} / {format_ms(row.latency_max_ms)}",
        f"{format_ms(row.ttft_p50_ms)} / {format_ms(row.ttft_p95_ms)}",
    ]
    return "| " + " | ".join(cells) + " |"


def _table(rows: list[GroupRow]) -> list[str]:
    header = ["prompt", "model", "passed", "pass rate", "mean score", "tokens in / out", "cost",
              "latency p50 / p95 / max", "TTFT p50 / p95"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * 7) + "|"]
    return lines + [_table_row(row) for row in rows]


def _metrics(run: Run) -> list[str]:
    """Named metrics per prompt x model; the value is the weighted mean score, which the gate checks."""
    values = metric_table(run.results)
    if not values:
        return []
    lines = ["", "**Metrics**", "", "| metric | prompt | model | value | pass rate | scores |",
             "|---|---|---|---:|---:|---:|"]
    return lines + [f"| {code_span(v.metric, in_table=True)} | {code_span(v.prompt, in_table=True)} | "
                    f"{code_span(v.model, in_table=True)} | {format_score(v.mean_score)} | "
                    f"{format_rate(v.pass_rate)} | {v.scores} |" for v in values]


def _prompt_sides(run: Run) -> list[str]:
    """A golden file's prompts in columns, per model: the same cases on each prompt."""
    lines: list[str] = []
    for sides in prompt_sides(run):
        lines += ["", f"**Prompts side by side:** {code_span(sides.file)} ({sides.cases} cases)", "",
                  "| model | measure | " + " | ".join(code_span(p, in_table=True) for p in sides.prompts) + " |",
                  "|---|---|" + "---:|" * len(sides.prompts)]
        for model in sides.models:
            for number, (measure, cells) in enumerate(measure_cells(sides, model)):
                shown_model = code_span(model, in_table=True) if number == 0 else ""
                lines.append(f"| {shown_model} | {measure} | " + " | ".join(cells) + " |")
    return lines


def _details(result: CaseResult) -> list[str]:
    blocks: list[str] = []
    for score in result.scores:
        if not score.passed and score.diff:
            blocks += ["", f"diff ({code_span(score.comparator)}):", "",
                       *code_fence(truncate(score.diff, MAX_DIFF_CHARS), "diff")]
    if result.output is not None:
        blocks += ["", "output:", "", *code_fence(truncate(result.output, MAX_OUTPUT_CHARS), "text")]
    if result.transcript:
        whole = "\n".join(transcript_lines(result.transcript))
        blocks += ["", "conversation (→ call: the model's tool call, ← mock: the mock's answer):", "",
                   *code_fence(truncate(whole, MAX_OUTPUT_CHARS), "text")]
    if not blocks:
        return []
    return ["<details><summary>output and diff</summary>", *blocks, "", "</details>"]


def _failure_item(problem: ProblemCase, with_repeat: bool, review: Review | None) -> list[str]:
    result = problem.result
    mark = "❌ failed" if result.status == "failed" else "💥 error"
    head = f"- **{mark}** {code_span(problem.label(with_repeat))}"
    reasons = [f"  - {code_span(r)}" for r in failing_reasons(result)]
    reviewed = [f"  - 👤 {code_span(review_text(review))}"] if review else []
    details = _details(result)
    return [head, *reviewed, *reasons, *(["", *_indent(details, "  ")] if details else [])]


def _reviews(run: Run) -> list[str]:
    """Every reviewed result of the run: the human's verdict and note next to the comparators' status."""
    reviewed = [(result, review) for result in run.results if (review := review_of(run, result)) is not None]
    if not reviewed:
        return []
    with_repeat = has_repeats(run)
    return ["", f"### Reviewed outputs ({len(reviewed)})", "",
            *(f"- {code_span(case_label(result, with_repeat))} {result.status}: {code_span(review_text(review))}"
              for result, review in reviewed)]


def report_pointer(environ: Mapping[str, str] | None = None) -> str:
    """Where the full report is: this workflow run's artifacts under GitHub Actions, else the other formats."""
    env = os.environ if environ is None else environ
    server, repo, run_id = (env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repo and run_id.isdigit():
        url = f"{server}/{repo}/actions/runs/{run_id}"
        if re.fullmatch(r"https?://[\w.:-]+/[\w.-]+/[\w.-]+/actions/runs/\d+", url):
            return f"the full report is in the `promptci-report` artifact of [this workflow run]({url})"
    return "the full report is in the HTML, JSON or JUnit report (`-o html=report.html`)"


_Item = TypeVar("_Item")


def items_within_budget(items: Sequence[_Item], render: Callable[[_Item], list[str]],
                        budget: int) -> tuple[list[str], int]:
    """Each item's lines while they fit in `budget` characters (at least one item), then a line saying how many
    were left out; and the characters the shown items used."""
    lines: list[str] = []
    used = 0
    for shown, item in enumerate(items):
        item_lines = render(item)
        size = sum(len(line) + 1 for line in item_lines)
        if used + size > budget and shown:
            lines.append(f"- … {len(items) - shown} more not shown: {report_pointer()}")
            break
        lines += item_lines
        used += size
    return lines, used


def _failures(run: Run, budget: int) -> list[str]:
    failing = problem_cases(run)
    if not failing:
        return []
    with_repeat = has_repeats(run)
    items, _ = items_within_budget(
        failing, lambda problem: _failure_item(problem, with_repeat, review_of(run, problem.result)), budget)
    return ["", f"### Failures ({len(failing)})", "", *items]


def _problems(run: Run) -> list[str]:
    if not run.problems:
        return []
    return ["", "### Problems", "", *(f"- {code_span(p)}" for p in run.problems)]


def _flaky(run: Run) -> list[str]:
    flaky = flaky_cases(run)
    if not flaky:
        return []
    lines = ["", f"### Flaky cases ({len(flaky)})", "", "Repeated samples disagreed:", ""]
    return lines + [f"- {code_span(f'{c.file}:{c.line} {c.case_id} [{c.model}]')}: passed {c.passed} of {c.samples}"
                    + (f"; min_pass_rate: {c.threshold()}" if c.threshold() else "")
                    for c in flaky]


MAX_RELIABILITY_ROWS = 200  # per-case rows in the <details>; the JSON report keeps every case


def _reliability(run: Run) -> list[str]:
    """With --repeat: pass@k and pass^k per prompt x model, then per case in a <details>."""
    rates = case_rates(run)
    rows = prompt_reliability(run, rates)
    if not rows:
        return []
    k = rows[0].k
    lines = ["", f"### Reliability at k = {k}", "",
             f"pass@{k}: at least one of {k} samples passes; pass^{k}: all {k} pass (unbiased estimators, mean "
             "over the cases).", "", "| prompt | model | cases | pass@k | pass^k |", "|---|---|---:|---:|---:|"]
    lines += [f"| {code_span(r.prompt, in_table=True)} | {code_span(r.model, in_table=True)} | {r.cases} | "
              f"{format_fraction(r.pass_at_k)} | {format_fraction(r.pass_hat_k)} |" for r in rows]
    lines += ["", f"<details><summary>pass@k and pass^k per case ({len(rates)})</summary>", "",
              "| case | model | passed | pass@k | pass^k | min_pass_rate |", "|---|---|---:|---:|---:|---|"]
    for rate in rates[:MAX_RELIABILITY_ROWS]:
        where = code_span(f"{rate.file}:{rate.line} {rate.case_id}", in_table=True)
        threshold = code_span(rate.threshold() or "", in_table=True) if rate.threshold() else "-"
        lines.append(f"| {where} | {code_span(rate.model, in_table=True)} | {rate.passed}/{rate.samples} | "
                     f"{format_fraction(rate.pass_at_k)} | {format_fraction(rate.pass_hat_k)} | {threshold} |")
    if len(rates) > MAX_RELIABILITY_ROWS:
        lines += ["", f"{len(rates) - MAX_RELIABILITY_ROWS} more in the JSON report (`--format json`)."]
    return [*lines, "", "</details>"]


def fit_comment(text: str, limit: int = MAX_COMMENT_CHARS) -> str:
    """Cut `text` at a line so that it and the note fit in `limit`; a fence or <details> left open is closed."""
    if len(text) <= limit:
        return text
    note = f"\n\n> ⚠️ Truncated to fit a comment: {report_pointer()}.\n"
    cut = text[: limit - len(note) - 200].rsplit("\n", 1)[0]
    open_fence, open_details = _still_open(cut)
    closing = f"\n{open_fence}" if open_fence else ""
    return cut + closing + "\n</details>" * open_details + note


def _still_open(text: str) -> tuple[str, int]:
    """The fence open at the end of `text` ("" if none) and how many <details> outside fences are unclosed."""
    fence, details = "", 0
    for line in text.splitlines():
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and set(stripped) == {"`"}:
                fence = ""
        elif stripped.startswith("```"):
            fence = re.match("`+", stripped).group()  # type: ignore[union-attr]
        elif stripped.startswith("<details>"):
            details += 1
        elif stripped == "</details>":
            details -= 1
    return fence, max(details, 0)


def _notes(run: Run) -> list[str]:
    """Drift and the upgrade verdict, above everything else."""
    return [*(f"> **note:** {code_span(note)}" for note in run.notes), ""] if run.notes else []


def _matrix(run: Run) -> list[str]:
    """With several models: per prompt the models side by side, and the cases where they disagree."""
    from promptci.matrix import disagreements, side_by_side
    from promptci.reporting.matrixview import MATRIX_METRICS, MAX_DISAGREEMENTS_SHOWN, cell_texts

    if len(run.models) < 2:
        return []
    lines = ["", "### Models side by side", "",
             "| prompt | metric | " + " | ".join(code_span(m, in_table=True) for m in run.models) + " |",
             "|---|---|" + "---:|" * len(run.models)]
    for row in side_by_side(run):
        by_model = {cell.model: cell_texts(cell) for cell in row.cells}
        for index, metric in enumerate(MATRIX_METRICS):
            prompt = code_span(row.prompt, in_table=True) if index == 0 else ""
            values = " | ".join(by_model[m][index] if m in by_model else "-" for m in run.models)
            lines.append(f"| {prompt} | {metric} | {values} |")
    disagreeing = disagreements(run)
    if disagreeing:
        lines += ["", f"<details><summary>{len(disagreeing)} case(s) where the models disagree</summary>", ""]
        for item in disagreeing[:MAX_DISAGREEMENTS_SHOWN]:
            lines.append(f"- {code_span(f'{item.file}:{item.line}')} {code_span(item.case_id)}")
            for model, status, output in item.by_model:
                lines += [f"  - {code_span(model)} {status}:", "",
                          *_indent(code_fence(truncate(output or "", 300), "text"), "    "), ""]
        lines += ["", "</details>"]
    return lines


def render_markdown(run: Run) -> str:
    git = f" at {code_span(run.git.commit[:12])}" if run.git.commit else ""
    dirty = " (uncommitted changes)" if run.git.dirty else ""
    lines = [f"## promptci run {code_span(run.run_id)}{git}{dirty}", "", *_notes(run), *_totals(run)]
    rows = group_rows(run)
    if rows:
        lines += ["", *_table(rows)]
    lines += _metrics(run)
    lines += _prompt_sides(run)
    lines += _matrix(run)
    lines += _problems(run)
    lines += _flaky(run)
    lines += _reliability(run)
    lines += _reviews(run)
    head = "\n".join(lines)
    lines += _failures(run, MAX_DOCUMENT_CHARS - len(head))
    return fit_comment("\n".join(lines) + "\n")


def write_markdown(run: Run, stream: TextIO) -> None:
    stream.write(render_markdown(run))
