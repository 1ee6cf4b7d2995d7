"""The git revision and dirtiness of the project, recorded with every run."""

from __future__ import annotations

import subprocess
from pathlib import Path

from promptci.types import GitInfo


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def current_git(root: Path) -> GitInfo:
    """Commit, dirty flag and branch of the checkout holding root; empty GitInfo outside git."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return GitInfo()
    status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".")
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    return GitInfo(commit=commit, dirty=bool(status), branch=branch if branch != "HEAD" else None)
