"""Tool calls (issue 9, item 10): a prompt's `tools:`, both wire formats streamed through the real SDKs to the
fake server, tool calls kept on results, in the cache and in recordings, and the `tool_called` comparator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer

from promptci.errors import ConfigError
from promptci.loading.prompts import load_prompt

ENV = {"FAKE_KEY": "sk-test-1234567890"}
PROMPT = """\
---
tools:
  - name: get_weather
    description: The weather in a city
    parameters:
      type: object
      properties: {city: {type: string}, days: {type: integer}}
      required: [city]
  - {type: function, function: {name: get_time}}
---
What is the weather in {{ city }}?
"""
GOLDEN = """\
cases:
  - id: paris
    input: {city: Paris}
    comparators:
      - {type: tool_called, name: get_weather, arguments: {city: Paris, days: {max: 7}}}
  - id: rome
    input: {city: Rome}
    comparators:
      - {type: tool_called, name: get_weather, arguments: {city: Paris}}
  - id: time
    input: {city: Oslo}
    comparators: [{type: tool_called, name: get_time}]
"""


def weather_caller(request: dict[str, Any]) -> Any:
    """Calls get_weather for the city the question names, when the request offers tools."""
    if not request.get("tools"):
        return "no tools offered"
    city = request["messages"][-1]["content"].split(" in ")[-1].rstrip("?\n")
    return {"text": "Let me check.", "tool_calls": [{"name": "get_weather", "arguments": {"city": city, "days": 3}}]}


def tool_project(project, server: FakeServer, kind: str) -> Path:
    base_url = server.openai_base_url if kind == "openai" else server.anthropic_base_url
    server.config.responder = weather_caller
    return project({
        "prompts/weather.txt": PROMPT, "goldens/weather.yaml": GOLDEN,
        "promptci.yaml": f"models: [fake:m1]\nproviders:\n  fake: {{type: {kind}, base_url: '{base_url}', "
                         "api_key_env: FAKE_KEY}\n",
    })


def run_json(cli, root: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    result = cli("run", "--root", root, "--format", "json", *args, env=ENV)
    return result, json.loads(result.stdout)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_tool_calls_are_streamed_kept_and_checked(cli, project, fake_server: FakeServer, kind: str) -> None:
    root = tool_project(project, fake_server, kind)
    result, document = run_json(cli, root)
    by_id = {r["case_id"]: r for r in document["results"]}
    assert by_id["paris"]["tool_calls"] == [{"name": "get_weather", "arguments": '{"city": "Paris", "days": 3}'}]
    assert by_id["paris"]["output"] == "Let me check."
    assert by_id["paris"]["status"] == "passed"
    assert by_id["rome"]["status"] == "failed"
    assert by_id["rome"]["scores"][0]["reason"] == "called 'get_weather', but city: expected \"Paris\", got \"Rome\""
    assert by_id["time"]["scores"][0]["reason"] == "no call to 'get_time' (calls made: \"get_weather\")"
    assert result.exit_code == 1


def test_openai_gets_the_tools_as_declared(cli, project, fake_server: FakeServer) -> None:
    run_json(cli, tool_project(project, fake_server, "openai"))
    body = fake_server.requests[0].body
    assert body["tools"][0] == {"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                       "required": ["city"]}}}
    assert body["tools"][1] == {"type": "function", "function": {
        "name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def test_anthropic_gets_the_tools_in_its_own_shape(cli, project, fake_server: FakeServer) -> None:
    run_json(cli, tool_project(project, fake_server, "anthropic"))
    body = fake_server.requests[0].body
    assert body["tools"] == [
        {"name": "get_weather", "description": "The weather in a city",
         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                          "required": ["city"]}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]


def test_tool_calls_survive_the_cache_and_recordings(cli, project, fake_server: FakeServer) -> None:
    root = tool_project(project, fake_server, "openai")
    run_json(cli, root, "--record")
    sent = fake_server.total
    _, cached = run_json(cli, root)
    assert fake_server.total == sent
    paris = next(r for r in cached["results"] if r["case_id"] == "paris")
    assert paris["cached"] and paris["tool_calls"][0]["name"] == "get_weather"
    recorded = [json.loads(line) for line in (root / "recordings" / "weather.jsonl").read_text().splitlines()]
    assert all(r["tool_calls"][0]["name"] == "get_weather" for r in recorded)
    (root / ".promptci" / "promptci.db").unlink()
    replayed = cli("run", "--root", root, "--replay", "--format", "json")
    paris = next(r for r in json.loads(replayed.stdout)["results"] if r["case_id"] == "paris")
    assert paris["status"] == "passed" and paris["tool_calls"][0]["arguments"] == '{"city": "Paris", "days": 3}'


def test_tools_change_the_request_identity(cli, project, fake_server: FakeServer) -> None:
    root = tool_project(project, fake_server, "openai")
    run_json(cli, root)
    sent = fake_server.total
    prompt = root / "prompts" / "weather.txt"
    prompt.write_text(prompt.read_text().replace("The weather in a city", "Weather for a city"))
    run_json(cli, root)
    assert fake_server.total == 2 * sent


def test_a_tool_call_without_a_name_is_a_malformed_answer(cli, project, fake_server: FakeServer) -> None:
    root = tool_project(project, fake_server, "openai")
    fake_server.config.raw_body = (
        b'data: {"model": "m1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": '
        b'{"arguments": "{}"}}]}, "finish_reason": "tool_calls"}]}\n\ndata: [DONE]\n\n')
    _, document = run_json(cli, root, "-k", "paris")
    [paris] = document["results"]
    assert paris["status"] == "error" and "tool call 0 has arguments but no name" in paris["error"]


@pytest.mark.parametrize(("front_matter", "message"), [
    ("tools: get_weather\n", "prompts/p.txt:2: `tools` must be a list of functions"),
    ("tools:\n  - {description: x}\n", "prompts/p.txt:3: a tool needs `name:`"),
    ("tools:\n  - {name: 'get weather'}\n", "prompts/p.txt:3: a tool needs `name:` of letters, digits"),
    ("tools:\n  - name: f\n    parameters: {type: string}\n",
     "prompts/p.txt:4: a tool's `parameters` must be a JSON schema of an object"),
    ("tools:\n  - {name: f}\n  - {name: f}\n", "prompts/p.txt:4: tool 'f' is declared twice"),
    ("tools:\n  - {name: f, params: {}}\n", "unknown key 'params' in a tool's function (did you mean 'parameters'?)"),
    ("tools:\n  - {type: function, function: [f]}\n", "`function` of a tool must be a mapping"),
    ("params: {tools: []}\ntools:\n  - {name: f}\n", "prompts/p.txt:3: tools are given both as `tools:` and in"),
])
def test_bad_tools_name_the_line(tmp_path: Path, front_matter: str, message: str) -> None:
    (tmp_path / "prompts").mkdir()
    path = tmp_path / "prompts" / "p.txt"
    path.write_text(f"---\n{front_matter}---\nHi\n")
    with pytest.raises(ConfigError) as error:
        load_prompt(path, tmp_path)
    assert message in "\n".join(str(p) for p in error.value.problems), error.value.problems


@pytest.mark.parametrize(("options", "message"), [
    ("{type: tool_called}", "comparator 'tool_called' needs option 'name'"),
    ("{type: tool_called, name: f, arguments: [city]}", "`arguments` must be a mapping of JMESPath -> check"),
    ("{type: tool_called, name: f, arguments: {'a[': 1}}", "invalid JMESPath"),
])
def test_bad_tool_called_options_stop_the_run(cli, project, options: str, message: str) -> None:
    root = project({"prompts/p.txt": "Hi\n", "promptci.yaml": "models: [echo]\n",
                    "goldens/p.yaml": f"cases:\n  - comparators: [{options}]\n"})
    result = cli("run", "--root", root)
    assert result.exit_code == 2 and "goldens/p.yaml:2" in result.output and message in result.output, result.output


def test_a_failing_case_shows_its_tool_calls_escaped(cli, project, fake_server: FakeServer) -> None:
    root = tool_project(project, fake_server, "openai")
    fake_server.config.responder = lambda request: {"tool_calls": [{"name": "get_weather",
                                                                     "arguments": "{\"city\": \"Rome\x1b[31m\"}"}]}
    result = cli("run", "--root", root, "-k", "rome", env=ENV)
    assert result.exit_code == 1
    assert "tool calls:" in result.stdout and "\x1b" not in result.stdout
    assert 'get_weather({"city": "Rome\\x1b[31m"})' in result.stdout, result.stdout
