"""The PostgreSQL team store against the SQLite file (issue 21), on a throwaway cluster started here
(tests/pgserver.py: initdb + pg_ctl on a Unix socket, fsync off as in the tests).

1. A cached run: one real `promptci run` of CASES cases against the fake server (its own process) fills the
   store, then the same run again answered wholly from the cache, timed (best of 3) with the SQLite file and
   with PROMPTCI_STORE; and the store reads alone (cached_keys + cache_get for every case).
3. What the day sums (migration 11) add to each ledger write: WRITES rows written one commit each, as a run writes
   them (record_request), into a new store with its triggers and into one whose triggers were dropped, alternated.
2. `promptci cost` and `promptci cost --check` (a day over budgets.daily_usd: the alert's top spenders too) over
   LEDGER ledger rows (inserted with SQL; latencies and TTFTs drawn at random, so the percentiles sort real
   work), with both stores: the command's wall time (start-up included) and peak RSS (os.wait4), best of 2.

    python bench/bench_teamstore.py                 # 1,000 cases, 1,000,000 ledger rows
    python bench/bench_teamstore.py --quick         # 200 cases, 100,000 ledger rows
    python bench/bench_teamstore.py --ledger-only   # part 2 alone
    python bench/bench_teamstore.py --ledger-only --compare   # and the Python aggregation of before, for comparison
    python bench/bench_teamstore.py --ledger-only --before DIR  # and DIR's promptci package, alternated with this
    python bench/bench_teamstore.py --writes        # part 3 alone
    # (an older commit's: git archive COMMIT promptci | tar -x -C DIR)
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from promptci.pgstore import PostgresStore
from promptci.store import LEDGER_COLUMNS, Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fakeserver_process import fake_server_process, requests_served, write_greet_project
from pgserver import PostgresServer, running_postgres


def promptci(root: Path, *args: str, store: str | None) -> float:
    env = {**os.environ, "BENCH_KEY": "sk-bench-1234567890"}
    env.pop("PROMPTCI_STORE", None)
    if store:
        env["PROMPTCI_STORE"] = store
    started = time.perf_counter()
    done = subprocess.run(["promptci", *args, "--root", str(root)], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"promptci {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed


def read_cache(store: Store) -> float:
    keys = [row[0] for row in store._read("SELECT key FROM cache")]
    started = time.perf_counter()
    for start in range(0, len(keys), 500):
        store.cached_keys(keys[start:start + 500])
    for key in keys:
        assert store.cache_get(key) is not None
    return time.perf_counter() - started


def measured(root: Path, *args: str, store: str | None, package: str | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, exit code) of one `promptci ARGS` in its own process; `package`: a folder
    holding another promptci package to run instead of this one."""
    env = {**os.environ}
    env.pop("PROMPTCI_STORE", None)
    if package:
        env["PYTHONPATH"] = package
    if store:
        env["PROMPTCI_STORE"] = store
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        command = [str(Path(sys.executable).with_name("promptci")), *args, "--root", str(root)]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            err.seek(0)
            raise SystemExit(f"promptci {' '.join(args)} exited {code}: {err.read()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, code


# The Python aggregation `cost` used before the store summed the ledger (tests/test_cost_sql.py keeps it as the
# reference), run the same way for a comparison under the same load
PYTHON_REPORT = """
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from promptci.storechoice import open_store
from promptci.project import discover
from test_cost_sql import python_report
project = discover(Path(sys.argv[1]))
with open_store(project, readonly=True) as store:
    python_report(store, datetime.now(timezone.utc) - timedelta(days=7), ("day",), project.settings().budgets.daily_usd)
"""


def measured_python_report(root: Path, store: str | None) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "tests")}
    env.pop("PROMPTCI_STORE", None)
    if store:
        env["PROMPTCI_STORE"] = store
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", PYTHON_REPORT, str(root)], env=env)
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def fill_ledger(store: Store, rows: int) -> None:
    from promptci.storecopy import insert

    draw = random.Random(21)
    base = time.time() - 3 * 86_400
    prompts, models, branches = [f"p{i}" for i in range(20)], ["bench:m", "bench:n", "other:x"], ["main", "f1", "f2"]
    statement = insert("ledger", ("ts", *LEDGER_COLUMNS))
    batch = []
    for i in range(rows):
        ts = base + i * (3 * 86_400 / rows)
        at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))
        batch.append((statement, (ts, at, f"run-{i // 1000}", "abc", prompts[i % 20], f"c{i}", models[i % 3], "bench",
                                  70, 5, 0, 0.000013, None, draw.uniform(50, 900), draw.uniform(10, 90), "ok", 1,
                                  "case", None, None,
                                  branches[i % 3], "ci", None)))  # no request id: as rows from before them
        if len(batch) == 5_000:
            store._write_together(batch)
            batch = []
    if batch:
        store._write_together(batch)


