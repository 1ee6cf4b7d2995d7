"""expr: a one-line expression from a golden file, e.g.

    - expr: "len(output) < 300 and 'arr' in output.lower()"

Names: output, expected, json (the output parsed as JSON, or None), case, vars (the case input), re, and the
functions len, min, max, abs, sum, any, all, round, sorted, set, str, int, float, bool, list, tuple, dict.
True passes; a number passes when >= threshold.

A golden file is data (reviewed as data, written by `promptci import`), so the expression is not Python run
with the interpreter: simpleeval evaluates it, with a whitelist of syntax, functions and methods checked at
load, every size bounded (strings, lists, integers, powers) and the evaluation bounded in steps and time.
Code belongs in a .py file (`type: python`).
"""

from __future__ import annotations

import ast
import math
import numbers
import re
import time
import types
from collections.abc import Callable, Iterable
from typing import Any

from simpleeval import (
    DEFAULT_OPERATORS,
    EvalWithCompoundTypes,
    FeatureNotAvailable,
    IterableTooLong,
    ModuleWrapper,
    NumberTooHigh,
)

from promptci.comparators._common import check_inputs, ignoring_expected, one_line, require_number, snippet
from promptci.comparators.structured import JSONParseError, parse_json
from promptci.errors import ComparatorError
from promptci.types import Case, Comparator, Completion, Score

VARIABLES = ("output", "expected", "json", "case", "vars")
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len, "min": min, "max": max, "abs": abs, "sum": sum, "any": any, "all": all, "round": round,
    "sorted": sorted, "set": set, "str": str, "int": int, "float": float, "bool": bool, "list": list,
    "tuple": tuple, "dict": dict,
}
CONSTANTS = {"True": True, "False": False, "None": None}
NAMES = frozenset((*VARIABLES, *FUNCTIONS, *CONSTANTS, "re"))

MAX_TEXT = 1_000_000  # characters (or items) in a string or list the expression builds
MAX_INT_BITS = 100_000  # about 30,000 digits
MAX_STEPS = 200_000  # nodes evaluated, comprehension bodies included
MAX_SECONDS = 2.0

# Methods that never build something much larger than their input; replace and join are bounded below.
TEXT_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha", "isascii", "isdecimal",
    "isdigit", "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join",
    "lower", "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rpartition",
    "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper",
})
MAPPING_METHODS = frozenset({"get", "keys", "values", "items"})
SEQUENCE_METHODS = frozenset({"count", "index"})
MATCH_METHODS = frozenset({"group", "groups", "groupdict", "start", "end", "span"})
RE_FUNCTIONS = frozenset({"search", "match", "fullmatch", "findall", "split", "escape", "I", "IGNORECASE", "M",
                          "MULTILINE", "S", "DOTALL", "X", "VERBOSE", "A", "ASCII"})
CASE_FIELDS = frozenset({"id", "prompt", "input", "expected", "tags", "description", "metadata"})
NUMBER_METHODS = frozenset({"is_integer", "real", "imag"})
ALLOWED_ATTRIBUTES: dict[Any, set[str]] = {
    str: set(TEXT_METHODS), dict: set(MAPPING_METHODS), types.MappingProxyType: set(MAPPING_METHODS),
    list: set(SEQUENCE_METHODS), tuple: set(SEQUENCE_METHODS), re.Match: set(MATCH_METHODS),
    ModuleWrapper: set(RE_FUNCTIONS), Case: set(CASE_FIELDS), int: set(NUMBER_METHODS),
    float: set(NUMBER_METHODS), bool: set(NUMBER_METHODS),
}
ATTRIBUTES = frozenset().union(*ALLOWED_ATTRIBUTES.values())

OPERATORS = (ast.And, ast.Or, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.BitOr,
             ast.BitAnd, ast.LShift, ast.RShift, ast.USub, ast.UAdd, ast.Not, ast.Eq, ast.NotEq, ast.Lt, ast.LtE,
             ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot)
