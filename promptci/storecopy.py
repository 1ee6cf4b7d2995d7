"""`promptci store copy`: runs, results, the response cache and the ledger from one store into another (an
SQLite file into the PostgreSQL team store, or back), idempotently: a second copy adds nothing.

The statements go through each store's own _read/_write_together, where its dialect is spoken; the SQL here
(`INSERT ... ON CONFLICT DO NOTHING`) is the same in SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptci.errors import PromptCIError
from promptci.pgstore import PostgresStore, is_postgres_url
from promptci.secrets import redact_dsn
from promptci.store import LEDGER_COLUMNS, Store

RUN_COLUMNS = ("id", "started_at", "finished_at", "git_commit", "git_dirty", "git_branch", "models", "options",
               "summary", "problems", "interrupted", "resolved_models", "command")
RESULT_COLUMNS = ("run_id", "prompt", "case_id", "model", "status", "data", "position")
CACHE_COLUMNS = ("key", "text", "chunks", "input_tokens", "output_tokens", "cached_input_tokens", "resolved_model",
                 "finish_reason", "latency_ms", "ttft_ms", "created_at", "identity", "tool_calls")
LEDGER_ROW = ("ts", *LEDGER_COLUMNS)
BATCH = 500  # rows a transaction


@dataclass(frozen=True)
class CopyReport:
    runs: int
    results: int
    cache: int
    ledger: int

    def line(self, source: str, target: str) -> str:
        return (f"copied {self.runs} run(s), {self.results} result(s), {self.cache} cache row(s) and {self.ledger} "
                f"ledger row(s) from {redact_dsn(source)} to {redact_dsn(target)}")


def open_address(address: str, is_source: bool) -> Store:
    """A postgresql:// URL or an SQLite file's path; a source file must exist (copying never creates one)."""
    if is_postgres_url(address):
        return PostgresStore.open(address)
    path = Path(address)
    if is_source and not path.is_file():
        raise PromptCIError(f"--from {address}: no such database file; give the SQLite file (such as "
                            ".promptci/promptci.db) or a postgresql:// URL")
    return Store.open(path)


def copy_between(source: str, target: str) -> CopyReport:
    if source == target:
        raise PromptCIError("--from and --to name the same store: nothing to copy")
    with open_address(source, True) as reading, open_address(target, False) as writing:
        return copy_store(reading, writing)


def insert(table: str, columns: Sequence[str], conflict: str | None = None) -> str:
    marks = ", ".join("?" * len(columns))
    tail = f" ON CONFLICT ({conflict}) DO NOTHING" if conflict else ""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}"


def in_batches(statements: Sequence[tuple[str, Sequence[Any]]]) -> Iterator[Sequence[tuple[str, Sequence[Any]]]]:
    for start in range(0, len(statements), BATCH):
        yield statements[start:start + BATCH]


def copy_store(source: Store, target: Store) -> CopyReport:
    """Runs the target lacks (with their results), cache keys it lacks, and ledger rows it lacks: a row counts
    as present as many times as an identical row is there already (rows written before request ids have no
    key), and a request id the target holds is never inserted again."""
    have_runs = {row[0] for row in target._read("SELECT id FROM runs")}
    runs = [row for row in source._read(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY started_at, rowid")
            if row[0] not in have_runs]
    new_ids = {row[0] for row in runs}
    results = [row for row in source._read(f"SELECT {', '.join(RESULT_COLUMNS)} FROM results ORDER BY id")
               if row[0] in new_ids]
    have_keys = {row[0] for row in target._read("SELECT key FROM cache")}
    cache = [row for row in source._read(f"SELECT {', '.join(CACHE_COLUMNS)} FROM cache ORDER BY key")
             if row[0] not in have_keys]
    present = Counter(target._read(f"SELECT {', '.join(LEDGER_ROW)} FROM ledger"))
    ledger = []
    for row in source._read(f"SELECT {', '.join(LEDGER_ROW)} FROM ledger ORDER BY ts, id"):
        if present[row] > 0:
            present[row] -= 1
        else:
            ledger.append(row)
    statements = [*((insert("runs", RUN_COLUMNS, "id"), row) for row in runs),
                  *((insert("results", RESULT_COLUMNS), row) for row in results),
                  *((insert("cache", CACHE_COLUMNS, "key"), row) for row in cache),
                  *((insert("ledger", LEDGER_ROW, "request_id"), row) for row in ledger)]
    for batch in in_batches(statements):
        target._write_together(batch)
    return CopyReport(runs=len(runs), results=len(results), cache=len(cache), ledger=len(ledger))
