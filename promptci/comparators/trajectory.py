"""Checks on a tool loop's path rather than its last answer: which tools were called, in what order and with
what arguments (tool_sequence), how many calls (max_tool_calls), how many model turns (turns).

    - type: tool_sequence
      mode: in_order                    # exact (default) | in_order | any_order | subset
      tools:
        - lookup_order                  # a name
        - {name: refund, arguments: {order_id: "42"}}   # per-call checks, as json_fields' `fields`
    - {type: max_tool_calls, max: 3}    # optional `tool:` counts one tool's calls only
    - {type: turns, max: 2}             # min and/or max model requests
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from promptci.comparators._common import check_inputs, ignoring_expected
from promptci.comparators.fields import FieldCheck, field_checks, field_failures, shown
from promptci.errors import ComparatorError
from promptci.types import Case, Comparator, Completion, Score, ToolCall

MODES = ("exact", "in_order", "any_order", "subset")
EXAMPLE = "{type: tool_sequence, tools: [lookup_order, {name: refund, arguments: {order_id: '42'}}]}"


@dataclass(frozen=True)
class Step:
    name: str
    checks: tuple[FieldCheck, ...] = ()

    def why_not(self, call: ToolCall) -> list[str]:
        """Why the call is not this step (empty: it is)."""
        if call.name != self.name:
            return [f"expected {self.name!r}, got {call.name!r}"]
        if not self.checks:
            return []
        try:
            arguments = json.loads(call.arguments)
        except ValueError:
            return [f"{self.name}: arguments are not JSON: {shown(call.arguments)}"]
        return [f"{self.name}: {line}" for line in field_failures(list(self.checks), arguments)]


def read_step(item: Any) -> Step:
    if isinstance(item, str) and item:
        return Step(item)
    if isinstance(item, Mapping) and isinstance(item.get("name"), str) and set(item) <= {"name", "arguments"}:
        arguments = item.get("arguments") or {}
        if not isinstance(arguments, Mapping):
            raise ComparatorError(f"comparator 'tool_sequence': the arguments of {item['name']!r} must be a mapping "
                                  "of JMESPath -> check, e.g. {order_id: '42'}")
        return Step(item["name"], tuple(field_checks(arguments)))
    raise ComparatorError(f"comparator 'tool_sequence': each of `tools` is a tool name or {{name, arguments}}, got "
                          f"{item!r}; e.g. {EXAMPLE}")


def tool_sequence(*, tools: Any = None, mode: str = "exact") -> Comparator:
    """Passes when the calls made (over every turn) follow `tools` as `mode` says: exact (these calls, in this
    order, nothing else), in_order (these in this order, others between allowed), any_order (these calls and
    nothing else, any order), subset (each of these at least once, others allowed)."""
    if not isinstance(tools, list) or not tools:
        raise ComparatorError(f"comparator 'tool_sequence' needs option 'tools': a list, e.g. {EXAMPLE}")
    if mode not in MODES:
        raise ComparatorError(f"comparator 'tool_sequence': `mode` must be one of {', '.join(MODES)}, got {mode!r}")
    steps = [read_step(item) for item in tools]

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("tool_sequence", case, completion, needs_expected=False)
        if failed:
            return failed
        calls = list(completion.tool_calls)
        problems = sequence_problems(steps, calls, mode)
        made = ", ".join(call.name for call in calls) or "none"
        if not problems:
            return Score("tool_sequence", 1.0, True, f"calls made ({mode}): {made}")
        return Score("tool_sequence", 0.0, False, f"{problems[0]} (calls made: {made})", "\n".join(problems))

    return ignoring_expected(score)


def sequence_problems(steps: list[Step], calls: list[ToolCall], mode: str) -> list[str]:
    if mode == "exact":
        pairs = enumerate(zip(steps, calls, strict=False))  # a length difference is named below
        problems = [f"call {index + 1}: {'; '.join(why)}" for index, (step, call) in pairs
                    if (why := step.why_not(call))]
        if len(calls) != len(steps):
            problems.append(f"expected {len(steps)} call(s), got {len(calls)}")
        return problems
    if mode == "in_order":
        position = 0
        for step in steps:
            while position < len(calls) and step.why_not(calls[position]):
                position += 1
            if position == len(calls):
                return [f"no call to {step.name!r} (with its checks passing) in order after the ones before it"]
            position += 1
        return []
    unmatched = list(calls)
    problems = []
    for step in steps:
        found = next((call for call in unmatched if not step.why_not(call)), None)
        if found is None:
            nearest = next((call for call in unmatched if call.name == step.name), None)
            problems.append("; ".join(step.why_not(nearest)) if nearest else f"no call to {step.name!r}")
        else:
            unmatched.remove(found)
    if mode == "any_order" and unmatched and not problems:
        problems.append("calls not in `tools`: " + ", ".join(call.name for call in unmatched))
    return problems


def require_count(comparator: str, option: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ComparatorError(f"comparator {comparator!r}: option {option!r} must be a whole number, got {value!r}")
    return value


def max_tool_calls(*, max: Any = None, tool: Any = None) -> Comparator:
    """Passes when at most `max` tool calls were made over every turn (of `tool` only, when given)."""
    most = require_count("max_tool_calls", "max", max)
    if most is None:
        raise ComparatorError("comparator 'max_tool_calls' needs option 'max', e.g. {type: max_tool_calls, max: 3}")
    if tool is not None and not isinstance(tool, str):
        raise ComparatorError(f"comparator 'max_tool_calls': `tool` must be a tool name, got {tool!r}")

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("max_tool_calls", case, completion, needs_expected=False)
        if failed:
            return failed
        count = sum(1 for call in completion.tool_calls if tool is None or call.name == tool)
        what = f"call(s) to {tool!r}" if tool else "tool call(s)"
        return Score("max_tool_calls", 1.0 if count <= most else 0.0, count <= most,
                     f"{count} {what}, at most {most} allowed")

    return ignoring_expected(score)


def turns(*, min: Any = None, max: Any = None) -> Comparator:
    """Passes when the model answered within [min, max] turns (requests of the tool loop)."""
    least, most = require_count("turns", "min", min), require_count("turns", "max", max)
    if least is None and most is None:
        raise ComparatorError("comparator 'turns' needs option 'min' and/or 'max', e.g. {type: turns, max: 2}")

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("turns", case, completion, needs_expected=False)
        if failed:
            return failed
        count = completion.turns
        is_within = (least is None or count >= least) and (most is None or count <= most)
        bounds = " and ".join(part for part in (f"at least {least}" if least is not None else "",
                                                f"at most {most}" if most is not None else "") if part)
        return Score("turns", 1.0 if is_within else 0.0, is_within, f"{count} turn(s), {bounds} wanted")

    return ignoring_expected(score)
