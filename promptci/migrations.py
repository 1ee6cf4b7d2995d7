"""Numbered SQLite schema migrations for .promptci/promptci.db, tracked in PRAGMA user_version.

Append new scripts to MIGRATIONS; never edit one that has shipped. Migration N (1-based) brings
the database from schema N-1 to schema N.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from promptci.errors import PromptCIError

# Migration 11's per-day sums of the ledger, kept by triggers so that every writer (a run, `store copy`, `gc`, a
# hand-made DELETE) keeps them equal to the rows: a row counts once with +1 when inserted (an insert ignored by ON
# CONFLICT DO NOTHING fires nothing) and with -1 when deleted; a group that reaches 0 rows is removed. Each value is
# the row's share of a sum of Store._ledger_sums_sql (the SQL of LEDGER_DAY_SQL, usd_units_sql and whole_ms_sql of
# that day, frozen here: a shipped migration never changes). `spending` counts rows with a nonzero known cost (the
# groups the budget alert ranks). A group is keyed by the JSON array of its names, so NULL and "" stay apart.
_DAY = "(CAST({r}ts / 86400 AS INTEGER) - (CAST({r}ts / 86400 AS INTEGER) > {r}ts / 86400))"
_GROUP = "json_array({r}prompt, {r}model, {r}branch, {r}actor)"


def _units(column: str) -> str:
    return (f"COALESCE(CASE WHEN {column} < 0 THEN -CAST(0.5 - {column} * 1e12 AS INTEGER)"
            f" ELSE CAST({column} * 1e12 + 0.5 AS INTEGER) END, 0)")


def _whole_ms(column: str) -> str:
    half_up = f"({column} + 0.5)"
    return (f"CASE WHEN abs({column}) < 4e+18 THEN CAST({half_up} AS INTEGER)"
            f" - (CAST({half_up} AS INTEGER) > {half_up}) ELSE {column} END")


_DAY_SUMS = ("requests", "judge_requests", "input_tokens", "output_tokens", "cached_input_tokens", "cost_units",
             "cost_unknown", "saved_units", "cache_hits", "errors", "spending")


def _truth(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def _day_shares(r: str, units: Callable[[str], str]) -> list[str]:
    """A ledger row's share of each of _DAY_SUMS (r: the row's prefix, "NEW." in a row trigger; units(c): the whole
    USD units of column c in the store's dialect, 0 for NULL)."""
    fresh = _truth(f"{r}status <> 'cached'")
    return ["1", _truth(f"{r}kind = 'judge'"), *(f"{fresh} * COALESCE({r}{c}, 0)"
                                                 for c in ("input_tokens", "output_tokens", "cached_input_tokens")),
            units(f"{r}cost_usd"), _truth(f"{r}cost_usd IS NULL AND {r}status = 'ok'"), units(f"{r}saved_usd"),
            _truth(f"{r}status = 'cached'"), _truth(f"{r}status = 'error'"), _truth(f"{r}cost_usd <> 0")]


def _day_keys(r: str) -> str:
    return f"{_DAY.format(r=r)}, {_GROUP.format(r=r)}, {r}prompt, {r}model, {r}branch, {r}actor"


def _trigger_body(r: str, sign: str) -> str:
    """The statements adding (sign "") or taking away (sign "-") the row `r` in the day sums."""
    day, group = _DAY.format(r=r), _GROUP.format(r=r)
    shares = ", ".join(f"{sign}({share})" for share in _day_shares(r, _units))
    added = ", ".join(f"{c} = {c} + excluded.{c}" for c in _DAY_SUMS)
    statements = [f"INSERT INTO ledger_days SELECT {_day_keys(r)}, {shares} WHERE 1"
                  f" ON CONFLICT (day, grp) DO UPDATE SET {added};"]
    for timing, column in enumerate(("latency_ms", "ttft_ms")):
        statements.append(
            f"INSERT INTO ledger_day_timings SELECT {_day_keys(r)}, {timing}, {_whole_ms(r + column)}, {sign}1"
            f" WHERE {r}status = 'ok' AND {r}{column} IS NOT NULL"
            " ON CONFLICT (day, grp, timing, ms) DO UPDATE SET requests = requests + excluded.requests;")
    if sign:  # each by its whole key: a lookup, not a scan of the group's timings
        statements.append(f"DELETE FROM ledger_days WHERE day = {day} AND grp = {group} AND requests = 0;")
        statements += [f"DELETE FROM ledger_day_timings WHERE day = {day} AND grp = {group} AND timing = {timing}"
                       f" AND ms = {_whole_ms(r + column)} AND requests = 0;"
                       for timing, column in enumerate(("latency_ms", "ttft_ms"))]
    return "\n        ".join(statements)


