"""A fake OpenAI/Anthropic model server on 127.0.0.1 for tests and benchmarks: deterministic answers,
exact usage, configurable latency and injected faults. Run it alone with `python tests/fakeserver.py`."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fakelimits import RateBuckets

CHAT_PATH = "/v1/chat/completions"
MESSAGES_PATH = "/v1/messages"
STATS_PATH = "/_stats"
WEBHOOK_PREFIX = "/hooks/"  # a Slack-compatible incoming webhook: POST {"text": ...}, answered "ok"
FAULTS = ("ok", "429", "500", "529", "hang", "malformed", "cut", "truncate", "400", "401", "404")
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 529: "Overloaded"}
CREATED = 1_700_000_000  # a fixed timestamp keeps answers byte-identical


@dataclass
class FakeConfig:
    """How the server answers. Mutable: a test may change it between requests."""

    latency_s: float = 0.0  # request received -> last byte sent
    ttft_s: float | None = None  # request received -> first text chunk; None: latency / chunks
    chunks: int = 3  # text deltas per streamed answer (fewer when the answer is shorter)
    model_suffix: str = "-2024-07-18"  # the resolved model is the requested one plus this
    # request body -> answer; None: echo. An answer may be {"text": ..., "tool_calls": [{"name", "arguments"}]}
    # to call tools (arguments a mapping or JSON text), streamed in either wire format.
    responder: Callable[[dict[str, Any]], Any] | None = None
    script: list[str] = field(default_factory=list)  # faults for the first requests, in arrival order
    rate_limit_p: float = 0.0  # then answer this share of requests 429 (seeded, reproducible)
    seed: int = 0
    retry_after: str | None = "1"  # Retry-After header on 429s (None: no header)
    retry_after_ms: str | None = None  # retry-after-ms header on 429s
    hang_s: float = 30.0  # how long a "hang" waits before answering
    unauthorized: bool = False  # answer every request 401
    unknown_models: tuple[str, ...] = ()  # answer requests for these models 404 model_not_found
    cached_tokens: int = 0  # reported as cached input tokens
    error_message: str | None = None  # replaces the message in error bodies
    record: bool = True  # keep request bodies and headers
    webhook_status: int = 200  # how /hooks/... answers
    limit_rps: float | None = None  # token bucket: refill this many requests a second (None: no limit)
    limit_burst: float | None = None  # the bucket's size in requests; None: one second's worth
    limit_tpm: float | None = None  # a second bucket for tokens a minute (input + output), its size one minute's
    limit_headers_on: str = "all"  # which answers carry the buckets' rate-limit headers: "all", or "429" only
    fault_p: float = 0.0  # then answer this share of requests with one of fault_mix (seeded, reproducible)
    fault_mix: tuple[str, ...] = ("429", "500", "cut")
    raw_body: bytes | None = None  # answer every streamed request 200 with exactly these bytes (hostile servers)
    raw_content_type: str = "text/event-stream"  # the content type sent with raw_body
    echo_key: bool = False  # the answer text holds the bearer key the client sent (a server leaking it)
    embedder: Callable[[str], Any] | None = None  # text -> the embedding sent back (any JSON); None: word_vector
    echo_key_form: str = "raw"  # how it is echoed: one of KEY_FORMS
    # Batch APIs (OpenAI Files + Batches, Anthropic Message Batches): how many status reads a batch stays in
    # progress before it ends, how it ends ("completed"/"ended", "expired", "failed", "cancelled"), and which of
    # its lines (0-based, in input order) get an error answer instead of a message.
    batch_polls: int = 0
    batch_outcome: str = "completed"
    batch_error_lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: dict[str, Any]
    query: str = ""
    received_at: float = 0.0  # time.perf_counter() on arrival


class FakeServer:
    """An asyncio HTTP/1.1 server in its own thread. Use `running_fake_server()` in tests."""

    def __init__(self, config: FakeConfig | None = None, port: int = 0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.config = config or FakeConfig()
        self.sleep = sleep  # every latency, ttft, chunk gap and hang is waited with it (a test may record them)
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.counts: Counter[str] = Counter()
        self.refused = 0  # requests the token bucket answered 429
        self.webhooks: list[dict[str, Any]] = []  # JSON bodies posted to /hooks/... (not model requests)
        self.buckets = RateBuckets(self.config, clock)
        self.connections = 0  # TCP connections accepted: shows whether a client pools them
        self._script: deque[str] = deque()
        self.script(*self.config.script)
        self._rng = random.Random(self.config.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._serial = 0
        self.batches = FakeBatches(self)
        self._start_error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def total(self) -> int:
        """Model requests received (any path but /_stats)."""
        return sum(self.counts.values())

    def script(self, *faults: str) -> None:
        """Answer the next requests with these faults, in order ("ok" for a normal answer)."""
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {FAULTS}")
        self._script.extend(faults)

    def reset(self) -> None:
        self.requests.clear()
        self.counts.clear()
        self.connections = 0
        self.refused = 0

    def start(self) -> FakeServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fake-model-server", daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._start_error is not None:
            raise RuntimeError(f"fake model server did not start: {self._start_error}")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None or self._stopping is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)
        self._loop = self._thread = None

    def _run(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve(ready))
        except OSError as exc:  # e.g. the port is taken
            self._start_error = exc
            ready.set()
        finally:
            self._loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        await self._stopping.wait()
        server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while await self._serve_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must close."""
        head = await reader.readuntil(b"\r\n\r\n")
        method, path, query, headers = _parse_head(head)
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if method == "GET" and path == STATS_PATH:
            writer.write(_json_response(200, {"total": self.total, "by_path": dict(self.counts),
                                              "refused": self.refused, "batches_created": self.batches.created}))
            return True
        if self.batches.handles(method, path):
            writer.write(self.batches.answer(method, path, headers, body))
            return True
        if method == "POST" and path.startswith(WEBHOOK_PREFIX):
            self.webhooks.append(json.loads(body or b"{}"))
            status = self.config.webhook_status
            writer.write(b"HTTP/1.1 %d X\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok" % status)
            return True
        if method == "POST" and path.endswith("/embeddings"):
            return self._embeddings(path, headers, query, json.loads(body or b"{}"), writer)
        # Azure deployments post to /openai/deployments/<name>/chat/completions
        is_chat = path.endswith("/chat/completions")
        if method != "POST" or not (is_chat or path == MESSAGES_PATH):
            writer.write(_json_response(404, {"error": {"message": f"no route {method} {path}"}}))
            return True
        request = json.loads(body or b"{}")
        self.counts[path] += 1
        self._serial += 1
        if self.config.record:
            self.requests.append(RecordedRequest(path, headers, request, query, time.perf_counter()))
        answer = _Answer(self, is_chat, request, self._serial, headers)
        admission = self.buckets.admit(answer.input_tokens + answer.output_tokens)
        if admission.admitted and self.config.limit_headers_on == "429":
            answer.limit_headers = {}
        else:
            answer.limit_headers = admission.headers(answer.is_anthropic, time.time())
        if not admission.admitted:
            self.refused += 1
            answer.retry_in_s = admission.retry_in_s
            return await answer.send("429", writer)
        return await answer.send(self._pick_fault(request), writer)

    def _embeddings(self, path: str, headers: Mapping[str, str], query: str, request: dict[str, Any],
                    writer: asyncio.StreamWriter) -> bool:
        """/v1/embeddings: each input's `word_vector`, so a test can compute the expected cosine itself."""
        self.counts[path] += 1
        if self.config.record:
            self.requests.append(RecordedRequest(path, headers, request, query, time.perf_counter()))
        fault = self._pick_fault(request)
        if fault in ("400", "401", "404", "429", "500", "529"):
            writer.write(_json_response(int(fault), {"error": {"message": "injected", "type": "api_error"}}))
            return True
        inputs = request.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or ())
        tokens = sum(len(str(t).split()) for t in texts)
        embed = self.config.embedder or word_vector
        data = [{"object": "embedding", "index": i, "embedding": embed(str(t))} for i, t in enumerate(texts)]
        writer.write(_json_response(200, {"object": "list", "data": data,
                                          "model": f"{request.get('model', '')}{self.config.model_suffix}",
                                          "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
        return True

    def _pick_fault(self, request: Mapping[str, Any]) -> str:
        if self.config.unauthorized:
            return "401"
        if request.get("model") in self.config.unknown_models:
            return "404"
        if self._script:
            return self._script.popleft()
        if self.config.rate_limit_p and self._rng.random() < self.config.rate_limit_p:
            return "429"
        if self.config.fault_p and self._rng.random() < self.config.fault_p:
            return self._rng.choice(self.config.fault_mix)
        return "ok"


class FakeBatches:
    """OpenAI's Files and Batch APIs and Anthropic's Message Batches, in memory. A batch answers every line
    as the chat or messages endpoint would (not streamed), once `batch_polls` status reads have passed;
    `created` counts the batches made, so a test sees whether a re-run submitted again."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.files: dict[str, bytes] = {}
        self.openai: dict[str, dict[str, Any]] = {}
        self.anthropic: dict[str, dict[str, Any]] = {}
        self.created = 0
        self.reads = Counter[str]()

    def handles(self, method: str, path: str) -> bool:
        return path.startswith(("/v1/files", "/v1/batches", "/v1/messages/batches"))

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
        parts = path.strip("/").split("/")[1:]  # without "v1"
        if self.server.config.unauthorized:
            return _json_response(401, {"error": {"message": "invalid api key", "type": "authentication_error"}})
        try:
            if parts[0] == "files":
                return self._files(method, parts, headers, body)
            if parts[0] == "batches":
                return self._openai(method, parts, body)
            return self._anthropic(method, parts[2:], body)
        except (KeyError, IndexError, ValueError) as exc:
            return _json_response(404 if isinstance(exc, KeyError) else 400,
                                  {"error": {"message": f"fake batches: {exc!r}", "type": "invalid_request_error"}})

    # OpenAI

    def _files(self, method: str, parts: list[str], headers: Mapping[str, str], body: bytes) -> bytes:
        if method == "POST" and len(parts) == 1:
            content, purpose = _multipart_file(headers.get("content-type", ""), body)
            file_id = f"file-fake-{len(self.files) + 1}"
            self.files[file_id] = content
            return _json_response(200, _file_object(file_id, len(content), purpose))
        if method == "GET" and len(parts) == 3 and parts[2] == "content":
            return _raw_response(200, self.files[parts[1]], content_type="application/octet-stream")
        raise KeyError(f"{method} /v1/files/{'/'.join(parts[1:])}")

    def _openai(self, method: str, parts: list[str], body: bytes) -> bytes:
        if method == "POST" and len(parts) == 1:
            request = json.loads(body)
            lines = [json.loads(line) for line in self.files[request["input_file_id"]].splitlines() if line.strip()]
            self.created += 1
            batch_id = f"batch_fake_{self.created}"
            self.openai[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": request["endpoint"], "errors": None,
                "input_file_id": request["input_file_id"], "completion_window": request["completion_window"],
                "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": CREATED,
                "metadata": request.get("metadata"),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "_lines": lines,
            }
            return _json_response(200, _public(self.openai[batch_id]))
        batch = self.openai[parts[1]]
        if method == "POST" and parts[2:] == ["cancel"]:
            if batch["status"] not in ("completed", "failed", "expired", "cancelled"):
                batch["status"] = "cancelling"
                self._finish_openai(batch, "cancelled")
            return _json_response(200, _public(batch))
        if method == "GET" and len(parts) == 2:
            self._advance_openai(batch)
            return _json_response(200, _public(batch))
        raise KeyError(f"{method} /v1/batches/{'/'.join(parts[1:])}")

    def _advance_openai(self, batch: dict[str, Any]) -> None:
        if batch["status"] not in ("validating", "in_progress", "finalizing"):
            return
        reads = self.reads[batch["id"]] = self.reads[batch["id"]] + 1
        if reads <= self.server.config.batch_polls:
            batch["status"] = ("validating", "in_progress", "finalizing")[min(reads - 1, 2)]
            return
        self._finish_openai(batch, self.server.config.batch_outcome)

    def _finish_openai(self, batch: dict[str, Any], outcome: str) -> None:
        if outcome == "failed":
            batch["status"] = "failed"
            batch["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "injected failure",
                                                            "line": None, "param": None}]}
            return
        outputs, errors = [], []
        lines = batch.pop("_lines")
        answered = len(lines) if outcome == "completed" else len(lines) // 2
        for index, line in enumerate(lines):
            custom_id = line["custom_id"]
            if index >= answered:
                code = "batch_expired" if outcome == "expired" else "batch_cancelled"
                errors.append({"id": f"resp_{index}", "custom_id": custom_id, "response": None,
                               "error": {"code": code, "message": f"this request was not processed ({outcome})"}})
            elif index in self.server.config.batch_error_lines:
                errors.append({"id": f"resp_{index}", "custom_id": custom_id, "error": None, "response": {
                    "status_code": 500, "request_id": f"req_{index}",
                    "body": {"error": {"message": "Internal server error", "type": "api_error"}}}})
            else:
                outputs.append({"id": f"resp_{index}", "custom_id": custom_id, "error": None, "response": {
                    "status_code": 200, "request_id": f"req_{index}", "body": self._message(True, line["body"])}})
        batch["status"] = outcome
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}
        for name, rows in (("output_file_id", outputs), ("error_file_id", errors)):
            if rows:
                file_id = f"file-fake-{len(self.files) + 1}"
                self.files[file_id] = b"".join(_dumps(row) + b"\n" for row in rows)
                batch[name] = file_id

    def _message(self, is_chat: bool, request: dict[str, Any]) -> dict[str, Any]:
        self.server._serial += 1
        return _Answer(self.server, is_chat, request, self.server._serial)._plain()

    # Anthropic

    def _anthropic(self, method: str, parts: list[str], body: bytes) -> bytes:
        if method == "POST" and not parts:
            requests = json.loads(body)["requests"]
            self.created += 1
            batch_id = f"msgbatch_fake_{self.created}"
            self.anthropic[batch_id] = {
                "id": batch_id, "type": "message_batch", "processing_status": "in_progress",
                "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-02T00:00:00Z", "ended_at": None,
                "results_url": None, "request_counts": _anthropic_counts(processing=len(requests)),
                "_requests": requests,
            }
            return _json_response(200, _public(self.anthropic[batch_id]))
        batch = self.anthropic[parts[0]]
        if method == "POST" and parts[1:] == ["cancel"]:
            if batch["processing_status"] != "ended":
                self._finish_anthropic(batch, "cancelled")
            return _json_response(200, _public(batch))
        if method == "GET" and len(parts) == 1:
            if batch["processing_status"] == "in_progress":
                reads = self.reads[batch["id"]] = self.reads[batch["id"]] + 1
                if reads > self.server.config.batch_polls:
                    self._finish_anthropic(batch, self.server.config.batch_outcome)
            return _json_response(200, _public(batch))
        if method == "GET" and parts[1:] == ["results"] and batch["processing_status"] == "ended":
            return _raw_response(200, batch["_results"], content_type="application/binary")
        raise KeyError(f"{method} /v1/messages/batches/{'/'.join(parts)}")

    def _finish_anthropic(self, batch: dict[str, Any], outcome: str) -> None:
        requests = batch.pop("_requests")
        answered = len(requests) if outcome in ("completed", "ended") else len(requests) // 2
        rows, counts = [], Counter[str]()
        for index, item in enumerate(requests):
            if index >= answered:
                result: dict[str, Any] = {"type": "expired" if outcome == "expired" else "canceled"}
            elif index in self.server.config.batch_error_lines:
                result = {"type": "errored", "error": {"type": "error", "error": {
                    "type": "api_error", "message": "Internal server error"}}}
            else:
                result = {"type": "succeeded", "message": self._message(False, item["params"])}
            counts[result["type"]] += 1
            rows.append({"custom_id": item["custom_id"], "result": result})
        batch.update(processing_status="ended", ended_at="2026-01-01T01:00:00Z",
                     results_url=f"{self.server.url}/v1/messages/batches/{batch['id']}/results",
                     request_counts=_anthropic_counts(**counts))
        batch["_results"] = b"".join(_dumps(row) + b"\n" for row in rows)


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in batch.items() if not name.startswith("_")}


def _anthropic_counts(**counts: int) -> dict[str, int]:
    names = ("processing", "succeeded", "errored", "canceled", "expired")
    return {name: counts.get(name, 0) for name in names}


def _file_object(file_id: str, size: int, purpose: str) -> dict[str, Any]:
    return {"id": file_id, "object": "file", "bytes": size, "created_at": CREATED, "filename": "batch.jsonl",
            "purpose": purpose, "status": "processed"}


def _multipart_file(content_type: str, body: bytes) -> tuple[bytes, str]:
    """The `file` part's bytes and the `purpose` field of a multipart/form-data upload."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[str(name)] = part.get_payload(decode=True) or b""
    return fields["file"], fields.get("purpose", b"").decode()


class _Answer:
    """One request's answer in either dialect, with or without faults."""

    def __init__(self, server: FakeServer, is_chat: bool, request: dict[str, Any], serial: int,
                 headers: Mapping[str, str] | None = None) -> None:
        self.config = server.config
        self.sleep = server.sleep
        self.request = request
        self.is_anthropic = not is_chat
        self.serial = serial
        self.model = f"{request.get('model', '')}{self.config.model_suffix}"
        text, self.tool_calls = _answer_parts(_answer_text(request, self.config.responder))
        if self.config.echo_key:
            key = (headers or {}).get("authorization", "").removeprefix("Bearer ")
            text = f"{text} (your key is {key_form(key, self.config.echo_key_form)})"
        words = text.split(" ")
        limit = request.get("max_tokens") or request.get("max_completion_tokens")
        self.is_cut_short = isinstance(limit, int) and len(words) > limit
        self.text = " ".join(words[:limit] if self.is_cut_short else words)
        self.input_tokens = _count_input_words(request)
        self.output_tokens = len(self.text.split())
        self.limit_headers: dict[str, str] = {}  # the rate-limit headers sent with every answer
        self.retry_in_s: float | None = None  # set when the token bucket refused the request

    async def send(self, fault: str, writer: asyncio.StreamWriter) -> bool:
        if fault in ("400", "401", "404", "429", "500", "529"):
            await asyncio.sleep(0)
            writer.write(self._error(int(fault)))
            return True
        if fault == "hang":
            await self.sleep(self.config.hang_s)
        if self.config.raw_body is not None and self.request.get("stream"):
            writer.write(_raw_response(200, self.config.raw_body, content_type=self.config.raw_content_type))
            return True
        if not self.request.get("stream"):
            await self.sleep(self.config.latency_s)
            body = b'{"id": "broken", "choices": [' if fault == "malformed" else _dumps(self._plain())
            writer.write(_raw_response(200, body, self.limit_headers))
            return True
        return await self._stream(fault, writer)

    def _error(self, status: int) -> bytes:
        kinds = {400: ("invalid_request_error", "Invalid request"),
                 401: ("authentication_error", "invalid x-api-key"), 404: ("not_found_error", "model not found"),
                 429: ("rate_limit_error", "Rate limit reached"), 500: ("api_error", "Internal server error"),
                 529: ("overloaded_error", "Overloaded")}
        kind, message = kinds[status]
        if status == 404:
            message = f"The model `{self.request.get('model')}` does not exist"
        message = self.config.error_message or message
        headers: dict[str, str] = dict(self.limit_headers)
        if status == 429 and self.retry_in_s is not None:  # the bucket is empty: say when it has room
            headers["retry-after"] = str(math.ceil(self.retry_in_s))
            headers["retry-after-ms"] = str(math.ceil(self.retry_in_s * 1000))
        elif status == 429:
            if self.config.retry_after is not None:
                headers["retry-after"] = self.config.retry_after
            if self.config.retry_after_ms is not None:
                headers["retry-after-ms"] = self.config.retry_after_ms
        if self.is_anthropic:
            body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            code = "model_not_found" if status == 404 else kind
            body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return _json_response(status, body, headers)

    async def _stream(self, fault: str, writer: asyncio.StreamWriter) -> bool:
        writer.write(_stream_head(self.limit_headers))
        events = self._anthropic_events() if self.is_anthropic else self._openai_events()
        for index, event in enumerate(events):
            if event is _TEXT:
                if not await self._send_text(fault, writer):
                    return False
                if fault == "truncate":  # a clean end of stream without the terminal events
                    break
            elif fault == "malformed" and index > 0:
                name = b"event: content_block_delta\n" if self.is_anthropic else b""
                writer.write(_chunk(name + b'data: {"id": "broken", "choi\n\n'))
                break
            else:
                writer.write(_chunk(event))  # type: ignore[arg-type]
        if not self.is_anthropic:
            writer.write(_chunk(b"data: [DONE]\n\n"))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _send_text(self, fault: str, writer: asyncio.StreamWriter) -> bool:
        """The text deltas on schedule; for "cut", half of them and then a dropped connection."""
        pieces = _split(self.text, self.config.chunks)
        delays = _gaps(*self._schedule(len(pieces)), len(pieces))
        cut_after = len(pieces) // 2 if fault == "cut" else -1
        for sent, (piece, delay) in enumerate(zip(pieces, delays, strict=True)):
            if sent == cut_after:
                break
            if delay > 0:
                await self.sleep(delay)
            writer.write(_chunk(self._text_event(piece)))
            await writer.drain()
        if fault == "cut":
            writer.transport.abort()
            return False
        return True

    def _schedule(self, count: int) -> tuple[float, float]:
        """Seconds to the first piece and to the last one."""
        latency = self.config.latency_s
        ttft = self.config.ttft_s if self.config.ttft_s is not None else latency / max(count, 1)
        return ttft, max(latency, ttft)

    def _openai_events(self) -> list[bytes | object]:
        done = self._openai_chunk({}, "length" if self.is_cut_short else "tool_calls" if self.tool_calls else "stop")
        events: list[bytes | object] = [self._openai_chunk({"role": "assistant", "content": ""}, None), _TEXT,
                                        *self._openai_tool_events(), done]
        options = self.request.get("stream_options") or {}
        if options.get("include_usage"):
            events.append(_sse(None, {**self._openai_base(), "choices": [], "usage": self._openai_usage()}))
        return events

    def _openai_tool_events(self) -> list[bytes | object]:
        """Each call: a delta naming it, then its arguments in two pieces (as OpenAI streams them)."""
        events: list[bytes | object] = []
        for index, (name, arguments) in enumerate(self.tool_calls):
            start = {"index": index, "id": f"call_{index}", "type": "function",
                     "function": {"name": name, "arguments": ""}}
            events.append(self._openai_chunk({"tool_calls": [start]}, None))
            for piece in _split(arguments, 2):
                events.append(self._openai_chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]},
                                                 None))
        return events

    def _anthropic_tool_events(self) -> list[bytes | object]:
        """Each call: a tool_use content block after the text's, its input as input_json_delta pieces."""
        events: list[bytes | object] = []
        for offset, (name, arguments) in enumerate(self.tool_calls):
            index = offset + 1
            events.append(_sse("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {"type": "tool_use", "id": f"toolu_{offset}",
                                                                         "name": name, "input": {}}}))
            for piece in _split(arguments, 2):
                events.append(_sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                           "delta": {"type": "input_json_delta",
                                                                     "partial_json": piece}}))
            events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        return events

    def _anthropic_events(self) -> list[bytes | object]:
        message = {**self._anthropic_message([]), "stop_reason": None,
                   "usage": {**self._anthropic_usage(), "output_tokens": 1}}
        stop_reason = "max_tokens" if self.is_cut_short else "tool_use" if self.tool_calls else "end_turn"
        return [
            _sse("message_start", {"type": "message_start", "message": message}),
            _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
            _TEXT,
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            *self._anthropic_tool_events(),
            _sse("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                   "usage": {"output_tokens": self.output_tokens}}),
            _sse("message_stop", {"type": "message_stop"}),
        ]

    def _text_event(self, piece: str) -> bytes:
        if self.is_anthropic:
            return _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": piece}})
        return self._openai_chunk({"content": piece}, None)

    def _openai_base(self) -> dict[str, Any]:
        return {"id": f"chatcmpl-fake-{self.serial}", "object": "chat.completion.chunk", "created": CREATED,
                "model": self.model}

    def _openai_chunk(self, delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _sse(None, {**self._openai_base(), "choices": [choice]})

    def _openai_usage(self) -> dict[str, Any]:
        return {"prompt_tokens": self.input_tokens, "completion_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + self.output_tokens,
                "prompt_tokens_details": {"cached_tokens": self.config.cached_tokens}}

    def _anthropic_usage(self) -> dict[str, Any]:
        """As Anthropic bills: input_tokens leaves out the tokens read from (or written to) its cache."""
        cached = min(self.config.cached_tokens, self.input_tokens)
        return {"input_tokens": self.input_tokens - cached, "output_tokens": self.output_tokens,
                "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}

    def _anthropic_message(self, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": f"msg_fake_{self.serial}", "type": "message", "role": "assistant", "model": self.model,
                "content": content, "stop_reason": "max_tokens" if self.is_cut_short else "end_turn",
                "stop_sequence": None, "usage": self._anthropic_usage()}

    def _plain(self) -> dict[str, Any]:
        if self.is_anthropic:
            return self._anthropic_message([{"type": "text", "text": self.text}])
        message = {"role": "assistant", "content": self.text}
        choice = {"index": 0, "message": message, "logprobs": None,
                  "finish_reason": "length" if self.is_cut_short else "stop"}
        return {**self._openai_base(), "object": "chat.completion", "choices": [choice],
                "usage": self._openai_usage()}


_TEXT = object()  # where the text deltas go in an event list

ZERO_WIDTH_SPACE = "\u200b"
KEY_FORMS = ("raw", "truncated", "upper", "hex", "HEX", "zero-width", "upper-truncated-zero-width")


def key_form(key: str, form: str) -> str:
    """The key as a leaking server might echo it: whole, without its last 3 characters, upper-cased,
    hex-encoded, or with a zero-width space between every two characters."""
    forms = {"raw": key, "truncated": key[:-3], "upper": key.upper(), "hex": key.encode().hex(),
             "HEX": key.encode().hex().upper(), "zero-width": ZERO_WIDTH_SPACE.join(key),
             "upper-truncated-zero-width": ZERO_WIDTH_SPACE.join(key[:-3].upper())}
    return forms[form]


EMBEDDING_DIMENSIONS = 8


def word_vector(text: str) -> list[float]:
    """A deterministic bag-of-words embedding: each lower-cased word adds 1 to the dimension its sha256 picks."""
    import hashlib

    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in text.lower().split():
        vector[hashlib.sha256(word.strip(".,!?").encode()).digest()[0] % EMBEDDING_DIMENSIONS] += 1.0
    return vector


def tool_rounds(request: Mapping[str, Any]) -> list[list[str]]:
    """The tool results a request carries, one list per round of tool calls, in either wire format: OpenAI's
    `tool` messages after an assistant's `tool_calls`, Anthropic's user turn of tool_result blocks."""
    rounds: list[list[str]] = []
    is_in_round = False  # among OpenAI's `tool` messages of one round
    for message in request.get("messages", ()):
        role, content = message.get("role"), message.get("content")
        if role == "tool":
            if not is_in_round:
                rounds.append([])
            is_in_round = True
            rounds[-1].append(str(content))
            continue
        is_in_round = False
        if role == "user" and isinstance(content, list) and any(
                isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            rounds.append([_content_text(b.get("content")) for b in content
                           if isinstance(b, dict) and b.get("type") == "tool_result"])
    return rounds


def tool_conversation(*steps: Any) -> Callable[[dict[str, Any]], Any]:
    """A responder scripted over several turns: a request that carries k rounds of tool results gets
    steps[k] (a string, {text, tool_calls}, or a function of the request giving one); past the end, the last."""

    def respond(request: dict[str, Any]) -> Any:
        step = steps[min(len(tool_rounds(request)), len(steps) - 1)]
        return step(request) if callable(step) else step

    return respond


def _answer_parts(answer: Any) -> tuple[str, list[tuple[str, str]]]:
    """(text, [(tool name, arguments JSON)]) of a responder's answer: a string, or {text, tool_calls}."""
    if isinstance(answer, str):
        return answer, []
    calls = [(call["name"], call["arguments"] if isinstance(call.get("arguments"), str)
              else json.dumps(call.get("arguments") or {})) for call in answer.get("tool_calls") or ()]
    return str(answer.get("text") or ""), calls


def _answer_text(request: dict[str, Any], responder: Callable[[dict[str, Any]], Any] | None) -> Any:
    if responder is not None:
        return responder(request)
    users = [m for m in request.get("messages", ()) if m.get("role") == "user"]
    return _content_text(users[-1].get("content")) if users else ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return ""


def _count_input_words(request: Mapping[str, Any]) -> int:
    texts = [_content_text(m.get("content")) for m in request.get("messages", ())]
    texts.append(_content_text(request.get("system")))
    return sum(len(text.split()) for text in texts)


def _split(text: str, count: int) -> list[str]:
    """`text` in up to `count` non-empty pieces of near-equal length."""
    count = max(1, min(count, len(text)))
    if not text:
        return []
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _gaps(first: float, last: float, count: int) -> list[float]:
    """Sleep before each piece so piece 0 goes at `first` and the last at `last`."""
    if count == 0:
        return []
    step = (last - first) / (count - 1) if count > 1 else 0.0
    return [first] + [step] * (count - 1)


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    path, _, query = target.partition("?")
    return method, path, query, headers


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _sse(event: str | None, data: dict[str, Any]) -> bytes:
    prefix = f"event: {event}\n".encode() if event else b""
    return prefix + b"data: " + _dumps(data) + b"\n\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _raw_response(status: int, body: bytes, headers: Mapping[str, str] | None = None,
                  content_type: str = "application/json") -> bytes:
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\n{extra}\r\n")
    return head.encode() + body


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> bytes:
    return _raw_response(status, _dumps(body), headers)


def _stream_head(headers: Mapping[str, str] | None = None) -> bytes:
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items()).encode()
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n" + extra + b"\r\n")


@contextmanager
def running_fake_server(**options: Any) -> Iterator[FakeServer]:
    """Start a fake server with FakeConfig(**options) (plus `port=`, `clock=`, `sleep=`), stop it on exit."""
    port = options.pop("port", 0)
    hooks = {name: options.pop(name) for name in ("clock", "sleep") if name in options}
    server = FakeServer(FakeConfig(**options), port=port, **hooks).start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; print the base URL first so a benchmark can read it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    parser.add_argument("--ttft", type=float, default=None, help="seconds to the first chunk")
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--rate-limit-p", type=float, default=0.0, help="share of requests answered 429")
    parser.add_argument("--retry-after", default="1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-rps", type=float, default=None, help="token bucket: requests a second")
    parser.add_argument("--limit-burst", type=float, default=None, help="bucket size (default: one second's)")
    parser.add_argument("--limit-tpm", type=float, default=None, help="token bucket: tokens a minute")
    parser.add_argument("--limit-headers", choices=("all", "429"), default="all",
                        help="which answers carry the rate-limit headers: all, or 429s only")
    parser.add_argument("--fault-p", type=float, default=0.0, help="share of requests given a fault of --fault-mix")
    parser.add_argument("--fault-mix", default="429,500,cut", help="comma-separated faults for --fault-p")
    parser.add_argument("--batch-polls", type=int, default=0, help="status reads before a batch ends")
    args = parser.parse_args(argv)
    mix = tuple(args.fault_mix.split(","))
    unknown = [fault for fault in mix if fault not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {unknown}; known: {FAULTS}")
    config = FakeConfig(latency_s=args.latency, ttft_s=args.ttft, chunks=args.chunks,
                        rate_limit_p=args.rate_limit_p, retry_after=args.retry_after, seed=args.seed, record=False,
                        limit_rps=args.limit_rps, limit_burst=args.limit_burst, limit_tpm=args.limit_tpm,
                        limit_headers_on=args.limit_headers,
                        fault_p=args.fault_p, fault_mix=mix, batch_polls=args.batch_polls)
    server = FakeServer(config, port=args.port).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
