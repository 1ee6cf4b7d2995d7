"""A case's conversation keys, every problem at path:line: `tool_mocks:`, `tool_mock_order:` and `max_turns:`
read into a ToolScript (the mocks' `fields` checks are built by conversation.py), and `turns:` into UserTurns."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from promptci.comparator_specs import parse_comparators
from promptci.config import unknown_keys
from promptci.errors import Problem, PromptCIError
from promptci.loading.tools import TOOL_NAME
from promptci.loading.yamlfile import item_line, line_of, to_plain, type_name
from promptci.types import Location, MockMatch, MockOrder, ToolMock, ToolScript, UserTurn
from promptci.usercode import load_function

SCRIPT_KEYS = ("tool_mocks", "tool_mock_order", "max_turns")
CONVERSATION_KEYS = (*SCRIPT_KEYS, "turns")
TURN_KEYS = ("user", "expected", "comparators")
TURN_EXAMPLE = ("turns: [\"And by express?\", {user: \"Thanks, {{ name }}\", comparators: [{type: contains, "
                "value: welcome}]}]")
MOCK_KEYS = ("tool", "arguments", "match", "returns", "python", "times")
MATCHES = ("exact", "subset", "fields")
ORDERS = ("any", "in_order")
DEFAULT_MAX_TURNS = 8
MOST_TURNS = 50
EXAMPLE = "{tool: lookup_order, arguments: {order_id: '42'}, returns: {status: shipped}}"


def read_tool_script(item: Mapping[str, Any], where: str, root: Path, problems: list[Problem]) -> ToolScript | None:
    """None when the case has no `tool_mocks:` (it is then one request, as before)."""
    if "tool_mocks" not in item:
        for key in SCRIPT_KEYS[1:]:
            if key in item:
                problems.append(Problem(f"`{key}` only applies to a case with `tool_mocks:`, e.g. "
                                        f"`tool_mocks: [{EXAMPLE}]`", Location(where, line_of(item, key))))
        return None
    value = item["tool_mocks"]
    line = line_of(item, "tool_mocks")
    if not isinstance(value, list):
        problems.append(Problem(f"`tool_mocks` must be a list of mocks like {EXAMPLE}, got {type_name(value)}",
                                Location(where, line)))
        return None
    mocks = [mock for index, entry in enumerate(value)
             if (mock := read_mock(entry, Location(where, item_line(value, index) or line), root, problems))
             is not None]
    order = item.get("tool_mock_order", "any")
    if order not in ORDERS:
        problems.append(Problem(f"`tool_mock_order` must be one of {', '.join(ORDERS)}, got {to_plain(order)!r}",
                                Location(where, line_of(item, "tool_mock_order"))))
        order = "any"
    max_turns = item.get("max_turns", DEFAULT_MAX_TURNS)
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or not 1 <= max_turns <= MOST_TURNS:
        problems.append(Problem(f"`max_turns` must be a whole number from 1 to {MOST_TURNS} (model requests in the "
                                f"tool loop), got {to_plain(max_turns)!r}",
                                Location(where, line_of(item, "max_turns"))))
        max_turns = DEFAULT_MAX_TURNS
    return ToolScript(tuple(mocks), cast(MockOrder, order), max_turns)


def read_mock(entry: Any, location: Location, root: Path, problems: list[Problem]) -> ToolMock | None:
    if not isinstance(entry, dict):
        problems.append(Problem(f"a tool mock must be a mapping like {EXAMPLE}, got {type_name(entry)}", location))
        return None
    before = len(problems)
    problems.extend(unknown_keys(entry, MOCK_KEYS, "a tool mock", location.file))
    where = location.file
    tool = entry.get("tool")
    if not isinstance(tool, str) or not TOOL_NAME.match(tool):
        problems.append(Problem(f"a tool mock needs `tool:`, the name of a tool the prompt declares, got "
                                f"{to_plain(tool)!r}", Location(where, line_of(entry, "tool") or location.line)))
    match = entry.get("match", "exact")
    if match not in MATCHES:
        problems.append(Problem(f"a tool mock's `match` must be one of {', '.join(MATCHES)}, got {to_plain(match)!r}",
                                Location(where, line_of(entry, "match"))))
    arguments = entry.get("arguments")
    if arguments is not None and not isinstance(arguments, dict):
        problems.append(Problem(f"a tool mock's `arguments` must be a mapping (leave it out to match any "
                                f"arguments), got {type_name(arguments)}",
                                Location(where, line_of(entry, "arguments"))))
    times = entry.get("times", 1)
    if times != "any" and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        problems.append(Problem(f"a tool mock's `times` must be a whole number of at least 1 or `any`, got "
                                f"{to_plain(times)!r}", Location(where, line_of(entry, "times"))))
    function = None
    if ("returns" in entry) == ("python" in entry):
        problems.append(Problem("a tool mock needs `returns:`, what the tool answers (text, or any YAML value, "
                                "sent as JSON), or `python: tools.py:function` (called with the arguments and a "
                                "state dict kept for the conversation), and not both", location))
    elif "python" in entry:
        function = read_function(entry, location, root, problems)
    if len(problems) > before:
        return None
    return ToolMock(tool=str(tool), location=location, arguments=to_plain(arguments) if arguments is not None else None,
                    match=cast(MockMatch, match), returns=to_plain(entry.get("returns")),
                    times=None if times == "any" else times, python=entry.get("python"), function=function)


def read_function(entry: Mapping[str, Any], location: Location, root: Path, problems: list[Problem]) -> Any:
    """The mock's `python:` function, loaded now so a wrong name is a load error at its line."""
    spec = entry["python"]
    at = Location(location.file, line_of(entry, "python") or location.line)
    if not isinstance(spec, str):
        problems.append(Problem(f"a tool mock's `python` must be 'file.py:function' or 'package.module:function', "
                                f"got {to_plain(spec)!r}", at))
        return None
    try:
        return load_function(spec, root, "tool mock `python`")
    except PromptCIError as exc:
        problems.append(Problem(exc.message, at))
        return None


