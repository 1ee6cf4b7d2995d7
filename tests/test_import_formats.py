"""Golden-format defects that imported suites hit: lint on an unknown filter, transforms on comparators that
call models, per-row checks in cases_from files, promptfoo-shaped results from python comparators, python
providers returning tool calls, `from_json` in templates, and lint noise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server
from helpers_project import make_project

import promptci
from promptci.config import load_settings
from promptci.loading.lint import lint_project

KEY = "sk-test-FORMATS-1234567890"


def findings(root: Path) -> list[str]:
    return [f"{p.location}: {p.severity}: {p.message}" for p in lint_project(load_settings(root))]


def test_lint_reports_an_unknown_filter_and_exits_2_not_4(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/ask.txt": "Data: {{ blob | nosuchfilter }}\n",
                                   "goldens/ask.yaml": "cases:\n  - {id: a, input: {blob: x}, expected: y}\n"})
    result = cli("lint", "--root", root)
    assert result.exit_code == 2, result.output
    assert "nosuchfilter" in result.output and "Traceback" not in result.output


def test_from_json_filter_parses_a_json_variable(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "prompts/ask.txt": "{% set d = data | from_json %}Name: {{ d.name }}, {{ d.tags | length }} tags\n",
        "goldens/ask.yaml": "cases:\n  - id: a\n    input: {data: '{\"name\": \"Ada\", \"tags\": [1, 2]}'}\n"
                            "    expected: 'Name: Ada, 2 tags'\n"})
    assert cli("lint", "--root", root).exit_code == 0
    result = cli("run", "--root", root, "-m", "echo", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["output"] == "Name: Ada, 2 tags\n"


def test_lint_does_not_warn_about_a_judge_template_or_a_variable_another_prompt_uses(tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "prompts/a.txt": "Question: {{ q }}\n",
        "prompts/b.txt": "Question: {{ q }} in {{ lang }}\n",
        "prompts/judge/strict.txt": "Grade {{ output }} by {{ rubric }}\n",
        "goldens/both.yaml": """\
            prompt: [a, b]
            comparators:
              - {type: llm_judge, rubric: polite, template: judge/strict, model: openai:gpt-4o-mini}
            cases:
              - {id: one, input: {q: hi, lang: en}}
            """})
    assert findings(root) == []


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FAKE_KEY", KEY)

    def answer(body: dict[str, Any]) -> str:
        if body["model"] == "judge":
            return json.dumps({"score": 1, "pass": "```" not in body["messages"][-1]["content"], "reason": "ok"})
        return "```json\n{\"a\": 1}\n```"

    with running_fake_server(responder=answer) as fake:
        yield fake


def config(server: FakeServer) -> str:
    return (f"providers:\n  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: FAKE_KEY}}\n"
            "pricing:\n  local:sut: {input: 1, output: 1}\n  local:judge: {input: 1, output: 1}\n"
            "  local:embed: {input: 1, output: 0}\n")


def test_a_transform_keeps_the_models_a_judge_or_embedding_comparator_needs(cli, tmp_path: Path,
                                                                           server: FakeServer) -> None:
    root = make_project(tmp_path, {
        "promptci.yaml": config(server), "prompts/ask.txt": "Give JSON\n",
        "goldens/ask.yaml": """\
            cases:
              - id: judged
                transform: strip_fence
                comparators: [{type: llm_judge, rubric: is JSON, model: local:judge, threshold: 0}]
              - id: embedded
                expected: '{"a": 1}'
                comparators: [{type: similarity, method: embedding, model: local:embed, threshold: 0.99,
                               transform: strip_fence}]
            """})
    result = cli("run", "--root", root, "-m", "local:sut", "--format", "json")
    assert "was not prepared" not in result.output
    statuses = {r["case_id"]: r["status"] for r in json.loads(result.stdout)["results"]}
    assert statuses == {"judged": "passed", "embedded": "passed"}, result.output
    assert result.exit_code == 0


def test_jsonl_rows_carry_their_own_checks(cli, tmp_path: Path) -> None:
    rows = [{"id": "good", "input": {"name": "Ada"}, "comparators+": [{"type": "contains", "value": "Ada"}]},
            {"id": "bad", "input": {"name": "Bob"}, "comparators+": [{"type": "contains", "value": "Zed"}]},
            {"id": "own", "input": {"name": "Cy"}, "transform": "lower",
             "comparators": [{"type": "contains", "value": "hello cy"}]}]
    root = make_project(tmp_path, {
        "prompts/greet.txt": "Hello {{ name }}!\n",
        "goldens/greet.yaml": "comparators: [{type: contains, value: Hello}]\ncases_from: data/rows.jsonl\n",
        "data/rows.jsonl": "".join(json.dumps(row) + "\n" for row in rows)})
    assert cli("lint", "--root", root).exit_code == 0
    result = cli("run", "--root", root, "-m", "echo", "--format", "json")
    statuses = {r["case_id"]: r["status"] for r in json.loads(result.stdout)["results"]}
    assert statuses == {"good": "passed", "bad": "failed", "own": "passed"}, result.output
    assert result.exit_code == 1


def test_csv_rows_carry_checks_in_json_columns_and_bad_json_names_the_row(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "prompts/greet.txt": "Hello {{ name }}!\n",
        "goldens/greet.yaml": "comparators: [{type: contains, value: Hello}]\ncases_from: data/rows.csv\n",
        "data/rows.csv": 'id,name,comparators+\ngood,Ada,"[{""type"": ""contains"", ""value"": ""Ada""}]"\n'
                         'bad,Bob,"[{""type"": ""contains"", ""value"": ""Zed""}]"\nplain,Cy,\n'})
    result = cli("run", "--root", root, "-m", "echo", "--format", "json")
    statuses = {r["case_id"]: r["status"] for r in json.loads(result.stdout)["results"]}
    assert statuses == {"good": "passed", "bad": "failed", "plain": "passed"}, result.output
    (root / "data/rows.csv").write_text("id,name,comparators+\ngood,Ada,[{type: contains\n")
    broken = cli("lint", "--root", root)
    assert broken.exit_code == 2 and "data/rows.csv:2" in broken.output and "comparators+" in broken.output


def test_a_python_comparator_may_return_promptfoos_grading_result(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "prompts/greet.txt": "Hello {{ name }}!\n",
        "checks.py": "def shaped(output):\n    ok = 'Ada' in output\n"
                     "    return {'pass': ok, 'score': 0.25 if ok else 0.0, 'reason': 'looked for Ada'}\n",
        "goldens/greet.yaml": "comparators: [{type: python, function: checks.py:shaped}]\n"
                              "cases:\n  - {id: ada, input: {name: Ada}}\n  - {id: bob, input: {name: Bob}}\n"})
    result = cli("run", "--root", root, "-m", "echo", "--format", "json")
    by_id = {r["case_id"]: r for r in json.loads(result.stdout)["results"]}
    assert by_id["ada"]["status"] == "passed" and by_id["bob"]["status"] == "failed", result.output
    assert by_id["ada"]["scores"][0]["value"] == 0.25 and by_id["ada"]["scores"][0]["reason"] == "looked for Ada"


def test_toolcall_is_exported_for_python_providers(cli, tmp_path: Path) -> None:
    assert "ToolCall" in promptci.__all__
    root = make_project(tmp_path, {
        "prompts/book.txt": "Book a table for {{ n }}\n",
        "app.py": "import promptci\n\ndef answer(messages, params):\n"
                  "    return promptci.Completion(text='', tool_calls=(promptci.ToolCall('book', "
                  "'{\"people\": 2}'),))\n",
        "goldens/book.yaml": "comparators: [{type: tool_called, name: book, arguments: {people: 2}}]\n"
                             "cases:\n  - {id: two, input: {n: 2}}\n"})
    result = cli("run", "--root", root, "-m", "python:app:answer", "--format", "json")
    assert result.exit_code == 0, result.output
