"""`promptci bisect GOOD BAD`: the first commit where the selected cases start failing, in a real history."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitrepo import commit, new_repo, snapshot

from promptci import api
from promptci.diffing import first_failing
from promptci.errors import ExitCode, PromptCIError

GOLDEN = ("cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n"
          "  - id: bob\n    input: {name: Bob}\n    expected: Hello Bob!\n")
BASE = {".gitignore": ".promptci/\n", "promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello {{ name }}!\n",
        "goldens/greet.yaml": GOLDEN}


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, list[str]]:
    """Ten commits after the base; the 7th (index 6) breaks bob, later ones touch other files."""
    repo = new_repo(tmp_path / "repo")
    shas = [commit(repo, BASE, "base")]
    for number in range(1, 11):
        if number == 7:
            files = {"prompts/greet.txt": "{% if name == 'Bob' %}Hi{% else %}Hello{% endif %} {{ name }}!\n"}
            message = "greet Bob informally"
        else:
            files = {f"notes/{number}.txt": f"note {number}\n"}
            message = f"note {number}"
        shas.append(commit(repo, files, message))
    return repo, shas


def test_bisect_names_the_commit_that_broke_a_case(history: tuple[Path, list[str]]) -> None:
    repo, shas = history
    before = snapshot(repo)
    outcome = api.bisect(api.RunOptions(root=repo), shas[0], shas[-1])
    assert outcome.first_bad == shas[7]
    assert outcome.subject == "greet Bob informally"
    assert outcome.failing == ("goldens/greet.yaml::bob [echo]",)
    assert "prompts/greet.txt" in outcome.changes and "+{% if name == 'Bob' %}" in outcome.changes
    assert len(outcome.steps) <= 2 + 4  # good, bad, then log2(10) rounded up
    assert snapshot(repo) == before


def test_bisect_with_k_follows_only_the_selected_cases(history: tuple[Path, list[str]]) -> None:
    repo, shas = history
    with pytest.raises(PromptCIError, match="BAD 'HEAD' passes") as caught:
        api.bisect(api.RunOptions(root=repo, keyword="ada"), shas[0], "HEAD")
    assert caught.value.exit_code == ExitCode.USAGE


def test_good_that_already_fails_is_a_usage_error(history: tuple[Path, list[str]]) -> None:
    repo, _ = history
    with pytest.raises(PromptCIError, match="GOOD 'HEAD~1' already fails"):
        api.bisect(api.RunOptions(root=repo), "HEAD~1", "HEAD")


def test_first_failing_asks_about_few_commits() -> None:
    commits = [f"c{i}" for i in range(100)]
    asked: list[str] = []

    def is_bad(commit: str) -> bool:
        asked.append(commit)
        return int(commit[1:]) >= 37

    assert first_failing(commits, is_bad) == "c37"
    assert len(asked) <= 7
    assert first_failing(["only"], lambda c: True) == "only"


def test_cli_prints_the_first_bad_commit_and_its_prompt_diff(history: tuple[Path, list[str]], cli) -> None:
    repo, shas = history
    result = cli("bisect", shas[0], "HEAD", "--root", repo)
    assert result.exit_code == 0, result.output
    assert f"first bad commit: {shas[7]} greet Bob informally" in result.stdout
    assert "goldens/greet.yaml::bob [echo]" in result.stdout
    assert "prompts/greet.txt" in result.stdout


def test_cli_bad_that_passes_exits_2_and_says_so(history: tuple[Path, list[str]], cli) -> None:
    repo, shas = history
    result = cli("bisect", shas[0], shas[3], "--root", repo)
    assert result.exit_code == 2
    assert f"BAD '{shas[3]}' passes" in result.output
