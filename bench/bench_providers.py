"""Provider benchmark (issues 3 and 4): promptci against the fake OpenAI server, run as its own process.

    python bench/bench_providers.py [--quick]

Beside promptci it runs a bare loop of the same SDK calls (one AsyncOpenAI client, max_retries=0, a
semaphore, the same streamed requests with include_usage, every chunk read) as the floor, in a process
of its own (interpreter and `import openai` included, as promptci pays them too). Every promptci figure
is the console script run as a subprocess, start-up included; wall, CPU and peak RSS are the child's
own (os.wait4), request counts come from the server's /_stats. The ledger's share (issue 4) is timed
inside an unmodified run: building each row plus its INSERT, against the run's wall time. One line is
printed per measurement, with its target and PASS or MISS. --quick runs fewer cases as a smoke check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakeserver_process import fake_server_process, requests_served

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "PROMPTCI_BENCH_KEY"
MODEL = "gpt-4o-mini"
LATENCY_S = 0.1
FILL_LATENCY_S = 0.005  # the 10,000-case cache is filled fast; the timed run sends nothing


@dataclass(frozen=True)
class Measured:
    """One child process: wall and CPU seconds, peak RSS, exit code and what it printed."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    exit_code: int
    stdout: str
    stderr: str


def run_measured(command: Sequence[str], cwd: Path | None = None) -> Measured:
    """Run a command to its end; its own rusage via wait4 (RUSAGE_CHILDREN would mix every child)."""
    env = {**os.environ, KEY_ENV: "sk-bench-not-a-real-key"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode,
                        out.read(), err.read())


@contextmanager
def fake_server(latency_s: float, rate_limit_p: float = 0.0) -> Iterator[str]:
    with fake_server_process(latency_s, "--rate-limit-p", str(rate_limit_p), "--retry-after", "1") as url:
        yield url


# The generated project and the commands


def write_project(root: Path, url: str, cases: int) -> Path:
    """A 1-prompt project whose cases all pass against the echoing fake server, via a named provider."""
    if root.exists():
        shutil.rmtree(root)
    (root / "prompts").mkdir(parents=True)
    (root / "goldens").mkdir()
    (root / "promptci.yaml").write_text(
        f"models: ['bench:{MODEL}']\nconcurrency: 16\nretries: 4\n"
        f"providers:\n  bench: {{type: openai, base_url: '{url}/v1', api_key_env: {KEY_ENV}}}\n"
        f"pricing:\n  'bench:{MODEL}': {{input: 0.15, output: 0.60}}\n"
    )
    (root / "prompts" / "greet.txt").write_text("Hello {{ name }}, your ticket {{ ticket }} is {{ state }}.\n")
    lines = ["prompt: greet", "cases:"]
    for i in range(cases):
        lines += [f"  - id: case-{i}", f"    input: {{name: user{i}, ticket: T-{i}, state: open}}",
                  f"    expected: Hello user{i}, your ticket T-{i} is open."]
    (root / "goldens" / "greet.yaml").write_text("\n".join(lines) + "\n")
    return root


def forget_cache(root: Path) -> None:
    shutil.rmtree(root / ".promptci", ignore_errors=True)


def promptci_command() -> list[str]:
    script = Path(sys.executable).with_name("promptci")
    return [str(script)] if script.exists() else [sys.executable, "-m", "promptci.cli"]


def run_promptci(root: Path, concurrency: int, *extra: str) -> Measured:
    return run_measured([*promptci_command(), "run", "-q", "-j", str(concurrency), "--root", str(root), *extra])


# The floor: a bare loop of the same SDK calls, in a process of its own


async def bare_loop(base_url: str, requests: int, concurrency: int) -> None:
    import openai

    client = openai.AsyncOpenAI(api_key=os.environ[KEY_ENV], base_url=f"{base_url}/v1", max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            stream = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"Hello user{i}, your ticket T-{i} is open.\n"}],
                stream=True, stream_options={"include_usage": True},
            )
            async for _chunk in stream:
                pass

    await asyncio.gather(*(one(i) for i in range(requests)))
    await client.close()


def run_floor(url: str, requests: int, concurrency: int) -> Measured:
    return run_measured([sys.executable, __file__, "--bare-loop", url, str(requests), str(concurrency)])


# Issue 4: the ledger's cost, timed inside an unmodified promptci run (no switch in product code)


