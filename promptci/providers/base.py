"""The provider interface. Providers send one request and classify failures as ProviderError
subclasses; the model client owns retries, concurrency, the cache and the budget; the session owns
their lifetimes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from promptci.config import DEFAULT_KEY_ENV, ProviderSettings, Settings
from promptci.types import Completion, Request


def split_model(model: str) -> tuple[str, str]:
    """"openai:gpt-4o-mini" -> ("openai", "gpt-4o-mini"); "local:llama3.1:8b" -> ("local", "llama3.1:8b");
    "echo" -> ("echo", "")."""
    provider, _, name = model.partition(":")
    return provider, name


@dataclass(frozen=True)
class ProviderContext:
    """What a factory may need beyond its own ProviderSettings."""

    settings: Settings
    root: Path


class Provider(Protocol):
    """One pooled client per named provider; `complete` is called concurrently by the runner.

    complete() returns a Completion for a success (text, usage, latency_ms, ttft_ms,
    resolved_model, finish_reason, chunks) and raises a ProviderError subclass on failure.
    A provider may also have prepare() (no arguments): the session calls it once, before the first
    request is sent, to do slow set-up (import an SDK, build a client) off the timed path.
    """

    name: str
    is_cacheable: bool  # False for providers whose answers are free and local (echo, python)

    async def complete(self, request: Request) -> Completion: ...

    async def aclose(self) -> None: ...


ProviderFactory = Callable[[ProviderSettings, ProviderContext], Provider]


def api_key_env(config: ProviderSettings) -> str | None:
    return config.api_key_env or DEFAULT_KEY_ENV.get(config.type)


def provider_identity(config: ProviderSettings) -> dict[str, Any]:
    """What about an endpoint changes the answer: its type and base_url (never the key)."""
    return {"type": config.type, "base_url": (config.base_url or "").rstrip("/")}
