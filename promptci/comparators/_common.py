"""Helpers shared by the built-in comparators: option checks, the scores for a missing output or
expected value, one-line snippets and text diffs."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from promptci.errors import ComparatorError, ConfigError
from promptci.loading.yamlfile import resolve_inside, to_plain
from promptci.types import Case, Comparator, Completion, Score

SNIPPET_CHARS = 60


def require_bool(comparator: str, option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ComparatorError(f"comparator {comparator!r}: option {option!r} must be true or false, got {value!r}")
    return value


def require_number(comparator: str, option: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ComparatorError(f"comparator {comparator!r}: option {option!r} must be a number, got {value!r}")
    if positive and not value > 0:
        raise ComparatorError(f"comparator {comparator!r}: option {option!r} must be greater than 0, got {value!r}")
    if not positive and value < 0:
        raise ComparatorError(f"comparator {comparator!r}: option {option!r} must not be negative, got {value!r}")
    return float(value)


def require_fraction(comparator: str, option: str, value: Any) -> float:
    number = require_number(comparator, option, value)
    if number > 1:
        raise ComparatorError(f"comparator {comparator!r}: option {option!r} must be between 0 and 1, got {value!r}")
    return number


def require_strings(comparator: str, option: str, value: Any) -> list[str]:
    """A string or a list of strings, as a list."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ComparatorError(
            f"comparator {comparator!r}: option {option!r} must be a string or a list of strings, got {value!r}"
        )
    return list(items)


CaseCheck = Callable[[Case], "str | None"]


def with_case_check(comparator: Comparator, check: CaseCheck) -> Comparator:
    """Give a built comparator the `check_case(case) -> problem | None` hook the loader calls for every
    case at load, so what can be checked offline (an expected value that cannot match) fails before any
    request. Third-party factories may set the attribute the same way."""
    comparator.check_case = check  # type: ignore[attr-defined]
    return comparator


def ignoring_expected(comparator: Comparator, reads: bool = False) -> Comparator:
    """Say whether a built comparator reads the case's `expected` (the `reads_expected` attribute): `accept`
    writes outputs into `expected` only for failures that doing so can fix. A comparator that does not say
    (a third-party one) is taken to read it."""
    comparator.reads_expected = reads  # type: ignore[attr-defined]
    return comparator


def reads_expected(comparator: Comparator) -> bool:
    return bool(getattr(comparator, "reads_expected", True))


def check_inputs(name: str, case: Case, completion: Completion, *, needs_expected: bool) -> Score | None:
    """The failing score when there is nothing to compare, else None."""
    if completion.text is None:
        return Score(name, 0.0, False, f"no output to score ({describe_error(completion)})")
    if needs_expected and not case.has_expected:
        return Score(name, 0.0, False, "the case has no expected value: add `expected:` or use another comparator")
    return None


def describe_error(completion: Completion) -> str:
    if completion.error is None:
        return "the request returned no text"
    return f"request failed: {completion.error.kind}: {one_line(completion.error.message)}"


def expected_text(expected: Any) -> str:
    """The expected value as the text a model would write: YAML scalars as JSON spells them."""
    if isinstance(expected, str):
        return expected
    if isinstance(expected, (bool, type(None), Mapping, list, tuple)):
        return json.dumps(to_plain(expected), ensure_ascii=False, default=str)
    return str(expected)


def inside_root(root: Path | None, relative: str) -> Path:
    """root/relative resolved, by the loader's one rule; the loader adds the golden file's path:line."""
    try:
        return resolve_inside(root or Path.cwd(), relative)
    except ConfigError as exc:
        raise ComparatorError(exc.message) from None


def project_file(relative: str) -> str:
    """A file an option names, as a project-relative posix path (what a comparator's `depends_on` lists)."""
    import posixpath

    return posixpath.normpath(relative.replace("\\", "/")).removeprefix("./")


def one_line(text: str) -> str:
    return " ".join(text.split())


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """A quoted, escaped, one-line excerpt of text, cut to about limit characters."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    return json.dumps(shown, ensure_ascii=False)


def first_difference(a: str, b: str) -> int:
    for index, (left, right) in enumerate(zip(a, b, strict=False)):
        if left != right:
            return index
    return min(len(a), len(b))


def describe_mismatch(expected: str, output: str) -> str:
    at = first_difference(expected, output)
    return (
        f"output differs from expected at char {at}: expected {snippet(expected[at:], 30)}, "
        f"got {snippet(output[at:], 30)}"
    )


def text_diff(expected: str, output: str) -> str:
    lines = difflib.unified_diff(
        expected.splitlines(), output.splitlines(), fromfile="expected", tofile="output", lineterm=""
    )
    return "\n".join(lines)
