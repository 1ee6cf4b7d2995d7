"""`python -m promptci.prcomment` against a hostile comments API on 127.0.0.1: redirects to another origin,
endless `Link: next` chains, HTML, wrong shapes, nulls, a POST answer without id, a server that never answers.
Each ends as one clear warning line (exit 1 with --strict), never a traceback, and the token never leaves the
API's origin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakegithub import BOT, FakeGitHub, Raw, running_fake_github
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptci.prcomment import DEFAULT_MARKER, MAX_PAGES, CommentError, Deadline, main

COMMENTS = "/repos/acme/bot/issues/7/comments"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with running_fake_github() as state:
        yield state


def environment(github: FakeGitHub, tmp_path: Path) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    return {"GITHUB_TOKEN": github.token, "GITHUB_REPOSITORY": "acme/bot", "GITHUB_API_URL": github.url,
            "GITHUB_EVENT_PATH": str(event)}


def post(github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    """main --strict; returns (exit code, stderr), checking it is one line without the token."""
    body = tmp_path / "report.md"
    body.write_text("## report")
    code = main(["--body-file", str(body), "--strict", *extra], environment(github, tmp_path))
    out = capsys.readouterr()
    assert github.token not in out.out + out.err
    if code:
        assert out.err.count("\n") == 1 and out.err.startswith("::warning title=promptci comment::"), out.err
    return code, out.err


def answer_get(raw: Raw) -> Callable[[str, str], Raw | None]:
    return lambda method, path: raw if method == "GET" else None


def test_a_redirect_to_another_origin_is_refused_and_the_other_host_sees_nothing(
        github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_fake_github() as elsewhere:
        github.hostile = answer_get(Raw(302, headers=(("Location", f"{elsewhere.url}/steal"),)))
        code, err = post(github, tmp_path, capsys)
        assert code == 1 and "refusing to send the token to another origin" in err
        assert elsewhere.calls == []  # not even a request without the header
        github.hostile = lambda method, path: (Raw(307, headers=(("Location", f"{elsewhere.url}/steal"),))
                                               if method == "POST" else None)
        code, err = post(github, tmp_path, capsys)
        assert code == 1 and "another origin" in err and elsewhere.calls == []


def test_a_same_origin_redirect_is_followed(github: FakeGitHub, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """GitHub answers 301 for a renamed repository: the token may go there, it is the same API."""
    def renamed(method: str, path: str) -> Raw | None:
        if path.startswith("/repos/acme/old/"):
            return Raw(301, headers=(("Location", "{url}" + path.replace("/old/", "/bot/")),))
        return None

    github.hostile = renamed
    env = {**environment(github, tmp_path), "GITHUB_REPOSITORY": "acme/old"}
    body = tmp_path / "report.md"
    body.write_text("## report")
    assert main(["--body-file", str(body), "--strict"], env) == 0
    body.write_text("## again")
    assert main(["--body-file", str(body), "--strict"], env) == 0
    assert [c["body"] for c in github.comments[7]] == [f"{DEFAULT_MARKER}\n## again"]
    assert ("PATCH", "/repos/acme/old/issues/comments/1001") in github.calls
    capsys.readouterr()


def test_an_endless_link_next_chain_is_bounded(github: FakeGitHub, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    page = json.dumps([{"id": 1, "body": "chatter", "user": {"login": "someone"}}]).encode()
    github.hostile = answer_get(Raw(200, page, (("Content-Type", "application/json"),
                                                ("Link", '<{url}' + COMMENTS + '?page=again>; rel="next"'))))
    code, err = post(github, tmp_path, capsys)
    assert code == 1 and f"more than {MAX_PAGES} pages" in err
    assert len(github.calls) == MAX_PAGES


def test_a_next_link_to_another_origin_is_refused(github: FakeGitHub, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with running_fake_github() as elsewhere:
        github.hostile = answer_get(Raw(200, b"[]", (("Content-Type", "application/json"),
                                                     ("Link", f'<{elsewhere.url}/x>; rel="next"'))))
        code, err = post(github, tmp_path, capsys)
        assert code == 1 and "another origin" in err and elsewhere.calls == []


@pytest.mark.parametrize(("raw", "said"), [
    (Raw(200, b"<html><body>Unicorn!</body></html>", (("Content-Type", "text/html"),)),
     "did not answer JSON (text/html"),
    (Raw(200, b'{"message": "a dict, not a list"}'), "expected a list of comments, the API answered an object"),
    (Raw(200, b"null"), "expected a list of comments, the API answered null"),
    (Raw(200, b"[" * 100_000 + b"]" * 100_000), "did not answer JSON"),
    (Raw(502, b"<html>Bad gateway</html>", (("Content-Type", "text/html"),)), "HTTP 502"),
    (Raw(200, b'[{"id": 1, "body": "x"'), "did not answer JSON"),
], ids=["html", "dict", "null", "deep", "502", "cut"])
def test_odd_answers_to_the_listing_are_one_line(github: FakeGitHub, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str], raw: Raw, said: str) -> None:
    github.hostile = answer_get(raw)
    code, err = post(github, tmp_path, capsys)
    assert code == 1 and said in err and "Traceback" not in err


def test_nulls_in_the_listing_are_skipped(github: FakeGitHub, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    listing = [None, 3, {"id": None, "body": None, "user": None}, {"body": DEFAULT_MARKER, "user": {"login": None}},
               {"id": "12", "body": f"{DEFAULT_MARKER}\n", "user": {"login": BOT}}]
    github.hostile = answer_get(Raw(200, json.dumps(listing).encode()))
    code, err = post(github, tmp_path, capsys)
    assert code == 1 and "no comment id" in err  # ours, by its marker and author, but with a string id
    listing.pop()
    github.hostile = answer_get(Raw(200, json.dumps(listing).encode()))
    assert post(github, tmp_path, capsys)[0] == 0
    assert [method for method, _ in github.calls].count("POST") == 1


@pytest.mark.parametrize("answer", [b"{}", b'{"id": null}', b'{"id": true}', b"[]", b"<html></html>"])
def test_a_post_answer_without_an_id_is_one_line(github: FakeGitHub, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str], answer: bytes) -> None:
    github.hostile = lambda method, path: Raw(201, answer) if method == "POST" else None
    code, err = post(github, tmp_path, capsys)
    assert code == 1 and ("no comment id" in err or "did not answer JSON" in err)


def test_a_server_that_never_answers_ends_within_the_time_given(github: FakeGitHub, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A stalled answer is given up on at --timeout (the socket's "timed out"); on a machine too loaded to send
    the request within 0.5 s, the deadline itself gives up first. Either way not at the stall's end (60 s), which
    would read as a closed connection."""
    github.hostile = answer_get(Raw(stall=True))
    code, err = post(github, tmp_path, capsys, "--timeout", "0.5")
    assert code == 1 and ("timed out" in err or "gave up after 0.5 s" in err), err


