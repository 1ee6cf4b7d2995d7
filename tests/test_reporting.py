"""Reporters: stats, JSON round trip, terminal table, JUnit, Markdown and GitHub annotations."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from rich.console import Console

from promptci.cost.totals import format_usd
from promptci.errors import PromptCIError
from promptci.reporting import FORMATS, write_report
from promptci.reporting.github import escape_data, escape_property, render_annotations
from promptci.reporting.jsonreport import read_json, run_from_dict, run_to_dict
from promptci.reporting.junit import junit_xml
from promptci.reporting.markdown import MAX_DOCUMENT_CHARS, code_fence, code_span, render_markdown
from promptci.reporting.stats import format_cost
from promptci.reporting.terminal import Progress, TerminalReporter, make_console, print_report, render_report
from promptci.stats import percentile
from promptci.types import RESULTS_SCHEMA_VERSION, BrokenCase, CaseResult, GitInfo, Run, Score, summarize
from promptci.verdict.summary import group_rows

GPT, LLAMA = "openai:gpt-4o-mini", "local:llama"
NASTY = "[bold]oops[/bold] | ```x``` <script>alert(1)</script> @octocat 100%\x1b[2J\x00"


def result(case_id: str, model: str, status: str, **kw: object) -> CaseResult:
    defaults: dict[str, object] = {"prompt": "route", "file": "goldens/route.yaml", "line": 3}
    defaults.update(kw)
    return CaseResult(case_id=case_id, model=model, status=status, **defaults)  # type: ignore[arg-type]


def make_run(*results: CaseResult, **kw: object) -> Run:
    fields: dict[str, object] = {
        "run_id": "r-123", "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:12.5Z",
        "git": GitInfo("abcdef1234567890", True), "models": (GPT, LLAMA), "results": results,
        "summary": summarize(results),
    }
    fields.update(kw)
    return Run(**fields)  # type: ignore[arg-type]


@pytest.fixture
def run() -> Run:
    return make_run(
        result("a1", GPT, "passed", output="ADT", scores=(Score("exact", 1.0, True, "equal"),),
               input_tokens=70, output_tokens=3, cost_usd=0.001, latency_ms=100.0, ttft_ms=50.0,
               resolved_model="gpt-4o-mini-2024-07-18"),
        result("a2", GPT, "failed", line=8, output=NASTY,
               scores=(Score("exact", 0.0, False, "output differs", "-ADT\n+oops"), Score("contains", 1.0, True)),
               input_tokens=80, output_tokens=5, cost_usd=0.002, latency_ms=300.0, ttft_ms=70.0),
        result("a3", GPT, "passed", line=12, output="cached answer", scores=(Score("exact", 0.5, True),),
               input_tokens=70, output_tokens=3, cost_usd=0.0, saved_usd=0.001, latency_ms=5.0, cached=True),
        result("a1", LLAMA, "error", error="timeout after 60s\nat 100%"),
        result("a2", LLAMA, "passed", line=8, output="ok", scores=(Score("exact", 1.0, True),),
               input_tokens=10, output_tokens=2, latency_ms=200.0),
        result("s1", LLAMA, "skipped", prompt="summ", file="goldens/summ.yaml", line=4, skip_reason="budget",
               skip_kind="budget"),
        problems=("goldens/bad.yaml:3: unknown comparator 'exakt'",),
        broken=(BrokenCase("goldens/bad.yaml:3", "unknown comparator 'exakt'"),),
    )


def render(run: Run, verbosity: int = 0) -> str:
    out = io.StringIO()
    render_report(run, Console(file=out, width=140, highlight=False), verbosity)
    return out.getvalue()


# stats ---------------------------------------------------------------------------------------------

def test_percentile_interpolates_linearly() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile(range(1, 21), 95) == pytest.approx(19.05)
    assert percentile([7.0], 95) == 7.0
    assert percentile([1, 2, 3], 0) == 1 and percentile([1, 2, 3], 100) == 3
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_group_rows_aggregate_per_prompt_and_model(run: Run) -> None:
    rows = {(r.prompt, r.model): r for r in group_rows(run)}
    assert [(r.prompt, r.model) for r in group_rows(run)] == [("route", GPT), ("route", LLAMA), ("summ", LLAMA)]
    gpt = rows[("route", GPT)]
    assert (gpt.total, gpt.passed, gpt.failed, gpt.errors, gpt.cached) == (3, 2, 1, 0, 1)
    assert gpt.pass_rate == pytest.approx(2 / 3)
    assert gpt.mean_score == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert (gpt.input_tokens, gpt.output_tokens) == (150, 8)  # billed tokens: the cache hit (70/3) billed none
    assert gpt.cost_usd == pytest.approx(0.003) and gpt.cost_unknown == 0
    assert gpt.saved_usd == pytest.approx(0.001)
    # the cached 5 ms result is left out of the latency statistics
    assert gpt.latency_p50_ms == 200.0 and gpt.latency_max_ms == 300.0
    assert gpt.latency_p95_ms == pytest.approx(290.0)
    assert gpt.ttft_p50_ms == 60.0
    llama = rows[("route", LLAMA)]
    assert llama.cost_usd is None and llama.cost_unknown == 1  # the error had no answer: not unknown
    assert llama.pass_rate == 0.5 and llama.ttft_p50_ms is None
    summ = rows[("summ", LLAMA)]
    assert summ.pass_rate is None and summ.latency_p50_ms is None and summ.skipped == 1


def test_summarize_and_cost_formatting(run: Run) -> None:
    s = run.summary
    assert (s.total, s.passed, s.failed, s.errors, s.skipped, s.cached) == (6, 3, 1, 1, 1, 1)
    assert s.cost_usd == pytest.approx(0.003) and s.cost_unknown == 1 and s.saved_usd == pytest.approx(0.001)
    assert format_cost(None, 2) == "unknown"
    assert format_cost(0.0, 1) == "unknown"
    assert format_cost(0.0123, 1) == "$0.0123 + 1 unknown"
    assert format_usd(0.00001) == "$0.00001" and format_usd(1.5) == "$1.50" and format_usd(0) == "$0.00"


# JSON ----------------------------------------------------------------------------------------------

def test_json_has_the_spec_fields(run: Run) -> None:
    d = json.loads(json.dumps(run_to_dict(run)))
    assert list(d)[:5] == ["schema_version", "run_id", "git", "summary", "results"]
    assert d["schema_version"] == RESULTS_SCHEMA_VERSION == 1
    assert d["git"]["commit"] == "abcdef1234567890" and d["git"]["dirty"] is True
    assert {"total", "passed", "failed", "errors", "skipped", "cost_usd", "input_tokens",
            "output_tokens", "cached", "saved_usd", "cost_unknown"} <= set(d["summary"])
    assert d["summary"]["failed"] == 1 and d["summary"]["input_tokens"] == 160  # the cache hit billed none
    spec_result_keys = {"prompt", "case_id", "file", "line", "model", "repeat", "status", "output", "scores",
                        "input_tokens", "output_tokens", "cost_usd", "latency_ms", "ttft_ms", "cached",
                        "resolved_model", "error"}
    assert spec_result_keys <= set(d["results"][0])
    assert set(d["results"][0]["scores"][0]) >= {"comparator", "value", "passed", "reason"}
    assert d["results"][0]["resolved_model"] == "gpt-4o-mini-2024-07-18"
    assert [g["model"] for g in d["groups"]] == [GPT, LLAMA, LLAMA]
    assert d["groups"][1]["cost_usd"] is None


def test_json_round_trip(run: Run) -> None:
    out = io.StringIO()
    write_report(run, "json", out)
    out.seek(0)
    assert read_json(out) == run
    without_summary = {k: v for k, v in run_to_dict(run).items() if k != "summary"}
    assert run_from_dict(without_summary).summary == run.summary


def test_json_refuses_a_newer_or_missing_schema(run: Run) -> None:
    newer = {**run_to_dict(run), "schema_version": RESULTS_SCHEMA_VERSION + 1}
    with pytest.raises(PromptCIError, match="newer than this promptci") as info:
        run_from_dict(newer, source="shard-1.json")
    assert "shard-1.json" in str(info.value) and "upgrade" in str(info.value)
    with pytest.raises(PromptCIError, match="schema_version"):
        run_from_dict({"run_id": "x"})
    with pytest.raises(PromptCIError, match="not valid JSON"):
        read_json(io.StringIO("{oops"), source="a.json")


# terminal ------------------------------------------------------------------------------------------

def test_table_shows_the_numbers(run: Run) -> None:
    text = render(run)
    gpt_line = next(line for line in text.splitlines() if GPT in line)
    for cell in ("2/3", "67%", "0.67", "150/8", "$0.003", "200ms", "290ms", "60ms"):
        assert cell in gpt_line, cell
    llama_line = next(line for line in text.splitlines() if "route" in line and LLAMA in line)
    assert "unknown" in llama_line and "$0.00 " not in llama_line
    assert "FAILED goldens/route.yaml:8 a2 [openai:gpt-4o-mini]" in text
    assert "ERROR goldens/route.yaml:3 a1 [local:llama]" in text
    assert "exact: output differs" in text and "-ADT" in text and "+oops" in text
    assert "warning: goldens/bad.yaml:3" in text
    totals = text.strip().splitlines()[-1]
    assert totals.startswith("3 passed, 1 failed, 1 error, 1 skipped, cost $0.003 + 1 unknown")
    assert "tokens 160 in / 10 out" in totals and "1 cached (saved $0.001)" in totals and "12.5s" in totals


def test_narrow_console_keeps_the_names(run: Run) -> None:
    out = io.StringIO()
    render_report(run, Console(file=out, width=80))
    table = out.getvalue().split("warning:")[0]
    assert "tokens in/out" not in table and "TTFT" not in table
    assert "local:llama" in table and "67%" in table and "unknown" in table


def test_output_is_shown_literally_and_without_control_codes(run: Run) -> None:
    out = io.StringIO()
    console = Console(file=out, width=140, force_terminal=True, color_system="truecolor")
    render_report(run, console)
    text = out.getvalue()
    assert "[bold]oops[/bold]" in text  # not parsed as markup
    assert "\\x1b[2J\\x00" in text  # the output's ESC and NUL made visible
    assert "\x1b[2J" not in text and "\x00" not in text
    assert "\x1b[" in text  # while our own styling is there on a terminal


def test_piped_output_has_no_ansi_codes(run: Run) -> None:
    out = io.StringIO()
    write_report(run, "table", out)
    assert "\x1b" not in out.getvalue() and "67%" in out.getvalue()


def test_no_color_is_respected(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeTTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    stream = FakeTTY()
    render_report(run, make_console(stream))
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]", stream.getvalue())  # no foreground colours


def test_quiet_and_verbose(run: Run) -> None:
    quiet = render(run, -1)
    assert "Results" not in quiet and "warning:" not in quiet and "PASSED" not in quiet
    assert "FAILED goldens/route.yaml:8" in quiet and "3 passed, 1 failed" in quiet
    default = render(run)
    assert "PASSED" not in default and "cached answer" not in default
    verbose = render(run, 1)
    assert "PASSED goldens/route.yaml:12 a3 [openai:gpt-4o-mini] (cached)" in verbose
    assert "cached answer" in verbose and "SKIPPED goldens/summ.yaml:4 s1 [local:llama]: budget" in verbose


def test_long_outputs_are_cut_sooner_unless_verbose_and_always_at_4_kb() -> None:
    long = result("a", GPT, "failed", output="x" * 3000 + "TAIL", scores=(Score("exact", 0.0, False, "no"),))
    text = render(make_run(long))
    assert "TAIL" not in text and "… 2,004 more bytes (whole output: `promptci show r-123 --format json`)" in text
    assert "TAIL" in render(make_run(long), 1)
    huge = result("a", GPT, "failed", output="y" * 10_000 + "TAIL", scores=(Score("exact", 0.0, False, "no"),))
    verbose = render(make_run(huge), 1)
    assert "TAIL" not in verbose and "… 5,908 more bytes" in verbose


def test_progress_prints_nothing_when_not_interactive(run: Run) -> None:
    err = io.StringIO()
    reporter = TerminalReporter(Console(file=err), Console(file=io.StringIO()))
    reporter.start(len(run.results))
    assert not reporter.is_live
    for r in run.results:
        reporter.advance(r)
    reporter.stop()
    assert err.getvalue() == ""


def test_cli_entry_points(run: Run) -> None:
    assert Progress is TerminalReporter
    out = io.StringIO()
    print_report(run, verbosity=-1, console=Console(file=out, width=140))
    assert "FAILED goldens/route.yaml:8" in out.getvalue() and "Results" not in out.getvalue()


def test_progress_draws_on_an_interactive_console(run: Run) -> None:
    err = io.StringIO()
    console = Console(file=err, force_terminal=True, force_interactive=True, width=100)
    with TerminalReporter(console, Console(file=io.StringIO())) as reporter:
        reporter.start(len(run.results))
        assert reporter.is_live
        for r in run.results:
            reporter.advance(r)
    assert "6/6" in err.getvalue() or "running" in err.getvalue()


# JUnit ---------------------------------------------------------------------------------------------

def test_junit_structure_counts_and_failures(run: Run) -> None:
    root = ET.fromstring(junit_xml(run).encode("utf-8"))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "1", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == [f"route [{GPT}]", f"route [{LLAMA}]", f"summ [{LLAMA}]"]  # one per prompt x model
    route = suites[f"route [{GPT}]"]
    counts = (route.get("tests"), route.get("failures"), route.get("errors"), route.get("skipped"))
    assert counts == ("3", "1", "0", "0")
    props = {p.get("name"): p.get("value") for p in route.iter("property")}
    assert props["model"] == GPT and props["input_tokens"] == "220" and props["cost_usd"] == "0.003"
    cases = route.findall("testcase")
    assert len(cases) == 3 and cases[0].get("classname") == f"route.{GPT}"
    failed = next(c for c in cases if c.find("failure") is not None)
    assert failed.get("name") == "a2" and failed.get("time") == "0.300"
    failure = failed.find("failure")
    assert failure is not None and "exact: output differs" in (failure.get("message") or "")
    assert (failure.text or "").startswith("goldens/route.yaml:8\n") and "+oops" in (failure.text or "")
    system_out = failed.findtext("system-out") or ""
    assert "<script>" in system_out and "\\x1b" in system_out  # escaped by XML, illegal chars replaced
    error = suites[f"route [{LLAMA}]"].find("testcase/error")
    assert error is not None and "timeout after 60s" in (error.get("message") or "")
    skipped = suites[f"summ [{LLAMA}]"].find("testcase/skipped")
    assert skipped is not None and skipped.get("message") == "budget"


def test_junit_names_repeats() -> None:
    a = result("a", GPT, "passed")
    root = ET.fromstring(junit_xml(make_run(a, replace(a, repeat=1))))
    assert [c.get("name") for c in root.iter("testcase")] == ["a (repeat 0)", "a (repeat 1)"]


# Markdown ------------------------------------------------------------------------------------------

def _outside_fences(markdown: str) -> list[str]:
    """Lines not inside fenced code blocks, by CommonMark's rule: only a fence at least as long closes it."""
    outside, fence = [], ""
    for line in markdown.splitlines():
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and set(stripped) == {"`"}:
                fence = ""
        elif stripped.startswith("```"):
            fence = re.match(r"`+", stripped).group()  # type: ignore[union-attr]
        else:
            outside.append(line)
    return outside


