"""The limiter against the fake server's token bucket, through the real openai SDK over HTTP: what a client
calling it as the phase-2 sketch does gets every request through, with few refusals. Time is virtual
(ratelimit_sim.RealIoVirtualLoop, shared by the limiter and the server's bucket): it moves only by the waits,
requests take none of it, so the counts do not depend on how loaded the machine is."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import openai
from fakeserver import running_fake_server
from ratelimit_sim import RealIoVirtualLoop

from promptci.ratelimit import AdaptiveLimiter, LimitPolicy, Outcome

BARE_429_WAIT_S = 0.05  # the retry policy's place when the limiter has no say; a retry at once takes no virtual time


async def send_all(base_url: str, loop: RealIoVirtualLoop, requests: int, concurrency: int,
                   rpm: float | None = None) -> dict[str, Any]:
    """Every request as its own task through one limiter; a 429 gives its slot back and retries."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    limiter = AdaptiveLimiter(LimitPolicy(max_concurrency=concurrency, rpm=rpm), clock=loop.time,
                              rng=random.Random(0))
    peak = {"in_flight": 0, "sending": 0}
    loop.io_pending = lambda: peak["sending"] > 0

    async def one(i: int) -> None:
        deadline = loop.time() + 20.0
        while True:
            async with limiter.slot(deadline=deadline) as slot:
                peak["in_flight"] = max(peak["in_flight"], limiter.in_flight)
                peak["sending"] += 1
                try:
                    raw = await client.chat.completions.with_raw_response.create(
                        model="m", messages=[{"role": "user", "content": f"case {i}"}])
                    slot.report(Outcome.OK, raw.headers)
                    return
                except openai.RateLimitError as exc:
                    wait = slot.report(Outcome.LIMITED, exc.response.headers)
                finally:
                    peak["sending"] -= 1
            await asyncio.sleep(BARE_429_WAIT_S if wait is None else wait)

    started = loop.time()
    await asyncio.gather(*(one(i) for i in range(requests)))
    await client.close()
    return {**peak, "elapsed": loop.time() - started, "stats": limiter.stats()}


def run_against_bucket(rps: float, burst: float, requests: int, concurrency: int,
                       rpm: float | None = None) -> tuple[dict[str, Any], int, int]:
    """(outcome, requests the server received, requests its bucket refused)."""
    loop = RealIoVirtualLoop()
    try:
        with running_fake_server(limit_rps=rps, limit_burst=burst, record=False, clock=loop.time) as server:
            outcome = loop.run_until_complete(send_all(server.openai_base_url, loop, requests, concurrency, rpm))
            return outcome, server.total, server.refused
    finally:
        loop.close()


def test_a_bucket_limit_is_learned_from_the_headers_with_few_refusals() -> None:
    outcome, sent, refused = run_against_bucket(rps=40, burst=10, requests=60, concurrency=16)
    assert sent - refused == 60  # every request answered
    assert refused <= 12, refused  # the first burst beyond the bucket (10), and little more: the headers pace the rest
    assert outcome["stats"].limited == refused
    assert outcome["elapsed"] >= (60 - 10) / 40  # the bucket admits no faster (virtual seconds)
    assert outcome["in_flight"] <= 16


def test_a_known_rpm_paces_from_the_start_and_nothing_is_refused() -> None:
    outcome, sent, refused = run_against_bucket(rps=30, burst=2, requests=20, concurrency=8, rpm=30 * 60 * 0.9)
    assert (sent, refused) == (20, 0)  # paced at 90% of the limit from the first request
    assert outcome["stats"].limited == 0
    assert 19 / 27 <= outcome["elapsed"] <= 19 / 27 * 1.1 + 0.01  # 19 paced starts, each stretched <= 10% jitter
