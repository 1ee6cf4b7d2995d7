"""Rate-limit benchmark (issues 13, 24): promptci against a fake server that enforces a limit, run as its own process.

    python bench/bench_ratelimit.py [--quick] [--only limited|faults|sweep] [--tries N] [--sketch] [--promptci CMD]

1. A token bucket of 50 requests/s (its size one second's worth, full at the start), 100 ms a request:
   `promptci run -q -j 16` and `-j 64` on a 600-case project with `retries: 10`. Targets: 0 errors, wall
   <= 1.15 x the limit's ideal (600 / 50 = 12 s), refused requests (429s from the bucket) <= 5% of all sent.
2. 1,000 cases at -j 16 on a server that answers 10% of requests with a 429 (Retry-After: 1), a 500 or a
   stream cut mid-way (seeded, one third each), against the same run on a fault-free server. Targets:
   0 errors, wall <= 1.3 x the fault-free wall.

3. (issue 24, `--only sweep`) Low and high limits: token buckets of 2, 5, 50 and 500 requests/s (size one
   second's worth), their rate-limit headers on every answer or on 429s only, `-j 8` (the default) and `-j 64`,
   with 40, 100, 600 and 2,000 cases (about 20, 20, 12 and 4 s at the limit). Targets: 0 errors, refused
   <= 10% of the requests sent; the wall is shown against the limit's ideal (cases / rate) and, where
   promptci cannot reach the limit, against the same run on a server without one. `--only simulate` runs
   the same grid in virtual time (tests/ratelimit_sim.py), in seconds.

With --sketch, beside each promptci run the same requests go through a bare SDK loop that calls
promptci.ratelimit the way the model client does (`sketch:` lines): the limiter alone, without promptci's
loading, scoring and store, for comparison.

Each promptci figure is the console script run as a subprocess (start-up included; wall from os.wait4),
errors come from its JSON report (-o json=...), requests and refusals from the server's /_stats.
--quick runs a quarter of the cases as a smoke check: its verdicts mean little.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_providers import (
    KEY_ENV,
    MODEL,
    Measured,
    forget_cache,
    promptci_command,
    run_measured,
    write_project,
)
from fakeserver_process import fake_server_process, server_stats

LATENCY_S = 0.1
LIMIT_RPS = 50.0
RETRIES = 10
FAULT_SHARE = 0.1
FAULT_MIX = "429,500,cut"
WITH_SKETCH = False  # --sketch
TRIES = 1  # --tries


@dataclass(frozen=True)
class Outcome:
    """One promptci run against one server: the process, what its report said, what the server saw."""

    measured: Measured
    errors: int  # cases ending in a provider error (-1: no report)
    passed: int
    sent: int  # requests the server received
    refused: int  # of which the token bucket answered 429

    @property
    def refused_share(self) -> float:
        return self.refused / self.sent if self.sent else 0.0


@contextmanager
def fake_server(*options: str) -> Iterator[str]:
    with fake_server_process(LATENCY_S, *options) as url:
        yield url


def refusals(url: str) -> tuple[int, int]:
    """(requests received, requests refused by the bucket) so far."""
    stats = server_stats(url)
    return int(stats["total"]), int(stats.get("refused", 0))


def make_project(root: Path, url: str, cases: int) -> Path:
    """bench_providers' generated project (every case passes against the echoing server), with retries: 10."""
    write_project(root, url, cases)
    config = root / "promptci.yaml"
    config.write_text(config.read_text().replace("retries: 4\n", f"retries: {RETRIES}\n"))
    return root


def run_best(command: Sequence[str], root: Path, url: str, concurrency: int) -> Outcome:
    """The fastest of TRIES runs (the box is shared: single walls move by tens of percent), with the most errors
    any of them had, so a lucky try cannot hide an error."""
    outcomes = []
    for attempt in range(TRIES):
        if attempt:
            time.sleep(1.5)  # let a bucket fill again
        outcomes.append(run_once(command, root, url, concurrency))
    best = min(outcomes, key=lambda outcome: outcome.measured.wall_s)
    return Outcome(best.measured, max(o.errors for o in outcomes), best.passed, best.sent, best.refused)


