"""A project: its source (promptci.yaml, prompts, goldens, recordings, python code) apart from its state
(.promptci/: the database with runs, ledger and cache). Another folder's source (a git revision checked out
in a temporary folder) runs with this project's state through `with_source`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from promptci.config import CONFIG_FILE, Settings, load_settings
from promptci.errors import PromptCIError

STATE_DIR = ".promptci"
DB_FILE = "promptci.db"
STATE_VARIABLE = "PROMPTCI_STATE"  # another state folder (e.g. a fresh one when the database is damaged)


@dataclass(frozen=True)
class Project:
    source: Path  # read: promptci.yaml, prompts/, goldens/, recordings/, python code
    state: Path  # written: the database (runs, ledger, cache)

    @classmethod
    def at(cls, root: Path) -> Project:
        """The project whose source is root and whose state is root/.promptci, or $PROMPTCI_STATE when set."""
        source = root.resolve()
        chosen = os.environ.get(STATE_VARIABLE, "").strip()
        return cls(source=source, state=Path(chosen).resolve() if chosen else source / STATE_DIR)

    def with_source(self, other: Path) -> Project:
        """Another folder's prompts, goldens and code, with this project's state (db and cache)."""
        return Project(source=other.resolve(), state=self.state)

    @property
    def config_path(self) -> Path:
        return self.source / CONFIG_FILE

    @property
    def prompts_dir(self) -> Path:
        return self.source / "prompts"

    @property
    def goldens_dir(self) -> Path:
        return self.source / "goldens"

    @property
    def recordings_dir(self) -> Path:
        return self.source / "recordings"

    @property
    def db_path(self) -> Path:
        return self.state / DB_FILE

    def settings(self, environment: str | None = None) -> Settings:
        return load_settings(self.source, environment)

    def shown(self, path: Path) -> str:
        """A path as users see it: relative to the source (or the state's parent) when under it."""
        for base in (self.source, self.state.parent):
            try:
                return path.relative_to(base).as_posix()
            except ValueError:
                continue
        return str(path)


def find_root(start: Path) -> Path | None:
    """Walk up from start to the first folder holding promptci.yaml, or both prompts/ and goldens/."""
    here = start.resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).exists():  # a directory or FIFO by that name is reported when loaded
            return folder
        if (folder / "prompts").is_dir() and (folder / "goldens").is_dir():
            return folder
    return None


def discover(root: Path | None = None) -> Project:
    """The project at --root, or the one holding the current folder; a usage error when there is none."""
    if root is not None:
        if not root.is_dir():
            raise PromptCIError(f"--root {root}: no such directory")
        return Project.at(root)
    found = find_root(Path.cwd())
    if found is None:
        raise PromptCIError(
            "no promptci project here: looked for promptci.yaml (or prompts/ and goldens/) in this folder and "
            "its parents; run `promptci init` to create one, or pass --root DIR"
        )
    return Project.at(found)
