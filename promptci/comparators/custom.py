"""The python comparator: a user's own function, from a file in the project or an importable module."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from promptci.comparators._common import check_inputs, ignoring_expected, require_fraction
from promptci.errors import ComparatorError
from promptci.types import Case, Comparator, Completion, Score
from promptci.usercode import call_user_code, code_dependencies, load_function, run_timeout_s, storable

MAX_PARAMETERS = 3  # output, expected, case


CONVENTION = "fn(output[, expected[, case]], **options)"


def count_arguments(function: Callable[..., Any], spec: str, options: Mapping[str, Any] | None = None) -> int:
    """How many of (output, expected, case) to pass positionally, up to 3; the options go by keyword.

    A ComparatorError when the signature cannot take that calling convention.
    """
    given = set(options or {})
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return MAX_PARAMETERS
    takes_any_keyword = any(p.kind is p.VAR_KEYWORD for p in parameters)
    named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    refused = sorted(given - named) if not takes_any_keyword else []
    if refused:
        raise ComparatorError(
            f"comparator 'python': {spec!r} does not take option(s) {', '.join(refused)} from `with:`; "
            f"add them as parameters (or **options): {CONVENTION}"
        )
    missing = [p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.default is p.empty and p.name not in given]
    if missing:
        raise ComparatorError(
            f"comparator 'python': {spec!r} has required keyword-only parameter(s) {', '.join(missing)}; "
            f"give them under `with:` or a default: {CONVENTION}"
        )
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.name not in given]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return MAX_PARAMETERS
    required = [p for p in positional if p.default is p.empty]
    if not positional or len(required) > MAX_PARAMETERS:
        raise ComparatorError(
            f"comparator 'python': {spec!r} must take 1 to 3 parameters besides its options: (output), "
            f"(output, expected) or (output, expected, case); the convention is {CONVENTION}"
        )
    return min(len(positional), MAX_PARAMETERS)


def interpret_result(result: Any, threshold: float, name: str) -> Score:
    """Turn what the user's function returned into a Score named "python"."""
    if isinstance(result, Score):
        if not 0.0 <= result.value <= 1.0:
            return Score("python", 0.0, False, f"{name} returned a Score with value {result.value} outside [0, 1]")
        reason = storable(str(result.reason)) if result.reason else f"{name} returned a Score"
        diff = storable(str(result.diff)) if result.diff is not None else None
        return replace(result, comparator="python", reason=reason, diff=diff)
    if isinstance(result, bool):
        return Score("python", float(result), result, f"{name} returned {result}")
    if isinstance(result, Mapping) and ("pass" in result or "pass_" in result):
        return _grading_result(result, name)
    if isinstance(result, numbers.Real):
        value = float(result)
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            return Score("python", 0.0, False, f"{name} returned {value}, outside [0, 1]")
        passed = value >= threshold
        return Score("python", value, passed, f"{name} returned {value:g} ({'>=' if passed else '<'} {threshold:g})")
    return Score(
        "python", 0.0, False,
        f"{name} returned {type(result).__name__}; return a bool, a number in [0, 1] or a promptci Score",
    )


def _grading_result(result: Mapping[str, Any], name: str) -> Score:
    """promptfoo's {pass, score, reason} shape: `pass` decides; the score (default 1 or 0) is kept, clamped to
    [0, 1] for the report."""
    passed = result.get("pass", result.get("pass_"))
    if not isinstance(passed, bool):
        return Score("python", 0.0, False, f"{name} returned {{pass: {passed!r}}}; `pass` must be true or false")
    score = result.get("score", 1.0 if passed else 0.0)
    if isinstance(score, bool) or not isinstance(score, numbers.Real) or math.isnan(float(score)):
        return Score("python", 0.0, False, f"{name} returned score {score!r}; a score is a number")
    reason = result.get("reason")
    shown = reason if isinstance(reason, str) and reason else f"{name} returned pass={passed}, score={float(score):g}"
    return Score("python", min(1.0, max(0.0, float(score))), passed, shown)


def python(*, function: str | None = None, threshold: float = 1.0, with_: Mapping[str, Any] | None = None,
           root: Path | None = None) -> Comparator:
    """Scores with the user's `function` ("path/to/file.py:fn" inside the project, or "pkg.mod:fn").

    It is called as fn(output), fn(output, expected) or fn(output, expected, case), by how many
    parameters it takes (besides its options), with the `with:` mapping as keyword arguments, and may be
    async. It returns a bool (passed or not), a number in [0, 1]
    (passed when >= threshold), a promptci Score, or promptfoo's {"pass", "score", "reason"} mapping.
    Anything it raises (sys.exit too), or a call that outlasts the run's timeout_s, is UserCodeFailed, which
    the runner turns into an `error` result: no verdict, never a pass or a fail. It runs off promptci's event
    loop (usercode.py): sync functions in a thread of their own.
    """
    if function is None:
        raise ComparatorError("comparator 'python' needs option 'function' ('path/file.py:fn' or 'pkg.mod:fn')")
    if not isinstance(function, str):
        raise ComparatorError(f"comparator 'python': option 'function' must be a string, got {function!r}")
    threshold = require_fraction("python", "threshold", threshold)
    if with_ is not None and not (isinstance(with_, Mapping) and all(isinstance(k, str) for k in with_)):
        raise ComparatorError(f"comparator 'python': option 'with' must be a mapping of keyword options, got {with_!r}")
    options = dict(with_ or {})
    user_function = load_function(function, root)
    arguments = count_arguments(user_function, function, options)
    name = function.rpartition(":")[2]

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("python", case, completion, needs_expected=False)
        if failed:
            return failed
        values = (completion.text, case.expected, case)[:arguments]
        result = await call_user_code(user_function, *values, label=name, timeout_s=run_timeout_s(), **options)
        return interpret_result(result, threshold, name)

    score.depends_on = code_dependencies(function)  # type: ignore[attr-defined]
    return ignoring_expected(score, reads=arguments >= 2)  # fn(output) never sees expected