def test_markdown_escapes_model_output(run: Run) -> None:
    md = render_markdown(run)
    assert "| `route` | `openai:gpt-4o-mini` | 2/3 | 67% |" in md
    assert "unknown" in md and "$0.003 (1 cached)" in md
    assert "````text" in md  # longer than the ``` inside the output
    outside = "\n".join(_outside_fences(md))
    assert "<script>" not in outside and "@octocat" not in outside
    assert NASTY.split("\x1b")[0] in md  # the output itself is there, inside the fence
    assert "\x1b" not in md and "\x00" not in md


def test_markdown_code_span_and_fence() -> None:
    assert code_span("a|b", in_table=True) == "`a\\|b`"
    assert code_span("use `x` here") == "``use `x` here``"
    assert code_span("`x`") == "`` `x` ``"
    assert code_span("two\nlines") == "`two lines`"
    assert code_fence("a\n`````\nb")[0] == "``````"
    assert code_fence("plain") == ["```", "plain", "```"]


def test_markdown_table_cell_with_pipe() -> None:
    md = render_markdown(make_run(result("a", GPT, "passed", prompt="a|b")))
    row = next(line for line in md.splitlines() if "a\\|b" in line)
    assert row.count(" | ") == 8  # nine cells: the escaped pipe does not split one


