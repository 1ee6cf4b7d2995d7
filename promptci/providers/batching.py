"""What the OpenAI and Anthropic batch APIs share on promptci's side: a batch's state as promptci reads it,
one line's outcome, and turning a provider's (hostile until checked) answer body into a Completion.

A batch answer is not streamed: it has no latency or time to first token (latency_ms 0, ttft_ms None)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from promptci.errors import ProviderError
from promptci.providers._http import Endpoint
from promptci.types import Completion, ToolCall, Usage


@dataclass(frozen=True)
class BatchLimits:
    """The most one batch may hold, as the provider documents it."""

    lines: int
    bytes: int


@dataclass(frozen=True)
class BatchStatus:
    """A batch as promptci reads it. `state` is the provider's own word (validating, in_progress, finalizing,
    completed, expired, failed, cancelling, cancelled; Anthropic: in_progress, canceling, ended)."""

    batch_id: str
    state: str
    is_ended: bool  # its results (if any) can be read now
    done: int  # lines answered, successfully or not
    total: int
    failure: str | None = None  # why the whole batch failed (no results at all)


@dataclass(frozen=True)
class LineOutcome:
    """One line of a batch: its answer, or why there is none."""

    custom_id: str
    completion: Completion | None
    problem: str | None = None


def parse_line(endpoint: Endpoint, custom_id: object, parse: Callable[[], Completion]) -> LineOutcome | None:
    """The outcome of one result line; a line without a usable custom_id is dropped (None), and a body of the
    wrong shape is that line's problem, never a crash."""
    if not isinstance(custom_id, str) or not custom_id:
        return None
    try:
        return LineOutcome(custom_id, endpoint.scrub_completion(parse()))
    except ProviderError as exc:  # a count that is not a token count
        return LineOutcome(custom_id, None, f"malformed batch result ({exc.message[:160]})")
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        return LineOutcome(custom_id, None, f"malformed batch result ({type(exc).__name__}: {str(exc)[:120]})")


def openai_completion(body: Mapping[str, Any], usage: Usage | None) -> Completion:
    """A chat.completion body (not streamed)."""
    choice = body["choices"][0]
    message = choice["message"]
    text = message.get("content") or ""
    if not isinstance(text, str):
        raise TypeError(f"the content is {type(text).__name__}, not a string")
    calls = tuple(ToolCall(str(call["function"]["name"]), str(call["function"].get("arguments") or "{}"))
                  for call in message.get("tool_calls") or ())
    return Completion(text=text, usage=usage, latency_ms=0.0, ttft_ms=None, resolved_model=_text(body.get("model")),
                      finish_reason=_text(choice.get("finish_reason")), chunks=(text,) if text else (),
                      tool_calls=calls)


def anthropic_completion(message: Mapping[str, Any], usage: Usage | None) -> Completion:
    """A Messages API message (not streamed): its text blocks joined, its tool_use blocks as tool calls."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message["content"]:
        if block.get("type") == "text":
            if not isinstance(block.get("text"), str):
                raise TypeError("a text block's text is not a string")
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            calls.append(ToolCall(str(block["name"]), json.dumps(block.get("input") or {})))
    text = "".join(texts)
    return Completion(text=text, usage=usage, latency_ms=0.0, ttft_ms=None, resolved_model=_text(message.get("model")),
                      finish_reason=_text(message.get("stop_reason")), chunks=(text,) if text else (),
                      tool_calls=tuple(calls))


def error_text(error: object, status: object = None) -> str:
    """A line's error as one readable phrase: `HTTP 500: Internal server error`, `batch_expired: ...`."""
    if isinstance(error, Mapping):
        inner = error.get("error")
        if isinstance(inner, Mapping):
            return error_text(inner, status)
        code = error.get("code") or error.get("type") or "error"
        message = str(error.get("message") or "")[:300]
        where = f"HTTP {status}: " if isinstance(status, int) else f"{code}: "
        return f"{where}{message}".rstrip(": ")
    return f"HTTP {status}" if isinstance(status, int) else "error"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
