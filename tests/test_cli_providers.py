"""Real providers end to end through `promptci run`: the OpenAI and Anthropic SDKs talk HTTP to the fake
server; usage, timing, faults, keys, recordings, --replay, --env, JSON mode and rpm, all via the CLI."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server

from promptci import retrying

OPENAI_KEY = "sk-test-SECRET-1234567890"
ANTHROPIC_KEY = "sk-ant-test-SECRET-0987654321"
STAGING_KEY = "sk-test-STAGING-5555555555"
PROMPT = "---\nsystem: Be brief.\n---\nHello {{ name }}!\n"
NAMES = ("Ada", "Bob", "Cy")


def golden(names: tuple[str, ...] = NAMES, expected: dict[str, str] | None = None) -> str:
    expected = expected or {}
    lines = ["cases:"]
    for name in names:
        lines += [f"  - id: {name.lower()}", f"    input: {{name: {name}}}",
                  f"    expected: {expected.get(name, f'Hello {name}!')}"]
    return "\n".join(lines) + "\n"


def config(server: FakeServer, extra: str = "", timeout_s: float = 5, retries: int = 2) -> str:
    return (
        f"timeout_s: {timeout_s}\nretries: {retries}\nproviders:\n"
        f"  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: FAKE_OPENAI_KEY}}\n"
        f"  claude: {{type: anthropic, base_url: '{server.anthropic_base_url}', api_key_env: FAKE_ANTHROPIC_KEY}}\n"
        + extra
    )


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FAKE_OPENAI_KEY", OPENAI_KEY)
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", ANTHROPIC_KEY)
    with running_fake_server(latency_s=0.03, ttft_s=0.01, chunks=3) as fake:
        yield fake


@pytest.fixture
def make(project, server: FakeServer):
    """make(extra_config, names, expected, **settings) -> a project root whose providers point at the server."""

    def build(extra: str = "", names: tuple[str, ...] = NAMES, expected: dict[str, str] | None = None,
              **settings: Any) -> Path:
        return project({"prompts/greet.txt": PROMPT, "goldens/greet.yaml": golden(names, expected),
                        "promptci.yaml": config(server, extra, **settings)})

    return build


def run_json(cli, root: Path, *args: str | Path, model: str = "local:m") -> tuple[Any, dict[str, Any]]:
    result = cli("run", "--root", root, "-m", model, "--format", "json", *args)
    assert "Traceback" not in result.output, result.output
    document = json.loads(result.stdout) if result.stdout.strip() else {}
    return result, document


def by_case(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["case_id"]: r for r in document["results"]}


# 1. both providers, plain success


@pytest.mark.parametrize(("model", "path"), [("local:m", "/v1/chat/completions"), ("claude:m", "/v1/messages")])
def test_both_providers_pass_with_usage_timing_and_resolved_model(cli, make, server: FakeServer, model: str,
                                                                  path: str) -> None:
    root = make()
    result, document = run_json(cli, root, model=model)
    assert result.exit_code == 0, result.output
    assert server.counts[path] == 3 and server.total == 3
    results = by_case(document)
    for name in NAMES:
        row = results[name.lower()]
        assert row["status"] == "passed" and row["output"] == f"Hello {name}!\n"
        # the fake server counts words: "Be brief." + "Hello X!" in, "Hello X!" out
        assert (row["input_tokens"], row["output_tokens"]) == (4, 2)
        assert row["resolved_model"] == "m-2024-07-18"
        assert row["cached"] is False and row["attempts"] == 1
        assert 0 < row["ttft_ms"] <= row["latency_ms"] and row["latency_ms"] >= 20
    assert document["summary"]["input_tokens"] == 12 and document["summary"]["output_tokens"] == 6
    for request in server.requests:
        assert request.body["stream"] is True and request.body["model"] == "m"
    if model == "claude:m":
        assert server.requests[0].body["system"] == "Be brief."
        assert server.requests[0].headers["authorization"] == f"Bearer {ANTHROPIC_KEY}"  # anthropic 2.x
    else:
        assert server.requests[0].body["stream_options"] == {"include_usage": True}
        assert server.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"


# 3. recordings and --replay


def test_record_then_replay_with_the_server_gone(cli, make, server: FakeServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = make()
    first, _ = run_json(cli, root, "--record", "--no-cache")
    assert first.exit_code == 0, first.output
    recording = root / "recordings" / "greet.jsonl"
    recorded = recording.read_bytes()
    second, _ = run_json(cli, root, "--record", "--no-cache")
    assert second.exit_code == 0 and server.total == 6
    assert recording.read_bytes() == recorded, "two identical --record runs must give the same bytes"
    lines = [json.loads(line) for line in recorded.decode().splitlines()]
    assert len(lines) == 3 and [line["key"] for line in lines] == sorted(line["key"] for line in lines)
    assert {line["output"] for line in lines} == {f"Hello {n}!\n" for n in NAMES}
    assert all(line["resolved_model"] == "m-2024-07-18" for line in lines)
    assert OPENAI_KEY not in recorded.decode() and "authorization" not in recorded.decode().lower()

    port = server.port
    server.stop()
    shutil.rmtree(root / ".promptci")
    monkeypatch.delenv("FAKE_OPENAI_KEY")
    replayed, document = run_json(cli, root, "--replay")
    assert replayed.exit_code == 0, replayed.output
    assert all(r["cached"] and r["status"] == "passed" for r in document["results"])

    # prove that no connection is even attempted: listen on the same port again and count
    with running_fake_server(port=port) as sentinel:
        for args, model in ((("--replay",), "local:m"), ((), "replay:local:m")):
            again, document = run_json(cli, root, *args, model=model)
            assert again.exit_code == 0, again.output
            assert [r["output"] for r in document["results"]] == [f"Hello {n}!\n" for n in NAMES]
        assert sentinel.connections == 0 and sentinel.total == 0

        (root / "goldens" / "greet.yaml").write_text(golden((*NAMES, "Dee")))
        for args, model in ((("--replay",), "local:m"), ((), "replay:local:m")):
            missed, document = run_json(cli, root, *args, model=model)
            assert missed.exit_code == 3, missed.output
            dee = by_case(document)["dee"]
            assert dee["status"] == "error" and "'dee'" in dee["error"] and "--record" in dee["error"]
            assert [r["status"] for r in document["results"]].count("passed") == 3
        assert sentinel.connections == 0 and sentinel.total == 0


# 4. faults through the whole stack


def test_429_with_retry_after_is_honoured_and_every_case_is_scored(cli, make, server: FakeServer,
                                                                   no_backoff_waits: list[float]) -> None:
    server.config.retry_after = "7"
    server.script("429", "ok", "429", "429")
    result, document = run_json(cli, make(retries=3, timeout_s=30), "-j", "1")
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in document["results"]] == ["passed"] * 3
    assert [r["attempts"] for r in document["results"]] == [2, 3, 1]
    assert len(no_backoff_waits) == 3 and all(7.0 <= wait <= 7.7 for wait in no_backoff_waits), no_backoff_waits
    assert len(set(no_backoff_waits)) == 3, "every wait carries its own jitter"
    assert server.total == 6


def test_429s_are_waited_out_past_the_retry_count_until_timeout_s(cli, make, server: FakeServer,
                                                                    no_backoff_waits: list[float]) -> None:
    """A burst of 429s does not use up `retries`: waiting for a rate limit is bounded by the case's timeout_s."""
    server.config.retry_after = "1"
    server.script(*["429"] * 6)
    result, document = run_json(cli, make(retries=1, timeout_s=30), "-j", "1")
    assert result.exit_code == 0, result.output
    assert by_case(document)["ada"]["attempts"] == 7 and by_case(document)["ada"]["status"] == "passed"
    assert len(no_backoff_waits) == 6 and all(1.0 <= wait <= 1.1 for wait in no_backoff_waits), no_backoff_waits
    note = [p for p in document["problems"] if p.startswith("rate limits:")]
    assert note and note[0].startswith("rate limits: 6 requests refused (66.7%), "), document["problems"]
    waited = float(note[0].split(", ")[-1].removesuffix(" s spent waiting"))
    assert waited == pytest.approx(sum(no_backoff_waits), abs=0.05)


