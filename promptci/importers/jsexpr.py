"""Translate the one-line JavaScript expressions of promptfoo assertions into promptci `expr` Python.

Covers the common forms: `output.length < 300`, `output.toLowerCase().includes('x')`,
`JSON.parse(output).a === 1`, `/re/i.test(output)`, `output.split(' ').length`, `arr.every(x => ...)`,
`context.vars.name`, `Math.abs(...)`, ternaries and boolean logic. Anything else raises Untranslatable,
naming the construct, so the importer keeps the source as a TODO instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<str>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<template>`[^`$]*`)
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<punct>===|!==|==|!=|<=|>=|=>|&&|\|\||\?\.|[-+*/%<>!?:.,()\[\]{};])
""", re.VERBOSE)
_REGEX = re.compile(r"/((?:[^/\\\n\[]|\\.|\[(?:[^\]\\\n]|\\.)*\])+)/([a-z]*)")
_VALUE_END = ("num", "str", "template", "ident", "regex")
# Python precedence levels for the emitter: a child with a lower level than its slot needs parentheses.
TERNARY, OR, AND, NOT, COMPARE, ADD, MUL, UNARY, ATOM = range(9)
_BINARY = {"||": (OR, "or"), "&&": (AND, "and"), "===": (COMPARE, "=="), "==": (COMPARE, "=="),
           "!==": (COMPARE, "!="), "!=": (COMPARE, "!="), "<": (COMPARE, "<"), ">": (COMPARE, ">"),
           "<=": (COMPARE, "<="), ">=": (COMPARE, ">="), "+": (ADD, "+"), "-": (ADD, "-"),
           "*": (MUL, "*"), "/": (MUL, "/"), "%": (MUL, "%")}
_STRING_METHODS = {"toLowerCase": "lower", "toUpperCase": "upper", "trim": "strip", "trimStart": "lstrip",
                   "trimEnd": "rstrip", "startsWith": "startswith", "endsWith": "endswith", "split": "split",
                   "indexOf": "find", "replaceAll": "replace"}
_ITERATORS = {"every": "all", "some": "any"}
_MATH = {"abs": "abs", "max": "max", "min": "min", "round": "round"}
_CONVERSIONS = {"Number": "float", "parseFloat": "float", "parseInt": "int", "String": "str", "Boolean": "bool"}
_FLAGS = {"i": "re.I", "m": "re.M", "s": "re.S"}


