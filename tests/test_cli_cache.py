"""The response cache end to end through `promptci run` against the fake server: hits cost no request and
count the cost they saved; --no-cache, params and prompt text miss; concurrency, timeout and retries do not."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server

KEY = "sk-test-SECRET-1234567890"
PROMPT = "---\nsystem: Be brief.\nparams: {temperature: 0}\n---\nHello {{ name }}!\n"
GOLDEN = "".join(f"  - id: {n.lower()}\n    input: {{name: {n}}}\n    expected: Hello {n}!\n"
                 for n in ("Ada", "Bob", "Cy"))
# USD per million tokens; the fake server counts 4 words in and 2 out per case
PRICE_PER_CASE = (4 * 1.0 + 2 * 2.0) / 1_000_000


def config(server: FakeServer, timeout_s: float = 5, retries: int = 2) -> str:
    return (
        f"timeout_s: {timeout_s}\nretries: {retries}\nproviders:\n"
        f"  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: FAKE_OPENAI_KEY}}\n"
        f"  claude: {{type: anthropic, base_url: '{server.anthropic_base_url}', api_key_env: FAKE_ANTHROPIC_KEY}}\n"
        "pricing:\n  local:m: {input: 1.0, output: 2.0}\n  claude:m: {input: 1.0, output: 2.0}\n"
    )


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FAKE_OPENAI_KEY", KEY)
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", KEY)
    with running_fake_server(latency_s=0.01, chunks=2) as fake:
        yield fake


@pytest.fixture
def root(project, server: FakeServer) -> Path:
    return project({"prompts/greet.txt": PROMPT, "goldens/greet.yaml": "cases:\n" + GOLDEN,
                    "promptci.yaml": config(server)})


def run_json(cli, root: Path, *args: str, model: str = "local:m") -> dict[str, Any]:
    result = cli("run", "--root", root, "-m", model, "--format", "json", *args)
    assert result.exit_code in (0, 1, 3), result.output
    return json.loads(result.stdout)


def cached_flags(document: dict[str, Any]) -> list[bool]:
    return [r["cached"] for r in document["results"]]


@pytest.mark.parametrize("model", ["local:m", "claude:m"])
def test_a_second_identical_run_sends_nothing_and_counts_the_saved_cost(cli, root: Path, server: FakeServer,
                                                                        model: str) -> None:
    first = run_json(cli, root, model=model)
    assert server.total == 3 and cached_flags(first) == [False] * 3
    assert first["summary"]["cost_usd"] == pytest.approx(3 * PRICE_PER_CASE)
    second = run_json(cli, root, model=model)
    assert server.total == 3, "a cache hit must not reach the server"
    assert cached_flags(second) == [True] * 3
    assert [r["output"] for r in second["results"]] == [r["output"] for r in first["results"]]
    assert [r["status"] for r in second["results"]] == ["passed"] * 3
    assert all(r["resolved_model"] == "m-2024-07-18" and r["cost_usd"] == 0 for r in second["results"])
    assert [r["saved_usd"] for r in second["results"]] == pytest.approx([PRICE_PER_CASE] * 3)
    summary = second["summary"]
    assert summary["cached"] == 3 and summary["cost_usd"] == 0
    assert summary["saved_usd"] == pytest.approx(3 * PRICE_PER_CASE) and summary["saved_usd"] > 0
    with sqlite3.connect(root / ".promptci" / "promptci.db") as db:
        rows = db.execute("SELECT status, saved_usd FROM ledger WHERE run_id = ?", (second["run_id"],)).fetchall()
    assert [status for status, _ in rows] == ["cached"] * 3 and all(saved > 0 for _, saved in rows)


def test_the_table_marks_cached_results(cli, root: Path, server: FakeServer) -> None:
    run_json(cli, root)
    result = cli("run", "--root", root, "-m", "local:m", "-v")
    assert result.exit_code == 0, result.output
    assert result.output.count("(cached)") == 3 and server.total == 3


def test_no_cache_sends_again(cli, root: Path, server: FakeServer) -> None:
    run_json(cli, root)
    fresh = run_json(cli, root, "--no-cache")
    assert server.total == 6 and cached_flags(fresh) == [False] * 3
    assert fresh["summary"]["saved_usd"] == 0 and fresh["summary"]["cost_usd"] > 0


def test_a_param_or_the_prompt_text_changes_the_key(cli, root: Path, server: FakeServer) -> None:
    run_json(cli, root)
    prompt = root / "prompts" / "greet.txt"
    prompt.write_text(PROMPT.replace("temperature: 0", "temperature: 0.5"))
    warmer = run_json(cli, root)
    assert server.total == 6 and cached_flags(warmer) == [False] * 3
    assert server.requests[-1].body["temperature"] == 0.5
    prompt.write_text(PROMPT.replace("temperature: 0", "temperature: 0.5").replace("Hello", "Hi"))
    reworded = run_json(cli, root)
    assert server.total == 9 and cached_flags(reworded) == [False] * 3
    prompt.write_text(PROMPT)
    assert cached_flags(run_json(cli, root)) == [True] * 3 and server.total == 9


def test_concurrency_timeout_and_retries_do_not_change_the_key(cli, root: Path, server: FakeServer) -> None:
    run_json(cli, root, "-j", "1")
    assert cached_flags(run_json(cli, root, "-j", "16")) == [True] * 3
    (root / "promptci.yaml").write_text(config(server, timeout_s=33, retries=0) + "concurrency: 2\n")
    assert cached_flags(run_json(cli, root)) == [True] * 3
    assert server.total == 3


def test_a_case_that_failed_to_get_an_answer_is_sent_again_and_the_rest_are_free(cli, root: Path,
                                                                               server: FakeServer) -> None:
    server.script("500", "500", "500")  # retries: 2 -> the first case runs out of attempts
    first = run_json(cli, root, "-j", "1")
    assert [r["status"] for r in first["results"]] == ["error", "passed", "passed"]
    assert server.total == 5
    second = run_json(cli, root, "-j", "1")
    assert server.total == 6, "only the case without an answer is sent again"
    assert cached_flags(second) == [False, True, True]
    assert [r["status"] for r in second["results"]] == ["passed"] * 3


def test_the_same_request_to_another_endpoint_is_not_a_hit(cli, root: Path, server: FakeServer) -> None:
    run_json(cli, root)
    with running_fake_server() as other:
        (root / "promptci.yaml").write_text(config(server).replace(server.openai_base_url, other.openai_base_url))
        moved = run_json(cli, root)
        assert other.total == 3 and cached_flags(moved) == [False] * 3
    assert server.total == 3
