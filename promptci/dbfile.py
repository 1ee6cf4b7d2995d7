"""Opening the state database and naming what goes wrong with it: a damaged file or row (exit 2, with how
to recover), a disk or folder that refuses writes and a lock held too long by another process (exit 4), and
the writes of a run kept in memory while the database refuses them."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from promptci.errors import CorruptState, EnvironmentFailure, PromptCIError
from promptci.migrations import SCHEMA_VERSION, migrate, schema_version
from promptci.project import STATE_VARIABLE
from promptci.types import CaseResult

LOCK_TIMEOUT_VARIABLE = "PROMPTCI_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 120.0  # a held lock is waited for this long (then exit 4)
QUIET_WAIT_MS = 1_000  # a lock released within this is waited for without a word
WAIT_NOTICE = "promptci: waiting for the database lock held by another promptci process"

T = TypeVar("T")

BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_BUSY_TIMEOUT"}
DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_CORRUPT_VTAB", "SQLITE_CORRUPT_SEQUENCE",
           "SQLITE_CORRUPT_INDEX"}


@dataclass(frozen=True)
class LockWait:
    """How long to wait for another process's write lock, and where to say so."""

    timeout_s: float
    notify: Callable[[str], None]

    @classmethod
    def from_environment(cls) -> LockWait:
        text = os.environ.get(LOCK_TIMEOUT_VARIABLE, "").strip()
        if not text:
            return cls(DEFAULT_LOCK_TIMEOUT_S, say_on_stderr)
        try:
            seconds = float(text)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= 86_400:
            raise PromptCIError(f"{LOCK_TIMEOUT_VARIABLE}={text!r}: give the seconds to wait for the database lock, "
                                f"0 to 86400 (default {DEFAULT_LOCK_TIMEOUT_S:g})")
        return cls(seconds, say_on_stderr)


def say_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def recovery_hint(path: Path) -> str:
    return (f"move {path} away (its runs, ledger and cache go with it) and run again; or keep it and run with a "
            f"fresh state folder: {STATE_VARIABLE}=DIR promptci run --no-cache")


def classify(error: sqlite3.Error, path: Path, doing: str) -> PromptCIError:
    """The error family's name for an SQLite failure; unknown ones stay internal errors (re-raised)."""
    name = getattr(error, "sqlite_errorname", "") or ""
    message = str(error)
    if name in BUSY:
        return EnvironmentFailure(f"{path}: {doing}: the database stayed locked by another promptci process "
                                  f"({message}); wait for it to finish, or raise {LOCK_TIMEOUT_VARIABLE} (seconds)")
    if name == "SQLITE_FULL" or "disk is full" in message:
        return EnvironmentFailure(f"{path}: {doing}: the disk is full ({message}); free some space and run again")
    if name.startswith("SQLITE_IOERR"):
        return EnvironmentFailure(f"{path}: {doing}: the disk refused ({message}: a full disk or a file size limit "
                                  "shows up so too); free some space, check the disk, and run again")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return EnvironmentFailure(f"{path}: {doing}: the file system refused ({message}); make the folder and the "
                                  f"file writable, or set {STATE_VARIABLE} to a writable folder")
    if name in DAMAGED or "no such table" in message or "no such column" in message:
        return CorruptState(f"{path}: the promptci database is damaged ({message}); {recovery_hint(path)}")
    raise error


def waiting_for_lock(attempt: Callable[[], T], wait: LockWait, doing: str, path: Path) -> T:
    """attempt() until another process's lock goes (each try waits QUIET_WAIT_MS inside SQLite), saying so on
    stderr once; past wait.timeout_s an EnvironmentFailure. Other SQLite errors are named by classify()."""
    deadline = time.monotonic() + wait.timeout_s
    told = False
    while True:
        try:
            return attempt()
        except sqlite3.Error as error:
            if getattr(error, "sqlite_errorname", "") not in BUSY or time.monotonic() >= deadline:
                raise classify(error, path, doing) from None
            if not told:
                wait.notify(f"{WAIT_NOTICE} ({path}); giving up in {wait.timeout_s:g} s "
                            f"(set {LOCK_TIMEOUT_VARIABLE} to change that)")
                told = True