def test_a_retry_after_past_timeout_s_gives_up_at_once_naming_the_429(cli, make, server: FakeServer,
                                                                      no_backoff_waits: list[float]) -> None:
    server.config.retry_after = "7"
    server.script("429")
    result, document = run_json(cli, make(retries=3, timeout_s=5), "-j", "1")
    assert result.exit_code == 3, result.output
    ada = by_case(document)["ada"]
    assert ada["status"] == "error" and ada["attempts"] == 1 and "HTTP 429" in ada["error"]
    assert no_backoff_waits == [] and server.total == 3
    assert by_case(document)["bob"]["status"] == "passed"


def test_a_500_then_success_passes_on_the_second_attempt(cli, make, server: FakeServer,
                                                         no_backoff_waits: list[float]) -> None:
    server.script("500")
    result, document = run_json(cli, make(), "-j", "1")
    assert result.exit_code == 0, result.output
    assert by_case(document)["ada"]["attempts"] == 2 and by_case(document)["ada"]["status"] == "passed"
    assert len(no_backoff_waits) == 1 and server.total == 4


@pytest.mark.parametrize("model", ["local:m", "claude:m"])
def test_retries_exhausted_is_exit_3_naming_status_and_attempts(cli, make, server: FakeServer, model: str) -> None:
    server.script("500", "500", "500")  # retries: 2 -> three attempts for the first case
    result, document = run_json(cli, make(), "-j", "1", model=model)
    assert result.exit_code == 3, result.output
    cases = by_case(document)
    assert cases["ada"]["status"] == "error" and cases["ada"]["attempts"] == 3
    assert "HTTP 500" in cases["ada"]["error"] and "after 3 attempts" in cases["ada"]["error"]
    assert cases["bob"]["status"] == "passed" and cases["cy"]["status"] == "passed"
    assert document["summary"]["errors"] == 1 and server.total == 5


