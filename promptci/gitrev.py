"""A project as it stood at a git revision, checked out from the revision's real tree through a temporary index
into a temp folder (not `git archive`, whose export-ignore and export-subst would change the files), never
touching the user's working tree, index, stash or worktree list; and what changed or moved between revisions."""

from __future__ import annotations

import os
import posixpath
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from promptci.errors import PromptCIError

WORKING_TREE = None  # a side given as None is the project folder itself, uncommitted edits included


@dataclass(frozen=True)
class Revision:
    """A revision resolved in the repository that holds a project."""

    name: str  # as the user wrote it: "main", "HEAD~2", a sha
    commit: str  # full sha


@dataclass(frozen=True)
class Rename:
    old: str  # paths relative to the project folder
    new: str


def _git(cwd: Path, *args: str, binary: bool = False, index: Path | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess:
    """git in cwd; `index`: a temporary index file used instead of the repository's own."""
    env = None if index is None else {**os.environ, "GIT_INDEX_FILE": str(index)}
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=not binary, timeout=120, env=env,
                              input=stdin)
    except FileNotFoundError as exc:
        raise PromptCIError("git is not installed or not on PATH; install git to compare revisions") from exc


def _git_out(cwd: Path, *args: str, index: Path | None = None, stdin: str | None = None) -> str:
    done = _git(cwd, *args, index=index, stdin=stdin)
    if done.returncode != 0:
        raise PromptCIError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return str(done.stdout)


def repository_root(project_dir: Path) -> Path:
    """The top folder of the git repository holding project_dir."""
    done = _git(project_dir, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise PromptCIError(f"{project_dir} is not inside a git repository: `diff`, `--changed-since` and "
                            "`bisect` compare git revisions (run `git init` and commit, or use `promptci run`)")
    return Path(done.stdout.strip())


def project_prefix(project_dir: Path) -> str:
    """The project's folder inside its repository, "" at the top, else "sub/dir/"."""
    repository_root(project_dir)
    return _git_out(project_dir, "rev-parse", "--show-prefix").strip()


def resolve(project_dir: Path, name: str) -> Revision:
    """The commit a revision name points to; a clear error when git cannot find it."""
    if not name or name.startswith("-"):
        raise PromptCIError(f"{name!r} is not a revision: give a branch, tag or commit such as `main` or `HEAD~1`")
    repository_root(project_dir)
    done = _git(project_dir, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}")
    if done.returncode == 0:
        return Revision(name=name, commit=done.stdout.strip())
    if _git_out(project_dir, "rev-parse", "--is-shallow-repository").strip() == "true":
        raise PromptCIError(f"revision {name!r} is not in this shallow clone: fetch the full history (in GitHub "
                            "Actions, actions/checkout with `fetch-depth: 0`; locally `git fetch --unshallow`)")
    raise PromptCIError(f"unknown revision {name!r}: git cannot find it (check the name with `git log --oneline`, "
                        "or `git fetch` a branch that lives only on the remote)")


def has_prompts(project_dir: Path, revision: Revision) -> bool:
    listed = _git_out(project_dir, "ls-tree", "--name-only", revision.commit, "--", "prompts/")
    return bool(listed.strip())


SYMLINK_MODE = "120000"
GITLINK_MODE = "160000"  # a submodule: its files are not in this repository's tree


def extract(project_dir: Path, revision: Revision, destination: Path) -> Path:
    """Write the project's files at revision into destination; returns the project folder there.

    The revision's tree is read into a temporary index and checked out from it, as `git checkout` would write
    it (its own .gitattributes, filters and line endings; none of `git archive`'s export-ignore and
    export-subst). No worktree is registered; the user's index, stash and working tree are not touched. A
    symlink leading out of the project is refused (exit 2) before anything is written.
    """
    if not has_prompts(project_dir, revision):
        prefix = project_prefix(project_dir)
        raise PromptCIError(f"no {prefix}prompts/ folder at revision {revision.name!r} ({revision.commit[:12]}): "
                            "the project did not exist there yet; compare with a later revision")
    top, prefix = repository_root(project_dir), project_prefix(project_dir)
    check_out(top, revision.commit, prefix or ".", destination, Link(revision, prefix))
    return destination / prefix if prefix else destination


@dataclass(frozen=True)
class Link:
    """What a symlink is checked against: the revision (for the message) and the project's folder."""

    revision: Revision
    prefix: str


def check_out(repo: Path, commit: str, pathspec: str, destination: Path, link: Link, within: str = "") -> None:
    """Check out `pathspec` of `commit` of the repository at `repo` under destination/within, through a temp
    index. A submodule (`within` is its folder in the top repository) is checked out at the commit the tree
    records when its repository is here and holds that commit; otherwise its folder stays empty."""
    submodules: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="promptci-index-") as scratch:
        index = Path(scratch) / "index"
        _git_out(repo, "read-tree", commit, index=index)
        paths = []
        for entry in filter(None, _git_out(repo, "ls-files", "--stage", "-z", "--", pathspec, index=index).split("\0")):
            meta, path = entry.split("\t", 1)
            mode, blob = meta.split()[:2]
            if mode == SYMLINK_MODE:
                check_link(repo, link, within + path, blob)
            if mode == GITLINK_MODE:
                submodules.append((path, blob))
            else:
                paths.append(path)
        _git_out(repo, "checkout-index", "--force", "--stdin", "-z", f"--prefix={destination / within}{os.sep}",
                 index=index, stdin="\0".join(paths))
    for path, sub_commit in submodules:
        sub = repo / path
        if (sub / ".git").exists() and _git(sub, "cat-file", "-e", f"{sub_commit}^{{commit}}").returncode == 0:
            check_out(sub, sub_commit, ".", destination, link, f"{within}{path}/")


