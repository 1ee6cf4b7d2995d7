"""compare: pairing two runs case by case, what changed, and the exit code it implies."""

from __future__ import annotations

from typing import Any

import numpy as np

from promptci.compare import compare_runs, output_diff, prompt_renames, word_diff
from promptci.errors import ExitCode
from promptci.gitrev import Rename
from promptci.types import CaseResult, GitInfo, Run, Score, summarize
from promptci.verdict.diff import judge_comparison

MODEL = "openai:gpt-4o-mini"


def exit_code_for_comparison(comparison: Any) -> ExitCode:
    return judge_comparison(comparison).exit_code


def result(case_id: str, status: str, *, prompt: str = "greet", file: str = "goldens/greet.yaml",
           model: str = MODEL, repeat: int = 0, output: str | None = "out", score: float | None = None,
           **extra: Any) -> CaseResult:
    value = score if score is not None else (1.0 if status == "passed" else 0.0)
    scores = (Score("exact", value, status == "passed"),) if status in ("passed", "failed") else ()
    fields: dict[str, Any] = {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.001, "latency_ms": 100.0}
    fields.update(extra)
    return CaseResult(prompt=prompt, case_id=case_id, file=file, line=3, model=model, status=status,  # type: ignore[arg-type]
                      repeat=repeat, output=output, scores=scores, **fields)


def run(*results: CaseResult) -> Run:
    return Run(run_id="r", started_at="2026-12-01T00:00:00Z", finished_at=None, git=GitInfo(),
               models=(MODEL,), results=results, summary=summarize(results))


def transitions(comparison: Any) -> dict[str, str]:
    return {c.case_id: c.transition for c in comparison.changes}


def test_every_transition_named_and_a_regression_exits_1() -> None:
    before = run(result("same", "passed"), result("breaks", "passed"), result("fixed", "failed"),
                 result("stuck", "failed"), result("gone", "passed"))
    after = run(result("same", "passed"), result("breaks", "failed"), result("fixed", "passed"),
                result("stuck", "failed"), result("fresh", "passed"))
    comparison = compare_runs(before, after)
    assert transitions(comparison) == {"same": "still_passing", "breaks": "regressed", "fixed": "fixed",
                                       "stuck": "still_failing", "fresh": "new", "gone": "removed"}
    assert [c.case_id for c in comparison.with_transition("regressed")] == ["breaks"]
    assert comparison.counts["regressed"] == 1
    assert exit_code_for_comparison(comparison) == ExitCode.REGRESSION


def test_a_fix_alone_exits_0() -> None:
    comparison = compare_runs(run(result("a", "failed"), result("b", "passed")),
                              run(result("a", "passed"), result("b", "passed")))
    assert transitions(comparison) == {"a": "fixed", "b": "still_passing"}
    assert exit_code_for_comparison(comparison) == ExitCode.OK


def test_errors_give_no_verdict_unless_something_regressed() -> None:
    errored = compare_runs(run(result("a", "passed")), run(result("a", "error", output=None, error="timeout")))
    assert transitions(errored) == {"a": "error"}
    assert exit_code_for_comparison(errored) == ExitCode.NO_VERDICT
    both = compare_runs(run(result("a", "passed"), result("b", "passed")),
                        run(result("a", "error", output=None), result("b", "failed")))
    assert exit_code_for_comparison(both) == ExitCode.REGRESSION


def test_models_pair_separately() -> None:
    before = run(result("a", "passed"), result("a", "passed", model="echo"))
    after = run(result("a", "passed"), result("a", "failed", model="echo"))
    changes = {c.model: c.transition for c in compare_runs(before, after).changes}
    assert changes == {MODEL: "still_passing", "echo": "regressed"}


def test_renamed_golden_and_prompt_files_pair_their_cases() -> None:
    renames = (Rename("goldens/greet.yaml", "goldens/hello.yaml"), Rename("prompts/greet.txt", "prompts/hi.j2"))
    before = run(result("a", "passed"), result("old-id", "passed"))
    after = run(result("a", "failed", prompt="hi", file="goldens/hello.yaml"),
                result("new-id", "passed", prompt="hi", file="goldens/hello.yaml"))
    comparison = compare_runs(before, after, renames)
    assert transitions(comparison) == {"a": "regressed", "new-id": "new", "old-id": "removed"}
    paired = comparison.changes[0]
    assert paired.renamed_from == "goldens/greet.yaml::greet"
    assert (paired.prompt, paired.file) == ("hi", "goldens/hello.yaml")


