"""A case's conversation: each turn is one request through the model client; the model's tool calls are
answered by the case's `tool_mocks:` until it answers without calling a tool (or `max_turns` is reached), then
the case's next scripted user message (`turns:`) is sent. A call no mock answers ends the case closed (failed,
naming the call and the nearest mock): nothing real is ever called."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from promptci.client import Answer, ModelCall, ModelClient
from promptci.comparators.fields import field_checks, field_failures, shown
from promptci.errors import UserCodeFailed
from promptci.store import LedgerEntry
from promptci.types import Completion, Message, Score, ToolCall, ToolMock, ToolScript, Usage
from promptci.usercode import call_user_code, run_timeout_s

LOOP_SCORE = "tool_mocks"  # the comparator name the tool loop's own verdicts carry


@dataclass(frozen=True)
class Conversation:
    """What a conversation gave: the answer to score (its completion is the last turn's, with every turn's tool
    calls, usage and cost), the loop's own failing scores, the transcript of its turns, and the model's reply
    to each scripted user turn (its index in the case's `turns:`) for that turn's own checks."""

    answer: Answer
    scores: tuple[Score, ...] = ()
    transcript: tuple[dict[str, Any], ...] = ()
    replies: tuple[tuple[int, Completion], ...] = ()


@dataclass
class _Loop:
    script: ToolScript
    used: list[int]
    turns: list[Completion] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    replies: list[tuple[int, Completion]] = field(default_factory=list)
    attempts: int = 0
    state: dict[str, Any] = field(default_factory=dict)  # python mocks' own, for this conversation only


NO_MOCKS = ToolScript(())


async def converse(client: ModelClient, first: ModelCall, script: ToolScript | None,
                   user_turns: Sequence[str] = ()) -> Conversation:
    """Runs the conversation from the case's rendered request: the model answers (calling tools as long as it
    wants, up to max_turns requests), then the next scripted user message is sent, until none is left. Every
    request carries the turns before it."""
    script = script or NO_MOCKS
    loop = _Loop(script, [0] * len(script.mocks))
    messages: list[Message] = list(first.request.messages)
    pending = list(enumerate(user_turns))
    answering: int | None = None  # the scripted turn the model answers now; None: the prompt's own messages
    if pending and (not messages or messages[-1]["role"] != "user"):
        answering, text = pending.pop(0)
        messages.append({"role": "user", "content": text})
    while True:
        started = len(loop.turns)
        failed = await exchange(client, first, loop, messages)
        if failed is not None:
            return failed
        reply = loop.turns[-1]
        if answering is not None:
            loop.replies.append((answering, combined(loop.turns[started:])))
        if not pending:
            return finished(loop, unused_mocks(loop))
        messages.append({"role": "assistant", "content": reply.text or ""})
        answering, text = pending.pop(0)
        messages.append({"role": "user", "content": text})


async def exchange(client: ModelClient, first: ModelCall, loop: _Loop, messages: list[Message]
                   ) -> Conversation | None:
    """The model's answer to the last user message: requests until it answers without calling a tool. None when
    it did; else the conversation as it ended (no answer, an unexpected call, or max_turns)."""
    user = messages[-1]["content"] if messages and messages[-1]["role"] == "user" else None
    for _ in range(loop.script.max_turns):
        turn = len(loop.turns) + 1
        call = replace(first, request=replace(first.request, messages=tuple(messages)),
                       attribution=replace(first.attribution, where=f"{first.attribution.where}, turn {turn}"))
        answer = await client.complete(call)
        loop.ledger.extend(answer.ledger)
        loop.attempts += answer.attempts
        if answer.completion is None:
            problem = f"turn {turn}: {answer.problem or 'no answer'}"
            return Conversation(replace(answer, problem=problem, ledger=tuple(loop.ledger), attempts=loop.attempts),
                                transcript=tuple(loop.transcript))
        completion = answer.completion
        loop.turns.append(completion)
        entry: dict[str, Any] = {"turn": turn, "user": user, "text": completion.text, "tool_calls": []}
        user = None
        loop.transcript.append(entry)
        if not completion.tool_calls:
            return None
        results: list[Message] = []
        for index, tool_call in enumerate(completion.tool_calls):
            mock_index = matching_mock(tool_call, loop.script, loop.used)
            if mock_index is None:
                entry["tool_calls"].append({**tool_call.to_dict(), "mock": None, "result": None})
                return finished(loop, [unexpected_call(turn, tool_call, loop.script, loop.used)])
            loop.used[mock_index] += 1
            mock = loop.script.mocks[mock_index]
            try:
                result = await mock_result(mock, tool_call, loop.state)
            except UserCodeFailed as exc:  # the user's fake failed: no verdict on the model
                problem = f"turn {turn}: tool mock at {mock.location}: {exc.describe()}"
                return Conversation(Answer(None, problem, attempts=loop.attempts, ledger=tuple(loop.ledger)),
                                    transcript=tuple(loop.transcript))
            entry["tool_calls"].append({**tool_call.to_dict(), "mock": str(mock.location), "result": result})
            results.append({"role": "tool", "tool_call_id": call_id(turn, index), "content": result})
        messages.append(assistant_message(turn, completion))
        messages.extend(results)
    return finished(loop, [Score(LOOP_SCORE, 0.0, False, f"the model still called tools after max_turns="
                                 f"{loop.script.max_turns} requests for one user message; raise `max_turns` or "
                                 "check the mocks' answers")])


def finished(loop: _Loop, failures: Sequence[Score]) -> Conversation:
    completion = combined(loop.turns)
    return Conversation(Answer(completion, attempts=loop.attempts, ledger=tuple(loop.ledger)),
                        tuple(failures), tuple(loop.transcript), tuple(loop.replies))


def call_id(turn: int, index: int) -> str:
    """Ours, not the provider's: the same on every run, so the next turn's request (and its cache key) is too."""
    return f"call_{turn}_{index}"


def assistant_message(turn: int, completion: Completion) -> Message:
    """The model's turn in OpenAI's shape; providers/anthropic.py turns it into tool_use blocks."""
    return {"role": "assistant", "content": completion.text or "",
            "tool_calls": [{"id": call_id(turn, index), "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments}}
                           for index, call in enumerate(completion.tool_calls)]}


async def mock_result(mock: ToolMock, call: ToolCall, state: dict[str, Any]) -> str:
    """What the tool answers: `returns`, or what its `python` function returns for the call's arguments and
    the conversation's state (called as all user code is); text as it is, any other value as JSON."""
    value = mock.returns
    if mock.function is not None:
        label = f"tool mock {mock.python}"
        value = await call_user_code(mock.function, json.loads(call.arguments), state, label=label,
                                     timeout_s=run_timeout_s())
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise UserCodeFailed(f"tool mock {mock.python} returned {type(value).__name__}, which is not JSON: {exc}"
                             ) from None


