"""The one retry policy: retryable ProviderErrors (429, 5xx, timeouts, connection errors, cut streams)
are retried with exponential backoff and jitter, or after the server's Retry-After when it gives one."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

from promptci.errors import ProviderError
from promptci.types import Completion

log = logging.getLogger("promptci.retrying")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4  # attempts = retries + 1
    base_wait_s: float = 0.5  # first backoff; doubles each retry, plus up to this much jitter
    max_wait_s: float = 20.0  # backoff cap
    max_retry_after_s: float = 60.0  # a server's Retry-After is honoured up to this


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


class WaitRetryAfter(wait_base):
    """The error's retry_after (capped) when it has one, else the fallback backoff."""

    def __init__(self, fallback: wait_base, cap_s: float) -> None:
        self.fallback = fallback
        self.cap_s = cap_s

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(max(float(retry_after), 0.0), self.cap_s)
        return self.fallback(retry_state)


def backoff(policy: RetryPolicy) -> wait_base:
    exponential = wait_exponential_jitter(multiplier=policy.base_wait_s, max=policy.max_wait_s,
                                          jitter=policy.base_wait_s)
    return WaitRetryAfter(exponential, policy.max_retry_after_s)


def _log_retry(retry_state: RetryCallState) -> None:
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    log.info("attempt %d failed (%s); retrying in %.2f s", retry_state.attempt_number, exc, wait)


def default_sleep(seconds: float) -> Awaitable[None]:
    """The backoff sleep; tests replace this module attribute to remove real waits."""
    return asyncio.sleep(seconds)


async def call_with_retries(call: Callable[[], Awaitable[Completion]], policy: RetryPolicy,
                            sleep: Callable[[float], Awaitable[None]] | None = None) -> Completion:
    """Await call() until it succeeds, fails for good, or the retries run out.

    Returns the completion with `attempts` set. Raises the last ProviderError with an `attempts`
    attribute; a non-retryable one (401, 404, other 4xx) is raised at once, after one attempt.
    """
    attempts = 0
    retrying = AsyncRetrying(
        sleep=sleep or (lambda seconds: default_sleep(seconds)),
        retry=retry_if_exception(is_retryable),
        wait=backoff(policy),
        stop=stop_after_attempt(max(policy.retries, 0) + 1),
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                completion = await call()
                return dataclasses.replace(completion, attempts=attempts)
    except ProviderError as exc:
        exc.attempts = attempts
        raise
    raise AssertionError("tenacity stopped without a result or an error")  # unreachable with reraise=True
