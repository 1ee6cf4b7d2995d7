"""A hostile world, round two (issue 24): model answers that are valid-looking JSON but hold what Python's JSON
reader chokes on (a lone surrogate escape, 100k levels of nesting, an integer over 4,300 digits). Each is the
output failing its check (exit 1, with the report), never a case error (3) or a crash (4)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from helpers_project import make_project
from hypothesis import given, settings
from hypothesis import strategies as st

from promptci.comparators.structured import JSONParseError, parse_json
from promptci.registry import build_comparator
from promptci.types import Case, Completion, Location

ANSWERS = {
    "surrogate": '{"a": "\\ud800"}',
    "surrogate_key": '{"\\udfff": 1}',
    "deep": "[" * 100_000 + "]" * 100_000,
    "huge_int": '{"a": ' + "9" * 5000 + "}",
}
COMPARATORS = {
    "json": "{type: json}",
    "json_fields": "{type: json_fields, fields: {a: 1}}",
    "is_json": "{type: is_json}",
    "json_schema": "{type: json_schema, schema: {type: object}}",
}


def answering_project(root: Path, answer: str, comparator: str, output_json: bool = False) -> Path:
    app = f"ANSWER = {answer!r}\n\ndef answer(messages, params):\n    return ANSWER\n"
    prompt = "---\noutput: json\n---\nhi" if output_json else "hi"
    golden = f"cases:\n  - id: c1\n    expected: {{a: 1}}\n    comparators: [{comparator}]\n"
    return make_project(root, {"promptci.yaml": "models: ['python:app:answer']\nretries: 0\n", "app.py": app,
                               "prompts/p.txt": prompt, "goldens/p.yaml": golden})


@pytest.mark.parametrize("comparator", sorted(COMPARATORS))
@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_a_hostile_json_answer_fails_its_check_with_the_report(tmp_path: Path, cli, answer: str,
                                                              comparator: str) -> None:
    root = answering_project(tmp_path / "p", ANSWERS[answer], COMPARATORS[comparator])
    report = root / "report.json"
    result = cli("run", "--root", root, "-o", f"json={report}")
    assert result.exit_code == 1, result.output
    [case] = json.loads(report.read_text(encoding="utf-8"))["results"]
    assert case["status"] == "failed"
    assert "not valid JSON" in case["scores"][0]["reason"]


@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_output_json_prompt_with_a_hostile_answer_fails(tmp_path: Path, cli, answer: str) -> None:
    root = answering_project(tmp_path / "p", ANSWERS[answer], "{type: contains, value: a}", output_json=True)
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 1, result.output
    [case] = json.loads(result.stdout)["results"]
    assert case["status"] == "failed" and case["scores"][0]["comparator"] == "output:json"


def test_parse_json_names_each_reason() -> None:
    for answer, why in (("surrogate", "lone UTF-16 surrogate"), ("deep", "nests too deeply"),
                        ("huge_int", "4300 digits")):
        with pytest.raises(JSONParseError, match=why):
            parse_json(ANSWERS[answer])


@pytest.mark.parametrize("text", ['"\\ud83d\\ude00"', '"\\\\ud800"', '{"a": "\\u00e9"}'])
def test_a_surrogate_pair_or_an_escaped_backslash_is_still_json(text: str) -> None:
    assert parse_json(text) == json.loads(text)


JSON_TEXT = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
).map(json.dumps)
HOSTILE_TEXT = st.one_of(
    JSON_TEXT,
    st.text(max_size=200),
    st.tuples(st.integers(0, 3000), st.sampled_from(["[", "{\"a\":"])).map(lambda t: t[1] * t[0]),
    st.tuples(st.integers(4000, 6000), st.sampled_from('19')).map(lambda t: t[1] * t[0]),
    st.tuples(JSON_TEXT, st.integers(0xD800, 0xDFFF)).map(lambda t: f'[{t[0]}, "\\u{t[1]:04x}"]'),
)


@settings(max_examples=300, deadline=None)
@given(text=HOSTILE_TEXT)
def test_parse_json_returns_text_that_encodes_or_a_named_error(text: str) -> None:
    try:
        value = parse_json(text)
    except JSONParseError:
        return
    json.dumps(value, ensure_ascii=False).encode("utf-8")


@settings(max_examples=100, deadline=None)
@given(text=HOSTILE_TEXT)
def test_json_comparators_score_any_answer(text: str) -> None:
    case = Case(id="c", prompt="p", location=Location("goldens/p.yaml", 3), input={}, expected={"a": 1},
                has_expected=True)
    for name, options in (("json", {}), ("json_fields", {"fields": {"a": 1}}), ("is_json", {})):
        score = asyncio.run(build_comparator(name, options)(case, Completion(text=text)))
        score.reason.encode("utf-8")
