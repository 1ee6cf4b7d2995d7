"""Wrong verdicts of issue 16, one small reproduction each: what a verdict means on every path.

Each test names its item. The reproductions are kept small and readable: they are the spec."""

from __future__ import annotations

import io
import json
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server
from gitrepo import commit, new_repo

from promptci import api
from promptci.compare import compare_runs
from promptci.errors import ExitCode
from promptci.matrix import compare_models
from promptci.types import CaseResult, GitInfo, Run, Score, summarize

MODEL = "openai:gpt-4o-mini"


def sample(case_id: str, status: str, repeat: int = 0, model: str = MODEL, **extra: Any) -> CaseResult:
    scores = (Score("exact", 1.0 if status == "passed" else 0.0, status == "passed"),) \
        if status in ("passed", "failed") else ()
    return CaseResult(prompt="greet", case_id=case_id, file="goldens/greet.yaml", line=3, model=model,
                      status=status, repeat=repeat, output=None if status == "error" else "out",  # type: ignore[arg-type]
                      scores=scores, error="timeout" if status == "error" else None, **extra)


def run_of(results: list[CaseResult], models: tuple[str, ...] = (MODEL,)) -> Run:
    return Run(run_id="r", started_at="2026-12-01T00:00:00Z", finished_at=None, git=GitInfo(), models=models,
               results=tuple(results), summary=summarize(results))


def samples(case_id: str, passes: int, k: int, errors: int = 0) -> list[CaseResult]:
    statuses = ["passed"] * passes + ["error"] * errors + ["failed"] * (k - passes - errors)
    return [sample(case_id, status, repeat=i) for i, status in enumerate(statuses)]


def suite(cases: int, k: int, changed: dict[str, tuple[list[CaseResult], list[CaseResult]]]) -> tuple[Run, Run]:
    """`cases` cases passing k/k at both sides, except those in `changed` (case id -> (A's, B's samples))."""
    before, after = [], []
    for n in range(cases):
        case_id = f"c{n:02d}"
        a, b = changed.get(case_id, (samples(case_id, k, k), samples(case_id, k, k)))
        before += a
        after += b
    return run_of(before), run_of(after)


def judged(comparison: Any) -> Any:
    from promptci.verdict.diff import judge_comparison

    return judge_comparison(comparison)


# --- item 2: small K is blind, and says so -------------------------------------------------------------

def test_item2_all_passing_to_all_failing_is_never_flaky() -> None:
    before, after = suite(20, 3, {"c07": (samples("c07", 3, 3), samples("c07", 0, 3))})
    change = next(c for c in compare_runs(before, after).changes if c.case_id == "c07")
    assert change.transition == "dropped" and not change.is_flaky  # main said "flaky"


def test_item2_a_nine_of_ten_to_ten_of_ten_case_is_not_fixed() -> None:
    before, after = suite(5, 10, {"c01": (samples("c01", 9, 10), samples("c01", 10, 10))})
    change = next(c for c in compare_runs(before, after).changes if c.case_id == "c01")
    assert change.transition == "flaky"  # mixed outcomes at A: nothing was fixed


def test_item2_the_report_says_which_k_can_flag_one_case_exactly_by_the_gate() -> None:
    from promptci.stats import min_repeat_to_flag_one_case

    needed = min_repeat_to_flag_one_case(20, 0.05)
    assert needed is not None and needed > 3
    for k, flagged in ((needed - 1, False), (needed, True)):  # the gate itself agrees at the boundary
        before, after = suite(20, k, {"c07": (samples("c07", k, k), samples("c07", 0, k))})
        assert compare_runs(before, after).verdict.is_drop is flagged  # type: ignore[union-attr]
    before, after = suite(20, 3, {"c07": (samples("c07", 3, 3), samples("c07", 0, 3))})
    verdict = judged(compare_runs(before, after))
    assert verdict.exit_code == ExitCode.OK
    assert any(f"a single case needs K >= {needed} to be flagged" in note and f"--repeat {needed}" in note
               for note in verdict.notes), verdict.notes


