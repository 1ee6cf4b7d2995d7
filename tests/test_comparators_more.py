"""json_fields, expr and the small comparators (is_json, starts_with, not_regex, one_of, length, fuzzy,
levenshtein): pass and fail inputs, and every build-time error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from promptci.errors import ComparatorError
from promptci.registry import build_comparator
from promptci.types import Case, Completion, Location, Score

NO_EXPECTED = object()


def run(name: str, options: dict[str, Any], output: str | None, expected: Any = NO_EXPECTED) -> Score:
    comparator = build_comparator(name, options)
    case = Case(id="c", prompt="p", location=Location("goldens/p.yaml", 3), input={"city": "Oslo"},
                expected=None if expected is NO_EXPECTED else expected, has_expected=expected is not NO_EXPECTED)
    return asyncio.run(comparator(case, Completion(text=output)))


def build_error(name: str, options: dict[str, Any]) -> str:
    with pytest.raises(ComparatorError) as info:
        build_comparator(name, options)
    return info.value.message


# --- json_fields -----------------------------------------------------------------------------------

ORDER = '{"status": "ok", "user": {"age": 31, "name": "Ada"}, "tags": ["urgent", "b"], "items": [{"sku": "ABC-12"}]}'


def test_json_fields_every_check_passes() -> None:
    fields = {
        "status": "ok", "user.age": {"min": 18, "max": 130, "type": "integer"},
        "user.name": {"regex": "^A", "one_of": ["Ada", "Bob"], "length": 3},
        "tags": {"contains": "urgent", "length": {"max": 5}, "type": "array"},
        "items[0].sku": {"equals": "ABC-12", "contains": "-"},
    }
    result = run("json_fields", {"fields": fields}, ORDER)
    assert result.passed and result.reason == "all 5 field(s) pass"


def test_json_fields_failures_name_the_path_and_score_the_share() -> None:
    fields = {"status": "done", "user.age": {"max": 30}, "missing.path": {"type": "string"}, "tags": {"length": 2}}
    result = run("json_fields", {"fields": fields}, ORDER)
    assert not result.passed and result.value == 0.25
    assert result.reason == '3 of 4 field(s) fail: status: expected "done", got "ok"'
    assert "user.age: expected <= 30, got 31" in (result.diff or "")
    assert "missing.path: expected type string, got null" in (result.diff or "")


def test_json_fields_true_is_not_one() -> None:
    assert not run("json_fields", {"fields": {"a": 1}}, '{"a": true}').passed
    assert run("json_fields", {"fields": {"a": 1}}, '{"a": 1.0}').passed


def test_json_fields_output_that_is_not_json_fails() -> None:
    result = run("json_fields", {"fields": {"a": 1}}, "not json")
    assert not result.passed and result.reason.startswith("output is not valid JSON")


@pytest.mark.parametrize(("fields", "message"), [
    (None, "needs option 'fields'"),
    ({"a[[": 1}, "invalid JMESPath 'a[['"),
    ({"a": {"regex": "("}}, "field 'a': invalid regex '('"),
    ({"a": {"type": "text"}}, "field 'a': unknown type 'text'"),
    ({"a": {"length": "long"}}, "field 'a': `length` must be a number or {min: N, max: N}"),
    ({"a": {"one_of": []}}, "field 'a': `one_of` must be a non-empty list"),
    ({"a": {"min": "x"}}, "field 'a': `min` must be a number"),
])
def test_json_fields_option_errors(fields: Any, message: str) -> None:
    assert message in build_error("json_fields", {"fields": fields})


# --- expr ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("expression", "output", "passed"), [
    ("len(output) < 10 and 'arr' in output.lower()", "ARRR", True),
    ("len(output) < 3", "long text", False),
    ("json['n'] > 2", '{"n": 3}', True),
    ("json is None", "plain", True),
    ("vars['city'] in output", "I live in Oslo", True),
    ("re.search(r'\\d{3}', output) is not None", "code 123", True),
    ("all(w.istitle() for w in output.split())", "Hello World", True),
    ("expected == output", "x", True),
    # comprehensions and generators see the names too (they have their own scope)
    ("any(word in output for word in ['refund', 'credit'])", "a credit note", True),
    ("all(vars['city'] in line for line in output.splitlines())", "Oslo\nOslo!", True),
    ("[w for w in output.split() if w == expected]", "x y", True),
])
def test_expr_evaluates_python_over_the_output(expression: str, output: str, passed: bool) -> None:
    assert run("expr", {"expr": expression}, output, expected="x").passed is passed


def test_expr_numbers_pass_against_the_threshold() -> None:
    assert run("expr", {"expr": "len(output) / 10", "threshold": 0.5}, "123456").passed
    result = run("expr", {"expr": "len(output) / 10", "threshold": 0.5}, "1234")
    assert not result.passed and result.value == pytest.approx(0.4) and "0.4 (< 0.5)" in result.reason


def test_expr_runtime_error_is_a_failing_score() -> None:
    result = run("expr", {"expr": "json['a']"}, "not json")
    assert not result.passed and "raised TypeError" in result.reason


@pytest.mark.parametrize(("expression", "message"), [
    ("len(output) <", "invalid Python expression"),
    ("outptu == 'x'", "unknown name(s) outptu"),
    ("open('x').read()", "unknown name(s) open"),
    ("__import__('os')", "unknown name(s) __import__"),
    ("", "needs option 'expr'"),
])
def test_expr_errors_at_build(expression: str, message: str) -> None:
    assert message in build_error("expr", {"expr": expression})


# --- small comparators -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "options", "output", "expected", "passed"), [
    ("is_json", {}, '{"a": 1}', NO_EXPECTED, True),
    ("is_json", {}, "```json\n{}\n```", NO_EXPECTED, False),
    ("starts_with", {"value": "Dear"}, "  Dear Ada", NO_EXPECTED, True),
    ("starts_with", {"value": "dear"}, "Dear Ada", NO_EXPECTED, False),
    ("starts_with", {"value": "dear", "ignore_case": True}, "Dear Ada", NO_EXPECTED, True),
    ("not_regex", {"pattern": "(?i)sorry"}, "Here you go", NO_EXPECTED, True),
    ("not_regex", {"pattern": "sorry", "flags": "i"}, "Sorry, no", NO_EXPECTED, False),
    ("one_of", {"values": ["billing", "bug"]}, " billing\n", NO_EXPECTED, True),
    ("one_of", {"values": ["billing", "bug"]}, "Billing", NO_EXPECTED, False),
    ("one_of", {"values": ["billing"], "ignore_case": True}, "Billing", NO_EXPECTED, True),
    ("length", {"max_words": 3}, "one two three", NO_EXPECTED, True),
    ("length", {"min_chars": 5, "max_words": 3}, "one two three four", NO_EXPECTED, False),
    ("fuzzy", {"threshold": 0.9}, "Hello, world", "Hello world", True),
    ("fuzzy", {"threshold": 0.9}, "Goodbye", "Hello world", False),
    ("levenshtein", {"max_distance": 1}, "colour", "color", True),
    ("levenshtein", {"max_distance": 1}, "colours", "color", False),
])
def test_small_comparators(name: str, options: dict[str, Any], output: str, expected: Any, passed: bool) -> None:
    result = run(name, options, output, expected)
    assert result.passed is passed and result.comparator == name, result


def test_small_comparator_reasons() -> None:
    assert run("length", {"min_chars": 5, "max_words": 3}, "one two three four").reason == "4 words > max 3"
    assert run("levenshtein", {"max_distance": 1}, "colours", "color").reason == "edit distance 2 > max 1"
    assert run("not_regex", {"pattern": "no"}, "say no").reason.startswith('pattern "no" must not match but matched')


def test_distance_comparators_need_expected() -> None:
    assert "no expected value" in run("fuzzy", {}, "x").reason


@pytest.mark.parametrize(("name", "options", "message"), [
    ("starts_with", {}, "needs option 'value'"),
    ("not_regex", {"pattern": "("}, "invalid pattern"),
    ("one_of", {"values": []}, "must not be empty"),
    ("length", {}, "needs min_chars, max_chars, min_words or max_words"),
    ("length", {"min_words": 5, "max_words": 2}, "min_words 5 is greater than max_words 2"),
    ("length", {"max_chars": 2.5}, "must be a whole number"),
    ("fuzzy", {"threshold": 2}, "must be between 0 and 1"),
    ("levenshtein", {}, "needs option 'max_distance'"),
    ("levenshtein", {"max_distance": -1}, "must be a whole number >= 0"),
])
def test_small_comparator_option_errors(name: str, options: dict[str, Any], message: str) -> None:
    assert message in build_error(name, options)
