"""A provider factory takes (ProviderSettings, ProviderContext) and returns an object with `name`,
`is_cacheable`, `async complete(request) -> Completion` (raise a promptci.errors.ProviderError subclass on
failure) and `async aclose()`. Its docstring's first sentence and its `provider_options` (the keys it reads
under `providers:` in promptci.yaml) are what `promptci providers` shows."""

from __future__ import annotations

import time
from dataclasses import dataclass

from promptci.config import ProviderSettings
from promptci.providers.base import ProviderContext
from promptci.types import Completion, Request, Usage


@dataclass
class ReverseProvider:
    name: str
    uppercase: bool = False
    is_cacheable: bool = False  # answers are free and instant: nothing to cache

    async def complete(self, request: Request) -> Completion:
        started = time.perf_counter()
        users = [m["content"] for m in request.messages if m["role"] == "user"]
        text = " ".join(reversed((users[-1] if users else "").split()))
        if self.uppercase:
            text = text.upper()
        words = len(text.split())
        return Completion(text=text, usage=Usage(words, words), latency_ms=(time.perf_counter() - started) * 1000,
                          resolved_model="reverse-1", finish_reason="stop")

    async def aclose(self) -> None:
        return None


def reverse_provider(config: ProviderSettings, ctx: ProviderContext) -> ReverseProvider:
    """Offline: answers with the words of the last user message in reverse order (-m reverse:any)."""
    return ReverseProvider(name=config.name, uppercase=bool(config.options.get("uppercase", False)))


reverse_provider.provider_options = ("uppercase",)  # type: ignore[attr-defined]
