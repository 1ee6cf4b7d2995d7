"""Issue 19, pass^k and per-case thresholds: `min_pass_rate` on a case or a golden file, decided by the 95% Wilson
lower bound in the one place a case's status is decided; pass@k and pass^k by their unbiased estimators, exact."""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest

from promptci.compare import compare_runs
from promptci.config import Gate as GateSettings
from promptci.errors import ExitCode
from promptci.reliability import clears_min_pass_rate, pass_at_k, pass_hat_k, samples_to_tolerate, wilson_lower
from promptci.types import CaseResult, GitInfo, Run, Score, case_status, summarize
from promptci.verdict.diff import judge_comparison
from promptci.verdict.gates import judge_case, judge_run
from promptci.verdict.summary import case_rates, problem_cases, prompt_reliability

MODEL = "m:a"


# pass@k and pass^k -------------------------------------------------------------------------------------------

def test_pass_at_k_and_pass_hat_k_by_hand() -> None:
    # n = 10, c = 3, k = 2: 1 - C(7,2)/C(10,2) = 1 - 21/45 = 8/15; C(3,2)/C(10,2) = 3/45 = 1/15
    assert pass_at_k(10, 3, 2) == Fraction(8, 15)
    assert pass_hat_k(10, 3, 2) == Fraction(1, 15)
    # k = 1 is the pass rate both ways
    assert pass_at_k(10, 7, 1) == pass_hat_k(10, 7, 1) == Fraction(7, 10)
    # k = n: any sample passed / every sample passed
    assert (pass_at_k(4, 2, 4), pass_hat_k(4, 2, 4)) == (1, 0)
    assert (pass_at_k(5, 5, 5), pass_hat_k(5, 5, 5)) == (1, 1)
    assert (pass_at_k(5, 0, 3), pass_hat_k(5, 0, 3)) == (0, 0)
    # n = 8, c = 6, k = 3: 1 - C(2,3)/C(8,3) = 1; C(6,3)/C(8,3) = 20/56 = 5/14
    assert (pass_at_k(8, 6, 3), pass_hat_k(8, 6, 3)) == (1, Fraction(5, 14))


def test_the_estimators_equal_a_brute_force_enumeration_of_every_k_subset() -> None:
    for n in range(1, 8):
        for c in range(n + 1):
            samples = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(samples, k))
                assert pass_at_k(n, c, k) == Fraction(sum(any(s) for s in subsets), len(subsets)), (n, c, k)
                assert pass_hat_k(n, c, k) == Fraction(sum(all(s) for s in subsets), len(subsets)), (n, c, k)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 6, 2), (5, -1, 2), (5, 3, 0), (5, 3, 6), (0, 0, 1)])
def test_impossible_counts_are_refused(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)
    with pytest.raises(ValueError):
        pass_hat_k(n, c, k)


# the min_pass_rate rule --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("passes", "n"), [(9, 10), (3, 10), (1, 2), (17, 20), (0, 5)])
def test_the_wilson_lower_bound_is_scipys(passes: int, n: int) -> None:
    expected = binomtest(passes, n).proportion_ci(0.95, method="wilson").low
    assert wilson_lower(passes, n) == pytest.approx(expected, abs=1e-12)


def test_the_rule_by_hand() -> None:
    assert clears_min_pass_rate(9, 10, 0.5)  # Wilson lower 0.596
    assert not clears_min_pass_rate(8, 10, 0.5)  # 0.490
    assert not clears_min_pass_rate(3, 10, 0.5)  # 0.108
    assert clears_min_pass_rate(10, 10, 1.0) and not clears_min_pass_rate(9, 10, 1.0)  # 1.0 is the rule without one
    assert clears_min_pass_rate(5, 5, 0.8)  # every sample passed: a threshold only relaxes the rule
    assert clears_min_pass_rate(1, 1, 0.5) and not clears_min_pass_rate(0, 1, 0.01)  # one sample decides alone


@given(st.integers(1, 6), st.floats(0.05, 0.99))
def test_samples_to_tolerate_is_the_first_n_that_clears(failures: int, threshold: float) -> None:
    needed = samples_to_tolerate(failures, threshold)
    assert needed is not None
    assert clears_min_pass_rate(needed - failures, needed, threshold)
    assert not any(clears_min_pass_rate(n - failures, n, threshold) for n in range(failures + 1, needed))


