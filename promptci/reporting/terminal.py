"""The terminal report: a live progress bar on an interactive stderr, then tables, failures and totals.

The only module that imports rich. Model output is untrusted: it is shown through `Text` (never
parsed as markup) with control characters made visible, so it cannot style or move the terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

from promptci.metrics import MetricValue, metric_table
from promptci.reporting.fit import Column, Sheet, build_table, least_width, print_fitted, records, table_width
from promptci.reporting.sidebyside import PromptSides, measure_cells, prompt_sides
from promptci.reporting.stats import (
    broken_details,
    case_label,
    failing_reasons,
    format_cost,
    format_ms,
    format_rate,
    format_score,
    neutralised,
    pass_k_text,
    plural,
    printable,
    rate_line,
    reliability_line,
    review_of,
    review_text,
    run_notes,
    summary_parts,
)
from promptci.reporting.transcript import COMPACT_CHARS, transcript_lines
from promptci.types import CaseResult, Review, Run
from promptci.verdict.gates import decision_of
from promptci.verdict.summary import (
    GroupRow,
    ProblemCase,
    case_rates,
    duration_s,
    group_rows,
    has_repeats,
    problem_cases,
    prompt_reliability,
)

if TYPE_CHECKING:
    from promptci.client import RateStatus

MAX_SHOWN_BYTES = 4096  # per case and per kind of text, at any verbosity; the db and JSON keep it whole
MAX_QUIET_OUTPUT_CHARS = 1000  # without -v a failing output is cut sooner
MAX_DIFF_LINES = 40
DEFAULT_FILE_WIDTH = 140  # a log or file gets a table wide enough not to wrap every column

def make_console(stream: TextIO | None = None, *, stderr: bool = False) -> Console:
    """A console that colours only a real terminal (NO_COLOR honoured) and never highlights by itself."""
    target = stream if stream is not None else (sys.stderr if stderr else sys.stdout)
    is_tty = hasattr(target, "isatty") and target.isatty()
    width = None if is_tty or "COLUMNS" in os.environ else DEFAULT_FILE_WIDTH
    return Console(file=target, width=width, highlight=False, emoji=False, soft_wrap=False)


def indent(text: Text, spaces: int) -> Text:
    """Prefix every line; unlike rich's Padding this leaves no trailing blanks in logs."""
    prefix = " " * spaces
    return Text("\n").join(Text(prefix) + line for line in text.split("\n"))


def reads_workflow_commands(console: Console) -> bool:
    """A log that a CI runner parses (not a terminal, or GitHub Actions): `::cmd::` lines would be obeyed."""
    return not console.is_terminal or os.environ.get("GITHUB_ACTIONS") == "true"


def untrusted(text: str, console: Console) -> str:
    """Model output, case ids, reasons, diffs as shown: controls and bidi escaped, `::` at a line start
    neutralised where a CI runner would read it as a workflow command."""
    return neutralised(text) if reads_workflow_commands(console) else printable(text)


def one_line(text: str, console: Console) -> str:
    return untrusted(text, console).replace("\n", "\\n")


def capped(text: str, limit_bytes: int = MAX_SHOWN_BYTES) -> tuple[str, int]:
    """At most `limit_bytes` of UTF-8 (cut on a character boundary) and how many bytes were left out."""
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) <= limit_bytes:
        return text, 0
    head = data[:limit_bytes].decode("utf-8", errors="ignore")
    return head, len(data) - len(head.encode("utf-8", errors="surrogatepass"))


def more_bytes_note(left_out: int, run_id: str) -> Text:
    return Text(f"\n… {left_out:,} more bytes (whole output: `promptci show {run_id} --format json`)", style="dim")


def shown_output(text: str, verbosity: int, console: Console, run_id: str) -> Text:
    limit = MAX_SHOWN_BYTES if verbosity > 0 else MAX_QUIET_OUTPUT_CHARS
    head, left_out = capped(text, limit)
    shown = Text(untrusted(head, console))
    return shown + more_bytes_note(left_out, run_id) if left_out else shown


