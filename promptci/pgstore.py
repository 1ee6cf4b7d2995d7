"""The team store: runs, results, the request ledger and the response cache in a PostgreSQL database that every
CI runner and laptop shares. The same Store interface as the SQLite store (it is one: the queries are shared and
translated, only the connection layer and the SQLite JSON queries are its own); psycopg 3 is imported on open."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from promptci.dbfile import LockWait, UnstoredWrites
from promptci.errors import CorruptState, EnvironmentFailure, PromptCIError
from promptci.migrations import SCHEMA_VERSION, check_not_newer, postgres_script
from promptci.secrets import redact_dsn
from promptci.store import (
    CACHE_ANSWER,
    LedgerSummary,
    LedgerTotals,
    Store,
    Timings,
    grouped_by,
)

T = TypeVar("T")
MIGRATION_LOCK = 0x70C1  # pg_advisory_xact_lock key: two runners opening a new store do not both migrate it
CONNECT_TIMEOUT_S = 10
# SQLSTATEs of a transaction the server rolled back for another's sake (deadlock, serialization failure)
ROLLED_BACK = ("40P01", "40001")
ROLLED_BACK_RETRIES = 5
# SQLite phrases of the shared queries and PostgreSQL's; then every `?` placeholder becomes `%s`
DIALECT = (("ORDER BY position, id", "ORDER BY position NULLS FIRST, id"),)
RESOLVED_MODELS_OF_RUN = (
    "SELECT COALESCE(jsonb_object_agg(model, versions), '{}'::jsonb)::text FROM (SELECT model,"
    " jsonb_agg(resolved) AS versions FROM (SELECT DISTINCT model, data::jsonb ->> 'resolved_model' AS resolved"
    " FROM results WHERE results.run_id = runs.id) AS found WHERE resolved IS NOT NULL GROUP BY model) AS models"
)
CACHE_COLUMNS = f"key, {CACHE_ANSWER}, created_at, identity"
CACHE_UPSERT = (
    f"INSERT INTO cache ({CACHE_COLUMNS}) VALUES ({', '.join(['%s'] * 13)}) ON CONFLICT (key) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = EXCLUDED.{c.strip()}" for c in CACHE_COLUMNS.split(",")[1:])
)


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise PromptCIError("a postgresql:// store needs psycopg: pip install 'promptci-cli[postgres]'") from None
    return psycopg


def postgres_sql(sql: str) -> str:
    for sqlite_phrase, postgres_phrase in DIALECT:
        sql = sql.replace(sqlite_phrase, postgres_phrase)
    return sql.replace("?", "%s")


def unreachable(url: str, error: Exception, doing: str) -> EnvironmentFailure:
    detail = redact_dsn(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
    if getattr(error, "sqlstate", None) in ROLLED_BACK:
        return EnvironmentFailure(f"team store {redact_dsn(url)}: {doing} ({detail}); other writers held the same rows "
                                  f"{ROLLED_BACK_RETRIES} times running: run the command again")
    return EnvironmentFailure(f"team store {redact_dsn(url)}: {doing} ({detail}); check that the server is up and "
                              "PROMPTCI_STORE (or store.url in promptci.yaml) names it")


class PostgresStore(Store):
    """One connection to the team store. Use PostgresStore.open(url); close it, or use `with`."""

    def __init__(self, conn: Any, url: str) -> None:  # not super().__init__: that takes an SQLite connection
        self._pg = conn
        self._url = url
        self._lock = threading.Lock()
        self.path = cast(Path, redact_dsn(url))  # only ever shown in messages
        self._wait = LockWait(0.0, lambda _: None)
        self._run_open = False
        self.unstored = UnstoredWrites()

    @classmethod
    def open(cls, path: Path | str, readonly: bool = False, wait: LockWait | None = None) -> PostgresStore:
        """`path`: the postgresql:// URL. Always migrated (readonly and wait are the SQLite store's concerns)."""
        url = str(path)
        conn = connect_postgres(url)
        try:
            migrate_postgres(conn, url)
            check_triggers(conn, url)
        except BaseException:
            conn.close()
            raise
        return cls(conn, url)

    def close(self) -> None:
        with self._lock:
            self._pg.close()

    def _reconnecting(self, action: Callable[[Any], T], doing: str) -> T:
        """action(connection); a connection dropped on the way is opened again and the action run once more.
        (A connection lost during COMMIT leaves unknown whether the commit landed: the retry may write again what
        landed. A ledger row is stored once all the same: its insert does nothing on a request id already there.)"""
        psycopg = import_psycopg()
        try:
            return action(self._pg)
        except psycopg.OperationalError as error:
            if not self._pg.broken and not self._pg.closed:
                raise unreachable(self._url, error, doing) from None
        try:
            self._pg = connect_postgres(self._url)
            return action(self._pg)
        except psycopg.OperationalError as error:
            raise unreachable(self._url, error, doing) from None

    def _commit(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        psycopg = import_psycopg()

        def in_one_transaction(conn: Any) -> list[int]:
            # Two writers can lock the same rows in opposite orders (the ledger's day sums: a run storing a case's
            # and its judge's rows while `gc` deletes older ones); the server then rolls one transaction back
            # whole, which is safe to run again
            for attempt in range(1, ROLLED_BACK_RETRIES + 1):
                try:
                    with conn.transaction():
                        return [conn.execute(postgres_sql(sql), params).rowcount for sql, params in statements]
                except psycopg.OperationalError as error:
                    if getattr(error, "sqlstate", None) not in ROLLED_BACK or attempt == ROLLED_BACK_RETRIES:
                        raise
            raise AssertionError("unreachable")

        return self._reconnecting(in_one_transaction, "cannot store")

    def write_counted(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        with self._lock:
            return self._commit(statements)

    def size_bytes(self) -> int:
        return int(self._read("SELECT pg_database_size(current_database())")[0][0])

    def compact(self) -> str | None:
        return ("the team store's freed rows are reused by PostgreSQL (autovacuum): the database does not shrink on "
                "disk")

    def _write_together(self, statements: Sequence[tuple[str, Sequence[Any]]], what: str = "") -> None:
        """All or none in one transaction. Once a run has started, writes the server refuses are kept, retried
        with the next write and at finish_run, and named by self.unstored if they never get in."""
        with self._lock:
            if self._run_open and self.unstored.failure is not None:
                self.unstored.keep(statements, what)
                self._retry_unstored(wait=False)
                return
            try:
                self._commit(statements)
            except EnvironmentFailure as failure:
                if not self._run_open:
                    raise
                self.unstored.keep(statements, what, failure)

    def _retry_unstored(self, wait: bool) -> None:
        while self.unstored.pending:
            statements, _ = self.unstored.pending[0]
            try:
                self._commit(statements)
            except EnvironmentFailure as failure:
                self.unstored.failure = failure
                return
            self.unstored.pending.pop(0)
        self.unstored.failure = None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._reconnecting(lambda conn: conn.execute(postgres_sql(sql), params).fetchall(),
                                      "cannot read")

    # the queries written in SQLite's JSON functions
    RESOLVED_MODELS_SQL = RESOLVED_MODELS_OF_RUN
    CACHE_INSERT_SQL = CACHE_UPSERT
    JSON_LIST_VALUES = "SELECT jsonb_array_elements_text(?::jsonb)"

    @staticmethod
    def options_set(*keys: str) -> str:
        pairs = ", ".join(f"'{key}', ?::jsonb" for key in keys)
        return f"(COALESCE(options, '{{}}')::jsonb || jsonb_build_object({pairs}))::text"

    # the ledger's sums: `ts` is double precision here, and a cast to bigint rounds (SQLite's truncates)
    LEDGER_DAY_SQL = "CAST(floor(ts / 86400) AS BIGINT)"

    @staticmethod
    def usd_units_sql(column: str) -> str:
        return (f"CASE WHEN {column} < 0 THEN -CAST(floor(0.5::float8 - {column} * 1e12::float8) AS BIGINT)"
                f" ELSE CAST(floor({column} * 1e12::float8 + 0.5::float8) AS BIGINT) END")

    @staticmethod
    def whole_ms_sql(column: str) -> str:
        return f"floor({column} + 0.5::float8)"

    def _scanned_summary(self, dimensions: Sequence[str], rows: tuple[str, list[Any]]) -> LedgerSummary:
        """As the SQLite store's, in three queries: the sums, and the timings counted by PostgreSQL's hashed
        GROUP BY (group, whole milliseconds), no sort."""
        where, params = rows
        columns = self._dimension_sql(dimensions)
        width = len(columns)
        totals = [LedgerTotals(self._group_values(dimensions, row[:width]), *(int(v or 0) for v in row[width:]))
                  for row in self._read(f"SELECT {''.join(c + ', ' for c in columns)}{self._ledger_sums_sql()}"
                                        f" FROM ledger WHERE {where}{grouped_by(columns)}", params)]
        found: dict[tuple[str | None, ...], Timings] = {}
        grouped = ", ".join(str(i + 1) for i in range(len(columns) + 1))
        for which, column in enumerate(("latency_ms", "ttft_ms")):
            counts = self._read(f"SELECT {''.join(c + ', ' for c in columns)}{self.whole_ms_sql(column)}, count(*)"
                                f" FROM ledger WHERE {where} AND status = 'ok' AND {column} IS NOT NULL"
                                f" GROUP BY {grouped}", params)
            for *group, value, count in counts:
                key = self._group_values(dimensions, group)
                found.setdefault(key, ([], []))[which].append((float(value), int(count)))
        for latencies, ttfts in found.values():
            latencies.sort()
            ttfts.sort()
        return totals, found

    def last_resolved_models(self, model: str, before_run_id: str) -> tuple[str, set[str]] | None:
        latest = self._read(
            "SELECT id, resolved_models FROM runs WHERE id != %s"
            " AND started_at <= (SELECT started_at FROM runs WHERE id = %s) AND resolved_models IS NOT NULL"
            " AND jsonb_exists(resolved_models::jsonb, %s)"
            " ORDER BY started_at DESC, rowid DESC LIMIT 1", (before_run_id, before_run_id, model))
        if not latest:
            return None
        run_id, resolved = latest[0]
        return run_id, set(json.loads(resolved)[model])


def connect_postgres(url: str) -> Any:
    psycopg = import_psycopg()
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as error:
        raise unreachable(url, error, "cannot connect") from None


def postgres_schema_version(conn: Any) -> int:
    if conn.execute("SELECT to_regclass('promptci_schema')").fetchone()[0] is None:
        return 0
    row = conn.execute("SELECT version FROM promptci_schema").fetchone()
    return int(row[0]) if row else 0


# the triggers the migrations make (they keep the ledger's day sums: without one, `cost` would fall behind the rows)
TRIGGERS = tuple(match for number in range(1, SCHEMA_VERSION + 1) for statement in postgres_script(number)
                 for match in re.findall(r"^CREATE TRIGGER (\w+)", statement))


def check_triggers(conn: Any, url: str) -> None:
    """Every trigger the migrations made is there (a DBA's DROP TRIGGER is named, with the way back)."""
    present = {row[0] for row in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
    missing = [name for name in TRIGGERS if name not in present]
    if missing:
        raise CorruptState(f"team store {redact_dsn(url)}: lacks trigger {', '.join(missing)} (dropped by hand), "
                           "which keeps the ledger's day sums that `promptci cost` reads; copy the store into a new "
                           "database (`promptci store copy --from OLD --to NEW`: the new one gets every trigger) "
                           "and point PROMPTCI_STORE at it")


def migrate_postgres(conn: Any, url: str) -> int:
    """Bring the store to SCHEMA_VERSION in one transaction (PostgreSQL's DDL is transactional); the version
    it had before. An advisory lock makes runners that open a new store at once migrate it one after another."""
    psycopg = import_psycopg()
    try:
        found = postgres_schema_version(conn)
        check_not_newer(found, None)
        if found == SCHEMA_VERSION:
            return found
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS promptci_schema (version INTEGER NOT NULL)")
            found = postgres_schema_version(conn)
            check_not_newer(found, None)
            for number in range(found + 1, SCHEMA_VERSION + 1):
                for statement in postgres_script(number):
                    conn.execute(statement)
            conn.execute("DELETE FROM promptci_schema")
            conn.execute("INSERT INTO promptci_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
        return found
    except psycopg.Error as error:
        raise unreachable(url, error, "cannot update the schema") from None
