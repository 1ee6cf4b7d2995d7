"""Narrow terminals: the run, dry-run, cost and runs tables never cut the names; numbers go first."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from promptci.reporting.fit import Column, Sheet, fitted
from promptci.reporting.terminal import render_report
from promptci.types import CaseResult, GitInfo, Run, Score, summarize

PROMPT = "triage/route-inbound-support-tickets"
MODEL = "anthropic:claude-sonnet-4-5-20250929"
RUN_ID = "3f9a2c7d1e0b"
DAY = "2026-11-30"


def console(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, highlight=False, color_system=None)


def shown(renderable, width: int) -> str:
    out = console(width)
    out.print(renderable, soft_wrap=isinstance(renderable, Text))
    return out.file.getvalue()  # type: ignore[attr-defined]


def a_run() -> Run:
    results = tuple(
        CaseResult(case_id=f"c{n}", model=model, status="passed", prompt=PROMPT, file="goldens/t.yaml", line=3 + n,
                   output="ok", scores=(Score("exact", 1.0, True),), input_tokens=12_345, output_tokens=678,
                   cost_usd=0.0123, latency_ms=1234.5, ttft_ms=321.0)
        for n, model in enumerate((MODEL, "openai:gpt-4o-mini-2024-07-18")))
    return Run(run_id=RUN_ID, started_at="2026-11-30T10:00:00Z", finished_at="2026-11-30T10:00:05Z",
               git=GitInfo("abc", False), models=(MODEL, "openai:gpt-4o-mini-2024-07-18"), results=results,
               summary=summarize(results))


@pytest.mark.parametrize("width", [200, 120, 80, 50, 30])
def test_the_run_report_keeps_prompt_and_model_names_whole(width: int) -> None:
    out = console(width)
    render_report(a_run(), out)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert PROMPT in text and MODEL in text and "openai:gpt-4o-mini-2024-07-18" in text
    assert "…" not in text.split("passed, 0 failed")[0]
    if width >= 120:
        table = text.split("\n\n")[0]
        assert max(len(line) for line in table.splitlines()) <= width
        assert "rate" in table  # the pass rate is the last number to go


def test_at_80_columns_usual_names_keep_a_table_with_the_pass_rate() -> None:
    run = a_run()
    from dataclasses import replace

    short = replace(run, results=tuple(replace(r, prompt="summarize", model="openai:gpt-4o-mini") for r in run.results),
                    models=("openai:gpt-4o-mini",))
    out = console(80)
    render_report(short, out)
    table = out.file.getvalue().split("\n\n")[0]  # type: ignore[attr-defined]
    assert "summarize" in table and "openai:gpt-4o-mini" in table and "rate" in table and "100%" in table
    assert max(len(line.rstrip()) for line in table.splitlines()) <= 80


def test_numbers_shrink_first_then_one_record_per_line() -> None:
    wide = shown(fitted(sheet(), console(200)), 200)
    assert "latency" in wide and "TTFT" in wide
    at_80 = fitted(sheet(), console(80))
    assert isinstance(at_80, Table)
    headers = [c.header for c in at_80.columns]
    assert headers[:2] == ["day", "model"] and "cost" in headers and "TTFT p50/p95" not in headers
    at_50 = fitted(sheet(), console(50))
    assert isinstance(at_50, Text)
    lines = shown(at_50, 50).splitlines()
    assert any(line.startswith(f"{DAY}  {MODEL}: ") for line in lines)


def sheet() -> Sheet:
    columns = (Column("day", is_name=True), Column("model", is_name=True), Column("requests"), Column("cost"),
               Column("latency p50/p95/max"), Column("TTFT p50/p95"))
    row = (Text(DAY), Text(MODEL), Text("1,234"), Text("$0.0123"), Text("1234ms/2345ms/3456ms"), Text("321ms/400ms"))
    return Sheet("Cost", columns, (row, row), ("TTFT p50/p95", "latency p50/p95/max", "requests"))


def test_cost_runs_and_dry_run_tables_keep_names(tmp_path) -> None:
    from promptci.reporting.costtable import runs_sheet
    from promptci.store import RunInfo

    infos = [RunInfo(run_id=RUN_ID, started_at="2026-11-30T10:00:00Z", finished_at="2026-11-30T10:00:05Z",
                     commit="abcdef1234567", dirty=True, models=(MODEL,), summary=a_run().summary,
                     interrupted=False)]
    for width in (80, 50):
        text = shown(fitted(runs_sheet(infos), console(width)), width)
        assert RUN_ID in text and MODEL in text and "2026-11-30 10:00:00" in text
