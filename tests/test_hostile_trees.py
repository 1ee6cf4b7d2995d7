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


# --- a golden reached twice ------------------------------------------------------------------------------------

V1_GOLDEN = "cases:\n  - id: one\n    input: {name: Ada}\n    expected: Hello Ada!\n"


def linked_project(project) -> Path:
    root = project({"promptci.yaml": "models: [echo]\n", "prompts/v1.txt": "Hello {{ name }}!\n",
                    "prompts/v2.txt": "Broken {{ name }}!\n", "goldens/v1.yaml": V1_GOLDEN})
    os.symlink("v1.yaml", root / "goldens/v2.yaml")
    return root


def test_a_symlinked_golden_belongs_to_the_prompt_its_own_path_names(cli, project) -> None:
    """goldens/v2.yaml -> v1.yaml: v1's cases run against prompt v2 (which is broken), once each; they used to run
    twice against v1 and pass."""
    import json

    root = linked_project(project)
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 1, result.output
    outcomes = sorted((r["prompt"], r["case_id"], r["file"], r["status"]) for r in json.loads(result.stdout)["results"])
    assert outcomes == [("v1", "one", "goldens/v1.yaml", "passed"), ("v2", "one", "goldens/v2.yaml", "failed")]


def test_the_same_file_reached_twice_is_one_entry(cli, project) -> None:
    """A golden that names its prompt, reached through a link and by its own path, is one set of cases; so is a
    golden named on the command line and through its folder."""
    import json

    root = project({"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello {{ name }}!\n",
                    "goldens/topic/greet.yaml": "prompt: greet\n" + GOLDEN.format(id="ada")})
    os.symlink("topic", root / "goldens/alias")
    os.symlink("topic/greet.yaml", root / "goldens/again.yaml")
    for args in ((), ("goldens/topic/greet.yaml", "goldens/topic", "goldens")):
        result = cli("run", "--root", root, "--format", "json", *[str(root / a) for a in args])
        assert result.exit_code == 0, result.output
        results = json.loads(result.stdout)["results"]
        assert [(r["prompt"], r["case_id"]) for r in results] == [("greet", "ada")]


def test_diff_does_not_take_a_linked_golden_for_repeated_samples(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "linked")
    commit(root, {".gitignore": ".promptci/\n", "promptci.yaml": "models: [echo]\n",
                  "prompts/v1.txt": "Hello {{ name }}!\n", "prompts/v2.txt": "Hello {{ name }}!\n",
                  "goldens/v1.yaml": V1_GOLDEN}, "base")
    os.symlink("v1.yaml", root / "goldens/v2.yaml")
    commit(root, {"prompts/v2.txt": "Broken {{ name }}!\n"}, "v2 linked to v1's cases, v2 broken")
    outcome = diff(root, "HEAD~1", "HEAD")
    assert [(c.prompt, c.case_id) for c in outcome.comparison.with_transition("new_failing")] == [("v2", "one")]
    assert [(r.prompt, r.status) for r in outcome.after.results if r.prompt == "v2"] == [("v2", "failed")]
    assert all(len(run.results) == len({(r.prompt, r.case_id) for r in run.results})
               for run in (outcome.before, outcome.after))


def test_a_revision_includes_its_submodules_at_their_recorded_commits(tmp_path: Path) -> None:
    """A template included from a git submodule is read at the commit each revision records (`git archive`
    left the folder empty: the include failed)."""
    shared = new_repo(tmp_path / "shared")
    commit(shared, {"header.txt": "Answer briefly."}, "header")
    root = new_repo(tmp_path / "sub")
    commit(root, {".gitignore": ".promptci/\n", "promptci.yaml": "models: [echo]\n",
                  "prompts/ask.txt": "{% include 'shared/header.txt' %}\nQ: {{ q }}\n",
                  "goldens/ask.yaml": "comparators: [{type: contains, value: briefly}]\n"
                                      "cases:\n  - id: a\n    input: {q: one}\n"}, "base")
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(shared), "prompts/shared")
    git(root, "commit", "-q", "-m", "shared templates")
    commit(root / "prompts/shared", {"header.txt": "Answer at length."}, "longer")
    git(root, "add", "prompts/shared")
    git(root, "commit", "-q", "-m", "bump shared")
    before = snapshot(root)
    outcome = diff(root, "HEAD~1", "HEAD")
    assert [(c.case_id, c.transition) for c in outcome.comparison.changes] == [("a", "regressed")]
    assert snapshot(root) == before


def test_accept_does_not_write_through_a_linked_golden(cli, project) -> None:
    """Accepting prompt v2's outputs into goldens/v2.yaml -> v1.yaml would rewrite v1's cases: refused with a
    note, v1.yaml unchanged."""
    root = linked_project(project)
    assert cli("run", "--root", root).exit_code == 1
    result = cli("accept", "--root", root)
    assert (root / "goldens/v1.yaml").read_text() == V1_GOLDEN
    assert "goldens/v2.yaml" in result.output and "link" in result.output