def test_the_deadline_covers_every_call_together() -> None:
    now = [0.0]
    deadline = Deadline(10, clock=lambda: now[0])
    assert deadline.left("GET") == 10
    now[0] = 9.5
    assert deadline.left("GET") == 0.5
    now[0] = 10
    with pytest.raises(CommentError, match="gave up after 10 s"):
        deadline.left("GET")


def test_a_broken_event_payload_or_api_url_is_one_line(github: FakeGitHub, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    env = environment(github, tmp_path)
    Path(env["GITHUB_EVENT_PATH"]).write_text("{not json")
    body = tmp_path / "report.md"
    body.write_text("x")
    assert main(["--body-file", str(body), "--strict"], env) == 1
    assert "cannot read the event payload" in capsys.readouterr().err
    env = {**environment(github, tmp_path), "GITHUB_API_URL": "file:///etc"}
    assert main(["--body-file", str(body), "--strict"], env) == 1
    assert "not an http(s) URL" in capsys.readouterr().err


def test_as_a_process_an_odd_answer_is_a_warning_not_a_traceback(github: FakeGitHub, tmp_path: Path) -> None:
    github.hostile = answer_get(Raw(200, b'{"unexpected": [1, 2]}'))
    body = tmp_path / "report.md"
    body.write_text("x")
    done = subprocess.run([sys.executable, "-m", "promptci.prcomment", "--body-file", str(body)],
                          env={**os.environ, **environment(github, tmp_path)}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr  # a warning: the check's verdict stands
    assert done.stderr.startswith("::warning") and github.token not in done.stderr


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(
                        st.sampled_from(["id", "body", "user", "login"]), children, max_size=4), max_leaves=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(listing=JSON, created=JSON)
def test_fuzzed_answers_never_raise(github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   listing: object, created: object) -> None:
    def hostile(method: str, path: str) -> Raw:
        return Raw(200, json.dumps(listing if method == "GET" else created).encode())

    github.hostile = hostile
    assert post(github, tmp_path, capsys)[0] in (0, 1)