class LedgerTimingConnection:
    """Stands in for the store's sqlite3 connection: times each ledger INSERT ("timed") or skips it ("off");
    everything else goes straight through. A ledger row shares its commit with the cached answer or the
    result, so its own INSERT is what the ledger adds; a row stored alone (an error) is timed with its commit."""

    def __init__(self, connection: Any, mode: str, spent: list[float]) -> None:
        self._connection, self._mode, self._spent = connection, mode, spent

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if not sql.startswith("INSERT INTO ledger"):
            return self._connection.execute(sql, params)
        started = time.perf_counter()
        if self._mode == "timed":
            self._connection.execute(sql, params)
        self._spent[0] += time.perf_counter() - started
        self._spent[1] += 1
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def ledger_probe(mode: str, report_path: str, promptci_args: list[str]) -> None:
    """Run the promptci CLI in this process with the ledger rows' building and INSERTs timed ("timed")
    or their INSERTs skipped ("off")."""
    from promptci import client, store

    spent = [0.0, 0]
    open_store, build = store.Store.open.__func__, client.ledger_entry  # type: ignore[attr-defined]

    def open_timed(cls: type[store.Store], path: Path) -> store.Store:
        opened = open_store(cls, path)
        opened._conn = LedgerTimingConnection(opened._conn, mode, spent)  # type: ignore[assignment]
        return opened

    def timed_build(*args: Any, **kwargs: Any) -> store.LedgerEntry:
        started = time.perf_counter()
        entry = build(*args, **kwargs)
        spent[0] += time.perf_counter() - started
        return entry

    store.Store.open = classmethod(open_timed)  # type: ignore[method-assign,assignment]
    client.ledger_entry = timed_build
    from promptci.cli import main

    sys.argv = ["promptci", *promptci_args]
    try:
        main()
    finally:
        Path(report_path).write_text(json.dumps({"ledger_s": spent[0], "rows": spent[1]}))


def run_ledger_probe(root: Path, mode: str, concurrency: int) -> tuple[Measured, float, int]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        report = handle.name
    try:
        measured = run_measured([sys.executable, __file__, "--ledger-probe", mode, report, "--",
                                 "run", "-q", "-j", str(concurrency), "--root", str(root)])
        probe = json.loads(Path(report).read_text())
    finally:
        os.unlink(report)
    return measured, probe["ledger_s"], probe["rows"]


# Printing


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def show(name: str, m: Measured, target: str, ok: bool | None, extra: str = "") -> None:
    mark = "info" if ok is None else verdict(ok)
    code = "" if m.exit_code == 0 else f", exit {m.exit_code}"
    print(f"{name:<34} {m.wall_s:6.2f} s wall {m.cpu_s:6.2f} s CPU {m.peak_rss_mb:5.0f} MB{code}{extra}"
          f" | target {target}: {mark}", flush=True)
    if m.exit_code not in (0, 1) and m.stderr:
        print("    " + m.stderr.strip().splitlines()[-1], flush=True)


def summary_of(report: Path) -> dict:
    return json.loads(report.read_text())["summary"]


# The measurements


def bench_live(work: Path, cases: int, repeats: int) -> None:
    """Floor and promptci at -j 16 and -j 64, the cached re-run, and the ledger's share (100 ms server)."""
    with fake_server(LATENCY_S) as url:
        root = write_project(work / "live", url, cases)
        for jobs in (16, 64):
            floor, promptci, sent = race_floor(url, root, cases, jobs, repeats)
            spread = f" (best of {repeats})" if repeats > 1 else ""
            show(f"floor: bare SDK loop -j {jobs}", floor[0], "reference", None, f"{spread}{walls(floor)}")
            best = promptci[0]
            if jobs == 16:
                ideal = math.ceil(cases / 16) * LATENCY_S
                target, ok = f"<= 1.2 x {ideal:.1f} s = {1.2 * ideal:.2f} s", best.wall_s <= 1.2 * ideal
            else:
                limit = 1.3 * floor[0].wall_s
                target, ok = f"<= 1.3 x floor = {limit:.2f} s", best.wall_s <= limit
            show(f"promptci -j {jobs}, {cases} cases", best, target, ok and best.exit_code == 0 and sent == cases,
                 f", {sent} requests, {best.wall_s / floor[0].wall_s:.2f} x floor{spread}{walls(promptci)}")
        before = requests_served(url)
        m = run_promptci(root, 16)
        sent = requests_served(url) - before
        show(f"promptci cached, {cases} cases", m, "< 2 s, 0 requests", m.wall_s < 2 and sent == 0
             and m.exit_code == 0, f", {sent} requests")
        bench_ledger(root, cases)