def test_min_pass_rate_one_tolerates_no_failure_at_any_repeat() -> None:
    assert samples_to_tolerate(1, 1.0) is None
    # by hand: Wilson lower of 6/7 is 0.487, of 7/8 0.529
    assert samples_to_tolerate(1, 0.5) == 8
    assert samples_to_tolerate(0, 0.99) == 1


def test_without_a_threshold_case_status_is_todays_for_every_mix() -> None:
    statuses = ("passed", "failed", "error", "skipped")
    for size in range(1, 4):
        for mix in itertools.product(statuses, repeat=size):
            found = set(mix)
            old = ("error" if "error" in found else "skipped" if found <= {"skipped"}
                   else "passed" if found <= {"passed", "skipped"} else "failed")
            assert case_status(mix) == old, mix


def test_case_status_with_a_threshold() -> None:
    assert case_status(["passed"] * 9 + ["failed"], 0.5) == "passed"
    assert case_status(["passed"] * 3 + ["failed"] * 7, 0.5) == "failed"
    assert case_status(["passed"] * 9 + ["error"], 0.5) == "error"  # an error still leaves no verdict
    assert case_status(["skipped"] * 3, 0.5) == "skipped"


# the verdict layer -------------------------------------------------------------------------------------------

def result(case_id: str, status: str, repeat: int = 0, min_pass_rate: float | None = None,
           **extra: Any) -> CaseResult:
    return CaseResult(prompt="greet", case_id=case_id, file="goldens/greet.yaml", line=3, model=MODEL,
                      status=status, repeat=repeat, output="out", min_pass_rate=min_pass_rate,  # type: ignore[arg-type]
                      **extra)


def samples(case_id: str, passes: int, n: int, min_pass_rate: float | None = None) -> list[CaseResult]:
    return [result(case_id, "passed" if i < passes else "failed", i, min_pass_rate) for i in range(n)]


def run_of(*groups: list[CaseResult]) -> Run:
    results = tuple(r for group in groups for r in group)
    return Run(run_id="r", started_at="2026-12-01T00:00:00Z", finished_at=None, git=GitInfo(), models=(MODEL,),
               results=results, summary=summarize(results))


def test_a_case_at_9_of_10_with_min_pass_rate_half_passes_the_run() -> None:
    run = run_of(samples("steady", 10, 10), samples("mostly", 9, 10, 0.5))
    verdict = judge_run(run, GateSettings())
    assert verdict.exit_code == ExitCode.OK, verdict.line()
    assert problem_cases(run) == []
    assert (run.summary.passed, run.summary.failed) == (2, 0)


def test_a_case_at_3_of_10_with_min_pass_rate_half_fails_the_run_named_with_its_bound() -> None:
    run = run_of(samples("steady", 10, 10), samples("rarely", 3, 10, 0.5))
    verdict = judge_run(run, GateSettings())
    assert verdict.exit_code == ExitCode.REGRESSION
    [problem] = problem_cases(run)
    assert problem.label(True) == ("goldens/greet.yaml:3 rarely [m:a] (3/10 passed, Wilson lower 0.11 < 0.5 "
                                   "required)")
    assert (run.summary.passed, run.summary.failed) == (1, 1)


def test_a_flaky_case_without_min_pass_rate_keeps_todays_outcome() -> None:
    run = run_of(samples("steady", 10, 10), samples("flaky", 9, 10))
    assert judge_run(run, GateSettings()).exit_code == ExitCode.REGRESSION
    [problem] = problem_cases(run)
    assert problem.label(True) == "goldens/greet.yaml:3 flaky [m:a] (1/10 samples failed)"


def test_a_pytest_item_follows_the_same_rule() -> None:
    assert judge_case(samples("mostly", 9, 10, 0.5)).exit_code == ExitCode.OK
    assert judge_case(samples("rarely", 3, 10, 0.5)).exit_code == ExitCode.REGRESSION
    assert judge_case(samples("flaky", 9, 10)).exit_code == ExitCode.REGRESSION


def test_case_rates_carry_the_status_threshold_and_pass_k() -> None:
    run = run_of(samples("a", 9, 10, 0.5), samples("b", 3, 10, 0.5), samples("c", 10, 10))
    rates = {rate.case_id: rate for rate in case_rates(run)}
    assert (rates["a"].status, rates["b"].status, rates["c"].status) == ("passed", "failed", "passed")
    assert rates["a"].threshold() == "9/10 passed, Wilson lower 0.60 >= 0.5 required"
    assert rates["c"].threshold() is None and rates["c"].k == 10
    # k = K = 10 = n: pass@10 is "any passed", pass^10 "all passed"
    assert [(rates[c].pass_at_k, rates[c].pass_hat_k) for c in "abc"] == [(1.0, 0.0), (1.0, 0.0), (1.0, 1.0)]
    [row] = prompt_reliability(run)
    assert (row.k, row.cases, row.pass_at_k, row.pass_hat_k) == (10, 3, 1.0, pytest.approx(1 / 3))