def test_item2_markdown_shows_dropped_not_significant_at_k() -> None:
    from promptci.reporting.diff_markdown import render_comparison_markdown

    before, after = suite(20, 3, {"c07": (samples("c07", 3, 3), samples("c07", 0, 3))})
    text = render_comparison_markdown(compare_runs(before, after))
    assert "c07 [openai:gpt-4o-mini]` : passed 3/3 -> 0/3 (dropped (not significant at K = 3))" in text.replace(
        "`:", "` :")
    assert "### Flaky" not in text


# --- item 4: errors at A hide regressions ---------------------------------------------------------------

def test_item4_errored_at_a_and_failing_at_b_is_no_verdict_naming_the_case() -> None:
    before, after = suite(3, 10, {"c01": (samples("c01", 0, 10, errors=10), samples("c01", 0, 10))})
    verdict = judged(compare_runs(before, after))
    assert verdict.exit_code == ExitCode.NO_VERDICT  # main: PASSED ("0/0 -> 0/10")
    [finding] = verdict.findings
    assert finding.gate.value == "no_baseline"
    assert finding.subjects == ("goldens/greet.yaml:3 c01 [openai:gpt-4o-mini]",)


def test_item4_a_significant_drop_with_one_errored_sample_stays_a_drop() -> None:
    before, after = suite(3, 10, {"c01": (samples("c01", 10, 10), samples("c01", 0, 10, errors=1))})
    comparison = compare_runs(before, after)
    change = next(c for c in comparison.changes if c.case_id == "c01")
    assert change.transition == "regressed"  # main: "error"
    assert judged(comparison).exit_code == ExitCode.REGRESSION


def test_item4_passed_then_error_at_b_is_no_verdict_naming_the_case() -> None:
    verdict = judged(compare_runs(run_of([sample("a", "passed"), sample("b", "passed")]),
                                  run_of([sample("a", "error"), sample("b", "passed")])))
    assert verdict.exit_code == ExitCode.NO_VERDICT
    assert verdict.findings[0].subjects == ("goldens/greet.yaml:3 a [openai:gpt-4o-mini]",)


# --- item 6: latency and cost gates with statistics ----------------------------------------------------

def matrix_case(case: int, model: str, latency: float, cost: float) -> CaseResult:
    return CaseResult(prompt="p", case_id=f"c{case}", file="goldens/p.yaml", line=case + 1, model=model,
                      status="passed", scores=(Score("exact", 1.0, True),), output="x", latency_ms=latency,
                      cost_usd=cost, input_tokens=100, output_tokens=50)


def two_models(rng: random.Random, cases: int = 20, latency_factor: float = 1.0, price_factor: float = 1.0) -> Run:
    """Lognormal latency (cases differ, each call jitters) and cost with output-length noise."""
    results = []
    for case in range(cases):
        typical_ms = math.exp(rng.gauss(6.0, 0.5))  # ~400 ms, cases from ~150 ms to ~1 s
        typical_tokens = rng.randint(20, 400)
        for model, latency, price in (("a", 1.0, 1.0), ("b", latency_factor, price_factor)):
            tokens = max(1, round(rng.gauss(typical_tokens, typical_tokens * 0.25)))
            cost = price * (100 * 1e-6 + tokens * 4e-6)
            results.append(matrix_case(case, model, typical_ms * latency * math.exp(rng.gauss(0, 0.3)), cost))
    return run_of(results, ("a", "b"))


@pytest.mark.parametrize("gate", ["latency", "cost"])
def test_item6_identical_models_pass_at_least_95_percent(gate: str) -> None:
    rng = random.Random(16 if gate == "latency" else 61)
    trials = 400
    alarms = sum(compare_models(two_models(rng), "a", gates=(gate,)).fails for _ in range(trials))
    assert alarms <= 0.05 * trials, f"{alarms} of {trials} identical pairs failed the {gate} gate"  # main: 31% / 20%


@pytest.mark.parametrize("gate", ["latency", "cost"])
def test_item6_a_real_fifty_percent_shift_is_caught(gate: str) -> None:
    rng = random.Random(7)
    trials = 100
    factors = {"latency_factor": 1.5} if gate == "latency" else {"price_factor": 1.5}
    caught = sum(compare_models(two_models(rng, **factors), "a", gates=(gate,)).fails for _ in range(trials))
    assert caught >= 0.9 * trials, f"caught {caught} of {trials}"