# Back to schema 10: migration 11's triggers and day sums dropped (for --before: an older package's stores)
_DAY_SUM_TABLES = ["DROP TABLE ledger_days", "DROP TABLE ledger_day_timings"]
SCHEMA_10 = {
    "Store": ["DROP TRIGGER ledger_days_insert", "DROP TRIGGER ledger_days_delete", "DROP TRIGGER ledger_days_update",
              *_DAY_SUM_TABLES, "PRAGMA user_version = 10"],
    "PostgresStore": [*(f"DROP TRIGGER ledger_days_{event} ON ledger" for event in ("insert", "delete", "update")),
                      *(f"DROP FUNCTION promptci_ledger_days_{event}()" for event in ("insert", "delete", "update")),
                      *_DAY_SUM_TABLES,
                      "UPDATE promptci_schema SET version = 10"],
}


def best(times: list[float]) -> float:
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ledger-only", action="store_true", help="only `cost` over the big ledger")
    parser.add_argument("--compare", action="store_true", help="time the Python aggregation of before too")
    parser.add_argument("--writes", action="store_true", help="only the cost of the day sums to each ledger write")
    parser.add_argument("--before", metavar="DIR", help="time DIR's promptci package too, alternated with this one")
    options = parser.parse_args()
    cases, ledger_rows = (200, 100_000) if options.quick else (1_000, 1_000_000)
    if options.writes:
        with tempfile.TemporaryDirectory() as folder, running_postgres() as pg:
            ledger_write_cost(Path(folder), pg, 2_000 if options.quick else 5_000)
        return
    with tempfile.TemporaryDirectory() as folder, running_postgres() as pg, fake_server_process(0.0) as url:
        if not options.ledger_only:
            cached_run(Path(folder), pg, url, cases)
        ledger_costs(Path(folder), pg, url, ledger_rows, options.compare, options.before)


def cached_run(folder: Path, pg: PostgresServer, url: str, cases: int) -> None:
    root = folder / "project"
    write_greet_project(root, cases, url, "budgets: {daily_usd: 1000000}\n")
    team = pg.new_database()
    for store in (None, team):
        promptci(root, "run", "-q", store=store)
    served = requests_served(url)
    runs = {name: best([promptci(root, "run", "-q", store=store) for _ in range(3)])
            for name, store in (("sqlite", None), ("postgres", team))}
    assert requests_served(url) == served, "a cached run sent requests"
    with Store.open(root / ".promptci" / "promptci.db") as local, PostgresStore.open(team) as shared:
        reads = {"sqlite": best([read_cache(local) for _ in range(3)]),
                 "postgres": best([read_cache(shared) for _ in range(3)])}
    print(f"cached run of {cases:,} cases (best of 3): SQLite {runs['sqlite']:.2f} s, PostgreSQL "
          f"{runs['postgres']:.2f} s ({runs['postgres'] / runs['sqlite']:.2f}x)")
    print(f"store reads of {cases:,} cached answers (cached_keys + cache_get each): SQLite "
          f"{reads['sqlite'] * 1000:.0f} ms, PostgreSQL {reads['postgres'] * 1000:.0f} ms "
          f"({reads['postgres'] / reads['sqlite']:.2f}x)")


