"""The limiter against the fake server's token bucket, through the real openai SDK over HTTP, in real time:
what a client calling it as the phase-2 sketch does gets every request through, with few refusals."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from fakeserver import FakeServer, running_fake_server

from promptci.ratelimit import AdaptiveLimiter, LimitPolicy, Outcome

pytestmark = pytest.mark.real_waits


async def send_all(server: FakeServer, requests: int, concurrency: int, rpm: float | None = None) -> dict[str, Any]:
    """Every request as its own task through one limiter; a 429 gives its slot back and retries."""
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)
    limiter = AdaptiveLimiter(LimitPolicy(max_concurrency=concurrency, rpm=rpm))
    loop = asyncio.get_running_loop()
    peak = {"in_flight": 0, "failed": 0}

    async def one(i: int) -> None:
        deadline = loop.time() + 20.0
        while True:
            async with limiter.slot(deadline=deadline) as slot:
                peak["in_flight"] = max(peak["in_flight"], limiter.in_flight)
                try:
                    raw = await client.chat.completions.with_raw_response.create(
                        model="m", messages=[{"role": "user", "content": f"case {i}"}])
                    slot.report(Outcome.OK, raw.headers)
                    return
                except openai.RateLimitError as exc:
                    wait = slot.report(Outcome.LIMITED, exc.response.headers)
            await asyncio.sleep(wait or 0.0)

    started = loop.time()
    await asyncio.gather(*(one(i) for i in range(requests)))
    await client.close()
    return {**peak, "elapsed": loop.time() - started, "stats": limiter.stats()}


def test_a_bucket_limit_is_learned_from_the_headers_with_few_refusals() -> None:
    with running_fake_server(latency_s=0.02, limit_rps=40, limit_burst=10, record=False) as server:
        outcome = asyncio.run(send_all(server, requests=60, concurrency=16))
        sent, refused = server.total, server.refused
    assert sent - refused == 60  # every request answered
    assert refused <= 12  # the first burst (16) beyond the bucket (10), and little more: the headers pace the rest
    assert outcome["elapsed"] >= (60 - 10) / 40 * 0.9  # never faster than the limit allows
    assert outcome["in_flight"] <= 16


def test_a_known_rpm_paces_from_the_start_and_nothing_is_refused() -> None:
    with running_fake_server(latency_s=0.01, limit_rps=30, limit_burst=2, record=False) as server:
        outcome = asyncio.run(send_all(server, requests=20, concurrency=8, rpm=30 * 60 * 0.9))
        refused = server.refused
    # Paced at 90% of the limit, nothing is refused on an idle machine; on a loaded one a start delayed past the
    # next one's can meet the bucket (of 2) twice at once: a refusal or two, not one per request.
    assert refused <= 2, refused
    assert outcome["stats"].limited == refused
    assert outcome["elapsed"] >= 19 / 27 * 0.95
