"""The one retry policy, run through a rate limiter. Retryable ProviderErrors (429, 5xx, timeouts,
connection errors, cut streams) are tried again after a jittered wait, holding no limiter slot while they
wait. Waiting out rate limits (429, 529) is bounded by time (the case's deadline); other errors by a
count of retries."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from promptci.errors import ProviderError, RateLimited
from promptci.ratelimit import AdaptiveLimiter, LimitPolicy, Outcome
from promptci.types import Completion

log = logging.getLogger("promptci.retrying")

LIMIT_STATUSES = (429, 529)  # too many requests, overloaded: the endpoint's limit, not this request


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4  # retries after other errors (5xx, cut streams, timeouts); rate limits are bounded by time
    base_wait_s: float = 0.5  # first backoff; doubles each retry, plus up to this much jitter
    max_wait_s: float = 20.0  # backoff cap (before jitter)
    max_retry_after_s: float = 60.0  # a server's Retry-After is honoured up to this


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


def is_rate_limit(exc: ProviderError) -> bool:
    return isinstance(exc, RateLimited) or exc.status in LIMIT_STATUSES


def default_sleep(seconds: float) -> Awaitable[None]:
    """Every retry and limiter wait; tests replace this module attribute to remove real waits."""
    return asyncio.sleep(seconds)


def default_clock() -> float:
    """The clock deadlines are read on; tests replace it to move time on by the waits they skip."""
    return time.monotonic()


def backoff_s(policy: RetryPolicy, attempt: int, exc: ProviderError, rng: random.Random) -> float:
    """The wait after failed attempt number `attempt`: the error's Retry-After (capped) or exponential backoff,
    always with jitter so that attempts failed at the same instant do not all come back at the same instant."""
    jitter = rng.uniform(0.0, policy.base_wait_s)
    if exc.retry_after is not None:
        return min(max(float(exc.retry_after), 0.0), policy.max_retry_after_s) + jitter
    return min(policy.base_wait_s * 2 ** (attempt - 1), policy.max_wait_s) + jitter


def unlimited(clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]) -> AdaptiveLimiter:
    """A limiter that admits everything: retries without rate limiting (library callers, tests)."""
    return AdaptiveLimiter(LimitPolicy(max_concurrency=sys.maxsize), clock=clock, sleep=sleep)


# One generator for every call's backoff jitter (seeding one per request cost ~10 µs each on a 1,000-case run).
JITTER = random.Random()


async def call_with_retries(call: Callable[[], Awaitable[Completion]], policy: RetryPolicy,
                            sleep: Callable[[float], Awaitable[None]] | None = None, *,
                            limiter: AdaptiveLimiter | None = None, tokens: int = 0,
                            limit_wait_s: float | None = None, clock: Callable[[], float] | None = None,
                            rng: random.Random | None = None) -> Completion:
    """Await call() inside a limiter slot until it succeeds or fails for good.

    Returns the completion with `attempts` set. Raises the last ProviderError with `attempts`: at once for a
    non-retryable one (401, 404, other 4xx); after `policy.retries` retries of other errors; for rate limits,
    when the next try could not start within `limit_wait_s` of the first (None: they count as retries too).
    """
    sleep = sleep or (lambda seconds: default_sleep(seconds))
    clock = clock or (lambda: default_clock())
    limiter = limiter or unlimited(clock, sleep)
    rng = rng or JITTER
    deadline: float | None = None
    errors = 0
    last: ProviderError | None = None
    for attempt in range(1, sys.maxsize):
        try:
            slot = await limiter.acquire(tokens, deadline)
        except RateLimited:  # the next start the limits allow lies past the deadline: give up now
            assert last is not None  # the first acquire has no deadline
            raise given_up(last, attempt - 1) from None
        if deadline is None and limit_wait_s is not None:
            deadline = clock() + limit_wait_s
        try:
            completion = await call()
        except ProviderError as exc:
            limited = is_rate_limit(exc)
            own_wait = limiter.release(slot, Outcome.LIMITED if limited else Outcome.ERROR, exc.headers)
            last, errors = exc, errors + (0 if limited and deadline is not None else 1)
            if not exc.retryable or errors > policy.retries:
                raise given_up(exc, attempt) from None
        except BaseException:
            limiter.release(slot, Outcome.ERROR)
            raise
        else:
            limiter.release(slot, Outcome.OK, completion.limit_headers)
            return dataclasses.replace(completion, attempts=attempt, limit_headers={})
        wait = backoff_s(policy, attempt, last, rng) if own_wait is None else min(own_wait, policy.max_retry_after_s)
        if limited and deadline is not None and clock() + wait > deadline:
            raise given_up(last, attempt)
        log.info("attempt %d failed (%s); retrying in %.2f s", attempt, last, wait)
        if limited:
            limiter.waited_s += wait  # waiting on a limit, as the run summary counts it
        if wait > 0:
            await sleep(wait)  # holding no slot
    raise AssertionError("unreachable")


def given_up(exc: ProviderError, attempts: int) -> ProviderError:
    exc.attempts = attempts
    return exc
