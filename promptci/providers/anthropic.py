"""The `anthropic` provider: the Messages API, streamed as raw events, on one pooled AsyncAnthropic
client per named provider. System messages go in `system=`; max_tokens defaults to 1024."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from promptci.config import ProviderSettings
from promptci.errors import BadRequest, ProviderError
from promptci.limitheaders import limit_headers
from promptci.providers._http import (
    Endpoint,
    PooledClientProvider,
    StreamRecorder,
    classify_transport,
    cut_stream_error,
    is_event_stream,
    malformed_error,
    not_a_stream_error,
    read_endpoint,
    reserved_param,
    sdk_error,
    token_count,
    transport_errors,
)
from promptci.providers.base import ProviderContext, split_model
from promptci.providers.batching import (
    BatchLimits,
    BatchStatus,
    LineOutcome,
    anthropic_completion,
    error_text,
    parse_line,
)
from promptci.types import Completion, Message, Request, Usage

if TYPE_CHECKING:  # the SDK (~1.7 s to import) loads on the first request: a cached run never pays it
    import anthropic

DEFAULT_MAX_TOKENS = 1024
RESERVED_PARAMS = ("model", "messages", "stream", "system", "extra_body", "extra_headers", "extra_query",
                   "timeout")


def anthropic_provider(config: ProviderSettings, ctx: ProviderContext) -> AnthropicProvider:
    return AnthropicProvider(read_endpoint(config, ctx))


@functools.lru_cache(maxsize=1)
def sdk_keywords() -> frozenset[str]:
    """messages.create's keyword arguments. In anthropic 2.x temperature, top_p and top_k are not among
    them, so they travel in extra_body with every other unknown param."""
    from anthropic.resources.messages import AsyncMessages

    return frozenset(inspect.signature(AsyncMessages.create).parameters) - {"self"}


def request_kwargs(request: Request) -> dict[str, Any]:
    """request.params as messages.create keyword arguments (`stop` becomes `stop_sequences`)."""
    params = dict(request.params)
    reserved = reserved_param(params, RESERVED_PARAMS)
    if reserved is not None:
        raise BadRequest(f"parameter {reserved!r} is set by promptci and cannot be given in a prompt's params")
    if "stop" in params and "stop_sequences" not in params:
        stop = params.pop("stop")
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop or ())
    params.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    if "tools" in params:
        params["tools"] = anthropic_tools(params["tools"])
    known = sdk_keywords()
    kwargs = {name: value for name, value in params.items() if name in known}
    extra = {name: value for name, value in params.items() if name not in known}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def anthropic_tools(tools: Any) -> list[Any]:
    """OpenAI function tools ({type: function, function: {name, description, parameters}}) in Anthropic's
    shape ({name, description, input_schema}); a tool already in Anthropic's shape passes as it is."""
    mapped = []
    for tool in tools or ():
        function = tool.get("function") if isinstance(tool, Mapping) and tool.get("type") == "function" else None
        if not isinstance(function, Mapping):
            mapped.append(tool)
            continue
        entry = {"name": function.get("name"),
                 "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
        if function.get("description"):
            entry["description"] = function["description"]
        mapped.append(entry)
    return mapped


def split_system(messages: tuple[Message, ...]) -> tuple[str | None, list[dict[str, Any]]]:
    """System messages joined into one `system` string; the rest as the conversation."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    turns = tool_blocks([dict(m) for m in messages if m["role"] != "system"])
    return ("\n\n".join(system) if system else None), turns


def tool_blocks(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A tool loop's turns (conversation.py writes them in OpenAI's shape) in Anthropic's: the assistant's
    `tool_calls` as tool_use blocks, and the `tool` messages after them as one user turn of tool_result blocks."""
    mapped: list[dict[str, Any]] = []
    for turn in turns:
        if turn["role"] == "tool":
            result = {"type": "tool_result", "tool_use_id": turn["tool_call_id"], "content": turn["content"]}
            if mapped and mapped[-1]["role"] == "user" and isinstance(mapped[-1]["content"], list):
                mapped[-1]["content"].append(result)
            else:
                mapped.append({"role": "user", "content": [result]})
        elif turn.get("tool_calls"):
            text = [{"type": "text", "text": turn["content"]}] if turn.get("content") else []
            uses = [{"type": "tool_use", "id": call["id"], "name": call["function"]["name"],
                     "input": json.loads(call["function"]["arguments"] or "{}")} for call in turn["tool_calls"]]
            mapped.append({"role": "assistant", "content": text + uses})
        else:
            mapped.append(turn)
    return mapped


class AnthropicProvider(PooledClientProvider):
    """Streams every request; classifies failures; leaves retries to promptci.retrying."""

    default_max_tokens = DEFAULT_MAX_TOKENS  # sent when a request sets none: its longest answer

    def make_client(self) -> anthropic.AsyncAnthropic:
        import anthropic

        client = anthropic.AsyncAnthropic(
            api_key=self.endpoint.key, base_url=self.endpoint.base_url, timeout=self.endpoint.timeout_s,
            max_retries=0, default_headers=self.endpoint.options.get("headers") or None,
        )
        _ = client.messages  # the SDK loads this lazily; load it with the client
        return client

    def prepare(self) -> None:
        super().prepare()
        sdk_keywords()

    async def complete(self, request: Request) -> Completion:
        import anthropic

        _, model = split_model(request.model)
        kwargs = request_kwargs(request)
        system, turns = split_system(request.messages)
        if system is not None:
            kwargs["system"] = system
        try:
            return await self._stream(model, turns, kwargs)
        except ProviderError:
            raise
        except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:  # timeouts are APIConnectionErrors
            raise sdk_error(self.endpoint, model, exc, anthropic) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # the SDK decodes SSE bytes as UTF-8
            raise malformed_error(self.endpoint, exc) from None
        except transport_errors() as exc:  # anthropic lets httpx2 errors out of a stream unwrapped
            raise classify_transport(self.endpoint, exc) from None

    async def _stream(self, model: str, turns: list[dict[str, Any]], kwargs: dict[str, Any]) -> Completion:
        recorder = StreamRecorder(self.endpoint)
        stream = await self.client().messages.create(
            model=model, messages=turns, stream=True, **kwargs,  # type: ignore[arg-type]
        )
        content_type = stream.response.headers.get("content-type", "")
        if not is_event_stream(content_type):
            body = await stream.response.aread()
            await stream.close()
            raise not_a_stream_error(self.endpoint, content_type, body)
        state = _StreamState(self.endpoint)
        try:
            await self._read_events(stream, state, recorder)
        finally:  # left half read, its generators would be closed by the GC, printing a traceback
            with contextlib.suppress(Exception):  # a cut connection: the error that ended the read says it
                await stream.close()
        if not state.has_stopped:
            raise cut_stream_error(self.endpoint, "message_stop")
        completion = recorder.completion(usage=state.usage(), resolved_model=state.model,
                                         finish_reason=state.stop_reason)
        return replace(completion, limit_headers=limit_headers(stream.response.headers))

    async def _read_events(self, stream: Any, state: _StreamState, recorder: StreamRecorder) -> None:
        async for event in stream:
            try:
                state.apply(event, recorder)
            except (AttributeError, TypeError) as exc:  # the SDK builds events without validating them
                raise malformed_error(self.endpoint, TypeError(
                    f"unexpected {str(getattr(event, 'type', 'event'))[:40]!r} event shape ({exc})")) from None


    # Message Batches: create, retrieve (processing_status), results as JSONL (promptci.batch decides what goes
    # in a batch and stores what comes back).

    batch_limits = BatchLimits(lines=100_000, bytes=256_000_000)

    def batch_entry(self, custom_id: str, request: Request) -> dict[str, Any]:
        """One request of a batch: messages.create's params as JSON (extra_body's fields among them)."""
        _, model = split_model(request.model)
        kwargs = request_kwargs(request)
        extra = kwargs.pop("extra_body", {})
        system, turns = split_system(request.messages)
        params: dict[str, Any] = {"model": model, "messages": turns, **kwargs, **extra}
        if system is not None:
            params["system"] = system
        return {"custom_id": custom_id, "params": params}

    async def submit_batch(self, entries: Sequence[Mapping[str, Any]]) -> str:
        batch = await self._batch_call(self.client().messages.batches.create(requests=list(entries)))
        return str(batch.id)

    async def batch_status(self, batch_id: str) -> BatchStatus:
        batch = await self._batch_call(self.client().messages.batches.retrieve(batch_id))
        counts = batch.request_counts
        done = counts.succeeded + counts.errored + counts.expired + counts.canceled
        return BatchStatus(batch_id, batch.processing_status, batch.processing_status == "ended", done,
                           done + counts.processing)

    async def batch_results(self, batch_id: str) -> list[LineOutcome]:
        import anthropic

        outcomes: list[LineOutcome] = []
        try:
            results = await self.client().messages.batches.results(batch_id)
            async for item in results:
                outcome = self._batch_line(item.model_dump())
                if outcome is not None:
                    outcomes.append(outcome)
        except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
            raise sdk_error(self.endpoint, "batch", exc, anthropic) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise malformed_error(self.endpoint, exc) from None
        return outcomes

    async def cancel_batch(self, batch_id: str) -> BatchStatus:
        await self._batch_call(self.client().messages.batches.cancel(batch_id))
        return await self.batch_status(batch_id)

    def _batch_line(self, line: Mapping[str, Any]) -> LineOutcome | None:
        custom_id, result = line.get("custom_id"), line.get("result")
        if not isinstance(result, Mapping):
            return None
        kind = result.get("type")
        if kind != "succeeded":
            problem = error_text(result.get("error")) if kind == "errored" else f"{kind}: not processed"
            return LineOutcome(custom_id, None, self.endpoint.scrub(problem)) if isinstance(custom_id, str) else None
        message: Mapping[str, Any] = result.get("message") or {}
        return parse_line(self.endpoint, custom_id,
                          lambda: anthropic_completion(message, self._batch_usage(message.get("usage"))))

    def _batch_usage(self, usage: Any) -> Usage | None:
        """In promptci's convention (pricing.py), as _StreamState.usage() counts a streamed answer."""
        if not isinstance(usage, Mapping):
            return None
        count = {name: token_count(self.endpoint, usage.get(name) or 0, name)
                 for name in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                              "cache_creation_input_tokens")}
        every_input = count["input_tokens"] + count["cache_read_input_tokens"] + count["cache_creation_input_tokens"]
        return Usage(every_input, count["output_tokens"], count["cache_read_input_tokens"])

    async def _batch_call(self, awaitable: Any) -> Any:
        import anthropic

        try:
            return await awaitable
        except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
            raise sdk_error(self.endpoint, "batch", exc, anthropic) from None


