"""Which store a project's commands use: the embedded SQLite file (the default) or the PostgreSQL team store
named by PROMPTCI_STORE (credentials included) or `store.url` in promptci.yaml (credentials from PGPASSWORD)."""

from __future__ import annotations

import os

from promptci.config import Settings
from promptci.errors import PromptCIError
from promptci.project import Project
from promptci.secrets import redact_dsn
from promptci.store import Store

STORE_VARIABLE = "PROMPTCI_STORE"
LOCAL = "local"  # PROMPTCI_STORE=local: this machine's SQLite file even when promptci.yaml names a team store


def store_url(project: Project, settings: Settings | None = None) -> str | None:
    """The team store's URL, or None for the project's SQLite file."""
    chosen = os.environ.get(STORE_VARIABLE, "").strip()
    if chosen == LOCAL:
        return None
    if chosen:
        if not chosen.startswith(("postgresql://", "postgres://")):
            raise PromptCIError(f"{STORE_VARIABLE}={redact_dsn(chosen)!r}: give a postgresql:// URL (the team "
                                f"store), or {LOCAL!r} for this project's own database")
        return chosen
    return (settings or project.settings()).store_url


def open_store(project: Project, readonly: bool = False, settings: Settings | None = None) -> Store:
    """The project's store, migrated; an unreachable team store is an EnvironmentFailure (exit 4)."""
    url = store_url(project, settings)
    if url is None:
        return Store.open(project.db_path, readonly=readonly)
    from promptci.pgstore import PostgresStore

    return PostgresStore.open(url, readonly=readonly)


def has_store(project: Project, settings: Settings | None = None) -> bool:
    """Whether there is anything to read: a team store always is; the SQLite file once a run made it."""
    return store_url(project, settings) is not None or project.db_path.is_file()