@pytest.mark.parametrize("model", ["local:m", "claude:m"])
def test_401_sends_one_request_and_stops_the_model(cli, make, server: FakeServer, model: str,
                                                   no_backoff_waits: list[float]) -> None:
    server.config.unauthorized = True
    result, document = run_json(cli, make(), "-j", "8", model=model)
    assert result.exit_code == 3, result.output
    assert server.total == 1, "a bad key must cost one request, not one per case"
    assert no_backoff_waits == []
    variable = "FAKE_OPENAI_KEY" if model == "local:m" else "FAKE_ANTHROPIC_KEY"
    for row in document["results"]:
        assert row["status"] == "error"
        assert "authentication failed" in row["error"] and variable in row["error"]


def test_404_model_not_found_stops_that_model_only(cli, make, server: FakeServer) -> None:
    server.config.unknown_models = ("nope",)
    root = make()
    result = cli("run", "--root", root, "-m", "local:nope", "-m", "local:m", "--format", "json")
    assert result.exit_code == 3, result.output
    rows = json.loads(result.stdout)["results"]
    missing = [r for r in rows if r["model"] == "local:nope"]
    assert len(missing) == 3 and all(r["status"] == "error" and "'nope' not found" in r["error"] for r in missing)
    assert [r["status"] for r in rows if r["model"] == "local:m"] == ["passed"] * 3
    assert [r.body["model"] for r in server.requests].count("nope") == 1


@pytest.mark.parametrize("fault", ["cut", "truncate", "malformed"])
@pytest.mark.parametrize("model", ["local:m", "claude:m"])
def test_a_broken_stream_is_retried_never_a_short_output(cli, make, server: FakeServer, model: str,
                                                         fault: str) -> None:
    server.config.chunks = 6
    server.script(fault)
    result, document = run_json(cli, make(), "-j", "1", model=model)
    assert result.exit_code == 0, result.output
    ada = by_case(document)["ada"]
    assert ada["output"] == "Hello Ada!\n" and ada["attempts"] == 2
    assert server.total == 4


def test_a_hang_past_timeout_is_retried_then_reported(cli, make, server: FakeServer) -> None:
    server.config.hang_s = 30  # far past every timeout here; a broken timeout answers late instead of hanging
    server.script("hang", "ok", "hang", "hang")
    root = make(names=("Ada", "Bob"), timeout_s=2, retries=1)  # Ada's retry answers in ms: 2 s is far from it
    result, document = run_json(cli, root, "-j", "1")
    assert result.exit_code == 3, result.output
    cases = by_case(document)
    assert cases["ada"]["status"] == "passed" and cases["ada"]["attempts"] == 2
    assert cases["bob"]["status"] == "error" and cases["bob"]["error"].startswith("timeout")
    assert "after 2 attempts" in cases["bob"]["error"] and "timeout_s=2" in cases["bob"]["error"]


# 5. keys


def test_a_missing_key_is_exit_2_before_any_request(cli, make, server: FakeServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = make()
    monkeypatch.delenv("FAKE_ANTHROPIC_KEY")
    result = cli("run", "--root", root, "-m", "local:m", "-m", "claude:m")
    assert result.exit_code == 2, result.output
    assert "FAKE_ANTHROPIC_KEY" in result.stderr and "'claude'" in result.stderr
    assert server.total == 0 and server.connections == 0


# 6. secrets


def every_db_value(db: Path) -> Iterator[str]:
    with sqlite3.connect(db) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"runs", "results", "ledger", "cache"} <= set(tables)
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                yield from (value.decode("latin-1") if isinstance(value, bytes) else str(value) for value in row)


