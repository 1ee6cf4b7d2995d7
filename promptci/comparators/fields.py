"""json_fields: checks on values inside a JSON output, each addressed by a JMESPath (jmespath library).

    - type: json_fields
      fields:
        status: ok                      # a bare value: equals
        "user.age": {min: 18, max: 130}
        "tags": {contains: urgent, length: {max: 5}}
        "items[0].sku": {regex: "^[A-Z]{3}-\\d+$"}

Checks: equals, one_of, regex, contains, min, max, type, length (a number, or {min, max}). A mapping
whose keys are all check names is a set of checks; any other value is compared with equals.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from promptci.comparators._common import check_inputs, ignoring_expected, require_number, snippet
from promptci.comparators.structured import parsed_output
from promptci.errors import ComparatorError
from promptci.loading.yamlfile import to_plain
from promptci.types import Case, Comparator, Completion, Score

CHECK_NAMES = ("equals", "one_of", "regex", "contains", "min", "max", "type", "length")
JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
Check = Callable[[Any], "str | None"]  # the value found -> why it fails, or None


@dataclass(frozen=True)
class FieldCheck:
    path: str
    search: Callable[[Any], Any]
    checks: tuple[Check, ...]


def shown(value: Any, limit: int = 40) -> str:
    """A value as JSON on one line (escaped: it may come from the model), cut to about limit characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def _same(left: Any, right: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    return bool(left == right)


def _equals(want: Any) -> Check:
    return lambda got: None if _same(got, want) else f"expected {shown(want)}"


def _one_of(path: str, options: Any) -> Check:
    if not isinstance(options, list) or not options:
        raise ComparatorError(f"comparator 'json_fields': field {path!r}: `one_of` must be a non-empty list")
    return lambda got: None if any(_same(got, o) for o in options) else f"expected one of {shown(options, 60)}"


def _regex(path: str, pattern: Any) -> Check:
    if not isinstance(pattern, str):
        raise ComparatorError(f"comparator 'json_fields': field {path!r}: `regex` must be a string")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ComparatorError(f"comparator 'json_fields': field {path!r}: invalid regex {pattern!r}: {exc}") from None
    return lambda got: (None if isinstance(got, str) and compiled.search(got)
                        else f"expected text matching {snippet(pattern, 40)}")


def _contains(want: Any) -> Check:
    def check(got: Any) -> str | None:
        if isinstance(got, str) and isinstance(want, str):
            return None if want in got else f"expected text containing {snippet(want, 40)}"
        if isinstance(got, list):
            return None if any(_same(item, want) for item in got) else f"expected a list containing {shown(want)}"
        return f"expected text or a list containing {shown(want)}"
    return check


def _bound(path: str, name: str, limit: Any) -> Check:
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise ComparatorError(f"comparator 'json_fields': field {path!r}: `{name}` must be a number, got {limit!r}")
    bound, low = float(limit), name == "min"

    def check(got: Any) -> str | None:
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"expected a number {'>=' if low else '<='} {bound:g}"
        ok = got >= bound if low else got <= bound
        return None if ok else f"expected {'>=' if low else '<='} {bound:g}"
    return check


def _type(path: str, name: Any) -> Check:
    if name not in JSON_TYPES:
        raise ComparatorError(f"comparator 'json_fields': field {path!r}: unknown type {name!r} "
                              f"(use {', '.join(JSON_TYPES)})")
    test = JSON_TYPES[name]
    return lambda got: None if test(got) else f"expected type {name}"


def _length(path: str, spec: Any) -> Check:
    if isinstance(spec, Mapping) and spec and set(spec) <= {"min", "max"}:
        low, high = spec.get("min"), spec.get("max")
    elif isinstance(spec, int) and not isinstance(spec, bool):
        low = high = spec
    else:
        raise ComparatorError(f"comparator 'json_fields': field {path!r}: `length` must be a number or "
                              f"{{min: N, max: N}}, got {spec!r}")
    for bound in (low, high):
        if bound is not None:
            require_number("json_fields", f"{path}.length", bound)
    wanted = str(low) if low == high else f"{low or 0}..{'' if high is None else high}"

    def check(got: Any) -> str | None:
        if not isinstance(got, (str, list, dict)):
            return "expected text, a list or an object to measure"
        size = len(got)
        if (low is not None and size < low) or (high is not None and size > high):
            return f"expected length {wanted}"
        return None
    return check


def _checks(path: str, spec: Any) -> tuple[Check, ...]:
    if not (isinstance(spec, Mapping) and spec and set(spec) <= set(CHECK_NAMES)):
        return (_equals(to_plain(spec)),)
    builders: dict[str, Callable[[Any], Check]] = {
        "equals": lambda v: _equals(to_plain(v)), "one_of": lambda v: _one_of(path, to_plain(v)),
        "regex": lambda v: _regex(path, v), "contains": lambda v: _contains(to_plain(v)),
        "min": lambda v: _bound(path, "min", v), "max": lambda v: _bound(path, "max", v),
        "type": lambda v: _type(path, v), "length": lambda v: _length(path, v),
    }
    return tuple(builders[name](value) for name, value in spec.items())


def _field(path: Any, spec: Any) -> FieldCheck:
    import jmespath
    from jmespath.exceptions import JMESPathError

    if not isinstance(path, str) or not path.strip():
        raise ComparatorError(f"comparator 'json_fields': a field path must be a JMESPath string, got {path!r}")
    try:
        compiled = jmespath.compile(path)
    except JMESPathError as exc:
        raise ComparatorError(f"comparator 'json_fields': invalid JMESPath {path!r}: {exc}") from None
    return FieldCheck(path, compiled.search, _checks(path, spec))


def field_checks(fields: Mapping[str, Any]) -> list[FieldCheck]:
    """A mapping of JMESPath -> check built into checks for field_failures (tool mocks' `match: fields`)."""
    return [_field(path, spec) for path, spec in fields.items()]


def json_fields(*, fields: Mapping[str, Any] | None = None) -> Comparator:
    """Passes when the output parses as JSON and every field check holds; the score is the share of
    fields that pass. A path that finds nothing gives null."""
    if not isinstance(fields, Mapping) or not fields:
        raise ComparatorError("comparator 'json_fields' needs option 'fields': a mapping of JMESPath -> check, "
                              "e.g. {fields: {status: ok, 'user.age': {min: 18}}}")
    checks = [_field(path, spec) for path, spec in fields.items()]

    async def score(case: Case, completion: Completion) -> Score:
        output, failed = parsed_output("json_fields", case, completion, needs_expected=False)
        if failed:
            return failed
        wrong = field_failures(checks, output)
        if not wrong:
            return Score("json_fields", 1.0, True, f"all {len(checks)} field(s) pass")
        value = 1 - len(wrong) / len(checks)
        return Score("json_fields", value, False, f"{len(wrong)} of {len(checks)} field(s) fail: {wrong[0]}",
                     "\n".join(wrong))

    return ignoring_expected(score)


def field_failures(checks: list[FieldCheck], document: Any) -> list[str]:
    """One line per field whose checks fail on `document`: the path, why, and the value found."""
    from jmespath.exceptions import JMESPathError

    wrong = []
    for field in checks:
        try:
            value = field.search(document)
        except JMESPathError as exc:  # e.g. keys(@) on an array: this output fails the check, JMESPath says why
            wrong.append(f"{field.path}: {jmespath_message(exc)}")
            continue
        reasons = [r for r in (check(value) for check in field.checks) if r]
        if reasons:
            wrong.append(f"{field.path}: {'; '.join(reasons)}, got {shown(value)}")
    return wrong


def jmespath_message(exc: Exception) -> str:
    """JMESPath's message, with the value it names cut short (it comes from the model's output)."""
    from jmespath.exceptions import JMESPathTypeError

    if isinstance(exc, JMESPathTypeError):
        return (f"In function {exc.function_name}(), invalid type for value: {shown(exc.current_value)}, "
                f"expected one of: {exc.expected_types}, received: \"{exc.actual_type}\"")
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:200] + "…"


