"""Rate limits learned, not fought: one adaptive limiter per endpoint and model. Concurrency adapts by
AIMD, known limits (rpm/tpm) and the providers' rate-limit headers pace request starts, waits carry
jitter, and waiting for a limit is bounded by a deadline rather than an attempt count."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum

from promptci.errors import RateLimited
from promptci.limitheaders import LimitHeaders, parse_limit_headers

SLOW_START_WINDOW = 2  # the window a model client's limiter opens at (LimitPolicy.initial_window)


class Outcome(Enum):
    OK = "ok"  # the provider answered: the window may grow
    LIMITED = "limited"  # a 429 (or 529 overloaded): the window shrinks
    ERROR = "error"  # anything else (5xx, cut stream, timeout): says nothing about the limit


# AIMD and pacing arithmetic: pure


def grown(window: float, ceiling: int) -> float:
    """Additive increase: +1/window per success, so about +1 per window's worth of successes; at most ceiling."""
    return min(float(ceiling), window + 1.0 / window)


LIMITED_SLOW_START = 16  # past this window, slow start adds at most half of it a round trip (RFC 3742)


def slow_start_step(window: float) -> float:
    """What one answer adds to the window in slow start: 1 (doubling each round trip) up to LIMITED_SLOW_START,
    then LIMITED_SLOW_START / 2 a round trip, so the burst that finds an unknown limit stays small."""
    return 1.0 if window <= LIMITED_SLOW_START else LIMITED_SLOW_START / (2.0 * window)


def shrunk(window: float, factor: float) -> float:
    """Multiplicative decrease on a 429; never below 1."""
    return max(1.0, window * factor)


def refill_interval(limit: int | None, remaining: int | None, reset_s: float | None) -> float | None:
    """Seconds per unit the provider refills, read from its headers: (limit - remaining) units come back in
    reset_s. None when the headers do not say (a full bucket, a zero reset, missing values)."""
    if limit is None or remaining is None or reset_s is None or reset_s <= 0 or remaining >= limit:
        return None
    return reset_s / (limit - remaining)


def unit_interval(limit: int | None, reset_s: float | None, retry_after_s: float | None) -> float | None:
    """Seconds per unit from a 429 that says both when the next unit comes (Retry-After) and when the bucket
    is full again (the reset): the limit - 1 units between them. Exact where refill_interval can only bound
    it (remaining is rounded down); None when the headers do not allow it."""
    if limit is None or limit < 2 or reset_s is None or retry_after_s is None or reset_s <= retry_after_s:
        return None
    return (reset_s - retry_after_s) / (limit - 1)


def is_exhausted(said: LimitHeaders) -> bool:
    """The headers say a limit is used up."""
    return said.requests_remaining == 0 or said.tokens_remaining == 0


def has_limit_headers(said: LimitHeaders) -> bool:
    return said.requests_remaining is not None or said.tokens_remaining is not None


def is_limit_signal(said: LimitHeaders) -> bool:
    """Whether a 429 tells about the endpoint's limit. A provider that sends rate-limit headers and says
    there is room left answered 429 for another reason (one request too big, a burst elsewhere, a fault):
    the window stays. Without headers, a 429 may count (see LimitPolicy.bare_limit_share)."""
    return is_exhausted(said) or not has_limit_headers(said)


def is_near_the_wall(limit: int | None, remaining: int | None, in_flight: int, low_water: float) -> bool:
    """Few enough left that the requests already in flight could take them: time to pace."""
    if remaining is None:
        return False
    floor = max(float(in_flight), low_water * limit) if limit else float(in_flight)
    return remaining <= floor


