"""Reports of a Comparison (what `promptci diff` prints) in every format, built with compare_runs from
synthetic runs: the cases named exactly, regressions first, statistics of repeats, hostile model output
kept inert, the comment-size cut, and the JSON document's keys."""

from __future__ import annotations

import io
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from test_compare import MODEL, result, run
from test_html import CHROMIUM, dump_dom, needs_chromium, parse, shown_count
from test_markdown import outside_code

from promptci.compare import Comparison, compare_runs
from promptci.errors import PromptCIError
from promptci.reporting import COMPARISON_FORMATS, REPORTERS, write_comparison
from promptci.reporting.diff_github import report_comparison_to_github
from promptci.reporting.diff_html import comparison_data, render_comparison_html
from promptci.reporting.diff_json import COMPARISON_SCHEMA_VERSION
from promptci.reporting.markdown import MAX_COMMENT_CHARS
from promptci.types import CaseResult, GitInfo, Run

HOSTILE = ("x\n::add-mask::hunter2\n::stop-commands::abc\n````\n</details><script>document.title='pwned'</script>"
           "<img src=x onerror=alert(1)>\n\x1b[31m@octocat")
COMMAND_LINE = re.compile(r"^::(error|warning|notice) [^:]*::")


def at(revision: str, commit: str, *results: CaseResult, dirty: bool = False) -> Run:
    return replace(run(*results), run_id=f"run-{revision}", git=GitInfo(commit=commit, dirty=dirty))


def mixed() -> Comparison:
    """Two regressions (one with hostile output), a fix, a new and a removed case, two still failing."""
    before = at("a", "a" * 40,
                result("same", "passed"), result("breaks", "passed", output="Hello there world"),
                result("hostile", "passed", output="safe"), result("mended", "failed", output="bad"),
                result("stuck", "failed"), result("stuck2", "failed"), result("gone", "passed"))
    after = at("b", "b" * 40,
               result("same", "passed"), result("breaks", "failed", output="Hello here world", score=0.25),
               result("hostile", "failed", output=HOSTILE), result("mended", "passed", output="good"),
               result("stuck", "failed"), result("stuck2", "failed"), result("fresh", "passed"), dirty=True)
    return compare_runs(before, after, revisions=("main", "working tree"))


def samples(case_id: str, passes: int, n: int = 10) -> list[CaseResult]:
    return [result(case_id, "passed" if i < passes else "failed", repeat=i) for i in range(n)]


def repeated() -> Comparison:
    before = run(*samples("drop", 10), *samples("noisy", 6), *samples("steady", 10))
    after = run(*samples("drop", 1), *samples("noisy", 5), *samples("steady", 10))
    return compare_runs(before, after)


def written(comparison: Comparison, fmt: str, verbosity: int = 0) -> str:
    stream = io.StringIO()
    write_comparison(comparison, fmt, stream, verbosity)
    return stream.getvalue()


# --- the registry ---------------------------------------------------------------------------------------

def test_every_format_but_junit_writes_a_comparison() -> None:
    assert COMPARISON_FORMATS == ("table", "json", "markdown", "github", "html")
    for fmt in COMPARISON_FORMATS:
        assert "breaks" in written(mixed(), fmt), fmt


def test_junit_and_unknown_formats_are_refused_with_the_choices() -> None:
    with pytest.raises(PromptCIError, match=r"format 'junit' has no report of a diff \(diff writes: table, json, "
                                            r"markdown, github, html\)"):
        written(mixed(), "junit")
    with pytest.raises(PromptCIError, match="unknown report format 'yaml'"):
        written(mixed(), "yaml")
    assert REPORTERS["junit"].comparison_writer is None


# --- table ----------------------------------------------------------------------------------------------

def section(text: str, title: str) -> str:
    """The lines of a table report's section, up to the next blank line."""
    start = text.index(title)
    return text[start:].split("\n\n", 1)[0]


def test_table_names_regressions_first_with_score_change_and_output_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    text = written(mixed(), "table")
    assert text.startswith(f"promptci diff main ({'a' * 12}) -> working tree ({'b' * 12}, uncommitted changes)\n")
    regressed = section(text, "regressed (passed -> failed): 2")
    assert re.findall(r"^REGRESSED (.*)$", regressed, re.MULTILINE) == [
        f"goldens/greet.yaml:3 breaks [{MODEL}]", f"goldens/greet.yaml:3 hostile [{MODEL}]"]
    assert "exact: 1.00 -> 0.25" in regressed and "Hello [-there-]{+here+} world" in regressed
    assert text.index("REGRESSED ") < text.index("FIXED ") < text.index("NEW ") < text.index("REMOVED ")
    assert re.findall(r"^(FIXED|NEW|REMOVED) goldens/greet.yaml:3 (\S+)", text, re.MULTILINE) == [
        ("FIXED", "mended"), ("NEW", "fresh"), ("REMOVED", "gone")]
    assert "2 still failing (-v lists them)" in text and "STILL FAILING" not in text
    assert text.rstrip().endswith("REGRESSED: 2 regressed, 1 fixed, 1 new, 1 removed, 2 still failing, 1 still passing")
    assert re.search(r"greet\s+openai:gpt-4o-mini\s+4/7 -> 3/7\s+\$0\.007 -> \$0\.007 \(±\$0\.00\)", text)