def test_prompt_renames_from_paths() -> None:
    found = prompt_renames([Rename("prompts/triage/route.txt", "prompts/route.md"), Rename("goldens/x.yaml", "g/y")])
    assert found == {"triage/route": "route"}


def test_deltas_scores_and_totals() -> None:
    before = run(result("a", "passed", score=0.9, cost_usd=0.002, latency_ms=200.0, output_tokens=20),
                 result("b", "passed"))
    after = run(result("a", "failed", score=0.4, cost_usd=0.001, latency_ms=150.0, output_tokens=5),
                result("b", "passed", cost_usd=None))
    comparison = compare_runs(before, after)
    a, b = comparison.changes
    assert a.cost_usd.delta is not None and round(a.cost_usd.delta, 6) == -0.001
    assert (a.tokens.before, a.tokens.after, a.latency_ms.delta) == (30, 15, -50.0)
    assert [(s.comparator, s.before, s.after) for s in a.scores] == [("exact", 0.9, 0.4)]
    assert b.cost_usd.after is None and b.cost_usd.delta is None  # unknown stays unknown, never 0
    (totals,) = comparison.totals
    assert (totals.prompt, totals.model) == ("greet", MODEL)
    assert (totals.passed.before, totals.passed.after, totals.cases.after) == (2, 1, 2)
    assert totals.cost_usd.after is None


def test_word_diff_and_json_diff() -> None:
    assert word_diff("the quick brown fox", "the slow brown fox") == "the [-quick-]{+slow+} brown fox"
    assert output_diff("same", "same") is None
    shown = output_diff('{"urgency": "high", "dx": "ACS"}', '{"urgency": "low", "dx": "ACS"}')
    assert shown is not None and "root['urgency']" in shown and "high" in shown and "low" in shown
    assert output_diff('{"a": 1}', '{ "a": 1 }') == "same JSON value, different text"
    assert output_diff("Hello", None) == "[-Hello-]"


def test_a_long_output_is_diffed_line_by_line_then_word_by_word() -> None:
    before = "".join(f"line {i} says hello world\n" for i in range(3000))
    after = before.replace("line 1500 says hello", "line 1500 says goodbye") + "one more line\n"
    changed = [line for line in word_diff(before, after).splitlines() if "[-" in line or "{+" in line]
    assert changed == ["line 1500 says [-hello-]{+goodbye+} world", "{+one more line"]  # the added newline is inside
    assert word_diff("a " * 3000, "a " * 2999 + "b ").endswith("[-a -]{+b +}")  # coarser: spaces are junk here


def repeated_run(rates: list[float], k: int, rng: np.random.Generator) -> Run:
    results = [result(f"c{i}", "passed" if rng.random() < p else "failed", repeat=j)
               for i, p in enumerate(rates) for j in range(k)]
    return run(*results)


def test_repeats_noise_is_not_a_regression() -> None:
    rng = np.random.default_rng(1)
    rates = list(rng.uniform(0.5, 0.95, 20))
    comparison = compare_runs(repeated_run(rates, 10, rng), repeated_run(rates, 10, rng))
    assert comparison.repeated and comparison.verdict is not None
    assert not comparison.verdict.is_drop
    assert exit_code_for_comparison(comparison) == ExitCode.OK
    assert "regressed" not in comparison.counts
    assert any(c.is_flaky for c in comparison.changes)
    assert len(comparison.changes) == 20  # cases, not samples


def test_repeats_a_real_drop_is_a_regression() -> None:
    rng = np.random.default_rng(2)
    rates = [0.9] * 10
    dropped = [0.9] * 9 + [0.0]
    comparison = compare_runs(repeated_run(rates, 10, rng), repeated_run(dropped, 10, rng))
    assert exit_code_for_comparison(comparison) == ExitCode.REGRESSION
    assert [c.case_id for c in comparison.with_transition("regressed")] == ["c9"]
    change = comparison.with_transition("regressed")[0]
    assert change.counts[2:] == (0, 10)
    before, after = change.intervals
    assert after.low == 0.0 and 0.25 < after.high < 0.35  # Wilson 0/10: [0, 0.2775]
    assert before.low > after.high
