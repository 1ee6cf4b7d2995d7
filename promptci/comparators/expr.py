"""expr: a one-line Python expression from a (trusted) golden file, e.g.

    - expr: "len(output) < 300 and 'arr' in output.lower()"

Names: output, expected, json (the output parsed as JSON, or None), case, vars (the case input), and
the builtins len, min, max, abs, sum, any, all, round, sorted, set, str, int, float, bool and the
module re. True passes; a number passes when >= threshold. The builtins are restricted to catch
mistakes, not to sandbox: golden files are code the project trusts, like checks.py.
"""

from __future__ import annotations

import ast
import builtins
import math
import numbers
import re
from typing import Any

from promptci.comparators._common import check_inputs, ignoring_expected, one_line, require_number, snippet
from promptci.comparators.structured import JSONParseError, parse_json
from promptci.errors import ComparatorError
from promptci.types import Case, Comparator, Completion, Score

VARIABLES = ("output", "expected", "json", "case", "vars")
ALLOWED_BUILTINS = ("len", "min", "max", "abs", "sum", "any", "all", "round", "sorted", "set", "str", "int",
                    "float", "bool", "True", "False", "None")
SAFE_BUILTINS: dict[str, Any] = {name: getattr(builtins, name) for name in ALLOWED_BUILTINS}
NAMES = frozenset((*VARIABLES, *ALLOWED_BUILTINS, "re"))


def _unknown_names(tree: ast.AST) -> list[str]:
    """Names read by the expression that it neither binds (comprehensions, lambdas) nor may use."""
    bound = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    bound |= {arg.arg for node in ast.walk(tree) if isinstance(node, ast.Lambda) for arg in node.args.args}
    read = [node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)]
    return sorted({name for name in read if name not in NAMES and name not in bound})


def compile_expression(source: Any) -> Any:
    """The compiled expression; a ComparatorError naming a syntax error or an unknown name."""
    if not isinstance(source, str) or not source.strip():
        raise ComparatorError(f"comparator 'expr' needs option 'expr': a Python expression, got {source!r}")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ComparatorError(f"comparator 'expr': invalid Python expression {snippet(source, 60)}: {exc.msg} "
                              f"at column {exc.offset}") from None
    unknown = _unknown_names(tree)
    if unknown:
        raise ComparatorError(f"comparator 'expr': unknown name(s) {', '.join(unknown)} in {snippet(source, 60)}; "
                              f"use {', '.join(VARIABLES)}, re and {', '.join(ALLOWED_BUILTINS[:14])}")
    return compile(tree, "<expr>", "eval")


def _parsed(text: str) -> Any:
    try:
        return parse_json(text)
    except JSONParseError:
        return None


def expr(*, expr: str | None = None, threshold: float = 1.0) -> Comparator:
    """Scores with a Python expression over the output: true passes, a number passes when >= threshold."""
    code = compile_expression(expr)
    reads = any(isinstance(node, ast.Name) and node.id == "expected" for node in ast.walk(ast.parse(str(expr).strip(),
                                                                                                  mode="eval")))
    limit = require_number("expr", "threshold", threshold)
    shown = snippet(str(expr), 60)

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("expr", case, completion, needs_expected=False)
        if failed:
            return failed
        text = completion.text or ""
        names = {"output": text, "expected": case.expected, "json": _parsed(text), "case": case,
                 "vars": dict(case.input), "re": re}
        try:
            # the names go in the globals: a generator or comprehension cannot see eval's locals
            result = eval(code, {"__builtins__": SAFE_BUILTINS, **names})
        except Exception as exc:
            return Score("expr", 0.0, False, f"{shown} raised {type(exc).__name__}: {one_line(str(exc))}")
        if isinstance(result, numbers.Real) and not isinstance(result, bool):
            value = float(result)
            passed = not math.isnan(value) and value >= limit
            clamped = 0.0 if math.isnan(value) else min(1.0, max(0.0, value))
            return Score("expr", clamped, passed, f"{shown} = {value:g} ({'>=' if passed else '<'} {limit:g})")
        passed = bool(result)
        return Score("expr", float(passed), passed, f"{shown} is {passed}")

    return ignoring_expected(score, reads=reads)