def colored_diff(diff: str, verbosity: int = 0, console: Console | None = None, run_id: str = "RUN") -> Text:
    """A unified or word diff with + lines green and - lines red; long diffs cut (at 4 KB even with -v)."""
    head, left_out = capped(diff)
    lines = (untrusted(head, console) if console is not None else printable(head)).splitlines()
    cut = 0
    if verbosity == 0 and len(lines) > MAX_DIFF_LINES:
        cut, lines = len(lines) - MAX_DIFF_LINES, lines[:MAX_DIFF_LINES]
    text = Text()
    for line in lines:
        style = ""
        if line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        text.append(line + "\n", style=style)
    if cut:
        text.append(f"… {cut} more diff lines (-v shows more)\n", style="dim")
    text.rstrip()
    return text + more_bytes_note(left_out, run_id) if left_out else text


def _cost_cell(row: GroupRow) -> Text:
    cost = format_cost(row.cost_usd, row.cost_unknown)
    return Text(cost, style="yellow" if "unknown" in cost else "")


def _rate_style(row: GroupRow) -> str:
    if row.pass_rate is None:
        return "dim"
    return "green" if row.pass_rate >= 1 else "red"


NUMERIC_COLUMNS: tuple[tuple[str, Callable[[GroupRow], Text]], ...] = (
    ("passed", lambda row: Text(f"{row.passed}/{row.total - row.skipped}")),
    ("rate", lambda row: Text(format_rate(row.pass_rate), style=_rate_style(row))),
    ("score", lambda row: Text(format_score(row.mean_score))),
    ("tokens in/out", lambda row: Text(f"{row.input_tokens:,}/{row.output_tokens:,}")),
    ("cost", _cost_cell),
    ("cached", lambda row: Text(str(row.cached))),
    ("latency p50/p95/max", lambda row: Text(
        f"{format_ms(row.latency_p50_ms)}/{format_ms(row.latency_p95_ms)}/{format_ms(row.latency_max_ms)}")),
    ("TTFT p50/p95", lambda row: Text(f"{format_ms(row.ttft_p50_ms)}/{format_ms(row.ttft_p95_ms)}")),
)
# When the terminal is narrow these go first; the names (prompt, model) are never cut.
RESULTS_DROP_FIRST = ("TTFT p50/p95", "cached", "tokens in/out", "latency p50/p95/max", "score", "cost")


def results_sheet(rows: list[GroupRow], console: Console) -> Sheet:
    columns = (Column("prompt", is_name=True), Column("model", is_name=True),
               *(Column(name) for name, _ in NUMERIC_COLUMNS))
    cells = tuple((Text(one_line(row.prompt, console)), Text(one_line(row.model, console)),
                   *(cell(row) for _, cell in NUMERIC_COLUMNS)) for row in rows)
    return Sheet("Results", columns, cells, RESULTS_DROP_FIRST)


def metrics_sheet(values: list[MetricValue], console: Console) -> Sheet:
    """Named metrics (`metric:` on comparators) per prompt x model: the weighted mean score is the value."""
    columns = (Column("metric", is_name=True), Column("prompt", is_name=True), Column("model", is_name=True),
               Column("value"), Column("pass rate"), Column("scores"))
    cells = tuple((Text(one_line(v.metric, console)), Text(one_line(v.prompt, console)),
                   Text(one_line(v.model, console)), Text(format_score(v.mean_score)),
                   Text(format_rate(v.pass_rate)), Text(str(v.scores))) for v in values)
    return Sheet("Metrics", columns, cells)


def prompt_sides_sheet(sides: PromptSides, console: Console) -> Sheet:
    """The prompts of one golden file in columns, a few measures per model in rows."""
    columns = (Column("model", is_name=True), Column("measure", is_name=True),
               *(Column(one_line(prompt, console)) for prompt in sides.prompts))
    rows = []
    for model in sides.models:
        for number, (measure, cells) in enumerate(measure_cells(sides, model)):
            rows.append((Text(one_line(model, console), style="dim" if number else ""), Text(measure),
                         *(Text(cell) for cell in cells)))
    title = f"Prompts side by side: {one_line(sides.file, console)} ({sides.cases} cases)"
    return Sheet(title, columns, tuple(rows))