def test_the_key_never_reaches_output_reports_recordings_or_the_store(cli, make, server: FakeServer,
                                                                      tmp_path: Path) -> None:
    server.config.unknown_models = ("gone",)
    server.config.error_message = f"Incorrect API key provided: {OPENAI_KEY}; Bearer {OPENAI_KEY}"
    root = make(expected={"Bob": "Bye Bob!"})
    reports = tmp_path / "reports"
    outputs: list[str] = []
    for fmt in ("json", "table"):
        result = cli("run", "--root", root, "-m", "local:m", "-m", "local:gone", "--record", "--format", fmt,
                     "-o", f"junit={reports / 'junit.xml'}", "-o", f"markdown={reports / 'summary.md'}",
                     "-o", f"json={reports / 'results.json'}", "-v")
        assert result.exit_code in (1, 3), result.output
        assert "Bye Bob" in result.stdout and "not found" in result.stdout
        outputs += [result.stdout, result.stderr]
    server.config.unknown_models = ()
    server.config.unauthorized = True
    result = cli("run", "--root", root, "-m", "local:m", "--no-cache", "--format", "json")
    assert result.exit_code == 3 and "authentication failed" in result.stdout
    outputs += [result.stdout, result.stderr]
    outputs += [path.read_text() for path in sorted(reports.iterdir())]
    outputs += [path.read_text() for path in sorted((root / "recordings").rglob("*"))]
    outputs += list(every_db_value(root / ".promptci" / "promptci.db"))
    assert len(outputs) > 10
    leaks = [text[:200] for text in outputs if OPENAI_KEY in text or "SECRET-12345" in text]
    assert leaks == []


# 7. environments