@dataclass(frozen=True)
class LimitPolicy:
    """How one limiter behaves. max_concurrency is -j; rpm/tpm come from promptci.yaml."""

    max_concurrency: int
    rpm: float | None = None
    tpm: float | None = None
    # Slow start: the window opens at this size (None: at max_concurrency) and grows by one per answer (doubling
    # each round trip) until a 429 or until headers show room for all, so an unknown limit is met by a few
    # requests, not by -j of them at once.
    initial_window: int | None = None
    decrease_factor: float = 0.5
    jitter: float = 0.1  # every wait is stretched by a random 0..jitter share of itself
    min_jitter_s: float = 0.005  # ...and by at least up to this, so waits of a few ms still spread
    low_water: float = 0.2  # pace by the headers once remaining <= this share of the limit (or in-flight)
    # A 429 without rate-limit headers shrinks the window only when such 429s are at least this share of the
    # recent answers (and two or more): a limit refuses in bursts, a stray 429 (a fault, a neighbour) is alone.
    bare_limit_share: float = 0.25
    bare_limit_span: int = 16  # answers looked back on

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if not 0 < self.decrease_factor < 1:
            raise ValueError("decrease_factor must be between 0 and 1")


def unmet_limit(policy: LimitPolicy, tokens: int) -> str | None:
    """Why a request of `tokens` could never start under the policy's known limits (a minute's allowance
    smaller than one request: the bucket never holds it), with the fix; None when it can."""
    if policy.rpm is not None and policy.rpm < 1:
        return f"rpm: {policy.rpm:g} allows less than one request a minute (set rpm to 1 or more, or remove it)"
    if policy.tpm is not None and tokens > policy.tpm:
        return (f"tpm: {policy.tpm:g} is below one request's estimate of {tokens} tokens, input and max output "
                f"(set tpm to {tokens} or more, or max_tokens lower, or remove it)")
    return None


@dataclass(frozen=True)
class LimiterStats:
    """What the progress line and the summary show."""

    window: float
    in_flight: int
    requests_per_s: float | None  # the pace in force; None: not pacing
    limited: int  # answers that were 429s
    waited_s: float  # time spent waiting on limits, summed over requests
    is_limited_now: bool  # a rate-limit wait is in force


@dataclass(frozen=True)
class Slot:
    """One admitted attempt. The epoch lets one burst of 429s count as one decrease, not one per answer."""

    epoch: int
    tokens: int = 0


REFILL_MEMORY = 16  # observations of a refill interval the pace takes the longest of


@dataclass
class _Pace:
    request_interval_s: float = 0.0  # in force: the refill interval near the wall, 0 far from it
    token_interval_s: float = 0.0  # seconds per token, likewise
    observed: dict[str, tuple[int | None, deque[float]]] = field(default_factory=dict)  # kind -> (limit, recent)

    def refill_interval(self, kind: str, limit: int | None, observed: float | None) -> float | None:
        """The refill interval learned: the longest of the last REFILL_MEMORY observed for this limit. Each
        observation, reset / (limit - remaining), is at most the real interval (remaining is the bucket's level
        rounded down) by up to one unit's share, so the longest is the closest; only recent ones count, so one
        garbled header paces a few requests, not the rest of the run."""
        known_limit, recent = self.observed.get(kind, (None, deque()))
        if known_limit != limit:
            recent = deque(maxlen=REFILL_MEMORY)
            self.observed[kind] = (limit, recent)
        if observed is not None:
            recent.append(observed)
        return max(recent, default=None)