def print_whole(sheet: Sheet, console: Console) -> None:
    """Every column or none: a side-by-side table that lost a prompt would mislead, so a narrow terminal
    gets one record per line instead."""
    console.print(Text(sheet.title, style="italic"), soft_wrap=True)  # a table's own title wraps at its width
    untitled = replace(sheet, title="")
    keep = list(range(len(sheet.columns)))
    table = build_table(untitled, keep, [least_width(untitled, i) for i in keep])
    if table_width(console, table) <= console.width:
        console.print(table)
    else:
        console.print(records(untitled), soft_wrap=True)


def print_metric_sections(run: Run, console: Console) -> None:
    """After the results table: named metrics, then prompts side by side (each only when the run has some)."""
    values = metric_table(run.results)
    if values:
        print_fitted(metrics_sheet(values, console), console)
    for sides in prompt_sides(run):
        print_whole(prompt_sides_sheet(sides, console), console)


def _heading(word: str, style: str, result: CaseResult, with_repeat: bool, console: Console) -> Text:
    return Text(f"{word} ", style=f"bold {style}") + Text(one_line(case_label(result, with_repeat), console))


def review_mark(review: Review | None) -> Text:
    """` [reviewed good]` after a case's heading (print_review writes the reviewer's words below it)."""
    if review is None:
        return Text("")
    return Text(f" [reviewed {review.verdict}]", style="bold green" if review.verdict == "good" else "bold red")


def print_review(review: Review | None, console: Console) -> None:
    if review is not None:
        console.print(indent(Text(untrusted(review_text(review), console), style="dim"), 2))


def print_failure(console: Console, problem: ProblemCase, verbosity: int, with_repeat: bool, run_id: str,
                  review: Review | None = None) -> None:
    result = problem.result
    word, style = ("FAILED", "red") if result.status == "failed" else ("ERROR", "magenta")
    heading = Text(f"{word} ", style=f"bold {style}") + Text(one_line(problem.label(with_repeat), console))
    console.print(heading + review_mark(review), soft_wrap=True)
    print_review(review, console)
    for reason in failing_reasons(result):
        head, left_out = capped(reason)
        text = Text(untrusted(head, console))
        console.print(indent(text + more_bytes_note(left_out, run_id) if left_out else text, 2))
    for score in result.scores:
        if not score.passed and score.diff:
            console.print(indent(colored_diff(score.diff, verbosity, console, run_id), 4))
    if result.output is not None and result.status == "failed":
        console.print(indent(Text("output:", style="dim"), 2))
        console.print(indent(shown_output(result.output, verbosity, console, run_id), 4))
    if result.transcript:  # a conversation: every turn, compact (Markdown and HTML show it whole)
        console.print(indent(Text("conversation:", style="dim"), 2))
        for line in transcript_lines(result.transcript, limit=COMPACT_CHARS):
            console.print(indent(Text(one_line(line, console)), 4))
    elif result.tool_calls and result.status == "failed":
        console.print(indent(Text("tool calls:", style="dim"), 2))
        for call in result.tool_calls:
            console.print(indent(shown_output(f"{call.name}({call.arguments})", verbosity, console, run_id), 4))


def print_passing(console: Console, result: CaseResult, with_repeat: bool, run_id: str,
                  review: Review | None = None) -> None:
    if result.status == "skipped":
        reason = f": {result.skip_reason}" if result.skip_reason else ""
        console.print(_heading("SKIPPED", "yellow", result, with_repeat, console) + Text(one_line(reason, console)))
        return
    cached = " (cached)" if result.cached else ""
    console.print(_heading("PASSED", "green", result, with_repeat, console) + Text(cached, style="dim")
                  + review_mark(review))
    print_review(review, console)
    if result.output is not None:
        console.print(indent(shown_output(result.output, 1, console, run_id), 4))


