"""JSON comparators: json (structural equality through DeepDiff), json_schema and streams_json.

deepdiff, jsonschema and jiter are imported inside the factories: they cost start-up time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from promptci.comparators._common import (
    check_inputs,
    ignoring_expected,
    inside_root,
    one_line,
    project_file,
    require_bool,
    require_number,
    require_strings,
    snippet,
    to_plain,
    with_case_check,
)
from promptci.errors import ComparatorError
from promptci.jsontext import JSONTextError as JSONParseError
from promptci.jsontext import read_json as parse_json
from promptci.types import Case, Comparator, Completion, Score

SCHEMA_MESSAGE_CHARS = 200


JSON_OUTPUT_SCORE = "output:json"  # the score a prompt's `output: json` gives an output that is not JSON


def describe_bad_output(text: str) -> str:
    """Why the output did not parse as JSON, in one line."""
    try:
        parse_json(text)
    except JSONParseError as exc:
        problem = str(exc)
    else:
        return "output is valid JSON"
    if text.lstrip().startswith("```"):
        return f"output is wrapped in a ``` code fence; bare JSON is required ({problem})"
    if not text.strip():
        return "output is empty, not JSON"
    return f"output is not valid JSON: {problem}; output starts {snippet(text.lstrip(), 40)}"


def count_leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(count_leaves(item) for item in value.values()) or 1
    if isinstance(value, list):
        return sum(count_leaves(item) for item in value) or 1
    return 1


def _json_options(
    ignore_order: bool, math_epsilon: Any, significant_digits: Any, exclude_paths: Any, exclude_regex_paths: Any
) -> dict[str, Any]:
    options: dict[str, Any] = {"ignore_order": require_bool("json", "ignore_order", ignore_order)}
    if math_epsilon is not None:
        options["math_epsilon"] = require_number("json", "math_epsilon", math_epsilon)
    if significant_digits is not None:
        if isinstance(significant_digits, bool) or not isinstance(significant_digits, int) or significant_digits < 0:
            raise ComparatorError(
                "comparator 'json': option 'significant_digits' must be a whole number >= 0, "
                f"got {significant_digits!r}"
            )
        options["significant_digits"] = significant_digits
    if exclude_paths is not None:
        options["exclude_paths"] = require_strings("json", "exclude_paths", exclude_paths)
    if exclude_regex_paths is not None:
        patterns = require_strings("json", "exclude_regex_paths", exclude_regex_paths)
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ComparatorError(
                    f"comparator 'json': invalid pattern {pattern!r} in exclude_regex_paths: {exc}"
                ) from exc
        options["exclude_regex_paths"] = patterns
    return options


def parsed_output(name: str, case: Case, completion: Completion, needs_expected: bool) -> tuple[Any, Score | None]:
    """The output parsed as JSON, or the failing Score that says why there is none to compare."""
    failed = check_inputs(name, case, completion, needs_expected=needs_expected)
    if failed:
        return None, failed
    try:
        return parse_json(completion.text or ""), None
    except JSONParseError:
        return None, Score(name, 0.0, False, describe_bad_output(completion.text or ""))


def json_equal(
    *,
    ignore_order: bool = False,
    math_epsilon: float | None = None,
    significant_digits: int | None = None,
    exclude_paths: list[str] | None = None,
    exclude_regex_paths: list[str] | None = None,
) -> Comparator:
    """Passes when the output parses as JSON and DeepDiff finds no difference from expected under
    the options. Expected may be a JSON string or any YAML value; 1 and 1.0 are equal. The score is
    1 - differences / leaves (of the larger side), and `diff` holds DeepDiff's pretty() text."""
    from deepdiff import DeepDiff

    options = _json_options(ignore_order, math_epsilon, significant_digits, exclude_paths, exclude_regex_paths)
    options["ignore_numeric_type_changes"] = True
    try:
        DeepDiff({}, {}, **options)  # let DeepDiff reject option combinations it does not support
    except (ValueError, TypeError) as exc:
        raise ComparatorError(f"comparator 'json': {exc}") from exc

    async def score(case: Case, completion: Completion) -> Score:
        output, failed = parsed_output("json", case, completion, needs_expected=True)
        if failed:
            return failed
        expected = case.expected
        if isinstance(expected, str):
            try:
                expected = parse_json(expected)
            except JSONParseError as exc:
                return Score("json", 0.0, False, f"the case's expected value is not valid JSON: {exc}")
        expected = to_plain(expected)
        difference = DeepDiff(expected, output, **options)
        if not difference:
            return Score("json", 1.0, True, "output equals expected as JSON")
        changes = sum(len(report) if hasattr(report, "__len__") else 1 for report in difference.values())
        value = max(0.0, 1 - changes / max(count_leaves(expected), count_leaves(output)))
        pretty = difference.pretty()
        first = pretty.splitlines()[0] if pretty else ""
        return Score("json", value, False, f"{changes} difference(s) from expected; first: {first}", pretty)

    return with_case_check(score, expected_json_problem)