def ledger_costs(folder: Path, pg: PostgresServer, url: str, ledger_rows: int, compare: bool,
                 before: str | None = None) -> None:
    """`cost` and `cost --check` over the big ledger; the budget (a quarter of a day's spend) is passed every day.
    With `before`, each command runs with that package and with this one in turn (the load changes by the minute)."""
    ledger_db = folder / "ledger" / ".promptci" / "promptci.db"
    daily_usd = ledger_rows * 0.000013 / 3 / 4
    write_greet_project(ledger_db.parent.parent, 1, url, f"budgets: {{daily_usd: {daily_usd}}}\n")
    big = pg.new_database()
    with Store.open(ledger_db) as local, PostgresStore.open(big) as shared:
        fill_ledger(local, ledger_rows)
        fill_ledger(shared, ledger_rows)
    assert sqlite3.connect(ledger_db).execute("SELECT count(*) FROM ledger").fetchone()[0] >= ledger_rows
    # an older package refuses a newer schema: it gets stores of the same rows at schema 10 (before the day sums)
    old_db, old_big = folder / "old" / ".promptci" / "promptci.db", pg.new_database()
    if before:
        write_greet_project(old_db.parent.parent, 1, url, f"budgets: {{daily_usd: {daily_usd}}}\n")
        with Store.open(old_db) as local, PostgresStore.open(old_big) as shared:
            for store in (local, shared):
                for statement in SCHEMA_10[type(store).__name__]:
                    store._write(statement, ())
                fill_ledger(store, ledger_rows)
    empty = folder / "empty"
    write_greet_project(empty, 1, url)
    packages = (("before", before), ("this", None)) if before else (("this", None),)
    for label, package in packages * 2 if before else packages:
        wall, rss, _ = min(measured(empty, "cost", store=None, package=package) for _ in range(2))
        print(f"`promptci cost` with no store at all (start-up alone, best of 2){' ' + label if before else ''}: "
              f"{wall:.2f} s, peak RSS {rss:.0f} MiB")
    for name, store, old_store in (("sqlite", None, None), ("postgres", big, old_big)):
        for args in (("cost", "--since", "7d"), ("cost", "--since", "7d", "--check"),
                     ("cost", "--since", "2d", "--check")):  # the last: examples/github/nightly.yml's
            for label, package in packages * 2 if before else packages:
                root = (old_db if package else ledger_db).parent.parent
                wall, rss, code = min(measured(root, *args, store=old_store if package else store, package=package)
                                      for _ in range(2))
                print(f"`promptci {' '.join(args)}` over {ledger_rows:,} ledger rows ({name}, best of 2)"
                      f"{' ' + label if before else ''}: {wall:.2f} s, peak RSS {rss:.0f} MiB, exit {code}")
        if compare:
            wall, rss = measured_python_report(ledger_db.parent.parent, store)
            print(f"the Python aggregation of before (every row read, tests/test_cost_sql.py), {name}: {wall:.2f} s, "
                  f"peak RSS {rss:.0f} MiB")

def ledger_write_cost(folder: Path, pg: PostgresServer, writes: int) -> None:
    """Microseconds a ledger row takes to write (one commit each), with the day sums' triggers and without."""
    from promptci.store import LedgerEntry

    drops = {"sqlite": ["DROP TRIGGER ledger_days_insert"], "postgres": ["DROP TRIGGER ledger_days_insert ON ledger"]}
    rows = [LedgerEntry(at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - i)), run_id="r",
                        git_commit="abc", prompt=f"p{i % 20}", case_id=f"c{i}", model="bench:m", provider="bench",
                        input_tokens=70, output_tokens=5, cost_usd=0.000013, latency_ms=100.0 + i % 700,
                        ttft_ms=10.0 + i % 80, branch="main", actor="ci", request_id=f"req-{i}")
            for i in range(writes)]
    best_of: dict[tuple[str, bool], float] = {}
    for attempt in range(3):
        for name in ("sqlite", "postgres"):
            for with_sums in (True, False):
                store = (Store.open(folder / f"w{attempt}{with_sums}.db") if name == "sqlite"
                         else PostgresStore.open(pg.new_database()))
                with store:
                    for statement in ([] if with_sums else drops[name]):
                        store._write(statement, ())
                    started = time.perf_counter()
                    for row in rows:
                        store.record_request(row)
                    spent = (time.perf_counter() - started) / writes * 1e6
                best_of[name, with_sums] = min(spent, best_of.get((name, with_sums), spent))
    for name in ("sqlite", "postgres"):
        on, off = best_of[name, True], best_of[name, False]
        print(f"a ledger row written with its own commit ({name}, {writes:,} rows, best of 3): {on:.0f} us with the "
              f"day sums, {off:.0f} us without (+{on - off:.0f} us a row)")


if __name__ == "__main__":
    main()