def print_case_rates(console: Console, run: Run, verbosity: int) -> None:
    """With --repeat: the flaky cases by name at any verbosity, every case's pass rate with -v."""
    rates = case_rates(run)
    shown = rates if verbosity > 0 else [rate for rate in rates if rate.is_flaky]
    if not shown:
        return
    flaky = sum(rate.is_flaky for rate in rates)
    console.print()
    console.print(Text(f"{plural(len(rates), 'repeated case')}, {flaky} flaky (samples disagreed):",
                       style="bold yellow" if flaky else "bold"))
    for rate in shown:
        line = rate_line(rate) + (f"; {pass_k_text(rate.k, rate.pass_at_k, rate.pass_hat_k)}" if verbosity > 0 else "")
        console.print(Text("  " + one_line(line, console), style="yellow" if rate.is_flaky else ""))


def print_reliability(console: Console, run: Run) -> None:
    """With --repeat: pass@k and pass^k per prompt x model, k = K."""
    rows = prompt_reliability(run)
    if not rows:
        return
    console.print()
    console.print(Text("reliability (pass@k: one of k samples passes; pass^k: all k pass):", style="bold"))
    for row in rows:
        console.print(Text("  " + one_line(reliability_line(row), console)))


def totals_line(run: Run) -> Text:
    summary = run.summary
    bad = summary.failed or summary.errors
    parts = summary_parts(summary, duration_s(run))
    if has_repeats(run):  # the counts are of cases; say how many samples they stand for
        parts[0] += f" (cases; {plural(len(run.results), 'sample')})"
    text = Text(", ".join(parts), style="bold red" if bad else "bold green")
    if run.interrupted:
        text.append(" (interrupted: only finished cases are reported)", style="bold yellow")
    return text


def render_report(run: Run, console: Console, verbosity: int = 0) -> None:
    """The whole report. -q (verbosity < 0): failures, notes and totals; -v: passing outputs too.
    What a case shows is capped at 4 KB at any verbosity (the db and JSON keep everything)."""
    with_repeat = has_repeats(run)
    for note in run.notes:  # drift and the upgrade verdict come first
        console.print(Text("note: ", style="bold yellow") + Text(untrusted(note, console)))
    if verbosity >= 0:
        rows = group_rows(run)
        if rows:
            print_fitted(results_sheet(rows, console), console)
        print_metric_sections(run, console)
        print_matrix(run, console)
        for detail in broken_details(run):  # the broken cases' details; the other problems are notes, below
            console.print(Text("warning: ", style="yellow") + Text(untrusted(detail, console)))
    if verbosity > 0:
        for result in run.results:
            if result.status in ("passed", "skipped"):
                print_passing(console, result, with_repeat, run.run_id, review_of(run, result))
    print_case_rates(console, run, verbosity)
    print_reliability(console, run)
    failing = problem_cases(run)
    if failing:
        console.print()
    for problem in failing:
        print_failure(console, problem, verbosity, with_repeat, run.run_id, review_of(run, problem.result))
    notes = run_notes(run)
    if notes:
        console.print()
    for note in notes:
        console.print(Text("note: ", style="yellow") + Text(untrusted(note, console)))
    console.print()
    print_verdict(run, console)
    console.print(totals_line(run), soft_wrap=True)


def print_verdict(run: Run, console: Console) -> None:
    """The verdict line last, in the exit code's colour, then what it found: the same words as every report."""
    verdict = decision_of(run)
    style = {"PASSED": "bold green", "FAILED": "bold red"}.get(verdict.label, "bold yellow")
    console.print(Text(verdict.head(), style=style))
    for finding in verdict.findings:
        console.print(Text("  " + untrusted(finding.text(), console)))
    for note in verdict.notes:
        console.print(Text("note: ", style="yellow") + Text(untrusted(note, console)))