class Untranslatable(ValueError):
    """The expression uses JavaScript this translator does not cover; the message names what."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True)
class Py:
    """A translated sub-expression: Python text and its precedence, or a namespace/lambda/regex marker."""

    text: str
    level: int = ATOM
    kind: str = "expr"  # expr | namespace (JSON, Math, context, ...) | lambda | regex
    param: str = ""  # lambda parameter; for a regex, its Python flags

    def at(self, level: int) -> str:
        return f"({self.text})" if self.level < level else self.text


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(source):
        if source[position] == "/" and (not tokens or (tokens[-1].kind not in _VALUE_END
                                        and tokens[-1].text not in (")", "]"))):
            match = _REGEX.match(source, position)
            if match:
                tokens.append(Token("regex", match.group(0)))
                position = match.end()
                continue
        match = _TOKEN.match(source, position)
        if not match:
            raise Untranslatable(f"unexpected character {source[position]!r}")
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup or "", match.group(0)))
        position = match.end()
    return tokens


def translate(source: str) -> str:
    """The Python `expr` for a promptfoo JavaScript assertion; Untranslatable when it is not covered."""
    text = source.strip()
    body = re.fullmatch(r"return\s+(.+?);?", text, re.DOTALL)
    if body:
        text = body.group(1)
    text = text.rstrip(";").strip()
    if "\n" in text or ";" in text:
        raise Untranslatable("more than one statement")
    parser = _Parser(tokenize(text))
    result = parser.expression()
    if parser.peek() is not None:
        raise Untranslatable(f"unexpected {parser.peek().text!r}")  # type: ignore[union-attr]
    if result.kind != "expr":
        raise Untranslatable(f"{result.text} is not a value")
    return result.text


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.index, self.params = tokens, 0, set[str]()

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.index + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, text: str | None = None) -> Token:
        token = self.peek()
        if token is None or (text is not None and token.text != text):
            raise Untranslatable(f"expected {text!r}" if text else "unexpected end of expression")
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.text == text and token.kind == "punct":
            self.index += 1
            return True
        return False

    def expression(self) -> Py:
        if self._is_arrow():
            return self._arrow()
        condition = self.binary(OR)
        if not self.accept("?"):
            return condition
        yes = self.expression()
        self.take(":")
        no = self.expression()
        return Py(f"{yes.at(OR)} if {condition.at(OR)} else {no.at(TERNARY)}", TERNARY)

    def binary(self, level: int) -> Py:
        left = self.unary()
        while True:
            token = self.peek()
            if token is None or token.kind != "punct" or token.text not in _BINARY:
                return left
            op_level, op = _BINARY[token.text]
            if op_level < level:
                return left
            self.index += 1
            right = self.binary(op_level + 1)
            _need_value(left, right)
            # Python chains comparisons (a < b < c); JavaScript does not: keep each comparison whole.
            left_text = left.at(op_level + 1 if op_level == COMPARE else op_level)
            left = Py(f"{left_text} {op} {right.at(op_level + 1)}", op_level)

    def unary(self) -> Py:
        if self.accept("!"):
            operand = self.unary()
            return Py(f"not {operand.at(NOT)}", NOT)
        if self.accept("-"):
            operand = self.unary()
            return Py(f"-{operand.at(UNARY)}", UNARY)
        if self.peek() is not None and self.peek().text == "typeof":  # type: ignore[union-attr]
            raise Untranslatable("typeof")
        return self.postfix(self.primary())

    def primary(self) -> Py:
        token = self.take()
        if token.kind == "num":
            return Py(token.text)
        if token.kind == "str":
            return Py(repr(_js_string(token.text)))
        if token.kind == "template":
            return Py(repr(token.text[1:-1]))
        if token.kind == "regex":
            match = _REGEX.fullmatch(token.text)
            assert match is not None
            pattern, flags = match.groups()
            unknown = set(flags) - set(_FLAGS) - {"g"}
            if unknown:
                raise Untranslatable(f"regex flag(s) {''.join(sorted(unknown))}")
            python_flags = " | ".join(_FLAGS[f] for f in flags if f in _FLAGS)
            return Py(repr(pattern), kind="regex", param=python_flags)
        if token.text == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if token.text == "[":
            items = self._list("]")
            return Py(f"[{', '.join(item.text for item in items)}]")
        if token.kind == "ident":
            return self._name(token.text)
        raise Untranslatable(f"unexpected {token.text!r}")

    def _name(self, name: str) -> Py:
        constants = {"true": "True", "false": "False", "null": "None", "undefined": "None"}
        if name in constants:
            return Py(constants[name])
        if name == "output" or name in self.params:
            return Py(name)
        if name in ("JSON", "Math", "context", "Object", "Array", *_CONVERSIONS):
            return Py(name, kind="namespace")
        raise Untranslatable(f"unknown name {name!r}")

    def postfix(self, value: Py) -> Py:
        while True:
            if self.accept(".") or self.accept("?."):
                value = self._member(value, self.take().text)
            elif self.accept("["):
                key = self.expression()
                self.take("]")
                _need_value(value, key)
                value = Py(f"{value.at(ATOM)}[{key.text}]")
            elif self.peek() is not None and self.peek().text == "(" and value.kind == "namespace":  # type: ignore[union-attr]
                self.take("(")
                value = self._call_function(value.text, self._list(")"))
            else:
                return value

    def _member(self, value: Py, name: str) -> Py:
        if value.kind == "namespace":
            return self._namespace_member(value.text, name)
        if value.kind == "regex":
            if name != "test":
                raise Untranslatable(f"regex .{name}")
            self.take("(")
            (subject,) = self._arguments(1)
            return _search(value, subject, "is not None")
        _need_value(value)
        if name == "length":
            return Py(f"len({value.text})")
        if self.peek() is None or self.peek().text != "(":  # type: ignore[union-attr]
            return Py(f"{value.at(ATOM)}[{name!r}]")  # a property of a parsed JSON object
        self.take("(")
        return self._method(value, name)

    def _method(self, value: Py, name: str) -> Py:
        if name == "includes":
            (needle,) = self._arguments(1)
            return Py(f"{needle.at(COMPARE + 1)} in {value.at(COMPARE + 1)}", COMPARE)
        if name == "match":
            (pattern,) = self._arguments(1)
            if pattern.kind != "regex":
                raise Untranslatable(".match() without a regex literal")
            return _search(pattern, value, "")
        if name in _ITERATORS or name in ("filter", "map"):
            (function,) = self._arguments(1)
            if function.kind != "lambda":
                raise Untranslatable(f".{name}() without an arrow function")
            loop = f"for {function.param} in {value.text}"
            if name == "filter":
                return Py(f"[{function.param} {loop} if {function.text}]")
            if name == "map":
                return Py(f"[{function.text} {loop}]")
            return Py(f"{_ITERATORS[name]}({function.text} {loop})")
        if name == "split":
            arguments = self._list(")")
            if len(arguments) == 1 and arguments[0].kind == "regex":
                return Py(f"re.split({arguments[0].text}, {value.text})")
            return Py(f"{value.at(ATOM)}.split({', '.join(a.text for a in arguments)})")
        if name in _STRING_METHODS:
            arguments = self._list(")")
            return Py(f"{value.at(ATOM)}.{_STRING_METHODS[name]}({', '.join(a.text for a in arguments)})")
        raise Untranslatable(f"method .{name}()")

    def _namespace_member(self, namespace: str, name: str) -> Py:
        if namespace == "context" and name == "vars":
            return Py("vars")
        if namespace == "JSON" and name == "parse":
            self.take("(")
            (argument,) = self._arguments(1)
            if argument.text != "output":
                raise Untranslatable("JSON.parse of something other than output")
            return Py("json")
        if namespace == "Math" and name in _MATH:
            self.take("(")
            arguments = self._list(")")
            return Py(f"{_MATH[name]}({', '.join(a.text for a in arguments)})")
        if namespace == "Object" and name in ("keys", "values"):
            self.take("(")
            (argument,) = self._arguments(1)
            suffix = "" if name == "keys" else f"[{argument.text}[k] for k in {argument.text}]"
            return Py(suffix or f"[k for k in {argument.text}]")
        raise Untranslatable(f"{namespace}.{name}")

    def _call_function(self, name: str, arguments: list[Py]) -> Py:
        if name in _CONVERSIONS and len(arguments) == 1:
            return Py(f"{_CONVERSIONS[name]}({arguments[0].text})")
        raise Untranslatable(f"{name}(...)")

    def _arguments(self, count: int) -> list[Py]:
        arguments = self._list(")")
        if len(arguments) != count:
            raise Untranslatable(f"expected {count} argument(s), got {len(arguments)}")
        return arguments

    def _list(self, closing: str) -> list[Py]:
        items: list[Py] = []
        while not self.accept(closing):
            if items:
                self.take(",")
            items.append(self.expression())
        return items

    def _is_arrow(self) -> bool:
        first, second = self.peek(), self.peek(1)
        if first is not None and first.kind == "ident" and second is not None and second.text == "=>":
            return True
        third, fourth = self.peek(2), self.peek(3)
        return (first is not None and first.text == "(" and second is not None and second.kind == "ident"
                and third is not None and third.text == ")" and fourth is not None and fourth.text == "=>")

    def _arrow(self) -> Py:
        if self.accept("("):
            param = self.take().text
            self.take(")")
        else:
            param = self.take().text
        self.take("=>")
        if param in ("output", "vars", "json", "case", "expected", "re"):
            raise Untranslatable(f"arrow parameter named {param!r}")
        self.params.add(param)
        body = self.expression()
        self.params.discard(param)
        return Py(body.text, kind="lambda", param=param)


def _need_value(*values: Py) -> None:
    for value in values:
        if value.kind != "expr":
            raise Untranslatable(f"{value.text} used as a value")


def _search(pattern: Py, subject: Py, suffix: str) -> Py:
    flags = f", {pattern.param}" if pattern.param else ""
    call = f"re.search({pattern.text}, {subject.text}{flags})"
    return Py(f"{call} {suffix}", COMPARE) if suffix else Py(call)


def _js_string(literal: str) -> str:
    body = literal[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), body)