def test_item6_the_signed_rank_test_matches_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    from promptci.stats import shift_bound, signed_rank_greater_p

    rng = random.Random(3)
    for n in (15, 40, 80):
        differences = [rng.gauss(0.2, 1) for _ in range(n)]
        p, exact = signed_rank_greater_p(differences)
        expected = scipy_stats.wilcoxon(differences, alternative="greater", method="exact" if exact else "approx",
                                        correction=True).pvalue
        assert p == pytest.approx(expected, rel=1e-9)
        bound = shift_bound(differences)  # the bound is the test inverted: shifting by it is just not rejected
        slack = 0.005  # at the bound one difference becomes 0 and drops out: the inversion is close, not exact
        assert signed_rank_greater_p([d - bound.lower for d in differences])[0] > 0.05 - slack
        assert signed_rank_greater_p([d - bound.lower + 1e-6 for d in differences])[0] <= 0.05 + slack


# --- items 7 and 13, and the cost gate's missing evidence: run --baseline-model against the fake server --

KEY = "sk-test-VERDICT-1234567890"


def matrix_files(server: FakeServer, priced: tuple[str, ...] = ("base", "cand")) -> dict[str, str]:
    cases = "\n".join(f"  - id: c{n:02d}\n    input: {{n: {n}}}\n    expected: A" for n in range(12))
    prices = "".join(f"  local:{m}: {{input: 1.0, output: 1.0}}\n" for m in priced)
    return {"prompts/route.txt": "route case {{ n }}\n", "goldens/route.yaml": f"cases:\n{cases}\n",
            "promptci.yaml": (f"timeout_s: 5\nretries: 1\nproviders:\n  local: {{type: openai, base_url: "
                              f"'{server.openai_base_url}', api_key_env: VERDICT_KEY}}\n"
                              + ("pricing:\n" + prices if prices else ""))}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VERDICT_KEY", KEY)
    with running_fake_server(responder=lambda body: "A") as fake:
        yield fake


def gated(cli, root: Path, gate: str, *args: str) -> Any:
    return cli("run", "--root", root, "-m", "local:base", "-m", "local:cand", "--baseline-model", "local:base",
               "--gate", gate, "--format", "json", "--no-github", *args)


def test_item7_a_cached_baseline_keeps_its_latency_and_the_gate_uses_it(cli, project, server: FakeServer) -> None:
    import sqlite3

    root = project(matrix_files(server))
    assert gated(cli, root, "latency").exit_code == 0
    with sqlite3.connect(root / ".promptci" / "promptci.db") as db:  # the candidate was slow when first asked
        db.execute("UPDATE cache SET latency_ms = 4000 WHERE identity LIKE '%\"local:cand\"%'")
        db.execute("UPDATE cache SET latency_ms = 300 WHERE identity NOT LIKE '%\"local:cand\"%'")
    again = gated(cli, root, "latency")
    document = json.loads(again.stdout)
    assert all(r["cached"] for r in document["results"]) and server.total == 24
    assert again.exit_code == 1, again.output  # main: 0 (cached latency left out, gate silently skipped)
    assert document["verdict"]["findings"][0]["gate"] == "latency"
    assert document["matrix"]["verdict"]["fails"] is True  # item 13: the JSON agrees with the exit code


def test_item7_replayed_answers_have_no_latency_so_the_gate_gives_no_verdict(cli, project,
                                                                             server: FakeServer) -> None:
    root = project(matrix_files(server))
    import shutil

    assert gated(cli, root, "latency", "--record").exit_code == 0
    shutil.rmtree(root / ".promptci")  # a fresh CI checkout: the recordings, no cache
    replayed = gated(cli, root, "latency", "--replay")
    assert replayed.exit_code == 3, replayed.output  # main: 0
    finding = json.loads(replayed.stdout)["verdict"]["findings"][0]
    assert finding["gate"] == "latency" and "no measured latency" in finding["message"]
    assert "latency" in replayed.stderr and "cannot be checked" in replayed.stderr


