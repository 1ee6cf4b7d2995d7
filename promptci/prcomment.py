"""One pull-request comment per PR, updated in place: `python -m promptci.prcomment --body-file report.md`.

Used by action.yml. Finds the comment holding the marker (an HTML comment GitHub does not show) and
edits it, or creates one. Standard library only; the token comes from $GITHUB_TOKEN and is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MARKER = "<!-- promptci-report -->"
DEFAULT_AUTHOR = "github-actions[bot]"  # who posts with the workflow's GITHUB_TOKEN
MAX_COMMENT_CHARS = 65_536


class CommentError(Exception):
    """A failure talking to the comments API (the message never holds the token)."""


@dataclass(frozen=True)
class Target:
    api_url: str  # https://api.github.com, or GHES's /api/v3
    repository: str  # owner/name
    number: int  # the pull request (an issue, for the comments API)
    token: str


def pull_request_number(environ: Mapping[str, str]) -> int | None:
    """The PR number from the event payload the runner writes ($GITHUB_EVENT_PATH)."""
    event_path = environ.get("GITHUB_EVENT_PATH")
    if not event_path or not Path(event_path).is_file():
        return None
    event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    number = (event.get("pull_request") or {}).get("number") or event.get("number")
    return int(number) if isinstance(number, int) else None


def target_from_env(environ: Mapping[str, str], number: int | None = None) -> Target:
    token = environ.get("GITHUB_TOKEN", "")
    repository = environ.get("GITHUB_REPOSITORY", "")
    number = number or pull_request_number(environ)
    missing = [name for name, value in (("GITHUB_TOKEN", token), ("GITHUB_REPOSITORY", repository),
                                        ("a pull request number (--pr or a pull_request event)", number)) if not value]
    if missing:
        raise CommentError(f"cannot comment: missing {', '.join(missing)}")
    assert number is not None
    return Target(environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"), repository, number, token)


def with_marker(body: str, marker: str) -> str:
    """The comment text: marker first, cut to GitHub's limit."""
    text = f"{marker}\n{body}"
    if len(text) <= MAX_COMMENT_CHARS:
        return text
    note = "\n\n… (truncated to fit a comment)\n"
    return text[: MAX_COMMENT_CHARS - len(note)] + note


def _request(target: Target, method: str, path: str, payload: Mapping[str, Any] | None = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(f"{target.api_url}{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {target.token}", "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "promptci-prcomment",
        **({"Content-Type": "application/json"} if data is not None else {}),
    })
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise CommentError(f"{method} {path}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise CommentError(f"{method} {path}: {exc.reason}") from None


def find_comment(target: Target, marker: str, author: str = DEFAULT_AUTHOR) -> int | None:
    """The id of the first comment on the PR holding the marker, written by `author` ("" for anyone), across
    every page: someone else's comment quoting the marker is left alone."""
    page = 1
    while True:
        comments = _request(target, "GET", f"/repos/{target.repository}/issues/{target.number}/comments"
                                           f"?per_page=100&page={page}")
        if not comments:
            return None
        for comment in comments:
            login = (comment.get("user") or {}).get("login")
            if marker in (comment.get("body") or "") and (not author or login == author):
                return int(comment["id"])
        if len(comments) < 100:
            return None
        page += 1


def upsert_comment(target: Target, body: str, marker: str = DEFAULT_MARKER,
                   author: str = DEFAULT_AUTHOR) -> tuple[str, int]:
    """("updated" | "created", comment id)."""
    text = with_marker(body, marker)
    existing = find_comment(target, marker, author)
    if existing is not None:
        _request(target, "PATCH", f"/repos/{target.repository}/issues/comments/{existing}", {"body": text})
        return "updated", existing
    created = _request(target, "POST", f"/repos/{target.repository}/issues/{target.number}/comments", {"body": text})
    return "created", int(created["id"])


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m promptci.prcomment", description=__doc__.splitlines()[0])
    parser.add_argument("--body-file", type=Path, required=True, help="Markdown to post (promptci -o markdown=FILE)")
    parser.add_argument("--marker", default=DEFAULT_MARKER, help="Text that identifies promptci's comment")
    parser.add_argument("--author", default=DEFAULT_AUTHOR,
                        help="Only update a comment by this login ('' for anyone; a PAT posts as its user)")
    parser.add_argument("--pr", type=int, default=None, help="Pull request number (default: from the event)")
    parser.add_argument("--strict", action="store_true", help="Exit 1 when the comment cannot be written")
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        if not args.body_file.is_file():
            raise CommentError(f"no report at {args.body_file} (did the promptci step write -o markdown=...?)")
        body = args.body_file.read_text(encoding="utf-8")
        action, comment_id = upsert_comment(target_from_env(env, args.pr), body, args.marker, args.author)
    except CommentError as exc:
        # A fork's PR gets a read-only token: say so, without failing the check unless asked.
        print(f"::warning title=promptci comment::{str(exc).replace('%', '%25')}", file=sys.stderr)
        return 1 if args.strict else 0
    print(f"promptci: {action} PR comment {comment_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