def test_table_verbosity_lists_still_failing_and_quiet_keeps_regressions() -> None:
    verbose = written(mixed(), "table", 1)
    assert re.findall(r"^STILL FAILING goldens/greet.yaml:3 (\S+)", verbose, re.MULTILINE) == ["stuck", "stuck2"]
    quiet = written(mixed(), "table", -1)
    assert "REGRESSED goldens/greet.yaml:3 breaks" in quiet and "FIXED" not in quiet
    assert "By prompt and model" not in quiet and quiet.rstrip().endswith("1 still passing")


def test_table_neutralises_hostile_output_in_a_ci_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    text = written(mixed(), "table", 1)
    assert not [line for line in text.splitlines() if line.lstrip().startswith("::")]
    assert "\\::add-mask::hunter2" in text and "\x1b" not in text and "\\x1b[31m" in text


def test_table_caps_an_output_diff_at_4_kb() -> None:
    before = at("a", "a" * 40, result("long", "passed", output="start"))
    after = at("b", "b" * 40, result("long", "failed", output="word " * 5000))
    text = written(compare_runs(before, after), "table", 1)
    assert re.search(r"… [\d,]+ more bytes \(whole output: `promptci show run-b --format json`\)", text)
    assert len(text.encode()) < 8000


def test_a_narrow_terminal_keeps_names_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    long_model = "openai:gpt-4o-mini-2024-07-18-with-a-long-name"
    before = at("a", "a" * 40, result("c", "passed", model=long_model))
    after = at("b", "b" * 40, result("c", "failed", model=long_model))
    text = written(compare_runs(before, after), "table")
    assert long_model in text.replace("\n", "")  # wrapped by the terminal, never cut or folded by us
    assert f"greet  {long_model}: passing 1/1 -> 0/1" in text.replace("\n", "")


def test_table_with_repeats_gives_p_values_holm_method_alpha_and_flaky() -> None:
    text = written(repeated(), "table")
    assert "REGRESSED goldens/greet.yaml:3 drop" in text and "passed 10/10 -> 1/10" in text
    stats = section(text, "Repeated samples: cases whose pass rate fell")
    assert re.search(r"drop \[openai:gpt-4o-mini\]\s+10/10 -> 1/10\s+2e-05\s+0\.00012\s+yes", stats)
    assert re.search(r"noisy \[openai:gpt-4o-mini\]\s+6/10 -> 5/10\s+0\.412\s+0\.824\s+no", stats)
    assert "steady" not in stats
    assert "suite p-value 0.003 (Holm-adjusted 0.004), alpha 0.05: a drop across the suite" in text
    assert "method: one-sided Boschloo exact test" in text
    flaky = section(text, "flaky (samples disagreed): 2")
    assert "noisy [openai:gpt-4o-mini]  passed 6/10 -> 5/10" in flaky
    assert "steady" not in flaky


def test_a_suite_wide_drop_is_named_in_the_verdict_line() -> None:
    before = run(*(r for i in range(20) for r in samples(f"c{i}", 9)))
    after = run(*(r for i in range(20) for r in samples(f"c{i}", 6)))
    comparison = compare_runs(before, after)
    assert comparison.verdict is not None and comparison.verdict.is_suite_drop
    assert not comparison.with_transition("regressed")
    assert "REGRESSED (the pass rate fell across the suite): 20 still failing" in written(comparison, "table")


# --- json -----------------------------------------------------------------------------------------------

