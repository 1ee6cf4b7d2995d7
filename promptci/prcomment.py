"""One pull-request comment per PR, updated in place: `python -m promptci.prcomment --body-file report.md`.

Used by action.yml. Finds the comment holding the marker (an HTML comment GitHub does not show) and
edits it, or creates one. Standard library only; the token comes from $GITHUB_TOKEN and is never printed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MARKER = "<!-- promptci-report -->"
DEFAULT_AUTHOR = "github-actions[bot]"  # who posts with the workflow's GITHUB_TOKEN
MAX_COMMENT_CHARS = 65_536
MAX_PAGES = 50  # of 100 comments: a PR with more is not one promptci's comment is worth reading
MAX_REDIRECTS = 3
MAX_RESPONSE_BYTES = 8_000_000
REQUEST_SECONDS = 30.0  # one call
TOTAL_SECONDS = 120.0  # every call of one upsert


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
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommentError(f"cannot read the event payload {event_path}: {printable_reason(exc)}") from None
    if not isinstance(event, dict):
        return None
    pull_request = event.get("pull_request")
    number = (pull_request.get("number") if isinstance(pull_request, dict) else None) or event.get("number")
    return number if isinstance(number, int) and not isinstance(number, bool) and number > 0 else None


def target_from_env(environ: Mapping[str, str], number: int | None = None) -> Target:
    token = environ.get("GITHUB_TOKEN", "")
    repository = environ.get("GITHUB_REPOSITORY", "")
    number = number or pull_request_number(environ)
    missing = [name for name, value in (("GITHUB_TOKEN", token), ("GITHUB_REPOSITORY", repository),
                                        ("a pull request number (--pr or a pull_request event)", number)) if not value]
    if missing:
        raise CommentError(f"cannot comment: missing {', '.join(missing)}")
    assert number is not None
    api_url = environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    if origin(api_url)[0] not in ("http", "https") or not origin(api_url)[1]:
        raise CommentError(f"cannot comment: GITHUB_API_URL {api_url[:100]!r} is not an http(s) URL")
    return Target(api_url, repository, number, token)


def with_marker(body: str, marker: str) -> str:
    """The comment text: marker first, cut to GitHub's limit."""
    text = f"{marker}\n{body}"
    if len(text) <= MAX_COMMENT_CHARS:
        return text
    note = "\n\n… (truncated to fit a comment)\n"
    return text[: MAX_COMMENT_CHARS - len(note)] + note


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect to any host with the Authorization header still on: never follow one;
    _request follows those that stay on the API's origin itself."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirects)


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = -1
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


@dataclass
class Deadline:
    """The time left for every call of one upsert together (a clock injectable for tests)."""

    seconds: float = TOTAL_SECONDS
    clock: Callable[[], float] = time.monotonic
    ends: float = field(init=False)

    def __post_init__(self) -> None:
        self.ends = self.clock() + self.seconds

    def left(self, what: str) -> float:
        remaining = self.ends - self.clock()
        if remaining <= 0:
            raise CommentError(f"{what}: gave up after {self.seconds:g} s without finishing (a slow API?)")
        return min(remaining, REQUEST_SECONDS)


@dataclass(frozen=True)
class Reply:
    data: Any
    next_url: str | None  # the Link header's rel="next"


def _request(target: Target, method: str, url_or_path: str, payload: Mapping[str, Any] | None = None,
             deadline: Deadline | None = None) -> Reply:
    """One API call. Same-origin redirects are followed (a few); a redirect elsewhere is refused, so the
    token never leaves the API's origin. Every failure is a CommentError of one line."""
    deadline = deadline or Deadline()
    url = url_or_path if url_or_path.startswith(("http://", "https://")) else f"{target.api_url}{url_or_path}"
    what = f"{method} {urllib.parse.urlsplit(url).path}"
    data = json.dumps(payload).encode() if payload is not None else None
    for _ in range(MAX_REDIRECTS + 1):
        if origin(url) != origin(target.api_url):
            raise CommentError(f"{what}: refusing to send the token to another origin "
                               f"({origin(url)[0]}://{origin(url)[1]}); check GITHUB_API_URL")
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {target.token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "promptci-prcomment",
            **({"Content-Type": "application/json"} if data is not None else {}),
        })
        try:
            with OPENER.open(request, timeout=deadline.left(what)) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
                return Reply(parse_json(body, response.headers.get("Content-Type", ""), what),
                             next_link(response.headers.get("Link", "")))
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location") if exc.headers else None
            if exc.code in (301, 302, 303, 307, 308) and location:
                url = urllib.parse.urljoin(url, location)
                if exc.code == 303:
                    method, data = "GET", None
                continue
            raise CommentError(f"{what}: HTTP {exc.code} {printable_reason(exc.reason)}") from None
        except urllib.error.URLError as exc:
            raise CommentError(f"{what}: {printable_reason(exc.reason)}") from None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise CommentError(f"{what}: {type(exc).__name__}: {printable_reason(exc)}") from None
    raise CommentError(f"{what}: more than {MAX_REDIRECTS} redirects")


