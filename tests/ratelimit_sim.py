"""A virtual-time simulation of the model client's sending against the fake server's token bucket: the real
limiter (promptci.ratelimit) and retry policy (promptci.retrying.call_with_retries), requests that take
`latency_s`, and fakelimits.RateBuckets deciding each arrival, on an asyncio loop whose clock only moves
when every task waits. Deterministic (seeded), and a 100-second run takes a fraction of a second."""

from __future__ import annotations

import asyncio
import math
import random
import selectors
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fakelimits import RateBuckets

from promptci.errors import RateLimited
from promptci.limitheaders import parse_retry_after
from promptci.ratelimit import AdaptiveLimiter, LimitPolicy
from promptci.retrying import RetryPolicy, call_with_retries
from promptci.types import Completion, Usage

NOW_EPOCH = 1_800_000_000.0


class _IdleSelector(selectors.BaseSelector):
    """A selector with nothing to wait for: select(timeout) moves the loop's virtual clock on by timeout."""

    def __init__(self, loop: VirtualLoop) -> None:
        self._loop = loop
        self._map: dict[Any, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = selectors.SelectorKey(fileobj, fileobj if isinstance(fileobj, int) else fileobj.fileno(), events, data)
        self._map[fileobj] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._map.pop(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("the simulation waits for nothing: a task waits on something never set")
        self._loop.now += max(0.0, timeout)
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._map


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_IdleSelector(self))

    def time(self) -> float:
        return self.now


class _RealIoSelector(selectors.BaseSelector):
    """Real sockets, virtual time: I/O is waited for in real time (time stands still meanwhile); when the loop
    has only timers left and its owner has no request in flight, select(timeout) moves the clock on instead."""

    def __init__(self, loop: RealIoVirtualLoop) -> None:
        self._loop = loop
        self._real = selectors.DefaultSelector()

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None or self._loop.io_pending():
            ready = self._real.select(IO_GUARD_S)  # a did-not-hang guard, far above any answer's real time
            if not ready:
                raise RuntimeError(f"no I/O in {IO_GUARD_S:g} s of real time with a request in flight")
            return ready
        self._loop.now += max(0.0, timeout)
        return []

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()


IO_GUARD_S = 60.0


class RealIoVirtualLoop(asyncio.SelectorEventLoop):
    """An asyncio loop for real HTTP (to the fake server) whose clock moves only when nothing is in flight:
    `io_pending()` (set by the owner) says whether a request awaits its answer. Sleeps and timeouts take no
    real time, requests take no virtual time, so what the limiter and a server bucket on this clock see does
    not depend on how loaded the machine is."""

    def __init__(self) -> None:
        self.now = 0.0
        self.io_pending: Callable[[], bool] = lambda: False
        super().__init__(_RealIoSelector(self))

    def time(self) -> float:
        return self.now


@dataclass(frozen=True)
class Simulated:
    cases: int
    sent: int
    refused: int
    errors: int
    elapsed_s: float
    ideal_s: float

    @property
    def refused_share(self) -> float:
        return self.refused / self.sent if self.sent else 0.0


def simulate(rate: float, cases: int, concurrency: int, headers_on: str = "all", latency_s: float = 0.1,
             seed: int = 0, timeout_s: float = 600.0, initial_window: int | None = 2,
             delay_s: float = 0.002) -> Simulated:
    """`cases` requests at -j `concurrency` against a bucket of `rate` requests a second (its size one second's
    worth, full at the start). headers_on: "all" answers carry x-ratelimit-* headers, or only "429"s. delay_s:
    a request reaches the server, and a 429 comes back, after up to this long (a loaded machine: tens of ms)."""
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(_simulate(loop, rate, cases, concurrency, headers_on, latency_s, seed,
                                                 timeout_s, initial_window, delay_s))
    finally:
        loop.close()


@dataclass
class _Limits:
    limit_rps: float | None
    limit_burst: float | None = None
    limit_tpm: float | None = None


async def _simulate(loop: VirtualLoop, rate: float, cases: int, concurrency: int, headers_on: str,
                    latency_s: float, seed: int, timeout_s: float, initial_window: int | None,
                    delay_s: float) -> Simulated:
    rng = random.Random(seed)
    buckets = RateBuckets(_Limits(rate), loop.time)
    slow_start = {"initial_window": initial_window} if initial_window is not None else {}
    policy = LimitPolicy(max_concurrency=concurrency, **slow_start)
    limiter = AdaptiveLimiter(policy, clock=loop.time, sleep=asyncio.sleep, rng=random.Random(seed),
                              wall_clock=lambda: NOW_EPOCH + loop.time())
    in_flight = asyncio.Semaphore(concurrency)
    tally = {"sent": 0, "refused": 0, "errors": 0}

    async def attempt() -> Completion:
        async with in_flight:
            tally["sent"] += 1
            await asyncio.sleep(rng.uniform(0.0, delay_s))  # the request reaches the server
            admission = buckets.admit(0)
            headers = admission.headers(False, NOW_EPOCH + loop.time())
            if not admission.admitted:
                tally["refused"] += 1
                headers["retry-after"] = str(math.ceil(admission.retry_in_s))
                headers["retry-after-ms"] = str(math.ceil(admission.retry_in_s * 1000))
                error = RateLimited("rate limited (HTTP 429)", 429, parse_retry_after(headers, NOW_EPOCH))
                error.headers = headers
                await asyncio.sleep(rng.uniform(0.0, delay_s))  # the 429 comes back
                raise error
            await asyncio.sleep(latency_s * rng.uniform(0.9, 1.1))
            return Completion(text="ok", usage=Usage(1, 1), limit_headers=headers if headers_on == "all" else {})

    queue = iter(range(cases))
    retry = RetryPolicy(retries=10)
    first_tried = asyncio.Event()  # as the model client's take_turn: the first request goes alone

    async def first_attempt() -> Completion:
        try:
            return await attempt()
        finally:
            first_tried.set()

    async def worker() -> None:
        for index in queue:
            if index:
                await first_tried.wait()
            try:
                await call_with_retries(attempt if index else first_attempt, retry, asyncio.sleep, limiter=limiter,
                                        limit_wait_s=timeout_s, clock=loop.time, rng=rng)
            except Exception:
                tally["errors"] += 1

    started = loop.time()
    await asyncio.gather(*(worker() for _ in range(concurrency if concurrency <= 1 else 4 * concurrency)))
    ideal = max(0.0, cases - rate) / rate  # the first second's worth goes at once
    return Simulated(cases, tally["sent"], tally["refused"], tally["errors"], loop.time() - started, ideal)