def test_json_round_trips_with_the_documented_keys() -> None:
    doc = json.loads(written(mixed(), "json"))
    assert {"schema_version", "kind", "before", "after", "status", "exit_code", "repeated", "counts", "totals",
            "verdict", "changes"} <= set(doc)
    assert doc["schema_version"] == COMPARISON_SCHEMA_VERSION and doc["kind"] == "comparison"
    assert doc["before"] == {"revision": "main", "run_id": "run-a",
                             "git": {"commit": "a" * 40, "dirty": False, "branch": None},
                             "samples": {"fresh": 7, "cached": 0}}
    assert doc["after"]["git"]["dirty"] is True
    assert (doc["status"], doc["exit_code"], doc["verdict"]) == ("regressed", 1, None)
    assert [c["case_id"] for c in doc["changes"] if c["transition"] == "regressed"] == ["breaks", "hostile"]
    breaks = next(c for c in doc["changes"] if c["case_id"] == "breaks")
    assert set(breaks) >= {"prompt", "model", "file", "line", "transition", "counts", "intervals", "scores",
                           "output_diff", "cost_usd", "tokens", "latency_ms", "before", "after"}
    assert breaks["counts"] == {"passes_before": 1, "samples_before": 1, "passes_after": 0, "samples_after": 1}
    assert breaks["scores"] == [{"comparator": "exact", "before": 1.0, "after": 0.25}]
    assert breaks["output_diff"] == "Hello [-there-]{+here+} world"
    assert breaks["cost_usd"] == {"before": 0.001, "after": 0.001, "delta": 0.0}
    assert breaks["after"][0]["output"] == "Hello here world"
    hostile = next(c for c in doc["changes"] if c["case_id"] == "hostile")
    assert hostile["after"][0]["output"] == HOSTILE  # JSON keeps model output whole and exact
    assert doc["totals"][0]["passed"] == {"before": 4, "after": 3, "delta": -1}


def test_json_verdict_carries_p_values_and_method() -> None:
    comparison = repeated()
    doc = json.loads(written(comparison, "json"))
    verdict = doc["verdict"]
    assert verdict["is_drop"] is True and verdict["alpha"] == 0.05 and "Boschloo" in verdict["method"]
    assert [c["is_drop"] for c in verdict["cases"]] == [True, False, False]
    assert comparison.verdict is not None
    assert [c["p_value"] for c in verdict["cases"]] == [c.p_value for c in comparison.verdict.cases]
    assert verdict["suite_adjusted"] == comparison.verdict.suite_adjusted
    drop = doc["changes"][0]
    assert drop["intervals"]["after"]["high"] < drop["intervals"]["before"]["low"]
    assert drop["flaky"] is True and doc["changes"][2]["flaky"] is False


# --- markdown -------------------------------------------------------------------------------------------

def test_markdown_verdict_table_and_regressions_in_details() -> None:
    md = written(mixed(), "markdown")
    lines = md.splitlines()
    assert lines[0] == f"## promptci diff `main ({'a' * 12}) -> working tree ({'b' * 12}, uncommitted changes)`"
    assert lines[2] == "**REGRESSED: 2 regressed, 1 fixed, 1 new, 1 removed, 2 still failing, 1 still passing**"
    assert not re.search(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]", md)  # status words, no emoji
    assert "| `greet` | `openai:gpt-4o-mini` | 4/7 -> 3/7 | $0.007 -> $0.007 (±$0.00) |" in md
    regressed = md.split("### Regressed (passed -> failed): 2")[1].split("### Fixed")[0]
    assert re.findall(r"^- `(.*?)`", regressed, re.MULTILINE) == [
        f"goldens/greet.yaml:3 breaks [{MODEL}]", f"goldens/greet.yaml:3 hostile [{MODEL}]"]
    assert "  - `exact`: 1.00 -> 0.25" in regressed
    assert regressed.count("<details><summary>output diff A -> B</summary>") == 2
    assert "Not listed: 2 still failing, 1 still passing." in md


def test_markdown_keeps_hostile_output_inside_a_longer_fence() -> None:
    md = written(mixed(), "markdown")
    visible = outside_code(md)
    for needle in ("<script", "<img", "@octocat", "</details><script", "hunter2"):
        assert needle not in visible, needle
    assert visible.count("<details>") == visible.count("</details>") == 2
    assert "\n  `````text\n" in md  # one backtick more than the ```` run in the output
    assert "\x1b" not in md


def test_markdown_with_repeats_names_flaky_cases_and_the_statistics() -> None:
    md = written(repeated(), "markdown")
    assert "- `goldens/greet.yaml:3 noisy [openai:gpt-4o-mini]`: passed 6/10 -> 5/10" in md
    assert "| `goldens/greet.yaml:3 drop [openai:gpt-4o-mini]` | 10/10 -> 1/10 | 2e-05 | 0.00012 | yes |" in md
    assert "- suite p-value 0.003 (Holm-adjusted 0.004), alpha 0.05: a drop across the suite" in md