def test_a_case_with_fewer_than_k_scored_samples_has_no_pass_k() -> None:
    run = run_of(samples("a", 4, 4), [*samples("b", 2, 3), result("b", "error", 3, error="boom")])
    rates = {rate.case_id: rate for rate in case_rates(run)}
    assert (rates["b"].pass_at_k, rates["b"].pass_hat_k) == (None, None)
    [row] = prompt_reliability(run)
    assert (row.cases, row.pass_hat_k) == (1, 1.0)


def test_without_repeat_a_threshold_is_decided_by_its_one_sample_and_a_note_says_so() -> None:
    run = run_of([result("one", "failed", 0, 0.5)])
    verdict = judge_run(run, GateSettings())
    assert verdict.exit_code == ExitCode.REGRESSION
    assert any("without --repeat each case is decided by its one sample" in note for note in verdict.notes)


def test_a_threshold_no_failure_can_clear_at_this_k_is_noted() -> None:
    run = run_of(samples("a", 5, 5, 0.8))
    verdict = judge_run(run, GateSettings())
    assert verdict.exit_code == ExitCode.OK
    [note] = [n for n in verdict.notes if "min_pass_rate" in n]
    needed = samples_to_tolerate(1, 0.8)
    assert note == (f"min_pass_rate 0.8 at --repeat 5 tolerates no failing sample (the 95% Wilson lower bound of "
                    f"4/5 is 0.38); --repeat {needed} tolerates one")


# diff: B's case status by the same function ------------------------------------------------------------------

def test_diff_a_case_within_its_threshold_at_b_is_still_passing() -> None:
    comparison = compare_runs(run_of(samples("c", 10, 10, 0.5)), run_of(samples("c", 9, 10, 0.5)))
    assert comparison.changes[0].transition == "still_passing"
    assert judge_comparison(comparison).exit_code == ExitCode.OK


def test_diff_a_case_falling_under_its_threshold_at_b_is_a_regression() -> None:
    before, after = samples("c", 10, 10, 0.7), samples("c", 7, 10, 0.7)  # 7/10: Wilson lower 0.40 < 0.7
    without = compare_runs(run_of([replace(r, min_pass_rate=None) for r in before]),
                           run_of([replace(r, min_pass_rate=None) for r in after]))
    assert without.changes[0].transition == "flaky"  # a 3-sample drop alone is not significant
    comparison = compare_runs(run_of(before), run_of(after))
    assert comparison.changes[0].transition == "regressed"
    assert judge_comparison(comparison).exit_code == ExitCode.REGRESSION


# end to end: golden files through the CLI --------------------------------------------------------------------

# A python stand-in answering right on a fixed share of each word's calls: "nine" 9 of every 10, "three" 3.
APP = '''
import collections
_calls = collections.Counter()

def answer(messages, params):
    word = messages[-1]["content"].strip()
    index = _calls[word] % 10
    _calls[word] += 1
    passes = {"all": 10, "nine": 9, "three": 3}[word]
    return "yes" if index < passes else "no"
'''


def project_with(project: Any, golden: str) -> Path:
    root: Path = project({"promptci.yaml": "models: ['python:shareapp:answer']\nconcurrency: 1\n",
                          "shareapp.py": APP, "prompts/say.txt": "{{ word }}\n", "goldens/say.yaml": golden})
    return root


def test_cli_a_case_at_9_of_10_with_min_pass_rate_passes(cli, project) -> None:
    root = project_with(project, "comparators: [{type: contains, value: 'yes'}]\nmin_pass_rate: 0.5\ncases:\n"
                                 "  - {id: all, input: {word: all}}\n  - {id: nine, input: {word: nine}}\n")
    result = cli("run", "--root", root, "--repeat", "10", "--format", "json", "--no-github")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    cases = {c["case_id"]: c for c in document["cases"]}
    assert (cases["nine"]["status"], cases["nine"]["min_pass_rate"], cases["nine"]["passed"]) == ("passed", 0.5, 9)
    assert cases["nine"]["threshold"] == "9/10 passed, Wilson lower 0.60 >= 0.5 required"
    assert document["reliability"] == [{"prompt": "say", "model": "python:shareapp:answer", "k": 10, "cases": 2,
                                        "pass_at_k": 1.0, "pass_hat_k": 0.5}]
    assert all(r["min_pass_rate"] == 0.5 for r in document["results"])