def test_item7_an_unknown_price_is_missing_evidence_for_the_cost_gate(cli, project, server: FakeServer) -> None:
    root = project(matrix_files(server, priced=("base",)))
    result = gated(cli, root, "cost")
    assert result.exit_code == 3, result.output  # one rule for every gate: main said 1
    assert json.loads(result.stdout)["verdict"]["findings"][0]["gate"] == "cost"


def test_item13_matrix_verdict_fails_when_the_cost_gate_fails_the_run(cli, project, server: FakeServer) -> None:
    files = matrix_files(server)
    files["promptci.yaml"] = files["promptci.yaml"].replace("local:cand: {input: 1.0, output: 1.0}",
                                                            "local:cand: {input: 9.0, output: 9.0}")
    result = gated(cli, project(files), "cost")
    document = json.loads(result.stdout)
    assert result.exit_code == 1
    assert document["matrix"]["verdict"]["fails"] is True  # main: false
    assert document["verdict"]["exit_code"] == 1
    assert document["matrix"]["verdict"]["candidates"][0]["fails"] is True


# --- item 8: diff exits 1 when the run budget skipped cases, as run does ---------------------------------

def test_item8_diff_fails_when_the_budget_skipped_cases(tmp_path: Path, fake_server: FakeServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERDICT_KEY", KEY)
    repo = new_repo(tmp_path / "repo")
    body = "".join(f"  - id: c{n}\n    input: {{n: {n}}}\n    expected: x\n" for n in range(6))
    config = ("models: ['local:m']\nconcurrency: 1\nbudgets: {run_usd: 0.03}\n"
              f"providers:\n  local: {{type: openai, base_url: '{fake_server.openai_base_url}', "
              "api_key_env: VERDICT_KEY}\npricing:\n  'local:m': {input: 1000, output: 1000}\n")
    prompt = "---\nparams: {max_tokens: 10}\n---\nplease repeat these words for case {{ n }}\n"
    commit(repo, {".gitignore": ".promptci/\n", "promptci.yaml": config, "prompts/p.txt": prompt,
                  "goldens/p.yaml": "cases:\n" + body}, "base")
    outcome = api.diff(api.DiffOptions(run=api.RunOptions(root=repo, use_cache=False), before="HEAD", after="HEAD"))
    assert outcome.exit_code == ExitCode.REGRESSION  # main: 0 while `run` exits 1
    assert any(r.skip_kind == "budget" for r in outcome.after.results)
    assert outcome.comparison.decision is not None
    assert [f.gate.value for f in outcome.comparison.decision.findings] == ["budget"]


# --- item 9: merge with a missing shard is no verdict unless allowed ------------------------------------

def test_item9_merge_without_a_shard_is_no_verdict_unless_allowed(cli, project, tmp_path: Path) -> None:
    cases = "".join(f"  - id: c{i:02d}\n    input: {{name: n{i}}}\n    expected: Hello n{i}!\n" for i in range(9))
    root = project({"prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": "cases:\n" + cases,
                    "promptci.yaml": "models: [echo]\n"})
    files = []
    for index in (1, 3):
        path = tmp_path / f"shard{index}.json"
        assert cli("run", "--root", root, "--no-github", "--shard", f"{index}/3", "-q", "-o", f"json={path}"
                   ).exit_code == 0
        files.append(path)
    strict = cli("merge", "--root", root, "--no-github", *files)
    assert strict.exit_code == 3, strict.output  # main: 0 ("merged without shard 2/3")
    assert "verdict: NO VERDICT (exit 3)" in strict.stdout and "2/3" in strict.stdout
    allowed = cli("merge", "--root", root, "--no-github", "--allow-missing-shards", *files)
    assert allowed.exit_code == 0, allowed.output
    workflow = (Path(__file__).resolve().parent.parent / "examples" / "github" / "sharded.yml").read_text()
    assert "promptci merge" in workflow and "--allow-missing-shards" not in workflow  # the example stays strict


# --- honest reports ------------------------------------------------------------------------------------

def test_alpha_without_repeat_warns_that_it_does_nothing(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    commit(repo, {".gitignore": ".promptci/\n", "promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello!",
                  "goldens/greet.yaml": "cases:\n  - id: a\n    expected: Hello!\n"}, "base")
    outcome = api.diff(api.DiffOptions(run=api.RunOptions(root=repo), before="HEAD", after="HEAD", alpha=0.01))
    assert outcome.comparison.decision is not None
    assert any("--alpha 0.01 does nothing without --repeat" in n for n in outcome.comparison.decision.notes)


def test_a_new_case_line_says_whether_it_passes() -> None:
    from promptci.reporting.diff_markdown import render_comparison_markdown

    comparison = compare_runs(run_of([sample("old", "passed")]),
                              run_of([sample("old", "passed"), sample("fresh", "failed"), sample("good", "passed")]))
    text = render_comparison_markdown(comparison)
    assert "### New and failing: 1\n\n- `goldens/greet.yaml:3 fresh [openai:gpt-4o-mini]`" in text
    assert "good [openai:gpt-4o-mini]` (passes)" in text


def test_no_report_prints_zero_for_a_nonzero_cost() -> None:
    from promptci.reporting import write_comparison, write_report

    tiny = dict(cost_usd=0.0000004, input_tokens=1, output_tokens=1)
    before = run_of([sample("a", "passed", **tiny)])
    after = run_of([sample("a", "passed", cost_usd=0.0, saved_usd=0.0000004, cached=True, input_tokens=1,
                           output_tokens=1)])
    comparison = compare_runs(before, after)
    zero = re.compile(r"(?<![±$])\$?0\.0+(?![0-9])")  # $0.00 or 0.000000, but not a change of ±$0.00
    for fmt in ("table", "markdown", "html"):
        stream = io.StringIO()
        write_comparison(comparison, fmt, stream)
        shown = stream.getvalue().replace("\\u003e", ">")  # the HTML page's data is JSON with < and > escaped
        assert "$0.0000004 -> $0.0000004" in shown, fmt  # a cache hit at its price, not $0.00
        assert not zero.findall(stream.getvalue()), fmt
    for fmt in ("markdown", "html", "junit", "table"):
        stream = io.StringIO()
        write_report(before, fmt, stream)
        assert not zero.findall(re.sub(r'time="[0-9.]+"', "", stream.getvalue())), fmt  # junit times may be 0


# --- structured skip reasons: never matched on message text --------------------------------------------

def test_a_skip_is_judged_by_its_kind_never_by_its_text() -> None:
    from promptci.config import Gate as GateSettings
    from promptci.verdict.gates import judge_run

    worded = sample("a", "skipped", skip_reason="budget: sending it would pass the run budget of $1.00")
    held = sample("b", "skipped", skip_reason="held back", skip_kind="budget")
    assert judge_run(run_of([worded]), GateSettings()).exit_code == ExitCode.OK
    verdict = judge_run(run_of([held]), GateSettings())
    assert verdict.exit_code == ExitCode.REGRESSION and verdict.findings[0].gate.value == "budget"


def test_broken_cases_are_data_whatever_their_path_looks_like() -> None:
    from dataclasses import replace

    from promptci.reporting.stats import run_notes
    from promptci.types import BrokenCase

    broken = BrokenCase("goldens/with space.yaml:3", "unknown comparator 'exakt'")
    run = replace(run_of([]), problems=(str(broken), "m:b: stopped after an auth error"), broken=(broken,))
    assert run_notes(run) == ["1 case skipped (broken): goldens/with space.yaml:3", "m:b: stopped after an auth error"]


def test_a_new_case_that_errored_at_b_is_no_verdict_not_a_pass() -> None:
    """A replay miss or a provider error on a case B added: it was never scored, so the diff cannot pass."""
    comparison = compare_runs(run_of([sample("old", "passed")]),
                              run_of([sample("old", "passed"), sample("fresh", "error")]))
    from promptci.verdict.diff import judge_comparison

    decision = judge_comparison(comparison)
    assert decision.exit_code == ExitCode.NO_VERDICT
    assert [f.subjects for f in decision.findings] == [("goldens/greet.yaml:3 fresh [openai:gpt-4o-mini]",)]
