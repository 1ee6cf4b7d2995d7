"""Who spends: the branch and the actor written with every ledger row, so a team store's `cost` can say which
branch and which CI actor (or laptop user) spent what."""

from __future__ import annotations

import os
from collections.abc import Mapping

from promptci.types import GitInfo

# GitHub Actions, GitLab CI, then any CI that says it; on a laptop the checkout's branch and the user
BRANCH_VARIABLES = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME")
ACTOR_VARIABLES = ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_REQUESTEDFOR", "USER", "LOGNAME", "USERNAME")


def first_set(names: tuple[str, ...], environ: Mapping[str, str]) -> str | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value[:200]
    return None


def spending_branch(git: GitInfo, environ: Mapping[str, str] | None = None) -> str | None:
    """A PR's head branch in CI (the checkout there is a detached merge commit), else the checkout's branch."""
    return first_set(BRANCH_VARIABLES, os.environ if environ is None else environ) or git.branch


def spending_actor(environ: Mapping[str, str] | None = None) -> str | None:
    return first_set(ACTOR_VARIABLES, os.environ if environ is None else environ)
