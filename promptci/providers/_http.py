"""What the OpenAI and Anthropic providers share: reading the key, classifying HTTP failures into
the ProviderError family (never with a key in the text, with the rate-limit headers the limiter reads)
and stream timing. Pacing is the model client's (promptci.ratelimit), not the providers'."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from promptci.config import ProviderSettings
from promptci.errors import (
    AuthError,
    BadRequest,
    ConnectionFailed,
    MissingKey,
    ModelNotFound,
    ProviderError,
    RateLimited,
    ServerError,
    Timeout,
)
from promptci.limitheaders import limit_headers, parse_retry_after
from promptci.providers.base import ProviderContext, api_key_env
from promptci.secrets import REDACTED, read_key, redact
from promptci.types import Completion, ToolCall, Usage

MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class Endpoint:
    """One named provider's connection facts, as error messages need them. The key never prints."""

    provider: str
    key_env: str
    key: str = field(repr=False)
    base_url: str | None = None
    timeout_s: float = 60.0
    options: Mapping[str, Any] = field(default_factory=dict)

    def scrub(self, text: str) -> str:
        """`text` without the key in any form, cut to a readable length."""
        text = self.without_key(text)
        return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "..."

    def without_key(self, text: str) -> str:
        return redact(text, [(REDACTED, self.key)]) if self.key else text

    def scrub_completion(self, completion: Completion) -> Completion:
        """A server that echoes the key in its answer must not get it into the cache, db, recordings or
        reports: scrubbed here, before the completion leaves the provider. When the key was split across
        chunks, the chunks become the one scrubbed text."""
        text = self.without_key(completion.text) if completion.text else completion.text
        chunks = tuple(self.without_key(chunk) for chunk in completion.chunks)
        if text is not None and chunks and "".join(chunks) != text:
            chunks = (text,)
        model = self.without_key(completion.resolved_model) if completion.resolved_model else None
        calls = tuple(ToolCall(self.without_key(c.name), self.without_key(c.arguments)) for c in completion.tool_calls)
        if (text == completion.text and chunks == completion.chunks and model == completion.resolved_model
                and calls == completion.tool_calls):
            return completion
        return replace(completion, text=text, chunks=chunks, resolved_model=model, tool_calls=calls)


def read_endpoint(config: ProviderSettings, ctx: ProviderContext) -> Endpoint:
    """The provider's endpoint with its key from the environment; MissingKey when it is not set."""
    key_env = api_key_env(config) or "API_KEY"
    key = read_key(key_env)
    if not key:
        raise MissingKey(
            f"{key_env} is not set (needed by provider '{config.name}'); export it or use --replay"
        )
    return Endpoint(
        provider=config.name, key_env=key_env, key=key, base_url=config.base_url,
        timeout_s=ctx.settings.timeout_s, options=dict(config.options),
    )


def server_message(body: object, fallback: str) -> str:
    """The human message inside an error body of either dialect: {"error": {"message": ...}}."""
    inner = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
        return inner["message"]
    if isinstance(inner, str) and inner:
        return inner
    return fallback


def error_code(body: object) -> str | None:
    inner = body.get("error", body) if isinstance(body, Mapping) else None
    if isinstance(inner, Mapping):
        code = inner.get("code") or inner.get("type")
        return code if isinstance(code, str) else None
    return None


def classify_status(endpoint: Endpoint, model: str, status: int, headers: Mapping[str, str] | None,
                    body: object, fallback: str) -> ProviderError:
    """An HTTP error answer as the ProviderError the runner acts on, carrying the answer's rate-limit headers
    (exc.headers) for the limiter."""
    error = status_error(endpoint, model, status, headers, body, fallback)
    error.headers = limit_headers(headers)
    return error


