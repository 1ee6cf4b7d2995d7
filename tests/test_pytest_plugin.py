"""The pytest plugin on a sample suite through pytester (in subprocesses: promptci modules and yaml must not
be re-imported into this process): items per case x model with promptci's ids, failure
text from the comparators, -k, -x and --lf, and the run stored like `promptci run`'s (offline: echo)."""

from __future__ import annotations

import sqlite3

import pytest

pytest_plugins = ["pytester"]

PROMPT = "Hello {{ name }}!\n"
GOLDEN = """\
cases:
  - id: ada
    input: {name: Ada}
    expected: Hello Ada!
    tags: [smoke]
  - id: bob
    input: {name: Bob}
    expected: Hi Bob!
  - id: cy
    input: {name: Cy}
    expected: Hello Cy!
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".txt", **{"prompts/greet": PROMPT})
    pytester.makefile(".yaml", **{"goldens/greet": GOLDEN})
    pytester.makefile(".yaml", promptci="models: [echo]\n")
    return pytester


def test_items_ids_outcomes_and_failure_text(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--promptci", "goldens", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "goldens/greet.yaml::ada[[]echo[]] PASSED*",
        "goldens/greet.yaml::bob[[]echo[]] FAILED*",
        "goldens/greet.yaml::cy[[]echo[]] PASSED*",
    ])
    result.stdout.fnmatch_lines(["*goldens/greet.yaml:6: bob on echo failed*",
                                 "*exact: output differs from expected*", "*output: Hello Bob!*"])


def test_models_from_the_command_line_make_one_item_each(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--promptci", "goldens", "--promptci-model", "echo", "--promptci-model",
                             "python:app:shout", "--collect-only", "-q")
    assert "goldens/greet.yaml::ada[python:app:shout]" in result.stdout.str()
    assert result.stdout.str().count("goldens/greet.yaml::") == 6


def test_keyword_exitfirst_and_last_failed(suite: pytest.Pytester) -> None:
    suite.runpytest_subprocess("--promptci", "goldens", "-k", "smoke").assert_outcomes(passed=1)
    suite.runpytest_subprocess("--promptci", "goldens", "-x").assert_outcomes(passed=1, failed=1)
    again = suite.runpytest_subprocess("--promptci", "goldens", "--lf", "-v")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*rerun previous 1 failure*", "goldens/greet.yaml::bob[[]echo[]] FAILED*"])


def test_the_run_is_stored_like_promptci_runs(suite: pytest.Pytester) -> None:
    suite.runpytest_subprocess("--promptci", "goldens")
    with sqlite3.connect(suite.path / ".promptci" / "promptci.db") as db:
        runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        results = db.execute("SELECT case_id, status FROM results ORDER BY case_id").fetchall()
    assert runs == 1
    assert results == [("ada", "passed"), ("bob", "failed"), ("cy", "passed")]


def test_without_the_flag_goldens_are_not_collected(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("goldens")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_a_broken_golden_is_a_collection_error_naming_the_line(suite: pytest.Pytester) -> None:
    suite.makefile(".yaml", **{"goldens/greet": "cases:\n  - id: a\n    input: {nam: A}\n    expected: x\n"})
    result = suite.runpytest_subprocess("--promptci", "goldens")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*promptci:*greet*name*"])


def test_a_case_the_budget_held_back_fails_its_item_as_in_run(pytester: pytest.Pytester, fake_server,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: one verdict policy. `run` exits 1 when the budget kept cases from being sent; the items of
    those cases fail (main skipped them, and pytest passed)."""
    monkeypatch.setenv("PLUGIN_KEY", "sk-test-plugin-0123456789")
    pytester.makefile(".txt", **{"prompts/greet": PROMPT})
    pytester.makefile(".yaml", **{"goldens/greet": GOLDEN})
    pytester.makefile(".yaml", promptci=(
        "models: ['local:m']\nconcurrency: 1\nbudgets: {run_usd: 0.03}\n"
        f"providers:\n  local: {{type: openai, base_url: '{fake_server.openai_base_url}', api_key_env: PLUGIN_KEY}}\n"
        "pricing:\n  'local:m': {input: 1000, output: 1000}\n"))
    result = pytester.runpytest_subprocess("--promptci", "goldens", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) == 0 and outcomes.get("failed", 0) == 3, outcomes
    result.stdout.fnmatch_lines(["*budget: the run budget kept 1 case(s) from being sent*"])
