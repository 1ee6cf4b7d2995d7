"""The `openai` provider: Chat Completions, streamed, on one pooled AsyncOpenAI client per named
provider. Serves any OpenAI-compatible base_url, and Azure deployments when `api_version` is set."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from promptci.config import ProviderSettings
from promptci.errors import BadRequest, ProviderError
from promptci.limitheaders import limit_headers
from promptci.providers._http import (
    Endpoint,
    PooledClientProvider,
    StreamRecorder,
    classify_status,
    classify_transport,
    cut_stream_error,
    is_event_stream,
    malformed_error,
    not_a_stream_error,
    read_endpoint,
    reserved_param,
    sdk_error,
    token_count,
)
from promptci.providers.base import ProviderContext, split_model
from promptci.providers.batching import BatchLimits, BatchStatus, LineOutcome, error_text, openai_completion, parse_line
from promptci.types import Completion, Request, Usage

if TYPE_CHECKING:  # the SDK is imported on the first request: a run the cache answers never pays its ~0.5 s
    import httpx2
    import openai

# Set by promptci itself; a prompt's params may not override them.
RESERVED_PARAMS = ("model", "messages", "stream", "stream_options", "extra_body", "extra_headers",
                   "extra_query", "timeout")


def openai_provider(config: ProviderSettings, ctx: ProviderContext) -> OpenAIProvider:
    return OpenAIProvider(read_endpoint(config, ctx))


def request_body(request: Request, model: str) -> dict[str, Any]:
    """The JSON body of a streamed chat completion: request.params go in as given, beside promptci's own."""
    params = dict(request.params)
    reserved = reserved_param(params, RESERVED_PARAMS)
    if reserved is not None:
        raise BadRequest(f"parameter {reserved!r} is set by promptci and cannot be given in a prompt's params")
    if request.output == "json":
        params.setdefault("response_format", {"type": "json_object"})
    return {"model": model, "messages": [dict(m) for m in request.messages], "stream": True,
            "stream_options": {"include_usage": True}, **params}


def to_usage(endpoint: Endpoint, usage: Mapping[str, Any]) -> Usage:
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=token_count(endpoint, usage.get("prompt_tokens"), "prompt_tokens"),
        output_tokens=token_count(endpoint, usage.get("completion_tokens"), "completion_tokens"),
        cached_input_tokens=token_count(endpoint, details.get("cached_tokens"), "cached_tokens"),
    )


BATCH_ENDPOINT = "/v1/chat/completions"
OPENAI_BATCH_ENDED = ("completed", "expired", "failed", "cancelled")


DONE = b"[DONE]"
DRAIN_S = 0.1  # after [DONE], what is left of the body is read this long (so the connection is reused), no longer


