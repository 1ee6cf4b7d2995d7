"""Providers that need no key and no network: echo, replay and python:module:function."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from promptci.config import ProviderSettings
from promptci.errors import PromptCIError, ProviderError, ReplayMiss, UserCodeFailed
from promptci.providers.base import ProviderContext, split_model
from promptci.registry import load_object
from promptci.types import Completion, Request, Usage
from promptci.usercode import call_user_code, lone_surrogate_in


class AppError(ProviderError):
    """The user's own function raised: reported on the case, never retried."""

    kind = "app_error"


def last_user_message(request: Request) -> str:
    for message in reversed(request.messages):
        if message["role"] == "user":
            return message["content"]
    return ""


@dataclass
class EchoProvider:
    """Returns the rendered prompt (the last user message) unchanged: template changes become testable."""

    name: str = "echo"
    is_cacheable: bool = False

    async def complete(self, request: Request) -> Completion:
        text = last_user_message(request)
        return Completion(text=text, usage=Usage(0, 0), resolved_model="echo", finish_reason="stop")

    async def aclose(self) -> None:
        return None


@dataclass
class ReplayProvider:
    """Answers only from recordings and the response cache, which the runner consults first.

    Reaching complete() means nothing was recorded for this request.
    """

    name: str = "replay"
    is_cacheable: bool = False

    async def complete(self, request: Request) -> Completion:
        inner = split_model(request.model)[1]
        if not inner:
            raise ReplayMiss("`replay` needs the recorded model after it, e.g. -m replay:openai:gpt-4o-mini")
        raise ReplayMiss(f"no recorded response for this request to {inner} (run once with --record)")

    async def aclose(self) -> None:
        return None


@dataclass
class PythonProvider:
    """The team's own application code as the system under test: fn(messages, params) -> text."""

    function: Callable[..., Any]
    spec: str
    name: str = "python"
    is_cacheable: bool = False

    async def complete(self, request: Request) -> Completion:
        messages = [dict(m) for m in request.messages]
        params = dict(request.params)
        started = time.perf_counter()
        try:  # the client's timeout_s bounds the call: no second deadline here
            value = await call_user_code(self.function, messages, params, label=self.spec, timeout_s=None)
        except UserCodeFailed as exc:  # sys.exit(), CancelledError... too: that case's error, never promptci's end
            raise AppError(exc.message) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        if isinstance(value, Completion):
            return replace(value, latency_ms=value.latency_ms or latency_ms)
        return Completion(text=as_text(value, self.spec), usage=Usage(0, 0), latency_ms=latency_ms,
                          resolved_model=self.spec, finish_reason="stop")

    async def aclose(self) -> None:
        return None


def as_text(value: Any, spec: str) -> str:
    if isinstance(value, str):
        if lone_surrogate_in(value):
            raise AppError(f"{spec} returned text holding a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text")
        return value
    if isinstance(value, (dict, list)):
        return as_text(json.dumps(value, ensure_ascii=False), spec)
    raise AppError(f"{spec} returned {type(value).__name__}; return a str (or a dict/list for JSON output)")


def echo(config: ProviderSettings, ctx: ProviderContext) -> EchoProvider:
    return EchoProvider(name=config.name)


def replay(config: ProviderSettings, ctx: ProviderContext) -> ReplayProvider:
    return ReplayProvider(name=config.name)


def python_function(config: ProviderSettings, ctx: ProviderContext) -> PythonProvider:
    """Built once per model: config.options["function"] holds "package.module:function"."""
    spec = str(config.options.get("function", ""))
    if not spec:
        raise PromptCIError("python provider needs a function: -m python:package.module:function")
    function = load_object(spec, ctx.root)
    if not callable(function):
        raise PromptCIError(f"{spec} is not callable")
    return PythonProvider(function=function, spec=spec, name=config.name)
