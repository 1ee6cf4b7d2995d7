"""The request ledger against what the fake server actually billed, and re-running an interrupted run."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeserver import FakeServer, running_fake_server

KEY = "sk-test-ledger-0123456789"
PROMPT = "---\nsystem: Answer briefly.\n---\nplease echo {{ words }}\n"
HANG_S = 3600.0  # a scripted "hang": held until the test lets it go
PRICE = "pricing:\n  'local:m': {input: 2.0, output: 8.0}\n"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("LEDGER_KEY", KEY)
    with running_fake_server(latency_s=0.01) as fake:
        yield fake


def ledger_project(project, server: FakeServer, cases: dict[str, str], extra: str = "") -> Path:
    config = (f"models: ['local:m']\nretries: 1\nproviders:\n  local: {{type: openai, base_url: "
              f"'{server.openai_base_url}', api_key_env: LEDGER_KEY}}\n{PRICE}{extra}")
    body = "".join(f"  - id: {case}\n    input: {{words: {words}}}\n    expected: please echo {words}\n"
                   for case, words in cases.items())
    return project({"promptci.yaml": config, "prompts/p.txt": PROMPT, "goldens/p.yaml": "cases:\n" + body})


def ledger_rows(root: Path) -> list[dict]:
    with sqlite3.connect(root / ".promptci" / "promptci.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM ledger ORDER BY case_id, at")]


def test_ledger_rows_match_what_the_server_billed(cli, project, server: FakeServer) -> None:
    cases = {"one": "alpha", "three": "alpha beta gamma"}
    root = ledger_project(project, server, cases)
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    rows = {row["case_id"]: row for row in ledger_rows(root)}
    for case, words in cases.items():
        row = rows[case]
        system_and_user = 2 + 2 + len(words.split())  # "Answer briefly." + "please echo <words>"
        reply = 2 + len(words.split())  # the fake server echoes the user message
        assert (row["input_tokens"], row["output_tokens"]) == (system_and_user, reply)
        assert row["cost_usd"] == pytest.approx((system_and_user * 2.0 + reply * 8.0) / 1_000_000)
        assert (row["run_id"], row["prompt"], row["model"], row["status"], row["attempts"], row["kind"]) == (
            run_id, "p", "local:m", "ok", 1, "case")
        assert row["latency_ms"] > 0 and row["ttft_ms"] is not None
    assert server.total == len(cases) == len(rows)


def test_errors_and_cache_hits_are_in_the_ledger_too(cli, project, server: FakeServer) -> None:
    root = ledger_project(project, server, {"ok": "fine"})
    assert cli("run", "--root", root).exit_code == 0
    assert cli("run", "--root", root).exit_code == 0  # answered from the cache
    server.script("500", "500")
    assert cli("run", "--root", root, "--no-cache").exit_code == 3
    statuses = [(row["status"], row["attempts"], row["error_kind"]) for row in ledger_rows(root)]
    assert statuses == [("ok", 1, None), ("cached", 1, None), ("error", 2, "server")]
    cached = ledger_rows(root)[1]
    assert cached["cost_usd"] == 0 and cached["saved_usd"] == pytest.approx(ledger_rows(root)[0]["cost_usd"])


def test_cost_command_adds_up_a_real_run(cli, project, server: FakeServer) -> None:
    root = ledger_project(project, server, {"a": "x y", "b": "x y z"})
    assert cli("run", "--root", root).exit_code == 0
    result = cli("cost", "--root", root, "--by", "prompt", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    billed = sum(row["cost_usd"] for row in ledger_rows(root))
    assert document["total"]["cost_usd"] == pytest.approx(billed) and document["total"]["requests"] == 2


def test_a_killed_run_re_runs_for_free(project, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer that arrived before the kill is in the cache: the re-run sends only the rest."""
    monkeypatch.setenv("LEDGER_KEY", KEY)  # the subprocesses inherit it
    released = threading.Event()

    async def hang_until_released(seconds: float) -> None:  # the server's "hang" lasts until the kill is done
        while seconds == HANG_S and not released.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0 if seconds == HANG_S else seconds)

    with running_fake_server(latency_s=0.01, hang_s=HANG_S, sleep=hang_until_released) as server:
        cases = {f"c{n}": f"word{n}" for n in range(12)}
        server.script("ok", "ok", "ok", *["hang"] * (len(cases) - 3))  # three answers, then the run is stuck
        root = ledger_project(project, server, cases, extra="concurrency: 2\n")
        script = shutil.which("promptci", path=os.path.dirname(sys.executable)) or "promptci"
        process = subprocess.Popen([script, "run", "--root", str(root)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120  # only a bound on a hang, however loaded the machine
        while server.total < 5 or len([r for r in ledger_rows(root) if r["status"] == "ok"]) < 3:
            assert process.poll() is None and time.monotonic() < deadline, "the run did not get stuck as scripted"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        released.set()
        answered_before = len([r for r in ledger_rows(root) if r["status"] == "ok"])
        assert answered_before == 3
        sent_before = server.total
        rerun = subprocess.run([script, "run", "--root", str(root), "--format", "json"], capture_output=True,
                               text=True, timeout=60)
        assert rerun.returncode == 0, rerun.stderr
        results = json.loads(rerun.stdout)["results"]
        assert sum(r["cached"] for r in results) == answered_before
        assert server.total - sent_before == len(cases) - answered_before
