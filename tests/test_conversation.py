"""Tool loops (issue 23): `tool_mocks:` answer the model's tool calls turn by turn, through the real SDKs and the
fake server in both wire formats; an unexpected call fails closed; recorded conversations replay with 0 requests."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, tool_conversation, tool_rounds
from hypothesis import given, settings
from hypothesis import strategies as st

from promptci.errors import ComparatorError
from promptci.registry import build_comparator
from promptci.types import Case, Completion, Location, Score, ToolCall

ENV = {"FAKE_KEY": "sk-test-1234567890"}
MATCH_NAMES = ("exact", "subset", "fields")
PROMPT = """\
---
tools:
  - name: lookup_order
    description: An order's status
    parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
  - name: refund
    parameters: {type: object, properties: {order_id: {type: string}, reason: {type: string}}}
---
{{ question }}
"""
GOLDEN = """\
cases:
  - id: where-is-42
    input: {question: "Where is my order 42?"}
    tool_mocks:
      - tool: lookup_order
        arguments: {order_id: "42"}
        returns: {status: shipped, eta: "Dec 8"}
      - tool: refund
        match: subset
        arguments: {order_id: "42"}
        returns: refund queued
        times: any
    tool_mock_order: in_order
    max_turns: 4
    comparators:
      - {type: contains, value: shipped}
      - {type: tool_called, name: lookup_order, arguments: {order_id: "42"}}