def status_error(endpoint: Endpoint, model: str, status: int, headers: Mapping[str, str] | None,
                 body: object, fallback: str) -> ProviderError:
    said = endpoint.scrub(server_message(body, fallback))
    where = f"provider '{endpoint.provider}'"
    if status in (401, 403):
        return AuthError(f"authentication failed for {where} (check {endpoint.key_env}): HTTP {status}: {said}",
                         status)
    if status == 404:
        return ModelNotFound(f"model '{model}' not found at {where} (HTTP 404: {said}); "
                             f"check the model name and the provider's base_url", status)
    if status == 429 and error_code(body) == "insufficient_quota":
        quota = BadRequest(f"{where} refused the request: quota exhausted (HTTP 429: {said})", status)
        quota.stops_model = True
        return quota
    if status == 429:
        return RateLimited(f"rate limited by {where} (HTTP 429: {said})", status,
                           parse_retry_after(headers or {}, time.time()))
    if status == 408:
        return Timeout(f"{where} timed out the request (HTTP 408: {said})", status)
    if status >= 500 or status < 400:  # < 400: an error event inside a 200 stream
        return ServerError(f"{where} failed (HTTP {status}: {said})", status)
    return BadRequest(f"{where} rejected the request (HTTP {status}: {said})", status)


def timeout_error(endpoint: Endpoint) -> Timeout:
    return Timeout(f"no answer from provider '{endpoint.provider}' within {endpoint.timeout_s:g} s")


def connection_error(endpoint: Endpoint, cause: BaseException | None) -> ConnectionFailed:
    detail = f": {endpoint.scrub(str(cause))}" if cause is not None and str(cause) else ""
    where = f" at {endpoint.base_url}" if endpoint.base_url else ""
    return ConnectionFailed(f"connection to provider '{endpoint.provider}'{where} failed{detail}")


def sdk_error(endpoint: Endpoint, model: str, exc: BaseException, sdk: ModuleType) -> ProviderError:
    """An error the openai or anthropic SDK raised (`sdk`, the module: both have the same error classes), as the
    ProviderError the runner acts on."""
    if isinstance(exc, sdk.APIStatusError):
        return classify_status(endpoint, model, exc.status_code, exc.response.headers, exc.body, exc.message)
    if isinstance(exc, sdk.APITimeoutError):
        return timeout_error(endpoint)
    return connection_error(endpoint, exc.__cause__ or exc)


def cut_stream_error(endpoint: Endpoint, missing: str) -> ConnectionFailed:
    return ConnectionFailed(f"the stream from provider '{endpoint.provider}' ended before {missing} "
                            f"(cut mid-way); the partial answer was discarded")


def malformed_error(endpoint: Endpoint, exc: BaseException) -> ServerError:
    """Invalid JSON from the server: retryable, like a 5xx (a proxy or server in trouble)."""
    return ServerError(f"malformed response from provider '{endpoint.provider}': {endpoint.scrub(str(exc))}")


def transport_errors() -> tuple[type[BaseException], ...]:
    """httpx2 errors that can escape an SDK's stream iteration (anthropic does not wrap them)."""
    import httpx2

    return (httpx2.TransportError,)


def classify_transport(endpoint: Endpoint, exc: BaseException) -> ProviderError:
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return timeout_error(endpoint)
    return connection_error(endpoint, exc)


def reserved_param(params: Mapping[str, Any], reserved: Iterable[str]) -> str | None:
    """The first param promptci sets itself (model, messages, stream...), which a prompt may not override."""
    taken = set(reserved)
    return next((name for name in params if name in taken), None)


def not_a_stream_error(endpoint: Endpoint, content_type: str, body: bytes) -> ServerError:
    """A 200 that is a JSON document or an HTML page where an event stream was asked for (a proxy's
    login page, a server ignoring `stream`): say what came back, not "stream cut"."""
    shown = endpoint.scrub(body[:200].decode("utf-8", "replace").strip())
    return ServerError(f"provider '{endpoint.provider}' answered 200 with {content_type or 'no content type'} "
                       f"instead of an event stream ({len(body)} bytes: {shown!r}); check its base_url",
                       200)


def is_event_stream(content_type: str | None) -> bool:
    """False only for a body that says it is something else: a server that names no type is given a chance."""
    return not content_type or "event-stream" in content_type.lower()


# Far above any real answer, far below what overflows SQLite's 64-bit integers.
MAX_TOKEN_COUNT = 10**12