async def sse_data(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The data of each server-sent event before [DONE]."""
    pending = b""
    data: list[bytes] = []
    blocks = response.aiter_bytes()
    async for block in blocks:
        *lines, pending = (pending + block).split(b"\n")
        for event in end_events(lines, data):
            if event == DONE:
                await drain(blocks)
                return
            yield event
    for event in end_events([pending, b""], data):  # a last event without its blank line
        if event != DONE:
            yield event


async def drain(blocks: AsyncIterator[bytes]) -> None:
    """Read the rest of the body briefly: a server that keeps it open after [DONE] must not hold the case."""

    async def read_all() -> None:
        async for _ in blocks:
            pass

    with contextlib.suppress(asyncio.TimeoutError):  # then the caller closes the response and its connection
        await asyncio.wait_for(read_all(), timeout=DRAIN_S)


def end_events(lines: list[bytes], data: list[bytes]) -> list[bytes]:
    """Adds the `data:` lines to `data` (the current event's); returns the events a blank line ends,
    [DONE] included. Other fields and comments are skipped, as the SDK does for chat completions."""
    ended = []
    for line in lines:
        line = line.rstrip(b"\r")
        if line.startswith(b"data:"):
            data.append(line[5:].removeprefix(b" "))
        elif not line and data:
            event = b"\n".join(data)
            data.clear()
            ended.append(event)
    return ended


class OpenAIProvider(PooledClientProvider):
    """Streams every request; classifies failures; leaves retries to promptci.retrying."""

    def make_client(self) -> openai.AsyncOpenAI:
        return make_client(self.endpoint)

    async def complete(self, request: Request) -> Completion:
        import anyio
        import httpx2
        import openai

        _, model = split_model(request.model)
        body = request_body(request, model)
        try:
            return await self._stream(model, body)
        except ProviderError:
            raise
        except (openai.APIStatusError, openai.APIConnectionError) as exc:  # timeouts are APIConnectionErrors
            raise sdk_error(self.endpoint, model, exc, openai) from None
        except (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream) as exc:  # reading the body: the SDK's set
            raise classify_transport(self.endpoint, exc) from None

    async def embed(self, request: Request) -> Completion:
        """The embedding of the request's last message through /embeddings: the vector as JSON text."""
        import httpx2
        import openai

        _, model = split_model(request.model)
        text = request.messages[-1]["content"] if request.messages else ""
        started = time.perf_counter()
        try:
            response = await self.client().post("/embeddings", body={"model": model, "input": [text],
                                                                     "encoding_format": "float"},
                                                 cast_to=httpx2.Response, options={"security": {"bearer_auth": True}})
            body = json.loads(await response.aread())
        except (openai.APIStatusError, openai.APIConnectionError) as exc:  # timeouts are APIConnectionErrors
            raise sdk_error(self.endpoint, model, exc, openai) from None
        except ValueError as exc:
            raise malformed_error(self.endpoint, exc) from None
        try:
            vector = body["data"][0]["embedding"]
            if not isinstance(vector, list) or any(isinstance(x, bool) or not isinstance(x, (int, float))
                                                   for x in vector):
                raise ValueError("the embedding is not a list of numbers")
            vector = [float(x) for x in vector]
            usage = Usage(input_tokens=token_count(self.endpoint, (body.get("usage") or {}).get("prompt_tokens", 0),
                                                   "prompt_tokens"))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise malformed_error(self.endpoint, ValueError(f"not an embeddings response ({exc!r})")) from None
        return Completion(text=json.dumps(vector), usage=usage, latency_ms=(time.perf_counter() - started) * 1000,
                          resolved_model=body.get("model") if isinstance(body.get("model"), str) else None,
                          finish_reason="stop")

    async def _stream(self, model: str, body: dict[str, Any]) -> Completion:
        """One streamed request through the SDK's client (auth, base_url, headers, transport, status
        errors), read as plain JSON. The SDK's typed stream is bypassed on purpose: its params transform,
        SSE machinery and one pydantic model per chunk cost ~40% of the CPU of a streamed request, which
        is the bottleneck of a run at high -j on one event loop (bench/README.md)."""
        import httpx2

        recorder = StreamRecorder(self.endpoint)
        response = await self.client().post("/chat/completions", body=body, cast_to=httpx2.Response, stream=True,
                                            options={"security": {"bearer_auth": True}})
        usage: Usage | None = None
        resolved: str | None = None
        finish_reason: str | None = None
        try:
            content_type = response.headers.get("content-type", "")
            if not is_event_stream(content_type):
                raise not_a_stream_error(self.endpoint, content_type, await response.aread())
            async for data in sse_data(response):
                chunk = self._parse(data)
                try:
                    if chunk.get("error"):  # an error event inside a 200 stream (the SDK raised APIError)
                        raise classify_status(self.endpoint, model, response.status_code, response.headers, chunk,
                                              "an error occurred during streaming")
                    resolved = resolved or chunk.get("model")
                    if chunk.get("usage"):
                        usage = to_usage(self.endpoint, chunk["usage"])
                    for choice in chunk.get("choices") or ():
                        if choice.get("index", 0) != 0:
                            continue
                        recorder.add_text((choice.get("delta") or {}).get("content"))
                        add_tool_deltas(recorder, (choice.get("delta") or {}).get("tool_calls"))
                        finish_reason = choice.get("finish_reason") or finish_reason
                except (AttributeError, TypeError) as exc:  # a chunk of the wrong shape: `choices: 5`, `delta: []`
                    raise malformed_error(self.endpoint, TypeError(f"unexpected chunk shape ({exc}): "
                                                                   f"{data[:120]!r}")) from None
        finally:
            await response.aclose()
        if finish_reason is None:
            raise cut_stream_error(self.endpoint, "a finish_reason")
        completion = recorder.completion(usage=usage, resolved_model=resolved, finish_reason=finish_reason)
        return replace(completion, limit_headers=limit_headers(response.headers))

    # The Batch API: a JSONL input file through the Files API, batches.create, retrieve, and the output and error
    # files (promptci.batch decides what goes in a batch and stores what comes back).

    batch_limits = BatchLimits(lines=50_000, bytes=200_000_000)

    def batch_entry(self, custom_id: str, request: Request) -> dict[str, Any]:
        """One line of the input file: the chat completion's body, not streamed."""
        _, model = split_model(request.model)
        body = request_body(request, model)
        del body["stream"], body["stream_options"]
        return {"custom_id": custom_id, "method": "POST", "url": BATCH_ENDPOINT, "body": body}

    async def submit_batch(self, entries: Sequence[Mapping[str, Any]]) -> str:
        """Uploads the lines and creates the batch; returns its id."""
        jsonl = b"".join(json.dumps(entry, ensure_ascii=False).encode() + b"\n" for entry in entries)
        client = self.client()

        async def submit() -> str:
            upload = await client.files.create(file=("promptci-batch.jsonl", jsonl), purpose="batch")
            batch = await client.batches.create(input_file_id=upload.id, endpoint=BATCH_ENDPOINT,
                                                completion_window="24h", metadata={"created_by": "promptci"})
            return str(batch.id)

        return await self._batch_call(submit())

    async def batch_status(self, batch_id: str) -> BatchStatus:
        batch = await self._batch_call(self.client().batches.retrieve(batch_id))
        counts = batch.request_counts
        done = (counts.completed + counts.failed) if counts else 0
        failure = None
        if batch.status == "failed":
            errors = batch.errors.data if batch.errors and batch.errors.data else []
            failure = "; ".join(self.endpoint.scrub(str(e.message or e.code)) for e in errors) or "the batch failed"
        return BatchStatus(batch_id, batch.status, batch.status in OPENAI_BATCH_ENDED, done,
                           counts.total if counts else 0, failure)

    async def batch_results(self, batch_id: str) -> list[LineOutcome]:
        """Every line of the output file and of the error file."""
        client = self.client()
        batch = await self._batch_call(client.batches.retrieve(batch_id))
        outcomes: list[LineOutcome] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self._batch_call(client.files.content(file_id))
            for raw in content.content.splitlines():
                outcome = self._batch_line(raw)
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes

    async def cancel_batch(self, batch_id: str) -> BatchStatus:
        await self._batch_call(self.client().batches.cancel(batch_id))
        return await self.batch_status(batch_id)

    def _batch_line(self, raw: bytes) -> LineOutcome | None:
        try:
            line = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(line, dict):
            return None
        response: dict[str, Any] = line["response"] if isinstance(line.get("response"), dict) else {}
        status, body = response.get("status_code"), response.get("body")
        if status != 200 or not isinstance(body, dict):
            problem = self.endpoint.scrub(error_text(line.get("error") or body, status))
            return LineOutcome(line["custom_id"], None, problem) if isinstance(line.get("custom_id"), str) else None
        return parse_line(self.endpoint, line.get("custom_id"),
                          lambda: openai_completion(body, to_usage(self.endpoint, body.get("usage") or {})))

    async def _batch_call(self, awaitable: Any) -> Any:
        import openai

        try:
            return await awaitable
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            raise sdk_error(self.endpoint, "batch", exc, openai) from None

    def _parse(self, data: bytes) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
            raise malformed_error(self.endpoint, exc) from None
        if not isinstance(chunk, dict):
            raise malformed_error(self.endpoint, ValueError(f"a chunk is not a JSON object: {data[:80]!r}"))
        return chunk


def add_tool_deltas(recorder: StreamRecorder, deltas: Any) -> None:
    """`delta.tool_calls`: each call's first delta names the function, later ones add to its arguments."""
    for delta in deltas or ():
        function = delta.get("function") or {}
        recorder.add_tool_call(delta.get("index", 0), function.get("name"), function.get("arguments"))


def make_client(endpoint: Endpoint) -> openai.AsyncOpenAI:
    import openai

    headers = endpoint.options.get("headers") or None
    api_version = endpoint.options.get("api_version")
    if api_version:
        return openai.AsyncAzureOpenAI(
            api_key=endpoint.key, azure_endpoint=endpoint.base_url or "", api_version=str(api_version),
            timeout=endpoint.timeout_s, max_retries=0, default_headers=headers,
        )
    return openai.AsyncOpenAI(
        api_key=endpoint.key, base_url=endpoint.base_url, timeout=endpoint.timeout_s, max_retries=0,
        default_headers=headers,
    )
