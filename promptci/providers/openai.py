"""The `openai` provider: Chat Completions, streamed, on one pooled AsyncOpenAI client per named
provider. Serves any OpenAI-compatible base_url, and Azure deployments when `api_version` is set."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from promptci.config import ProviderSettings
from promptci.errors import BadRequest, ProviderError
from promptci.providers._http import (
    Endpoint,
    RateLimiter,
    StreamRecorder,
    classify_status,
    classify_transport,
    connection_error,
    cut_stream_error,
    malformed_error,
    read_endpoint,
    reserved_param,
    timeout_error,
    transport_errors,
)
from promptci.providers.base import ProviderContext, split_model
from promptci.types import Completion, Request, Usage

if TYPE_CHECKING:  # the SDK is imported on the first request: a run the cache answers never pays its ~0.5 s
    import openai

# Set by promptci itself; a prompt's params may not override them.
RESERVED_PARAMS = ("model", "messages", "stream", "stream_options", "extra_body", "extra_headers",
                   "extra_query", "timeout")


def openai_provider(config: ProviderSettings, ctx: ProviderContext) -> OpenAIProvider:
    return OpenAIProvider(read_endpoint(config, ctx))


@functools.lru_cache(maxsize=1)
def sdk_keywords() -> frozenset[str]:
    """The keyword arguments chat.completions.create accepts; any other param goes in extra_body."""
    from openai.resources.chat.completions import AsyncCompletions

    return frozenset(inspect.signature(AsyncCompletions.create).parameters) - {"self"}


def request_kwargs(request: Request) -> dict[str, Any]:
    """request.params and request.output as chat.completions.create keyword arguments."""
    params = dict(request.params)
    reserved = reserved_param(params, RESERVED_PARAMS)
    if reserved is not None:
        raise BadRequest(f"parameter {reserved!r} is set by promptci and cannot be given in a prompt's params")
    known = sdk_keywords()
    kwargs = {name: value for name, value in params.items() if name in known}
    extra = {name: value for name, value in params.items() if name not in known}
    if request.output == "json" and "response_format" not in kwargs:
        kwargs["response_format"] = {"type": "json_object"}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def to_usage(usage: Any) -> Usage:
    details = getattr(usage, "prompt_tokens_details", None)
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_input_tokens=getattr(details, "cached_tokens", None) or 0,
    )


class OpenAIProvider:
    """Streams every request; classifies failures; leaves retries to promptci.retrying."""

    is_cacheable = True

    def __init__(self, endpoint: Endpoint) -> None:
        self.name = endpoint.provider
        self.endpoint = endpoint
        self._client: openai.AsyncOpenAI | None = None
        self._limiter = RateLimiter(endpoint.rpm) if endpoint.rpm else None

    def client(self) -> openai.AsyncOpenAI:
        """Made on first use, inside the running event loop, then shared by every request."""
        if self._client is None:
            self._client = make_client(self.endpoint)
            _ = self._client.chat.completions  # the SDK loads this lazily; load it with the client
        return self._client

    async def complete(self, request: Request) -> Completion:
        import openai

        _, model = split_model(request.model)
        kwargs = request_kwargs(request)
        if self._limiter is not None:
            self.client()  # built before taking a slot, so building it does not eat into the spacing
            await self._limiter.acquire()
        try:
            return await self._stream(model, request.messages, kwargs)
        except ProviderError:
            raise
        except openai.APIStatusError as exc:
            raise classify_status(self.endpoint, model, exc.status_code, exc.response.headers, exc.body,
                                  exc.message) from None
        except openai.APITimeoutError:
            raise timeout_error(self.endpoint) from None
        except openai.APIConnectionError as exc:
            raise connection_error(self.endpoint, exc.__cause__ or exc) from None
        except json.JSONDecodeError as exc:
            raise malformed_error(self.endpoint, exc) from None
        except transport_errors() as exc:
            raise classify_transport(self.endpoint, exc) from None

    async def _stream(self, model: str, messages: tuple[Mapping[str, str], ...],
                      kwargs: dict[str, Any]) -> Completion:
        recorder = StreamRecorder()
        stream = await self.client().chat.completions.create(
            model=model, messages=[dict(m) for m in messages], stream=True,  # type: ignore[misc]
            stream_options={"include_usage": True}, **kwargs,
        )
        usage: Usage | None = None
        resolved: str | None = None
        finish_reason: str | None = None
        async for chunk in stream:
            resolved = resolved or chunk.model
            if chunk.usage is not None:
                usage = to_usage(chunk.usage)
            for choice in chunk.choices:
                if choice.index != 0:
                    continue
                if choice.delta is not None:
                    recorder.add_text(choice.delta.content)
                finish_reason = choice.finish_reason or finish_reason
        if finish_reason is None:
            raise cut_stream_error(self.endpoint, "a finish_reason")
        return recorder.completion(usage=usage, resolved_model=resolved, finish_reason=finish_reason)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


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