def connect(path: Path, readonly: bool, wait: LockWait) -> sqlite3.Connection:
    """A checked connection: writable and migrated, or read-only (never migrated, never created)."""
    if readonly:
        conn = connect_readonly(path)
        if schema_version(conn) < SCHEMA_VERSION:  # an older schema is migrated once, if the disk lets us
            conn.close()
            return connect(path, False, wait)
    else:
        prepare_folder(path.parent)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=QUIET_WAIT_MS / 1000)
        except sqlite3.Error as error:
            raise classify(error, path, "cannot open the database") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {QUIET_WAIT_MS}")
        if not readonly:
            waiting_for_lock(lambda: conn.execute("PRAGMA journal_mode = WAL"), wait, "cannot open", path)
            conn.execute("PRAGMA synchronous = NORMAL")
        check_integrity(conn, path)
        if not readonly:
            waiting_for_lock(lambda: migrate(conn, path), wait, "cannot update the schema", path)
        check_schema(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_readonly(path: Path) -> sqlite3.Connection:
    """mode=ro; in a folder this process cannot write, SQLite cannot make the WAL index, so immutable=1: the
    file is read as it is (a read-only folder has no writer to race)."""
    uri = path.resolve().as_uri()
    for options in ("mode=ro", "mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(f"{uri}?{options}", uri=True, isolation_level=None, check_same_thread=False,
                                   timeout=QUIET_WAIT_MS / 1000)
            conn.execute("PRAGMA user_version").fetchone()
            return conn
        except sqlite3.Error as error:
            name = getattr(error, "sqlite_errorname", "") or ""
            if options == "mode=ro" and name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
                continue
            raise classify(error, path, "cannot read the database") from None
    raise AssertionError("unreachable")


def prepare_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise PromptCIError(f"{folder} is a file, but promptci keeps its state folder (the database) there: move "
                            f"the file away, or set {STATE_VARIABLE} to another folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EnvironmentFailure(f"{folder}: cannot create the state folder ({error.strerror or error}); make the "
                                 f"project folder writable, or set {STATE_VARIABLE} to a writable folder") from None


def check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """PRAGMA quick_check: damaged pages and indexes, in a few ms on a 10,000-result database."""
    try:
        found = [row[0] for row in conn.execute("PRAGMA quick_check(5)").fetchall()]
    except sqlite3.Error as error:
        raise classify(error, path, "cannot check the database") from None
    if found != ["ok"]:
        shown = "; ".join(str(line) for line in found[:3])
        raise CorruptState(f"{path}: the promptci database is damaged ({shown}); {recovery_hint(path)}")


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Every table, column and trigger the current schema has (a dropped table, a renamed column is named; a
    dropped trigger would leave the ledger's day sums behind its rows)."""
    if schema_version(conn) != SCHEMA_VERSION:
        return  # a newer schema, opened read-only: not ours to judge
    columns_of, triggers = expected_schema()
    missing = []
    for table, columns in columns_of.items():
        found = {row[1] for row in conn.execute(f"PRAGMA table_info({table})").fetchall()}
        if not found:
            missing.append(f"table {table}")
        else:
            missing += [f"column {table}.{column}" for column in columns if column not in found]
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    missing += [f"trigger {name}" for name in triggers if name not in present]
    if missing:
        raise CorruptState(f"{path}: the promptci database lacks {', '.join(missing)} (changed by hand, or damaged); "
                           f"{recovery_hint(path)}")


@cache
def expected_schema() -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """The tables with their columns, and the triggers, the migrations make, read from a fresh in-memory database."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(conn)
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        triggers = tuple(row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        columns = {table: tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})")) for table in tables}
        return columns, triggers
    finally:
        conn.close()


@dataclass
class UnstoredWrites:
    """Writes a run could not store (the lock held past the timeout, a full disk), kept to retry and name."""

    pending: list[tuple[Sequence[tuple[str, Sequence[Any]]], str]] = field(default_factory=list)
    failure: PromptCIError | None = None

    def keep(self, statements: Sequence[tuple[str, Sequence[Any]]], what: str,
             failure: PromptCIError | None = None) -> None:
        self.pending.append((tuple(statements), what))
        if failure is not None:
            self.failure = failure

    def error(self) -> EnvironmentFailure | None:
        """What was not stored and why, or None when everything got in in the end."""
        if not self.pending:
            return None
        named = [what for _, what in self.pending if what]
        results = [what for what in named if what != "the run's summary"]
        shown = ", ".join(results[:10]) + (f" and {len(results) - 10} more" if len(results) > 10 else "")
        lines = [f"{len(self.pending)} write(s) of this run were not stored: {self.failure}",
                 f"not stored: {shown}" if results else "",
                 "(cache and ledger rows too)" if len(named) < len(self.pending) else "",
                 "the report above has every result; run again to store them"]
        return EnvironmentFailure("\n".join(line for line in lines if line))


def stored_result(path: Path, row_id: int, data: str) -> CaseResult:
    try:
        return CaseResult.from_dict(json.loads(data))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise damaged_row(path, f"results row {row_id}", error) from None


def damaged_row(path: Path, row: str, error: Exception) -> CorruptState:
    return CorruptState(f"{path}: {row} cannot be read ({type(error).__name__}: {error}); the database was changed "
                        f"by hand or damaged: delete that row, or {recovery_hint(path)}")