_DAY_TABLES = """
    CREATE TABLE ledger_days (
        day INTEGER NOT NULL,          -- the UTC day number of ts (Store.LEDGER_DAY_SQL)
        grp TEXT NOT NULL,             -- JSON [prompt, model, branch, actor]
        prompt TEXT,
        model TEXT NOT NULL,
        branch TEXT,
        actor TEXT,
        """ + ",\n        ".join(f"{c} BIGINT NOT NULL" for c in _DAY_SUMS) + """,
        PRIMARY KEY (day, grp)
    );
    CREATE TABLE ledger_day_timings (
        day INTEGER NOT NULL,
        grp TEXT NOT NULL,
        prompt TEXT,
        model TEXT NOT NULL,
        branch TEXT,
        actor TEXT,
        timing INTEGER NOT NULL,       -- 0: latency_ms, 1: ttft_ms (status ok)
        ms REAL NOT NULL,              -- whole milliseconds (store.whole_ms)
        requests BIGINT NOT NULL,
        PRIMARY KEY (day, grp, timing, ms)
    );
"""


def _day_sums_of(rows: str, keys: str, units: Callable[[str], str], whole_ms: Callable[[str], str]) -> list[str]:
    """The statements adding to the day sums the rows of the query `rows` (ledger rows, each with its `direction`:
    1 to add, -1 to take away), in a store's dialect: `keys` selects a row's day and grp, units and whole_ms round."""
    keyed = f"(SELECT {keys}, r.* FROM ({rows}) AS r) AS keyed"
    names = "day, grp, prompt, model, branch, actor"
    shares = ", ".join(f"sum(direction * {share})" for share in _day_shares("", units))
    added = ", ".join(f"{c} = ledger_days.{c} + excluded.{c}" for c in _DAY_SUMS)
    statements = [f"INSERT INTO ledger_days SELECT {names}, {shares} FROM {keyed} GROUP BY {names}"
                  f" ON CONFLICT (day, grp) DO UPDATE SET {added}"]
    for timing, column in enumerate(("latency_ms", "ttft_ms")):
        statements.append(
            f"INSERT INTO ledger_day_timings SELECT {names}, {timing}, {whole_ms(column)}, sum(direction)"
            f" FROM {keyed} WHERE status = 'ok' AND {column} IS NOT NULL GROUP BY {names}, {whole_ms(column)}"
            " ON CONFLICT (day, grp, timing, ms) DO UPDATE SET requests = ledger_day_timings.requests"
            " + excluded.requests")
    return statements


LEDGER_DAYS_SQLITE = _DAY_TABLES + "".join(
    f"""
    CREATE TRIGGER ledger_days_{name} AFTER {event} ON ledger BEGIN
        {body}
    END;
""" for name, event, body in (
        ("insert", "INSERT", _trigger_body("NEW.", "")),
        ("delete", "DELETE", _trigger_body("OLD.", "-")),
        ("update", "UPDATE", _trigger_body("OLD.", "-") + "\n        " + _trigger_body("NEW.", "")),
    )) + "".join(f"    {statement};\n" for statement in _day_sums_of(  # the rows stored before
        "SELECT *, 1 AS direction FROM ledger", f"{_DAY.format(r='')} AS day, {_GROUP.format(r='')} AS grp", _units,
        _whole_ms))

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
    # 11: the ledger summed per UTC day and group (prompt, model, branch, actor) as rows are written and deleted,
    # with each group's timings counted per whole millisecond: `promptci cost` reads these few rows, not a million
    LEDGER_DAYS_SQLITE,
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


