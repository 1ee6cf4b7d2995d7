"""The adaptive limiter: AIMD arithmetic, pacing from rpm/tpm and from the providers' headers, jitter,
deadlines, header parsing (garbage included), and a property: nothing is admitted beyond the window."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable
from typing import Any

import pytest
from fakelimits import rfc3339
from hypothesis import given, settings
from hypothesis import strategies as st

from promptci.errors import RateLimited
from promptci.ratelimit import (
    AdaptiveLimiter,
    LimiterPool,
    LimitPolicy,
    Outcome,
    grown,
    is_near_the_wall,
    refill_interval,
    shrunk,
)

NOW_EPOCH = 1_800_000_000.0


class VirtualTime:
    """A clock that moves only when a limiter sleeps; the sleeps are recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_limiter(time_: VirtualTime, **policy: Any) -> AdaptiveLimiter:
    policy.setdefault("max_concurrency", 16)
    return AdaptiveLimiter(LimitPolicy(**policy), clock=time_.clock, sleep=time_.sleep, rng=random.Random(7),
                           wall_clock=lambda: NOW_EPOCH)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def jitter_bound(wait: float, share: float = 0.1, floor: float = 0.005) -> float:
    return wait + max(wait * share, floor)


# AIMD arithmetic


def test_additive_increase_is_one_over_the_window_and_stops_at_the_ceiling() -> None:
    assert grown(4.0, 16) == 4.25
    assert grown(1.0, 16) == 2.0
    assert grown(15.95, 16) == 16.0
    assert grown(16.0, 16) == 16.0


def test_multiplicative_decrease_halves_and_never_goes_below_one() -> None:
    assert shrunk(16.0, 0.5) == 8.0
    assert shrunk(5.0, 0.5) == 2.5
    assert shrunk(1.5, 0.5) == 1.0
    assert shrunk(1.0, 0.5) == 1.0


def test_one_burst_of_429s_shrinks_the_window_once_and_successes_grow_it_back() -> None:
    async def scenario() -> list[float]:
        limiter = make_limiter(VirtualTime())
        early = [await limiter.acquire() for _ in range(3)]  # all sent before any 429 came back
        windows = [limiter.window]
        for slot in early:
            limiter.release(slot, Outcome.LIMITED)
            windows.append(limiter.window)
        later = await limiter.acquire()  # sent after the decrease: its 429 is news
        limiter.release(later, Outcome.LIMITED)
        windows.append(limiter.window)
        for _ in range(2):
            limiter.release(await limiter.acquire(), Outcome.OK)
            windows.append(limiter.window)
        limiter.release(await limiter.acquire(), Outcome.ERROR)  # a 500 says nothing about the limit
        windows.append(limiter.window)
        assert limiter.limited == 4 and limiter.in_flight == 0
        return windows

    # a lone header-less 429 is not yet a limit (see the next test); the second of the burst is
    assert run(scenario()) == [16.0, 16.0, 8.0, 8.0, 4.0, 4.25, 4.25 + 1 / 4.25, 4.25 + 1 / 4.25]


def test_the_window_never_grows_past_j_nor_shrinks_below_one() -> None:
    async def scenario() -> tuple[float, float]:
        limiter = make_limiter(VirtualTime(), max_concurrency=3)
        for _ in range(10):
            limiter.release(await limiter.acquire(), Outcome.OK)
        top = limiter.window
        for _ in range(10):
            limiter.release(await limiter.acquire(), Outcome.LIMITED)
        return top, limiter.window

    assert run(scenario()) == (3.0, 1.0)


def test_a_full_window_makes_the_next_attempt_wait_for_a_release() -> None:
    async def scenario() -> list[str]:
        limiter = make_limiter(VirtualTime(), max_concurrency=2)
        events: list[str] = []
        first, second = await limiter.acquire(), await limiter.acquire()

        async def third() -> None:
            await limiter.acquire()
            events.append("third admitted")

        task = asyncio.create_task(third())
        await asyncio.sleep(0)
        events.append(f"in flight {limiter.in_flight}")
        limiter.release(first, Outcome.OK)
        await task
        limiter.release(second, Outcome.OK)
        events.append(f"in flight {limiter.in_flight}")
        return events

    assert run(scenario()) == ["in flight 2", "third admitted", "in flight 1"]