def matching_mock(call: ToolCall, script: ToolScript, used: Sequence[int]) -> int | None:
    """The mock that answers the call. In order, a mock with uses left must be used before the next one (a
    `times: any` mock used once may be passed over)."""
    for index, mock in enumerate(script.mocks):
        has_uses_left = mock.times is None or used[index] < mock.times
        if has_uses_left and not mismatch(mock, call):
            return index
        if script.order == "in_order" and has_uses_left and not (mock.times is None and used[index] > 0):
            return None
    return None


def mismatch(mock: ToolMock, call: ToolCall) -> list[str]:
    """Why the mock does not answer the call (empty: it does)."""
    if call.name != mock.tool:
        return [f"tool: expected {shown(mock.tool)}, got {shown(call.name)}"]
    try:
        arguments = json.loads(call.arguments)
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):  # never answered: the next request could not carry the call
        return [f"arguments are not a JSON object: {shown(call.arguments, 60)}"]
    if mock.arguments is None:
        return []
    if mock.match == "fields":
        return field_failures(field_checks(mock.arguments), arguments)
    if mock.match == "subset":
        return differences(mock.arguments, arguments, "", is_subset=True)
    return differences(mock.arguments, arguments, "", is_subset=False)


def differences(want: Any, got: Any, path: str, *, is_subset: bool) -> list[str]:
    """Where `got` differs from `want`; with is_subset, keys `want` does not name may be anything."""
    if isinstance(want, Mapping) and isinstance(got, Mapping):
        found = []
        for key, value in want.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in got:
                found.append(f"{where}: missing, expected {shown(value)}")
            else:
                found.extend(differences(value, got[key], where, is_subset=is_subset))
        if not is_subset:
            found.extend(f"{path + '.' if path else ''}{key}: not expected, got {shown(got[key])}"
                         for key in got if key not in want)
        return found
    if isinstance(want, bool) or isinstance(got, bool):
        same = type(want) is type(got) and want == got
    else:
        same = bool(want == got)
    return [] if same else [f"{path or 'arguments'}: expected {shown(want)}, got {shown(got)}"]


