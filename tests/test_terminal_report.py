"""The terminal report with hostile text, huge outputs, skipped cases and budget notes at any verbosity."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from promptci.client import RateStatus
from promptci.reporting.terminal import TerminalReporter, render_report
from promptci.types import BrokenCase, CaseResult, GitInfo, Run, Score, summarize

GPT = "openai:gpt-4o-mini"
INJECTED = "fine\n    ::error file=app.py,line=1::INJECTED\n::set-output name=x::y\n\u202eevil\u2066"


def make_run(*results: CaseResult, problems: tuple[str, ...] = (), broken: tuple[BrokenCase, ...] = ()) -> Run:
    return Run(run_id="r-123", started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:00:01Z",
               git=GitInfo("abc", False), models=(GPT,), results=results, summary=summarize(results),
               problems=(*map(str, broken), *problems), broken=broken)


def failed(output: str, case_id: str = "c1", reason: str = "no", diff: str | None = None) -> CaseResult:
    return CaseResult(case_id=case_id, model=GPT, status="failed", prompt="p", file="goldens/p.yaml", line=3,
                      output=output, scores=(Score("exact", 0.0, False, reason, diff),))


def render(run: Run, verbosity: int = 0, *, terminal: bool = False) -> str:
    out = io.StringIO()
    console = Console(file=out, width=120, highlight=False, force_terminal=terminal, color_system=None)
    render_report(run, console, verbosity)
    return out.getvalue()


def command_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("::")]


@pytest.mark.parametrize("verbosity", [-1, 0, 1])
def test_workflow_commands_in_untrusted_text_are_neutralised_in_a_log(verbosity: int, monkeypatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    run = make_run(failed(INJECTED, case_id="id\n::warning::from-an-id", reason="r\n  ::error::from-a-reason",
                          diff="-a\n::error::from-a-diff\n+b"))
    text = render(run, verbosity)
    assert command_lines(text) == []
    assert "INJECTED" in text and r"\::error file=app.py" in text
    assert "\u202e" not in text and "\u2066" not in text and r"\u202eevil\u2066" in text


def test_under_github_actions_even_a_terminal_gets_neutralised(monkeypatch) -> None:
    run = make_run(failed(INJECTED))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert command_lines(render(run, terminal=True))  # a person's terminal: shown as is (controls escaped)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert command_lines(render(run, terminal=True)) == []


def test_a_10_mb_output_shows_4_kb_and_says_where_the_rest_is() -> None:
    huge = "x" * 10_000_000 + "TAIL"
    run = make_run(failed(huge, diff="-" + huge + "\n+short"))
    for verbosity in (-1, 0, 1):
        text = render(run, verbosity)
        assert len(text.encode()) < 20_000 and "TAIL" not in text
        assert "more bytes (whole output: `promptci show r-123 --format json`)" in text


def test_broken_cases_and_budget_notes_print_at_every_verbosity() -> None:
    skipped = CaseResult(case_id="c9", model=GPT, status="skipped", prompt="p", file="goldens/p.yaml", line=30,
                         skip_reason="budget: sending it would pass the run budget of $0.001", skip_kind="budget")
    run = make_run(skipped, skipped, broken=(
        BrokenCase("goldens/x.yaml:12", "unknown comparator 'exakt'"),
        BrokenCase("goldens/x.yaml:20", "variable 'name' is undefined")),
        problems=("openai:gpt-4o-mini: stopped after an auth error",))
    for verbosity in (-1, 0, 1):
        text = render(run, verbosity)
        assert "2 cases skipped (broken): goldens/x.yaml:12, goldens/x.yaml:20" in text
        assert "2 cases not sent: sending them would pass the run budget of $0.001" in text
        assert "openai:gpt-4o-mini: stopped after an auth error" in text


def test_keep_going_quiet_names_the_broken_cases(cli, project) -> None:
    root = project({
        "prompts/p.txt": "Hi {{ name }}\n",
        "goldens/p.yaml": "cases:\n  - id: a\n    input: {name: A}\n    expected: Hi A\n"
                          "  - id: b\n    input: {}\n    expected: x\n"
                          "  - id: c\n    input: {name: C}\n    comparators: [{type: nosuch}]\n",
    })
    result = cli("run", "--root", root, "-m", "echo", "--keep-going", "-q")
    assert "2 cases skipped (broken): goldens/p.yaml:" in result.stdout, result.output
    located = re.search(r"skipped \(broken\): (.*)", result.stdout)
    assert located and sorted(located.group(1).split(", ")) == ["goldens/p.yaml:10", "goldens/p.yaml:5"]
    as_json = cli("run", "--root", root, "-m", "echo", "--keep-going", "--format", "json")
    assert json.loads(as_json.stdout)["summary"]["passed"] == 1
    assert "2 cases skipped (broken)" in as_json.stderr


HUGE_APP = """\
def answer(messages, params):
    return "::error::x" + "y" * 10_000_000 + "TAIL"