class _StreamState:
    """What the raw events said so far: usage comes in message_start and message_delta."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.has_stopped = False
        self.has_usage = False
        self.input_tokens = 0  # as Anthropic counts them: without cache reads and writes
        self.output_tokens = 0
        self.cached_input_tokens = 0
        self.cache_write_tokens = 0

    def apply(self, event: Any, recorder: StreamRecorder) -> None:
        kind = event.type
        if kind == "content_block_delta":
            if getattr(event.delta, "type", None) == "text_delta":
                recorder.add_text(event.delta.text)
            elif getattr(event.delta, "type", None) == "input_json_delta":
                recorder.add_tool_call(event.index, arguments=event.delta.partial_json)
        elif kind == "content_block_start" and getattr(event.content_block, "type", None) == "tool_use":
            recorder.add_tool_call(event.index, name=event.content_block.name)
        elif kind == "message_start":
            self.model = event.message.model
            self._take_usage(event.message.usage)
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            self._take_usage(event.usage)
        elif kind == "message_stop":
            self.has_stopped = True

    def _take_usage(self, usage: Any) -> None:
        """Counts are cumulative; a later event's non-empty value replaces an earlier one."""
        if usage is None:
            return
        self.has_usage = True
        fields: Mapping[str, str] = {"input_tokens": "input_tokens", "output_tokens": "output_tokens",
                                     "cache_read_input_tokens": "cached_input_tokens",
                                     "cache_creation_input_tokens": "cache_write_tokens"}
        for source, target in fields.items():
            value = token_count(self.endpoint, getattr(usage, source, None), source)
            if value:
                setattr(self, target, value)

    def usage(self) -> Usage | None:
        """In promptci's convention (pricing.py): input counts every prompt token, cached ones included."""
        if not self.has_usage:
            return None
        every_input = self.input_tokens + self.cached_input_tokens + self.cache_write_tokens
        return Usage(every_input, self.output_tokens, self.cached_input_tokens)
