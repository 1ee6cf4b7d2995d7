"""How `diff` pairs a case at A with the same case at B (issue 16, item 3): by id first, then by content (prompt
and input), so a renamed case or a golden file moved and reformatted past git's rename detection keeps its
regression; and a new case that fails at B fails the gate unless --allow-new-failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitrepo import commit, new_repo

from promptci import api
from promptci.compare import compare_runs
from promptci.errors import ExitCode
from promptci.types import CaseResult, GitInfo, Run, summarize
from promptci.verdict.diff import judge_comparison

GOLDEN = """\
cases:
  - id: ada
    input: {name: Ada}
    expected: Hello Ada!
  - id: bob
    input: {name: Bob}
    expected: Hello Bob!
  - id: cy
    input: {name: Cy}
    expected: Hello Cy!
"""
# The same three cases, reformatted as a team might when moving the file: another key order, block style.
REFORMATTED = """\
prompt: greet
cases:
- expected: Hello Ada!
  id: ada
  input:
    name: Ada
- expected: Hello Bob!
  id: bob
  input:
    name: Bob
- expected: Hello Cy!
  id: cy
  input:
    name: Cy
"""
BREAKS_ADA = "{% if name == 'Ada' %}Hi{% else %}Hello{% endif %} {{ name }}!\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = new_repo(tmp_path / "repo")
    commit(root, {".gitignore": ".promptci/\n", "promptci.yaml": "models: [echo]\n",
                  "prompts/greet.txt": "Hello {{ name }}!\n", "goldens/greet.yaml": GOLDEN}, "base")
    return root


def diff(root: Path, **options: object) -> api.DiffOutcome:
    return api.diff(api.DiffOptions(run=api.RunOptions(root=root), before="HEAD~1", after="HEAD", **options))


def by_transition(outcome: api.DiffOutcome) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for change in outcome.comparison.changes:
        found.setdefault(change.transition, set()).add(change.case_id)
    return found


def test_a_renamed_case_keeps_its_regression(repo: Path) -> None:
    commit(repo, {"goldens/greet.yaml": GOLDEN.replace("id: ada", "id: ada-lovelace"),
                  "prompts/greet.txt": BREAKS_ADA}, "rename ada, and break her")
    outcome = diff(repo)
    assert by_transition(outcome) == {"regressed": {"ada-lovelace"}, "still_passing": {"bob", "cy"}}
    (ada,) = outcome.comparison.with_transition("regressed")
    assert ada.renamed_from == "goldens/greet.yaml::greet::ada"
    assert outcome.exit_code == ExitCode.REGRESSION


def test_a_golden_file_moved_and_reformatted_keeps_its_regression(repo: Path) -> None:
    # Past git's rename threshold: git sees one file deleted and another added.
    commit(repo, {"goldens/greet.yaml": None, "goldens/people/greetings.yaml": REFORMATTED,
                  "prompts/greet.txt": BREAKS_ADA}, "move and reformat the goldens, break ada")
    outcome = diff(repo)
    assert by_transition(outcome) == {"regressed": {"ada"}, "still_passing": {"bob", "cy"}}
    assert outcome.exit_code == ExitCode.REGRESSION


def test_a_new_case_that_fails_fails_the_gate(repo: Path) -> None:
    dee = "  - id: dee\n    input: {name: Dee}\n    expected: Good day Dee!\n"
    eve = "  - id: eve\n    input: {name: Eve}\n    expected: Hello Eve!\n"
    commit(repo, {"goldens/greet.yaml": GOLDEN + dee + eve}, "two new cases, one failing")
    outcome = diff(repo)
    assert by_transition(outcome) == {"new_failing": {"dee"}, "new": {"eve"}, "still_passing": {"ada", "bob", "cy"}}
    assert outcome.exit_code == ExitCode.REGRESSION
    allowed = diff(repo, allow_new_failures=True)
    assert by_transition(allowed)["new_failing"] == {"dee"}  # still reported as new and failing
    assert allowed.exit_code == ExitCode.OK


def test_cli_allow_new_failures(repo: Path, cli) -> None:
    commit(repo, {"goldens/greet.yaml": GOLDEN + "  - id: dee\n    input: {name: Dee}\n    expected: Bye!\n"}, "new")
    failing = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--no-github")
    assert failing.exit_code == 1, failing.output
    assert "new and failing" in failing.output.lower()
    allowed = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--no-github", "--allow-new-failures")
    assert allowed.exit_code == 0, allowed.output


# compare_runs alone ----------------------------------------------------------------------------------------


def result(case_id: str, status: str, *, file: str = "goldens/greet.yaml", input_hash: str | None = None,
           model: str = "echo") -> CaseResult:
    return CaseResult(prompt="greet", case_id=case_id, file=file, line=3, model=model, status=status,  # type: ignore[arg-type]
                      output="out", input_hash=input_hash or case_id)


def run(*results: CaseResult) -> Run:
    return Run(run_id="r", started_at="2026-12-01T00:00:00Z", finished_at=None, git=GitInfo(), models=("echo",),
               results=results, summary=summarize(results))


def test_pairing_by_id_wins_over_content() -> None:
    # b's input is now a's old input: ids decide, so a and b pair with themselves.
    before = run(result("a", "passed", input_hash="x"), result("b", "passed", input_hash="y"))
    after = run(result("a", "passed", input_hash="y"), result("b", "failed", input_hash="x"))
    comparison = compare_runs(before, after)
    assert {c.case_id: c.transition for c in comparison.changes} == {"a": "still_passing", "b": "regressed"}


def test_an_id_in_another_file_pairs_when_unambiguous() -> None:
    before = run(result("a", "passed", file="goldens/old.yaml", input_hash="x"))
    after = run(result("a", "failed", file="goldens/new.yaml", input_hash="changed"))
    (change,) = compare_runs(before, after).changes
    assert (change.transition, change.renamed_from) == ("regressed", "goldens/old.yaml::greet")


def test_content_pairs_only_within_a_model_and_one_to_one() -> None:
    before = run(result("a", "passed", input_hash="x"), result("a", "passed", input_hash="x", model="other"))
    after = run(result("a2", "failed", input_hash="x"), result("a3", "passed", input_hash="x"),
                result("a2", "passed", input_hash="x", model="other"))
    comparison = compare_runs(before, after)
    assert sorted((c.case_id, c.model, c.transition) for c in comparison.changes) == [
        ("a2", "echo", "regressed"), ("a2", "other", "still_passing"), ("a3", "echo", "new")]
    assert judge_comparison(comparison).exit_code == ExitCode.REGRESSION


def test_a_new_case_that_errors_or_passes_is_only_new() -> None:
    comparison = compare_runs(run(), run(result("a", "passed"), result("b", "error")))
    assert {c.case_id: c.transition for c in comparison.changes} == {"a": "new", "b": "new"}
