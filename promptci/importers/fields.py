"""Recognise translated expressions that are checks on fields of the JSON output, and write them as a
`json_fields` comparator (JMESPath paths, clearer failure reasons, and a missing field fails instead of
raising): `json['a'] == 'x' and len(json['tags']) >= 1` -> `fields: {a: x, tags: {length: {min: 1}}}`.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FLAGS = {"I": "i", "M": "m", "S": "s"}


class _NotAField(Exception):
    """The expression is not (only) field checks: keep it as `expr`."""


def as_json_fields(expression: str) -> dict[str, Any] | None:
    """The json_fields spec equivalent to a Python `expr`, or None when it is anything else."""
    try:
        tree = ast.parse(expression, mode="eval").body
        fields: dict[str, dict[str, Any]] = {}
        for part in tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]:
            path, checks = _field_check(part)
            merged = fields.setdefault(path, {})
            for name, value in checks.items():
                merged[name] = _merge(merged[name], value) if name in merged else value
    except (SyntaxError, _NotAField):
        return None
    return {"type": "json_fields", "fields": {path: _shorthand(checks) for path, checks in fields.items()}}


def _merge(first: Any, second: Any) -> Any:
    """Two length ranges on one field (`len(x) > 0 and len(x) < 3`) join; any other repeat is not a field check."""
    if isinstance(first, dict) and isinstance(second, dict) and not set(first) & set(second):
        return {**first, **second}
    raise _NotAField


def _field_check(node: ast.expr) -> tuple[str, dict[str, Any]]:
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, op, right = node.left, node.ops[0], node.comparators[0]
        if isinstance(op, ast.IsNot) and _constant(right) is None and isinstance(left, ast.Call):
            return _regex(left)
        if isinstance(op, ast.In):
            if isinstance(right, ast.List):
                return _path(left), {"one_of": _constant(right)}
            return _path(right), {"contains": _scalar(left)}
        if _is_len(left):
            return _length(_path(left.args[0]), op, _integer(right))  # type: ignore[attr-defined]
        if _is_len(right):
            return _length(_path(right.args[0]), _mirror(op), _integer(left))  # type: ignore[attr-defined]
        if isinstance(op, ast.Eq):
            return _path(left), {"equals": _constant(right)}
        if isinstance(op, (ast.GtE, ast.LtE)):
            return _path(left), {"min" if isinstance(op, ast.GtE) else "max": _number(right)}
    raise _NotAField


def _regex(call: ast.Call) -> tuple[str, dict[str, Any]]:
    function = call.func
    if not (isinstance(function, ast.Attribute) and function.attr == "search" and isinstance(function.value, ast.Name)
            and function.value.id == "re" and len(call.args) in (2, 3) and not call.keywords):
        raise _NotAField
    pattern = _scalar(call.args[0])
    if not isinstance(pattern, str):
        raise _NotAField
    flags = ""
    if len(call.args) == 3:
        names = [n.attr for n in ast.walk(call.args[2]) if isinstance(n, ast.Attribute)]
        if not names or any(name not in _FLAGS for name in names):
            raise _NotAField
        flags = "(?" + "".join(_FLAGS[name] for name in names) + ")"
    return _path(call.args[1]), {"regex": flags + pattern}


def _length(path: str, op: ast.cmpop, size: int) -> tuple[str, dict[str, Any]]:
    bounds = {ast.Eq: (size, size), ast.GtE: (size, None), ast.Gt: (size + 1, None), ast.LtE: (None, size),
              ast.Lt: (None, size - 1)}
    if type(op) not in bounds:
        raise _NotAField
    low, high = bounds[type(op)]
    if low is not None and low == high:
        return path, {"length": low}
    return path, {"length": {key: value for key, value in (("min", low), ("max", high)) if value is not None}}


def _mirror(op: ast.cmpop) -> ast.cmpop:
    mirrored = {ast.Gt: ast.Lt, ast.Lt: ast.Gt, ast.GtE: ast.LtE, ast.LtE: ast.GtE, ast.Eq: ast.Eq}
    if type(op) not in mirrored:
        raise _NotAField
    return mirrored[type(op)]()


def _path(node: ast.expr) -> str:
    """json['a']['b'][0] -> 'a.b[0]' (a JMESPath); anything else is not a field."""
    steps: list[str] = []
    while isinstance(node, ast.Subscript):
        key = _scalar(node.slice)
        if isinstance(key, bool) or not isinstance(key, (str, int)) or (isinstance(key, int) and key < 0):
            raise _NotAField
        steps.append(f"[{key}]" if isinstance(key, int) else
                     key if _IDENTIFIER.fullmatch(key) else json.dumps(key))
        node = node.value
    if not (isinstance(node, ast.Name) and node.id == "json") or not steps:
        raise _NotAField
    path = ""
    for step in reversed(steps):
        path += step if step.startswith("[") or not path else f".{step}"
    return path


def _is_len(node: ast.expr) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"
            and len(node.args) == 1 and not node.keywords)


def _constant(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError):
        raise _NotAField from None


def _scalar(node: ast.expr) -> Any:
    value = _constant(node)
    if isinstance(value, (list, dict, tuple, set)):
        raise _NotAField
    return value


def _number(node: ast.expr) -> float | int:
    value = _constant(node)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _NotAField
    return value


def _integer(node: ast.expr) -> int:
    value = _number(node)
    if not isinstance(value, int):
        raise _NotAField
    return value


def _shorthand(checks: dict[str, Any]) -> Any:
    """A lone equals on a string, number or boolean is written as the bare value (`status: ok`)."""
    if list(checks) == ["equals"] and isinstance(checks["equals"], (str, int, float, bool)):
        return checks["equals"]
    return checks
