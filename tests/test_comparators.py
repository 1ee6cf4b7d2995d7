"""The built-in comparators: pass and fail inputs, every option, and every build-time error."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from promptci.comparators import budget, structured, text
from promptci.errors import ComparatorError, UserCodeFailed
from promptci.registry import BUILTIN_COMPARATORS, build_comparator
from promptci.types import Case, Comparator, Completion, ErrorInfo, Location, Score

NO_EXPECTED = object()


def make_case(expected: Any = NO_EXPECTED, case_id: str = "c1") -> Case:
    has_expected = expected is not NO_EXPECTED
    return Case(
        id=case_id, prompt="p", location=Location("goldens/p.yaml", 3), input={"x": 1},
        expected=expected if has_expected else None, has_expected=has_expected,
    )


def score(comparator: Comparator, output: str | None, expected: Any = NO_EXPECTED, **fields: Any) -> Score:
    return asyncio.run(comparator(make_case(expected), Completion(text=output, **fields)))


def failed_request() -> dict[str, Any]:
    return {"error": ErrorInfo(kind="timeout", message="no answer in 60 s", retryable=True)}


# --- registry path ---------------------------------------------------------------------------------

MINIMAL_OPTIONS: dict[str, dict[str, Any]] = {
    "exact": {}, "normalized": {}, "contains": {"value": "a"}, "not_contains": {"values": ["a"]},
    "llm_judge": {"rubric": "polite"},
    "regex": {"pattern": "a"}, "similarity": {}, "json": {}, "json_schema": {"schema": {"type": "object"}},
    "streams_json": {}, "latency": {"max_ms": 10}, "cost": {"max_usd": 1},
    "python": {"function": "json:dumps"},
    "json_fields": {"fields": {"a": 1}}, "expr": {"expr": "True"}, "is_json": {}, "starts_with": {"value": "a"},
    "not_regex": {"pattern": "a"}, "one_of": {"values": ["a"]}, "length": {"max_chars": 3}, "fuzzy": {},
    "levenshtein": {"max_distance": 1}, "tool_called": {"name": "f"},
    "tool_sequence": {"tools": ["f"]}, "max_tool_calls": {"max": 1}, "turns": {"max": 1},
}


def test_every_builtin_builds_through_the_registry() -> None:
    assert set(MINIMAL_OPTIONS) == set(BUILTIN_COMPARATORS)
    for name, options in MINIMAL_OPTIONS.items():
        assert callable(build_comparator(name, options, Path.cwd())), name


def test_unknown_option_is_rejected_by_the_registry() -> None:
    with pytest.raises(ComparatorError, match=r"unknown option\(s\) 'threshhold'.*known: threshold, method, model"):
        build_comparator("similarity", {"threshhold": 0.5})


def test_registry_built_comparator_scores() -> None:
    comparator = build_comparator("normalized", {"punctuation": True})
    assert score(comparator, "Hello,  WORLD!", "hello world").passed


def test_scores_name_their_comparator_type() -> None:
    for name, options in MINIMAL_OPTIONS.items():
        result = score(build_comparator(name, options, Path.cwd()), None, "x", **failed_request())
        assert result.comparator == name
        assert result.passed is False and result.value == 0.0
        assert "timeout" in result.reason


# --- exact -----------------------------------------------------------------------------------------

def test_exact_passes_on_equal_text_after_strip() -> None:
    result = score(text.exact(), "  Paris\n", "Paris")
    assert (result.passed, result.value) == (True, 1.0)


def test_exact_fails_with_reason_and_unified_diff() -> None:
    result = score(text.exact(), "line one\nline 2", "line one\nline two")
    assert not result.passed and result.value == 0.0
    assert "char 14" in result.reason
    assert result.diff is not None
    assert "-line two" in result.diff and "+line 2" in result.diff and "--- expected" in result.diff


def test_exact_without_strip_sees_white_space() -> None:
    assert not score(text.exact(strip=False), "Paris\n", "Paris").passed
    assert score(text.exact(strip=False), "Paris", "Paris").passed


def test_exact_renders_non_string_expected_as_json_spells_it() -> None:
    assert score(text.exact(), "42", 42).passed
    assert score(text.exact(), "true", True).passed
    assert score(text.exact(), '{"a": [1, 2]}', {"a": [1, 2]}).passed


def test_exact_without_expected_fails_and_says_why() -> None:
    result = score(text.exact(), "Paris")
    assert not result.passed and "no expected value" in result.reason


def test_exact_rejects_a_non_boolean_strip() -> None:
    with pytest.raises(ComparatorError, match="'strip' must be true or false"):
        build_comparator("exact", {"strip": "yes"})


# --- normalized ------------------------------------------------------------------------------------

def test_normalized_defaults_fold_case_and_white_space_only() -> None:
    comparator = text.normalized()
    assert score(comparator, "  The  Quick\nFox ", "the quick fox").passed
    result = score(comparator, "the quick fox.", "the quick fox")
    assert not result.passed and "after normalizing" in result.reason and result.diff


def test_normalized_options_each_switch_their_step() -> None:
    assert not score(text.normalized(case=False), "The fox", "the fox").passed
    assert not score(text.normalized(whitespace=False), "the  fox", "the fox").passed
    assert score(text.normalized(punctuation=True), "The fox, jumped!", "the fox jumped").passed
    assert score(text.normalized(punctuation=True), "«Straße»", "STRASSE").passed  # casefold, unicode quotes


def test_normalized_rejects_non_boolean_options() -> None:
    with pytest.raises(ComparatorError, match="'punctuation'"):
        text.normalized(punctuation=1)  # type: ignore[arg-type]


# --- contains / not_contains -----------------------------------------------------------------------

def test_contains_single_value() -> None:
    assert score(text.contains(value="ACS"), "possible ACS, urgent").passed
    result = score(text.contains(value="acs"), "possible ACS, urgent")
    assert not result.passed and result.value == 0.0 and '"acs"' in result.reason


def test_contains_values_scores_the_share_found() -> None:
    result = score(text.contains(values=["red", "green", "blue", "pink"]), "red, green and blue")
    assert not result.passed and result.value == pytest.approx(0.75)
    assert result.reason == 'missing 1 of 4: "pink"'


def test_contains_ignore_case() -> None:
    assert score(text.contains(values=["acs", "URGENT"], ignore_case=True), "possible ACS, urgent").passed


def test_not_contains() -> None:
    assert score(text.not_contains(values=["sorry", "as an AI"]), "Paris.").passed
    result = score(text.not_contains(values=["sorry", "as an ai"], ignore_case=True), "Sorry, as an AI I")
    assert not result.passed and result.value == 0.0 and "found 2 of 2" in result.reason
    result = score(text.not_contains(values=["sorry", "maybe"]), "sorry, no")
    assert result.value == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of `value`"),
        ({"value": "a", "values": ["b"]}, "exactly one of `value`"),
        ({"values": []}, "must not be empty"),
        ({"value": ""}, "empty string"),
        ({"value": 3}, "'value' must be a string"),
        ({"values": ["a", 3]}, "list of strings"),
        ({"value": "a", "ignore_case": "no"}, "'ignore_case'"),
    ],
)
def test_contains_option_errors(options: dict[str, Any], message: str) -> None:
    for name in ("contains", "not_contains"):
        with pytest.raises(ComparatorError, match=message):
            build_comparator(name, options)


# --- regex -----------------------------------------------------------------------------------------

def test_regex_searches_anywhere() -> None:
    result = score(text.regex(pattern=r"\bICD-\d+"), "code ICD-10 found")
    assert result.passed and "at char 5" in result.reason and '"ICD-10"' in result.reason
    assert not score(text.regex(pattern=r"^ICD"), "code ICD-10").passed


def test_regex_flags_as_letters_or_names() -> None:
    assert not score(text.regex(pattern="paris"), "PARIS").passed
    assert score(text.regex(pattern="paris", flags="i"), "PARIS").passed
    assert score(text.regex(pattern="paris", flags=["IGNORECASE"]), "PARIS").passed
    assert score(text.regex(pattern="^b.c$", flags="ms"), "a\nb\nc\nd").passed
    assert not score(text.regex(pattern="^b.c$", flags="m"), "a\nb\nc\nd").passed
    assert score(text.regex(pattern="a b # comment", flags="x"), "ab").passed


def test_regex_invalid_pattern_names_pattern_and_error() -> None:
    with pytest.raises(ComparatorError, match=r"invalid pattern '\(unclosed': missing \), unterminated subpattern"):
        build_comparator("regex", {"pattern": "(unclosed"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs option 'pattern'"),
        ({"pattern": 5}, "must be a string"),
        ({"pattern": "a", "flags": "iq"}, "unknown flag letter"),
        ({"pattern": "a", "flags": ["NOPE"]}, "unknown flag"),
    ],
)
def test_regex_option_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ComparatorError, match=message):
        build_comparator("regex", options)


# --- similarity ------------------------------------------------------------------------------------

def test_lexical_similarity_measure() -> None:
    assert text.lexical_similarity("The cat sat.", "the cat   sat") == 1.0
    assert text.lexical_similarity("", "") == 1.0
    assert text.lexical_similarity("cat", "dog") == 0.0
    # 4 shared content words of 5 on each side: F1 = 0.8
    assert text.lexical_similarity("patient has acute chest pain", "patient has severe chest pain") == 0.8


def test_similarity_passes_a_reordered_paraphrase_and_fails_unrelated_text() -> None:
    comparator = text.similarity()
    expected = "Possible acute coronary syndrome; urgency is high."
    assert score(comparator, "Urgency is high: possible acute coronary syndrome.", expected).passed
    result = score(comparator, "The weather is nice today.", expected)
    assert not result.passed and result.value < 0.3 and "< threshold 0.8" in result.reason


def test_similarity_threshold_option() -> None:
    output, expected = "patient has severe chest pain", "patient has acute chest pain"
    assert score(text.similarity(threshold=0.8), output, expected).passed
    assert not score(text.similarity(threshold=0.9), output, expected).passed


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threshold": 1.5}, "between 0 and 1"),
        ({"threshold": -0.1}, "must not be negative"),
        ({"threshold": "high"}, "must be a number"),
        ({"method": "embedding", "model": "text-embedding-3-small"}, "must be PROVIDER:MODEL"),
        ({"method": "cosine"}, "unknown method"),
        ({"model": "openai:text-embedding-3-small"}, "applies only to method: embedding"),
    ],
)
def test_similarity_option_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ComparatorError, match=message):
        build_comparator("similarity", options)


# --- json ------------------------------------------------------------------------------------------

def test_json_equal_parses_output_and_expected_string() -> None:
    comparator = structured.json_equal()
    result = score(comparator, '{"b": 2, "a": [1, 2]}', '{"a": [1, 2], "b": 2.0}')
    assert (result.passed, result.value, result.diff) == (True, 1.0, None)


def test_json_equal_compares_yaml_values_including_dict_subclasses() -> None:
    class LineDict(dict):  # what the line-numbering YAML loader produces
        pass

    expected = LineDict(diagnosis="possible ACS", urgency="high")
    assert score(structured.json_equal(), '{"diagnosis": "possible ACS", "urgency": "high"}', expected).passed


def test_json_equal_reports_differences_with_partial_value_and_pretty_diff() -> None:
    expected = {"diagnosis": "possible ACS", "urgency": "high", "codes": [1, 2]}
    result = score(structured.json_equal(), '{"diagnosis": "possible ACS", "urgency": "low", "codes": [1, 2]}',
                   expected)
    assert not result.passed
    assert result.value == pytest.approx(0.75)  # 1 change over 4 leaves
    assert result.reason.startswith("1 difference(s) from expected; first: Value of root['urgency'] changed")
    assert result.diff == "Value of root['urgency'] changed from \"high\" to \"low\"."


def test_json_equal_ignore_order() -> None:
    assert not score(structured.json_equal(), "[3, 1, 2]", [1, 2, 3]).passed
    assert score(structured.json_equal(ignore_order=True), "[3, 1, 2]", [1, 2, 3]).passed


def test_json_equal_numeric_tolerance_options() -> None:
    # significant_digits rounds, so these two differ; math_epsilon is a real tolerance
    assert not score(structured.json_equal(significant_digits=3), '{"x": 1.0006}', {"x": 1.0004}).passed
    assert score(structured.json_equal(significant_digits=2), '{"x": 1.0006}', {"x": 1.0004}).passed
    assert score(structured.json_equal(math_epsilon=1e-3), '{"x": 1.0006}', {"x": 1.0004}).passed
    assert not score(structured.json_equal(math_epsilon=1e-5), '{"x": 1.0006}', {"x": 1.0004}).passed


def test_json_equal_exclude_paths() -> None:
    output = '{"a": 1, "meta": {"ts": 5, "run_1": 2}}'
    expected = {"a": 1, "meta": {"ts": 9, "run_1": 7}}
    assert not score(structured.json_equal(exclude_paths=["root['meta']['ts']"]), output, expected).passed
    both = structured.json_equal(
        exclude_paths="root['meta']['ts']", exclude_regex_paths=[r"root\['meta'\]\['run_\d+'\]"]
    )
    assert score(both, output, expected).passed


def test_json_equal_output_problems_are_failing_scores() -> None:
    comparator = structured.json_equal()
    result = score(comparator, '{"a": 1,}', {"a": 1})
    assert not result.passed and "not valid JSON" in result.reason and "line 1 column 9" in result.reason
    result = score(comparator, '```json\n{"a": 1}\n```', {"a": 1})
    assert not result.passed and "code fence" in result.reason
    result = score(comparator, '{"a": NaN}', {"a": 1})
    assert not result.passed and "NaN" in result.reason
    result = score(comparator, "", {"a": 1})
    assert not result.passed and "empty" in result.reason


def test_json_equal_expected_string_that_is_not_json() -> None:
    result = score(structured.json_equal(), '{"a": 1}', "possible ACS")
    assert not result.passed and "expected value is not valid JSON" in result.reason


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"exclude_regex_paths": ["root[("]}, r"invalid pattern 'root\[\(' in exclude_regex_paths"),
        ({"ignore_order": "yes"}, "'ignore_order' must be true or false"),
        ({"math_epsilon": -1}, "must not be negative"),
        ({"significant_digits": 1.5}, "whole number"),
        ({"exclude_paths": [1]}, "list of strings"),
    ],
)
def test_json_equal_option_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ComparatorError, match=message):
        build_comparator("json", options)


# --- json_schema -----------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"urgency": {"enum": ["low", "high"]}, "date": {"type": "string", "format": "date"}},
    "required": ["urgency"],
}


def test_json_schema_inline_pass_and_fail() -> None:
    comparator = structured.json_schema(schema=SCHEMA)
    assert score(comparator, '{"urgency": "high", "date": "2024-05-01"}').passed
    result = score(comparator, '{"urgency": "medium", "date": "May 1st"}')
    assert not result.passed and result.value == 0.0
    assert result.reason.startswith("2 schema error(s); at $.")
    assert result.diff is not None
    lines = result.diff.splitlines()
    assert "$.urgency: 'medium' is not one of ['low', 'high']" in lines
    assert "$.date: 'May 1st' is not a 'date'" in lines


def test_json_schema_missing_property_and_bad_output() -> None:
    comparator = structured.json_schema(schema=SCHEMA)
    result = score(comparator, "{}")
    assert result.reason == "1 schema error(s); at $: 'urgency' is a required property"
    result = score(comparator, "Sure! {}")
    assert not result.passed and "not valid JSON" in result.reason and '"Sure! {}"' in result.reason


def test_json_schema_from_files_inside_root(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "s.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "schemas" / "s.yaml").write_text("type: array\nitems: {type: integer}\n")
    by_json = build_comparator("json_schema", {"schema": "schemas/s.json"}, tmp_path)
    assert score(by_json, '{"urgency": "low"}').passed
    by_yaml = build_comparator("json_schema", {"schema": "schemas/s.yaml"}, tmp_path)
    assert score(by_yaml, "[1, 2]").passed
    assert not score(by_yaml, '[1, "2"]').passed


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("../outside.json", "outside the project root"),
        ("schemas/missing.json", "does not exist"),
        ("schemas/s.txt", "must end in .json or .yaml"),
        ("schemas/broken.json", "not valid JSON"),
        ("schemas/broken.yaml", "not valid YAML"),
        ({"type": "objekt"}, r"the schema is invalid at \$.type"),
        (["type"], "must be a mapping"),
    ],
)
def test_json_schema_build_errors(tmp_path: Path, schema: Any, message: str) -> None:
    project = tmp_path / "project"
    (project / "schemas").mkdir(parents=True)
    (tmp_path / "outside.json").write_text("{}")
    (project / "schemas" / "s.txt").write_text("{}")
    (project / "schemas" / "broken.json").write_text("{nope")
    (project / "schemas" / "broken.yaml").write_text("a: [1,\n")
    with pytest.raises(ComparatorError, match=message):
        build_comparator("json_schema", {"schema": schema}, project)


def test_json_schema_requires_a_schema() -> None:
    with pytest.raises(ComparatorError, match="needs option 'schema'"):
        build_comparator("json_schema", {})


# --- streams_json ----------------------------------------------------------------------------------

def stream(*chunks: str) -> Score:
    return score(structured.streams_json(), "".join(chunks), chunks=tuple(chunks))


def test_streams_json_accepts_a_document_split_anywhere() -> None:
    document = ' \n{"a": [1, -2.5e3, true, null], "b": "x\\u00e9y", "c": {}}'
    every_char = stream(*document)
    assert every_char.passed and every_char.value == 1.0
    assert f"all {len(document)} chunk(s)" in every_char.reason
    assert stream('{"ok": tr', "ue}").passed
    assert stream("[1", "2", ".", "5", "e", "-", "3]").passed
    assert stream("12", "3").passed


def test_streams_json_rejects_preamble_and_fence_at_the_first_chunk() -> None:
    result = stream("Sure! Here is the JSON:", ' {"a": 1}')
    assert not result.passed
    assert result.reason.startswith("after chunk 1 of 2 the output is no longer a JSON prefix")
    assert '"Sure! Here is the JSON:"' in result.reason
    result = stream("```json\n", '{"a": 1}\n```')
    assert not result.passed and "chunk 1 of 2" in result.reason


def test_streams_json_rejects_what_breaks_mid_stream() -> None:
    assert "chunk 2 of 3" in stream('{"a": ', "tx", "ue}").reason  # not a prefix of true
    assert "chunk 2 of 2" in stream('{"a": 1', " 2}").reason  # missing comma
    assert "chunk 2 of 2" in stream('{"a": 1}', " and more").reason  # text after the document
    assert "chunk 1 of 1" in stream('{"a": NaN}').reason
    long = stream('{"text": "' + "x" * 100, '"\n"}')
    assert not long.passed and "…" in long.reason and len(long.reason) < 200


def test_streams_json_requires_a_complete_document_at_the_end() -> None:
    result = stream('{"a": [1, 2')
    assert not result.passed and "ended before the JSON document was complete" in result.reason
    assert "empty" in stream(" ", "\n").reason


def test_streams_json_falls_back_to_the_text_when_not_streamed() -> None:
    assert score(structured.streams_json(), '{"a": 1}').passed
    result = score(structured.streams_json(), 'Here: {"a": 1}')
    assert not result.passed and "chunk 1 of 1" in result.reason


# --- latency and cost ------------------------------------------------------------------------------

def test_latency_total() -> None:
    assert score(budget.latency(max_ms=1000), "x", latency_ms=812.5).passed
    result = score(budget.latency(max_ms=1000), "x", latency_ms=4000.0)
    assert not result.passed and result.value == pytest.approx(0.25)
    assert result.reason == "latency 4000 ms > 1000 ms"


def test_latency_time_to_first_token() -> None:
    comparator = budget.latency(max_ms=5000, max_ttft_ms=300)
    passed = score(comparator, "x", latency_ms=900.0, ttft_ms=230.1)
    assert passed.passed and passed.reason == "latency 900 ms <= 5000 ms; time to first token 230 ms <= 300 ms"
    slow = score(comparator, "x", latency_ms=900.0, ttft_ms=600.0)
    assert not slow.passed and slow.value == pytest.approx(0.5)
    result = score(comparator, "x", latency_ms=900.0)
    assert not result.passed and result.reason == "no time to first token recorded (not streamed)"


def test_latency_of_a_cached_answer_is_not_measured() -> None:
    result = score(budget.latency(max_ms=1), "x", latency_ms=50.0, cached=True)
    assert result.passed and result.reason == "cached: latency not measured"


@pytest.mark.parametrize(
    ("options", "message"),
    [({}, "needs max_ms, max_ttft_ms or both"), ({"max_ms": 0}, "greater than 0"), ({"max_ttft_ms": "1s"}, "number")],
)
def test_latency_option_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ComparatorError, match=message):
        build_comparator("latency", options)


def test_cost() -> None:
    comparator = budget.cost(max_usd=0.01)
    assert score(comparator, "x", cost_usd=0.004).passed
    result = score(comparator, "x", cost_usd=0.04)
    assert not result.passed and result.value == pytest.approx(0.25) and "> $0.01" in result.reason
    result = score(comparator, "x")
    assert not result.passed
    assert result.reason == "cost unknown: add a price for the model under pricing: in promptci.yaml"


@pytest.mark.parametrize(("options", "message"), [({}, "needs option 'max_usd'"), ({"max_usd": -1}, "negative")])
def test_cost_option_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ComparatorError, match=message):
        build_comparator("cost", options)


# --- python ----------------------------------------------------------------------------------------

USER_CHECKS = '''
import asyncio
from promptci.types import Score

def one(output):
    return output.startswith("{")

def two(output, expected):
    return output.lower() == expected.lower()

def three(output, expected, case):
    return case.input["x"] == 1 and output == expected

async def slow(output, expected=None):
    await asyncio.sleep(0)
    return len(output) / 10

def scored(output):
    return Score("mine", 0.5, False, "half right")

def boom(output):
    raise ValueError("cannot judge " + output)

def nothing(output):
    return None

def too_big(output):
    return 7

def no_params():
    return True

NOT_CALLABLE = 3
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "user.py").write_text(textwrap.dedent(USER_CHECKS))
    return tmp_path


def python_check(project: Path, name: str, **options: Any) -> Comparator:
    return build_comparator("python", {"function": f"checks/user.py:{name}", **options}, project)


def test_python_passes_output_expected_and_case_by_arity(project: Path) -> None:
    assert score(python_check(project, "one"), "{}").passed
    assert not score(python_check(project, "one"), "[]").passed
    assert score(python_check(project, "two"), "PARIS", "paris").passed
    result = score(python_check(project, "three"), "a", "a")
    assert result.passed and result.value == 1.0 and result.reason == "three returned True"


def test_python_async_function_returning_a_float_against_threshold(project: Path) -> None:
    result = score(python_check(project, "slow"), "0123456789")
    assert result.passed and result.value == 1.0
    result = score(python_check(project, "slow"), "01234")
    assert not result.passed and result.value == 0.5 and result.reason == "slow returned 0.5 (< 1)"
    assert score(python_check(project, "slow", threshold=0.5), "01234").passed


def test_python_returned_score_keeps_value_and_reason(project: Path) -> None:
    result = score(python_check(project, "scored"), "x")
    assert result == Score("python", 0.5, False, "half right")


def test_python_exception_propagates_naming_the_function_with_its_traceback(project: Path) -> None:
    with pytest.raises(UserCodeFailed) as raised:
        score(python_check(project, "boom"), "this")
    assert raised.value.message == "boom raised ValueError: cannot judge this"
    assert "Traceback" in raised.value.frames and 'raise ValueError("cannot judge "' in raised.value.frames
    assert isinstance(raised.value.__cause__, ValueError)


def test_python_bad_return_values_fail(project: Path) -> None:
    assert "returned NoneType" in score(python_check(project, "nothing"), "x").reason
    assert "outside [0, 1]" in score(python_check(project, "too_big"), "x").reason


def test_python_importable_module(project: Path) -> None:
    (project / "promptci_test_app_checks.py").write_text("def check(output):\n    return output == 'ok'\n")
    comparator = build_comparator("python", {"function": "promptci_test_app_checks:check"}, project)
    assert score(comparator, "ok").passed


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("checks/missing.py:one", "does not exist"),
        ("checks/user.py:absent", "has no attribute 'absent'"),
        ("../elsewhere.py:one", "outside the project root"),
        ("checks/user.py:no_params", "must take 1 to 3 parameters"),
        ("checks/user.py:NOT_CALLABLE", "is not a function"),
        ("no_such_module_promptci:fn", "cannot import module"),
        ("no-colon", "not of the form"),
    ],
)
def test_python_build_errors(project: Path, function: str, message: str) -> None:
    with pytest.raises(ComparatorError, match=message):
        build_comparator("python", {"function": function}, project)


def test_python_option_errors(project: Path) -> None:
    with pytest.raises(ComparatorError, match="needs option 'function'"):
        build_comparator("python", {}, project)
    with pytest.raises(ComparatorError, match="between 0 and 1"):
        python_check(project, "one", threshold=2)


def test_python_module_that_fails_to_import(project: Path) -> None:
    (project / "checks" / "broken.py").write_text("raise RuntimeError('bad module')\n")
    with pytest.raises(ComparatorError, match="RuntimeError: bad module"):
        build_comparator("python", {"function": "checks/broken.py:x"}, project)