def printable_reason(reason: object) -> str:
    return " ".join(str(reason).split())[:200] or "no reason given"


def parse_json(body: bytes, content_type: str, what: str) -> Any:
    if len(body) > MAX_RESPONSE_BYTES:
        raise CommentError(f"{what}: the API answered more than {MAX_RESPONSE_BYTES // 1_000_000} MB")
    try:
        return json.loads(body or b"null")
    except (ValueError, RecursionError):
        kind = content_type.split(";")[0].strip() or "no content type"
        raise CommentError(f"{what}: the API did not answer JSON ({kind}, {len(body)} bytes)") from None


def next_link(header: str) -> str | None:
    """The rel="next" URL of a Link header (RFC 8288), as GitHub paginates."""
    for part in header.split(","):
        url, _, params = part.partition(";")
        if re.search(r'rel="?next"?', params) and url.strip().startswith("<") and url.strip().endswith(">"):
            return url.strip()[1:-1]
    return None


def find_comment(target: Target, marker: str, author: str = DEFAULT_AUTHOR,
                 deadline: Deadline | None = None) -> int | None:
    """The id of the first comment on the PR holding the marker, written by `author` ("" for anyone), across
    every page (followed by the Link header, at most MAX_PAGES): someone else's comment quoting the marker is
    left alone."""
    deadline = deadline or Deadline()
    url: str | None = f"/repos/{target.repository}/issues/{target.number}/comments?per_page=100"
    for _ in range(MAX_PAGES):
        if url is None:
            return None
        reply = _request(target, "GET", url, deadline=deadline)
        if not isinstance(reply.data, list):
            raise CommentError(f"GET comments: expected a list of comments, the API answered {json_kind(reply.data)}")
        for comment in reply.data:
            if not isinstance(comment, dict):
                continue
            user = comment.get("user")
            login = user.get("login") if isinstance(user, dict) else None
            body = comment.get("body")
            if isinstance(body, str) and marker in body and (not author or login == author):
                return comment_id(comment, "GET comments")
        url = reply.next_url
    raise CommentError(f"GET comments: more than {MAX_PAGES} pages of comments; not reading further")


def json_kind(value: Any) -> str:
    return "null" if value is None else {dict: "an object", str: "a string", bool: "a boolean"}.get(
        type(value), "a number")


def comment_id(answer: Any, what: str) -> int:
    found = answer.get("id") if isinstance(answer, dict) else None
    if isinstance(found, bool) or not isinstance(found, int) or found <= 0:
        raise CommentError(f"{what}: the API's answer has no comment id")
    return found


def upsert_comment(target: Target, body: str, marker: str = DEFAULT_MARKER,
                   author: str = DEFAULT_AUTHOR, seconds: float = TOTAL_SECONDS) -> tuple[str, int]:
    """("updated" | "created", comment id)."""
    text = with_marker(body, marker)
    deadline = Deadline(seconds)
    existing = find_comment(target, marker, author, deadline)
    if existing is not None:
        _request(target, "PATCH", f"/repos/{target.repository}/issues/comments/{existing}", {"body": text}, deadline)
        return "updated", existing
    created = _request(target, "POST", f"/repos/{target.repository}/issues/{target.number}/comments",
                       {"body": text}, deadline)
    return "created", comment_id(created.data, "POST comment")


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m promptci.prcomment", description=__doc__.splitlines()[0])
    parser.add_argument("--body-file", type=Path, required=True, help="Markdown to post (promptci -o markdown=FILE)")
    parser.add_argument("--marker", default=DEFAULT_MARKER, help="Text that identifies promptci's comment")
    parser.add_argument("--author", default=DEFAULT_AUTHOR,
                        help="Only update a comment by this login ('' for anyone; a PAT posts as its user)")
    parser.add_argument("--pr", type=int, default=None, help="Pull request number (default: from the event)")
    parser.add_argument("--strict", action="store_true", help="Exit 1 when the comment cannot be written")
    parser.add_argument("--timeout", type=float, default=TOTAL_SECONDS, metavar="SECONDS",
                        help="Give up after this long for every API call together")
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        if not args.body_file.is_file():
            raise CommentError(f"no report at {args.body_file} (did the promptci step write -o markdown=...?)")
        try:
            body = args.body_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommentError(f"cannot read {args.body_file}: {printable_reason(exc)}") from None
        action, posted = upsert_comment(target_from_env(env, args.pr), body, args.marker, args.author, args.timeout)
    except CommentError as exc:
        # A fork's PR gets a read-only token: say so, without failing the check unless asked.
        print(f"::warning title=promptci comment::{workflow_escape(str(exc))}", file=sys.stderr)
        return 1 if args.strict else 0
    print(f"promptci: {action} PR comment {posted}")
    return 0


def workflow_escape(text: str) -> str:
    """A workflow command's message: one line, whatever the API answered."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


if __name__ == "__main__":
    sys.exit(main())