"""


def test_a_10_mb_answer_keeps_stdout_small_and_the_json_whole(cli, project) -> None:
    root = project({"prompts/p.txt": "hi\n", "goldens/p.yaml": "cases:\n  - id: a\n    input: {}\n    expected: hi\n",
                    "app.py": HUGE_APP})
    result = cli("run", "--root", root, "-m", "python:app:answer", "-v", "-o", f"json={root / 'r.json'}")
    assert result.exit_code == 1, result.output[-2000:]
    assert len(result.stdout.encode()) < 50_000 and "TAIL" not in result.stdout
    assert command_lines(result.stdout) == []
    assert json.loads(Path(root / "r.json").read_text())["results"][0]["output"].endswith("TAIL")


def test_a_budget_stop_is_explained_once_with_the_budget_as_given_even_quiet(cli, project, fake_server,
                                                                             monkeypatch) -> None:
    from test_budget import KEY, budget_project

    monkeypatch.setenv("BUDGET_KEY", KEY)
    root = budget_project(project, fake_server, cases=6)
    result = cli("run", "--root", root, "--max-cost", "0.02", "-q")
    assert result.exit_code == 1, result.output
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1, result.stdout
    assert re.fullmatch(r"note: \d cases? not sent: sending (them|it) would pass the run budget of \$0\.02", notes[0])
    assert "$0.00 " not in result.stdout


def progress_line(reporter: TerminalReporter) -> str:
    assert reporter._progress is not None and reporter._task is not None
    return str(reporter._progress.tasks[0].description)


def test_the_progress_line_says_when_the_run_is_rate_limited_and_at_what_pace() -> None:
    err = Console(file=io.StringIO(), width=120, force_terminal=True, force_interactive=True, color_system=None)
    reporter = TerminalReporter(console_stderr=err, console_stdout=Console(file=io.StringIO()))
    reporter.start(3)
    try:
        reporter.rate(RateStatus(is_limited=False, requests_per_s=80.0))
        assert progress_line(reporter) == "running"
        reporter.advance(failed("x"))
        reporter.rate(RateStatus(is_limited=True, requests_per_s=48.25))
        assert progress_line(reporter) == "running, 1 failing, rate limited at 48.2 req/s"
        reporter.rate(RateStatus(is_limited=True, requests_per_s=None))
        assert progress_line(reporter) == "running, 1 failing, rate limited"
        reporter.rate(RateStatus(is_limited=False, requests_per_s=50.0))
        assert progress_line(reporter) == "running, 1 failing"
    finally:
        reporter.stop()


def test_the_run_note_on_rate_limits_prints_at_every_verbosity() -> None:
    note = "rate limits: 14 requests refused (2.3%), 3.1 s spent waiting"
    for verbosity in (-1, 0, 1):
        assert f"note: {note}" in render(make_run(failed("x"), problems=(note,)), verbosity)
