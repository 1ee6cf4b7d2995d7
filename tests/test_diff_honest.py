"""What a diff must say so its verdict is read right: a case scored by changed comparator options at B names
the change in its row (and is listed even while still passing: a loosened check can hide a worse output);
with one sample per side on a model whose outputs vary, the diff says so and suggests --repeat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gitrepo import commit, new_repo

GOLDEN = """\
cases:
  - id: ada
    input: {name: Ada}
    expected: Hello Ada!
    comparators: [{type: fuzzy, threshold: 0.95}]
  - id: bob
    input: {name: Bob}
    expected: Hello Bob!
    comparators: [exact, {type: contains, value: Bob}]
"""
FILES = {".gitignore": ".promptci/\n", "promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello {{ name }}!",
         "goldens/greet.yaml": GOLDEN}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = new_repo(tmp_path / "repo")
    commit(root, FILES, "base")
    # B: a worse greeting, and the checks loosened so that ada still passes; bob's contains now wants "Hello"
    commit(root, {"prompts/greet.txt": "Hullo there {{ name }}!",
                  "goldens/greet.yaml": GOLDEN.replace("threshold: 0.95", "threshold: 0.5")
                  .replace("value: Bob", "value: Hello")}, "loosen")
    return root


def test_changed_comparator_options_are_named_in_the_case_row(cli: Any, repo: Path, tmp_path: Path) -> None:
    markdown, report = tmp_path / "d.md", tmp_path / "d.json"
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--no-github", "-o", f"markdown={markdown}",
                 "-o", f"json={report}")
    assert result.exit_code == 1, result.output  # bob regressed
    assert "goldens/greet.yaml:6 bob [echo] (contains: value \"Bob\" → \"Hello\")" in result.output
    assert "comparators changed A -> B (their verdicts do not compare as they stand): 1" in result.output
    assert "goldens/greet.yaml:2 ada [echo] (fuzzy: threshold 0.95 → 0.5)" in result.output
    text = markdown.read_text()
    assert "`goldens/greet.yaml:2 ada [echo] (fuzzy: threshold 0.95 → 0.5)`" in text
    changes = {c["case_id"]: c for c in json.loads(report.read_text())["changes"]}
    assert changes["ada"]["transition"] == "still_passing"
    assert changes["ada"]["checks_changed"] == ["fuzzy: threshold 0.95 → 0.5"]
    assert changes["bob"]["checks_changed"] == ['contains: value "Bob" → "Hello"']


def test_comparators_added_and_removed_are_named() -> None:
    from promptci.compare import comparator_changes
    from promptci.types import CaseResult, Score

    def sample(*scores: Score) -> CaseResult:
        return CaseResult("p", "c", "g.yaml", 1, "echo", "passed", scores=scores)

    before = sample(Score("exact", 1, True), Score("length", 1, True, options={"max_chars": 10}))
    after = sample(Score("length", 1, True, options={"max_chars": 10, "min_chars": 1}), Score("regex", 1, True))
    assert comparator_changes([before], [after]) == (
        "length: min_chars unset → 1", "regex added", "exact removed")
    assert comparator_changes([before], [before]) == ()


# One sample per side on a model whose outputs vary ---------------------------------------------------------------

COUNTING_APP = """\
import os
from pathlib import Path

def answer(messages, params):
    counter = Path(os.environ["CALLS_FILE"])
    calls = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(calls))
    return "Hello Ada!" if calls % 2 else "Hi Ada"
"""
ONE_CASE = "cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n"


def test_outputs_differing_at_a_and_b_for_an_unchanged_request_suggest_repeat(
        cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLS_FILE", str(tmp_path / "calls"))
    root = new_repo(tmp_path / "varying")
    commit(root, {".gitignore": ".promptci/\n", "promptci.yaml": "models: ['python:app:answer']\n",
                  "app.py": COUNTING_APP, "prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": ONE_CASE},
           "base")
    commit(root, {"README.md": "notes\n"}, "docs only")
    result = cli("diff", "HEAD~1", "HEAD", "--root", root, "--no-github")
    assert result.exit_code == 1, result.output  # ada "regressed": the model, not the change
    assert ("python:app:answer answered 1 unchanged request differently from one sample to the next (e.g. "
            "goldens/greet.yaml:2 ada, A and B): its outputs vary, so with one sample per side a case can pass or "
            "fail by chance; run the diff with --repeat K (e.g. --repeat 5) to compare pass rates") in result.stderr


def test_cached_samples_that_disagree_suggest_repeat(cli: Any, tmp_path: Path, fake_server: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-1234567890")
    answers = iter(["Hello Ada!", "Hi Ada"])
    fake_server.config.responder = lambda request: next(answers)
    root = new_repo(tmp_path / "served")
    config = ("models: ['fake:m']\nproviders:\n"
              f"  fake: {{type: openai, base_url: '{fake_server.openai_base_url}', api_key_env: FAKE_OPENAI_KEY}}\n")
    commit(root, {".gitignore": ".promptci/\n", "promptci.yaml": config, "prompts/greet.txt": "Hello {{ name }}!",
                  "goldens/greet.yaml": ONE_CASE}, "base")
    commit(root, {"README.md": "notes\n"}, "docs only")
    assert cli("run", "--root", root, "--repeat", "2", "-j", "1").exit_code == 1  # sample 1 failed
    result = cli("diff", "HEAD~1", "HEAD", "--root", root, "--no-github")
    assert result.exit_code == 0, result.output  # both sides answered from sample 0 in the cache
    assert "fake:m answered 1 unchanged request differently" in result.stderr and "cached samples" in result.stderr
    steady = cli("diff", "HEAD~1", "HEAD", "--root", root, "--no-github", "--repeat", "2")
    assert "differently from one sample" not in steady.stderr  # --repeat measures it


def test_a_steady_model_gets_no_note(cli: Any, repo: Path) -> None:
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--no-github")
    assert "differently from one sample" not in result.stderr