"""


def lookup(order_id: str) -> dict[str, Any]:
    return {"text": "Let me look.", "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": order_id}}]}


def answer_from_tool(request: dict[str, Any]) -> str:
    """The final answer quotes the tool's result, so the mock's answer must have reached the model."""
    return f"Your order: {tool_rounds(request)[-1][0]}"


def support_project(project, server: FakeServer, kind: str, golden: str = GOLDEN) -> Path:
    base_url = server.openai_base_url if kind == "openai" else server.anthropic_base_url
    return project({
        "prompts/support.txt": PROMPT, "goldens/support.yaml": golden,
        "promptci.yaml": f"models: [fake:m1]\nproviders:\n  fake: {{type: {kind}, base_url: '{base_url}', "
                         "api_key_env: FAKE_KEY}\n",
    })


def run_json(cli, root: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    result = cli("run", "--root", root, "--format", "json", *args, env=ENV)
    return result, json.loads(result.stdout)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_conversation_answers_tool_calls_with_mocks_and_passes(cli, project, fake_server: FakeServer,
                                                                 kind: str) -> None:
    fake_server.config.responder = tool_conversation(lookup("42"), answer_from_tool)
    result, document = run_json(cli, support_project(project, fake_server, kind))
    [case] = document["results"]
    assert case["status"] == "passed", case
    assert result.exit_code == 0
    assert case["output"] == 'Your order: {"eta": "Dec 8", "status": "shipped"}'
    assert fake_server.total == 2  # one request per turn
    assert [turn["turn"] for turn in case["transcript"]] == [1, 2]
    [call] = case["transcript"][0]["tool_calls"]
    assert call["name"] == "lookup_order" and json.loads(call["arguments"]) == {"order_id": "42"}
    assert call["mock"] == "goldens/support.yaml:5"
    assert call["result"] == '{"eta": "Dec 8", "status": "shipped"}'
    assert case["transcript"][1]["tool_calls"] == []
    assert case["input_tokens"] > 0 and case["output_tokens"] > 0  # both turns' usage


def test_openai_gets_the_tool_results_as_tool_messages(cli, project, fake_server: FakeServer) -> None:
    fake_server.config.responder = tool_conversation(lookup("42"), answer_from_tool)
    run_json(cli, support_project(project, fake_server, "openai"))
    messages = fake_server.requests[1].body["messages"]
    assert messages[-2] == {"role": "assistant", "content": "Let me look.", "tool_calls": [
        {"id": "call_1_0", "type": "function",
         "function": {"name": "lookup_order", "arguments": '{"order_id": "42"}'}}]}
    assert messages[-1] == {"role": "tool", "tool_call_id": "call_1_0",
                            "content": '{"eta": "Dec 8", "status": "shipped"}'}


def test_anthropic_gets_tool_use_and_tool_result_blocks(cli, project, fake_server: FakeServer) -> None:
    fake_server.config.responder = tool_conversation(lookup("42"), answer_from_tool)
    run_json(cli, support_project(project, fake_server, "anthropic"))
    messages = fake_server.requests[1].body["messages"]
    assert messages[-2] == {"role": "assistant", "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1_0", "name": "lookup_order", "input": {"order_id": "42"}}]}
    assert messages[-1] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1_0", "content": '{"eta": "Dec 8", "status": "shipped"}'}]}


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_wrong_argument_is_caught_at_its_turn_and_never_answered(cli, project, fake_server: FakeServer,
                                                                   kind: str) -> None:
    refund_43 = {"text": "", "tool_calls": [{"name": "refund", "arguments": {"order_id": "43", "reason": "late"}}]}
    fake_server.config.responder = tool_conversation(lookup("42"), refund_43, "done")
    result, document = run_json(cli, support_project(project, fake_server, kind))
    [case] = document["results"]
    assert case["status"] == "failed" and result.exit_code == 1
    assert fake_server.total == 2  # the third request, which would carry an answer to the call, is never sent
    loop = case["scores"][0]
    assert loop["comparator"] == "tool_mocks" and not loop["passed"]
    assert loop["reason"].startswith('turn 2: unexpected tool call refund("{\\"order_id\\": \\"43\\"')
    assert 'nearest mock: refund at goldens/support.yaml:8 (order_id: expected "42", got "43")' in loop["reason"]
    assert case["transcript"][1]["tool_calls"][0]["mock"] is None


def test_a_call_to_a_tool_no_mock_names_fails_closed(cli, project, fake_server: FakeServer) -> None:
    wipe = {"text": "", "tool_calls": [{"name": "lookup_orders", "arguments": {"order_id": "42"}}]}
    fake_server.config.responder = tool_conversation(wipe, "done")
    result, document = run_json(cli, support_project(project, fake_server, "openai"))
    [case] = document["results"]
    assert case["status"] == "failed" and result.exit_code == 1 and fake_server.total == 1
    assert "turn 1: unexpected tool call lookup_orders(" in case["scores"][0]["reason"]
    assert "nearest mock: lookup_order at goldens/support.yaml:5 (tool: expected \"lookup_order\"" \
        in case["scores"][0]["reason"]


def test_mocks_used_fewer_times_than_said_fail(cli, project, fake_server: FakeServer) -> None:
    fake_server.config.responder = tool_conversation("I cannot look that up.")
    _, document = run_json(cli, support_project(project, fake_server, "openai"))
    [case] = document["results"]
    assert case["status"] == "failed"
    assert case["scores"][0]["reason"] == ("mock lookup_order at goldens/support.yaml:5 was used 0 of times: 1 "
                                           "before the model answered")


def test_the_loop_stops_at_max_turns(cli, project, fake_server: FakeServer) -> None:
    golden = GOLDEN.replace("max_turns: 4", "max_turns: 2").replace("    tool_mock_order: in_order\n", "") \
        .replace("returns: {status: shipped, eta: \"Dec 8\"}", "returns: {status: shipped, eta: \"Dec 8\"}\n"
                 "        times: any")
    fake_server.config.responder = tool_conversation(lookup("42"))
    _, document = run_json(cli, support_project(project, fake_server, "openai", golden))
    [case] = document["results"]
    assert fake_server.total == 2
    assert case["status"] == "failed" and "after max_turns=2 requests" in case["scores"][0]["reason"]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_recorded_conversation_replays_with_no_request(cli, project, fake_server: FakeServer, kind: str) -> None:
    fake_server.config.responder = tool_conversation(lookup("42"), answer_from_tool)
    root = support_project(project, fake_server, kind)
    first, _ = run_json(cli, root, "--record")
    assert first.exit_code == 0 and fake_server.total == 2
    (root / ".promptci" / "promptci.db").unlink()
    replayed, document = run_json(cli, root, "--replay")
    assert fake_server.total == 2  # no request at all
    assert replayed.exit_code == 0 and document["results"][0]["status"] == "passed"
    assert len(document["results"][0]["transcript"]) == 2


def test_a_replay_missing_a_turn_fails_closed_naming_the_turn(cli, project, fake_server: FakeServer) -> None:
    fake_server.config.responder = tool_conversation(lookup("42"), answer_from_tool)
    root = support_project(project, fake_server, "openai")
    run_json(cli, root, "--record")
    (root / ".promptci" / "promptci.db").unlink()
    golden = root / "goldens" / "support.yaml"
    golden.write_text(golden.read_text().replace("status: shipped", "status: lost"))  # turn 2's request changes
    replayed, document = run_json(cli, root, "--replay")
    assert fake_server.total == 2
    [case] = document["results"]
    assert case["status"] == "error" and replayed.exit_code == 3
    assert case["error"].startswith("turn 2: --replay: no recorded response for case 'where-is-42' "
                                    "(goldens/support.yaml:2, turn 2)")
    assert "the closest differs in messages.2" in case["error"]
    assert len(case["transcript"]) == 1


def test_each_turn_is_cached_on_its_own(cli, project, fake_server: FakeServer) -> None:
    fake_server.config.responder = tool_conversation(lookup("42"), answer_from_tool)
    root = support_project(project, fake_server, "openai")
    run_json(cli, root)
    _, document = run_json(cli, root)
    assert fake_server.total == 2 and document["results"][0]["cached"] is True
    golden = root / "goldens" / "support.yaml"
    golden.write_text(golden.read_text().replace("status: shipped", "status: lost"))
    _, document = run_json(cli, root)
    assert fake_server.total == 3  # turn 1 from the cache, turn 2 sent
    assert document["results"][0]["output"] == 'Your order: {"eta": "Dec 8", "status": "lost"}'


# --- trajectory checks --------------------------------------------------------------------------------

def calls(*names_and_arguments: tuple[str, dict[str, Any]]) -> Completion:
    return Completion(text="ok", tool_calls=tuple(ToolCall(name, json.dumps(arguments))
                                                  for name, arguments in names_and_arguments), turns=3)


def judged(name: str, options: dict[str, Any], completion: Completion) -> Score:
    case = Case(id="c", prompt="p", location=Location("goldens/p.yaml", 1), input={})
    return asyncio.run(build_comparator(name, options, Path.cwd())(case, completion))


MADE = calls(("lookup_order", {"order_id": "42"}), ("log", {}), ("refund", {"order_id": "42", "reason": "late"}))


@pytest.mark.parametrize(("mode", "tools", "passes"), [
    ("exact", ["lookup_order", "log", "refund"], True),
    ("exact", ["lookup_order", "refund"], False),
    ("in_order", ["lookup_order", "refund"], True),
    ("in_order", ["refund", "lookup_order"], False),
    ("any_order", ["refund", "log", "lookup_order"], True),
    ("any_order", ["refund", "lookup_order"], False),
    ("subset", ["refund"], True),
    ("subset", ["refund", "cancel"], False),
])
def test_tool_sequence_modes(mode: str, tools: list[str], passes: bool) -> None:
    assert judged("tool_sequence", {"mode": mode, "tools": tools}, MADE).passed is passes


def test_tool_sequence_checks_each_calls_arguments() -> None:
    tools = ["lookup_order", "log", {"name": "refund", "arguments": {"order_id": "43"}}]
    verdict = judged("tool_sequence", {"tools": tools}, MADE)
    assert not verdict.passed
    assert verdict.reason == ('call 3: refund: order_id: expected "43", got "42" '
                              '(calls made: lookup_order, log, refund)')


def test_max_tool_calls_and_turns() -> None:
    assert judged("max_tool_calls", {"max": 3}, MADE).passed
    assert judged("max_tool_calls", {"max": 2}, MADE).reason == "3 tool call(s), at most 2 allowed"
    assert not judged("max_tool_calls", {"max": 0, "tool": "refund"}, MADE).passed
    assert judged("turns", {"max": 3}, MADE).passed
    assert judged("turns", {"min": 4}, MADE).reason == "3 turn(s), at least 4 wanted"


def test_tool_sequence_rejects_a_bad_mode() -> None:
    with pytest.raises(ComparatorError, match="`mode` must be one of exact, in_order, any_order, subset"):
        build_comparator("tool_sequence", {"tools": ["a"], "mode": "sorted"}, Path.cwd())


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_trajectory_checks_see_every_turn(cli, project, fake_server: FakeServer, kind: str) -> None:
    golden = GOLDEN.replace("    comparators:\n", "    comparators:\n"
                            "      - {type: tool_sequence, tools: [lookup_order]}\n"
                            "      - {type: turns, max: 2}\n"
                            "      - {type: max_tool_calls, max: 0, tool: refund}\n")
    fake_server.config.responder = tool_conversation(lookup("42"), answer_from_tool)
    _, document = run_json(cli, support_project(project, fake_server, kind, golden))
    [case] = document["results"]
    assert case["status"] == "passed", case["scores"]
    assert [s["reason"] for s in case["scores"][:3]] == ["calls made (exact): lookup_order",
                                                          "2 turn(s), at most 2 wanted",
                                                          "0 call(s) to 'refund', at most 0 allowed"]


# --- the golden format: bad input -----------------------------------------------------------------------

@pytest.mark.parametrize(("mock", "message"), [
    ("{tool: lookup_order}", "goldens/support.yaml:4: a tool mock needs `returns:`"),
    ("{tool: lookup_order, returns: x, times: 0}", "goldens/support.yaml:4: a tool mock's `times` must be"),
    ("{tool: lookup_order, returns: x, match: fuzzy}",
     "goldens/support.yaml:4: a tool mock's `match` must be one of exact, subset, fields"),
    ("{tool: lookup_order, returns: x, argumnts: {}}", "goldens/support.yaml:4: unknown key 'argumnts' in a tool mock"),
])
def test_a_bad_mock_is_named_with_its_line(cli, project, fake_server: FakeServer, mock: str, message: str) -> None:
    golden = f"cases:\n  - id: a\n    input: {{question: hi}}\n    tool_mocks:\n      - {mock}\n"
    golden = golden.replace("    tool_mocks:\n      - ", "    tool_mocks: [").rstrip("\n") + "]\n"
    root = support_project(project, fake_server, "openai", golden)
    result = cli("lint", "--root", root, env=ENV)
    assert result.exit_code == 2
    assert message in result.stderr
    ran = cli("run", "--root", root, env=ENV)
    assert ran.exit_code == 2 and fake_server.total == 0


def test_max_turns_without_mocks_is_named(cli, project, fake_server: FakeServer) -> None:
    golden = "cases:\n  - id: a\n    input: {question: hi}\n    max_turns: 3\n"
    result = cli("lint", "--root", support_project(project, fake_server, "openai", golden), env=ENV)
    assert result.exit_code == 2
    assert "goldens/support.yaml:4: `max_turns` only applies to a case with `tool_mocks:`" in result.stderr


# --- the example under examples/support-tools ------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "support-tools"


def support_model(request: dict[str, Any]) -> Any:
    """The model the example's recordings come from: looks the order up, cancels it when asked, answers."""
    question = next(m["content"] for m in request["messages"] if m["role"] == "user")
    rounds = tool_rounds(request)
    order = "A1042" if "A1042" in question else "A2001"
    if not rounds:
        return {"text": "", "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": order}}]}
    found = json.loads(rounds[0][0])
    if order == "A1042":
        return f"Your order A1042 shipped on {found['shipped_on']} and should arrive on {found['eta']}."
    if len(rounds) == 1:
        return {"text": "", "tool_calls": [{"name": "cancel_order",
                                            "arguments": {"order_id": order, "reason": "wrong size"}}]}
    return "Done: order A2001 is cancelled, and you will not be charged."


