"""The anthropic provider through the real SDK over HTTP to the fake server: raw stream events, system
prompt, max_tokens default, params through extra_body, faults, retries and keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from calling import complete, fails_with
from fakeserver import MESSAGES_PATH, FakeServer, running_fake_server

from promptci.config import ProviderSettings, Settings
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
from promptci.providers.anthropic import AnthropicProvider, anthropic_provider
from promptci.providers.base import ProviderContext
from promptci.retrying import RetryPolicy, call_with_retries
from promptci.types import Completion, Request

KEY = "sk-ant-test-s3cret-value"
SYSTEM = {"role": "system", "content": "answer in one line"}
USER = {"role": "user", "content": "what is the capital of France"}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with running_fake_server(chunks=3, model_suffix="-20250929") as fake:
        yield fake


def make_provider(server: FakeServer, timeout_s: float = 5.0) -> AnthropicProvider:
    config = ProviderSettings("anthropic", "anthropic", base_url=server.anthropic_base_url)
    ctx = ProviderContext(Settings(root=Path("."), timeout_s=timeout_s), Path("."))
    return anthropic_provider(config, ctx)


# Not a real model name: the SDK warns (DeprecationWarning, an error under our pytest config) on some real ones.
def ask(model: str = "anthropic:claude-test-1", **params: Any) -> Request:
    return Request(model, (SYSTEM, USER), params)


def test_streams_text_chunks_usage_timing_and_resolved_model(server: FakeServer) -> None:
    server.config.latency_s, server.config.ttft_s = 0.12, 0.06
    server.config.cached_tokens = 3
    started = time.perf_counter()
    completion = complete(make_provider(server), ask())
    call_ms = (time.perf_counter() - started) * 1000
    assert completion.text == "what is the capital of France"
    assert completion.chunks == ("what is th", "e capital ", "of France")
    assert completion.usage is not None
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (10, 6)
    assert completion.usage.cached_input_tokens == 3
    assert completion.resolved_model == "claude-test-1-20250929"
    assert completion.finish_reason == "end_turn"
    assert completion.ttft_ms is not None and 55 <= completion.ttft_ms < completion.latency_ms
    assert 115 <= completion.latency_ms <= call_ms  # the request's own time: no more than the call took
    recorded = server.requests[0]
    assert recorded.path == MESSAGES_PATH
    assert recorded.body["model"] == "claude-test-1" and recorded.body["stream"] is True


def test_system_messages_go_in_system_and_max_tokens_defaults_to_1024(server: FakeServer) -> None:
    second_system = {"role": "system", "content": "be polite"}
    complete(make_provider(server), Request("anthropic:c", (SYSTEM, second_system, USER)))
    body = server.requests[0].body
    assert body["system"] == "answer in one line\n\nbe polite"
    assert body["messages"] == [USER]
    assert body["max_tokens"] == 1024


def test_no_system_key_without_a_system_message(server: FakeServer) -> None:
    complete(make_provider(server), Request("anthropic:c", (USER,)))
    assert "system" not in server.requests[0].body


def test_sampling_params_travel_in_extra_body_and_stop_becomes_stop_sequences(server: FakeServer) -> None:
    complete(make_provider(server), ask(temperature=0, top_p=0.9, top_k=5, max_tokens=50, stop="\n"))
    body = server.requests[0].body
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0, 0.9, 5)
    assert body["max_tokens"] == 50
    assert body["stop_sequences"] == ["\n"] and "stop" not in body


def test_an_answer_cut_by_max_tokens_reports_max_tokens(server: FakeServer) -> None:
    completion = complete(make_provider(server), ask(max_tokens=3))
    assert completion.text == "what is the"
    assert completion.finish_reason == "max_tokens"
    assert completion.usage is not None and completion.usage.output_tokens == 3


def test_json_output_adds_nothing_to_the_request(server: FakeServer) -> None:
    complete(make_provider(server), Request("anthropic:c", (USER,), output="json"))
    assert "response_format" not in server.requests[0].body


def test_the_key_is_sent_as_a_bearer_token(server: FakeServer) -> None:
    complete(make_provider(server), ask())
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


FAULT_CLASSES = {
    "429": RateLimited, "500": ServerError, "529": ServerError, "hang": Timeout, "malformed": ServerError,
    "cut": ConnectionFailed, "truncate": ConnectionFailed, "400": BadRequest, "401": AuthError,
    "404": ModelNotFound,
}


@pytest.mark.parametrize("fault", sorted(FAULT_CLASSES))
def test_each_fault_is_classified(server: FakeServer, fault: str) -> None:
    server.config.hang_s = 30  # far past every timeout here; a broken timeout answers late instead of hanging
    server.script(fault)
    error = fails_with(make_provider(server, timeout_s=0.3 if fault == "hang" else 30), ask())
    assert type(error) is FAULT_CLASSES[fault]
    assert error.retryable is (fault not in ("400", "401", "404"))
    assert error.stops_model is (fault in ("401", "404"))


def test_error_messages_carry_the_server_message_and_status(server: FakeServer) -> None:
    server.config.retry_after_ms = "250"
    server.script("429", "400", "401", "404")
    rate = fails_with(make_provider(server), ask())
    bad = fails_with(make_provider(server), ask())
    auth = fails_with(make_provider(server), ask())
    missing = fails_with(make_provider(server), ask("anthropic:claude-nope"))
    assert isinstance(rate, RateLimited) and rate.retry_after == 0.25
    assert str(bad) == "provider 'anthropic' rejected the request (HTTP 400: Invalid request)"
    assert str(auth).startswith("authentication failed for provider 'anthropic' (check ANTHROPIC_API_KEY)")
    assert str(missing).startswith("model 'claude-nope' not found at provider 'anthropic'")


@pytest.mark.parametrize("fault", ["529", "cut", "truncate", "malformed"])
def test_retryable_faults_recover_on_retry(server: FakeServer, fault: str) -> None:
    server.script(fault, fault)
    waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    provider = make_provider(server)

    async def go() -> Completion:
        try:
            return await call_with_retries(lambda: provider.complete(ask()), RetryPolicy(), sleep=record_wait)
        finally:
            await provider.aclose()

    completion = asyncio.run(go())
    assert completion.text == "what is the capital of France"
    assert completion.attempts == 3 and server.total == 3
    assert len(waits) == 2 and waits[0] < waits[1]  # exponential: 0.5-1.0 s, then 1.0-1.5 s


def test_missing_key_names_the_variable_and_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "")
    ctx = ProviderContext(Settings(root=Path(".")), Path("."))
    with pytest.raises(MissingKey) as caught:
        anthropic_provider(ProviderSettings("claude", "anthropic"), ctx)
    assert str(caught.value) == ("ANTHROPIC_API_KEY is not set (needed by provider 'claude'); "
                                 "export it or use --replay")


def test_the_key_never_appears_in_error_text(server: FakeServer) -> None:
    server.config.error_message = f"key {KEY} is not valid"
    server.script("401", "429", "529")
    provider = make_provider(server)
    for _ in range(3):
        error = fails_with(provider, ask())
        assert KEY not in str(error) and "[redacted]" in str(error)


def test_a_refused_connection_is_retryable(server: FakeServer) -> None:
    provider = make_provider(server)
    server.stop()
    error = fails_with(provider, ask())
    assert isinstance(error, ConnectionFailed) and error.retryable


def test_rate_limit_headers_come_back_on_success_and_on_a_429_and_nothing_else(server: FakeServer) -> None:
    server.config.limit_rps, server.config.limit_burst = 0.001, 1.0
    provider = make_provider(server)
    completion = complete(provider, ask())
    assert completion.limit_headers["anthropic-ratelimit-requests-limit"] == "1"
    assert completion.limit_headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert all(name.startswith(("anthropic-ratelimit-", "retry-after")) for name in completion.limit_headers)

    async def refused() -> ProviderError:
        try:
            await provider.complete(ask())
        except ProviderError as exc:
            return exc
        finally:
            await provider.aclose()
        raise AssertionError("the empty bucket answered")

    error = asyncio.run(refused())
    assert error.status == 429 and error.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert all(name.startswith(("anthropic-ratelimit-", "retry-after")) for name in error.headers)
