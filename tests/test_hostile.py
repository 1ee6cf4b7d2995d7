"""A hostile world (issue 10, and YAML 1.2 from issue 7): one test per kind of bad input that once
crashed, hung, leaked a key or was silently misread. Add a test here for every new kind found."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from calling import complete, fails_with
from fakeserver import KEY_FORMS, ZERO_WIDTH_SPACE, FakeServer, key_form, running_fake_server
from helpers_project import make_project
from test_cli_process import promptci

from promptci import secrets
from promptci.config import ProviderSettings, Settings, load_settings
from promptci.errors import ConfigError, MissingKey, ServerError
from promptci.loading import yamlfile
from promptci.loading.yamlfile import parse_yaml
from promptci.providers.anthropic import anthropic_provider
from promptci.providers.base import ProviderContext
from promptci.providers.openai import openai_provider
from promptci.types import Request

KEY = "sk-hostile-0123456789abcdef"
USER = {"role": "user", "content": "say hi"}


# ---------------------------------------------------------------- YAML 1.2 meaning (issue 7)

@pytest.mark.parametrize("word", ["yes", "Yes", "NO", "on", "Off", "y", "N"])
def test_yaml_11_boolean_words_are_strings(word: str) -> None:
    assert parse_yaml(f"value: {word}\n", "x.yaml") == {"value": word}


@pytest.mark.parametrize(("text", "value"), [("true", True), ("False", False), ("TRUE", True), ("~", None)])
def test_yaml_12_booleans_and_null_stay(text: str, value: Any) -> None:
    assert parse_yaml(f"value: {text}\n", "x.yaml") == {"value": value}


def test_golden_yes_renders_as_written_and_yes_is_an_id(project, cli) -> None:
    root = project({"prompts/p.txt": "{{ body }}",
                    "goldens/p.yaml": "cases:\n  - id: yes\n    input: {body: Yes}\n    expected: 'Yes'\n"})
    result = cli("run", "--root", root, "-m", "echo", "--format", "json")
    assert result.exit_code == 0, result.output
    [case] = json.loads(result.stdout)["results"]
    assert (case["case_id"], case["output"]) == ("yes", "Yes")


def test_prompt_front_matter_and_config_read_yes_as_a_string(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"promptci.yaml": "providers:\n  local:\n    type: openai\n    header_x: on\n"})
    assert load_settings(root).providers["local"].options == {"header_x": "on"}


# ---------------------------------------------------------------- alias bombs

def billion_laughs(indent: str, levels: int = 9, width: int = 9) -> str:
    """Anchors defined before use, each level nine aliases of the one before: 9**9 strings when expanded."""
    lines = [f'{indent}a0: &a0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"{indent}a{level}: &a{level} [{','.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


NODE_VISITS_LIMIT = 10_000  # a 600-byte file has under 100 nodes; a bomb walked without memo has 9**9


def refused_with_little_work_and_memory(run: Any, warm_up: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """run() visits at most NODE_VISITS_LIMIT YAML nodes (counted, not timed: the alias check is linear in the
    file's own nodes, never in what the aliases expand to) and peaks under 100 MB; warm_up() first, so the lazy
    imports of a first command are not counted."""
    warm_up()
    visits = [0]

    def counted_children(node: Any) -> Any:
        visits[0] += 1
        if visits[0] > NODE_VISITS_LIMIT:
            raise AssertionError("the alias check walks the expansion")
        return children(node)

    children = yamlfile._children
    monkeypatch.setattr(yamlfile, "_children", counted_children)
    tracemalloc.start()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0 < visits[0] <= NODE_VISITS_LIMIT, visits
    assert peak < 100 * 2**20
    return result


def test_alias_bomb_golden_is_refused_fast_with_its_line(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = "cases:\n  - id: boom\n    expected: x\n    input:\n" + billion_laughs("      ")
    assert len(bomb.encode()) < 600
    root = make_project(tmp_path / "bomb", {"prompts/p.txt": "{{ a0 }}", "goldens/p.yaml": bomb})
    small = "cases:\n  - id: boom\n    expected: x\n    input:\n" + billion_laughs("      ", levels=3)
    harmless = make_project(tmp_path / "ok", {"prompts/p.txt": "{{ a0 }}", "goldens/p.yaml": small})
    result = refused_with_little_work_and_memory(lambda: cli("lint", "--root", root),
                                                 lambda: cli("lint", "--root", harmless), monkeypatch)
    assert result.exit_code == 2, result.output
    assert "goldens/p.yaml:11: invalid YAML: aliases expand" in result.output


def test_alias_bomb_config_is_refused_fast(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    config = "models: [echo]\nproviders:\n  local:\n    type: openai\n    headers:\n" + billion_laughs("      ")
    assert len(config.encode()) < 600
    root = make_project(tmp_path / "bomb", {"promptci.yaml": config, "prompts/p.txt": "hi"})
    small = "models: [echo]\nproviders:\n  local:\n    type: openai\n    headers:\n" + billion_laughs("      ", 3)
    harmless = make_project(tmp_path / "ok", {"promptci.yaml": small, "prompts/p.txt": "hi"})
    result = refused_with_little_work_and_memory(lambda: cli("run", "--root", root),
                                                 lambda: cli("run", "--root", harmless), monkeypatch)
    assert result.exit_code == 2, result.output
    assert "promptci.yaml:12: invalid YAML: aliases expand" in result.output


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="contains it"):
        parse_yaml("a: &a [*a]\n", "x.yaml")


def test_a_few_honest_aliases_still_load() -> None:
    data = parse_yaml("base: &b {model: m, n: 1}\nx: *b\ny: [*b, *b]\n", "x.yaml")
    assert data["y"] == [{"model": "m", "n": 1}] * 2


# ---------------------------------------------------------------- secrets

def redaction_forms(key: str) -> list[str]:
    return [key, repr(f"Bearer {key}\r".encode()), quote(key, safe=""), base64.b64encode(key.encode()).decode(),
            base64.b64encode(f"user:{key}".encode()).decode(), base64.b64encode(f"ab:{key}".encode()).decode()]


@pytest.mark.parametrize("form_index", range(6))
def test_every_form_of_a_key_is_redacted(form_index: int) -> None:
    key = "sk-a/b+c=d" + "x" * 20
    text = f"failed: {redaction_forms(key)[form_index]} end"
    cleaned = secrets.redact(text, [("[redacted]", key)])
    assert "[redacted]" in cleaned
    assert "xxxxxxxxxx" not in cleaned and "eHh4eHh4eHh4" not in cleaned


@pytest.mark.parametrize("form", KEY_FORMS)
def test_a_disguised_key_is_redacted_with_its_surroundings_kept(form: str) -> None:
    text = f"before {key_form(KEY, form)} after"
    assert secrets.redact(text, [("[redacted]", KEY)]) == "before [redacted] after"


def test_a_key_cut_anywhere_past_half_its_length_is_redacted_and_shorter_pieces_are_not() -> None:
    for kept in range(len(KEY) // 2 + 1, len(KEY) + 1):
        assert secrets.redact(f"key {KEY[:kept]}.", [("[r]", KEY)]) == "key [r].", kept
        assert secrets.redact(f"key {KEY[-kept:]}.", [("[r]", KEY)]) == "key [r].", kept
    half = KEY[: len(KEY) // 2]  # "sk-hostile-01": a name prefix and a little, no more than half the key
    assert secrets.redact(f"key {half}.", [("[r]", KEY)]) == f"key {half}."


@pytest.mark.parametrize("text", ["SK-", "sk-hostile", "the value is 0123456789 and ABCDEF", "736b2d686f73",
                                  "s\u200bk\u200b-", "Hostile takeover, 0123456789ab in hex"])
def test_common_short_pieces_of_a_key_are_not_redacted(text: str) -> None:
    assert secrets.redact(text, [("[r]", KEY)]) == text


def test_a_short_key_is_only_redacted_whole() -> None:
    key = "abcd1234XY"  # shorter than the cut-short minimum
    assert secrets.redact(f"[{key}] [{key.upper()}] [{key[:-1]}]", [("[r]", key)]) == f"[[r]] [[r]] [{key[:-1]}]"


def test_redaction_keeps_other_non_ascii_text_and_maps_spans_back() -> None:
    text = f"\u00e9t\u00e9 \u200b {ZERO_WIDTH_SPACE.join(KEY.upper())} \u00fc\u200bber"
    assert secrets.redact(text, [("[r]", KEY)]) == "\u00e9t\u00e9 \u200b [r] \u00fc\u200bber"


def test_cli_redact_uses_every_form(monkeypatch: pytest.MonkeyPatch) -> None:
    from promptci.cli.edge import redact

    monkeypatch.setenv("OPENAI_API_KEY", KEY + "\r\n")
    assert KEY not in redact(f"Illegal header value {('Bearer ' + KEY + chr(13)).encode()!r}")
    assert base64.b64encode(f"u:{KEY}".encode()).decode() not in redact(
        "basic " + base64.b64encode(f"u:{KEY}".encode()).decode())


def openai_project(root_parent: Path, server: FakeServer, extra: str = "") -> Path:
    config = f"""\
        models: ['local:m']
        providers:
          local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: LOCAL_KEY}}
        {extra}"""
    return make_project(root_parent / "project", {"promptci.yaml": config, "prompts/p.txt": "hi {{ n }}",
                                                   "goldens/p.yaml": "cases:\n  - id: c1\n    input: {n: 1}\n"
                                                                     "    expected: hi 1\n"})


@pytest.mark.parametrize("padding", ["\r", "\n", "\r\n", "  ", "\t\n"])
def test_a_key_with_surrounding_whitespace_is_stripped_and_works(tmp_path: Path, cli, fake_server: FakeServer,
                                                                  padding: str) -> None:
    root = openai_project(tmp_path, fake_server)
    result = cli("run", "--root", root, env={"LOCAL_KEY": padding + KEY + padding})
    assert result.exit_code == 0, result.output
    assert fake_server.requests[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("key", ["sk-caf\u00e9-123456789", "\u201csk-quoted-123456789\u201d", "sk-two words-12345"])
def test_a_key_no_header_can_carry_is_exit_2_naming_the_variable(tmp_path: Path, cli, fake_server: FakeServer,
                                                                  key: str) -> None:
    root = openai_project(tmp_path, fake_server)
    result = cli("run", "--root", root, env={"LOCAL_KEY": key})
    assert result.exit_code == 2, result.output
    assert "LOCAL_KEY" in result.stderr and "Traceback" not in result.output
    assert key not in result.output and fake_server.total == 0


def test_read_key_never_repeats_the_value() -> None:
    with pytest.raises(MissingKey) as caught:
        secrets.read_key("MY_KEY", {"MY_KEY": "sk-\u00e9\u00e9\u00e9-secret-value"})
    assert "secret-value" not in str(caught.value)


def every_text_of(root: Path, stdout: str, stderr: str) -> str:
    parts = [stdout, stderr]
    for path in root.rglob("*"):  # reports, recordings, the state folder's files (the db is read below)
        if path.is_file() and not path.name.startswith("promptci.db"):
            parts.append(path.read_text(errors="replace"))
    with sqlite3.connect(root / ".promptci" / "promptci.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f"SELECT * FROM {table}"):  # table names from sqlite_master
                parts.extend(str(value) for value in row)
    return "\n".join(parts)


def test_a_server_echoing_the_key_never_gets_it_stored_or_shown(tmp_path: Path, cli,
                                                                 fake_server: FakeServer) -> None:
    fake_server.config.echo_key = True
    root = openai_project(tmp_path, fake_server)
    result = cli("run", "--root", root, "--record", "-v", "-o", f"json={root / 'r.json'}",
                 "-o", f"junit={root / 'r.xml'}", "-o", f"markdown={root / 'r.md'}",
                 "-o", f"github={root / 'r.github'}", env={"LOCAL_KEY": KEY + "\n"})
    assert result.exit_code == 1, result.output  # the answer differs from expected: a real regression
    assert "[redacted]" in result.stdout
    everything = every_text_of(root, result.stdout, result.stderr)
    assert "[redacted]" in (root / "r.json").read_text()
    assert list((root / "recordings").glob("*.jsonl"))
    for form in secrets.secret_forms(KEY):
        assert form not in everything


@pytest.mark.parametrize("form", KEY_FORMS)
def test_a_server_echoing_the_key_in_a_disguise_never_gets_it_stored_or_shown(tmp_path: Path, cli, form: str,
                                                                               fake_server: FakeServer) -> None:
    """Issue 24: cut short, upper-cased, hex-encoded, or with zero-width characters between its characters."""
    fake_server.config.echo_key, fake_server.config.echo_key_form = True, form
    root = openai_project(tmp_path, fake_server)
    result = cli("run", "--root", root, "--record", "-v", "-o", f"json={root / 'r.json'}",
                 "-o", f"junit={root / 'r.xml'}", "-o", f"markdown={root / 'r.md'}",
                 "-o", f"html={root / 'r.html'}", env={"LOCAL_KEY": KEY})
    assert result.exit_code == 1, result.output
    everything = every_text_of(root, result.stdout, result.stderr)
    assert "[redacted]" in (root / "r.json").read_text()
    assert key_form(KEY, form) not in everything
    plain = everything.replace(ZERO_WIDTH_SPACE, "").lower()
    assert KEY[:-3].lower() not in plain and KEY[:-3].encode().hex() not in plain


# ---------------------------------------------------------------- providers that break the rules

def openai_chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    body = {"id": "x", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def anthropic_events(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


ANTHROPIC_START = ("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
    "stop_reason": None, "usage": {"input_tokens": 3, "output_tokens": 1}}})
ANTHROPIC_END = (("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                    "usage": {"output_tokens": 2}}),
                 ("message_stop", {"type": "message_stop"}))


def anthropic_text(text: Any) -> tuple[str, dict[str, Any]]:
    return ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": text}})


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOCAL_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with running_fake_server() as server:
        yield server


def ask_openai(server: FakeServer, body: bytes, content_type: str = "text/event-stream") -> Any:
    server.config.raw_body, server.config.raw_content_type = body, content_type
    config = ProviderSettings("local", "openai", base_url=server.openai_base_url, api_key_env="LOCAL_KEY")
    provider = openai_provider(config, ProviderContext(Settings(root=Path("."), timeout_s=5), Path(".")))
    return provider, Request("local:m", (USER,), {})


def ask_anthropic(server: FakeServer, body: bytes, content_type: str = "text/event-stream") -> Any:
    server.config.raw_body, server.config.raw_content_type = body, content_type
    config = ProviderSettings("anthropic", "anthropic", base_url=server.anthropic_base_url)
    provider = anthropic_provider(config, ProviderContext(Settings(root=Path("."), timeout_s=5), Path(".")))
    return provider, Request("anthropic:claude-test-1", (USER,), {})


def test_an_emoji_split_into_surrogate_escapes_is_joined(hostile: FakeServer) -> None:
    body = (b'data: {"choices":[{"index":0,"delta":{"content":"hi \\ud83d"}}]}\n\n'
            b'data: {"choices":[{"index":0,"delta":{"content":"\\ude00!"},"finish_reason":"stop"}]}\n\n'
            b"data: [DONE]\n\n")
    completion = complete(*ask_openai(hostile, body))
    assert completion.text == "hi \U0001F600!"
    assert "".join(completion.chunks).encode("utf-8") == "hi \U0001F600!".encode()


def test_a_lone_surrogate_is_a_named_error(hostile: FakeServer) -> None:
    body = openai_chunk({"content": "x"}) + b'data: {"choices":[{"delta":{"content":"\\ud83d"},' \
        b'"finish_reason":"stop"}]}\n\n'
    error = fails_with(*ask_openai(hostile, body))
    assert isinstance(error, ServerError) and "surrogate" in error.message


def test_delta_content_that_is_a_number_is_a_named_error(hostile: FakeServer) -> None:
    error = fails_with(*ask_openai(hostile, openai_chunk({"content": 5}, "stop")))
    assert isinstance(error, ServerError) and "not a string" in error.message


def test_a_chunk_of_the_wrong_shape_is_a_named_error(hostile: FakeServer) -> None:
    error = fails_with(*ask_openai(hostile, b'data: {"choices": 5}\n\n' + openai_chunk({}, "stop")))
    assert isinstance(error, ServerError) and "shape" in error.message


def test_absurd_usage_is_refused_before_it_reaches_sqlite(hostile: FakeServer) -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 10**30, "total_tokens": 10**30}
    body = openai_chunk({"content": "hi"}, "stop") + openai_chunk(usage=usage) + b"data: [DONE]\n\n"
    error = fails_with(*ask_openai(hostile, body))
    assert isinstance(error, ServerError) and "completion_tokens" in error.message


def test_absurd_usage_through_a_run_is_a_case_error_not_a_crash(tmp_path: Path, cli, hostile: FakeServer) -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 10**30}
    hostile.config.raw_body = openai_chunk({"content": "hi 1"}, "stop") + openai_chunk(usage=usage)
    root = openai_project(tmp_path, hostile, "retries: 0")
    result = cli("run", "--root", root, env={"LOCAL_KEY": KEY})
    assert result.exit_code == 3, result.output
    assert "completion_tokens" in result.output and "Traceback" not in result.output


def test_anthropic_absurd_usage_is_refused(hostile: FakeServer) -> None:
    start = ("message_start", {**ANTHROPIC_START[1], "message": {**ANTHROPIC_START[1]["message"],
                                                                 "usage": {"input_tokens": 10**30}}})
    error = fails_with(*ask_anthropic(hostile, anthropic_events(start, anthropic_text("hi"), *ANTHROPIC_END)))
    assert isinstance(error, ServerError) and "input_tokens" in error.message


def test_anthropic_text_that_is_a_number_is_a_named_error(hostile: FakeServer) -> None:
    error = fails_with(*ask_anthropic(hostile, anthropic_events(ANTHROPIC_START, anthropic_text(5), *ANTHROPIC_END)))
    assert isinstance(error, ServerError) and "not a string" in error.message


def test_anthropic_non_utf8_bytes_are_a_named_error(hostile: FakeServer) -> None:
    body = anthropic_events(ANTHROPIC_START) + b'event: content_block_delta\ndata: {"type": "content_block_delta", ' \
        b'"index": 0, "delta": {"type": "text_delta", "text": "\xff\xfe"}}\n\n' + anthropic_events(*ANTHROPIC_END)
    error = fails_with(*ask_anthropic(hostile, body))
    assert isinstance(error, ServerError) and "malformed" in error.message


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "hi"}}]}'),
    ("text/html; charset=utf-8", b"<html><body>Please log in</body></html>"),
])
@pytest.mark.parametrize("ask", [ask_openai, ask_anthropic])
def test_a_plain_200_where_a_stream_was_asked_says_what_came_back(hostile: FakeServer, ask: Any,
                                                                  content_type: str, body: bytes) -> None:
    error = fails_with(*ask(hostile, body, content_type))
    assert isinstance(error, ServerError)
    assert "instead of an event stream" in error.message and content_type in error.message
    assert body[:20].decode() in error.message and "cut" not in error.message


# ---------------------------------------------------------------- user code that misbehaves

def python_project(root: Path, app: str, extra: str = "", comparators: str = "") -> Path:
    config = f"models: ['python:app:answer']\n{extra}"
    golden = f"cases:\n  - id: c1\n    input: {{n: 1}}\n    expected: hi 1\n{comparators}"
    return make_project(root, {"promptci.yaml": config, "app.py": app, "prompts/p.txt": "hi {{ n }}",
                               "goldens/p.yaml": golden})


def test_a_stuck_sync_provider_does_not_hold_the_process(tmp_path: Path) -> None:
    app = "import threading\n\ndef answer(messages, params):\n    threading.Event().wait()\n"  # stuck for good
    root = python_project(tmp_path / "p", app, "timeout_s: 1\nretries: 0\n")
    # the process ends (or the subprocess timeout, a bound on a hang, fails the test) though the thread never does
    done = subprocess.run([*promptci(), "run", "--root", str(root)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "c1" in done.stdout + done.stderr


def test_sys_exit_in_a_provider_is_that_cases_error(tmp_path: Path, cli) -> None:
    root = python_project(tmp_path / "p", "import sys\n\ndef answer(messages, params):\n    sys.exit(7)\n",
                          "retries: 0\n")
    result = cli("run", "--root", root)
    assert result.exit_code == 3, result.output
    assert "sys.exit(7)" in result.output


def test_sys_exit_in_an_async_provider_is_that_cases_error(tmp_path: Path, cli) -> None:
    root = python_project(tmp_path / "p", "import sys\n\nasync def answer(messages, params):\n    sys.exit(5)\n",
                          "retries: 0\n")
    result = cli("run", "--root", root)
    assert result.exit_code == 3, result.output
    assert "sys.exit(5)" in result.output


def test_sys_exit_at_import_is_a_load_error_naming_the_module(tmp_path: Path, cli) -> None:
    root = python_project(tmp_path / "p", "import sys\nsys.exit(9)\n")
    result = cli("run", "--root", root)
    assert result.exit_code == 2, result.output
    assert "sys.exit(9)" in result.output and "app" in result.output


def test_sys_exit_in_a_comparator_is_that_cases_error(tmp_path: Path, cli) -> None:
    root = python_project(tmp_path / "p", "def answer(messages, params):\n    return 'hi 1'\n",
                          comparators="    comparators: [{type: python, function: 'checks.py:check'}]\n")
    (root / "checks.py").write_text("import sys\n\ndef check(output):\n    sys.exit(4)\n")
    result = cli("run", "--root", root, "-v")
    assert result.exit_code == 3, result.output
    assert "check called sys.exit(4)" in result.output


def test_an_exception_in_a_python_comparator_is_an_error_result_not_a_failure(tmp_path: Path, cli) -> None:
    root = python_project(tmp_path / "p", "def answer(messages, params):\n    return 'hi 1'\n",
                          comparators="    comparators: [{type: python, function: 'checks.py:check'}]\n")
    (root / "checks.py").write_text("def check(output):\n    raise ValueError('cannot judge ' + output)\n")
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 3, result.output
    [case] = json.loads(result.stdout)["results"]
    assert case["status"] == "error"
    error = case["error"]
    assert error.startswith("comparator python (goldens/p.yaml:5) failed: check raised ValueError: cannot judge hi 1")
    assert "Traceback" in error and "raise ValueError('cannot judge ' + output)" in error


def test_sys_exit_when_a_comparator_module_loads_is_a_load_error(tmp_path: Path, cli) -> None:
    root = python_project(tmp_path / "p", "def answer(messages, params):\n    return 'hi 1'\n",
                          comparators="    comparators: [{type: python, function: 'checks.py:check'}]\n")
    (root / "checks.py").write_text("import sys\nsys.exit(6)\n")
    result = cli("run", "--root", root)
    assert result.exit_code == 2, result.output
    assert "sys.exit(6)" in result.output


@pytest.mark.parametrize("how", ["console script", "python -m"])
def test_a_checks_file_imports_a_module_beside_it_the_same_way(tmp_path: Path, how: str) -> None:
    root = python_project(tmp_path / "p", "def answer(messages, params):\n    return 'hi 1'\n",
                          comparators="    comparators: [{type: python, function: 'checks/main.py:check'}]\n")
    (root / "checks").mkdir()
    (root / "checks" / "helper_beside.py").write_text("EXPECTED = 'hi 1'\n")
    (root / "checks" / "main.py").write_text("import helper_beside\n\n"
                                             "def check(output):\n    return output == helper_beside.EXPECTED\n")
    command = promptci() if how == "console script" else [sys.executable, "-m", "promptci"]
    done = subprocess.run([*command, "run", "--root", str(root)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- hostile files

def test_a_golden_symlinked_from_outside_the_project_is_refused(tmp_path: Path, cli) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("cases:\n  - id: leak\n    input: {}\n    expected: x\n")
    root = make_project(tmp_path / "p", {"prompts/p.txt": "x"})
    os.symlink(outside, root / "goldens" / "p.yaml")
    result = cli("run", "--root", root, "-m", "echo")
    assert result.exit_code == 2, result.output
    assert "outside the project" in result.output


@pytest.mark.parametrize(("line", "needle"), [
    ("timeout_s: .nan", "`timeout_s`"), ("timeout_s: .inf", "`timeout_s`"),
    ("concurrency: 100000", "between 1 and 512"), ("retries: 1000000", "`retries`"),
])
def test_absurd_settings_are_exit_2_with_the_line(tmp_path: Path, cli, line: str, needle: str) -> None:
    root = make_project(tmp_path, {"promptci.yaml": f"models: [echo]\n{line}\n", "prompts/p.txt": "x"})
    result = cli("run", "--root", root)
    assert result.exit_code == 2, result.output
    assert "promptci.yaml:2" in result.output and needle in result.output


def test_cost_since_a_span_before_year_one_is_exit_2(demo_project: Path, cli) -> None:
    result = cli("cost", "--root", demo_project, "--since", "99999999999999d")
    assert result.exit_code == 2, result.output
    assert "--since" in result.output and "Traceback" not in result.output


def test_a_config_that_is_a_directory_is_named(tmp_path: Path, cli) -> None:
    root = make_project(tmp_path, {"prompts/p.txt": "x"})
    (root / "promptci.yaml").mkdir()
    result = cli("run", "--root", root, "-m", "echo")
    assert result.exit_code == 2, result.output
    assert "promptci.yaml" in result.output and "directory" in result.output


def test_a_config_that_is_a_fifo_is_named_without_hanging(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/p.txt": "x"})
    os.mkfifo(root / "promptci.yaml")
    done = subprocess.run([*promptci(), "run", "--root", str(root), "-m", "echo"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "FIFO" in done.stderr


def test_a_golden_that_is_a_fifo_is_named_without_hanging(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/p.txt": "x"})
    os.mkfifo(root / "goldens" / "p.yaml")
    done = subprocess.run([*promptci(), "lint", "--root", str(root)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "goldens/p.yaml" in done.stdout + done.stderr and "FIFO" in done.stdout + done.stderr



def test_an_anthropic_stream_with_a_number_for_text_ends_cleanly_in_a_real_run(tmp_path: Path,
                                                                               hostile: FakeServer) -> None:
    """Issue 24: the right verdict, and no `aclose()` traceback from the stream left open behind it."""
    hostile.config.raw_body = anthropic_events(ANTHROPIC_START, anthropic_text(5), *ANTHROPIC_END)
    config = f"""\
models: ['anthropic:claude-test-1']
retries: 0
providers:
  anthropic: {{type: anthropic, base_url: '{hostile.anthropic_base_url}'}}
"""
    root = make_project(tmp_path / "project", {"promptci.yaml": config, "prompts/p.txt": "hi {{ n }}",
                                               "goldens/p.yaml": "cases:\n  - id: c1\n    input: {n: 1}\n"
                                                                 "    expected: hi 1\n"})
    done = subprocess.run([*promptci(), "run", "--root", str(root)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ANTHROPIC_API_KEY": KEY})
    assert done.returncode == 3, done.stdout + done.stderr
    assert "not a string" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "aclose" not in done.stderr, done.stderr
