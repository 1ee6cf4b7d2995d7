"""promptfoo code assertions -> functions of a generated checks.py (python comparators).

An inline `javascript` assertion is read the way promptfoo reads it (src/assertions/javascript.ts): one
line is an expression (`return` is prepended) unless it starts with const/let/var, in which case its last
statement is returned; several lines are a function body. A `file://checks.cjs[:fn]` assertion calls the
file's exported function with (output, context); the whole file is translated once. Inline `python`
assertions are copied as Python. Each function is decorated with the runtime's `js_assertion`, which
applies promptfoo's verdict rule (a number passes when > 0, or >= the assertion's threshold).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptci.importers.jstranslate import Translator, Untranslatable, _named, parse, text_of

RUNTIME_MODULE = "promptfoo_js"
CHECKS_FILE = "checks.py"
HEADER = f'''"""Checks converted from promptfoo by `promptci import promptfoo`.

Each function keeps the meaning of the JavaScript (or Python) it came from, shown above it. JavaScript
semantics (truthiness, ==, undefined, number formatting) come from {RUNTIME_MODULE}.py beside this file.
"""
# ruff: noqa
import json
import math
import re

import {RUNTIME_MODULE} as js
'''


@dataclass
class CheckFile:
    """The functions of the generated checks.py, and the translated JavaScript files they call."""

    functions: list[str] = field(default_factory=list)
    transforms: list[str] = field(default_factory=list)
    modules: dict[str, str] = field(default_factory=dict)  # file path -> its factory's Python name
    module_code: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    made: dict[tuple[Any, ...], str] = field(default_factory=dict)  # the same check twice is one function

    def render(self) -> str:
        return "\n\n\n".join([HEADER.rstrip("\n"), *self.module_code, *self.transforms, *self.functions]) + "\n"

    def name_for(self, hint: str) -> str:
        stem = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:40] or "check"
        name, number = f"check_{stem}", 1
        while name in self.names:
            number += 1
            name = f"check_{stem}_{number}"
        self.names.add(name)
        return name


def _decorator(threshold: Any, inverse: bool, transform: str | None) -> str:
    arguments = [f"transform={transform}"] if transform else []
    if threshold is not None:
        arguments.append(f"threshold={float(threshold)!r}")
    if inverse:
        arguments.append("inverse=True")
    return f"@js.js_assertion({', '.join(arguments)})"


def _comment(source: str, label: str) -> list[str]:
    return [f"# {label}", *(f"#   {line}".rstrip() for line in source.strip("\n").splitlines())]


def add_inline_javascript(checks: CheckFile, source: str, hint: str, threshold: Any, inverse: bool,
                          transform: str | None = None) -> str:
    """The name of a new check function for an inline JavaScript assertion; Untranslatable if it is not."""
    key = ("javascript", source, threshold, inverse, transform)
    if key in checks.made:
        return checks.made[key]
    name = checks.name_for(hint)
    lines = _inline_function(source, name, _decorator(threshold, inverse, transform))
    checks.functions.append("\n".join([*_comment(source, "promptfoo javascript:"), *lines]))
    checks.made[key] = name
    return name


def add_transform_function(checks: CheckFile, source: str, hint: str, base: str | None) -> str:
    """A promptfoo `transform` as a checks.py function usable as a promptci `transform: {python: ...}` (text in,
    text out: JSON for a non-string result) and by the converted JavaScript checks (the value itself)."""
    if re.search(r"\bcontext\b", source):
        raise Untranslatable("a transform that reads `context` (promptci transforms see only the output)", 1)
    key = ("transform", source, base)
    if key in checks.made:
        return checks.made[key]
    name = checks.name_for(f"transform_{hint}").replace("check_transform", "transform", 1)
    decorator = f"@js.js_transform(base={base})" if base else "@js.js_transform()"
    lines = _inline_function(source, name, decorator, promptfoo_one_liner=False)
    checks.transforms.append("\n".join([*_comment(source, "promptfoo transform:"), *lines]))
    checks.made[key] = name
    return name


def _inline_function(source: str, name: str, decorator: str, promptfoo_one_liner: bool = True) -> list[str]:
    try:
        return _translate_inline(source, name, decorator, promptfoo_one_liner)
    except RecursionError:
        raise Untranslatable("the code is nested too deeply to translate", 1) from None


def _translate_inline(source: str, name: str, decorator: str, promptfoo_one_liner: bool) -> list[str]:
    code = source.rstrip()
    root = parse(code)
    statements = _named(root)
    if not statements:
        raise Untranslatable("empty JavaScript", 1)
    if "\n" not in code.strip():
        statements = _as_promptfoo_one_liner(code if promptfoo_one_liner else "", statements)
    return Translator().function(name, ["output", "context"], _Body(statements), False, [decorator])


def _as_promptfoo_one_liner(code: str, statements: list[Any]) -> list[Any]:
    """promptfoo's buildFunctionBody: `return` before the expression, or, for a line starting with
    const/let/var, after its last top-level `;` (what follows must then be one expression)."""
    if not re.match(r"(const|let|var)\s", code.strip()):
        first = statements[0]
        if first.type == "expression_statement":
            return [_Return(first)]
        raise Untranslatable(f"a one-line assertion that is not an expression ({first.type.replace('_', ' ')})",
                             first.start_point[0] + 1)
    ends = [index for index, statement in enumerate(statements) if text_of(statement).rstrip().endswith(";")]
    if not ends or ends[-1] == len(statements) - 1:
        return statements  # nothing after the last `;`: promptfoo runs it as is and gets undefined
    rest = statements[ends[-1] + 1:]
    if len(rest) != 1 or rest[0].type != "expression_statement":
        raise Untranslatable("promptfoo reads this one-liner with `return` after its last top-level `;`, "
                             f"before `{text_of(rest[0])[:40]}`: a syntax error, so it always fails there",
                             rest[0].start_point[0] + 1)
    return [*statements[: ends[-1] + 1], _Return(rest[0])]


def add_file_javascript(checks: CheckFile, path: Path, shown: str, function: str | None, hint: str,
                        threshold: Any, inverse: bool, transform: str | None = None) -> str:
    """A check calling `function` (the default export when None) of a translated .js/.cjs file."""
    factory = checks.modules.get(str(path))
    if factory is None:
        try:
            factory = _translate_file(checks, path, shown)
        except RecursionError:
            raise Untranslatable("the code is nested too deeply to translate", 1) from None
    made_key = ("file", str(path), function, threshold, inverse, transform)
    if made_key in checks.made:
        return checks.made[made_key]
    key = function or "default"
    exports = file_exports(path)
    if key not in exports:
        known = ", ".join(sorted(exports)) or "none"
        raise Untranslatable(f"exports no function {key!r} (exports: {known})", 1)
    name = checks.name_for(hint)
    lines = [f"# promptfoo javascript: file://{shown}{':' + function if function else ''}",
             _decorator(threshold, inverse, transform),
             f"def {name}(output, context):",
             f"    return js.call({factory}[{key!r}], output, context)"]
    checks.functions.append("\n".join(lines))
    checks.made[made_key] = name
    return name


def file_exports(path: Path) -> dict[str, int]:
    """The names a JavaScript file exports (`default` for module.exports = fn) and their lines."""
    root = parse(path.read_text(encoding="utf-8"))
    return {name: node.start_point[0] + 1 for name, node, _value in _exports(root)}


def _exports(root: Any) -> list[tuple[str, Any, Any]]:
    found: list[tuple[str, Any, Any]] = []
    for statement in _named(root):
        if statement.type != "expression_statement":
            continue
        expression = _named(statement)[0]
        if expression.type != "assignment_expression":
            continue
        target, value = text_of(expression.child_by_field_name("left")), expression.child_by_field_name("right")
        if target == "module.exports" and value.type == "object":
            for entry in _named(value):
                if entry.type == "shorthand_property_identifier":
                    found.append((text_of(entry), entry, entry))
                elif entry.type == "pair":
                    found.append((text_of(entry.child_by_field_name("key")).strip("'\""), entry,
                                  entry.child_by_field_name("value")))
                elif entry.type == "method_definition":
                    found.append((text_of(entry.child_by_field_name("name")), entry, entry))
        elif target == "module.exports":
            found.append(("default", expression, value))
        elif target.startswith(("module.exports.", "exports.")):
            found.append((target.rsplit(".", 1)[1], expression, value))
    return found


def _translate_file(checks: CheckFile, path: Path, shown: str) -> str:
    source = path.read_text(encoding="utf-8")
    root = parse(source)
    exports = _exports(root)
    if not exports:
        raise Untranslatable("the file exports no function (module.exports = ...)", 1)
    translator = Translator()
    factory = f"_{re.sub(r'[^a-z0-9]+', '_', Path(shown).name.lower())}"
    body: list[Any] = []
    for statement in _named(root):
        inner = _named(statement)[0] if statement.type == "expression_statement" and _named(statement) else None
        if inner is not None and inner.type == "assignment_expression" and text_of(
                inner.child_by_field_name("left")).startswith(("module.exports", "exports.")):
            continue
        if statement.type == "expression_statement" and inner is not None and inner.type == "string":
            continue  # 'use strict'
        body.append(statement)
    values = []
    for name, node, value in exports:
        if node.type == "method_definition":
            raise Untranslatable("a method definition in module.exports", node.start_point[0] + 1)
        values.append((name, value))
    lines = translator.function(f"{factory}_module", [], _Body([*body, _ExportObject(values)]), False, [])
    checks.module_code.append("\n".join([f"# translated from {shown}", *lines,
                                         f"{factory} = {factory}_module()"]))
    checks.modules[str(path)] = factory
    return factory


def add_inline_python(checks: CheckFile, source: str, hint: str, threshold: Any, inverse: bool,
                      transform: str | None = None) -> str:
    """A promptfoo inline Python assertion as a function: one line is an expression, more is a body."""
    key = ("python", source, threshold, inverse, transform)
    if key in checks.made:
        return checks.made[key]
    code = source.strip("\n")
    body = code.strip() if "\n" not in code.strip() else textwrap.dedent(code)
    if "\n" not in body:
        body = f"return ({body.removeprefix('return ').rstrip(';')})"
    try:
        compile(f"def f(output, context):\n{textwrap.indent(body, '    ')}\n", "<python assertion>", "exec")
    except SyntaxError as exc:
        raise Untranslatable(f"invalid Python: {exc.msg}", exc.lineno or 1) from None
    name = checks.name_for(hint)
    lines = [*_comment(source, "promptfoo python:"), _decorator(threshold, inverse, transform).replace(
        "js_assertion", "python_assertion"), f"def {name}(output, context):", textwrap.indent(body, "    ")]
    checks.functions.append("\n".join(lines))
    checks.made[key] = name
    return name


class _Return:
    """An expression statement read as `return <expression>` (promptfoo prepends `return`)."""

    type = "return_statement"

    def __init__(self, statement: Any) -> None:
        self.named_children = _named(statement)
        self.start_point = statement.start_point


class _Body:
    """A list of statements presented as a statement block."""

    type = "statement_block"

    def __init__(self, statements: list[Any]) -> None:
        self.named_children = statements


class _ExportObject:
    """The end of a translated file: return {name: function} of its exports."""

    type = "export_object"

    def __init__(self, values: list[tuple[str, Any]]) -> None:
        self.values = values
        self.named_children: list[Any] = []