def test_markdown_of_a_huge_diff_is_cut_at_the_comment_limit() -> None:
    # Few, long words: a word diff of many short repeated words is slow (see compare.word_diff).
    before = run(*(result(f"c{i}", "passed", output="a") for i in range(300)))
    after = run(*(result(f"c{i}", "failed", output="```` " + "b" * 3000) for i in range(300)))
    md = written(compare_runs(before, after), "markdown")
    assert len(md) <= MAX_COMMENT_CHARS
    assert re.search(r"- … \d+ more not shown: the full report is in", md)
    visible = outside_code(md)
    assert visible.count("<details>") == visible.count("</details>") > 0
    assert "REGRESSED: 300 regressed" in md


# --- github ---------------------------------------------------------------------------------------------

def test_github_annotates_regressions_as_errors_and_fixes_as_notices() -> None:
    lines = written(mixed(), "github").splitlines()
    assert all(COMMAND_LINE.match(line) for line in lines), lines
    assert [line.split("::")[1] for line in lines] == [
        "error file=goldens/greet.yaml,line=3,title=greet breaks regressed on openai%3Agpt-4o-mini",
        "error file=goldens/greet.yaml,line=3,title=greet hostile regressed on openai%3Agpt-4o-mini",
        "notice file=goldens/greet.yaml,line=3,title=greet mended fixed on openai%3Agpt-4o-mini",
        "notice title=promptci diff"]
    assert "exact: 1.00 -> 0.25%0A" in lines[0]
    assert "%0A::add-mask::hunter2%0A" in lines[1] and "\\x1b[31m" in lines[1]


def test_github_auto_mode_uses_repository_paths_and_appends_the_summary(tmp_path: Path) -> None:
    project = tmp_path / "repo" / "services" / "bot"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path / "repo", check=True)
    annotations, summary = io.StringIO(), tmp_path / "summary.md"
    report_comparison_to_github(mixed(), project, annotations, {"GITHUB_STEP_SUMMARY": str(summary)})
    assert "::error file=services/bot/goldens/greet.yaml,line=3," in annotations.getvalue()
    assert summary.read_text(encoding="utf-8").startswith("## promptci diff `main")


# --- html -----------------------------------------------------------------------------------------------

def test_html_data_round_trips_and_hostile_output_is_only_data() -> None:
    page = render_comparison_html(mixed())
    elements = parse(page)
    assert [tag for tag, _ in elements.tags].count("script") == 2 and "img" not in [t for t, _ in elements.tags]
    data = json.loads(elements.scripts[0])
    assert data == json.loads(json.dumps(comparison_data(mixed())))
    assert [c["c"] for c in data["cases"]][:3] == ["breaks", "hostile", "mended"]
    hostile = next(c for c in data["cases"] if c["c"] == "hostile")
    assert hostile["ob"].startswith("x\n::add-mask::hunter2") and "\x1b" not in hostile["ob"]
    assert page.count("<script") == 2 and "</script><img" not in page.split('id="promptci-data">')[1]
    assert "script-src 'sha256-" in page and "default-src 'none'" in page


@needs_chromium
def test_chromium_filters_by_transition_and_keeps_hostile_output_as_text(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    page = tmp_path / "diff.html"
    page.write_text(render_comparison_html(mixed()), encoding="utf-8")
    dom = dump_dom(page, "#transition=regressed&expand=1", tmp_path)
    assert "<title>promptci diff</title>" in dom  # the hostile script did not run
    assert shown_count(dom) == 2
    body = dom.split('<script type="application/json"')[0]
    assert not re.search(r"<img\b", body) and body.count("<script") == 0
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    assert '<span class="del">there</span>' in body and '<span class="add">here</span>' in body
    assert "showing 2 of 8 cases" in body
    assert shown_count(dump_dom(page, "", tmp_path)) == 8


def test_a_case_without_a_verdict_at_b_is_a_warning_and_exits_no_verdict() -> None:
    before = at("a", "a" * 40, result("crash", "passed"), result("fine", "passed"))
    after = at("b", "b" * 40, result("crash", "error", output=None, error="provider said 500\n::add-mask::x"),
               result("fine", "passed"))
    comparison = compare_runs(before, after)
    github = written(comparison, "github").splitlines()
    assert github[0].startswith("::warning file=goldens/greet.yaml,line=3,title=greet crash has no verdict on ")
    assert "provider said 500%0A::add-mask::x" in github[0] and len(github) == 2
    table = written(comparison, "table")
    assert "ERROR goldens/greet.yaml:3 crash [openai:gpt-4o-mini]" in table
    assert table.rstrip().endswith("NO VERDICT: 1 error, 1 still passing")
    assert json.loads(written(comparison, "json"))["status"] == "no_verdict"
