"""Hostile world, round two (issue 24), `--changed-since`: every file a case's verdict depends on is a dependency:
a transform's Python file, an llm_judge template (and what it includes), a template from a git submodule."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitrepo import commit, git, new_repo, write

from promptci import api, changes
from promptci.config import load_settings
from promptci.loading.suite import load_suite

BASE = {
    ".gitignore": ".promptci/\n",
    "promptci.yaml": "models: [echo]\n",
    "prompts/ask.txt": "Q: {{ q }}\n",
    "prompts/other.txt": "Say {{ word }}\n",
    "goldens/other.yaml": "comparators: [{type: contains, value: Say}]\ncases:\n  - id: x\n    input: {word: hi}\n",
}


def ran(outcome: api.RunOutcome) -> set[str]:
    return {r.case_id for r in outcome.run.results}


def test_a_transforms_python_file_is_a_dependency(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "repo")
    commit(root, {**BASE, "norm.py": "def fn(text):\n    return text.strip()\n",
                  "goldens/ask.yaml": "transform: {python: norm.py:fn}\ncomparators: [{type: contains, value: 'Q:'}]\n"
                                      "cases:\n  - id: a\n    input: {q: one}\n"}, "base")
    write(root, {"norm.py": "def fn(text):\n    return text.lower()\n"})
    outcome = api.run(api.RunOptions(root=root, changed_since="HEAD"))
    assert ran(outcome) == {"a"}
    assert outcome.selection is not None and "norm.py" in "; ".join(outcome.selection.reasons["ask"])


def judge_project(tmp_path: Path) -> Path:
    root = new_repo(tmp_path / "repo")
    commit(root, {**BASE, "prompts/judge/strict.txt": "{% include 'judge/_tone.txt' %}\nGrade {{ output }}\n",
                  "prompts/judge/_tone.txt": "Be strict.",
                  "goldens/ask.yaml": "comparators:\n  - {type: llm_judge, rubric: on topic, "
                                      "model: 'openai:gpt-4o-mini', template: judge/strict}\n"
                                      "cases:\n  - id: a\n    input: {q: one}\n"}, "base")
    return root


def selected(root: Path) -> set[str]:
    suite = load_suite(load_settings(root))
    selection = changes.changed_since(root, "HEAD", suite, ["echo"])
    return {key.rpartition("::")[2] for key in selection.case_keys}


@pytest.mark.parametrize("edited", ["prompts/judge/strict.txt", "prompts/judge/_tone.txt"])
def test_an_llm_judge_template_and_what_it_includes_are_dependencies(tmp_path: Path, edited: str) -> None:
    root = judge_project(tmp_path)
    assert selected(root) == set()
    write(root, {edited: (root / edited).read_text() + " Very."})
    assert selected(root) == {"a"}


def test_a_template_from_a_git_submodule_is_a_dependency(tmp_path: Path) -> None:
    shared = new_repo(tmp_path / "shared")
    commit(shared, {"header.txt": "Answer briefly."}, "header")
    root = new_repo(tmp_path / "repo")
    commit(root, {**BASE, "prompts/ask.txt": "{% include 'shared/header.txt' %}\nQ: {{ q }}\n",
                  "goldens/ask.yaml": "comparators: [{type: contains, value: 'Q:'}]\n"
                                      "cases:\n  - id: a\n    input: {q: one}\n"}, "base")
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(shared), "prompts/shared")
    git(root, "commit", "-q", "-m", "shared templates")
    commit(root / "prompts/shared", {"header.txt": "Answer at length."}, "longer")
    git(root, "add", "prompts/shared")
    git(root, "commit", "-q", "-m", "bump shared")
    outcome = api.run(api.RunOptions(root=root, changed_since="HEAD~1"))
    assert ran(outcome) == {"a"}
    write(root / "prompts/shared", {"header.txt": "Answer in French."})  # edited inside the submodule, uncommitted
    assert ran(api.run(api.RunOptions(root=root, changed_since="HEAD"))) == {"a"}


def test_a_linked_goldens_cases_depend_on_the_file_it_links_to(tmp_path: Path) -> None:
    import os

    root = new_repo(tmp_path / "repo")
    commit(root, {**BASE, "prompts/ask2.txt": "Q2: {{ q }}\n",
                  "goldens/ask.yaml": "comparators: [{type: contains, value: 'Q'}]\n"
                                      "cases:\n  - id: a\n    input: {q: one}\n"}, "base")
    os.symlink("ask.yaml", root / "goldens/ask2.yaml")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "ask2 runs ask's cases")
    write(root, {"goldens/ask.yaml": (root / "goldens/ask.yaml").read_text().replace("q: one", "q: two")})
    outcome = api.run(api.RunOptions(root=root, changed_since="HEAD"))
    assert sorted((r.prompt, r.case_id) for r in outcome.run.results) == [("ask", "a"), ("ask2", "a")]