def tool_called(*, name: str | None = None, arguments: Mapping[str, Any] | None = None) -> Comparator:
    """Passes when the model called tool `name` (at least once) with arguments for which every check holds:
    `arguments` is a mapping of JMESPath -> check, as json_fields' `fields`. The score is the best call's
    share of passing checks (0 when the tool was not called)."""
    if not isinstance(name, str) or not name:
        raise ComparatorError("comparator 'tool_called' needs option 'name': the tool's name, e.g. "
                              "{type: tool_called, name: get_weather, arguments: {city: Paris}}")
    if arguments is not None and not isinstance(arguments, Mapping):
        raise ComparatorError("comparator 'tool_called': `arguments` must be a mapping of JMESPath -> check, "
                              "e.g. {city: Paris, days: {max: 7}}")
    checks = [_field(path, spec) for path, spec in (arguments or {}).items()]

    def failures(call_arguments: str) -> list[str]:
        try:
            parsed = json.loads(call_arguments)
        except ValueError:
            return [f"arguments are not JSON: {snippet(call_arguments, 60)}"] * max(len(checks), 1)
        return field_failures(checks, parsed)

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("tool_called", case, completion, needs_expected=False)
        if failed:
            return failed
        calls = [call for call in completion.tool_calls if call.name == name]
        if not calls:
            made = ", ".join(shown(call.name) for call in completion.tool_calls) or "none"
            return Score("tool_called", 0.0, False, f"no call to {name!r} (calls made: {made})")
        best = min((failures(call.arguments) for call in calls), key=len)
        if not best:
            return Score("tool_called", 1.0, True, f"called {name!r}" + (f" with all {len(checks)} argument "
                                                                        "check(s) passing" if checks else ""))
        value = 1 - len(best) / max(len(checks), 1)
        return Score("tool_called", max(value, 0.0), False, f"called {name!r}, but {best[0]}", "\n".join(best))

    return ignoring_expected(score)