def token_count(endpoint: Endpoint, value: object, name: str) -> int:
    """A usage count from the server, refused when it is not a plausible count (10**30, -1, "12")."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKEN_COUNT:
        raise malformed_error(endpoint, ValueError(f"usage {name} is {str(value)[:40]!r}, not a token count"))
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def mend_surrogates(chunks: list[str]) -> list[str] | None:
    """Chunks with surrogate pairs joined (an emoji sent as "\\ud83d" in one chunk and "\\ude00" in the next);
    None when a lone surrogate is left, which no UTF-8 store can hold."""
    mended: list[str] = []
    carry = ""
    for chunk in chunks:
        chunk, carry = carry + chunk, ""
        if chunk and "\ud800" <= chunk[-1] <= "\udbff":
            chunk, carry = chunk[:-1], chunk[-1]
        try:
            chunk = chunk.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            return None
        if chunk:
            mended.append(chunk)
    return None if carry else mended


class StreamRecorder:
    """Times a streamed answer and keeps its text deltas (strings only: a server's `content: 5` is named)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.started = time.perf_counter()
        self.first_text_at: float | None = None
        self.chunks: list[str] = []
        self.tool_names: dict[int, str] = {}  # by the stream's index of the call (or content block)
        self.tool_arguments: dict[int, list[str]] = {}

    def add_text(self, text: object) -> None:
        if not text:
            return
        if not isinstance(text, str):
            raise malformed_error(self.endpoint, TypeError(
                f"a text delta is {type(text).__name__} {str(text)[:40]!r}, not a string"))
        if self.first_text_at is None:
            self.first_text_at = time.perf_counter()
        self.chunks.append(text)

    def add_tool_call(self, index: object, name: object = None, arguments: object = None) -> None:
        """A tool call's start (its name) or a piece of its arguments' JSON, as either wire format streams them."""
        if not isinstance(index, int) or isinstance(index, bool):
            raise malformed_error(self.endpoint, TypeError(f"a tool call's index is {str(index)[:40]!r}"))
        if name:
            self.tool_names[index] = self.checked_string(name, "tool name") or ""
        if arguments:
            self.tool_arguments.setdefault(index, []).append(self.checked_string(arguments, "tool arguments") or "")

    def tool_calls(self) -> tuple[ToolCall, ...]:
        for index in self.tool_arguments.keys() - self.tool_names.keys():
            raise malformed_error(self.endpoint, ValueError(f"tool call {index} has arguments but no name"))
        return tuple(ToolCall(self.tool_names[index], "".join(self.tool_arguments.get(index, ())) or "{}")
                     for index in sorted(self.tool_names))

    def completion(self, *, usage: Usage | None, resolved_model: object,
                   finish_reason: object) -> Completion:
        ended = time.perf_counter()
        ttft = None if self.first_text_at is None else (self.first_text_at - self.started) * 1000.0
        chunks = self.chunks
        if any(_SURROGATE.search(chunk) for chunk in chunks):
            mended = mend_surrogates(chunks)
            if mended is None:
                raise malformed_error(self.endpoint, ValueError("the answer holds a lone UTF-16 surrogate "
                                                                "(invalid Unicode)"))
            chunks = mended
        completion = Completion(
            text="".join(chunks), usage=usage, latency_ms=(ended - self.started) * 1000.0, ttft_ms=ttft,
            resolved_model=self.checked_string(resolved_model, "model"),
            finish_reason=self.checked_string(finish_reason, "finish reason"), chunks=tuple(chunks),
            tool_calls=self.tool_calls(),
        )
        return self.endpoint.scrub_completion(completion)

    def checked_string(self, value: object, name: str) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or _SURROGATE.search(value):
            raise malformed_error(self.endpoint, TypeError(f"the {name} is {str(value)[:40]!r}, not a string"))
        return value


class PooledClientProvider:
    """What the SDK providers share: one client per named provider, made by prepare() before the first
    request (or on first use); closing. Subclasses give make_client() and
    complete()."""

    is_cacheable = True

    def __init__(self, endpoint: Endpoint) -> None:
        self.name = endpoint.provider
        self.endpoint = endpoint
        self._client: Any = None

    def make_client(self) -> Any:
        raise NotImplementedError

    def prepare(self) -> None:
        """Import the SDK and build the client now, before any request is timed: importing an SDK takes
        a second and would stall every request in flight on the event loop."""
        self.client()

    def client(self) -> Any:
        if self._client is None:
            self._client = self.make_client()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
