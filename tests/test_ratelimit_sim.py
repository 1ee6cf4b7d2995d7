"""Issue 24, rate limits at low limits: the model client's limiter and retry policy against the fake server's token
bucket, in virtual time (tests/ratelimit_sim.py), from 2 to 500 requests a second, with rate-limit headers on every
answer and on 429s only. A client that learns the limit knocks rarely: <= 10% of requests refused, no errors, and
a wall time close to what the limit allows. No wall clock is read: the loop's clock moves only by waits."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ratelimit_sim import VirtualLoop, simulate

LATENCY_S = 0.1


def allowed_wall_s(rate: float, cases: int, concurrency: int) -> float:
    """What the limit (after its first second's burst) or -j at LATENCY_S a request allows, whichever is slower."""
    return max(max(0.0, cases - rate) / rate, cases * LATENCY_S / concurrency)


def test_the_virtual_loop_moves_its_clock_by_the_waits_alone() -> None:
    loop = VirtualLoop()

    async def waits() -> list[float]:
        seen = []
        for seconds in (100.0, 0.5, 0.0):
            await asyncio.sleep(seconds)
            seen.append(loop.time())
        await asyncio.gather(asyncio.sleep(3.0), asyncio.sleep(2.0))
        return [*seen, loop.time()]

    try:
        assert loop.run_until_complete(waits()) == [100.0, 100.5, 100.5, 103.5]
    finally:
        loop.close()


@pytest.mark.parametrize("headers_on", ["all", "429"])
@pytest.mark.parametrize("rate", [2, 5, 50, 500])
@pytest.mark.parametrize("concurrency", [1, 4, 16, 64])
def test_few_refusals_no_errors_and_the_limits_pace_at_every_rate(rate: int, concurrency: int,
                                                                  headers_on: str) -> None:
    cases = min(2_000, max(40, rate * 20))
    outcome = simulate(rate, cases, concurrency, headers_on, latency_s=LATENCY_S)
    assert outcome.errors == 0
    assert outcome.refused_share <= 0.10, outcome
    assert outcome.elapsed_s <= 1.15 * allowed_wall_s(rate, cases, concurrency) + 0.5, outcome


@settings(max_examples=30, deadline=None, derandomize=True)
@given(rate=st.floats(min_value=2.0, max_value=500.0), concurrency=st.integers(min_value=1, max_value=64),
       headers_on=st.sampled_from(["all", "429"]), seed=st.integers(min_value=0, max_value=2**16),
       delay_s=st.floats(min_value=0.0, max_value=0.05))
def test_at_any_limit_from_2_to_500_a_second_at_most_a_tenth_is_refused(rate: float, concurrency: int,
                                                                         headers_on: str, seed: int,
                                                                         delay_s: float) -> None:
    """delay_s: how late requests reach the server and 429s come back (a loaded machine). Runs of 20 s at the
    limit, as the issue's (100 cases at 5/s): learning an unknown limit costs a few refusals (2-5 from 2 to
    50/s), which in a run of a few seconds are more than a tenth of it."""
    cases = int(min(1_500, max(40, rate * 20)))
    outcome = simulate(rate, cases, concurrency, headers_on, latency_s=LATENCY_S, seed=seed, delay_s=delay_s)
    assert outcome.errors == 0
    assert outcome.refused_share <= 0.10, outcome


def test_without_slow_start_the_first_burst_meets_the_limit_at_once() -> None:
    """Why the model client's limiters open at SLOW_START_WINDOW: -j 64 against 2 a second, all at once."""
    eager = simulate(2, 40, 64, "429", latency_s=LATENCY_S, initial_window=None)
    slow = simulate(2, 40, 64, "429", latency_s=LATENCY_S)
    assert eager.refused >= 38 and slow.refused <= 4  # all 40 sent at once: 2 admitted