def race_floor(url: str, root: Path, cases: int, jobs: int,
               repeats: int) -> tuple[list[Measured], list[Measured], int]:
    """The floor and promptci in turns (so a busy moment on the box hits both), each sorted best first;
    and the requests promptci sent per run."""
    floor: list[Measured] = []
    promptci: list[Measured] = []
    sent = 0
    for _ in range(repeats):
        floor.append(run_floor(url, cases, jobs))
        forget_cache(root)
        before = requests_served(url)
        promptci.append(run_promptci(root, jobs))
        sent = max(sent, requests_served(url) - before)
    return sorted(floor, key=wall_of), sorted(promptci, key=wall_of), sent


def wall_of(measured: Measured) -> float:
    return measured.wall_s


def walls(runs: list[Measured]) -> str:
    return "" if len(runs) < 2 else f": {' / '.join(f'{m.wall_s:.2f}' for m in runs)} s"


def bench_ledger(root: Path, cases: int) -> None:
    """Time the ledger writes inside a real -j 16 run; beside it the same run with them skipped."""
    forget_cache(root)
    m_on, ledger_s, rows = run_ledger_probe(root, "timed", 16)
    share = ledger_s / m_on.wall_s
    show(f"ledger: time in writes, {cases} cases", m_on, "< 5% of wall", share < 0.05 and rows >= cases,
         f", {rows} rows in {ledger_s * 1000:.0f} ms = {share:.1%}")
    forget_cache(root)
    m_off, _, _ = run_ledger_probe(root, "off", 16)
    show("ledger: same run, writes skipped", m_off, "reference (noise ~ +-5%)", None,
         f", on/off {m_on.wall_s / m_off.wall_s:.3f}")


def bench_many_cached(work: Path, cases: int) -> None:
    """Fill the cache for `cases` cases against a 5 ms server, then time the run that the cache answers."""
    with fake_server(FILL_LATENCY_S) as url:
        root = write_project(work / "many", url, cases)
        before = requests_served(url)
        fill = run_promptci(root, 64)
        show(f"fill: {cases} cases at 5 ms, -j 64", fill, "reference", None,
             f", {requests_served(url) - before} requests")
        before = requests_served(url)
        m = run_promptci(root, 64)
        sent = requests_served(url) - before
        ok = m.wall_s < 10 and m.peak_rss_mb < 300 and sent == 0 and m.exit_code == 0
        show(f"promptci cached, {cases} cases", m, "< 10 s, < 300 MB, 0 requests", ok, f", {sent} requests")


def bench_rate_limited(work: Path, cases: int) -> None:
    """10% of requests answered 429 with Retry-After: 1: every case must still end scored."""
    with fake_server(LATENCY_S, rate_limit_p=0.1) as url:
        root = write_project(work / "limited", url, cases)
        report = work / "limited.json"
        before = requests_served(url)
        m = run_promptci(root, 16, "-o", f"json={report}")
        sent = requests_served(url) - before
        summary = summary_of(report) if report.exists() else {"errors": -1, "passed": 0}
        ok = summary["errors"] == 0 and summary["passed"] == cases and m.exit_code == 0
        show(f"promptci 10% 429, {cases} cases", m, "0 errors, all scored", ok,
             f", {sent} requests, {summary['errors']} errors, {summary['passed']} passed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 and 2,000 cases instead of 1,000 and 10,000")
    parser.add_argument("--keep", type=Path, help="build the projects here and keep them (default: a temp dir)")
    args = parser.parse_args()
    cases, many = (200, 2_000) if args.quick else (1_000, 10_000)
    print(f"promptci provider bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"fake server at {LATENCY_S * 1000:.0f} ms a request (streamed), {cases} cases", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        bench_live(work, cases, repeats=1 if args.quick else 3)
        bench_many_cached(work, many)
        bench_rate_limited(work, cases)
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-loop":
        asyncio.run(bare_loop(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--ledger-probe":
        ledger_probe(sys.argv[2], sys.argv[3], sys.argv[5:])
    else:
        main()