def test_show_rejudges_a_stored_run_by_its_stored_thresholds(cli, project) -> None:
    root = project_with(project, "comparators: [{type: contains, value: 'yes'}]\nmin_pass_rate: 0.5\ncases:\n"
                                 "  - {id: nine, input: {word: nine}}\n  - {id: three, input: {word: three}}\n")
    assert cli("run", "--root", root, "--repeat", "10", "--no-github").exit_code == 1
    shown = cli("show", "last", "--root", root, "--format", "json")
    assert shown.exit_code == 0, shown.output  # show shows, it does not gate
    document = json.loads(shown.stdout)
    assert {c["case_id"]: c["status"] for c in document["cases"]} == {"nine": "passed", "three": "failed"}
    assert (document["summary"]["passed"], document["summary"]["failed"]) == (1, 1)
    assert document["verdict"]["exit_code"] == 1


def test_cli_a_case_at_3_of_10_under_its_min_pass_rate_fails_with_exit_1(cli, project) -> None:
    root = project_with(project, "comparators: [{type: contains, value: 'yes'}]\nmin_pass_rate: 0.1\ncases:\n"
                                 "  - {id: nine, input: {word: nine}}\n"
                                 "  - {id: three, input: {word: three}, min_pass_rate: 0.5}\n")
    result = cli("run", "--root", root, "--repeat", "10", "--no-github")
    assert result.exit_code == 1, result.output
    assert "three [python:shareapp:answer] (3/10 passed, Wilson lower 0.11 < 0.5 required)" in result.stdout
    assert "nine [python:shareapp:answer] (" not in result.stdout  # the file's 0.1 let it pass
    assert "reliability (pass@k" in result.stdout
    assert "say [python:shareapp:answer]: pass@10 1.000, pass^10 0.000 (mean over 2 cases" in result.stdout


def test_cli_a_flaky_case_without_min_pass_rate_fails_as_today(cli, project) -> None:
    root = project_with(project, "comparators: [{type: contains, value: 'yes'}]\ncases:\n"
                                 "  - {id: nine, input: {word: nine}}\n")
    result = cli("run", "--root", root, "--repeat", "10", "--no-github")
    assert result.exit_code == 1, result.output
    assert "nine [python:shareapp:answer] (1/10 samples failed)" in result.stdout


def test_markdown_and_html_reports_show_pass_k(cli, project, tmp_path: Path) -> None:
    root = project_with(project, "comparators: [{type: contains, value: 'yes'}]\nmin_pass_rate: 0.5\ncases:\n"
                                 "  - {id: all, input: {word: all}}\n  - {id: nine, input: {word: nine}}\n")
    markdown, html = tmp_path / "report.md", tmp_path / "report.html"
    result = cli("run", "--root", root, "--repeat", "10", "--no-github", "-o", f"markdown={markdown}",
                 "-o", f"html={html}")
    assert result.exit_code == 0, result.output
    text = markdown.read_text()
    assert "### Reliability at k = 10" in text
    assert "| `say` | `python:shareapp:answer` | 2 | 1.000 | 0.500 |" in text
    assert "`9/10 passed, Wilson lower 0.60 >= 0.5 required`" in text
    page = html.read_text()
    assert "say [python:shareapp:answer]: pass@10 1.000, pass^10 0.500" in page
    assert "pass@10 1.000, pass^10 0.000; min_pass_rate: 9/10 passed, Wilson lower 0.60 \\u003e= 0.5 required" in page
    assert 'id="reliability"' in page


@pytest.mark.parametrize(("value", "line"), [("0", 2), ("1.5", 2), ("yes", 2), ("true", 2), ("-0.2", 2)])
def test_a_bad_file_min_pass_rate_is_exit_2_naming_file_line_and_fix(cli, project, value: str, line: int) -> None:
    root = project_with(project, f"comparators: [{{type: contains, value: 'yes'}}]\nmin_pass_rate: {value}\n"
                                 "cases:\n  - {id: all, input: {word: all}}\n")
    result = cli("run", "--root", root, "--no-github")
    assert result.exit_code == 2, result.output
    assert f"goldens/say.yaml:{line}" in result.output
    assert "`min_pass_rate` must be a number above 0 and at most 1" in result.output
    assert "e.g. `min_pass_rate: 0.8`" in result.output