# Migration 11 in PostgreSQL: statement triggers with transition tables, so a statement adds its rows' shares
# (+1 inserted, -1 deleted) to each group once. A row trigger would update a group's sums once per row, and
# PostgreSQL keeps every version a transaction writes of a row: a `gc` deleting a million rows in one transaction
# would walk ever longer chains of versions (measured 170 us a row, and growing). The shares are _day_shares, with
# PostgreSQL's rounding: floor() and a cast that rounds, as PostgresStore's SQL.
_PG_UNITS = ("CASE WHEN {c} < 0 THEN -CAST(floor(0.5::float8 - {c} * 1e12::float8) AS BIGINT)"
             " ELSE CAST(floor({c} * 1e12::float8 + 0.5::float8) AS BIGINT) END")


def _pg_units(column: str) -> str:
    return f"COALESCE({_PG_UNITS.format(c=column)}, 0)"


_PG_KEYS = "CAST(floor(ts / 86400) AS BIGINT) AS day, json_build_array(prompt, model, branch, actor)::text AS grp"


def _pg_whole_ms(column: str) -> str:
    return f"floor({column} + 0.5::float8)"


def _pg_day_sums(rows: str) -> list[str]:
    return _day_sums_of(rows, _PG_KEYS, _pg_units, _pg_whole_ms)


def _pg_trigger(event: str, rows: str, referencing: str, removes: bool) -> list[str]:
    """The function and the statement trigger of one event: `rows` selects the changed rows with their
    direction from the transition tables; `removes`: groups left with no rows go."""
    emptied = ("DELETE FROM {table} AS t USING (SELECT DISTINCT day, grp FROM (SELECT " + _PG_KEYS
               + " FROM old_rows) AS o) AS touched WHERE t.day = touched.day AND t.grp = touched.grp"
               " AND t.requests = 0")
    body = [*_pg_day_sums(rows), *([emptied.format(table=t) for t in ("ledger_days", "ledger_day_timings")]
                                    if removes else [])]
    name = f"promptci_ledger_days_{event.lower()}"
    return [f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    "
            + ";\n    ".join(body) + ";\n    RETURN NULL;\nEND $$",
            f"CREATE TRIGGER ledger_days_{event.lower()} AFTER {event} ON ledger REFERENCING {referencing}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()"]


LEDGER_DAYS_POSTGRES = (
    *_pg_trigger("INSERT", "SELECT *, 1 AS direction FROM new_rows", "NEW TABLE AS new_rows", False),
    *_pg_trigger("DELETE", "SELECT *, -1 AS direction FROM old_rows", "OLD TABLE AS old_rows", True),
    *_pg_trigger("UPDATE", "SELECT *, -1 AS direction FROM old_rows UNION ALL SELECT *, 1 FROM new_rows",
                 "OLD TABLE AS old_rows NEW TABLE AS new_rows", True),
    *_pg_day_sums("SELECT *, 1 AS direction FROM ledger"),  # the rows stored before
)

# PostgreSQL (the team store) runs the same numbered scripts, translated by postgres_script: SQLite's rowid key
# becomes an identity column and REAL (8 bytes in SQLite) double precision, so ledger sums stay exact.
POSTGRES_TYPES = ((re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
                  (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"))
# What PostgreSQL needs instead of (or besides) a script. A PostgreSQL store starts at schema 6, so a script that
# only fills old SQLite rows has nothing to fill there; runs get the rowid SQLite gives every table (insertion
# order, the tie-break of `ORDER BY started_at DESC, rowid DESC`).
POSTGRES_REPLACED: dict[int, str | tuple[str, ...]] = {
    4: "ALTER TABLE runs ADD COLUMN resolved_models TEXT;",
    11: (*split_statements(_DAY_TABLES), *LEDGER_DAYS_POSTGRES),
}
POSTGRES_ADDED: dict[int, str] = {
    1: "ALTER TABLE runs ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE;",
}


def postgres_script(number: int) -> list[str]:
    """The statements of migration `number` (1-based) in PostgreSQL's dialect."""
    script = POSTGRES_REPLACED.get(number, MIGRATIONS[number - 1])
    # statements written for PostgreSQL come as a tuple: SQLite's splitter does not know their $$ function bodies
    statements = list(script) if isinstance(script, tuple) else list(split_statements(script))
    for pattern, replacement in POSTGRES_TYPES:
        statements = [pattern.sub(replacement, statement) for statement in statements]
    return [*statements, *split_statements(POSTGRES_ADDED.get(number, ""))]
