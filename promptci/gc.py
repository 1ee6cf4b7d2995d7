"""`promptci gc`: prune the project's store (the state folder's database, or the team store) so that it does not
grow without bound.

Runs older than --days or beyond the newest --runs go, with their results and the ledger rows of their cache
hits; the last run of each branch stays whatever its age. A cache row goes when no kept run used it, the
committed recordings do not hold its answer, and it is older than the pruning cutoff. Billed ledger rows
(what was spent) go only once older than --days and never within a day of now, so `cost --check` still sees
recent spend. Then the SQLite file is vacuumed (PostgreSQL reuses the space itself). Through the Store interface:
the same rules for both stores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from promptci.errors import PromptCIError
from promptci.project import Project
from promptci.recordings import load_recordings, recording_key
from promptci.store import Store
from promptci.storechoice import open_store, store_url
from promptci.types import parse_iso

BUDGET_WINDOW = timedelta(days=1)  # billed ledger rows this young stay whatever --days says (budgets.daily_usd)


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


def iso(moment: datetime) -> str:
    """As now_iso() writes every stored timestamp, so that text compares like time."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def collect(project: Project, policy: GcPolicy, now: datetime | None = None) -> GcReport:
    """Prune the project's store (its database file, or the team store) by the policy and compact it; a project
    without a database file or a team store has nothing."""
    if store_url(project) is None and not project.db_path.is_file():
        return GcReport(notes=(f"no database at {project.shown(project.db_path)}: nothing to collect",))
    now = now or datetime.now(timezone.utc)
    cutoff = iso(now - timedelta(days=policy.days)) if policy.days is not None else None
    keep = recording_keys(project)
    with open_store(project) as store:
        before = store.size_bytes()
        report = prune(store, policy, cutoff, keep, billed_cutoff(cutoff, now))
        compacted = store.compact()
        after = store.size_bytes()
    return replace(report, bytes_before=before, bytes_after=after,
                   notes=(*report.notes, *([compacted] if compacted else [])))


def recording_keys(project: Project) -> set[str]:
    return set(load_recordings(project.recordings_dir).answers)


def billed_cutoff(cutoff: str | None, now: datetime) -> float:
    """The ledger's `ts` before which billed rows go: the day cutoff, but never within BUDGET_WINDOW of now
    (`cost --check` compares that spend with budgets.daily_usd); without a cutoff, billed rows never go."""
    if cutoff is None:
        return float("-inf")
    return min(parse_iso(cutoff).timestamp(), (now - BUDGET_WINDOW).timestamp())


def prune(store: Store, policy: GcPolicy, cutoff: str | None, recorded: set[str], billed_before: float) -> GcReport:
    """Decide from what the store holds, then delete in one transaction. Only the runs read here are pruned, so a
    run another runner starts meanwhile (the team store) is kept, with its ledger rows and the answers it used."""
    runs = store._read("SELECT id, started_at, COALESCE(git_branch, '') FROM runs ORDER BY started_at DESC, rowid DESC")
    by_policy = {run_id for index, (run_id, started, _) in enumerate(runs)
                 if (policy.runs is None or index < policy.runs) and (cutoff is None or is_after(started, cutoff))}
    last_of_branch: dict[str, str] = {}
    for run_id, _, branch in runs:
        last_of_branch.setdefault(branch, run_id)
    kept = by_policy | set(last_of_branch.values())
    pruned = json.dumps([run_id for run_id, _, _ in runs if run_id not in kept])
    doomed, notes = cache_to_prune(store, runs, kept, pruned, cutoff, recorded)
    listed = store.JSON_LIST_VALUES
    results, pruned_runs, ledger, cache_rows = store.write_counted([
        (f"DELETE FROM results WHERE run_id IN ({listed})", (pruned,)),
        (f"DELETE FROM runs WHERE id IN ({listed})", (pruned,)),
        ("DELETE FROM ledger WHERE (run_id IS NULL OR run_id NOT IN (SELECT id FROM runs))"
         " AND (status = 'cached' OR ts < ?)", (billed_before,)),
        (f"DELETE FROM cache WHERE key IN ({listed})", (json.dumps(doomed),)),
    ])
    return GcReport(runs=pruned_runs, results=results, cache_rows=cache_rows, ledger_rows=ledger,
                    kept_runs=len(kept), branches=len(set(last_of_branch.values()) - by_policy), notes=notes)


def is_after(started: str, cutoff: str) -> bool:
    try:
        return parse_iso(started) >= parse_iso(cutoff)
    except (ValueError, TypeError):
        return True  # a run whose start cannot be read is kept


def cache_to_prune(store: Store, runs: list[tuple[Any, ...]], kept: set[str], pruned: str, cutoff: str | None,
                   recorded: set[str]) -> tuple[list[str], tuple[str, ...]]:
    """The keys of cache rows no remaining run used (by the ledger's cache_key), not in the recordings, written
    before the oldest kept run started (or the day cutoff, whichever is later)."""
    oldest_kept = min((started for run_id, started, _ in runs if run_id in kept), default=None)
    limits = [c for c in (cutoff, oldest_kept) if c is not None]
    if not limits:
        return [], ()
    before = max(limits)
    notes: tuple[str, ...] = ()
    remaining = f"SELECT id FROM runs WHERE id NOT IN ({store.JSON_LIST_VALUES})"
    unknown = store._read(f"SELECT 1 FROM ledger WHERE run_id IN ({remaining}) AND cache_key IS NULL"
                          " AND status IN ('ok', 'cached') LIMIT 1", (pruned,))
    if unknown:  # runs from before the ledger kept cache keys: their answers are kept by age alone
        if cutoff is None:
            return [], ("cache rows were kept: the kept runs predate the cache keys in the ledger; "
                        "give --days to prune them by age",)
        before = cutoff
        notes = ("cache rows of runs older than the ledger's cache keys were pruned by age only (--days)",)
    candidates = store._read(
        "SELECT key, identity FROM cache WHERE created_at < ? AND key NOT IN"
        f" (SELECT cache_key FROM ledger WHERE cache_key IS NOT NULL AND run_id IN ({remaining}))",
        (before, pruned))
    return [key for key, identity in candidates if not is_recorded(identity, recorded)], notes


def is_recorded(identity: str, recorded: set[str]) -> bool:
    if not recorded:
        return False
    try:
        return recording_key(json.loads(identity)) in recorded
    except (ValueError, TypeError, AttributeError):
        return False
