"""A prompt's `tools:` (function tools the model may call), checked with path:line and written in OpenAI's
shape, which goes into the request's params (so tools are part of its identity); providers/anthropic.py
maps them to Anthropic's."""

from __future__ import annotations

import re
from typing import Any

from promptci.config import unknown_keys
from promptci.errors import Problem
from promptci.loading.yamlfile import line_of, to_plain
from promptci.types import Location

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what both OpenAI and Anthropic accept
FUNCTION_KEYS = ("name", "description", "parameters", "strict")
WRAPPED_KEYS = ("type", "function")
EMPTY_SCHEMA = {"type": "object", "properties": {}}


def read_tools(value: Any, where: str, line: int) -> tuple[list[dict[str, Any]], list[Problem]]:
    """`tools:` as a list of `{name, description, parameters}` (a JSON schema) or OpenAI's
    `{type: function, function: {...}}`; returned in OpenAI's shape."""
    if not isinstance(value, list) or not value:
        return [], [Problem("`tools` must be a list of functions like {name: get_weather, description: ..., "
                            "parameters: {type: object, properties: {city: {type: string}}}}", Location(where, line))]
    tools: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for item in value:
        tool = read_tool(item, where, getattr(item, "line", 0) or line, problems)
        if tool is None:
            continue
        name = tool["function"]["name"]
        if any(t["function"]["name"] == name for t in tools):
            problems.append(Problem(f"tool {name!r} is declared twice", Location(where, getattr(item, "line", line))))
        tools.append(tool)
    return tools, problems


def read_tool(item: Any, where: str, line: int, problems: list[Problem]) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        problems.append(Problem(f"a tool must be a mapping with `name:`, got {item!r}", Location(where, line)))
        return None
    if "function" in item or item.get("type") == "function":
        problems.extend(unknown_keys(item, WRAPPED_KEYS, "a tool", where))
        function = item.get("function")
        if not isinstance(function, dict):
            problems.append(Problem("`function` of a tool must be a mapping with `name:`",
                                    Location(where, line_of(item, "function") or line)))
            return None
        line = getattr(function, "line", 0) or line
    else:
        function = item
    before = len(problems)
    problems.extend(unknown_keys(function, FUNCTION_KEYS, "a tool's function", where))
    name = function.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        problems.append(Problem(f"a tool needs `name:` of letters, digits, '_' or '-' (at most 64), got {name!r}",
                                Location(where, line_of(function, "name") or line)))
    parameters = function.get("parameters", EMPTY_SCHEMA)
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        problems.append(Problem("a tool's `parameters` must be a JSON schema of an object, like {type: object, "
                                "properties: {city: {type: string}}}", Location(where, line_of(function, "parameters")
                                                                               or line)))
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(Problem("a tool's `description` must be a string",
                                Location(where, line_of(function, "description"))))
    if len(problems) > before:
        return None
    return {"type": "function", "function": to_plain(
        {key: function[key] for key in FUNCTION_KEYS if key in function} | {"parameters": parameters})}
