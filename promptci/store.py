"""The SQLite store in .promptci/promptci.db: runs, results, the request ledger and the response cache.

Every write commits at once (autocommit, WAL, synchronous=NORMAL), so a crash or Ctrl-C loses no
finished result. No header or API key is ever written here.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from promptci.dbfile import (
    QUIET_WAIT_MS,
    LockWait,
    UnstoredWrites,
    classify,
    connect,
    damaged_row,
    stored_result,
    waiting_for_lock,
)
from promptci.errors import EnvironmentFailure, PromptCIError
from promptci.interrupts import held
from promptci.types import (
    BrokenCase,
    CaseResult,
    Completion,
    GitInfo,
    Request,
    Run,
    Summary,
    ToolCall,
    Usage,
    canonical_json,
    content_hash,
    now_iso,
    parse_iso,
    summarize,
)

if TYPE_CHECKING:
    from promptci.stats import DropVerdict

PAGE_CACHE_KIB = 32_768  # SQLite's 2 MiB default thrashes on a 10,000-case cache; grows only as used


PLAIN_RUN = "run"  # the command of a run made by `promptci run` (without --shard)

@dataclass(frozen=True)
class LedgerEntry:
    """One request as billed: a case or judge request, a cache hit (with the cost it saved) or an error."""

    at: str  # ISO 8601 UTC
    run_id: str | None
    git_commit: str | None
    prompt: str | None
    case_id: str | None
    model: str  # as -m writes it
    provider: str | None  # the provider name, "openai", "local"
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cost_usd: float | None = None  # None: unknown price (never shown as 0)
    saved_usd: float | None = None  # what a cache hit would have cost
    latency_ms: float | None = None
    ttft_ms: float | None = None
    status: str = "ok"  # "ok" | "error" | "cached"
    attempts: int = 1
    kind: str = "case"  # "case" | "judge"
    error_kind: str | None = None
    cache_key: str | None = None  # the answer's cache key (fresh or a hit), for `promptci gc`; None for errors
    branch: str | None = None  # the git branch the request was made for (a PR's head branch in CI)
    actor: str | None = None  # who made it: the CI actor, or the user on a laptop
    # unique, made once per request by the client: a write retried after a connection dropped during its commit
    # stores the row once (the insert is a no-op on a known id). None: rows written before, or by hand
    request_id: str | None = None


LEDGER_COLUMNS = tuple(f.name for f in fields(LedgerEntry))
LEDGER_INSERT = (f"INSERT INTO ledger (ts, {', '.join(LEDGER_COLUMNS)})"
                 f" VALUES (?, {', '.join('?' * len(LEDGER_COLUMNS))}) ON CONFLICT (request_id) DO NOTHING")


def ledger_insert(entry: LedgerEntry) -> tuple[str, list[Any]]:
    return LEDGER_INSERT, [parse_iso(entry.at).timestamp(), *(getattr(entry, c) for c in LEDGER_COLUMNS)]


# The ledger's sums of dollars are sums of whole picodollars, in SQL and in Python alike: exact and independent of
# the order the rows are read in (a float sum changes in its last digits with the order, which two stores, or
# one store's query plans, do not share). Each amount is rounded to the unit half away from zero, as
# Store.usd_units_sql does; a price has at most 12 decimals per token, so every amount is kept whole.
USD_UNITS_PER_DOLLAR = 10**12


def usd_units(amount: float) -> int:
    scaled = amount * 1e12
    return -math.floor(0.5 - scaled) if amount < 0 else math.floor(scaled + 0.5)


def usd_of_units(units: int) -> float:
    return units / USD_UNITS_PER_DOLLAR


# `cost` gives the latency and TTFT percentiles of the timings rounded to whole milliseconds (half up): the store
# counts each group's rounded values (a few thousand per group, not a million timings read). Each percentile moves by
# at most 0.5 ms from the unrounded timings' (a shift of every value by at most 0.5 shifts every order statistic, and
# so their interpolation, by at most 0.5). Store.whole_ms_sql rounds in SQL as this rounds in Python; beyond
# WHOLE_MS_LIMIT (and for infinities) a float has no fraction left and stays as it is.
WHOLE_MS_LIMIT = 4e18


def whole_ms(value: float) -> float:
    return float(math.floor(value + 0.5)) if abs(value) < WHOLE_MS_LIMIT else value


Timings = tuple[list[tuple[float, int]], list[tuple[float, int]]]  # a group's (latencies, TTFTs) as (ms, count)


def counted(values: Iterable[float]) -> list[tuple[float, int]]:
    """(value, how many times) in ascending order of value."""
    return sorted((float(value), count) for value, count in Counter(values).items())


def grouped_by(columns: Sequence[str]) -> str:
    """The GROUP BY clause of a SELECT whose first len(columns) items are these columns ("" for none)."""
    return f" GROUP BY {', '.join(str(i + 1) for i in range(len(columns)))}" if columns else ""


def utc_day(number: int) -> str:
    """The ISO date of a day number (days since 1970-01-01, UTC)."""
    return (date(1970, 1, 1) + timedelta(days=number)).isoformat()


# `cost --by` names and their ledger columns (the day is Store.LEDGER_DAY_SQL)
LEDGER_DIMENSION_COLUMNS = {"prompt": "prompt", "model": "model", "run": "run_id", "branch": "branch", "actor": "actor"}


@dataclass(frozen=True)
class LedgerTotals:
    """One group of ledger rows summed by the database (cost/ledger.py turns it into a CostRow). Tokens count
    requests that were not cache hits; dollars are in USD units (usd_of_units)."""

    group: tuple[str | None, ...]  # the group's values, in the order of the dimensions asked for
    requests: int = 0
    judge_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_units: int = 0  # the known costs
    cost_unknown: int = 0  # answered requests (status ok) with no price
    saved_units: int = 0
    cache_hits: int = 0
    errors: int = 0


@dataclass(frozen=True)
class RunInfo:
    """One line of `promptci runs`."""

    run_id: str
    started_at: str
    finished_at: str | None
    commit: str | None
    dirty: bool
    models: tuple[str, ...]
    summary: Summary
    interrupted: bool
    command: str | None = None  # what made the run (None: stored before promptci recorded it)
    branch: str | None = None  # the git branch it ran on

    @property
    def cost_usd(self) -> float:
        return self.summary.cost_usd


@dataclass(frozen=True)
class CacheEntry:
    """A cached response with the request identity it answers ({"provider": ..., "request": ...})."""

    key: str
    identity: Mapping[str, Any]
    completion: Completion
    created_at: str


def summary_from_json(text: str | None) -> Summary | None:
    if text is None:
        return None
    known = {f.name for f in fields(Summary)}
    return Summary(**{k: v for k, v in json.loads(text).items() if k in known})


CACHE_ANSWER = ("text, chunks, input_tokens, output_tokens, cached_input_tokens, resolved_model, finish_reason,"
                " latency_ms, ttft_ms, tool_calls")


def stored_sequential(found: Any) -> dict[str, DropVerdict]:
    """The sequential tests add_run_notes kept, by candidate model; none when absent or not readable (written by
    another promptci): `show` then tests the stored samples anew, as for a run stored before they were kept."""
    if not isinstance(found, dict) or not found:
        return {}
    from promptci.stats import DropVerdict  # lazily: the library loads stats only when a run needs it

    try:
        return {str(model): DropVerdict.from_dict(test) for model, test in found.items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return {}


def usage_columns(usage: Usage | None) -> tuple[int | None, int | None, int | None]:
    if usage is None:
        return None, None, None
    return usage.input_tokens, usage.output_tokens, usage.cached_input_tokens


def tool_calls_column(completion: Completion) -> str | None:
    if not completion.tool_calls:
        return None
    return json.dumps([call.to_dict() for call in completion.tool_calls], ensure_ascii=False)


def completion_from_row(row: Sequence[Any]) -> Completion:
    """A cached answer from the CACHE_ANSWER columns, marked cached=True."""
    text, chunks, input_tokens, output_tokens, cached_input_tokens, resolved, finish, latency, ttft, calls = row
    usage = None if input_tokens is None else Usage(input_tokens, output_tokens, cached_input_tokens)
    return Completion(text=text, usage=usage, latency_ms=latency, ttft_ms=ttft, resolved_model=resolved,
                      finish_reason=finish, chunks=() if chunks == "[]" else tuple(json.loads(chunks)),
                      cached=True, tool_calls=tuple(ToolCall.from_dict(c) for c in json.loads(calls or "[]")))


# {model: [versions]} of the run `runs.id`, from its stored results, as migration 4 filled it for older runs
RESOLVED_MODELS_OF_RUN = (
    "SELECT json_group_object(model, json(versions)) FROM (SELECT model, json_group_array(resolved) AS versions"
    " FROM (SELECT DISTINCT model, json_extract(data, '$.resolved_model') AS resolved FROM results"
    " WHERE results.run_id = runs.id AND json_valid(data)) WHERE resolved IS NOT NULL GROUP BY model)"
)

class Store:
    """One connection to the project's database. Use Store.open(path); close it, or use `with`."""

    def __init__(self, conn: sqlite3.Connection, path: Path, wait: LockWait | None = None) -> None:
        self._conn = conn
        self._lock = threading.Lock()  # the runner may write from a worker thread
        self.path = path
        self._wait = wait or LockWait.from_environment()
        self._run_open = False  # between start_run and finish_run, a failed write is kept, not raised
        self.unstored = UnstoredWrites()

    @classmethod
    def open(cls, path: Path, readonly: bool = False, wait: LockWait | None = None) -> Store:
        """Checked on open (dbfile.connect): a damaged file is a CorruptState error, never a traceback later.
        readonly: for commands that only read (runs, show, cost), which then work on a read-only disk."""
        wait = wait or LockWait.from_environment()
        conn = connect(path, readonly, wait)
        conn.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        return cls(conn, path, wait)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # The two places the shared queries need the store's own SQL (PostgresStore overrides both): a subquery of
    # the versions each model of a run resolved to, and the runs.options JSON with some keys set, each key's
    # value given as a JSON text parameter.
    RESOLVED_MODELS_SQL = RESOLVED_MODELS_OF_RUN
    # an answer stored again under its key replaces the row (another runner's concurrent insert too)
    CACHE_INSERT_SQL = (f"INSERT OR REPLACE INTO cache (key, {CACHE_ANSWER}, created_at, identity)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

    @staticmethod
    def options_set(*keys: str) -> str:
        return "json_set(COALESCE(options, '{}'), " + ", ".join(f"'$.{key}', json(?)" for key in keys) + ")"

    # the values of a JSON list given as one parameter, as a subquery: a set of ids of any size in one statement
    JSON_LIST_VALUES = "SELECT value FROM json_each(?)"

    def _write(self, sql: str, params: Sequence[Any], what: str = "") -> None:
        self._write_together([(sql, params)], what)

    def _write_together(self, statements: Sequence[tuple[str, Sequence[Any]]], what: str = "") -> None:
        """Several writes in one transaction: all or none, and one commit instead of many.

        Another process's lock is waited for (saying so on stderr). Once a run has started, writes that
        still fail (the lock held past the timeout, a full disk) are kept in memory, retried with the next
        write and at finish_run, and named by self.unstored if they never get in: the run goes on."""
        with self._lock:
            if self._run_open and self.unstored.failure is not None:
                self.unstored.keep(statements, what)
                self._retry_unstored(wait=False)
                return
            try:
                waiting_for_lock(lambda: self._commit(statements), self._wait, "cannot store", self.path)
            except EnvironmentFailure as failure:
                if not self._run_open:
                    raise
                self.unstored.keep(statements, what, failure)

    def _commit(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        """All or none; the rows each statement changed. A signal landing here acts after the commit
        (promptci.interrupts); a transaction an interrupt still left open (a library caller's Ctrl-C) is rolled
        back before this one begins."""
        with held():
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            try:
                self._conn.execute("BEGIN IMMEDIATE")  # the write lock first: the busy wait applies, no stale snapshot
                changed = [self._conn.execute(sql, params).rowcount for sql, params in statements]
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            return changed

    def write_counted(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        """In one transaction, an EnvironmentFailure when refused (never kept for later): the rows each changed.
        For maintenance (`promptci gc`), not for a run's writes."""
        with self._lock:
            return waiting_for_lock(lambda: self._commit(statements), self._wait, "cannot store", self.path)

    def size_bytes(self) -> int:
        """The database's size on disk (the file with its WAL)."""
        return database_bytes(self.path)

    def compact(self) -> str | None:
        """Give the space of deleted rows back to the disk; a note when the store cannot."""
        with self._lock:
            waiting_for_lock(lambda: self._conn.execute("VACUUM"), self._wait, "cannot vacuum", self.path)
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return None

    def _commit_at_once(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """_commit without waiting for a lock: the run must not stall on every result while one is held."""
        self._conn.execute("PRAGMA busy_timeout = 0")
        try:
            self._commit(statements)
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {QUIET_WAIT_MS}")

    def _retry_unstored(self, wait: bool) -> None:
        """The kept writes, oldest first, until one fails again (without waiting unless asked)."""
        while self.unstored.pending:
            statements, _ = self.unstored.pending[0]
            try:
                if wait:
                    waiting_for_lock(partial(self._commit, statements), self._wait, "cannot store", self.path)
                else:
                    self._commit_at_once(statements)
            except sqlite3.Error as error:
                self.unstored.failure = classify(error, self.path, "cannot store")
                return
            except EnvironmentFailure as failure:
                self.unstored.failure = failure
                return
            self.unstored.pending.pop(0)
        self.unstored.failure = None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as error:
                raise classify(error, self.path, "cannot read") from None

    # runs and results

    def start_run(self, run_id: str, started_at: str, git: GitInfo, models: Sequence[str],
                  options: Mapping[str, Any], command: str = PLAIN_RUN) -> None:
        """`command`: what made the run (PLAIN_RUN, "diff A: main", "bisect step …", "merge", "pytest")."""
        self._write(
            "INSERT INTO runs (id, started_at, git_commit, git_dirty, git_branch, models, options, command)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, started_at, git.commit, int(git.dirty), git.branch, json.dumps(list(models)),
             canonical_json(dict(options)), command),
        )
        self._run_open = True

    def continue_run(self, run_id: str) -> None:
        """A stored run takes more results (a later round of --repeat auto): open again, as start_run leaves it,
        until finish_run; a process killed meanwhile leaves it unfinished, as it would any run."""
        self._write("UPDATE runs SET finished_at = NULL WHERE id = ?", (run_id,))
        self._run_open = True

    def add_result(self, run_id: str, result: CaseResult, requests: Sequence[LedgerEntry] = (),
                   position: int | None = None) -> None:
        """Store one finished result (at `position` in its run's plan), and with it (in the same commit) the
        ledger rows of the requests behind it when given: cheaper than record_request for each."""
        insert = (
            "INSERT INTO results (run_id, prompt, case_id, model, status, data, position)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, position) DO NOTHING",
            (run_id, result.prompt, result.case_id, result.model, result.status,
             json.dumps(result.to_dict(), ensure_ascii=False), position),
        )
        self._write_together([insert, *(ledger_insert(e) for e in requests)],
                             f"{result.prompt}/{result.case_id} on {result.model}")

    def finish_run(self, run_id: str, finished_at: str, summary: Summary, interrupted: bool,
                   problems: Sequence[str] = (), broken: Sequence[BrokenCase] = ()) -> None:
        """Store what the run's results do not say, so a stored run reproduces its reports."""
        if self.unstored.pending:
            with self._lock:
                self._retry_unstored(wait=True)
        self._write(
            "UPDATE runs SET finished_at = ?, summary = ?, interrupted = ?, problems = ?,"
            f" options = {self.options_set('broken')},"
            f" resolved_models = ({self.RESOLVED_MODELS_SQL}) WHERE id = ?",
            (finished_at, canonical_json(asdict(summary)), int(interrupted),
             json.dumps(list(problems), ensure_ascii=False),
             json.dumps([b.to_dict() for b in broken], ensure_ascii=False), run_id),
            "the run's summary",
        )
        self._run_open = False

    def load_run(self, run_id: str) -> Run | None:
        """The run with this id, or the only one whose id starts with it; None when there is none."""
        full_id = self._resolve_run_id(run_id)
        if full_id is None:
            return None
        row = self._read(
            "SELECT id, started_at, finished_at, git_commit, git_dirty, git_branch, models, summary,"
            " interrupted, problems, options, command FROM runs WHERE id = ?", (full_id,))[0]
        results = tuple(
            stored_result(self.path, row_id, data)
            for row_id, data in self._read("SELECT id, data FROM results WHERE run_id = ? ORDER BY position, id",
                                           (full_id,))
        )
        try:
            summary = summary_from_json(row[7]) or summarize(results)
            options = json.loads(row[10]) if row[10] else {}
            shard = options.get("shard")
            models, problems = tuple(json.loads(row[6])), tuple(json.loads(row[9]))
        except (ValueError, TypeError, AttributeError) as error:
            raise damaged_row(self.path, f"runs row {full_id!r}", error) from None
        return Run(run_id=row[0], started_at=row[1], finished_at=row[2],
                   git=GitInfo(commit=row[3], dirty=bool(row[4]), branch=row[5]),
                   models=models, results=results, summary=summary,
                   interrupted=bool(row[8]), problems=problems,
                   config_hash=options.get("config_hash"), shard=f"{shard[0]}/{shard[1]}" if shard else None,
                   notes=tuple(options.get("notes") or ()), baseline_model=options.get("baseline_model"),
                   command=row[11], environment=options.get("environment"),
                   broken=tuple(BrokenCase.from_dict(b) for b in options.get("broken") or ()),
                   sequential=stored_sequential(options.get("sequential")))

    def _resolve_run_id(self, run_id: str) -> str | None:
        if self._read("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
            return run_id
        matches = [r[0] for r in self._read(
            "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY started_at DESC LIMIT 6",
            (len(run_id), run_id))]
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise PromptCIError(f"run id {run_id!r} is ambiguous: it starts {shown}; give more characters")
        return matches[0] if matches else None

    def last_run(self, before: str | None = None, plain: bool = False) -> Run | None:
        """The latest finished or interrupted run; with `before` (a run id or an ISO time), the latest
        one that started before it; `plain`: only a plain `promptci run` (not a diff side, a bisect step, a
        shard, a merge or a pytest session; a run stored before commands were recorded counts as one)."""
        sql = "SELECT id FROM runs WHERE (finished_at IS NOT NULL OR interrupted = 1)"
        params: list[Any] = []
        if plain:
            sql += " AND (command = ? OR command IS NULL)"
            params.append(PLAIN_RUN)
        if before is not None:
            cutoff = self._read("SELECT started_at FROM runs WHERE id = ?", (before,))
            sql += " AND started_at < ? AND id != ?"
            params += [cutoff[0][0] if cutoff else before, before]
        rows = self._read(sql + " ORDER BY started_at DESC, rowid DESC LIMIT 1", params)
        return self.load_run(rows[0][0]) if rows else None

    def add_run_notes(self, run_id: str, notes: Sequence[str], baseline_model: str | None,
                      verdict: Mapping[str, Any] | None = None,
                      sequential: Mapping[str, DropVerdict] | None = None) -> None:
        """Keep what a run's reports say at the top (drift, the upgrade verdict), the verdict itself
        (verdict.policy.Verdict.to_dict()) and each candidate's sequential test (--repeat auto), so `show`
        says them again rather than testing the samples anew."""
        tests = {model: test.to_dict() for model, test in (sequential or {}).items()}
        self._write(f"UPDATE runs SET options = {self.options_set('notes', 'baseline_model', 'verdict', 'sequential')}"
                    " WHERE id = ?",
                    (json.dumps(list(notes)), json.dumps(baseline_model), json.dumps(verdict), json.dumps(tests),
                     run_id))

    def stored_verdict(self, run_id: str) -> Mapping[str, Any] | None:
        """The verdict add_run_notes kept for a run (None: none kept, as for runs stored before it was). The
        options are parsed here, not in SQL, so every store reads them alike."""
        rows = self._read("SELECT options FROM runs WHERE id = ?", (run_id,))
        try:
            options = json.loads(rows[0][0]) if rows and rows[0][0] else None
        except (TypeError, ValueError):
            return None
        found = options.get("verdict") if isinstance(options, dict) else None
        return found if isinstance(found, dict) else None

    def last_resolved_models(self, model: str, before_run_id: str) -> tuple[str, set[str]] | None:
        """(run id, the versions `model` resolved to) in the latest run before `before_run_id` that stored
        one; None when no earlier run did."""
        # the newest runs first (runs_started_at), stopping at the first that resolved the model: the cost does
        # not grow with the stored history. A run that never finished (killed) has no resolved_models.
        latest = self._read(
            "SELECT id, resolved_models FROM runs WHERE id != ?"
            " AND started_at <= (SELECT started_at FROM runs WHERE id = ?) AND json_valid(resolved_models)"
            " AND EXISTS (SELECT 1 FROM json_each(resolved_models) WHERE key = ?)"
            " ORDER BY started_at DESC, rowid DESC LIMIT 1", (before_run_id, before_run_id, model))
        if not latest:
            return None
        run_id, resolved = latest[0]
        return run_id, set(json.loads(resolved)[model])

    def list_runs(self, limit: int = 20) -> list[RunInfo]:
        rows = self._read(
            "SELECT id, started_at, finished_at, git_commit, git_dirty, models, summary, interrupted, command,"
            " git_branch FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,))
        return [self._run_info(r) for r in rows]

    def _run_info(self, r: tuple[Any, ...]) -> RunInfo:
        try:
            models, summary = tuple(json.loads(r[5])), summary_from_json(r[6])
        except (ValueError, TypeError, AttributeError) as error:
            raise damaged_row(self.path, f"runs row {r[0]!r}", error) from None
        return RunInfo(run_id=r[0], started_at=r[1], finished_at=r[2], commit=r[3], dirty=bool(r[4]), models=models,
                       summary=summary or self._summary_of_unfinished(r[0]), interrupted=bool(r[7]), command=r[8],
                       branch=r[9])

    def _summary_of_unfinished(self, run_id: str) -> Summary:
        data = self._read("SELECT id, data FROM results WHERE run_id = ?", (run_id,))
        return summarize(stored_result(self.path, row_id, d) for row_id, d in data)

    # response cache

    @staticmethod
    def cache_key(provider_identity: Mapping[str, Any], request: Request, kind: str = "case", sample: int = 0) -> str:
        """What changes the answer: the endpoint, model, params and rendered messages, the request kind and
        sample index. Timeouts, retries and concurrency are not part of a Request, so they never change it."""
        return content_hash(cache_identity(provider_identity, request, kind, sample))

    def cache_get(self, key: str) -> Completion | None:
        """The cached answer marked cached=True, with the latency and TTFT measured when it was fresh."""
        rows = self._read(f"SELECT {CACHE_ANSWER} FROM cache WHERE key = ?", (key,))
        return completion_from_row(rows[0]) if rows else None

    def cached_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these keys (at most 500) have a cached answer, without reading the answers."""
        marks = ",".join("?" * len(keys))
        return {row[0] for row in self._read(f"SELECT key FROM cache WHERE key IN ({marks})", list(keys))}

    def cache_put(self, key: str, identity: Mapping[str, Any], completion: Completion,
                  ledger: LedgerEntry | None = None) -> None:
        """Keep a successful answer (failures are never cached) under its key, with the identity it
        answers (cache_identity), and `ledger`, the request's ledger row, in the same commit (one commit a
        request instead of two)."""
        statements: list[tuple[str, Sequence[Any]]] = [ledger_insert(ledger)] if ledger is not None else []
        if completion.ok:
            statements.append((self.CACHE_INSERT_SQL, (
                key, completion.text, json.dumps(list(completion.chunks), ensure_ascii=False),
                *usage_columns(completion.usage), completion.resolved_model, completion.finish_reason,
                completion.latency_ms, completion.ttft_ms, tool_calls_column(completion), now_iso(),
                canonical_json(identity))))
        if statements:
            self._write_together(statements)

    def cache_entries(self, keys: Iterable[str] | None = None) -> Iterator[CacheEntry]:
        """Cached answers (all of them, or those with these keys) in key order, for recordings."""
        sql = f"SELECT key, identity, created_at, {CACHE_ANSWER} FROM cache"
        if keys is None:
            rows = self._read(sql + " ORDER BY key")
        else:
            rows = []
            wanted = sorted(set(keys))
            for start in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
                batch = wanted[start:start + 500]
                marks = ",".join("?" * len(batch))
                rows += self._read(f"{sql} WHERE key IN ({marks}) ORDER BY key", batch)
        for key, identity, created_at, *answer in rows:
            yield CacheEntry(key=key, identity=json.loads(identity), completion=completion_from_row(answer),
                             created_at=created_at)

    # request ledger

    def record_request(self, entry: LedgerEntry) -> None:
        self._write(*ledger_insert(entry))

    def ledger(self, since: str | None = None, run_id: str | None = None) -> list[LedgerEntry]:
        """Ledger rows in time order, from `since` (ISO time, inclusive) and/or of one run."""
        sql = f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger WHERE 1 = 1"
        params: list[Any] = []
        if since is not None:
            sql += " AND ts >= ?"
            params.append(parse_iso(since).timestamp())
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(run_id)
        return [LedgerEntry(*row) for row in self._read(sql + " ORDER BY ts, id", params)]

    # The ledger summed by the database: `promptci cost` over a team's million rows reads a few rows per group.

    # The UTC day number of the stored `ts` (Unix seconds, REAL), rounded down: SQLite has no floor() without
    # its math extension, and CAST rounds toward zero
    LEDGER_DAY_SQL = "(CAST(ts / 86400 AS INTEGER) - (CAST(ts / 86400 AS INTEGER) > ts / 86400))"

    @staticmethod
    def usd_units_sql(column: str) -> str:
        """The dollars in `column` as whole USD units, rounded as usd_units() rounds them."""
        return (f"CASE WHEN {column} < 0 THEN -CAST(0.5 - {column} * 1e12 AS INTEGER)"
                f" ELSE CAST({column} * 1e12 + 0.5 AS INTEGER) END")

    @staticmethod
    def whole_ms_sql(column: str) -> str:
        """`column` rounded as whole_ms() rounds it (CAST rounds toward zero: one less below a negative whole)."""
        half_up = f"({column} + 0.5)"
        return (f"CASE WHEN abs({column}) < {WHOLE_MS_LIMIT:.0e} THEN CAST({half_up} AS INTEGER)"
                f" - (CAST({half_up} AS INTEGER) > {half_up}) ELSE {column} END")

    def _dimension_sql(self, dimensions: Sequence[str]) -> list[str]:
        unknown = [d for d in dimensions if d != "day" and d not in LEDGER_DIMENSION_COLUMNS]
        if unknown:
            raise PromptCIError(f"cannot group the ledger by {', '.join(unknown)}")
        return [self.LEDGER_DAY_SQL if d == "day" else LEDGER_DIMENSION_COLUMNS[d] for d in dimensions]

    @staticmethod
    def _group_values(dimensions: Sequence[str], values: Sequence[Any]) -> tuple[str | None, ...]:
        return tuple(utc_day(int(v)) if d == "day" and v is not None else v for d, v in zip(dimensions, values,
                                                                                            strict=True))

    @classmethod
    def _ledger_sums_sql(cls) -> str:
        """The SELECT list of a LedgerTotals' numbers, in its fields' order."""
        fresh = "FILTER (WHERE status <> 'cached')"
        return (f"count(*), count(*) FILTER (WHERE kind = 'judge'), sum(input_tokens) {fresh},"
                f" sum(output_tokens) {fresh}, sum(cached_input_tokens) {fresh},"
                f" sum({cls.usd_units_sql('cost_usd')}), count(*) FILTER (WHERE cost_usd IS NULL AND status = 'ok'),"
                f" sum({cls.usd_units_sql('saved_usd')}), count(*) FILTER (WHERE status = 'cached'),"
                " count(*) FILTER (WHERE status = 'error')")

    def ledger_summary(self, since: float, dimensions: Sequence[str]) -> LedgerSummary:
        """The ledger rows from `since` (Unix seconds, inclusive) summed per group of `dimensions` (day, prompt,
        model, run, branch, actor), in no particular order, and each group's timings (status ok) rounded to whole
        milliseconds (whole_ms), as (value, how many) in ascending order of value; a group with no timings is left
        out of the second; no dimensions: one group, even over no rows.

        The UTC days wholly from `since` on come from the day sums (ledger_days, kept by migration 11's triggers: a
        few rows a day); of a day `since` cuts, the smaller part is read (_own_day). By run (not in the day sums)
        every row is read."""
        if not set(dimensions) <= set(DAY_SUM_DIMENSIONS):
            return self._scanned_summary(dimensions, self._scan_range(since))
        first_whole_day = math.ceil(since / 86_400)
        whole_days = self._day_sums_summary(dimensions, first_whole_day)
        return joined_summaries(len(dimensions), [whole_days, *self._own_day(dimensions, since, first_whole_day)])

    def _own_day(self, dimensions: Sequence[str], since: float, first_whole_day: int) -> list[LedgerSummary]:
        """The rows of since's own UTC day from `since` on: read, or, when fewer of that day's rows come before
        `since` than after, that day's sums less those read (counts subtract exactly)."""
        if since >= first_whole_day * 86_400:  # since is a midnight: no day is cut
            return []
        day = first_whole_day - 1
        before = self._scan_range(day * 86_400 - 1, first_whole_day, until=since, from_day=day)
        rows_of_day = int(self._read("SELECT sum(requests) FROM ledger_days WHERE day = ?", (day,))[0][0] or 0)
        half = rows_of_day // 2
        early = self._read(f"SELECT count(*) FROM (SELECT 1 FROM ledger WHERE {before[0]} LIMIT ?) AS early",
                           [*before[1], half + 1])[0][0]
        if early > half:
            return [self._scanned_summary(dimensions, self._scan_range(since, first_whole_day))]
        return [self._day_sums_summary(dimensions, day, last_day=day),
                negated(self._scanned_summary(dimensions, before))]

    def _scan_range(self, since: float, before_day: int | None = None, until: float | None = None,
                    from_day: int | None = None) -> tuple[str, list[Any]]:
        """The WHERE clause (and its parameters) of the rows from `since` (until `until`, exclusive) on UTC days from
        `from_day` and before `before_day` (None: any)."""
        where, params = "ts >= ?", [since]
        if until is not None:
            where += " AND ts < ?"
            params.append(until)
        # a ts range lets the ts index find the rows; the day's own expression decides at the day's edges
        if before_day is not None:
            where += f" AND ts < ? AND {self.LEDGER_DAY_SQL} < ?"
            params += [before_day * 86_400 + 1, before_day]
        if from_day is not None:
            where += f" AND {self.LEDGER_DAY_SQL} >= ?"
            params.append(from_day)
        return where, params

    def _scanned_summary(self, dimensions: Sequence[str], rows: tuple[str, list[Any]]) -> LedgerSummary:
        """ledger_summary() of the rows themselves (those of `rows`: a _scan_range).

        Here in one scan: SQLite has no hashed GROUP BY, and grouping a million rows by (group, millisecond) sorts
        them all (measured 2x slower), so each group's rounded timings come as one JSON array, counted in Python. By
        day, one query per day over its range of the ts index: a GROUP BY on the day would sort every row (~25% of
        the time measured), though the index has them in day order already."""
        where, params = rows
        if "day" not in dimensions:
            return self._summary_rows(dimensions, where, params)
        others = [d for d in dimensions if d != "day"]
        first, last = self._read(f"SELECT min(ts), max(ts) FROM ledger WHERE {where}", params)[0]
        totals: list[LedgerTotals] = []
        timings: dict[tuple[str | None, ...], Timings] = {}
        if first is None:
            return totals, timings
        at = dimensions.index("day")
        for number in range(math.floor(first / 86_400), math.floor(last / 86_400) + 1):
            day_totals, day_timings = self._summary_rows(
                others, f"{where} AND ts >= ? AND ts < ? AND {self.LEDGER_DAY_SQL} = ?",
                [*params, number * 86_400 - 1, (number + 1) * 86_400 + 1, number])
            day = (utc_day(number),)
            totals += [replace(t, group=t.group[:at] + day + t.group[at:]) for t in day_totals if t.requests]
            timings.update((group[:at] + day + group[at:], counts) for group, counts in day_timings.items())
        return totals, timings

    def _summary_rows(self, dimensions: Sequence[str], where: str, params: Sequence[Any]) -> LedgerSummary:
        columns = self._dimension_sql(dimensions)
        arrays = "".join(f", json_group_array({self.whole_ms_sql(c)}) FILTER (WHERE status = 'ok' AND {c} IS NOT NULL)"
                         for c in ("latency_ms", "ttft_ms"))
        rows = self._read(f"SELECT {''.join(c + ', ' for c in columns)}{self._ledger_sums_sql()}{arrays} FROM ledger"
                          f" WHERE {where}{grouped_by(columns)}", params)
        width, numbers = len(columns), len(fields(LedgerTotals)) - 1
        totals, timings = [], {}
        for row in rows:
            group = self._group_values(dimensions, row[:width])
            totals.append(LedgerTotals(group, *(int(v or 0) for v in row[width:width + numbers])))
            latencies, ttfts = (counted(json.loads(array or "[]")) for array in row[width + numbers:])
            if latencies or ttfts:
                timings[group] = (latencies, ttfts)
        return totals, timings

    def _day_sums_summary(self, dimensions: Sequence[str], first_day: int, last_day: int | None = None
                          ) -> LedgerSummary:
        """ledger_summary() of the whole UTC days from `first_day` on (to `last_day`), from the day sums (dimensions
        among DAY_SUM_DIMENSIONS: the day sums' own column names)."""
        columns = list(dimensions)
        names = "".join(c + ", " for c in columns)
        sums = ", ".join(f"sum({f.name})" for f in fields(LedgerTotals) if f.name != "group")
        days = "day >= ?" if last_day is None else "day >= ? AND day <= ?"
        bounds = (first_day,) if last_day is None else (first_day, last_day)
        rows = self._read(f"SELECT {names}{sums} FROM ledger_days WHERE {days}{grouped_by(columns)}", bounds)
        width = len(columns)
        totals = [LedgerTotals(self._group_values(dimensions, row[:width]), *(int(v or 0) for v in row[width:]))
                  for row in rows]
        timings: dict[tuple[str | None, ...], Timings] = {}
        for *values, timing, value, count in self._read(
                f"SELECT {names}timing, ms, sum(requests) FROM ledger_day_timings WHERE {days}"
                f"{grouped_by([*columns, 'timing', 'ms'])}", bounds):
            group = self._group_values(dimensions, values)
            timings.setdefault(group, ([], []))[timing].append((float(value), int(count)))
        for latencies, ttfts in timings.values():
            latencies.sort()
            ttfts.sort()
        return totals, timings

    def ledger_spend(self, since: float, dimensions: Sequence[str], day: str | None = None,
                     until: float | None = None) -> list[tuple[tuple[str | None, ...], int]]:
        """(the group's values, known spend in USD units) per group of `dimensions` over the rows from `since` (until
        `until`, exclusive) with a nonzero known cost, on one UTC day when `day` is given; in no particular order.
        A whole day (since before it, no until) by dimensions of the day sums is read from them."""
        number = None if day is None else (date.fromisoformat(day) - date(1970, 1, 1)).days
        if (number is not None and until is None and since <= number * 86_400 and dimensions
                and set(dimensions) <= set(DAY_SUM_DIMENSIONS)):
            names = ", ".join(dimensions)
            return [(self._group_values(dimensions, row[:-1]), int(row[-1])) for row in self._read(
                f"SELECT {names}, sum(cost_units) FROM ledger_days WHERE day = ?"
                f"{grouped_by(dimensions)} HAVING sum(spending) > 0", (number,))]
        columns = self._dimension_sql(dimensions)
        sql = (f"SELECT {''.join(c + ', ' for c in columns)}sum({self.usd_units_sql('cost_usd')}) FROM ledger"
               " WHERE ts >= ? AND cost_usd <> 0")
        params: list[Any] = [since]
        if until is not None:
            sql += " AND ts < ?"
            params.append(until)
        if number is not None:
            # the range lets the ts index find the day; the day's own expression decides at its edges
            sql += f" AND ts >= ? AND ts < ? AND {self.LEDGER_DAY_SQL} = ?"
            params += [number * 86_400 - 1, (number + 1) * 86_400 + 1, number]
        width = len(columns)
        return [(self._group_values(dimensions, row[:width]), int(row[width] or 0))
                for row in self._read(sql + grouped_by(columns), params)]

    def ledger_unpriced_models(self, since: float) -> set[str]:
        """The models of answered requests (status ok) from `since` that had no price."""
        first_whole_day = math.ceil(since / 86_400)
        where, params = self._scan_range(since, first_whole_day)
        scanned = self._read(f"SELECT DISTINCT model FROM ledger WHERE {where} AND status = 'ok'"
                             " AND cost_usd IS NULL", params)
        summed = self._read("SELECT DISTINCT model FROM ledger_days WHERE day >= ? AND cost_unknown > 0",
                            (first_whole_day,))
        return {row[0] for row in scanned + summed}


# The dimensions the day sums (migration 11) are kept by: `cost --by run` reads the rows themselves
DAY_SUM_DIMENSIONS = ("day", "prompt", "model", "branch", "actor")
LedgerSummary = tuple[list[LedgerTotals], dict[tuple[str | None, ...], Timings]]


def summed(key: tuple[str | None, ...], groups: Sequence[LedgerTotals]) -> LedgerTotals:
    """Groups' totals added up under one key (every field is a whole number: the sums are exact)."""
    names = [f.name for f in fields(LedgerTotals) if f.name != "group"]
    return LedgerTotals(key, *(sum(getattr(g, name) for g in groups) for name in names))


def merged_timings(timings: Iterable[tuple[tuple[str | None, ...], Timings]], keep: Sequence[int]
                   ) -> dict[tuple[str | None, ...], Timings]:
    """The groups' timing counts merged by the values at the positions `keep` (none: one group, (), always)."""
    by_key: dict[tuple[str | None, ...], tuple[Counter[float], Counter[float]]] = {} if keep else {
        (): (Counter(), Counter())}
    for group, counts in timings:
        merged_counts = by_key.setdefault(tuple(group[i] for i in keep), (Counter(), Counter()))
        for into, counted_values in zip(merged_counts, counts, strict=True):
            for value, count in counted_values:
                into[value] += count
    return {key: (sorted((v, n) for v, n in latencies.items() if n), sorted((v, n) for v, n in ttfts.items() if n))
            for key, (latencies, ttfts) in by_key.items()}


def negated(summary: LedgerSummary) -> LedgerSummary:
    """A summary to take away in joined_summaries: every sum and every count negated."""
    totals, timings = summary
    names = [f.name for f in fields(LedgerTotals) if f.name != "group"]
    return ([LedgerTotals(t.group, *(-getattr(t, name) for name in names)) for t in totals],
            {group: ([(v, -n) for v, n in latencies], [(v, -n) for v, n in ttfts])
             for group, (latencies, ttfts) in timings.items()})


def joined_summaries(width: int, parts: Sequence[LedgerSummary]) -> LedgerSummary:
    """Summaries of disjoint sets of ledger rows (or a set's, negated(), taken away from a larger one's), by the same
    `width` dimensions, as one: a group in several parts is summed; a group of no rows is left out, but for the one
    group of no dimensions."""
    by_key: dict[tuple[str | None, ...], list[LedgerTotals]] = {}
    for totals, _ in parts:
        for group in totals:
            by_key.setdefault(group.group, []).append(group)
    joined = [summed(key, members) for key, members in by_key.items()]
    if width:
        joined = [group for group in joined if group.requests]
    elif not joined:
        joined = [LedgerTotals(())]
    timings = merged_timings(((group, counts) for _, part in parts for group, counts in part.items()),
                             list(range(width)))
    return joined, {group: counts for group, counts in timings.items() if counts[0] or counts[1]}


def database_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
               if p.exists())


def cache_identity(provider_identity: Mapping[str, Any] | None, request: Request, kind: str = "case",
                   sample: int = 0) -> dict[str, Any]:
    """What identifies an answer. A case's first sample leaves kind and sample out, so keys made before
    they existed stay valid."""
    identity: dict[str, Any] = {"request": request.identity()}
    if provider_identity is not None:
        identity["provider"] = dict(provider_identity)
    if kind != "case":
        identity["kind"] = kind
    if sample != 0:
        identity["sample"] = sample
    return identity
