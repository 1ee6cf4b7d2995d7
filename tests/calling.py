"""Calling one provider directly in tests: one request in its own event loop, the client closed after."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from promptci.errors import ProviderError
from promptci.types import Completion, Request


def complete(provider: Any, request: Request) -> Completion:
    async def go() -> Completion:
        try:
            return await provider.complete(request)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def fails_with(provider: Any, request: Request) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        complete(provider, request)
    return caught.value