def expected_json_problem(case: Case) -> str | None:
    """Why a case's expected text can never equal a JSON output (None when it can)."""
    if not isinstance(case.expected, str):
        return None
    try:
        parse_json(case.expected)
    except JSONParseError as exc:
        return (f"`expected` is not valid JSON ({exc}), so comparator 'json' could never pass; write it as "
                "JSON text or as a YAML mapping/list")
    return None


def is_json() -> Comparator:
    """Passes when the output parses as strict JSON."""

    async def score(case: Case, completion: Completion) -> Score:
        _output, failed = parsed_output("is_json", case, completion, needs_expected=False)
        return failed or Score("is_json", 1.0, True, "output is valid JSON")

    return ignoring_expected(score)


def _load_schema_file(path_text: str, root: Path | None) -> Any:
    path = inside_root(root, path_text)
    if not path.is_file():
        raise ComparatorError(f"comparator 'json_schema': schema file {path_text!r} does not exist")
    if path.suffix not in (".json", ".yaml", ".yml"):
        raise ComparatorError(f"comparator 'json_schema': schema file {path_text!r} must end in .json or .yaml")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ComparatorError(f"comparator 'json_schema': {path_text} is not valid JSON: {exc}") from exc
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ComparatorError(f"comparator 'json_schema': {path_text} is not valid YAML: {one_line(str(exc))}") from exc


def _short(message: str) -> str:
    line = one_line(message)
    return line if len(line) <= SCHEMA_MESSAGE_CHARS else line[:SCHEMA_MESSAGE_CHARS] + "…"


def json_schema(*, schema: Mapping[str, Any] | str | bool | None = None, root: Path | None = None) -> Comparator:
    """Passes when the output parses as JSON and validates against `schema`: a mapping written inline,
    or a .json / .yaml file path relative to the project root. Formats ("date", "email") are checked."""
    from jsonschema import exceptions, validators

    if schema is None:
        raise ComparatorError("comparator 'json_schema' needs option 'schema' (a mapping or a file path)")
    depends_on: tuple[str, ...] = ()
    if isinstance(schema, str):
        depends_on = (project_file(schema),)
        schema = _load_schema_file(schema, root)
    if not isinstance(schema, (Mapping, bool)):
        raise ComparatorError(f"comparator 'json_schema': the schema must be a mapping, got {type(schema).__name__}")
    schema = to_plain(schema)
    validator_class = validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except exceptions.SchemaError as exc:
        raise ComparatorError(
            f"comparator 'json_schema': the schema is invalid at {exc.json_path}: {_short(exc.message)}"
        ) from exc
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)

    async def score(case: Case, completion: Completion) -> Score:
        instance, failed = parsed_output("json_schema", case, completion, needs_expected=False)
        if failed:
            return failed
        errors = list(validator.iter_errors(instance))
        if not errors:
            return Score("json_schema", 1.0, True, "output validates against the schema")
        best = exceptions.best_match(errors)
        reason = f"{len(errors)} schema error(s); at {best.json_path}: {_short(best.message)}"
        diff = "\n".join(f"{error.json_path}: {_short(error.message)}" for error in errors)
        return Score("json_schema", 0.0, False, reason, diff)

    score.depends_on = depends_on  # type: ignore[attr-defined]  # for --changed-since
    return ignoring_expected(score)


def json_prefix_problem(text: str) -> str | None:
    """None when text is a prefix of one JSON document (or all of it), else what is wrong.

    jiter's strict parser runs to the end of a valid prefix and then reports "EOF while parsing";
    any other error marks a real deviation. Its partial_mode is not used: it accepts non-prefixes
    such as `{"a": 1 2` and `[truex` and ignores trailing text.
    """
    import jiter

    try:
        jiter.from_json(text.encode("utf-8"), allow_inf_nan=False)
    except ValueError as exc:
        message = str(exc)
        return None if message.startswith("EOF while parsing") else message
    return None


def _excerpt(text: str) -> str:
    if len(text) <= 60:
        return snippet(text)
    return snippet(text[:30], 30)[:-1] + " … " + snippet(text[-30:], 30)[1:]


def streams_json() -> Comparator:
    """Passes when, after every streamed chunk, the text so far is a prefix of one JSON document
    (no preamble, no code fence, nothing after it), and the whole output is that document."""

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("streams_json", case, completion, needs_expected=False)
        if failed:
            return failed
        chunks = completion.chunks or (completion.text or "",)
        received = ""
        for number, chunk in enumerate(chunks, start=1):
            received += chunk
            problem = json_prefix_problem(received)
            if problem:
                reason = (
                    f"after chunk {number} of {len(chunks)} the output is no longer a JSON prefix "
                    f"({problem}): {_excerpt(received)}"
                )
                return Score("streams_json", 0.0, False, reason)
        if not received.strip():
            return Score("streams_json", 0.0, False, "the output is empty, not JSON")
        try:
            parse_json(received)
        except JSONParseError as exc:
            return Score("streams_json", 0.0, False, f"the stream ended before the JSON document was complete: {exc}")
        return Score("streams_json", 1.0, True, f"all {len(chunks)} chunk(s) kept the output a valid JSON prefix")

    return ignoring_expected(score)
