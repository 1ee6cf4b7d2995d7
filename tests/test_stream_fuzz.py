"""Property-based fuzzing of both stream parsers over their wire formats, through the real SDKs and HTTP:
whatever bytes a server streams back, a request ends in a Completion promptci can store (UTF-8 text,
plausible token counts) or in a ProviderError with a name, never in any other exception."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptci.config import ProviderSettings
from promptci.config import Settings as PromptSettings
from promptci.errors import ProviderError
from promptci.providers._http import MAX_TOKEN_COUNT
from promptci.providers.anthropic import anthropic_provider
from promptci.providers.base import ProviderContext
from promptci.providers.openai import openai_provider
from promptci.types import Completion, Request

KEY = "sk-fuzz-0123456789abcdef"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=True)

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**110),
                    st.floats(allow_nan=True), st.text(max_size=8))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
# Text with lone surrogates too: json.dumps escapes them as \udXXX, as a broken server would send them.
texts = st.one_of(st.text(max_size=12), st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
                                                max_size=2))
counts = st.one_of(st.integers(min_value=0, max_value=50), json_values)
finish = st.one_of(st.none(), st.just("stop"), st.just("length"), json_values)

openai_choice = st.fixed_dictionaries(
    {"index": st.one_of(st.just(0), json_values),
     "delta": st.one_of(st.fixed_dictionaries({"content": st.one_of(texts, json_values)}), json_values),
     "finish_reason": finish})
openai_usage = st.one_of(json_values, st.fixed_dictionaries(
    {"prompt_tokens": counts, "completion_tokens": counts},
    optional={"prompt_tokens_details": st.one_of(json_values, st.fixed_dictionaries({"cached_tokens": counts}))}))
openai_chunks = st.fixed_dictionaries(
    {"choices": st.one_of(st.lists(openai_choice, max_size=2), json_values)},
    optional={"usage": openai_usage, "model": json_values, "error": json_values})


def sse_event(name: str | None, data: Any) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


noise = st.binary(max_size=24)  # bytes that are not an event: bad UTF-8, half a line, a bare "data:"


@st.composite
def openai_streams(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.one_of(openai_chunks.map(lambda c: sse_event(None, c)), noise), max_size=6))
    if draw(st.booleans()):
        parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


anthropic_usage = st.one_of(json_values, st.fixed_dictionaries(
    {}, optional={"input_tokens": counts, "output_tokens": counts, "cache_read_input_tokens": counts,
                  "cache_creation_input_tokens": counts}))
anthropic_message = st.one_of(json_values, st.fixed_dictionaries(
    {"id": st.just("msg_1"), "type": st.just("message"), "role": st.just("assistant"),
     "model": st.one_of(st.just("claude-x"), json_values), "content": st.just([]), "usage": anthropic_usage}))


def anthropic_event(name: str, body: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    return body.map(lambda data: sse_event(name, {"type": name, **data}))


anthropic_events = st.one_of(
    anthropic_event("message_start", st.fixed_dictionaries({"message": anthropic_message})),
    anthropic_event("content_block_start", st.fixed_dictionaries({"index": st.just(0), "content_block": json_values})),
    anthropic_event("content_block_delta", st.fixed_dictionaries(
        {"index": st.just(0), "delta": st.one_of(
            st.fixed_dictionaries({"type": st.just("text_delta"), "text": st.one_of(texts, json_values)}),
            json_values)})),
    anthropic_event("message_delta", st.fixed_dictionaries(
        {"delta": st.one_of(st.fixed_dictionaries({"stop_reason": finish}), json_values),
         "usage": anthropic_usage})),
    anthropic_event("message_stop", st.just({})),
    anthropic_event("ping", st.just({})),
    st.tuples(st.text(max_size=10), json_values).map(lambda pair: sse_event(pair[0] or None, pair[1])),
    noise,
)


@st.composite
def anthropic_streams(draw: st.DrawFn) -> bytes:
    return b"".join(draw(st.lists(anthropic_events, max_size=7)))


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_fake_server() as fake:
        yield fake


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One loop and one client per parser for every example: a fresh SDK client per example costs ~0.2 s."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def make(loop: asyncio.AbstractEventLoop, factory: Any, config: ProviderSettings) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FUZZ_KEY", KEY)
        provider = factory(config, ProviderContext(PromptSettings(root=Path("."), timeout_s=5), Path(".")))
    yield provider
    loop.run_until_complete(provider.aclose())


@pytest.fixture(scope="module")
def openai(server: FakeServer, loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    yield from make(loop, openai_provider,
                    ProviderSettings("local", "openai", base_url=server.openai_base_url, api_key_env="FUZZ_KEY"))


@pytest.fixture(scope="module")
def anthropic(server: FakeServer, loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    yield from make(loop, anthropic_provider, ProviderSettings("anthropic", "anthropic",
                                                               base_url=server.anthropic_base_url,
                                                               api_key_env="FUZZ_KEY"))


def check_outcome(loop: asyncio.AbstractEventLoop, provider: Any, request: Request) -> None:
    try:
        completion = loop.run_until_complete(provider.complete(request))
    except ProviderError as error:
        assert error.message and error.kind
        return
    assert isinstance(completion, Completion)
    completion.text.encode("utf-8")
    assert completion.text == "".join(completion.chunks)
    for chunk in completion.chunks:
        chunk.encode("utf-8")
    if completion.usage is not None:
        for count in (completion.usage.input_tokens, completion.usage.output_tokens,
                      completion.usage.cached_input_tokens):
            assert isinstance(count, int) and 0 <= count <= 3 * MAX_TOKEN_COUNT
    for value in (completion.resolved_model, completion.finish_reason):
        assert value is None or isinstance(value, str)


@FUZZ
@given(body=openai_streams())
def test_openai_stream_parser_names_every_failure(server: FakeServer, loop: asyncio.AbstractEventLoop, openai: Any,
                                                  body: bytes) -> None:
    server.config.raw_body = body
    check_outcome(loop, openai, Request("local:m", ({"role": "user", "content": "x"},), {}))


@FUZZ
@given(body=anthropic_streams())
def test_anthropic_stream_parser_names_every_failure(server: FakeServer, loop: asyncio.AbstractEventLoop,
                                                     anthropic: Any, body: bytes) -> None:
    server.config.raw_body = body
    check_outcome(loop, anthropic, Request("anthropic:claude-test-1", ({"role": "user", "content": "x"},), {}))
