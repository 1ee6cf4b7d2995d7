"""The openai provider through the real SDK over HTTP to the fake server: streaming, params, faults,
retries, keys, pooling and the rpm limiter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from calling import complete, fails_with
from fakeserver import FakeServer, running_fake_server

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
from promptci.limitheaders import parse_retry_after
from promptci.providers.base import ProviderContext
from promptci.providers.openai import OpenAIProvider, openai_provider
from promptci.retrying import RetryPolicy, call_with_retries
from promptci.types import Completion, Request

KEY = "sk-test-0penai-s3cret-value"
SYSTEM = {"role": "system", "content": "answer in one line"}
USER = {"role": "user", "content": "what is the capital of France"}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("LOCAL_KEY", KEY)
    with running_fake_server(chunks=3) as fake:
        yield fake


def make_provider(server: FakeServer, timeout_s: float = 5.0, **settings: Any) -> OpenAIProvider:
    config = ProviderSettings("local", "openai", base_url=server.openai_base_url, api_key_env="LOCAL_KEY", **settings)
    ctx = ProviderContext(Settings(root=Path("."), timeout_s=timeout_s), Path("."))
    return openai_provider(config, ctx)


def ask(model: str = "local:llama3.1:8b", **params: Any) -> Request:
    return Request(model, (SYSTEM, USER), params)


def test_streams_text_chunks_usage_timing_and_resolved_model(server: FakeServer) -> None:
    server.config.latency_s, server.config.ttft_s = 0.12, 0.06
    started = time.perf_counter()
    completion = complete(make_provider(server), ask())
    call_ms = (time.perf_counter() - started) * 1000
    assert completion.text == "what is the capital of France"
    assert completion.chunks == ("what is th", "e capital ", "of France")
    assert completion.usage is not None
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (10, 6)
    assert completion.resolved_model == "llama3.1:8b-2024-07-18"
    assert completion.finish_reason == "stop"
    assert completion.ttft_ms is not None and 55 <= completion.ttft_ms < completion.latency_ms
    assert 115 <= completion.latency_ms <= call_ms  # the request's own time: no more than the call took
    body = server.requests[0].body
    assert body["model"] == "llama3.1:8b"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [SYSTEM, USER]  # the system message stays first in messages


def test_cached_input_tokens_are_read_from_prompt_tokens_details(server: FakeServer) -> None:
    server.config.cached_tokens = 4
    completion = complete(make_provider(server), ask())
    assert completion.usage is not None and completion.usage.cached_input_tokens == 4


def test_params_map_onto_the_body_and_unknown_ones_go_in_extra_body(server: FakeServer) -> None:
    complete(make_provider(server), ask(temperature=0, max_tokens=3, top_p=0.5, seed=7, stop=["\n"], top_k=5))
    body = server.requests[0].body
    assert {k: body[k] for k in ("temperature", "max_tokens", "top_p", "seed", "stop", "top_k")} == {
        "temperature": 0, "max_tokens": 3, "top_p": 0.5, "seed": 7, "stop": ["\n"], "top_k": 5}
    assert "response_format" not in body


def test_an_answer_cut_by_max_tokens_reports_length(server: FakeServer) -> None:
    completion = complete(make_provider(server), ask(max_tokens=2))
    assert completion.text == "what is"
    assert completion.finish_reason == "length"


def test_json_output_sends_response_format(server: FakeServer) -> None:
    complete(make_provider(server), Request("local:m", (USER,), {}, output="json"))
    assert server.requests[0].body["response_format"] == {"type": "json_object"}


def test_a_reserved_param_is_a_bad_request_without_a_request(server: FakeServer) -> None:
    error = fails_with(make_provider(server), ask(stream=False))
    assert isinstance(error, BadRequest) and "'stream'" in str(error)
    assert server.total == 0


FAULT_CLASSES = {
    "429": RateLimited, "500": ServerError, "529": ServerError, "hang": Timeout, "malformed": ServerError,
    "cut": ConnectionFailed, "truncate": ConnectionFailed, "401": AuthError, "404": ModelNotFound,
    "400": BadRequest,
}


@pytest.mark.parametrize("fault", sorted(FAULT_CLASSES))
def test_each_fault_is_classified(server: FakeServer, fault: str) -> None:
    server.config.hang_s = 30  # far past every timeout here; a broken timeout answers late instead of hanging
    server.script(fault)
    error = fails_with(make_provider(server, timeout_s=0.3 if fault == "hang" else 30), ask())
    assert type(error) is FAULT_CLASSES[fault]
    assert error.retryable is (fault not in ("400", "401", "404"))
    assert error.stops_model is (fault in ("401", "404"))
    assert KEY not in str(error)


def test_rate_limited_carries_retry_after(server: FakeServer) -> None:
    server.config.retry_after = "0.7"
    server.script("429")
    error = fails_with(make_provider(server), ask())
    assert isinstance(error, RateLimited) and error.status == 429 and error.retry_after == 0.7


def test_auth_and_not_found_messages_name_the_variable_and_the_model(server: FakeServer) -> None:
    server.script("401", "404")
    auth = fails_with(make_provider(server), ask())
    missing = fails_with(make_provider(server), ask("local:no-such-model"))
    assert str(auth).startswith("authentication failed for provider 'local' (check LOCAL_KEY)")
    assert str(missing).startswith("model 'no-such-model' not found at provider 'local'")


@pytest.mark.parametrize("fault", ["429", "500", "hang", "malformed", "cut", "truncate"])
def test_retryable_faults_recover_on_retry(server: FakeServer, fault: str) -> None:
    server.config.hang_s = 30  # far past every timeout here; a broken timeout answers late instead of hanging
    server.config.retry_after = "0.4"
    server.script(fault)
    waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    provider = make_provider(server, timeout_s=2.0 if fault == "hang" else 30)  # the retry answers in ms

    async def go() -> Completion:
        try:
            return await call_with_retries(lambda: provider.complete(ask()), RetryPolicy(), sleep=record_wait)
        finally:
            await provider.aclose()

    completion = asyncio.run(go())
    assert completion.text == "what is the capital of France"
    assert completion.attempts == 2
    assert server.total == 2
    assert len(waits) == 1
    if fault == "429":
        assert 0.4 <= waits[0] <= 0.45, waits  # the Retry-After, with jitter


@pytest.mark.parametrize("fault", ["401", "404"])
def test_auth_and_not_found_fail_fast_without_retries(server: FakeServer, fault: str) -> None:
    server.script(fault, fault, fault)
    provider = make_provider(server)

    async def go() -> Completion:
        try:
            return await call_with_retries(lambda: provider.complete(ask()), RetryPolicy(retries=4))
        finally:
            await provider.aclose()

    with pytest.raises(ProviderError) as caught:
        asyncio.run(go())
    assert caught.value.stops_model
    assert caught.value.attempts == 1  # type: ignore[attr-defined]
    assert server.total == 1


def test_missing_key_names_the_variable_and_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    ctx = ProviderContext(Settings(root=Path(".")), Path("."))
    with pytest.raises(MissingKey) as caught:
        openai_provider(ProviderSettings("openai", "openai"), ctx)
    assert str(caught.value) == ("OPENAI_API_KEY is not set (needed by provider 'openai'); "
                                 "export it or use --replay")


def test_the_key_is_sent_but_never_appears_in_error_text(server: FakeServer) -> None:
    server.config.error_message = f"bad credentials {KEY} were given"
    server.script("401", "500", "400")
    provider = make_provider(server)
    errors = [fails_with(provider, ask()) for _ in range(3)]
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    for error in errors:
        assert KEY not in str(error) and KEY not in repr(error.info())
        assert "[redacted]" in str(error)
    assert KEY not in repr(provider) and KEY not in repr(provider.endpoint)


def test_a_refused_connection_is_retryable(server: FakeServer) -> None:
    provider = make_provider(server)
    server.stop()
    error = fails_with(provider, ask())
    assert isinstance(error, ConnectionFailed) and error.retryable
    assert server.openai_base_url in str(error)


def test_one_pooled_client_serves_every_request(server: FakeServer) -> None:
    provider = make_provider(server)

    async def go() -> tuple[bool, int]:
        first = provider.client()
        await asyncio.gather(*(provider.complete(ask()) for _ in range(5)))
        await provider.complete(ask())
        same = provider.client() is first
        await provider.aclose()
        return same, first.max_retries

    same, max_retries = asyncio.run(go())
    assert same and max_retries == 0
    assert server.total == 6 and server.connections <= 5


def test_azure_deployments_when_api_version_is_set(server: FakeServer) -> None:
    config = ProviderSettings("azure", "openai", base_url=server.url, api_key_env="LOCAL_KEY",
                              options={"api_version": "2024-10-21"})
    provider = openai_provider(config, ProviderContext(Settings(root=Path(".")), Path(".")))
    completion = complete(provider, ask("azure:my-deployment"))
    assert completion.text == "what is the capital of France"
    assert server.requests[0].path == "/openai/deployments/my-deployment/chat/completions"
    assert server.requests[0].query == "api-version=2024-10-21"


def test_retry_after_header_forms() -> None:
    now = 1_800_000_000.0  # an injected clock: the HTTP date reads back exactly, however slow the machine

    def retry_after_seconds(headers: dict[str, str]) -> float | None:
        return parse_retry_after(headers, now)

    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "0.25"}) == 0.25
    assert retry_after_seconds({"retry-after-ms": "300", "retry-after": "9"}) == 0.3
    in_ten = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 10))
    assert retry_after_seconds({"retry-after": in_ten}) == 10.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_rate_limit_headers_come_back_on_success_and_on_a_429_and_nothing_else(server: FakeServer) -> None:
    server.config.limit_rps, server.config.limit_burst = 0.001, 1.0  # one request, then the bucket is empty
    provider = make_provider(server)
    completion = complete(provider, ask())
    assert completion.limit_headers["x-ratelimit-limit-requests"] == "1"
    assert completion.limit_headers["x-ratelimit-remaining-requests"] == "0"
    assert all(name.startswith(("x-ratelimit-", "retry-after")) for name in completion.limit_headers)
    assert "content-type" not in completion.limit_headers and "x-request-id" not in completion.limit_headers

    async def refused() -> ProviderError:
        try:
            await provider.complete(ask())
        except ProviderError as exc:
            return exc
        finally:
            await provider.aclose()
        raise AssertionError("the empty bucket answered")

    error = asyncio.run(refused())
    assert error.status == 429 and error.headers["x-ratelimit-remaining-requests"] == "0"
    assert "retry-after" in error.headers
    assert all(name.startswith(("x-ratelimit-", "retry-after")) for name in error.headers)
