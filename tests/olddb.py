"""A SQLite database at an older schema, for the migration tests: the numbered migrations up to `version`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from promptci.migrations import MIGRATIONS, split_statements


def database_at_schema(path: Path, version: int) -> sqlite3.Connection:
    """Migrations 1..version applied to a new database at path (autocommit), user_version set as they go."""
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:version], start=1):
        for statement in split_statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    return conn
