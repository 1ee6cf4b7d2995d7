"""A fake of GitHub's issue-comments API on 127.0.0.1, for the PR-comment upsert (no network).

Pages are linked by a `Link: <...>; rel="next"` header as GitHub's are. `hostile` answers a request in its
place (any status, headers and bytes, or a stall until the test ends), to try the client against odd APIs."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

BOT = "github-actions[bot]"


@dataclass(frozen=True)
class Raw:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    stall: bool = False  # answer nothing until the test ends


@dataclass
class FakeGitHub:
    token: str = "t0ken-secret-value"
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # PR number -> comments
    calls: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 1000
    url: str = ""
    hostile: Callable[[str, str], Raw | None] | None = None  # (method, path) -> an answer in the API's place
    headers: list[dict[str, str]] = field(default_factory=list)  # every request's headers, in order
    released: threading.Event = field(default_factory=threading.Event)  # ends every Raw(stall=True)

    def add(self, number: int, body: str, login: str = BOT) -> int:
        self.next_id += 1
        self.comments.setdefault(number, []).append({"id": self.next_id, "body": body, "user": {"login": login}})
        return self.next_id


def _handler(state: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: Any, link: str | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if link:
                self.send_header("Link", link)
            self.end_headers()
            self.wfile.write(data)

        def _hostile(self, method: str) -> bool:
            """Record the call; True when `hostile` answered it."""
            state.calls.append((method, self.path))
            state.headers.append(dict(self.headers.items()))
            raw = state.hostile(method, self.path) if state.hostile else None
            if raw is None:
                return False
            if raw.stall:
                state.released.wait(60)
                return True
            self.send_response(raw.status)
            for name, value in raw.headers:
                self.send_header(name, value.replace("{url}", state.url))
            self.send_header("Content-Length", str(len(raw.body)))
            self.end_headers()
            self.wfile.write(raw.body)
            return True

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                self._reply(401, {"message": "Bad credentials"})
                return False
            return True

        def _body(self) -> dict[str, Any]:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))

        def do_GET(self) -> None:
            if self._hostile("GET"):
                return
            url = urlparse(self.path)
            match = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/(\d+)/comments", url.path)
            if not self._authorized():
                return
            if not match:
                self._reply(404, {"message": "Not Found"})
                return
            query = parse_qs(url.query)
            per_page, page = int(query.get("per_page", ["30"])[0]), int(query.get("page", ["1"])[0])
            comments = state.comments.get(int(match.group(1)), [])
            more = len(comments) > page * per_page
            link = f'<{state.url}{url.path}?per_page={per_page}&page={page + 1}>; rel="next"' if more else None
            self._reply(200, comments[(page - 1) * per_page: page * per_page], link)

        def do_POST(self) -> None:
            if self._hostile("POST"):
                return
            match = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/(\d+)/comments", self.path)
            if not self._authorized():
                return
            if not match:
                self._reply(404, {"message": "Not Found"})
                return
            comment_id = state.add(int(match.group(1)), self._body()["body"])
            self._reply(201, {"id": comment_id})

        def do_PATCH(self) -> None:
            if self._hostile("PATCH"):
                return
            match = re.fullmatch(r"/repos/[^/]+/[^/]+/issues/comments/(\d+)", self.path)
            if not self._authorized():
                return
            comment = next((c for cs in state.comments.values() for c in cs
                            if match and c["id"] == int(match.group(1))), None)
            if comment is None:
                self._reply(404, {"message": "Not Found"})
                return
            comment["body"] = self._body()["body"]
            self._reply(200, comment)

    return Handler


@contextmanager
def running_fake_github() -> Iterator[FakeGitHub]:
    state = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.released.set()
        server.shutdown()
        server.server_close()