def test_a_cancelled_waiter_leaves_no_place_taken() -> None:
    async def scenario() -> int:
        limiter = make_limiter(VirtualTime(), max_concurrency=1)
        held = await limiter.acquire()
        waiting = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        waiting.cancel()
        limiter.release(held, Outcome.OK)  # wakes the cancelled waiter's future in the same step
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await limiter.acquire()  # the place is free again
        return limiter.in_flight

    assert run(scenario()) == 1


def test_the_slot_context_releases_as_an_error_when_the_body_raises() -> None:
    async def scenario() -> tuple[int, float]:
        limiter = make_limiter(VirtualTime(), max_concurrency=4)
        limiter.window = 2.0
        with pytest.raises(ValueError):
            async with limiter.slot():
                raise ValueError("boom")
        async with limiter.slot() as slot:
            slot.report(Outcome.OK)
            slot.report(Outcome.LIMITED)  # only the first report counts
        return limiter.in_flight, limiter.window

    assert run(scenario()) == (0, 2.5)


# Pacing: known limits, learned limits, blocks, jitter, deadlines


def test_rpm_spaces_starts_evenly_with_jitter_that_does_not_accumulate() -> None:
    time_ = VirtualTime()

    async def scenario() -> list[float]:
        limiter = make_limiter(time_, rpm=600)  # one start every 0.1 s
        starts = []
        for _ in range(4):
            time_.now = 0.0  # four attempts arriving together
            await limiter.acquire()
            starts.append(time_.now)
        return starts

    starts = run(scenario())
    assert starts[0] == 0.0
    for index in (1, 2, 3):
        assert 0.1 * index <= starts[index] <= jitter_bound(0.1 * index)
    assert len(time_.sleeps) == 3


def test_tpm_paces_by_the_tokens_each_request_takes() -> None:
    time_ = VirtualTime()

    async def scenario() -> None:
        limiter = make_limiter(time_, tpm=6000)  # 100 tokens a second
        await limiter.acquire(tokens=50)
        time_.now = 0.0
        await limiter.acquire(tokens=200)

    run(scenario())
    assert len(time_.sleeps) == 1 and 0.5 <= time_.sleeps[0] <= jitter_bound(0.5)