def run_once(command: Sequence[str], root: Path, url: str, concurrency: int) -> Outcome:
    forget_cache(root)
    report = root / "report.json"
    report.unlink(missing_ok=True)
    sent_before, refused_before = refusals(url)
    measured = run_measured([*command, "run", "-q", "-j", str(concurrency), "--root", str(root),
                             "-o", f"json={report}"])
    sent_after, refused_after = refusals(url)
    summary = json.loads(report.read_text())["summary"] if report.exists() else {"errors": -1, "passed": 0}
    return Outcome(measured, int(summary["errors"]), int(summary["passed"]), sent_after - sent_before,
                   refused_after - refused_before)


# The phase-2 sketch: a bare SDK loop calling the limiter as the client is to


async def limiter_loop(base_url: str, requests: int, concurrency: int, timeout_s: float = 60.0) -> dict[str, Any]:
    """Every request as its own task, gated by one AdaptiveLimiter (window <= -j); a failed attempt gives its
    slot back before it waits; 429s wait as the limiter says, other errors back off with jitter, and a
    request gives up at its deadline, not after a count of attempts."""
    import openai

    from promptci.ratelimit import AdaptiveLimiter, LimitPolicy, Outcome

    client = openai.AsyncOpenAI(api_key=os.environ[KEY_ENV], base_url=f"{base_url}/v1", max_retries=0)
    limiter = AdaptiveLimiter(LimitPolicy(max_concurrency=concurrency))
    loop = asyncio.get_running_loop()
    tally = {"errors": 0, "attempts": 0}

    async def attempt(i: int) -> tuple[Outcome, Any]:
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": f"Hello user{i}, your ticket T-{i} is open.\n"}],
                stream=True, stream_options={"include_usage": True})
            finished = False
            async for chunk in raw.parse():
                finished = finished or any(choice.finish_reason for choice in chunk.choices)
            return (Outcome.OK if finished else Outcome.ERROR), raw.headers
        except openai.RateLimitError as exc:
            return Outcome.LIMITED, exc.response.headers
        except Exception:  # 5xx, a cut stream, a refused connection: retryable here
            return Outcome.ERROR, None

    async def one(i: int) -> None:
        deadline = loop.time() + timeout_s
        for number in range(1, 1_000):
            try:
                async with limiter.slot(deadline=deadline) as slot:
                    tally["attempts"] += 1
                    outcome, headers = await attempt(i)
                    own_wait = slot.report(outcome, headers)
            except Exception:  # the limiter's RateLimited: the next start lies past the deadline
                break
            if outcome is Outcome.OK:
                return
            if own_wait is None:  # the retry policy's backoff: exponential, with jitter
                own_wait = min(20.0, 0.5 * 2 ** (number - 1)) + random.uniform(0, 0.5)
            if loop.time() + own_wait > deadline:
                break
            await asyncio.sleep(own_wait)  # holding no slot
        tally["errors"] += 1

    started = loop.time()
    await asyncio.gather(*(one(i) for i in range(requests)))
    await client.close()
    tally["requests_s"] = round(loop.time() - started, 2)
    stats = limiter.stats()
    return {**tally, "window": round(stats.window, 2), "waited_s": round(stats.waited_s, 1), "limited": stats.limited}


def run_sketch(url: str, requests: int, concurrency: int) -> Outcome:
    sent_before, refused_before = refusals(url)
    measured = run_measured([sys.executable, __file__, "--limiter-loop", url, str(requests), str(concurrency)])
    sent_after, refused_after = refusals(url)
    tally = json.loads(measured.stdout) if measured.exit_code == 0 else {"errors": -1}
    passed = requests - tally["errors"] if tally["errors"] >= 0 else 0
    return Outcome(measured, tally["errors"], passed, sent_after - sent_before, refused_after - refused_before)


