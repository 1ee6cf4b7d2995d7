"""Several comparators on one case: every comparator's verdict is shown; the case fails when any failed, and
is an error (no verdict) only when none failed and one raised. A check that cannot apply to this output
(a JMESPath type error, an expression that raises) is that check failing, not an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PROMPT = "Hello {{ name }}!\n"


@pytest.fixture
def exploding(monkeypatch: pytest.MonkeyPatch) -> None:
    from promptci import registry

    def factory():  # a third-party comparator with a bug
        async def score(case, completion):
            raise ValueError("no idea")

        return score

    monkeypatch.setitem(registry.comparators._loaded, "exploding", factory)


def suite(project, comparators: str, expected: str = "Hello Ada!") -> Path:
    golden = (f"cases:\n  - id: a\n    input: {{name: Ada}}\n    expected: {expected}\n"
              f"    comparators: {comparators}\n")
    return project({"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": PROMPT, "goldens/greet.yaml": golden})


def test_a_raising_comparator_does_not_hide_another_comparators_failure(cli, project, exploding) -> None:
    root = suite(project, "[exploding, exact, {type: contains, value: Bob}]", expected="Hello Bob!")
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 1, result.output
    [case] = json.loads(result.stdout)["results"]
    assert case["status"] == "failed"
    assert [(s["comparator"], s["passed"]) for s in case["scores"]] == [("exact", False), ("contains", False)]
    assert case["error"] == "comparator exploding (goldens/greet.yaml:5) raised ValueError: no idea"
    shown = cli("run", "--root", root)
    assert shown.exit_code == 1
    for line in ("FAILED goldens/greet.yaml:2 a [echo]", "exact: output differs from expected",
                 "contains: ", "comparator exploding (goldens/greet.yaml:5) raised ValueError: no idea"):
        assert line in shown.output


def test_a_raising_comparator_beside_passing_ones_is_no_verdict(cli, project, exploding) -> None:
    root = suite(project, "[exact, exploding]")
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 3, result.output
    [case] = json.loads(result.stdout)["results"]
    assert case["status"] == "error" and [s["comparator"] for s in case["scores"]] == ["exact"]


def test_a_jmespath_type_error_is_that_check_failing_with_jmespaths_message(cli, project) -> None:
    root = project({"promptci.yaml": "models: ['python:app:answer']\n", "prompts/p.txt": "x {{ n }}\n",
                    "app.py": "def answer(messages, params):\n    return '[1, 2]'\n",
                    "goldens/p.yaml": "cases:\n  - id: a\n    input: {n: 1}\n"
                                      "    comparators: [{type: json_fields, fields: {'keys(@)': {length: 2}}}]\n"})
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 1, result.output
    [case] = json.loads(result.stdout)["results"]
    assert case["status"] == "failed" and case["error"] is None
    assert case["scores"][0]["reason"] == ('1 of 1 field(s) fail: keys(@): In function keys(), invalid type for '
                                           'value: [1, 2], expected one of: [\'object\'], received: "array"')


def test_an_expression_that_raises_is_a_failing_check_beside_the_others(cli, project) -> None:
    root = suite(project, "[exact, {type: expr, expr: \"json['a'] == 1\"}]")
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 1, result.output
    [case] = json.loads(result.stdout)["results"]
    assert case["status"] == "failed" and case["error"] is None
    assert [(s["comparator"], s["passed"]) for s in case["scores"]] == [("exact", True), ("expr", False)]
    assert "raised TypeError" in case["scores"][1]["reason"]