def read_user_turns(item: Mapping[str, Any], where: str, root: Path, problems: list[Problem]) -> tuple[UserTurn, ...]:
    """`turns:` as user messages sent after the model's replies, each with optional `expected` and `comparators`
    that check the reply to it."""
    if "turns" not in item:
        return ()
    value = item["turns"]
    line = line_of(item, "turns")
    if not isinstance(value, list) or not value:
        problems.append(Problem(f"`turns` must be a non-empty list of user messages, e.g. {TURN_EXAMPLE}",
                                Location(where, line)))
        return ()
    turns = [turn for index, entry in enumerate(value)
             if (turn := read_user_turn(entry, Location(where, item_line(value, index) or line), root, problems))]
    return tuple(turns) if len(turns) == len(value) else ()


def read_user_turn(entry: Any, location: Location, root: Path, problems: list[Problem]) -> UserTurn | None:
    if isinstance(entry, str):
        return UserTurn(entry, location)
    if not isinstance(entry, dict) or not isinstance(entry.get("user"), str):
        problems.append(Problem(f"a turn is a user message (text) or a mapping with `user:` text, got "
                                f"{type_name(entry)}; e.g. {TURN_EXAMPLE}", location))
        return None
    before = len(problems)
    problems.extend(unknown_keys(entry, TURN_KEYS, "a turn", location.file))
    comparators: tuple[Any, ...] = ()
    if "comparators" in entry:
        comparators, found = parse_comparators(entry["comparators"], location.file, line_of(entry, "comparators"),
                                               root)
        problems.extend(found)
    if len(problems) > before:
        return None
    return UserTurn(entry["user"], location, to_plain(entry.get("expected")), "expected" in entry,
                    tuple(comparators))
