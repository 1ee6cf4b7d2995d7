"""`promptci gc`: prune the state folder's database so a cached CI state does not grow without bound.

Runs older than --days or beyond the newest --runs go, with their results and the ledger rows of their cache
hits; the last run of each branch stays whatever its age. A cache row goes when no kept run used it, the
committed recordings do not hold its answer, and it is older than the pruning cutoff. Billed ledger rows
(what was spent) go only once older than --days, so `cost --check` still sees recent spend. Then VACUUM.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from promptci.dbfile import LockWait, classify, connect, waiting_for_lock
from promptci.errors import PromptCIError
from promptci.project import Project
from promptci.recordings import load_recordings, recording_key
from promptci.types import parse_iso


@dataclass(frozen=True)
class GcPolicy:
    days: float | None = 30  # prune runs that started longer ago than this (None: any age)
    runs: int | None = 100  # keep at most this many of the newest runs (None: any number)

    def __post_init__(self) -> None:
        if self.days is not None and self.days < 0:
            raise PromptCIError(f"--days {self.days:g}: give an age of 0 days or more (e.g. --days 30)")
        if self.runs is not None and self.runs < 0:
            raise PromptCIError(f"--runs {self.runs}: give a number of runs of 0 or more (e.g. --runs 100)")


@dataclass(frozen=True)
class GcReport:
    runs: int = 0
    results: int = 0
    cache_rows: int = 0
    ledger_rows: int = 0
    kept_runs: int = 0
    branches: int = 0  # branches whose last run was kept for that reason alone
    bytes_before: int = 0
    bytes_after: int = 0
    notes: tuple[str, ...] = ()

    @property
    def freed(self) -> int:
        return max(0, self.bytes_before - self.bytes_after)

    def line(self) -> str:
        branches = f", {self.branches:,} of them as their branch's last" if self.branches else ""
        return (f"promptci gc: removed {count(self.runs, 'run')} ({count(self.results, 'result')}), "
                f"{count(self.cache_rows, 'cache row')} and {count(self.ledger_rows, 'ledger row')}; kept "
                f"{count(self.kept_runs, 'run')}{branches}; freed {megabytes(self.freed)} "
                f"({megabytes(self.bytes_before)} -> {megabytes(self.bytes_after)})")


def count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def database_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
               if p.exists())


def iso(moment: datetime) -> str:
    """As now_iso() writes every stored timestamp, so that text compares like time."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def collect(project: Project, policy: GcPolicy, now: datetime | None = None) -> GcReport:
    """Prune the project's database by the policy and vacuum it; a project without a database has nothing."""
    path = project.db_path
    if not path.is_file():
        return GcReport(notes=(f"no database at {project.shown(path)}: nothing to collect",))
    wait = LockWait.from_environment()
    before = database_bytes(path)
    conn = connect(path, False, wait)
    try:
        now = now or datetime.now(timezone.utc)
        cutoff = iso(now - timedelta(days=policy.days)) if policy.days is not None else None
        keep = recording_keys(project)
        report = waiting_for_lock(lambda: prune(conn, policy, cutoff, keep), wait, "cannot prune", path)
        waiting_for_lock(lambda: conn.execute("VACUUM"), wait, "cannot vacuum", path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as error:
        raise classify(error, path, "cannot prune") from None
    finally:
        conn.close()
    return GcReport(**{**report.__dict__, "bytes_before": before, "bytes_after": database_bytes(path)})


def recording_keys(project: Project) -> set[str]:
    return set(load_recordings(project.recordings_dir).answers)


def prune(conn: sqlite3.Connection, policy: GcPolicy, cutoff: str | None, recorded: set[str]) -> GcReport:
    """The deletes, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        report = prune_in_transaction(conn, policy, cutoff, recorded)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return report


def prune_in_transaction(conn: sqlite3.Connection, policy: GcPolicy, cutoff: str | None,
                         recorded: set[str]) -> GcReport:
    runs = conn.execute("SELECT id, started_at, COALESCE(git_branch, '') FROM runs"
                        " ORDER BY started_at DESC, rowid DESC").fetchall()
    by_policy = {run_id for index, (run_id, started, _) in enumerate(runs)
                 if (policy.runs is None or index < policy.runs) and (cutoff is None or is_after(started, cutoff))}
    last_of_branch: dict[str, str] = {}
    for run_id, _, branch in runs:
        last_of_branch.setdefault(branch, run_id)
    kept = by_policy | set(last_of_branch.values())
    conn.execute("CREATE TEMP TABLE gc_kept (id TEXT PRIMARY KEY)")
    try:
        conn.executemany("INSERT INTO gc_kept VALUES (?)", ((run_id,) for run_id in kept))
        results = conn.execute("DELETE FROM results WHERE run_id NOT IN (SELECT id FROM gc_kept)").rowcount
        pruned_runs = conn.execute("DELETE FROM runs WHERE id NOT IN (SELECT id FROM gc_kept)").rowcount
        ledger = conn.execute(
            "DELETE FROM ledger WHERE (run_id IS NULL OR run_id NOT IN (SELECT id FROM gc_kept))"
            " AND (status = 'cached' OR ts < ?)", (iso_ts(cutoff),)).rowcount
        cache_rows, notes = prune_cache(conn, runs, kept, cutoff, recorded)
    finally:
        conn.execute("DROP TABLE gc_kept")
    return GcReport(runs=pruned_runs, results=results, cache_rows=cache_rows, ledger_rows=ledger,
                    kept_runs=len(kept), branches=len(set(last_of_branch.values()) - by_policy), notes=notes)


def iso_ts(cutoff: str | None) -> float:
    """The ledger's `ts` of the cutoff; without one, billed rows are never pruned."""
    return parse_iso(cutoff).timestamp() if cutoff is not None else float("-inf")


def is_after(started: str, cutoff: str) -> bool:
    try:
        return parse_iso(started) >= parse_iso(cutoff)
    except (ValueError, TypeError):
        return True  # a run whose start cannot be read is kept


def prune_cache(conn: sqlite3.Connection, runs: list[tuple[str, str, str]], kept: set[str], cutoff: str | None,
                recorded: set[str]) -> tuple[int, tuple[str, ...]]:
    """Cache rows no kept run used (by the ledger's cache_key), not in the recordings, written before the
    oldest kept run started (or the day cutoff, whichever is later)."""
    oldest_kept = min((started for run_id, started, _ in runs if run_id in kept), default=None)
    limits = [c for c in (cutoff, oldest_kept) if c is not None]
    if not limits:
        return 0, ()
    before = max(limits)
    notes: tuple[str, ...] = ()
    unknown = conn.execute("SELECT 1 FROM ledger WHERE run_id IN (SELECT id FROM gc_kept) AND cache_key IS NULL"
                           " AND status IN ('ok', 'cached') LIMIT 1").fetchone()
    if unknown:  # runs from before the ledger kept cache keys: their answers are kept by age alone
        if cutoff is None:
            return 0, ("cache rows were kept: the kept runs predate the cache keys in the ledger; "
                       "give --days to prune them by age",)
        before = cutoff
        notes = ("cache rows of runs older than the ledger's cache keys were pruned by age only (--days)",)
    candidates = conn.execute(
        "SELECT key, identity FROM cache WHERE created_at < ? AND key NOT IN"
        " (SELECT cache_key FROM ledger WHERE cache_key IS NOT NULL AND run_id IN (SELECT id FROM gc_kept))",
        (before,)).fetchall()
    doomed = [(key,) for key, identity in candidates if not is_recorded(identity, recorded)]
    conn.executemany("DELETE FROM cache WHERE key = ?", doomed)
    return len(doomed), notes


def is_recorded(identity: str, recorded: set[str]) -> bool:
    if not recorded:
        return False
    try:
        return recording_key(json.loads(identity)) in recorded
    except (ValueError, TypeError, AttributeError):
        return False
