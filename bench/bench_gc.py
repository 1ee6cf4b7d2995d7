"""The cached CI state of a 10,000-case project before and after `promptci gc` (issue 17).

One real `promptci run` of 10,000 cases against the fake server (its own process) fills the cache and the
ledger. The history a PR check accumulates is then added with SQL copies of those rows: HISTORY runs, one a day
going back, each a full run answered from the cache (results and cache-hit ledger rows), every PR run with
CHANGED new answers (cache rows and billed ledger rows), every fifth run on main and the others on pull
requests (no branch: a detached checkout). Then `promptci gc` with the action's default options, the size of
.promptci/ before and after, and a re-run that must send 0 requests (its answers are main's last run's).

    python bench/bench_gc.py            # 10,000 cases, 90 runs of history
    python bench/bench_gc.py --quick    # 1,000 cases, 30 runs
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakeserver_process import fake_server_process, requests_served, write_greet_project

GC_OPTIONS = ["--days", "14", "--runs", "5"]  # action.yml's `gc` default
CHANGED = 500  # new answers per PR run


def state_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / ".promptci").rglob("*") if p.is_file())


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def add_history(db: Path, history: int) -> None:
    """HISTORY more runs copied from the first, one a day back from yesterday."""
    now = datetime.now(timezone.utc)
    with sqlite3.connect(db) as conn:
        first = conn.execute("SELECT id FROM runs").fetchone()[0]
        cache_columns = [row[1] for row in conn.execute("PRAGMA table_info(cache)")]
        for day in range(1, history + 1):
            run_id = f"history-{day:04d}"
            when = now - timedelta(days=day)
            branch = "main" if day % 5 == 0 else None
            conn.execute("INSERT INTO runs (id, started_at, finished_at, git_commit, git_dirty, git_branch, models,"
                         " options, summary, problems, interrupted, resolved_models) SELECT ?, ?, ?, git_commit,"
                         " git_dirty, ?, models, options, summary, problems, interrupted, resolved_models FROM runs"
                         " WHERE id = ?", (run_id, iso(when), iso(when), branch, first))
            conn.execute("INSERT INTO results (run_id, prompt, case_id, model, status, data, position)"
                         " SELECT ?, prompt, case_id, model, status, data, position FROM results WHERE run_id = ?",
                         (run_id, first))
            ledger_columns = [row[1] for row in conn.execute("PRAGMA table_info(ledger)") if row[1] != "id"]
            # the copies have no request id (unique): as rows written before request ids
            copied = ", ".join(c for c in ledger_columns if c not in ("run_id", "ts", "at", "status", "request_id"))
            conn.execute(f"INSERT INTO ledger (run_id, ts, at, status, {copied}) SELECT ?, ?, ?, 'cached', {copied}"
                         " FROM ledger WHERE run_id = ?", (run_id, when.timestamp(), iso(when), first))
            if branch is None:  # a PR's new answers: cache rows under new keys, billed
                others = ", ".join(c for c in cache_columns if c not in ("key", "created_at"))
                conn.execute(f"INSERT INTO cache (key, created_at, {others}) SELECT key || ?, ?, {others} FROM cache"
                             " ORDER BY key LIMIT ?", (f"-{day}", iso(when), CHANGED))
                conn.execute(f"INSERT INTO ledger (run_id, ts, at, status, {copied}) SELECT ?, ?, ?, 'ok', "
                             f"{copied.replace('cache_key', 'cache_key || ?')} FROM ledger WHERE run_id = ?"
                             " ORDER BY cache_key LIMIT ?", (run_id, when.timestamp(), iso(when), f"-{day}", first,
                                                             CHANGED))
        # the real run is main's newest
        conn.execute("UPDATE runs SET git_branch = 'main' WHERE id = ?", (first,))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the size measured is the database's, not a WAL's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cases, history = (1_000, 30) if args.quick else (10_000, 90)
    env = {"BENCH_KEY": "sk-bench", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    with tempfile.TemporaryDirectory() as folder, fake_server_process(0.0) as url:
        root = Path(folder) / "project"
        write_greet_project(root, cases, url)
        started = time.perf_counter()
        done = subprocess.run(["promptci", "run", "-q"], cwd=root, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        print(f"first run: {cases:,} cases, {requests_served(url):,} requests, "
              f"{time.perf_counter() - started:.1f} s; state {state_bytes(root) / 1e6:.1f} MB")
        add_history(root / ".promptci" / "promptci.db", history)
        before = state_bytes(root)
        print(f"with {history} runs of history ({history - history // 5} PR runs with {CHANGED} new answers each): "
              f"state {before / 1e6:.1f} MB")
        started = time.perf_counter()
        gc = subprocess.run(["promptci", "gc", *GC_OPTIONS], cwd=root, env=env, capture_output=True, text=True)
        assert gc.returncode == 0, gc.stderr
        print(f"promptci gc {' '.join(GC_OPTIONS)}: {time.perf_counter() - started:.1f} s")
        print(gc.stdout.strip())
        print(f"state after gc: {state_bytes(root) / 1e6:.1f} MB (was {before / 1e6:.1f} MB)")
        sent = requests_served(url)
        rerun = subprocess.run(["promptci", "run", "-q"], cwd=root, env=env, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        print(f"re-run after gc: {requests_served(url) - sent} requests sent")


if __name__ == "__main__":
    main()