def test_markdown_stays_under_the_comment_limit() -> None:
    many = [result(f"c{i}", GPT, "failed", line=i, output="y" * 5000,
                   scores=(Score("exact", 0.0, False, "no", "-a\n+b" * 500),)) for i in range(200)]
    md = render_markdown(make_run(*many))
    assert len(md) < 65_536 and MAX_DOCUMENT_CHARS < 65_536
    assert "more not shown" in md and "### Failures (200)" in md


# GitHub --------------------------------------------------------------------------------------------

def test_github_escaping() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_github_annotations(run: Run) -> None:
    text = render_annotations(run)
    lines = text.splitlines()
    assert all(line.startswith("::") for line in lines)  # no output line can start a command of its own
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 2
    assert errors[0] == ("::error file=goldens/route.yaml,line=3,title=route a1 error on local%3Allama"
                         "::timeout after 60s%0Aat 100%25")
    assert errors[1].startswith("::error file=goldens/route.yaml,line=8,title=route a2 failed on openai%3Agpt")
    assert errors[1].endswith("::exact: output differs%0A-ADT%0A+oops")
    assert "::warning title=promptci::goldens/bad.yaml:3" in text
    assert lines[-1].startswith("::notice title=promptci::3 passed, 1 failed")



def test_github_notes_are_notices_first_and_cannot_start_a_command(run: Run) -> None:
    hostile = "m:a now resolves to v2\n::add-mask::hunter2\r\n::error file=x,line=1::forged %0A"
    noted = replace(run, notes=(f"drift: {hostile}", "claude-x: 1 prompt equal, cost -41%"))
    lines = render_annotations(noted).splitlines()  # printable() folds the CRLF to one LF
    assert all(line.startswith("::") for line in lines)
    assert lines[:2] == ["::notice title=promptci::drift: m:a now resolves to v2%0A::add-mask::hunter2%0A"
                         "::error file=x,line=1::forged %250A",
                         "::notice title=promptci::claude-x: 1 prompt equal, cost -41%25"]
    notices = [line for line in lines if line.startswith("::notice ")]
    assert "::notice title=promptci::1 case skipped (broken): goldens/bad.yaml:3" in notices
    assert "::notice title=promptci::1 case not sent: budget" in notices  # s1, skipped by the budget
    assert lines[-1].startswith("::notice title=promptci::")  # the totals stay last
    assert sum("goldens/bad.yaml:3: unknown" in line for line in lines) == 1  # the warning is not repeated

# dispatch ------------------------------------------------------------------------------------------

def test_every_format_writes(run: Run) -> None:
    assert FORMATS == ("table", "json", "junit", "markdown", "github", "html")
    for fmt in FORMATS:
        out = io.StringIO()
        write_report(run, fmt, out)
        assert out.getvalue().strip(), fmt
    with pytest.raises(PromptCIError, match="unknown report format 'yaml'"):
        write_report(run, "yaml", io.StringIO())


def test_importing_reporting_does_not_import_rich() -> None:
    code = "import sys, promptci.reporting, promptci.reporting.stats; print('rich' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
