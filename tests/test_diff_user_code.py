"""Each side of `diff` and each step of `bisect` runs its own Python code: the module the config names AND every
helper it imports (issue 16, item 1). The old main re-imported only the named module, so a helper kept the
first side's version: A was scored with B's rules, B answered with A's core."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from gitrepo import commit, new_repo

from promptci import api
from promptci.errors import ExitCode

GOLDEN = "cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n"

# Three ways a project's own code takes part, each split into the module promptci imports and a helper that
# module imports. Side A's helper makes the case pass, side B's makes it fail.
PROVIDER = {  # python:app:answer answers with core.greeting()
    "files": {"promptci.yaml": "models: ['python:app:answer']\n", "prompts/greet.txt": "{{ name }}\n",
              "goldens/greet.yaml": GOLDEN,
              "app.py": "from core import greeting\n\n\ndef answer(messages, params):\n"
                        "    return f\"{greeting()} {messages[-1]['content'].strip()}!\"\n"},
    "helper": "core.py", "passes": "def greeting():\n    return 'Hello'\n",
    "fails": "def greeting():\n    return 'Bye'\n",
}
COMPARATOR = {  # the python comparator checks.py:check reads its rule from rules.py
    "files": {"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello {{ name }}!\n",
              "goldens/greet.yaml": "cases:\n  - id: ada\n    input: {name: Ada}\n"
                                    "    comparators: [{type: python, function: checks.py:check}]\n",
              "checks.py": "from rules import GREETING\n\n\ndef check(output):\n"
                           "    return output.startswith(GREETING)\n"},
    "helper": "rules.py", "passes": "GREETING = 'Hello'\n", "fails": "GREETING = 'Hey'\n",
}
TRANSFORM = {  # exact, after the transform shape.py:shape, which appends fmt.SUFFIX
    "files": {"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello {{ name }}\n",
              "goldens/greet.yaml": GOLDEN.replace(
                  "expected: Hello Ada!\n",
                  "expected: Hello Ada!\n    comparators: [{type: exact, transform: {python: shape.py:shape}}]\n"),
              "shape.py": "from fmt import SUFFIX\n\n\ndef shape(text):\n    return text.strip() + SUFFIX\n"},
    "helper": "fmt.py", "passes": "SUFFIX = '!'\n", "fails": "SUFFIX = '?'\n",
}
KINDS = {"provider": PROVIDER, "comparator": COMPARATOR, "transform": TRANSFORM}


def history(root: Path, kind: dict) -> tuple[str, str]:
    """A repository whose first commit passes and whose second changes only the helper, so the case fails."""
    repo = new_repo(root)
    passing = commit(repo, {**kind["files"], ".gitignore": ".promptci/\n", kind["helper"]: kind["passes"]}, "passes")
    failing = commit(repo, {kind["helper"]: kind["fails"]}, "the helper breaks it")
    return passing, failing


def transition(repo: Path, before: str, after: str) -> tuple[str, ExitCode]:
    outcome = api.diff(api.DiffOptions(run=api.RunOptions(root=repo), before=before, after=after))
    (change,) = outcome.comparison.changes
    return change.transition, outcome.exit_code


@pytest.mark.parametrize("name", KINDS)
def test_diff_runs_each_side_with_its_own_helper_modules(tmp_path: Path, name: str) -> None:
    repo = tmp_path / name
    passing, failing = history(repo, KINDS[name])
    assert transition(repo, passing, failing) == ("regressed", ExitCode.REGRESSION)
    assert transition(repo, failing, passing) == ("fixed", ExitCode.OK)  # the other way round
    assert api.run(api.RunOptions(root=repo)).run.summary.failed == 1  # as `run` at B says


@pytest.mark.parametrize("name", KINDS)
def test_the_working_tree_side_uses_its_own_helper_too(tmp_path: Path, name: str) -> None:
    repo = tmp_path / name
    history(repo, KINDS[name])
    (repo / KINDS[name]["helper"]).write_text(KINDS[name]["passes"], encoding="utf-8")  # uncommitted fix
    assert transition(repo, "HEAD", None) == ("fixed", ExitCode.OK)
    assert transition(repo, "HEAD~1", None) == ("still_passing", ExitCode.OK)


def test_diff_leaves_the_callers_modules_and_path_as_it_found_them(tmp_path: Path) -> None:
    repo = tmp_path / "provider"
    passing, failing = history(repo, PROVIDER)
    path_before, own = list(sys.path), sys.modules.get("core")
    transition(repo, passing, failing)
    assert sys.path == path_before
    assert sys.modules.get("core") is own  # nothing of either side is left behind


def test_bisect_blames_the_commit_that_changed_a_helper(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "bisect")
    shas = [commit(repo, {**PROVIDER["files"], ".gitignore": ".promptci/\n", "core.py": PROVIDER["passes"]}, "base")]
    for number in range(1, 7):
        files = {"core.py": PROVIDER["fails"]} if number == 4 else {f"notes/{number}.txt": f"{number}\n"}
        shas.append(commit(repo, files, f"change {number}"))
    outcome = api.bisect(api.RunOptions(root=repo), shas[0], shas[-1])
    assert outcome.first_bad == shas[4]
    assert outcome.failing == ("goldens/greet.yaml::ada [python:app:answer]",)
