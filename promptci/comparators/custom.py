"""The python comparator: a user's own function, from a file in the project or an importable module."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from promptci.comparators._common import check_inputs, inside_root, require_fraction
from promptci.errors import ComparatorError, PromptCIError
from promptci.types import Case, Comparator, Completion, Score
from promptci.usercode import call_user_code, run_timeout_s, storable

MAX_PARAMETERS = 3  # output, expected, case


def _check_inside_root(spec: str, root: Path | None) -> None:
    target = spec.rpartition(":")[0]
    if target.endswith(".py"):
        inside_root(root, target)


def load_function(spec: str, root: Path | None, what: str = "comparator 'python'") -> Callable[..., Any]:
    """The function named "path/file.py:fn" (inside root) or "pkg.mod:fn"; ComparatorError naming `what`."""
    from promptci.registry import load_object

    _check_inside_root(spec, root)
    try:
        function = load_object(spec, root)
    except PromptCIError as exc:
        raise ComparatorError(f"{what}: {exc.message}") from exc
    except Exception as exc:  # the user's module failed while importing
        raise ComparatorError(f"{what}: importing {spec!r} failed: {type(exc).__name__}: {exc}") from exc
    except SystemExit as exc:
        raise ComparatorError(f"{what}: importing {spec!r} called sys.exit({exc.code!r})") from None
    if not callable(function):
        raise ComparatorError(f"{what}: {spec!r} is not a function")
    return function


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


def python(*, function: str | None = None, threshold: float = 1.0, with_: Mapping[str, Any] | None = None,
           root: Path | None = None) -> Comparator:
    """Scores with the user's `function` ("path/to/file.py:fn" inside the project, or "pkg.mod:fn").

    It is called as fn(output), fn(output, expected) or fn(output, expected, case), by how many
    parameters it takes (besides its options), with the `with:` mapping as keyword arguments, and may be
    async. It returns a bool (passed or not), a number in [0, 1]
    (passed when >= threshold) or a promptci Score. Anything it raises (sys.exit too), or a call that outlasts
    the run's timeout_s, is UserCodeFailed, which the runner turns into an `error` result: no verdict, never a
    pass or a fail. It runs off promptci's event loop (usercode.py): sync functions in a thread of their own.
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

    return score