def test_headers_near_the_wall_pace_at_the_refill_rate_they_imply() -> None:
    time_ = VirtualTime()

    async def scenario() -> list[float | None]:
        limiter = make_limiter(time_)
        rates = []
        far = {"x-ratelimit-limit-requests": "50", "x-ratelimit-remaining-requests": "40",
               "x-ratelimit-reset-requests": "200ms"}
        limiter.release(await limiter.acquire(), Outcome.OK, far)
        rates.append(limiter.stats().requests_per_s)
        near = {**far, "x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "960ms"}
        limiter.release(await limiter.acquire(), Outcome.OK, near)
        rates.append(limiter.stats().requests_per_s)
        limiter.release(await limiter.acquire(), Outcome.OK, far)
        rates.append(limiter.stats().requests_per_s)
        return rates

    rates = run(scenario())
    assert rates[0] is None and rates[2] is None
    assert rates[1] == pytest.approx(50.0)  # 48 requests come back in 0.96 s


def test_remaining_zero_waits_for_the_next_unit_or_for_the_reset_when_the_limit_is_unknown() -> None:
    def first_wait(headers: dict[str, str]) -> float:
        time_ = VirtualTime()

        async def scenario() -> None:
            limiter = make_limiter(time_)
            limiter.release(await limiter.acquire(), Outcome.OK, headers)
            await limiter.acquire()

        run(scenario())
        return time_.sleeps[0]

    with_limit = first_wait({"x-ratelimit-limit-requests": "50", "x-ratelimit-remaining-requests": "0",
                             "x-ratelimit-reset-requests": "1s"})
    assert 0.02 <= with_limit <= jitter_bound(0.02)
    without_limit = first_wait({"anthropic-ratelimit-requests-remaining": "0",
                                "anthropic-ratelimit-requests-reset": rfc3339(NOW_EPOCH + 3)})
    assert 3.0 <= without_limit <= jitter_bound(3.0)


EXHAUSTED = {"x-ratelimit-limit-requests": "50", "x-ratelimit-remaining-requests": "0"}


def test_a_429_saying_the_limit_is_used_up_holds_every_start_until_its_retry_after_each_with_its_own_jitter(
) -> None:
    time_ = VirtualTime()

    async def scenario() -> None:
        limiter = make_limiter(time_)
        own = limiter.release(await limiter.acquire(), Outcome.LIMITED, {**EXHAUSTED, "retry-after-ms": "250"})
        assert own == 0.0  # acquire() does the waiting, for everyone
        for _ in range(3):
            time_.now = 0.0
            await limiter.acquire()

    run(scenario())
    assert len(time_.sleeps) == 3
    assert all(0.25 <= wait <= jitter_bound(0.25) for wait in time_.sleeps)
    assert len(set(time_.sleeps)) == 3


def test_a_429_with_room_left_waits_alone_and_keeps_the_window() -> None:
    time_ = VirtualTime()

    async def scenario() -> tuple[float | None, float, list[float]]:
        limiter = make_limiter(time_)
        room = {"x-ratelimit-limit-requests": "50", "x-ratelimit-remaining-requests": "30", "retry-after": "1"}
        own = limiter.release(await limiter.acquire(), Outcome.LIMITED, room)
        await limiter.acquire()  # others start at once
        return own, limiter.window, time_.sleeps

    own, window, sleeps = run(scenario())
    assert own is not None and 1.0 <= own <= jitter_bound(1.0)
    assert window == 16.0 and sleeps == []


def test_a_429_without_rate_limit_headers_shrinks_the_window_and_waits_alone() -> None:
    time_ = VirtualTime()

    async def scenario() -> tuple[float | None, float | None, float, list[float]]:
        limiter = make_limiter(time_)
        own = limiter.release(await limiter.acquire(), Outcome.LIMITED, {"retry-after": "1"})
        bare = limiter.release(await limiter.acquire(), Outcome.LIMITED, {})
        return own, bare, limiter.window, time_.sleeps

    own, bare, window, sleeps = run(scenario())
    assert own is not None and 1.0 <= own <= jitter_bound(1.0)
    assert bare is None  # no Retry-After: the retry policy's backoff decides
    assert window == 8.0 and sleeps == []  # the second 429 in a row shrank it, once


def test_other_outcomes_leave_the_wait_to_the_retry_policy() -> None:
    async def scenario() -> list[float | None]:
        limiter = make_limiter(VirtualTime())
        return [limiter.release(await limiter.acquire(), outcome, {"retry-after": "3"})
                for outcome in (Outcome.OK, Outcome.ERROR)]

    assert run(scenario()) == [None, None]


def test_a_start_past_the_deadline_raises_at_once_without_holding_a_place() -> None:
    time_ = VirtualTime()

    async def scenario() -> AdaptiveLimiter:
        limiter = make_limiter(time_)
        limiter.release(await limiter.acquire(), Outcome.LIMITED, {**EXHAUSTED, "retry-after": "30"})
        with pytest.raises(RateLimited, match="deadline"):
            await limiter.acquire(deadline=10.0)
        return limiter

    limiter = run(scenario())
    assert time_.sleeps == [] and limiter.in_flight == 0


def test_stats_show_waits_refusals_and_whether_a_limit_is_in_force() -> None:
    time_ = VirtualTime()

    async def scenario() -> tuple[Any, Any]:
        limiter = make_limiter(time_, rpm=60)
        limiter.release(await limiter.acquire(), Outcome.LIMITED, {**EXHAUSTED, "retry-after": "2"})
        during = limiter.stats()
        limiter.release(await limiter.acquire(), Outcome.OK)
        return during, limiter.stats()

    during, after = run(scenario())
    assert during.is_limited_now and during.limited == 1 and during.window == 8.0
    assert during.requests_per_s == 1.0
    assert not after.is_limited_now
    assert 2.0 <= after.waited_s <= jitter_bound(2.0)


def test_the_pool_keeps_one_limiter_per_endpoint_and_model() -> None:
    pool = LimiterPool(lambda endpoint: LimitPolicy(max_concurrency=4, rpm=60 if endpoint == "slow" else None))
    first = pool.limiter("slow", "gpt-4o-mini")
    assert pool.limiter("slow", "gpt-4o-mini") is first
    assert pool.limiter("slow", "gpt-4o") is not first
    assert pool.limiter("fast", "gpt-4o").policy.rpm is None
    assert set(pool.stats()) == {("slow", "gpt-4o-mini"), ("slow", "gpt-4o"), ("fast", "gpt-4o")}


def test_a_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        LimitPolicy(max_concurrency=0)
    with pytest.raises(ValueError, match="decrease_factor"):
        LimitPolicy(max_concurrency=4, decrease_factor=1.0)


def test_pacing_helpers() -> None:
    assert refill_interval(50, 2, 0.96) == pytest.approx(0.02)
    assert refill_interval(50, 50, 0.0) is None
    assert refill_interval(None, 2, 1.0) is None
    assert refill_interval(50, 2, 0.0) is None
    assert is_near_the_wall(50, 25, 3, 0.5) and not is_near_the_wall(50, 26, 3, 0.5)
    assert is_near_the_wall(None, 3, 3, 0.5) and not is_near_the_wall(None, 4, 3, 0.5)
    assert not is_near_the_wall(50, None, 100, 0.5)


def test_garbage_headers_change_nothing() -> None:
    time_ = VirtualTime()

    async def scenario() -> AdaptiveLimiter:
        limiter = make_limiter(time_)
        hostile = {"x-ratelimit-limit-requests": "-3", "x-ratelimit-remaining-requests": "0x10",
                   "x-ratelimit-reset-requests": "forever", "retry-after": "1e999", "retry-after-ms": "NaN"}
        limiter.release(await limiter.acquire(), Outcome.LIMITED, hostile)
        await limiter.acquire()
        return limiter

    limiter = run(scenario())
    assert time_.sleeps == [] and limiter.stats().requests_per_s is None


# The property: admission never beyond the window, no place leaked, no waiter stranded

OPERATIONS = st.lists(st.tuples(st.sampled_from(["acquire", "ok", "limited", "error", "cancel"]),
                                st.integers(min_value=0, max_value=63)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(ceiling=st.integers(min_value=1, max_value=12), operations=OPERATIONS)
def test_in_flight_never_exceeds_the_window_at_admission(ceiling: int, operations: list[tuple[str, int]]) -> None:
    asyncio.run(check_admissions(ceiling, operations))


async def check_admissions(ceiling: int, operations: list[tuple[str, int]]) -> None:
    limiter = make_limiter(VirtualTime(), max_concurrency=ceiling)
    held: list[Any] = []
    pending: list[asyncio.Task[Any]] = []
    outcomes = {"ok": Outcome.OK, "limited": Outcome.LIMITED, "error": Outcome.ERROR}
    for name, pick in operations:
        if name == "acquire":
            pending.append(asyncio.create_task(limiter.acquire()))
        elif name == "cancel" and pending:
            pending[pick % len(pending)].cancel()
        elif name in outcomes and held:
            limiter.release(held.pop(pick % len(held)), outcomes[name])
        for _ in range(3):
            await asyncio.sleep(0)
        admitted = [t for t in pending if t.done() and not t.cancelled()]
        pending = [t for t in pending if not t.done()]
        held.extend(task.result() for task in admitted)
        assert 1.0 <= limiter.window <= ceiling
        assert limiter.in_flight == len(held) <= ceiling  # no place leaked, none counted twice
        if admitted:
            assert limiter.in_flight <= int(limiter.window)
        if limiter.in_flight < int(limiter.window):
            assert not pending, "a waiter is stranded while there is room"
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def test_stray_header_less_429s_leave_the_window_but_a_burst_of_them_shrinks_it() -> None:
    """A fault mix answers one request in thirty with a 429 and no rate-limit headers: the window stays at -j.
    A limit refuses in bursts: a quarter of the recent answers shrinks it."""

    async def scenario() -> tuple[float, float]:
        limiter = make_limiter(VirtualTime())
        for n in range(300):
            outcome = Outcome.LIMITED if n % 30 == 29 else Outcome.OK
            limiter.release(await limiter.acquire(), outcome, {"retry-after": "1"})
        stray = limiter.window
        for _ in range(4):
            limiter.release(await limiter.acquire(), Outcome.LIMITED, {"retry-after": "1"})
        return stray, limiter.window

    stray, burst = run(scenario())
    assert stray == 16.0 and burst < 16.0


def test_a_limit_smaller_than_one_request_is_unmet_and_one_that_holds_it_is_not() -> None:
    from promptci.ratelimit import unmet_limit

    assert unmet_limit(LimitPolicy(max_concurrency=4, rpm=0.5), 10) is not None
    assert unmet_limit(LimitPolicy(max_concurrency=4, rpm=1), 10) is None
    assert "below one request's estimate of 600 tokens" in (unmet_limit(LimitPolicy(max_concurrency=4, tpm=599), 600)
                                                            or "")
    assert unmet_limit(LimitPolicy(max_concurrency=4, tpm=600), 600) is None
    assert unmet_limit(LimitPolicy(max_concurrency=4), 10**9) is None


def test_slow_start_doubles_each_round_trip_up_to_16_then_adds_8() -> None:
    from promptci.ratelimit import slow_start_step

    window = 2.0
    rounds = []
    for _ in range(6):
        start = window
        for _ in range(int(start)):  # one round trip: an answer for each request in flight
            window += slow_start_step(window)
        rounds.append(round(window, 1))
    assert rounds[:3] == [4.0, 8.0, 16.0]
    assert all(6.5 <= later - earlier <= 8.0 for earlier, later in itertools.pairwise(rounds[2:])), rounds


def test_a_slow_start_opens_fully_when_the_headers_show_room_and_stops_at_the_first_429() -> None:
    async def scenario() -> tuple[float, float, bool]:
        roomy = make_limiter(VirtualTime(), max_concurrency=16, initial_window=2)
        roomy.release(await roomy.acquire(), Outcome.OK, {"x-ratelimit-limit-requests": "5000",
                                                          "x-ratelimit-remaining-requests": "4999",
                                                          "x-ratelimit-reset-requests": "12ms"})
        limited = make_limiter(VirtualTime(), max_concurrency=16, initial_window=2)
        for _ in range(3):
            limited.release(await limited.acquire(), Outcome.OK)
        before = limited.window
        limited.release(await limited.acquire(), Outcome.LIMITED, {"x-ratelimit-remaining-requests": "0",
                                                                   "retry-after": "1"})
        return roomy.window, before, limited.is_slow_start

    assert run(scenario()) == (16.0, 5.0, False)


def test_a_429_with_retry_after_and_reset_gives_the_refill_interval_exactly() -> None:
    from promptci.ratelimit import unit_interval

    # a bucket of 5 refilled at 5/s, at level 0.4 when refused: next unit in 0.12 s, full in 0.92 s
    assert unit_interval(5, 0.92, 0.12) == pytest.approx(0.2)
    assert refill_interval(5, 0, 0.92) == pytest.approx(0.184)  # remaining rounded down: an underestimate
    assert unit_interval(1, 0.92, 0.12) is None and unit_interval(5, 0.1, 0.12) is None
    assert unit_interval(5, None, 0.12) is None


def test_the_learned_refill_interval_is_the_longest_recent_one_and_an_outlier_is_forgotten() -> None:
    from promptci.ratelimit import REFILL_MEMORY, _Pace

    pace = _Pace()
    assert pace.refill_interval("requests", 5, 0.18) == 0.18
    assert pace.refill_interval("requests", 5, 0.2) == 0.2
    assert pace.refill_interval("requests", 5, 0.19) == 0.2
    assert pace.refill_interval("requests", 5, None) == 0.2
    assert pace.refill_interval("requests", 50, 0.02) == 0.02  # another limit: learned afresh
    assert pace.refill_interval("requests", 50, 3600.0) == 3600.0  # a garbled reset...
    for _ in range(REFILL_MEMORY):
        latest = pace.refill_interval("requests", 50, 0.02)
    assert latest == 0.02  # ...paces a few requests, not the rest of the run
