"""gitrev: revisions read from real temporary repositories without touching the user's checkout."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitrepo import commit, git, new_repo, snapshot, write

from promptci import gitrev
from promptci.errors import ExitCode, PromptCIError

V1 = {"app/promptci.yaml": "models: [echo]\n", "app/prompts/greet.txt": "Hello {{ name }}\n",
      "app/goldens/greet.yaml": "cases:\n  - id: a\n    input: {name: Ada}\n    expected: Hello Ada\n",
      "README.md": "top\n"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = new_repo(tmp_path / "repo")
    commit(root, V1, "v1")
    commit(root, {"app/prompts/greet.txt": "Hi {{ name }}\n"}, "v2")
    return root


def dirty(repo: Path) -> None:
    """A user mid-work: a staged edit, an unstaged edit, an untracked file and a stash entry."""
    write(repo, {"app/prompts/greet.txt": "Hey {{ name }}\n"})
    git(repo, "stash", "-q")
    write(repo, {"app/prompts/greet.txt": "Yo {{ name }}\n", "app/prompts/new.txt": "new\n"})
    git(repo, "add", "app/prompts/greet.txt")
    write(repo, {"app/goldens/greet.yaml": "cases: []\n"})


def test_materialise_reads_the_old_revision_and_leaves_the_checkout_alone(repo: Path) -> None:
    dirty(repo)
    before = snapshot(repo)
    with gitrev.materialised(repo / "app", "HEAD~1") as old:
        assert (old / "prompts/greet.txt").read_text() == "Hello {{ name }}\n"
        assert (old / "promptci.yaml").exists()
        assert not (old / "prompts/new.txt").exists()
        assert not (old / "README.md").exists()  # only the project folder is extracted
        kept = old
    assert not kept.exists()
    assert snapshot(repo) == before
    assert (repo / "app/prompts/greet.txt").read_text() == "Yo {{ name }}\n"


def test_working_tree_side_is_the_folder_itself(repo: Path) -> None:
    dirty(repo)
    with gitrev.materialised(repo / "app", gitrev.WORKING_TREE) as here:
        assert here == repo / "app"
        assert (here / "prompts/greet.txt").read_text() == "Yo {{ name }}\n"


def test_project_at_repository_top(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "top")
    commit(root, {"prompts/p.txt": "one\n", "goldens/p.yaml": "cases: []\n"}, "one")
    commit(root, {"prompts/p.txt": "two\n"}, "two")
    with gitrev.materialised(root, "main~1") as old:
        assert (old / "prompts/p.txt").read_text() == "one\n"
    assert gitrev.project_prefix(root) == ""


def test_not_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(PromptCIError, match="not inside a git repository") as caught:
        gitrev.resolve(tmp_path / "plain", "HEAD")
    assert caught.value.exit_code == ExitCode.USAGE


def test_unknown_revision(repo: Path) -> None:
    with pytest.raises(PromptCIError, match=r"unknown revision 'nope'.*git log") as caught:
        gitrev.resolve(repo / "app", "nope")
    assert caught.value.exit_code == ExitCode.USAGE


def test_option_like_revision_is_refused(repo: Path) -> None:
    with pytest.raises(PromptCIError, match="not a revision"):
        gitrev.resolve(repo / "app", "--output=/tmp/x")


def test_shallow_clone_says_fetch_depth(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    with pytest.raises(PromptCIError, match=r"shallow clone.*fetch-depth: 0"):
        gitrev.resolve(clone / "app", "HEAD~1")


def test_no_prompts_at_revision(tmp_path: Path) -> None:
    root = new_repo(tmp_path / "late")
    commit(root, {"README.md": "x\n"}, "before the project")
    commit(root, {"prompts/p.txt": "x\n", "goldens/p.yaml": "cases: []\n"}, "project")
    with pytest.raises(PromptCIError, match="no prompts/ folder at revision 'HEAD~1'"), \
            gitrev.materialised(root, "HEAD~1"):
        pass


def test_renames_between_revisions_and_against_the_working_tree(repo: Path) -> None:
    commit(repo, {"app/goldens/greet.yaml": None,
                  "app/goldens/hello.yaml": V1["app/goldens/greet.yaml"]}, "rename golden")
    found = gitrev.renames(repo / "app", "HEAD~1", "HEAD")
    assert found == (gitrev.Rename(old="goldens/greet.yaml", new="goldens/hello.yaml"),)
    git(repo, "mv", "app/prompts/greet.txt", "app/prompts/welcome.txt")
    assert gitrev.Rename("prompts/greet.txt", "prompts/welcome.txt") in gitrev.renames(repo / "app", "HEAD")
    assert gitrev.renames(repo / "app", "HEAD", "HEAD") == ()


def test_changed_files_include_untracked_and_deleted(repo: Path) -> None:
    write(repo, {"app/prompts/extra.txt": "x\n", "README.md": "outside the project\n"})
    (repo / "app/goldens/greet.yaml").unlink()
    changed = gitrev.changed_files(repo / "app", "HEAD~1")
    assert changed == {"prompts/greet.txt", "prompts/extra.txt", "goldens/greet.yaml"}


def test_read_at(repo: Path) -> None:
    revision = gitrev.resolve(repo / "app", "HEAD~1")
    assert gitrev.read_at(repo / "app", revision, "prompts/greet.txt") == "Hello {{ name }}\n"
    assert gitrev.read_at(repo / "app", revision, "prompts/missing.txt") is None
