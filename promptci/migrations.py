"""Numbered SQLite schema migrations for .promptci/promptci.db, tracked in PRAGMA user_version.

Append new scripts to MIGRATIONS; never edit one that has shipped. Migration N (1-based) brings
the database from schema N-1 to schema N.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from promptci.errors import PromptCIError

MIGRATIONS: tuple[str, ...] = (
    # 1: runs, results, request ledger, response cache
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        git_commit TEXT,
        git_dirty INTEGER NOT NULL DEFAULT 0,
        git_branch TEXT,
        models TEXT NOT NULL,          -- JSON list
        options TEXT NOT NULL,         -- JSON object
        summary TEXT,                  -- JSON object; NULL until the run finishes
        problems TEXT NOT NULL DEFAULT '[]',
        interrupted INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_started_at ON runs (started_at);

    CREATE TABLE results (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs (id),
        prompt TEXT NOT NULL,
        case_id TEXT NOT NULL,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        data TEXT NOT NULL             -- CaseResult.to_dict() as JSON
    );
    CREATE INDEX results_run ON results (run_id);

    CREATE TABLE ledger (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        ts REAL NOT NULL,              -- `at` as Unix seconds, for range queries
        run_id TEXT,
        git_commit TEXT,
        prompt TEXT,
        case_id TEXT,
        model TEXT NOT NULL,
        provider TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cached_input_tokens INTEGER,
        cost_usd REAL,                 -- NULL: unknown price
        saved_usd REAL,
        latency_ms REAL,
        ttft_ms REAL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 1,
        kind TEXT NOT NULL DEFAULT 'case',
        error_kind TEXT
    );
    CREATE INDEX ledger_ts ON ledger (ts);
    CREATE INDEX ledger_run ON ledger (run_id);

    -- A rowid table (rows are too big for WITHOUT ROWID), the long identity last so that a
    -- lookup reads the answer without following the identity's overflow pages.
    CREATE TABLE cache (
        key TEXT PRIMARY KEY,
        text TEXT NOT NULL,
        chunks TEXT NOT NULL,          -- JSON list
        input_tokens INTEGER,          -- the three usage counts; NULL when the provider gave none
        output_tokens INTEGER,
        cached_input_tokens INTEGER,
        resolved_model TEXT,
        finish_reason TEXT,
        latency_ms REAL NOT NULL,
        ttft_ms REAL,
        created_at TEXT NOT NULL,
        identity TEXT NOT NULL         -- JSON: {"provider": ..., "request": ...}
    );
    """,
    # 2: a result's place in its run, so a stored run reproduces its reports
    """
    -- a result's place in the run's plan: results finish in any order, reports list them in plan order
    ALTER TABLE results ADD COLUMN position INTEGER;
    """,
    # 3: the tool calls of a cached answer (JSON list of {name, arguments}); NULL: none
    """
    ALTER TABLE cache ADD COLUMN tool_calls TEXT;
    """,
    # 4: the versions each model resolved to in a run, kept in its runs row when it finishes: drift finds the
    # last run that resolved a model from the newest runs rows, not by reading every stored result
    """
    ALTER TABLE runs ADD COLUMN resolved_models TEXT;  -- JSON {model: [versions]}; NULL until the run finishes
    UPDATE runs SET resolved_models = (
        SELECT json_group_object(model, json(versions)) FROM (
            SELECT model, json_group_array(resolved) AS versions FROM (
                SELECT DISTINCT model, json_extract(data, '$.resolved_model') AS resolved FROM results
                WHERE results.run_id = runs.id AND json_valid(data))
            WHERE resolved IS NOT NULL GROUP BY model));
    """,
    # 5: the command that made each run ("run", "run --shard 2/4", "diff A: main", "bisect step 1a2b3c", "merge",
    # "pytest"): `show last` and `accept` take the last plain `run`; NULL for runs stored before
    """
    ALTER TABLE runs ADD COLUMN command TEXT;
    """,
    # 6: the cache key a ledger row was answered under (fresh or cached), so `promptci gc` keeps the cache rows
    # the runs it keeps used; NULL for errors and for rows written before this migration
    """
    ALTER TABLE ledger ADD COLUMN cache_key TEXT;
    """,
    # 7: who spent: the branch and the CI actor (or the laptop's user) of each request, for the team's `cost --by
    # branch,actor` over a shared store; NULL for rows written before
    """
    ALTER TABLE ledger ADD COLUMN branch TEXT;
    ALTER TABLE ledger ADD COLUMN actor TEXT;
    """,
    # 8: provider batches submitted by `run --batch` (stored the moment the provider gives their id, so a re-run
    # collects instead of resubmitting) and the requests in each: the cache key is also the line's custom_id
    """
    CREATE TABLE batches (
        id TEXT PRIMARY KEY,           -- the provider's batch id
        model TEXT NOT NULL,           -- PROVIDER:MODEL as -m writes it
        submitted_at TEXT NOT NULL,
        requests INTEGER NOT NULL,
        state TEXT NOT NULL,           -- the provider's word, as last seen
        collected_at TEXT              -- NULL: open (its answers are not stored yet)
    );
    CREATE TABLE batch_requests (
        batch_id TEXT NOT NULL REFERENCES batches (id),
        key TEXT NOT NULL,             -- the cache key of the request, its custom_id
        identity TEXT NOT NULL,        -- cache_identity as JSON
        prompt TEXT,
        case_id TEXT,
        kind TEXT NOT NULL,
        problem TEXT,                  -- why the batch gave no answer (NULL: answered, or not collected yet)
        PRIMARY KEY (batch_id, key)
    );
    CREATE INDEX batch_requests_key ON batch_requests (key);
    """,
    # 9: each ledger row's request id (made once per request by the client), unique, and a result's place in its
    # run unique: a write retried after the connection dropped during its commit (the team store) cannot store a
    # request or a result twice; NULL for rows before (a result stored twice before this is dropped here)
    """
    ALTER TABLE ledger ADD COLUMN request_id TEXT;
    CREATE UNIQUE INDEX ledger_request ON ledger (request_id);
    DELETE FROM results WHERE position IS NOT NULL AND id NOT IN
        (SELECT MIN(id) FROM results WHERE position IS NOT NULL GROUP BY run_id, position);
    CREATE UNIQUE INDEX results_run_position ON results (run_id, position);
    """,
    # 10: `promptci cost` sums the ledger in the store: the daily spend reads this index alone (no table rows), and
    # the models with no price are found among their own few rows
    """
    CREATE INDEX ledger_ts_cost ON ledger (ts, cost_usd);
    CREATE INDEX ledger_unpriced ON ledger (ts, model) WHERE status = 'ok' AND cost_usd IS NULL;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def split_statements(script: str) -> Iterator[str]:
    """The complete SQL statements of a script, in order (executescript would commit on its own)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: Path | None = None) -> int:
    """Bring the database to SCHEMA_VERSION in one transaction; return the version it had before.

    The connection must be in autocommit mode (isolation_level=None). BEGIN IMMEDIATE takes the
    write lock first, so two processes opening a new database at once do not both migrate it.
    """
    found = schema_version(conn)
    check_not_newer(found, path)
    if found == SCHEMA_VERSION:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(conn)
        check_not_newer(found, path)
        for number, script in enumerate(MIGRATIONS[found:], start=found + 1):
            for statement in split_statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def check_not_newer(found: int, path: Path | None) -> None:
    if found > SCHEMA_VERSION:
        where = f"{path}: " if path else ""
        raise PromptCIError(
            f"{where}database schema {found} is newer than this promptci supports ({SCHEMA_VERSION}); "
            "upgrade promptci"
        )


# PostgreSQL (the team store) runs the same numbered scripts, translated by postgres_script: SQLite's rowid key
# becomes an identity column and REAL (8 bytes in SQLite) double precision, so ledger sums stay exact.
POSTGRES_TYPES = ((re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
                  (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"))
# What PostgreSQL needs instead of (or besides) a script. A PostgreSQL store starts at schema 6, so a script that
# only fills old SQLite rows has nothing to fill there; runs get the rowid SQLite gives every table (insertion
# order, the tie-break of `ORDER BY started_at DESC, rowid DESC`).
POSTGRES_REPLACED: dict[int, str] = {
    4: "ALTER TABLE runs ADD COLUMN resolved_models TEXT;",
}
POSTGRES_ADDED: dict[int, str] = {
    1: "ALTER TABLE runs ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE;",
}


def postgres_script(number: int) -> list[str]:
    """The statements of migration `number` (1-based) in PostgreSQL's dialect."""
    script = POSTGRES_REPLACED.get(number, MIGRATIONS[number - 1])
    for pattern, replacement in POSTGRES_TYPES:
        script = pattern.sub(replacement, script)
    return [*split_statements(script), *split_statements(POSTGRES_ADDED.get(number, ""))]