SYNTAX = (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.Compare, ast.Call, ast.keyword,
          ast.Constant, ast.Name, ast.Load, ast.Store, ast.Attribute, ast.Subscript, ast.Slice, ast.List,
          ast.Tuple, ast.Set, ast.Dict, ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.comprehension,
          ast.JoinedStr, ast.FormattedValue, ast.Starred, *OPERATORS)


class TooCostly(ValueError):
    """The expression would take more time or memory than an expression may."""


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


def _int_bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) else 0


def bounded_add(a: Any, b: Any) -> Any:
    if _sized(a) + _sized(b) > MAX_TEXT:
        raise IterableTooLong(f"the sum would be longer than {MAX_TEXT:,}")
    return a + b


def bounded_mult(a: Any, b: Any) -> Any:
    for sequence, times in ((a, b), (b, a)):
        if _sized(sequence) and isinstance(times, int) and _sized(sequence) * times > MAX_TEXT:
            raise IterableTooLong(f"the repetition would be longer than {MAX_TEXT:,}")
    if _int_bits(a) + _int_bits(b) > MAX_INT_BITS:
        raise NumberTooHigh(f"the product would have more than {MAX_INT_BITS:,} bits")
    return a * b


def bounded_power(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and max(1, _int_bits(a)) * b > MAX_INT_BITS:
        raise NumberTooHigh(f"{snippet(str(a), 20)} ** {b} would have more than {MAX_INT_BITS:,} bits")
    return a**b


def bounded_shift(a: Any, b: Any) -> Any:
    if isinstance(b, int) and _int_bits(a) + b > MAX_INT_BITS:
        raise NumberTooHigh(f"the shift would have more than {MAX_INT_BITS:,} bits")
    return a << b


def no_text_formatting(a: Any, b: Any) -> Any:
    if isinstance(a, (str, bytes)):
        raise FeatureNotAvailable("'%' formatting of text is not available in expr")
    return a % b


def bounded_replace(text: str) -> Callable[..., str]:
    def replace(old: str, new: str, count: int = -1) -> str:
        hits = (text.count(old) if old else len(text) + 1) if count < 0 else count
        if len(text) + hits * max(0, len(new) - len(old)) > MAX_TEXT:
            raise IterableTooLong(f"the replacement would be longer than {MAX_TEXT:,}")
        return text.replace(old, new, count)

    return replace


def bounded_join(separator: str) -> Callable[[Iterable[Any]], str]:
    def join(items: Iterable[Any]) -> str:
        parts = list(items)
        if sum(_sized(p) for p in parts) + len(separator) * len(parts) > MAX_TEXT:
            raise IterableTooLong(f"the joined text would be longer than {MAX_TEXT:,}")
        return separator.join(parts)

    return join


class Evaluator(EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval with promptci's bounds: sizes checked before each operation, steps and time after each node."""

    def __init__(self, names: dict[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        operators = {**DEFAULT_OPERATORS, ast.Add: bounded_add, ast.Mult: bounded_mult, ast.Pow: bounded_power,
                     ast.LShift: bounded_shift, ast.Mod: no_text_formatting}
        super().__init__(operators=operators, functions=dict(FUNCTIONS), names={**CONSTANTS, **names},
                         allowed_attrs=ALLOWED_ATTRIBUTES)
        self.clock = clock
        self.steps = 0
        self.deadline = clock() + MAX_SECONDS

    def _eval(self, node: ast.AST) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TooCostly(f"the expression took more than {MAX_STEPS:,} steps")
        if self.clock() > self.deadline:
            raise TooCostly(f"the expression took longer than {MAX_SECONDS:g} s")
        return super()._eval(node)

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        found = super()._eval_attribute(node)
        owner = getattr(found, "__self__", None)
        if isinstance(owner, str) and node.attr == "replace":
            return bounded_replace(owner)
        if isinstance(owner, str) and node.attr == "join":
            return bounded_join(owner)
        return found


def _unknown_names(tree: ast.AST) -> list[str]:
    """Names read by the expression that it neither binds (comprehensions) nor may use."""
    bound = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    read = [node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)]
    return sorted({name for name in read if name not in NAMES and name not in bound})


def _refused_syntax(tree: ast.AST) -> str | None:
    """What the expression uses that expr does not allow, named; None when all of it is allowed."""
    for node in ast.walk(tree):
        if not isinstance(node, SYNTAX):
            return f"{type(node).__name__} ({snippet(ast.unparse(node), 30)})" if isinstance(node, ast.expr) \
                else type(node).__name__
        if isinstance(node, ast.Attribute) and node.attr not in ATTRIBUTES:
            return f"attribute .{node.attr}"
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            return "a format spec in an f-string"
        if isinstance(node, ast.Constant) and _sized(node.value) > MAX_TEXT:
            return f"a literal longer than {MAX_TEXT:,}"
    return None


def compile_expression(source: Any) -> ast.Expression:
    """The parsed expression, checked; a ComparatorError naming a syntax error, an unknown name or a construct
    expr does not allow."""
    if not isinstance(source, str) or not source.strip():
        raise ComparatorError(f"comparator 'expr' needs option 'expr': a Python expression, got {source!r}")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        why = f"{exc.msg} at column {exc.offset}" if isinstance(exc, SyntaxError) else "it nests too deeply"
        raise ComparatorError(f"comparator 'expr': invalid Python expression {snippet(source, 60)}: {why}") from None
    unknown = _unknown_names(tree)
    if unknown:
        raise ComparatorError(f"comparator 'expr': unknown name(s) {', '.join(unknown)} in {snippet(source, 60)}; "
                              f"use {', '.join(VARIABLES)}, re and {', '.join(FUNCTIONS)}")
    refused = _refused_syntax(tree)
    if refused:
        raise ComparatorError(f"comparator 'expr': {refused} is not available in {snippet(source, 60)}; an expr "
                              "is data, not code: put code in a .py file and use `type: python`")
    return tree


def _parsed(text: str) -> Any:
    try:
        return parse_json(text)
    except JSONParseError:
        return None


def evaluate(tree: ast.Expression, names: dict[str, Any], clock: Callable[[], float] = time.monotonic) -> Any:
    """The expression's value over these names (see Evaluator for its bounds)."""
    evaluator = Evaluator({**names, "re": ModuleWrapper(re, allowed_attrs=RE_FUNCTIONS)}, clock)
    return evaluator.eval(ast.unparse(tree), previously_parsed=tree.body)


def as_number(value: numbers.Real) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer past float's range
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


def expr(*, expr: str | None = None, threshold: float = 1.0) -> Comparator:
    """Scores with an expression over the output: true passes, a number passes when >= threshold."""
    tree = compile_expression(expr)
    reads = any(isinstance(node, ast.Name) and node.id == "expected" for node in ast.walk(tree))
    limit = require_number("expr", "threshold", threshold)
    shown = snippet(str(expr), 60)

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("expr", case, completion, needs_expected=False)
        if failed:
            return failed
        text = completion.text or ""
        names = {"output": text, "expected": case.expected, "json": _parsed(text), "case": case,
                 "vars": dict(case.input)}
        try:
            result = evaluate(tree, names)
        except Exception as exc:  # a wrong key, a type error, a bound: the output fails the check
            return Score("expr", 0.0, False, f"{shown} raised {type(exc).__name__}: {one_line(str(exc))}")
        if callable(result):
            return Score("expr", 0.0, False, f"{shown} is a function, not a value: call it")
        if isinstance(result, numbers.Real) and not isinstance(result, bool):
            value = as_number(result)
            passed = not math.isnan(value) and value >= limit
            clamped = 0.0 if math.isnan(value) else min(1.0, max(0.0, value))
            return Score("expr", clamped, passed, f"{shown} = {value:g} ({'>=' if passed else '<'} {limit:g})")
        passed = bool(result)
        return Score("expr", float(passed), passed, f"{shown} is {passed}")

    return ignoring_expected(score, reads=reads)