def unexpected_call(turn: int, call: ToolCall, script: ToolScript, used: Sequence[int]) -> Score:
    """Fails closed: names the call, and the nearest mock with why it did not answer."""
    made = f"{call.name}({shown(call.arguments, 80)})"
    return Score(LOOP_SCORE, 0.0, False, f"turn {turn}: unexpected tool call {made}, which no mock answers; "
                                         f"nearest mock: {nearest(call, script, used)}")


def nearest(call: ToolCall, script: ToolScript, used: Sequence[int]) -> str:
    if not script.mocks:
        return "none (the case has no tool_mocks)"
    names = [mock.tool for mock in script.mocks]
    close = difflib.get_close_matches(call.name, names, n=1, cutoff=0.0)

    def distance(index: int) -> tuple[int, int, int]:
        mock = script.mocks[index]
        return (mock.tool != call.name, mock.tool != (close[0] if close else ""), len(mismatch(mock, call)))

    index = min(range(len(script.mocks)), key=distance)
    mock = script.mocks[index]
    why = mismatch(mock, call)
    if not why and mock.times is not None and used[index] >= mock.times:
        why = [f"already used {used[index]} of times: {mock.times}"]
    elif not why:
        why = ["an earlier mock must be used first (tool_mock_order: in_order)"]
    return f"{mock.tool} at {mock.location} ({'; '.join(why[:3])})"


def unused_mocks(loop: _Loop) -> list[Score]:
    """A mock with `times: N` must be used N times by the time the model answers."""
    failures = []
    for mock, count in zip(loop.script.mocks, loop.used, strict=True):
        if mock.times is not None and count != mock.times:
            failures.append(Score(LOOP_SCORE, 0.0, False, f"mock {mock.tool} at {mock.location} was used {count} "
                                  f"of times: {mock.times} before the model answered"))
    return failures


def combined(turns: Sequence[Completion]) -> Completion:
    """The last turn's answer, with every turn's tool calls, tokens, time and cost. Cached when every turn was;
    otherwise its cost is what the turns sent spent (a cached turn spent nothing)."""
    last = turns[-1]
    is_cached = all(turn.cached for turn in turns)
    costs = [turn.cost_usd for turn in turns if is_cached or not turn.cached]
    usages = [turn.usage for turn in turns]
    usage = None if any(u is None for u in usages) else Usage(
        sum(u.input_tokens for u in usages if u), sum(u.output_tokens for u in usages if u),
        sum(u.cached_input_tokens for u in usages if u))
    return replace(last, usage=usage, latency_ms=sum(turn.latency_ms for turn in turns), ttft_ms=turns[0].ttft_ms,
                   cached=is_cached, attempts=sum(turn.attempts for turn in turns), turns=len(turns),
                   cost_usd=None if any(cost is None for cost in costs) else sum(c or 0.0 for c in costs),
                   tool_calls=tuple(call for turn in turns for call in turn.tool_calls))
