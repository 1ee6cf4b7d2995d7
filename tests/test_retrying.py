"""The retry policy: what is retried, how long it waits (recorded by a fake sleep), when it stops,
and one real-time check that a server's Retry-After is honoured."""

from __future__ import annotations

import asyncio
import contextlib
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
from promptci.ratelimit import AdaptiveLimiter, LimitPolicy
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
        assert floor <= wait <= floor + 0.5  # the cap bounds the backoff; the jitter comes on top, always
    assert len(set(waits)) == 6, "waits at the cap are jittered too"


def test_retry_after_is_honoured_instead_of_backoff() -> None:
    call, _ = scripted([RateLimited("slow down", 429, retry_after=7.0), RateLimited("again", 429, retry_after=0.25)])
    result, waits = run(call)
    assert isinstance(result, Completion) and result.attempts == 3
    assert 7.0 <= waits[0] <= 7.5 and 0.25 <= waits[1] <= 0.75, waits  # with jitter: no retry at the same instant


def test_retry_after_is_capped() -> None:
    call, _ = scripted([RateLimited("come back in an hour", 429, retry_after=3600.0)])
    _, waits = run(call, RetryPolicy(max_retry_after_s=60.0))
    assert len(waits) == 1 and 60.0 <= waits[0] <= 60.5


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


def test_a_real_retry_after_from_the_server_is_honoured(monkeypatch: pytest.MonkeyPatch,
                                                       no_backoff_waits: list[float]) -> None:
    """The Retry-After of a real 429, through the SDK over HTTP, is what the retry waits (recorded, not slept):
    0.3 s and its jitter, never the 5 s backoff."""
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

        completion = asyncio.run(go())
        sent = server.total
    assert completion.text == "hi" and completion.attempts == 2 and sent == 2
    assert len(no_backoff_waits) == 1 and 0.3 <= no_backoff_waits[0] < 5.0, no_backoff_waits  # backoff: >= 5 s


# Through a limiter: rate limits are waited out until a deadline, holding no slot


class FakeTime:
    """A clock that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def limited_run(call: Callable[[], Awaitable[Completion]], policy: RetryPolicy, limit_wait_s: float | None,
                concurrency: int = 4) -> tuple[Outcome, FakeTime, AdaptiveLimiter]:
    time_ = FakeTime()
    limiter = AdaptiveLimiter(LimitPolicy(max_concurrency=concurrency), clock=time_.clock, sleep=time_.sleep)

    async def go() -> Outcome:
        try:
            return await call_with_retries(call, policy, time_.sleep, limiter=limiter, limit_wait_s=limit_wait_s,
                                           clock=time_.clock)
        except ProviderError as exc:
            return exc

    return asyncio.run(go()), time_, limiter


def too_many(retry_after: float | None = None) -> RateLimited:
    return RateLimited("slow down", 429, retry_after)


def test_429s_do_not_use_up_the_retries_when_a_deadline_bounds_them() -> None:
    call, calls = scripted([too_many()] * 8)
    result, _, limiter = limited_run(call, RetryPolicy(retries=1, base_wait_s=0.1, max_wait_s=1.0), 60.0)
    assert isinstance(result, Completion) and result.attempts == 9 and calls == [9]
    assert limiter.stats().limited == 8 and limiter.in_flight == 0


def test_429s_give_up_at_the_deadline_with_the_last_429_and_its_attempts() -> None:
    call, calls = scripted([too_many(retry_after=4.0)] * 100)
    result, time_, limiter = limited_run(call, RetryPolicy(retries=1), 10.0)
    assert isinstance(result, RateLimited) and result.attempts == calls[0]
    assert calls[0] == 3  # waits of 4 s from the first start: 4, 8, and the next would pass 10
    assert time_.now - 1000.0 <= 10.0 and limiter.in_flight == 0


def test_other_errors_still_count_against_the_retries_beside_429s() -> None:
    call, calls = scripted([too_many(), ServerError("s", 500), too_many(), ServerError("s", 500), too_many()])
    result, _, _ = limited_run(call, RetryPolicy(retries=1, base_wait_s=0.1), 60.0)
    assert isinstance(result, ServerError) and result.attempts == 4 and calls == [4]


def test_529_overloaded_counts_as_a_rate_limit() -> None:
    call, calls = scripted([ServerError("overloaded", 529)] * 5)
    result, _, limiter = limited_run(call, RetryPolicy(retries=0, base_wait_s=0.1), 60.0)
    assert isinstance(result, Completion) and calls == [6] and limiter.stats().limited == 5


def test_without_a_deadline_429s_count_as_retries() -> None:
    call, calls = scripted([too_many()] * 10)
    result, _, _ = limited_run(call, RetryPolicy(retries=2, base_wait_s=0.1), None)
    assert isinstance(result, RateLimited) and result.attempts == 3 and calls == [3]


def test_a_case_waiting_out_a_429_holds_no_slot() -> None:
    """With one place in flight, a second case is sent while the first waits out its Retry-After."""
    time_ = FakeTime()
    limiter = AdaptiveLimiter(LimitPolicy(max_concurrency=1), clock=time_.clock, sleep=time_.sleep)
    order: list[str] = []
    first_tries = [0]
    second_sent = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        """The wait lasts until the other case is sent (an event, not 10 ms a loaded machine may not give it); if
        the waiting case held the slot, that never comes, and after a minute the order below says so."""
        order.append("first waits")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(second_sent.wait(), 60)
        time_.now += seconds

    async def first() -> Completion:
        first_tries[0] += 1
        order.append(f"first try {first_tries[0]}")
        if first_tries[0] == 1:
            raise too_many(retry_after=2.0)
        return ANSWER

    async def second() -> Completion:
        order.append("second sent")
        second_sent.set()
        return ANSWER

    async def go() -> None:
        policy = RetryPolicy()
        await asyncio.gather(
            call_with_retries(first, policy, slow_sleep, limiter=limiter, limit_wait_s=60.0, clock=time_.clock),
            call_with_retries(second, policy, time_.sleep, limiter=limiter, limit_wait_s=60.0, clock=time_.clock))

    asyncio.run(go())
    assert order == ["first try 1", "first waits", "second sent", "first try 2"]
    assert limiter.waited_s >= 2.0  # the Retry-After counts as time spent waiting on limits


def test_the_limiter_learns_from_the_headers_an_error_carries() -> None:
    exhausted = too_many()
    exhausted.headers = {"x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "0",
                         "x-ratelimit-reset-requests": "6s", "retry-after": "3"}
    call, calls = scripted([exhausted])
    result, time_, _ = limited_run(call, RetryPolicy(), 60.0)
    assert isinstance(result, Completion) and calls == [2]
    assert len(time_.waits) == 1 and 3.0 <= time_.waits[0] <= 3.4  # every start held for the Retry-After