def example_copy(tmp_path: Path, server: FakeServer | None = None) -> Path:
    root = tmp_path / "support-tools"
    shutil.copytree(EXAMPLE, root)
    if server is not None:
        with (root / "promptci.yaml").open("a") as config:
            config.write(f"providers:\n  openai: {{type: openai, base_url: '{server.openai_base_url}'}}\n")
    return root


def test_the_example_lints(cli) -> None:
    result = cli("lint", "--root", EXAMPLE, env=ENV)
    assert result.exit_code == 0, result.stderr


def test_the_example_replays_offline_and_passes(cli, tmp_path: Path) -> None:
    result = cli("run", "--root", example_copy(tmp_path), "--replay", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [r["status"] for r in document["results"]] == ["passed", "passed"]
    assert [len(r["transcript"]) for r in document["results"]] == [2, 3]


def test_the_examples_recordings_are_what_the_fake_model_says(cli, tmp_path: Path, fake_server: FakeServer) -> None:
    fake_server.config.responder = support_model
    root = example_copy(tmp_path, fake_server)
    shutil.rmtree(root / "recordings")
    result = cli("run", "--root", root, "--record", env={"OPENAI_API_KEY": "sk-test-1234567890"})
    assert result.exit_code == 0, result.output
    assert fake_server.total == 5
    recorded = (root / "recordings" / "support" / "assistant.jsonl").read_text()
    assert recorded == (EXAMPLE / "recordings" / "support" / "assistant.jsonl").read_text()


# --- scripted user turns ----------------------------------------------------------------------------------

CHAT_PROMPT = "---\nsystem: You are a shop's assistant.\n---\nHi, I am {{ name }}.\n"
CHAT_GOLDEN = """\
cases:
  - id: chat
    input: {name: Ada}
    turns:
      - "Do you remember my name, {{ name }}?"
      - user: "And what is 2 + 2?"
        comparators: [{type: contains, value: "4"}]
    comparators: [{type: contains, value: "2 + 2"}]
"""


def chat_project(project, server: FakeServer, kind: str, golden: str = CHAT_GOLDEN) -> Path:
    base_url = server.openai_base_url if kind == "openai" else server.anthropic_base_url
    return project({
        "prompts/chat.txt": CHAT_PROMPT, "goldens/chat.yaml": golden,
        "promptci.yaml": f"models: [fake:m1]\nproviders:\n  fake: {{type: {kind}, base_url: '{base_url}', "
                         "api_key_env: FAKE_KEY}\n",
    })


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_scripted_turns_carry_the_replies_into_the_next_request(cli, project, fake_server: FakeServer,
                                                                kind: str) -> None:
    fake_server.config.responder = lambda request: f"reply {len(request['messages'])}"
    result, document = run_json(cli, chat_project(project, fake_server, kind))
    [case] = document["results"]
    assert fake_server.total == 3
    conversation = [m for m in fake_server.requests[2].body["messages"] if m["role"] != "system"]
    offset = 0 if kind == "anthropic" else 1  # OpenAI's list holds the system message too
    assert conversation == [
        {"role": "user", "content": "Hi, I am Ada.\n"},
        {"role": "assistant", "content": f"reply {1 + offset}"},
        {"role": "user", "content": "Do you remember my name, Ada?"},
        {"role": "assistant", "content": f"reply {3 + offset}"},
        {"role": "user", "content": "And what is 2 + 2?"},
    ]
    assert [turn["user"] for turn in case["transcript"]] == ["Hi, I am Ada.\n", "Do you remember my name, Ada?",
                                                             "And what is 2 + 2?"]
    # the second user turn's own check fails on the reply to it, named with its line; the final one too
    assert case["status"] == "failed" and result.exit_code == 1
    reasons = [s["reason"] for s in case["scores"]]
    assert reasons[0].startswith("user turn 2 (goldens/chat.yaml:6): ")
    assert case["output"] == f"reply {5 + offset}"


def test_a_passing_scripted_conversation(cli, project, fake_server: FakeServer) -> None:
    def answers(request: dict[str, Any]) -> str:
        last = request["messages"][-1]["content"]
        return "It is 4, as in 2 + 2." if "2 + 2" in last else "Nice to meet you."
    fake_server.config.responder = answers
    result, document = run_json(cli, chat_project(project, fake_server, "openai"))
    assert result.exit_code == 0, document["results"][0]["scores"]
    assert document["results"][0]["scores"][0]["reason"].startswith("user turn 2 (goldens/chat.yaml:6): ")


def test_scripted_turns_and_tool_mocks_together(cli, project, fake_server: FakeServer) -> None:
    golden = GOLDEN.replace("    tool_mock_order: in_order\n", "    turns: [\"Thanks! Can I get a refund?\"]\n") \
        .replace("      - {type: contains, value: shipped}\n", "      - {type: tool_sequence, mode: exact, "
                 "tools: [lookup_order, refund]}\n")

    def model(request: dict[str, Any]) -> Any:
        last = request["messages"][-1]
        if last["role"] == "user" and "refund" in str(last["content"]):
            return {"text": "", "tool_calls": [{"name": "refund", "arguments": {"order_id": "42"}}]}
        if last["role"] == "user":
            return lookup("42")
        return f"Done: {last['content']}"
    fake_server.config.responder = model
    result, document = run_json(cli, support_project(project, fake_server, "openai", golden))
    [case] = document["results"]
    assert result.exit_code == 0, case["scores"]
    assert fake_server.total == 4
    assert case["output"] == "Done: refund queued"
    assert [t["user"] for t in case["transcript"]] == ["Where is my order 42?\n", None,
                                                       "Thanks! Can I get a refund?", None]


def test_a_turn_with_an_undefined_variable_is_named_at_its_line(cli, project, fake_server: FakeServer) -> None:
    golden = CHAT_GOLDEN.replace("my name, {{ name }}", "my name, {{ nmae }}")
    root = chat_project(project, fake_server, "openai", golden)
    for command in ("lint", "run"):
        result = cli(command, "--root", root, env=ENV)
        assert result.exit_code == 2
        assert "rendering turn 1 of case 'chat' failed at goldens/chat.yaml:5: variable 'nmae' is undefined" \
            in result.stderr
    assert fake_server.total == 0


@pytest.mark.parametrize(("turns", "message"), [
    ("[]", "goldens/chat.yaml:4: `turns` must be a non-empty list of user messages"),
    ("[{text: hi}]", "goldens/chat.yaml:4: a turn is a user message (text) or a mapping with `user:` text"),
    ("[{user: hi, comparators: [{type: contans, value: x}]}]", "goldens/chat.yaml:4: unknown comparator 'contans'"),
])
def test_bad_turns_are_named(cli, project, fake_server: FakeServer, turns: str, message: str) -> None:
    golden = f"cases:\n  - id: chat\n    input: {{name: Ada}}\n    turns: {turns}\n"
    result = cli("lint", "--root", chat_project(project, fake_server, "openai", golden), env=ENV)
    assert result.exit_code == 2
    assert message in result.stderr, result.stderr


# --- reports show the conversation ------------------------------------------------------------------------

def failing_conversation(cli, project, server: FakeServer) -> Path:
    refund_43 = {"text": "", "tool_calls": [{"name": "refund", "arguments": {"order_id": "43"}}]}
    server.config.responder = tool_conversation(lookup("42"), refund_43)
    return support_project(project, server, "openai")


def test_the_terminal_shows_the_conversation_compactly(cli, project, fake_server: FakeServer) -> None:
    root = failing_conversation(cli, project, fake_server)
    result = cli("run", "--root", root, env=ENV)
    assert result.exit_code == 1
    lines = [line.strip() for line in result.stdout.splitlines()]
    start = lines.index("conversation:")
    assert lines[start + 1:start + 7] == [
        "[1] user: Where is my order 42?\\n",
        '[1] → call lookup_order({"order_id": "42"})',
        '[1] ← mock goldens/support.yaml:5: {"eta": "Dec 8", "status": "shipped"}',
        "[1] assistant: Let me look.",
        '[2] → call refund({"order_id": "43"})',
        "[2] ✗ no mock answers this call: the case failed closed here",
    ]


def test_markdown_and_html_show_the_whole_conversation(cli, project, fake_server: FakeServer) -> None:
    root = failing_conversation(cli, project, fake_server)
    markdown = cli("run", "--root", root, "--format", "markdown", env=ENV).stdout
    assert "conversation (→ call: the model's tool call, ← mock: the mock's answer):" in markdown
    assert "[1] user: Where is my order 42?\n" in markdown and '[1] → call lookup_order({"order_id": "42"})' in markdown
    assert "[2] ✗ no mock answers this call" in markdown
    html = cli("run", "--root", root, "--format", "html", env=ENV).stdout
    assert '[2] \\u2717 no mock answers this call' in html or "[2] ✗ no mock answers this call" in html


# --- diff pairs conversations turn by turn --------------------------------------------------------------------

def test_diff_names_the_turn_where_two_revisions_diverged(cli, tmp_path: Path, fake_server: FakeServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from gitrepo import commit, new_repo

    from promptci import api
    from promptci.compare import divergence

    def model(request: dict[str, Any]) -> Any:
        rounds = tool_rounds(request)
        offers_refunds = "refunds" in request["messages"][0]["content"]
        if not rounds:
            return lookup("42")
        if offers_refunds and len(rounds) == 1:
            return {"text": "", "tool_calls": [{"name": "refund", "arguments": {"order_id": "43"}}]}
        return answer_from_tool(request)

    fake_server.config.responder = model
    monkeypatch.setenv("FAKE_KEY", "sk-test-1234567890")
    root = new_repo(tmp_path / "repo")
    prompt = PROMPT.replace("---\n{{ question }}", "system: Be brief.\n---\n{{ question }}")
    config = (f"models: [fake:m1]\nproviders:\n  fake: {{type: openai, base_url: '{fake_server.openai_base_url}', "
              "api_key_env: FAKE_KEY}\n")
    commit(root, {".gitignore": ".promptci/\n", "promptci.yaml": config, "prompts/support.txt": prompt,
                  "goldens/support.yaml": GOLDEN}, "base")
    commit(root, {"prompts/support.txt": prompt.replace("Be brief.", "Offer refunds.")}, "offer refunds")
    outcome = api.diff(api.DiffOptions(run=api.RunOptions(root=root), before="HEAD~1", after="HEAD"))
    [change] = outcome.comparison.changes
    assert change.transition == "regressed"
    assert change.diverged == 'turn 2: A called no tool, B called refund({"order_id": "43"})'
    assert divergence(change.before[0].transcript, change.before[0].transcript) is None
    shown = cli("diff", "HEAD~1", "HEAD", "--root", root, env=ENV)
    assert shown.exit_code == 1
    assert 'conversations diverged at turn 2: A called no tool, B called refund({"order_id": "43"})' in shown.stdout
    as_json = json.loads(cli("diff", "HEAD~1", "HEAD", "--root", root, "--format", "json", env=ENV).stdout)
    assert as_json["changes"][0]["diverged"].startswith("turn 2: ")


def test_divergence_names_the_first_differing_turn() -> None:
    first = {"turn": 1, "user": "hi", "text": "", "tool_calls": [{"name": "a", "arguments": "{}", "result": "1"}]}
    assert divergence_of([first], [{**first, "user": "hello"}]) == "turn 1: the user message differs"
    other_result = {**first, "tool_calls": [{"name": "a", "arguments": "{}", "result": "2"}]}
    assert divergence_of([first], [other_result]) == "turn 1: the mocks answered differently"
    assert divergence_of([first], [first, {"turn": 2, "text": "ok", "tool_calls": []}]) == \
        "turn 2: only B has it (a text answer)"
    assert divergence_of([first, {"turn": 2, "text": "x"}], [first, {"turn": 2, "text": "y"}]) == \
        "turn 2: the model's text differs"
    assert divergence_of([], []) is None


def divergence_of(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str | None:
    from promptci.compare import divergence

    return divergence(before, after)


# --- python-function tools ----------------------------------------------------------------------------------

TOOLS_PY = """\
def lookup(arguments, state):
    state["lookups"] = state.get("lookups", 0) + 1
    if arguments["order_id"] == "boom":
        raise RuntimeError("the fake order system is down")
    return {"order_id": arguments["order_id"], "status": "shipped", "lookup": state["lookups"]}
"""
PYTHON_GOLDEN = """\
cases:
  - id: twice
    input: {question: "Where is my order 42?"}
    tool_mocks:
      - tool: lookup_order
        python: tools.py:lookup
        times: any
    comparators: [{type: contains, value: shipped}]
"""


def python_tool_project(project, server: FakeServer, golden: str = PYTHON_GOLDEN) -> Path:
    root = support_project(project, server, "openai", golden)
    (root / "tools.py").write_text(TOOLS_PY)
    return root


def test_a_python_tool_keeps_state_for_the_conversation(cli, project, fake_server: FakeServer) -> None:
    fake_server.config.responder = tool_conversation(lookup("42"), lookup("42"), answer_from_tool)
    root = python_tool_project(project, fake_server)
    for _ in range(2):  # a fresh state for every run of the case
        result, document = run_json(cli, root, "--no-cache")
        [case] = document["results"]
        assert result.exit_code == 0, case
        assert case["output"] == 'Your order: {"lookup": 2, "order_id": "42", "status": "shipped"}'
        assert case["transcript"][0]["tool_calls"][0]["result"] == \
            '{"lookup": 1, "order_id": "42", "status": "shipped"}'


def test_a_python_tool_that_raises_is_no_verdict(cli, project, fake_server: FakeServer) -> None:
    fake_server.config.responder = tool_conversation(lookup("boom"), answer_from_tool)
    result, document = run_json(cli, python_tool_project(project, fake_server))
    [case] = document["results"]
    assert case["status"] == "error" and result.exit_code == 3
    assert case["error"].startswith("turn 1: tool mock at goldens/support.yaml:5: tool mock tools.py:lookup raised "
                                    "RuntimeError: the fake order system is down")
    assert fake_server.total == 1


def test_a_python_tool_that_is_not_there_is_named_at_its_line(cli, project, fake_server: FakeServer) -> None:
    golden = PYTHON_GOLDEN.replace("tools.py:lookup", "tools.py:look_up")
    result = cli("lint", "--root", python_tool_project(project, fake_server, golden), env=ENV)
    assert result.exit_code == 2
    assert "goldens/support.yaml:6: tool mock `python`: " in result.stderr and "look_up" in result.stderr


def test_lint_names_a_mock_for_a_tool_the_prompt_does_not_declare(cli, project, fake_server: FakeServer) -> None:
    golden = GOLDEN.replace("      - tool: refund\n", "      - tool: refnd\n")
    result = cli("lint", "--root", support_project(project, fake_server, "openai", golden), env=ENV)
    assert result.exit_code == 2
    assert ("goldens/support.yaml:8: tool mock 'refnd': prompts/support.txt declares no such tool (did you mean "
            "'refund'?) (its tools: lookup_order, refund), so this mock never answers a call [error]") in result.stderr


# --- the conversation keys' reader takes any value without raising ---------------------------------------------

JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=3), max_leaves=12)
MOCKISH = st.fixed_dictionaries({}, optional={"tool": st.sampled_from(["f", "", "a b"]) | JSONISH,
                                              "arguments": JSONISH, "match": st.sampled_from(MATCH_NAMES) | JSONISH,
                                              "returns": JSONISH, "times": JSONISH, "python": JSONISH})


@settings(max_examples=200, deadline=None)
@given(case=st.fixed_dictionaries({}, optional={"tool_mocks": st.lists(MOCKISH | JSONISH, max_size=3) | JSONISH,
                                                "tool_mock_order": JSONISH, "max_turns": JSONISH,
                                                "turns": st.lists(JSONISH, max_size=3) | JSONISH}))
def test_any_conversation_keys_give_a_script_or_problems(case: dict[str, Any]) -> None:
    from promptci.errors import Problem
    from promptci.loading.conversations import read_tool_script, read_user_turns

    problems: list[Problem] = []
    script = read_tool_script(case, "goldens/x.yaml", Path.cwd(), problems)
    turns = read_user_turns(case, "goldens/x.yaml", Path.cwd(), problems)
    assert all(isinstance(p.message, str) and p.message for p in problems)
    if script is not None and not problems:
        assert all(isinstance(mock.tool, str) for mock in script.mocks)
    assert isinstance(turns, tuple)
