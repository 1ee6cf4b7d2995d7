"""Hostile world, round two (issue 24), trees: a revision is its real tree (not what `git archive` exports), a
symlink at a revision that leads out of the project is a clear exit 2, and a golden reached twice is one entry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gitrepo import commit, git, new_repo, snapshot, write

from promptci import api, gitrev
from promptci.errors import ExitCode, PromptCIError

GOLDEN = "cases:\n  - id: {id}\n    input: {{name: Ada}}\n    expected: Hello Ada!\n"
FILES = {
    ".gitignore": ".promptci/\n",
    "promptci.yaml": "models: [echo]\n",
    "prompts/greet.txt": "Hello {{ name }}!\n",
    "goldens/greet.yaml": GOLDEN.format(id="ada"),
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = new_repo(tmp_path / "repo")
    commit(root, FILES, "base")
    return root


def diff(root: Path, before: str, after: str | None = None) -> api.DiffOutcome:
    return api.diff(api.DiffOptions(run=api.RunOptions(root=root), before=before, after=after))


def test_an_export_ignored_golden_is_still_part_of_the_revision(repo: Path) -> None:
    """`export-ignore` leaves a file out of `git archive`, not out of the revision: its cases regress at B."""
    commit(repo, {".gitattributes": "goldens/greet.yaml export-ignore\n"}, "attributes")
    commit(repo, {"prompts/greet.txt": "Hi {{ name }}!\n"}, "breaks ada")
    outcome = diff(repo, "HEAD~1", "HEAD")
    assert {c.case_id for c in outcome.comparison.with_transition("regressed")} == {"ada"}
    assert outcome.exit_code == ExitCode.REGRESSION


def test_export_subst_is_not_applied(repo: Path) -> None:
    commit(repo, {".gitattributes": "prompts/* export-subst\n", "prompts/greet.txt": "Hello $Format:%H$ {{ name }}!\n"},
           "a prompt that holds a $Format$ placeholder")
    before = snapshot(repo)
    with gitrev.materialised(repo, "HEAD") as tree:
        assert (tree / "prompts/greet.txt").read_text() == "Hello $Format:%H$ {{ name }}!\n"
        assert (tree / ".gitattributes").exists()
    assert snapshot(repo) == before


def test_materialising_leaves_index_stash_and_worktrees_alone(repo: Path) -> None:
    write(repo, {"prompts/greet.txt": "Hey {{ name }}!\n"})
    git(repo, "stash", "-q")
    write(repo, {"prompts/greet.txt": "Yo {{ name }}!\n", "prompts/new.txt": "new\n"})
    git(repo, "add", "prompts/greet.txt")
    before = snapshot(repo)
    index = (repo / ".git/index").read_bytes()
    with gitrev.materialised(repo, "HEAD") as tree:
        assert (tree / "prompts/greet.txt").read_text() == "Hello {{ name }}!\n"
        assert not (tree / "prompts/new.txt").exists()
    assert snapshot(repo) == before and (repo / ".git/index").read_bytes() == index


def test_a_relative_symlink_inside_the_project_is_kept(repo: Path) -> None:
    os.symlink("greet.yaml", repo / "goldens/again.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "link")
    with gitrev.materialised(repo, "HEAD") as tree:
        link = tree / "goldens/again.yaml"
        assert link.is_symlink() and os.readlink(link) == "greet.yaml"


@pytest.mark.parametrize("target", ["/etc/hostname", "../../outside.yaml", "../../../../../../etc/hostname"])
def test_a_symlink_out_of_the_project_at_a_revision_is_refused(repo: Path, target: str) -> None:
    os.symlink(target, repo / "goldens/linked.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a link out")
    with pytest.raises(PromptCIError) as raised, gitrev.materialised(repo, "HEAD"):
        pass
    assert raised.value.exit_code == ExitCode.USAGE
    assert "goldens/linked.yaml" in str(raised.value) and target in str(raised.value)


def test_diff_and_bisect_refuse_a_link_out_with_exit_2(repo: Path, cli) -> None:
    os.symlink("/etc/hostname", repo / "prompts/evil.txt")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a link out")
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo)
    assert result.exit_code == 2, result.output
    assert "prompts/evil.txt" in result.stderr and "Traceback" not in result.output
    bisected = cli("bisect", "HEAD~1", "HEAD", "--root", repo)
    assert bisected.exit_code == 2, bisected.output
    assert "prompts/evil.txt" in bisected.stderr