def show(name: str, outcome: Outcome, target: str, ok: bool) -> None:
    m = outcome.measured
    code = "" if m.exit_code == 0 else f", exit {m.exit_code}"
    print(f"{name:<30} {m.wall_s:6.2f} s wall{code}, {outcome.errors} errors, {outcome.passed} passed, "
          f"{outcome.sent} requests, {outcome.refused} refused ({outcome.refused_share:.1%})"
          f" | target {target}: {'PASS' if ok else 'MISS'}", flush=True)
    if m.exit_code not in (0, 1) and m.stderr.strip():
        print("    " + m.stderr.strip().splitlines()[-1][:300], flush=True)


def bench_limited(work: Path, command: Sequence[str], cases: int) -> None:
    ideal = cases / LIMIT_RPS
    with fake_server("--limit-rps", str(LIMIT_RPS)) as url:
        root = make_project(work / "limited", url, cases)
        for concurrency in (16, 64):
            time.sleep(1.5)  # let the bucket fill again between runs
            outcome = run_best(command, root, url, concurrency)
            ok = (outcome.errors == 0 and outcome.measured.exit_code == 0
                  and outcome.measured.wall_s <= 1.15 * ideal and outcome.refused_share <= 0.05)
            show(f"limit {LIMIT_RPS:g}/s, -j {concurrency}, {cases} cases", outcome,
                 f"0 errors, wall <= {1.15 * ideal:.1f} s, refused <= 5%", ok)
            if not WITH_SKETCH:
                continue
            time.sleep(1.5)
            sketch = run_sketch(url, cases, concurrency)
            ok = sketch.errors == 0 and sketch.measured.wall_s <= 1.15 * ideal and sketch.refused_share <= 0.05
            show(f"sketch: limit, -j {concurrency}", sketch, f"0 errors, wall <= {1.15 * ideal:.1f} s, refused <= 5%",
                 ok)


def bench_faults(work: Path, command: Sequence[str], cases: int) -> None:
    with fake_server() as url:
        clean = run_best(command, make_project(work / "clean", url, cases), url, 16)
        clean_sketch = run_sketch(url, cases, 16) if WITH_SKETCH else None
    show(f"fault-free, -j 16, {cases} cases", clean, "reference, 0 errors", clean.errors == 0)
    if clean_sketch is not None:
        show("sketch: fault-free, -j 16", clean_sketch, "reference, 0 errors", clean_sketch.errors == 0)
    faults = ("--fault-p", str(FAULT_SHARE), "--fault-mix", FAULT_MIX, "--retry-after", "1")
    for label, extra in (("", ()), (", headers", ("--limit-rps", "100000"))):
        with fake_server(*faults, *extra) as url:
            faulty = run_best(command, make_project(work / "faults", url, cases), url, 16)
            sketch = run_sketch(url, cases, 16) if clean_sketch is not None else None
        runs = [(f"10% {FAULT_MIX}{label}, -j 16", faulty, clean)]
        if sketch is not None and clean_sketch is not None:
            runs.append((f"sketch: 10% faults{label}", sketch, clean_sketch))
        for name, run, reference in runs:
            limit = 1.3 * reference.measured.wall_s
            ok = run.errors == 0 and run.measured.exit_code == 0 and run.measured.wall_s <= limit
            show(name, run, f"0 errors, wall <= 1.3 x fault-free = {limit:.2f} s", ok)
            print(f"{'':<30} faulted / fault-free = {run.measured.wall_s / reference.measured.wall_s:.2f} x",
                  flush=True)


SWEEP = ((2.0, 40), (5.0, 100), (50.0, 600), (500.0, 2_000))  # (requests/s, cases)
SWEEP_CONCURRENCY = (8, 64)