class AdaptiveLimiter:
    """Admits attempts to one endpoint (and model): at most `window` in flight, starts evenly paced.

    async with limiter.slot(tokens=n, deadline=t) as slot:
        answer = await send()
        slot.report(Outcome.OK, answer_headers)   # or LIMITED / ERROR; an exception counts as ERROR
    Hold no slot while waiting to retry: leave the block, wait, enter it again.
    """

    def __init__(self, policy: LimitPolicy, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None, wall_clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.window = float(min(policy.initial_window or policy.max_concurrency, policy.max_concurrency))
        self.is_slow_start = self.window < policy.max_concurrency
        self.in_flight = 0
        self.epoch = 0
        self.limited = 0
        self.waited_s = 0.0
        self._clock, self._sleep, self._wall_clock = clock, sleep, wall_clock
        self._rng = rng or random.Random()
        self._next_start = float("-inf")  # the earliest start the pacing allows
        self._blocked_until = float("-inf")  # from a Retry-After or remaining=0
        self._pace = _Pace()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._recent_bare: deque[bool] = deque(maxlen=policy.bare_limit_span)  # was each answer a bare 429

    # the interface

    @asynccontextmanager
    async def slot(self, tokens: int = 0, deadline: float | None = None) -> AsyncIterator[SlotHandle]:
        """Admit one attempt (waiting as the limits require); release it when the block ends."""
        handle = SlotHandle(self, await self.acquire(tokens, deadline))
        try:
            yield handle
        finally:
            handle.release_once(Outcome.ERROR, None)

    async def acquire(self, tokens: int = 0, deadline: float | None = None) -> Slot:
        """Wait for room in the window, then for the paced start. Raises RateLimited when the start the limits
        allow lies past `deadline` (the limiter's clock), without waiting for it."""
        await self._enter_window()
        try:
            await self._wait_for_start(tokens, deadline)
        except BaseException:
            self._leave_window()
            raise
        return Slot(self.epoch, tokens)

    def release(self, slot: Slot, outcome: Outcome, headers: Mapping[str, str] | None = None) -> float | None:
        """The attempt ended: learn from its outcome and headers, and give its place to the next one.

        Returns how long this attempt's caller should wait (holding no slot) before trying again: a 429's own
        Retry-After, jittered, when it did not block every start; 0.0 when acquire() will do the waiting; None
        when the limiter has no say (not a 429, or a 429 without Retry-After: use the retry policy's backoff).
        """
        self.in_flight -= 1
        own_wait = self._learn(slot, outcome, parse_limit_headers(headers, self._wall_clock()))
        self._wake()  # after learning, so a shrunk window admits no one
        return own_wait

    def stats(self) -> LimiterStats:
        interval = self._interval(0)
        return LimiterStats(self.window, self.in_flight, 1.0 / interval if interval > 0 else None, self.limited,
                            self.waited_s, self._blocked_until > self._clock())

    # the window (AIMD)

    async def _enter_window(self) -> None:
        if self.in_flight < int(self.window) and not self._waiters:
            self.in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # _wake hands the place over: in_flight already counts this attempt
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._leave_window()  # the place was handed over as we were cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def _leave_window(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.window):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    # pacing

    def _interval(self, tokens: int) -> float:
        """Seconds this start takes from the schedule: the slowest of the known and learned limits."""
        policy, pace = self.policy, self._pace
        known_request = 60.0 / policy.rpm if policy.rpm else 0.0
        known_token = 60.0 / policy.tpm if policy.tpm else 0.0
        return max(known_request, pace.request_interval_s, tokens * max(known_token, pace.token_interval_s))

    async def _wait_for_start(self, tokens: int, deadline: float | None) -> None:
        now = self._clock()
        start = max(now, self._next_start, self._blocked_until)
        if deadline is not None and start > max(now, deadline):  # a start the limits do not delay is never late
            raise RateLimited(f"rate limited: the next request could start in {start - now:.1f} s, "
                              f"after this case's deadline", 429, start - now)
        self._next_start = start + self._interval(tokens)  # claimed before the first await: no lock needed
        if start > now:
            wait = self._jittered(start - now)
            self.waited_s += wait
            await self._sleep(wait)

    def _jittered(self, wait: float) -> float:
        """The wait stretched at random, so attempts released at the same instant do not collide again."""
        return wait + self._rng.uniform(0.0, max(wait * self.policy.jitter, self.policy.min_jitter_s))

    # learning

    def _learn(self, slot: Slot, outcome: Outcome, said: LimitHeaders) -> float | None:
        now = self._clock()
        self._learn_pace(now, said)
        if outcome is Outcome.OK:
            self._grow(said)
        is_bare = outcome is Outcome.LIMITED and not has_limit_headers(said)
        self._recent_bare.append(is_bare)
        if outcome is not Outcome.LIMITED:
            return None
        self.limited += 1
        if not is_limit_signal(said) or (is_bare and not self._is_refusing_in_bursts()):
            return None if said.retry_after_s is None else self._jittered(said.retry_after_s)
        self.is_slow_start = False
        if slot.epoch == self.epoch:  # the first 429 of a burst: the others were sent before we knew
            self.window = shrunk(self.window, self.policy.decrease_factor)
            self.epoch += 1
        if said.retry_after_s is None:
            return None
        if is_exhausted(said):  # the whole endpoint is out: nobody starts before the Retry-After
            self._blocked_until = max(self._blocked_until, now + said.retry_after_s)
            return 0.0
        return self._jittered(said.retry_after_s)

    def _grow(self, said: LimitHeaders) -> None:
        ceiling = self.policy.max_concurrency
        has_room = said.requests_remaining is not None and said.requests_remaining >= 2 * ceiling
        if self.is_slow_start and not has_room:
            self.window = min(float(ceiling), self.window + slow_start_step(self.window))
        else:
            self.window = float(ceiling) if self.is_slow_start else grown(self.window, ceiling)
        self.is_slow_start = self.is_slow_start and self.window < ceiling

    def _is_refusing_in_bursts(self) -> bool:
        bare = sum(self._recent_bare)
        return bare >= 2 and bare >= self.policy.bare_limit_share * len(self._recent_bare)

    def _learn_pace(self, now: float, said: LimitHeaders) -> None:
        """Near the wall, pace at the refill rate the headers imply; at remaining 0, wait for the next unit
        (or for the reset, when the limit is not said); far from it, run free."""
        pace = self._pace
        if said.requests_remaining is not None:
            # the window, not only those in flight: what may be sent before the next answer tells more
            near = is_near_the_wall(said.requests_limit, said.requests_remaining,
                                    max(self.in_flight, int(self.window)), self.policy.low_water)
            interval = pace.refill_interval("requests", said.requests_limit, max(
                refill_interval(said.requests_limit, said.requests_remaining, said.requests_reset_s) or 0.0,
                unit_interval(said.requests_limit, said.requests_reset_s, said.retry_after_s) or 0.0) or None)
            pace.request_interval_s = interval if near and interval is not None else 0.0
            if said.requests_remaining == 0:
                self._block_for_next_unit(now, said.requests_limit, said.requests_reset_s)
        if said.tokens_remaining is not None:
            near = is_near_the_wall(said.tokens_limit, said.tokens_remaining, 0, self.policy.low_water)
            interval = pace.refill_interval("tokens", said.tokens_limit, refill_interval(
                said.tokens_limit, said.tokens_remaining, said.tokens_reset_s))
            pace.token_interval_s = interval if near and interval is not None else 0.0

    def _block_for_next_unit(self, now: float, limit: int | None, reset_s: float | None) -> None:
        if reset_s is None:
            return
        wait = reset_s / limit if limit else reset_s
        self._blocked_until = max(self._blocked_until, now + wait)


@dataclass
class SlotHandle:
    """What `async with limiter.slot()` gives: report the outcome once; leaving unreported counts as ERROR."""

    limiter: AdaptiveLimiter
    slot: Slot
    is_released: bool = field(default=False)

    def report(self, outcome: Outcome, headers: Mapping[str, str] | None = None) -> float | None:
        """Release the slot now (see AdaptiveLimiter.release for what the returned wait means)."""
        return self.release_once(outcome, headers)

    def release_once(self, outcome: Outcome, headers: Mapping[str, str] | None) -> float | None:
        if self.is_released:
            return None
        self.is_released = True
        return self.limiter.release(self.slot, outcome, headers)


class LimiterPool:
    """One limiter per (endpoint, model), made on first use with the endpoint's policy."""

    def __init__(self, policy_for: Callable[[str], LimitPolicy],
                 make: Callable[[LimitPolicy], AdaptiveLimiter] = AdaptiveLimiter) -> None:
        self._policy_for = policy_for
        self._make = make
        self._limiters: dict[tuple[str, str], AdaptiveLimiter] = {}

    def limiter(self, endpoint: str, model: str) -> AdaptiveLimiter:
        key = (endpoint, model)
        if key not in self._limiters:
            self._limiters[key] = self._make(self.policy(endpoint))
        return self._limiters[key]

    def policy(self, endpoint: str) -> LimitPolicy:
        return self._policy_for(endpoint)

    def stats(self) -> dict[tuple[str, str], LimiterStats]:
        return {key: limiter.stats() for key, limiter in self._limiters.items()}
