"""Which store a project's commands use: the embedded SQLite file (the default) or the PostgreSQL team store
named by PROMPTCI_STORE (credentials included) or `store.url` in promptci.yaml (credentials from PGPASSWORD);
`--store local` (or PROMPTCI_STORE=local) picks the SQLite file even when a team store is configured."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from promptci.config import Settings
from promptci.errors import EnvironmentFailure, PromptCIError
from promptci.project import Project
from promptci.secrets import redact_dsn
from promptci.store import Store

STORE_VARIABLE = "PROMPTCI_STORE"
LOCAL = "local"  # PROMPTCI_STORE=local or --store local: this machine's SQLite file even when a team store is named
STORE_CHOICES = (LOCAL,)  # what --store takes
LOCAL_FIX = f"or add --store {LOCAL} to use this machine's database"
_chosen: str | None = None  # --store of the command running (a module value, not a context one: the viewer's
#                             request threads open stores too)


@contextmanager
def store_chosen(choice: str | None) -> Iterator[None]:
    """For the command it wraps, the store `--store` chose (None: the configured one)."""
    global _chosen
    if choice is not None and choice not in STORE_CHOICES:
        raise PromptCIError(f"--store {redact_dsn(choice)!r}: {store_choices()}")
    before, _chosen = _chosen, choice
    try:
        yield
    finally:
        _chosen = before


def store_choices() -> str:
    return (f"give --store {LOCAL} for this machine's database (.promptci/promptci.db); without --store, the team "
            f"store that {STORE_VARIABLE} or store.url in promptci.yaml names is used, if any")


def configured_store_url(project: Project, settings: Settings | None = None) -> str | None:
    """The team store PROMPTCI_STORE or promptci.yaml names (PROMPTCI_STORE first); None when neither does."""
    chosen = os.environ.get(STORE_VARIABLE, "").strip()
    if chosen and chosen != LOCAL:
        if not chosen.startswith(("postgresql://", "postgres://")):
            raise PromptCIError(f"{STORE_VARIABLE}={redact_dsn(chosen)!r}: give a postgresql:// URL (the team "
                                f"store), or {LOCAL!r} for this project's own database")
        return chosen
    return (settings or project.settings()).store_url


def store_url(project: Project, settings: Settings | None = None) -> str | None:
    """The team store's URL, or None for the project's SQLite file."""
    configured = configured_store_url(project, settings)  # checked even when not used: a typo is found today
    if _chosen == LOCAL or os.environ.get(STORE_VARIABLE, "").strip() == LOCAL:
        return None
    return configured


def store_note(project: Project, settings: Settings | None = None) -> str | None:
    """What a run's report says when it used this machine's file although a team store is configured."""
    team = configured_store_url(project, settings)
    if team is None or store_url(project, settings) is not None:
        return None
    why = f"--store {LOCAL}" if _chosen == LOCAL else f"{STORE_VARIABLE}={LOCAL}"
    return (f"stored in this machine's database {project.shown(project.db_path)} ({why}), not in the team store "
            f"{redact_dsn(team)}")


def open_store(project: Project, readonly: bool = False, settings: Settings | None = None) -> Store:
    """The project's store, migrated; an unreachable team store is an EnvironmentFailure (exit 4) naming the
    --store local fix."""
    url = store_url(project, settings)
    if url is None:
        return Store.open(project.db_path, readonly=readonly)
    from promptci.pgstore import PostgresStore

    try:
        return PostgresStore.open(url, readonly=readonly)
    except EnvironmentFailure as failure:
        raise EnvironmentFailure(f"{failure.message}; {LOCAL_FIX} ({project.shown(project.db_path)})") from None


def has_store(project: Project, settings: Settings | None = None) -> bool:
    """Whether there is anything to read: a team store always is; the SQLite file once a run made it."""
    return store_url(project, settings) is not None or project.db_path.is_file()