def test_env_swaps_base_url_and_key_variable(cli, make, server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGING_OPENAI_KEY", STAGING_KEY)
    with running_fake_server(model_suffix="-staging") as staging:
        root = make("environments:\n  staging:\n    providers:\n"
                    f"      local: {{base_url: '{staging.openai_base_url}', api_key_env: STAGING_OPENAI_KEY}}\n")
        result, document = run_json(cli, root, "--env", "staging")
        assert result.exit_code == 0, result.output
        assert staging.total == 3 and server.total == 0
        assert staging.requests[0].headers["authorization"] == f"Bearer {STAGING_KEY}"
        assert {r["resolved_model"] for r in document["results"]} == {"m-staging"}
        result, document = run_json(cli, root)
        assert result.exit_code == 0 and server.total == 3 and staging.total == 3
        assert {r["resolved_model"] for r in document["results"]} == {"m-2024-07-18"}
        assert not any(r["cached"] for r in document["results"]), "another base_url is another cache entry"
        unknown = cli("run", "--root", root, "-m", "local:m", "--env", "prod")
        assert unknown.exit_code == 2 and "'prod'" in unknown.stderr and "staging" in unknown.stderr


# 8. JSON output mode


def test_output_json_asks_the_openai_server_for_json(cli, project, server: FakeServer) -> None:
    root = project({
        "prompts/extract.txt": "---\noutput: json\n---\n{{ payload }}",
        "goldens/extract.yaml": "cases:\n  - id: one\n    input: {payload: '{\"a\": 1}'}\n"
                                "    expected: {a: 1}\n    comparators: [json]\n",
        "promptci.yaml": config(server),
    })
    result, document = run_json(cli, root)
    assert result.exit_code == 0, result.output
    assert server.requests[-1].body["response_format"] == {"type": "json_object"}
    assert document["results"][0]["output"] == '{"a": 1}'
    claude, _ = run_json(cli, root, model="claude:m")
    assert claude.exit_code == 0, claude.output
    assert "response_format" not in server.requests[-1].body


# 9. client-side rate limit


@pytest.mark.parametrize("model", ["local:m", "claude:m"])
def test_rpm_spaces_requests(cli, make, server: FakeServer, model: str, no_backoff_waits: list[float]) -> None:
    """The provider's rpm paces request starts through the limiter: read on the recorded waits (the test clock
    moves on by them), not on wall time, which a loaded machine stretches."""
    root = make(names=("Ada", "Bob", "Cy", "Dee"))
    text = (root / "promptci.yaml").read_text().replace("_KEY}", "_KEY, rpm: 600}")  # one each 0.1 s
    (root / "promptci.yaml").write_text(text)
    result, _ = run_json(cli, root, "-j", "4", model=model)
    assert result.exit_code == 0, result.output
    assert server.total == 4
    waits = no_backoff_waits  # the first start goes at once, the others 0.1 s apart (plus jitter)
    assert len(waits) == 3 and all(0.07 <= wait <= 0.13 for wait in waits), waits
    assert 0.3 <= sum(waits) <= 0.34, waits


@pytest.mark.parametrize("model", ["local:m", "claude:m"])
@pytest.mark.parametrize("limit, says", [
    ("tpm: 100", "tpm: 100 is below one request's estimate of 5"),  # ~10 input tokens + 512 output
    ("rpm: 0.5", "rpm: 0.5 allows less than one request a minute"),
])
def test_an_unsatisfiable_limit_is_exit_2_before_anything_is_sent(cli, make, server: FakeServer, model: str,
                                                                  limit: str, says: str) -> None:
    """Issue 24: a tpm below one request's estimate, or an rpm below one, could never let a request start:
    it used to wait past timeout_s for ever (and add the waits up in its note)."""
    root = make()
    provider = model.split(":")[0]
    text = (root / "promptci.yaml").read_text().replace("_KEY}", f"_KEY, {limit}}}")
    (root / "promptci.yaml").write_text(text)
    result = cli("run", "--root", root, "-m", model)
    assert result.exit_code == 2, result.output
    assert says in result.stderr and f"providers.{provider}" in result.stderr and model in result.stderr
    assert "Traceback" not in result.output and server.total == 0


def test_a_tpm_that_fits_the_largest_request_is_kept(cli, make, server: FakeServer) -> None:
    root = make("", names=("Ada",))
    text = (root / "promptci.yaml").read_text().replace("FAKE_OPENAI_KEY}", "FAKE_OPENAI_KEY, tpm: 600}")
    (root / "promptci.yaml").write_text(text)
    result, _ = run_json(cli, root)
    assert result.exit_code == 0, result.output


def test_a_matrix_of_both_providers_in_one_run(cli, make, server: FakeServer) -> None:
    root = make()
    result = cli("run", "--root", root, "-m", "local:m", "-m", "claude:m", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert sorted((r["model"], r["status"]) for r in rows) == [("claude:m", "passed")] * 3 + [("local:m", "passed")] * 3
    assert server.counts["/v1/chat/completions"] == 3 and server.counts["/v1/messages"] == 3


@pytest.mark.parametrize("model", ["local:m", "claude:m"])
def test_a_bucket_limit_is_waited_out_every_case_passes_and_no_header_is_kept(cli, make, server: FakeServer,
                                                                              model: str) -> None:
    """A server that refuses past 40 requests/s (a bucket of 1): every case passes, the run says how many
    requests were refused, and the rate-limit headers reach neither the db nor the recordings."""
    # A bucket of 1: the slow start's second round (3 requests after the first answer) meets it. The bucket
    # refills on the run's clock, which moves by the waits the run records (conftest), not by how fast a loaded
    # machine happens to send: the second round always meets an empty bucket, and every wait refills it.
    server.config.limit_rps, server.config.limit_burst = 40.0, 1.0
    server.buckets.clock = lambda: retrying.default_clock()
    names = tuple(f"N{i}" for i in range(24))
    root = make(names=names, retries=0)  # 429s do not use up retries: they are waited out
    result, document = run_json(cli, root, "-j", "8", "--record", model=model)
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in document["results"]] == ["passed"] * len(names)
    assert server.refused > 0 and server.total == len(names) + server.refused
    notes = [p for p in document["problems"] if p.startswith("rate limits:")]
    share = server.refused / server.total
    assert len(notes) == 1 and notes[0].startswith(f"rate limits: {server.refused} request"), notes
    assert f"({share:.1%})" in notes[0] and notes[0].endswith(" s spent waiting")
    stored = b"".join(path.read_bytes() for path in root.rglob("*") if path.is_file())
    assert b"ratelimit" not in stored.lower() and b"retry-after" not in stored.lower()


def test_a_run_that_meets_no_limit_has_no_rate_limit_note(cli, make, server: FakeServer) -> None:
    result, document = run_json(cli, make())
    assert result.exit_code == 0, result.output
    assert not [p for p in document["problems"] if p.startswith("rate limits:")]
    human = cli("run", "--root", make(), "-m", "local:m", "--no-cache")
    assert human.exit_code == 0 and "passed" in human.stdout and "rate limits" not in human.stdout