def check_link(repo: Path, link: Link, path: str, blob: str) -> None:
    """A symlink at a revision must stay inside the project, as in the working tree (absolute: refused)."""
    revision = link.revision
    target = bytes(_git(repo, "cat-file", "blob", blob, binary=True).stdout).decode(errors="replace")
    inside = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    project = link.prefix.rstrip("/")
    if posixpath.isabs(target) or "\0" in target or inside.startswith("../") or inside == ".." or (
            project and not (inside == project or inside.startswith(project + "/"))):
        raise PromptCIError(f"{path} at revision {revision.name!r} ({revision.commit[:12]}) is a symlink to "
                            f"{target!r}, outside the project {project or '(the repository)'}: copy the file into the "
                            "project instead of linking to it")


@contextmanager
def materialised(project_dir: Path, name: str | None) -> Iterator[Path]:
    """The project folder as it stood at revision `name`, in a temp folder removed afterwards;
    name None (the working tree) yields project_dir itself."""
    if name is WORKING_TREE:
        yield project_dir
        return
    revision = resolve(project_dir, name)
    with tempfile.TemporaryDirectory(prefix=f"promptci-{revision.commit[:12]}-") as temp:
        yield extract(project_dir, revision, Path(temp))


def _diff_args(project_dir: Path, old: str, new: str | None) -> list[str]:
    sides = [resolve(project_dir, old).commit]
    if new is not WORKING_TREE:
        sides.append(resolve(project_dir, new).commit)
    return sides


def renames(project_dir: Path, old: str, new: str | None = WORKING_TREE) -> tuple[Rename, ...]:
    """Files git's rename detection pairs between two revisions, relative to the project folder.

    Against the working tree only tracked files are seen: a rename to a file never `git add`ed shows
    as removed + new.
    """
    out = _git_out(project_dir, "diff", "-M", "--name-status", "-z", "--relative",
                   *_diff_args(project_dir, old, new), "--", ".")
    fields = out.split("\0")
    found: list[Rename] = []
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i]
        if status.startswith(("R", "C")):
            if status.startswith("R"):
                found.append(Rename(old=fields[i + 1], new=fields[i + 2]))
            i += 3
        else:
            i += 2
    return tuple(found)


def changed_files(project_dir: Path, since: str, until: str | None = WORKING_TREE) -> frozenset[str]:
    """Project files that differ between revision `since` and `until` (default: the working tree, with its
    edits, additions, deletions and untracked files), relative to the project folder."""
    out = _git_out(project_dir, "diff", "--name-only", "-z", "--relative", "--no-renames",
                   *_diff_args(project_dir, since, until), "--", ".")
    untracked = "" if until is not WORKING_TREE else _git_out(
        project_dir, "ls-files", "--others", "--exclude-standard", "-z", "--", ".")
    return frozenset(p for p in (*out.split("\0"), *untracked.split("\0")) if p)


def first_parent_commits(project_dir: Path, good: Revision, bad: Revision) -> tuple[str, ...]:
    """The commits after `good` up to `bad` along bad's first parents, oldest first (bad last)."""
    out = _git_out(project_dir, "rev-list", "--first-parent", "--reverse", f"{good.commit}..{bad.commit}")
    return tuple(out.split())


def commit_subject(project_dir: Path, commit: str) -> str:
    return _git_out(project_dir, "show", "-s", "--format=%s", commit).strip()


def commit_changes(project_dir: Path, commit: str) -> str:
    """`git show --stat` of a commit, then its diff of the project's prompts/ and goldens/."""
    stat = _git_out(project_dir, "show", "--stat", "--format=commit %H%nAuthor: %an%nDate:   %ad%n%n    %s%n",
                    commit, "--", ".")
    patch = _git_out(project_dir, "show", "--format=", "--relative", commit, "--", "prompts/", "goldens/")
    return stat.rstrip("\n") + "\n\n" + patch if patch.strip() else stat


def read_at(project_dir: Path, revision: Revision, path: str) -> str | None:
    """A project file's text at revision; None when it did not exist there."""
    done = _git(project_dir, "show", f"{revision.commit}:./{path}")
    return str(done.stdout) if done.returncode == 0 else None
