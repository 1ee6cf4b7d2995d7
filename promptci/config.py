"""promptci.yaml and the environment -> Settings (frozen). Every key has a default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptci.types import ComparatorSpec, Location

CONFIG_FILE = "promptci.yaml"
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


@dataclass(frozen=True)
class ProviderSettings:
    """One named endpoint. "openai" and "anthropic" exist by default."""

    name: str  # the prefix in model names: "openai", "local"
    type: str  # "openai" | "anthropic" | a provider registered by a plugin
    base_url: str | None = None
    api_key_env: str | None = None  # the variable that holds the key; None: the type's default
    rpm: float | None = None  # client-side rate limit, requests per minute
    options: Mapping[str, Any] = field(default_factory=dict)  # anything else given (headers, api_version...)


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None


@dataclass(frozen=True)
class Budgets:
    run_usd: float | None = None
    daily_usd: float | None = None


@dataclass(frozen=True)
class Gate:
    min_pass_rate: float = 1.0


@dataclass(frozen=True)
class Settings:
    root: Path
    config_path: Path | None = None  # None: no promptci.yaml, all defaults
    models: tuple[str, ...] = ()
    concurrency: int = 8
    timeout_s: float = 60.0
    retries: int = 4
    comparators: tuple[ComparatorSpec, ...] = (
        ComparatorSpec("exact", {}, Location(CONFIG_FILE)),
    )
    providers: Mapping[str, ProviderSettings] = field(
        default_factory=lambda: {
            "openai": ProviderSettings("openai", "openai"),
            "anthropic": ProviderSettings("anthropic", "anthropic"),
        }
    )
    environment: str | None = None  # the --env applied, if any
    pricing: Mapping[str, Price] = field(default_factory=dict)
    budgets: Budgets = field(default_factory=Budgets)
    gate: Gate = field(default_factory=Gate)

    @property
    def state_dir(self) -> Path:
        return self.root / ".promptci"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "promptci.db"

    @property
    def prompts_dir(self) -> Path:
        return self.root / "prompts"

    @property
    def goldens_dir(self) -> Path:
        return self.root / "goldens"

    @property
    def recordings_dir(self) -> Path:
        return self.root / "recordings"


def find_root(start: Path) -> Path | None:
    """Walk up from start to the first folder holding promptci.yaml, or both prompts/ and goldens/."""
    raise NotImplementedError


def load_settings(root: Path, environment: str | None = None) -> Settings:
    """Read root/promptci.yaml (if any), validate it, apply --env; ConfigError with path:line on problems."""
    raise NotImplementedError