def test_a_bad_case_min_pass_rate_is_exit_2_at_its_line(cli, project) -> None:
    root = project_with(project, "comparators: [{type: contains, value: 'yes'}]\ncases:\n"
                                 "  - id: all\n    input: {word: all}\n    min_pass_rate: 80%\n")
    result = cli("run", "--root", root, "--no-github")
    assert result.exit_code == 2, result.output
    assert "goldens/say.yaml:5" in result.output and "got '80%'" in result.output


def test_junit_counts_agree_with_the_threshold_and_stay_valid() -> None:
    xmlschema = pytest.importorskip("xmlschema")
    from promptci.reporting.junit import junit_xml

    failing = Score("contains", 0.0, False, "no 'yes'")
    accepted = [replace(r, scores=(failing,) if r.status == "failed" else ()) for r in samples("mostly", 9, 10, 0.5)]
    run = run_of(accepted, samples("rarely", 3, 10, 0.5), samples("flaky", 9, 10))
    xml = junit_xml(run)
    xmlschema.XMLSchema(Path(__file__).parent / "data" / "junit-10.xsd").validate(xml)
    root = ET.fromstring(xml)
    assert root.get("failures") == str(7 + 1)  # rarely's 7 failing samples and flaky's one; mostly's is accepted
    [mostly_failed] = [c for c in root.iter("testcase") if c.get("name") == "mostly (repeat 9)"]
    assert mostly_failed.find("failure") is None
    assert mostly_failed.findtext("system-out") == ("this sample failed (contains: no 'yes'); its case passes by "
                                                    "min_pass_rate: 9/10 passed, Wilson lower 0.60 >= 0.5 required")


def test_bisect_judges_a_step_by_the_same_rule(tmp_path: Path) -> None:
    from gitrepo import commit, new_repo

    from promptci import api

    golden = ("comparators: [{type: contains, value: 'yes'}]\nmin_pass_rate: 0.5\n"
              "cases:\n  - {id: c, input: {word: nine}}\n")
    base = {".gitignore": ".promptci/\n", "promptci.yaml": "models: ['python:shareapp:answer']\nconcurrency: 1\n",
            "shareapp.py": APP, "prompts/say.txt": "{{ word }}\n", "goldens/say.yaml": golden}
    repo = new_repo(tmp_path / "repo")
    shas = [commit(repo, base, "base"), commit(repo, {"notes/1.txt": "1\n"}, "note"),
            commit(repo, {"goldens/say.yaml": golden.replace("nine", "three")}, "three"),
            commit(repo, {"notes/2.txt": "2\n"}, "note 2")]
    outcome = api.bisect(api.RunOptions(root=repo, repeat=10), shas[0], shas[-1])  # base at 9/10 is good
    assert outcome.first_bad == shas[2] and outcome.failing == ("goldens/say.yaml::c [python:shareapp:answer]",)


def test_diff_reports_say_how_bs_threshold_decided() -> None:
    from promptci.reporting.diff_json import comparison_to_dict
    from promptci.reporting.diff_markdown import render_comparison_markdown

    comparison = compare_runs(run_of(samples("c", 10, 10, 0.7)), run_of(samples("c", 7, 10, 0.7)))
    comparison = replace(comparison, decision=judge_comparison(comparison))
    words = "min_pass_rate at B: 7/10 passed, Wilson lower 0.40 < 0.7 required"
    assert comparison_to_dict(comparison)["changes"][0]["min_pass_rate"] == words
    assert f"passed 10/10 -> 7/10 ({words})" in render_comparison_markdown(comparison)


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.booleans(),
                 st.text(max_size=8), st.none()))
def test_any_min_pass_rate_value_is_a_threshold_in_range_or_a_problem_at_its_line(value: Any) -> None:
    import tempfile

    from promptci.loading.goldens import read_golden_file

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "goldens").mkdir()
        path = root / "goldens" / "say.yaml"
        path.write_text(f"cases:\n  - id: a\n    input: {{}}\n    min_pass_rate: {json.dumps(value)}\n",
                        encoding="utf-8")
        golden = read_golden_file(path, root, ())
    if golden.cases:
        [case] = golden.cases
        assert case.min_pass_rate is None or 0 < case.min_pass_rate <= 1
        assert golden.problems == []
    else:
        assert any(p.location is not None and p.location.line == 4 for p in golden.problems), golden.problems
