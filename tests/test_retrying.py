"""The retry policy: what is retried, how long it waits (recorded by a fake sleep), when it stops,
and one real-time check that a server's Retry-After is honoured."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from fakeserver import running_fake_server

from promptci.config import ProviderSettings, Settings
from promptci.errors import (
    AuthError,
    BadRequest,
    ConnectionFailed,
    ModelNotFound,
    ProviderError,
    RateLimited,
    ServerError,
    Timeout,
)
from promptci.providers.base import ProviderContext
from promptci.providers.openai import openai_provider
from promptci.retrying import RetryPolicy, call_with_retries
from promptci.types import Completion, Request

ANSWER = Completion(text="ok")


def scripted(outcomes: Sequence[ProviderError | Exception | None]) -> tuple[Callable[[], Awaitable[Completion]],
                                                                          list[int]]:
    """A call that raises the scripted errors in order, then answers; and its call counter."""
    calls = [0]

    async def call() -> Completion:
        calls[0] += 1
        outcome = outcomes[calls[0] - 1] if calls[0] <= len(outcomes) else None
        if outcome is not None:
            raise outcome
        return ANSWER

    return call, calls


DEFAULT_POLICY = RetryPolicy()
Outcome = Completion | ProviderError


def run(call: Callable[[], Awaitable[Completion]], policy: RetryPolicy = DEFAULT_POLICY) -> tuple[Outcome, list[float]]:
    """The call's completion or final error, and the waits between attempts (never slept for real)."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def go() -> Outcome:
        try:
            return await call_with_retries(call, policy, sleep=sleep)
        except ProviderError as exc:
            return exc

    return asyncio.run(go()), waits


def test_a_first_success_takes_one_attempt_and_no_wait() -> None:
    call, calls = scripted([])
    result, waits = run(call)
    assert result == ANSWER and isinstance(result, Completion) and result.attempts == 1
    assert calls == [1] and waits == []


@pytest.mark.parametrize("error", [RateLimited("r"), ServerError("s"), Timeout("t"), ConnectionFailed("c")])
def test_retryable_errors_are_retried_until_success(error: ProviderError) -> None:
    call, calls = scripted([error, error])
    result, waits = run(call)
    assert isinstance(result, Completion) and result.attempts == 3 and result.text == "ok"
    assert calls == [3] and len(waits) == 2


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    call, _ = scripted([ServerError("down")] * 6)
    policy = RetryPolicy(retries=6, base_wait_s=0.5, max_wait_s=3.0)
    result, waits = run(call, policy)
    assert isinstance(result, Completion) and result.attempts == 7
    floors = [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    for wait, floor in zip(waits, floors, strict=True):
        assert floor <= wait <= min(floor + 0.5, 3.0)
    assert len(set(waits[:3])) == 3


def test_retry_after_is_honoured_instead_of_backoff() -> None:
    call, _ = scripted([RateLimited("slow down", 429, retry_after=7.0), RateLimited("again", 429, retry_after=0.25)])
    result, waits = run(call)
    assert isinstance(result, Completion) and result.attempts == 3
    assert waits == [7.0, 0.25]


def test_retry_after_is_capped() -> None:
    call, _ = scripted([RateLimited("come back in an hour", 429, retry_after=3600.0)])
    _, waits = run(call, RetryPolicy(max_retry_after_s=60.0))
    assert waits == [60.0]


@pytest.mark.parametrize("error", [AuthError("a", 401), ModelNotFound("m", 404), BadRequest("b", 400)])
def test_non_retryable_errors_raise_at_once(error: ProviderError) -> None:
    call, calls = scripted([error])
    result, waits = run(call)
    assert result is error
    assert result.attempts == 1  # type: ignore[attr-defined]
    assert calls == [1] and waits == []


def test_exhausted_retries_raise_the_last_error_with_attempts() -> None:
    errors = [ServerError(f"failure {n}", 500) for n in range(1, 10)]
    call, calls = scripted(errors)
    result, waits = run(call, RetryPolicy(retries=3))
    assert result is errors[3]
    assert str(result) == "failure 4" and result.status == 500
    assert result.attempts == 4  # type: ignore[attr-defined]
    assert calls == [4] and len(waits) == 3


def test_zero_retries_means_one_attempt() -> None:
    call, calls = scripted([Timeout("t")])
    result, waits = run(call, RetryPolicy(retries=0))
    assert isinstance(result, Timeout) and result.attempts == 1  # type: ignore[attr-defined]
    assert calls == [1] and waits == []


def test_an_unexpected_exception_is_not_retried_or_wrapped() -> None:
    call, calls = scripted([KeyError("bug")])
    with pytest.raises(KeyError):
        run(call)
    assert calls == [1]


@pytest.mark.real_waits
def test_a_real_retry_after_from_the_server_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured, not mocked: the second request arrives Retry-After seconds after the 429."""
    monkeypatch.setenv("FAKE_KEY", "sk-fake")
    with running_fake_server(retry_after="0.3") as server:
        server.script("429")
        config = ProviderSettings("local", "openai", base_url=server.openai_base_url, api_key_env="FAKE_KEY")
        provider = openai_provider(config, ProviderContext(Settings(root=Path(".")), Path(".")))
        request = Request("local:m", ({"role": "user", "content": "hi"},))

        async def go() -> Completion:
            try:
                return await call_with_retries(lambda: provider.complete(request), RetryPolicy(base_wait_s=5.0))
            finally:
                await provider.aclose()

        started = time.perf_counter()
        completion = asyncio.run(go())
        elapsed = time.perf_counter() - started
    first, second = (r.received_at for r in server.requests)
    assert completion.text == "hi" and completion.attempts == 2
    assert 0.29 <= second - first < 1.0  # Retry-After, not the 5 s backoff
    assert elapsed < 2.0
