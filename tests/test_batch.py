"""Batch mode (`run --batch`, issue 22) end to end: the real openai and anthropic SDKs talk to the fake server's
Files/Batch and Message Batches APIs; answers land in the cache under the live key, the ledger at batch prices."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server
from olddb import database_at_schema

from promptci.batch import chunks
from promptci.config import Price
from promptci.cost.pricing import BATCH_DISCOUNT, batch_cost_usd, cost_usd
from promptci.types import Usage

OPENAI_KEY = "sk-test-SECRET-1234567890"
ANTHROPIC_KEY = "sk-ant-test-SECRET-0987654321"
PROMPT = "---\nsystem: Be brief.\n---\nHello {{ name }}!\n"
NAMES = ("Ada", "Bob", "Cy")
OPENAI_MODEL = "local:gpt-4o-mini"  # priced in config() (USD per million tokens)
ANTHROPIC_MODEL = "claude:claude-haiku-4-5"
CHAT, MESSAGES = "/v1/chat/completions", "/v1/messages"


def golden(names: tuple[str, ...] = NAMES, comparators: str = "") -> str:
    lines = ["cases:"]
    for name in names:
        lines += [f"  - id: {name.lower()}", f"    input: {{name: {name}}}", f"    expected: Hello {name}!"]
        if comparators:
            lines.append(comparators)
    return "\n".join(lines) + "\n"


def config(server: FakeServer) -> str:
    return (
        "timeout_s: 5\nretries: 0\nproviders:\n"
        f"  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: FAKE_OPENAI_KEY}}\n"
        f"  claude: {{type: anthropic, base_url: '{server.anthropic_base_url}', api_key_env: FAKE_ANTHROPIC_KEY}}\n"
        f"pricing:\n  '{OPENAI_MODEL}': {{input: 0.15, output: 0.60}}\n"
        f"  '{ANTHROPIC_MODEL}': {{input: 1.00, output: 5.00}}\n"
    )


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FAKE_OPENAI_KEY", OPENAI_KEY)
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", ANTHROPIC_KEY)
    with running_fake_server() as fake:
        yield fake


@pytest.fixture
def root(project, server: FakeServer) -> Path:
    return project({"prompts/greet.txt": PROMPT, "goldens/greet.yaml": golden(), "promptci.yaml": config(server)})


def run(cli, root: Path, *args: str, model: str = OPENAI_MODEL) -> tuple[Any, dict[str, Any]]:
    result = cli("run", "--root", root, "-m", model, "--format", "json", *args)
    assert "Traceback" not in result.output, result.output
    return result, (json.loads(result.stdout) if result.stdout.strip() else {})


def db_rows(root: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(root / ".promptci" / "promptci.db") as connection:
        return connection.execute(sql).fetchall()


def model_requests(server: FakeServer) -> int:
    return server.counts[CHAT] + server.counts[MESSAGES]


# the fake server's batch APIs, through the real SDKs


def test_fake_openai_batch_walks_its_states_and_writes_output_and_error_files() -> None:
    import openai

    with running_fake_server(batch_polls=3, batch_error_lines=(1,)) as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0)
        lines = [{"custom_id": f"c{i}", "method": "POST", "url": CHAT,
                  "body": {"model": "m", "messages": [{"role": "user", "content": f"hello {i}"}]}} for i in range(3)]
        upload = client.files.create(file=("b.jsonl", io.BytesIO(b"".join(json.dumps(line).encode() + b"\n"
                                                                           for line in lines))), purpose="batch")
        batch = client.batches.create(input_file_id=upload.id, endpoint=CHAT, completion_window="24h")
        states = [batch.status] + [client.batches.retrieve(batch.id).status for _ in range(4)]
        assert states == ["validating", "validating", "in_progress", "finalizing", "completed"]
        done = client.batches.retrieve(batch.id)
        assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
        output = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
        errors = [json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
        assert [o["custom_id"] for o in output] == ["c0", "c2"]
        assert output[0]["response"]["body"]["choices"][0]["message"]["content"] == "hello 0"
        assert errors[0]["custom_id"] == "c1" and errors[0]["response"]["status_code"] == 500
        assert fake.batches.created == 1 and fake.total == 0  # no chat request was made


@pytest.mark.parametrize(("outcome", "states"), [("expired", ["expired"]), ("failed", ["failed"])])
def test_fake_openai_batch_can_expire_or_fail(outcome: str, states: list[str]) -> None:
    import openai

    with running_fake_server(batch_outcome=outcome) as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0)
        lines = [{"custom_id": f"c{i}", "method": "POST", "url": CHAT,
                  "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}} for i in range(4)]
        upload = client.files.create(file=("b.jsonl", b"".join(json.dumps(li).encode() + b"\n" for li in lines)),
                                     purpose="batch")
        batch = client.batches.retrieve(client.batches.create(input_file_id=upload.id, endpoint=CHAT,
                                                              completion_window="24h").id)
        assert [batch.status] == states
        if outcome == "expired":
            errors = client.files.content(batch.error_file_id).text.splitlines()
            assert [json.loads(e)["error"]["code"] for e in errors] == ["batch_expired"] * 2
        else:
            assert batch.errors.data[0].message == "injected failure" and batch.output_file_id is None


def test_fake_anthropic_message_batch_processing_status_and_results() -> None:
    import anthropic

    with running_fake_server(batch_polls=1, batch_error_lines=(0,)) as fake:
        client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="k", max_retries=0)
        requests = [{"custom_id": f"c{i}", "params": {"model": "m", "max_tokens": 10,
                                                      "messages": [{"role": "user", "content": f"hi {i}"}]}}
                    for i in range(2)]
        batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        assert batch.processing_status == "in_progress" and batch.request_counts.processing == 2
        assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
        ended = client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended" and (ended.request_counts.succeeded,
                                                       ended.request_counts.errored) == (1, 1)
        results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
        assert results["c0"].type == "errored" and results["c1"].type == "succeeded"
        assert results["c1"].message.content[0].text == "hi 1"  # type: ignore[union-attr]
        assert fake.batches.created == 1


# pricing and splitting


def test_batch_price_is_half_the_live_price() -> None:
    usage, price = Usage(1_000_000, 1_000_000, 400_000), Price(2.0, 8.0, 0.5)
    live = cost_usd(usage, price)
    assert live is not None and batch_cost_usd(usage, price) == pytest.approx(live * 0.5) and BATCH_DISCOUNT == 0.5
    assert batch_cost_usd(usage, None) is None and batch_cost_usd(None, price) is None


def test_requests_are_split_by_the_providers_line_and_byte_limits() -> None:
    entries: list[Any] = [(index, {"custom_id": f"c{index}", "body": "x" * 10}) for index in range(7)]
    assert [len(part) for part in chunks(entries, max_lines=3, max_bytes=10_000)] == [3, 3, 1]
    size = len(json.dumps(entries[0][1]).encode()) + 1
    assert [len(part) for part in chunks(entries, max_lines=100, max_bytes=2 * size)] == [2, 2, 2, 1]
    assert [len(part) for part in chunks(entries, max_lines=100, max_bytes=1)] == [1] * 7  # one line always goes


# run --batch end to end


def test_submit_then_rerun_collects_without_a_second_batch_into_cache_and_ledger_at_half_price(
        cli, root: Path, server: FakeServer) -> None:
    server.config.batch_polls = 1
    first, _ = run(cli, root, "--batch")
    assert first.exit_code == 3, first.output
    assert "Re-run the same command" in first.stderr and "batch_fake_1" in first.stderr
    assert server.batches.created == 1 and model_requests(server) == 0
    assert db_rows(root, "SELECT id, model, requests, collected_at FROM batches") == [
        ("batch_fake_1", OPENAI_MODEL, 3, None)]

    still_open, _ = run(cli, root, "--batch")  # the batch reads "validating" once (batch_polls = 1)
    assert still_open.exit_code == 3 and server.batches.created == 1
    assert db_rows(root, "SELECT state FROM batches") == [("validating",)]

    second, document = run(cli, root, "--batch")
    assert second.exit_code == 0, second.output
    assert server.batches.created == 1, "the open batch is collected, never submitted again"
    assert model_requests(server) == 0
    assert {r["status"] for r in document["results"]} == {"passed"}
    assert "3 answer(s) collected from provider batches" in second.stderr
    billed = db_rows(root, "SELECT cost_usd, saved_usd, input_tokens, output_tokens, latency_ms FROM ledger "
                           "WHERE status = 'ok'")
    live = (4 * 0.15 + 2 * 0.60) / 1_000_000  # the fake counts words: 4 in, 2 out
    assert len(billed) == 3
    for cost, saved, tokens_in, tokens_out, latency in billed:
        assert (tokens_in, tokens_out, latency) == (4, 2, None)
        assert cost == pytest.approx(live / 2) and saved == pytest.approx(live / 2)
    assert db_rows(root, "SELECT state, collected_at IS NOT NULL FROM batches") == [("completed", 1)]

    live_run, _ = run(cli, root)  # keyed exactly like live requests: a later live run sends nothing
    assert live_run.exit_code == 0 and model_requests(server) == 0


def test_anthropic_message_batches_with_wait(cli, root: Path, server: FakeServer,
                                             no_backoff_waits: list[float]) -> None:
    server.config.batch_polls = 2
    result, document = run(cli, root, "--batch", "--wait", model=ANTHROPIC_MODEL)
    assert result.exit_code == 0, result.output
    assert server.batches.created == 1 and model_requests(server) == 0
    assert [r["output"] for r in document["results"]] == [f"Hello {n}!\n" for n in NAMES]
    assert no_backoff_waits[:3] == [10.0, 15.0, 22.5], "polls back off"
    assert "batches: 0/3 request(s) done" in result.stderr
    sent = server.batches.anthropic["msgbatch_fake_1"]
    assert sent["processing_status"] == "ended"
    again, _ = run(cli, root, model=ANTHROPIC_MODEL)
    assert again.exit_code == 0 and model_requests(server) == 0


def test_cached_requests_are_never_submitted(cli, root: Path, server: FakeServer) -> None:
    warm, _ = run(cli, root, "-k", "ada")
    assert warm.exit_code == 0 and server.counts[CHAT] == 1
    result, _ = run(cli, root, "--batch", "--wait")
    assert result.exit_code == 0, result.output
    uploaded = server.batches.files["file-fake-1"].decode().splitlines()
    assert len(uploaded) == 2 and all("Ada" not in line for line in uploaded)
    assert server.counts[CHAT] == 1
    body = json.loads(uploaded[0])["body"]
    assert "stream" not in body and "stream_options" not in body and body["model"] == "gpt-4o-mini"


def test_everything_cached_submits_nothing(cli, root: Path, server: FakeServer) -> None:
    assert run(cli, root)[0].exit_code == 0
    result, _ = run(cli, root, "--batch")
    assert result.exit_code == 0 and server.batches.created == 0 and server.counts[CHAT] == 3


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL])
def test_lines_a_batch_did_not_answer_are_sent_live(cli, root: Path, server: FakeServer, model: str) -> None:
    server.config.batch_error_lines = (1,)
    result, document = run(cli, root, "--batch", "--wait", model=model)
    assert result.exit_code == 0, result.output
    assert model_requests(server) == 1, "only the errored line is sent live"
    assert "1 request(s) got no answer from their batch and are sent live" in result.stderr
    assert {r["status"] for r in document["results"]} == {"passed"}
    problems = db_rows(root, "SELECT case_id, problem FROM batch_requests WHERE problem IS NOT NULL")
    assert problems == [("bob", "HTTP 500: Internal server error" if model == OPENAI_MODEL
                         else "api_error: Internal server error")]


def test_a_failed_batch_leaves_every_request_to_the_live_run(cli, root: Path, server: FakeServer) -> None:
    server.config.batch_outcome = "failed"
    result, _ = run(cli, root, "--batch", "--wait")
    assert result.exit_code == 0, result.output
    assert server.counts[CHAT] == 3 and "batch failed: injected failure" in result.stderr


def test_latency_comparators_are_not_measured_on_batch_answers(cli, project, server: FakeServer) -> None:
    root = project({"prompts/greet.txt": PROMPT, "promptci.yaml": config(server),
                    "goldens/greet.yaml": golden(comparators="    comparators: [{type: latency, max_ttft_ms: 1}]")})
    result, document = run(cli, root, "--batch", "--wait")
    assert result.exit_code == 0, result.output
    reasons = {s["reason"] for r in document["results"] for s in r["scores"] if s["comparator"] == "latency"}
    assert reasons == {"cached: latency not measured"}


@pytest.mark.parametrize(("args", "message"), [(("--wait",), "add --batch"),
                                                (("--batch", "--replay"), "--replay")])
def test_bad_batch_options_are_usage_errors(cli, root: Path, server: FakeServer, args: tuple[str, ...],
                                            message: str) -> None:
    result, _ = run(cli, root, *args)
    assert result.exit_code == 2 and message in result.output
    assert server.batches.created == 0


def test_a_refused_submission_is_no_verdict(cli, root: Path, server: FakeServer) -> None:
    server.config.unauthorized = True
    result, _ = run(cli, root, "--batch")
    assert result.exit_code == 3 and "FAKE_OPENAI_KEY" in result.output, result.output
    assert OPENAI_KEY not in result.output and server.batches.created == 0


def test_hostile_result_lines_are_problems_or_ignored(server: FakeServer) -> None:
    from promptci.providers._http import Endpoint
    from promptci.providers.openai import OpenAIProvider

    provider = OpenAIProvider(Endpoint("local", "K", OPENAI_KEY, server.openai_base_url))
    good = {"custom_id": "a", "response": {"status_code": 200, "body": {
        "model": "m", "choices": [{"message": {"content": f"leak {OPENAI_KEY}"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2}}}}
    outcome = provider._batch_line(json.dumps(good).encode())
    assert outcome is not None and outcome.completion is not None
    assert OPENAI_KEY not in (outcome.completion.text or "") and outcome.completion.usage == Usage(3, 2, 0)
    wrong_shape = {"custom_id": "b", "response": {"status_code": 200, "body": {"choices": "x"}}}
    bad = provider._batch_line(json.dumps(wrong_shape).encode())
    assert bad is not None and bad.completion is None and "malformed" in (bad.problem or "")
    negative = {"custom_id": "c", "response": {"status_code": 200, "body": {
        "choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": -5}}}}
    refused = provider._batch_line(json.dumps(negative).encode())
    assert refused is not None and refused.completion is None
    for junk in (b"not json", b"[1, 2]", json.dumps({"custom_id": 5, "response": None}).encode()):
        assert provider._batch_line(junk) is None


# resumable: a killed process's open batches are collected, never submitted again


def test_a_killed_process_batches_are_collected_by_the_rerun_not_resubmitted(cli, root: Path,
                                                                              server: FakeServer) -> None:
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    server.config.batch_polls = 10**9  # never ends while the first process lives
    script = shutil.which("promptci", path=os.path.dirname(sys.executable)) or shutil.which("promptci")
    assert script, "the promptci console script is not installed (pip install -e .)"
    process = subprocess.Popen([script, "run", "--root", str(root), "-m", OPENAI_MODEL, "--batch", "--wait"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (root / ".promptci" / "promptci.db").exists() or not db_rows_quiet(root):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the batch id was not stored in time"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    assert server.batches.created == 1 and db_rows_quiet(root) == [("batch_fake_1", None)]

    server.config.batch_polls = 0  # the provider finishes it while nobody watches
    result, document = run(cli, root, "--batch")
    assert result.exit_code == 0, result.output
    assert server.batches.created == 1, "never pay twice"
    assert model_requests(server) == 0 and {r["status"] for r in document["results"]} == {"passed"}


def db_rows_quiet(root: Path) -> list[tuple[Any, ...]]:
    try:
        return db_rows(root, "SELECT id, collected_at FROM batches")
    except sqlite3.OperationalError:  # not migrated yet, or locked by the writer
        return []


# promptci batch list|status|cancel


def test_batch_list_status_and_cancel(cli, root: Path, server: FakeServer) -> None:
    empty = cli("batch", "list", "--root", root)
    assert empty.exit_code == 0 and "no batches yet" in empty.stdout
    server.config.batch_polls = 10**9
    assert run(cli, root, "--batch")[0].exit_code == 3
    listed = cli("batch", "list", "--root", root, "--format", "json")
    assert listed.exit_code == 0, listed.output
    assert [(b["id"], b["requests"], b["state"], b["collected"]) for b in json.loads(listed.stdout)] == [
        ("batch_fake_1", 3, "submitted", False)]
    status = cli("batch", "status", "--root", root)
    assert status.exit_code == 0 and "batch_fake_1" in status.stdout and "validating 0/3 done" in status.stdout
    assert db_rows(root, "SELECT state FROM batches") == [("validating",)]

    cancelled = cli("batch", "cancel", "batch_fake_1", "--root", root, "--format", "json")
    assert cancelled.exit_code == 0, cancelled.output
    assert json.loads(cancelled.stdout)[0]["state"] == "cancelled"
    rerun, _ = run(cli, root, "--batch")  # collects what the cancelled batch answered; the rest goes live
    assert rerun.exit_code == 0, rerun.output
    assert server.batches.created == 1 and server.counts[CHAT] == 2  # the fake answers half before a cancel
    unknown = cli("batch", "cancel", "batch_nope", "--root", root)
    assert unknown.exit_code == 2 and "no batch 'batch_nope'" in unknown.output


def test_dry_run_shows_live_and_batch_estimates(cli, root: Path, server: FakeServer) -> None:
    result = cli("run", "--root", root, "-m", OPENAI_MODEL, "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    live = document["total"]["cost_usd"]
    notes = [n for n in document["notes"] if n.startswith("with --batch")]
    assert live > 0 and len(notes) == 1, document["notes"]
    from promptci.cost.totals import format_usd

    assert f"about {format_usd(live / 2)} instead of {format_usd(live)} live" in notes[0]
    assert server.total == 0 and server.batches.created == 0
    table = cli("run", "--root", root, "-m", OPENAI_MODEL, "--dry-run", "--batch")
    assert table.exit_code == 0 and "with --batch" in table.stdout and server.batches.created == 0


def test_no_cache_submits_fresh_samples_once_a_day(cli, root: Path, server: FakeServer) -> None:
    assert run(cli, root)[0].exit_code == 0 and server.counts[CHAT] == 3  # yesterday's answers, cached
    server.config.responder = lambda request: "fresh"
    first, document = run(cli, root, "--batch", "--no-cache", "--wait")
    assert first.exit_code == 1, first.output  # the fresh answers fail the goldens: the run read them
    assert server.batches.created == 1 and server.counts[CHAT] == 3
    assert {r["output"] for r in document["results"]} == {"fresh"}
    again, _ = run(cli, root, "--batch", "--no-cache")
    assert again.exit_code == 1 and server.batches.created == 1, "a batch of the last 24 hours is fresh enough"
    with sqlite3.connect(root / ".promptci" / "promptci.db") as connection:
        connection.execute("UPDATE batches SET submitted_at = '2020-01-01T00:00:00.000Z'")
    next_day, _ = run(cli, root, "--batch", "--no-cache")
    assert next_day.exit_code == 3 and server.batches.created == 2


def test_migration_7_adds_the_batch_tables_to_a_schema_6_database(tmp_path: Path) -> None:
    from promptci.migrations import SCHEMA_VERSION, migrate

    path = tmp_path / "db.sqlite"
    conn = database_at_schema(path, 6)
    assert migrate(conn, path) == 6 and SCHEMA_VERSION >= 7
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"batches", "batch_requests"} <= tables
    conn.close()


# a batch is paid as a whole: the budget bounds its worst case before anything is submitted


@pytest.mark.parametrize(("params", "max_cost", "code", "said"), [
    ("", "1", 1, "longest answer of local:gpt-4o-mini is unknown"),
    ("params: {max_tokens: 1000}\n", "0.0002", 1, "could cost up to"),
    ("params: {max_tokens: 1000}\n", "1", 3, "submitted 3 request(s)"),
])
def test_the_budget_bounds_the_batch_worst_case(cli, project, server: FakeServer, params: str, max_cost: str,
                                                 code: int, said: str) -> None:
    root = project({"prompts/greet.txt": PROMPT.replace("system: Be brief.\n", "system: Be brief.\n" + params),
                    "goldens/greet.yaml": golden(), "promptci.yaml": config(server)})
    result, _ = run(cli, root, "--batch", "--max-cost", max_cost)
    assert result.exit_code == code and said in result.output, result.output
    assert server.batches.created == (1 if code == 3 else 0) and model_requests(server) == 0


def test_batch_errors_report_makes_unanswered_lines_case_errors_without_sending(cli, root: Path,
                                                                               server: FakeServer) -> None:
    server.config.batch_error_lines = (1,)
    result, document = run(cli, root, "--batch", "--wait", "--batch-errors", "report")
    assert result.exit_code == 3, result.output  # an error result: no verdict
    assert model_requests(server) == 0 and "1 request(s) got no answer from their batch and are reported" \
        in result.stderr
    by_case = {r["case_id"]: r for r in document["results"]}
    assert by_case["bob"]["status"] == "error" and "batch: HTTP 500: Internal server error" in by_case["bob"]["error"]
    assert by_case["ada"]["status"] == by_case["cy"]["status"] == "passed"
    bad = cli("run", "--root", root, "-m", OPENAI_MODEL, "--batch", "--batch-errors", "never")
    assert bad.exit_code == 2 and "--batch-errors is live or report" in bad.output


def test_with_a_team_store_batches_and_their_answers_live_in_it(cli, project, server: FakeServer,
                                                                 postgres_url: str) -> None:
    """The batch, its collected answers and their ledger rows go where the run reads: the team store, not this
    machine's file (a batch collected into the file would be paid for again by the run that reads the team store)."""
    from promptci.pgstore import PostgresStore

    root = project({"prompts/greet.txt": PROMPT, "goldens/greet.yaml": golden(),
                    "promptci.yaml": config(server) + f"store:\n  url: '{postgres_url}'\n"})
    server.config.batch_polls = 0
    first, _ = run(cli, root, "--batch")
    assert first.exit_code == 3, first.output
    listed = cli("batch", "list", "--root", root, "--format", "json")
    assert [(b["id"], b["requests"]) for b in json.loads(listed.stdout)] == [("batch_fake_1", 3)], listed.output
    second, document = run(cli, root, "--batch")
    assert second.exit_code == 0, second.output
    assert {r["status"] for r in document["results"]} == {"passed"} and model_requests(server) == 0
    live_run, _ = run(cli, root)
    assert live_run.exit_code == 0 and model_requests(server) == 0, "the batch's answers are in the team's cache"
    assert not (root / ".promptci" / "promptci.db").exists()
    with PostgresStore.open(postgres_url) as store:
        assert store._read("SELECT id, collected_at IS NOT NULL FROM batches") == [("batch_fake_1", True)]
        assert store._read("SELECT COUNT(*) FROM ledger WHERE status = 'ok' AND cost_usd > 0") == [(3,)]