def print_matrix(run: Run, console: Console) -> None:
    """With several models: per prompt, the models side by side, then the cases where they disagree."""
    from promptci.matrix import disagreements, side_by_side
    from promptci.reporting.matrixview import MATRIX_METRICS, MAX_DISAGREEMENTS_SHOWN, cell_texts

    if len(run.models) < 2:
        return
    columns = (Column("prompt", is_name=True), Column("metric", is_name=True),
               *(Column(one_line(model, console)) for model in run.models))  # narrow: `model value` records
    cells: list[tuple[Text, ...]] = []
    for row in side_by_side(run):
        by_model = {cell.model: cell_texts(cell) for cell in row.cells}
        for index, metric in enumerate(MATRIX_METRICS):
            cells.append((Text(one_line(row.prompt, console) if index == 0 else ""), Text(metric),
                          *(Text(by_model[m][index] if m in by_model else "-") for m in run.models)))
    print_fitted(Sheet("Models side by side", columns, tuple(cells)), console)
    disagreeing = disagreements(run)
    if disagreeing:
        console.print(Text(f"{len(disagreeing)} case(s) where the models disagree:", style="bold"))
    for item in disagreeing[:MAX_DISAGREEMENTS_SHOWN]:
        console.print(Text("  " + one_line(f"{item.file}:{item.line} {item.case_id} [{item.prompt}]", console)))
        for model, status, output in item.by_model:
            shown = one_line(capped(output or "", 300)[0], console) if output is not None else "(no output)"
            console.print(Text(f"    {one_line(model, console)} {status}: ") + Text(shown))
    if len(disagreeing) > MAX_DISAGREEMENTS_SHOWN:
        console.print(Text(f"  ... and {len(disagreeing) - MAX_DISAGREEMENTS_SHOWN} more (see --format json)"))


class TerminalReporter:
    """Progress while a run goes (stderr, interactive only) and the report at the end (stdout)."""

    def __init__(self, console_stderr: Console | None = None, console_stdout: Console | None = None,
                 verbosity: int = 0) -> None:
        self.err = console_stderr or make_console(stderr=True)
        self.out = console_stdout or make_console()
        self.verbosity = verbosity
        self._progress: RichProgress | None = None
        self._task: TaskID | None = None
        self._failed = 0
        self._rate: RateStatus | None = None

    @property
    def is_live(self) -> bool:
        return self._progress is not None and not self._progress.disable

    def start(self, total: int) -> None:
        self._failed, self._rate = 0, None
        # disable= keeps a piped stderr free of bar frames and of the stray blank line a transient bar leaves.
        self._progress = RichProgress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=self.err, transient=True, disable=not self.err.is_interactive,
        )
        self._task = self._progress.add_task("running", total=total)
        self._progress.start()

    def advance(self, result: CaseResult) -> None:
        if self._progress is None or self._task is None:
            return
        if result.status in ("failed", "error"):
            self._failed += 1
        self._progress.update(self._task, advance=1, description=self.description())

    def rate(self, status: RateStatus) -> None:
        """The limits' status after a result: shown while the run is rate limited (TTY only)."""
        self._rate = status
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=self.description())

    def description(self) -> str:
        parts = ["running"]
        if self._failed:
            parts.append(f"{self._failed} failing")
        if self._rate is not None and self._rate.is_limited:
            pace = f" at {self._rate.requests_per_s:.1f} req/s" if self._rate.requests_per_s is not None else ""
            parts.append(f"rate limited{pace}")
        return ", ".join(parts)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress, self._task = None, None

    def __enter__(self) -> TerminalReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def print_report(self, run: Run) -> None:
        render_report(run, self.out, self.verbosity)


def write_table(run: Run, stream: TextIO, verbosity: int = 0) -> None:
    """The report rendered into any stream, coloured only if the stream is a terminal."""
    render_report(run, make_console(stream), verbosity)


# The names the CLI calls: a progress object for a run, then the report on stdout.
Progress = TerminalReporter


def print_report(run: Run, verbosity: int = 0, console: Console | None = None) -> None:
    render_report(run, console or make_console(), verbosity)