def bench_sweep(work: Path, command: Sequence[str], quick: bool) -> None:
    references: dict[tuple[int, int], float] = {}
    for rate, cases in SWEEP:
        cases = cases // 4 if quick else cases
        ideal = cases / rate
        for headers_on in ("all", "429"):
            with fake_server("--limit-rps", str(rate), "--limit-headers", headers_on) as url:
                root = make_project(work / "sweep", url, cases)
                for concurrency in SWEEP_CONCURRENCY:
                    time.sleep(1.5)  # let the bucket (one second's worth) fill again between runs
                    outcome = run_best(command, root, url, concurrency)
                    reference = references.get((cases, concurrency))
                    if reference is None and ideal < 8:
                        reference = references[(cases, concurrency)] = unlimited_wall(work, command, cases,
                                                                                      concurrency)
                    ok = outcome.errors == 0 and outcome.measured.exit_code == 0 and outcome.refused_share <= 0.10
                    versus = f"{outcome.measured.wall_s / ideal:.2f} x ideal {ideal:.1f} s"
                    if reference is not None:
                        versus += f", {outcome.measured.wall_s / reference:.2f} x unlimited {reference:.2f} s"
                    show(f"{rate:g}/s headers {headers_on}, -j {concurrency}, {cases} cases", outcome,
                         "0 errors, refused <= 10%", ok)
                    print(f"{'':<30} wall {versus}", flush=True)


def bench_simulated() -> None:
    """The sweep's grid in virtual time (tests/ratelimit_sim.py: the real limiter and retry policy against the
    fake server's bucket, no process, no wall clock), with requests and 429s delayed by up to 0, 20 and 100 ms."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from ratelimit_sim import simulate

    from promptci import ratelimit

    initial_window = getattr(ratelimit, "SLOW_START_WINDOW", None)  # as the model client opens (none before)

    for rate, cases in SWEEP:
        for headers_on in ("all", "429"):
            cells = []
            for concurrency in SWEEP_CONCURRENCY:
                for delay_s in (0.0, 0.02, 0.1):
                    outcome = simulate(rate, cases, concurrency, headers_on, delay_s=delay_s,
                                       initial_window=initial_window)
                    assert outcome.errors == 0, outcome
                    cells.append(f"-j {concurrency} {delay_s * 1000:3.0f} ms: {outcome.refused:3d} "
                                 f"({outcome.refused_share:5.1%}) {outcome.elapsed_s:5.1f} s")
            print(f"sim {rate:g}/s {cases} cases headers {headers_on:<3} | " + " | ".join(cells), flush=True)


def unlimited_wall(work: Path, command: Sequence[str], cases: int, concurrency: int) -> float:
    with fake_server() as url:
        outcome = run_best(command, make_project(work / "unlimited", url, cases), url, concurrency)
    return outcome.measured.wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="150 and 250 cases instead of 600 and 1,000")
    parser.add_argument("--promptci", help="the promptci command to measure (default: this venv's console script)")
    parser.add_argument("--keep", type=Path, help="build the projects here and keep them (default: a temp dir)")
    parser.add_argument("--only", choices=("limited", "faults", "sweep", "simulate"),
                        help="run one of the benchmarks (simulate: the sweep in virtual time, in seconds)")
    parser.add_argument("--tries", type=int, default=1, help="run each promptci measurement this many times, "
                        "keep the fastest (errors: the most of any try)")
    parser.add_argument("--sketch", action="store_true",
                        help="also run the phase-1 sketch (a bare SDK loop calling the limiter) beside promptci")
    args = parser.parse_args()
    global WITH_SKETCH, TRIES
    WITH_SKETCH, TRIES = args.sketch, max(1, args.tries)
    command = shlex.split(args.promptci) if args.promptci else promptci_command()
    limited_cases, fault_cases = (150, 250) if args.quick else (600, 1_000)
    print(f"promptci rate-limit bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"fake server at {LATENCY_S * 1000:.0f} ms a request (streamed), retries: {RETRIES}, "
          f"command {' '.join(command)}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.only in (None, "limited"):
            bench_limited(work, command, limited_cases)
        if args.only in (None, "faults"):
            bench_faults(work, command, fault_cases)
        if args.only in (None, "sweep"):
            bench_sweep(work, command, args.quick)
        if args.only in (None, "simulate"):
            bench_simulated()
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--limiter-loop":
        print(json.dumps(asyncio.run(limiter_loop(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))))
    else:
        main()
