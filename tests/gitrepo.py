"""Real temporary git repositories for the tests of revisions, changes and diffs."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent",
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=GIT_ENV, check=True)
    return done.stdout


def write(root: Path, files: Mapping[str, str | None]) -> None:
    """Write (or with None, delete) files under root."""
    for name, text in files.items():
        path = root / name
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def commit(repo: Path, files: Mapping[str, str | None], message: str) -> str:
    """Write files, stage everything, commit; returns the commit's sha."""
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return path


def snapshot(repo: Path) -> tuple[str, str, str, str]:
    """What a command must never change: status, staged diff, stash list and the worktree list."""
    return (git(repo, "status", "--porcelain", "--untracked-files=all"), git(repo, "diff", "--cached"),
            git(repo, "stash", "list"), git(repo, "worktree", "list", "--porcelain"))
