"""The viewer's HTTP server: the standard library's ThreadingHTTPServer on 127.0.0.1 (one local user, a
handful of routes: no dependency needed). Reads need a known Host (no DNS rebinding); writes also need the
start-up token's cookie, a same-origin Origin and a JSON body (no cross-site writes from other pages)."""

from __future__ import annotations

import hmac
import json
import secrets
import sys
import threading
import traceback
from dataclasses import dataclass
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from promptci.errors import PromptCIError
from promptci.viewer.reviews import all_reviews
from promptci.viewer.site import Site

COOKIE = "promptci_view_token"
MAX_BODY = 64 * 1024


class NoSuchPage(Exception):
    pass


@dataclass
class Viewer:
    """A running viewer: its address and token, and how to stop it."""

    server: ThreadingHTTPServer
    token: str
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def login_url(self) -> str:
        return f"{self.url}?token={self.token}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_viewer(root: Path | None, port: int = 0) -> Viewer:
    """The server, not yet serving. A damaged reviews file stops it here (its ConfigError: exit 2), before a
    page or a review could meet it."""
    site = Site.at(root)
    all_reviews(site.source)
    token = secrets.token_urlsafe(24)
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(site, token))
    except OSError as error:
        raise PromptCIError(f"--port {port}: cannot listen on 127.0.0.1 ({error.strerror}); choose another port, "
                            "or leave --port out for a free one") from None
    server.daemon_threads = True
    return Viewer(server, token)


def start_in_thread(root: Path | None, port: int = 0) -> Viewer:
    viewer = make_viewer(root, port)
    viewer.thread = threading.Thread(target=viewer.server.serve_forever, name="promptci-view", daemon=True)
    viewer.thread.start()
    return viewer


def _handler(site: Site, token: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "promptci-view"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the terminal shows the address and errors only

        def _hosts(self) -> set[str]:
            port = self.server.server_port  # type: ignore[attr-defined]
            return {f"127.0.0.1:{port}", f"localhost:{port}"}

        def _send(self, status: int, body: str, content_type: str = "text/html; charset=utf-8",
                  headers: dict[str, str] | None = None) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("X-Frame-Options", "DENY")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value, ensure_ascii=False), "application/json; charset=utf-8")

        def do_GET(self) -> None:
            if self.headers.get("Host") not in self._hosts():
                self._send(HTTPStatus.FORBIDDEN, "unknown Host", "text/plain; charset=utf-8")
                return
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if "token" in query:
                self._login(url.path, query["token"])
                return
            if url.path.startswith("/api/jobs/"):
                job_id = unquote(url.path[len("/api/jobs/"):])
                self._guarded(lambda: self._json(HTTPStatus.OK, site.diff_state(job_id)), as_json=True)
                return
            self._guarded(lambda: self._send(HTTPStatus.OK, self._page(url.path, query)))

        def _login(self, path: str, given: str) -> None:
            if not hmac.compare_digest(given.encode(), token.encode()):
                self._send(HTTPStatus.FORBIDDEN, "wrong token: use the address `promptci view` printed",
                           "text/plain; charset=utf-8")
                return
            self._send(HTTPStatus.SEE_OTHER, "", headers={
                "Location": path or "/", "Set-Cookie": f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"})

        def _page(self, path: str, query: dict[str, str]) -> str:
            if path == "/":
                return site.runs()
            if path.startswith("/run/"):
                return site.run(unquote(path[len("/run/"):]))
            if path == "/compare":
                return site.compare(query.get("a", ""), query.get("b", ""))
            if path == "/case":
                return site.case(query.get("p", ""), query.get("c", ""))
            if path == "/revisions":
                return site.revisions()
            if path == "/cost":
                return site.cost(query.get("since") or "30d")
            raise NoSuchPage(path)

        def do_POST(self) -> None:
            refusal = self._refusal()
            if refusal:
                self._json(HTTPStatus.FORBIDDEN, {"error": refusal})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self._json(HTTPStatus.BAD_REQUEST, {"error": "a JSON body up to 64 KiB is needed"})
                return
            try:
                target = json.loads(self.rfile.read(length))
            except ValueError:
                self._json(HTTPStatus.BAD_REQUEST, {"error": "the body is not JSON"})
                return
            if not isinstance(target, dict):
                self._json(HTTPStatus.BAD_REQUEST, {"error": "the body must be a JSON object"})
                return
            actions = {"/api/review": site.review, "/api/accept": site.accept, "/api/diff": site.start_diff}
            action = actions.get(urlsplit(self.path).path)
            if action is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": "no such action"})
                return
            self._guarded(lambda: self._json(HTTPStatus.OK, action(target)), as_json=True)

        def _refusal(self) -> str | None:
            host = self.headers.get("Host")
            if host not in self._hosts():
                return "unknown Host"
            if self.headers.get("Origin") != f"http://{host}":
                return "cross-origin request refused"
            cookie = SimpleCookie(self.headers.get("Cookie") or "")
            given = cookie[COOKIE].value if COOKIE in cookie else ""
            if not hmac.compare_digest(given.encode(), token.encode()):
                return "no valid token: open the address `promptci view` printed"
            if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                return "the body must be application/json"
            return None

        def _guarded(self, respond: Any, as_json: bool = False) -> None:
            try:
                respond()
            except NoSuchPage:
                self._send(HTTPStatus.NOT_FOUND, "no such page", "text/plain; charset=utf-8")
            except PromptCIError as error:
                if as_json:
                    self._json(HTTPStatus.CONFLICT, {"error": str(error)})
                else:
                    self._send(HTTPStatus.NOT_FOUND, str(error), "text/plain; charset=utf-8")
            except Exception:
                traceback.print_exc(file=sys.stderr)
                if as_json:
                    self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error (see the terminal)"})
                else:
                    self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (see the terminal)",
                               "text/plain; charset=utf-8")

        do_HEAD = do_GET

    return Handler
