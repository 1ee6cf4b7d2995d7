"""`promptci cost` through the real CLI, on ledgers written by real runs and by Store.record_request."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from promptci.cost.ledger import METRICS
from promptci.store import LedgerEntry, Store

BASE = LedgerEntry(at="2025-03-01T09:00:00Z", run_id="run-a", git_commit="abc", prompt="route", case_id="c1",
                   model="openai:gpt-4o-mini", provider="openai", input_tokens=1000, output_tokens=100,
                   cached_input_tokens=0, cost_usd=0.50, saved_usd=None, latency_ms=100.0, ttft_ms=40.0)
LEDGER = [
    BASE,
    replace(BASE, at="2025-03-01T10:00:00Z", cost_usd=1.00, latency_ms=300.0),
    replace(BASE, at="2025-03-01T11:00:00Z", status="cached", cost_usd=0.0, saved_usd=0.25, latency_ms=None),
    replace(BASE, at="2025-03-02T08:00:00Z", prompt="summarize", run_id="run-b", cost_usd=0.40),
    replace(BASE, at="2025-03-02T09:00:00Z", prompt="summarize", run_id="run-b", model="local:llama3",
            provider="local", cost_usd=None),
]
CONFIG = "models: [echo]\nbudgets:\n  daily_usd: 1.00\n"


def fill_ledger(root: Path, entries: list[LedgerEntry]) -> None:
    with Store.open(root / ".promptci" / "promptci.db") as store:
        for entry in entries:
            store.record_request(entry)


@pytest.fixture
def ledger_project(project) -> Path:
    root = project({"promptci.yaml": CONFIG}, with_greet=True)
    fill_ledger(root, LEDGER)
    return root


def cost_json(cli, root: Path, *args: str) -> dict:
    result = cli("cost", "--root", root, "--since", "2025-03-01", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_grouped_by_several_keys(cli, ledger_project: Path) -> None:
    document = cost_json(cli, ledger_project, "--by", "day,model", "--by", "prompt")
    assert document["by"] == ["day", "model", "prompt"] and document["since"] == "2025-03-01T00:00:00Z"
    keys = [(r["day"], r["model"], r["prompt"]) for r in document["rows"]]
    assert keys == [("2025-03-01", "openai:gpt-4o-mini", "route"), ("2025-03-02", "local:llama3", "summarize"),
                    ("2025-03-02", "openai:gpt-4o-mini", "summarize")]
    first = document["rows"][0]
    assert set(first) == {"day", "model", "prompt", *METRICS}
    assert (first["requests"], first["cache_hits"]) == (3, 1)
    assert first["cost_usd"] == pytest.approx(1.50) and first["saved_usd"] == pytest.approx(0.25)
    assert first["input_tokens"] == 2000  # the cache hit billed none
    assert document["total"]["requests"] == 5 and document["total"]["cost_unknown"] == 1
    assert document["unknown_price_models"] == ["local:llama3"]


def test_table_by_model_shows_unknown_never_zero_and_saved_cost(cli, ledger_project: Path) -> None:
    result = cli("cost", "--root", ledger_project, "--since", "2025-03-01", "--by", "model")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    llama = next(x for x in lines if "local:llama3" in x)
    assert "unknown" in llama and "$0.00" not in llama
    gpt = next(x for x in lines if "openai:gpt-4o-mini" in x)
    assert "$1.90" in gpt and "$0.25" in gpt  # spent, and saved by the cache hit
    total = next(x for x in lines if x.strip().startswith("total"))
    assert "$1.90 + 1 unknown" in total
    assert "pricing:" in result.stdout and "local:llama3" in result.stdout.split("note:")[1]


def test_csv_shape(cli, ledger_project: Path) -> None:
    result = cli("cost", "--root", ledger_project, "--since", "2025-03-01", "--by", "run", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["run", *METRICS]
    assert [r[0] for r in rows[1:]] == ["run-a", "run-b"]
    by_run = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert float(by_run["run-a"]["cost_usd"]) == pytest.approx(1.50) and by_run["run-b"]["cost_unknown"] == "1"
    assert "pricing:" in result.stderr  # the hint goes to stderr, the CSV stays clean


def test_since_limits_the_range(cli, ledger_project: Path) -> None:
    document = cost_json(cli, ledger_project, "--since", "2025-03-02T00:00:00Z", "--by", "day")
    assert [r["day"] for r in document["rows"]] == ["2025-03-02"]


def test_default_since_is_seven_days(cli, project) -> None:
    root = project({"promptci.yaml": CONFIG}, with_greet=True)
    now = datetime.now(timezone.utc)
    recent = (now - timedelta(days=1)).isoformat()
    old = (now - timedelta(days=10)).isoformat()
    fill_ledger(root, [replace(BASE, at=recent, run_id="recent"), replace(BASE, at=old, run_id="old")])
    result = cli("cost", "--root", root, "--by", "run", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [r["run"] for r in json.loads(result.stdout)["rows"]] == ["recent"]


@pytest.mark.parametrize("args, message", [
    (("--since", "last tuesday"), "--since 'last tuesday' is not understood"),
    (("--by", "day,week"), "cannot group by week"),
    (("--format", "xml"), "--format 'xml' is not known"),
])
def test_bad_options_exit_2(cli, ledger_project: Path, args: tuple[str, ...], message: str) -> None:
    result = cli("cost", "--root", ledger_project, *args)
    assert result.exit_code == 2 and message in result.output


def test_check_fails_naming_each_day_over_budget(cli, ledger_project: Path) -> None:
    result = cli("cost", "--root", ledger_project, "--since", "2025-03-01", "--check")
    assert result.exit_code == 1, result.output
    assert "1 day(s) over the daily budget of $1.00" in result.stderr
    assert "2025-03-01: spent $1.50 ($0.50 over)" in result.stderr
    assert "2025-03-02" not in result.stderr.split("budget of")[1].split(":", 1)[1]  # $0.40: within
    assert "1 request(s) with no price are not counted" in result.stderr


def test_check_passes_when_every_day_is_within(cli, ledger_project: Path) -> None:
    result = cli("cost", "--root", ledger_project, "--since", "2025-03-02", "--check")
    assert result.exit_code == 0, result.output
    assert "stayed within the daily budget of $1.00" in result.stderr and "2025-03-02: $0.40" in result.stderr


def test_check_counts_the_whole_first_day(cli, ledger_project: Path) -> None:
    # From 10:30 on 2025-03-01 only $0 + cached was spent, but the day as a whole spent $1.50.
    result = cli("cost", "--root", ledger_project, "--since", "2025-03-01T10:30:00Z", "--check")
    assert result.exit_code == 1 and "2025-03-01: spent $1.50" in result.stderr


def test_check_without_daily_budget_exits_2(cli, project) -> None:
    root = project({"promptci.yaml": "models: [echo]\n"}, with_greet=True)
    fill_ledger(root, LEDGER)
    result = cli("cost", "--root", root, "--check")
    assert result.exit_code == 2 and "budgets: {daily_usd:" in result.output
    assert result.stdout == ""


def test_empty_ledger(cli, project) -> None:
    root = project({"promptci.yaml": CONFIG}, with_greet=True)
    result = cli("cost", "--root", root, "--since", "2025-03-01")
    assert result.exit_code == 0, result.output
    assert "no requests recorded since 2025-03-01 00:00 UTC" in result.stdout
    assert not (root / ".promptci").exists()  # reading an empty ledger creates no database
    checked = cli("cost", "--root", root, "--check", "--format", "json")
    assert checked.exit_code == 0 and json.loads(checked.stdout)["rows"] == []


def test_ledger_of_real_runs(cli, project) -> None:
    root = project({"promptci.yaml": "models: [echo]\n"}, with_greet=True)
    first = cli("run", "--root", root, "--format", "json")
    second = cli("run", "--root", root, "--format", "json", "-m", "echo", "--repeat", "2")
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    run_ids = [json.loads(r.stdout)["run_id"] for r in (first, second)]
    result = cli("cost", "--root", root, "--by", "run,model", "--format", "json")
    assert result.exit_code == 0, result.output
    requests = {row["run"]: row["requests"] for row in json.loads(result.stdout)["rows"]}
    assert requests == {run_ids[0]: 1, run_ids[1]: 2}
    table = cli("cost", "--root", root, "--by", "run").stdout
    assert run_ids[0] in table and run_ids[1] in table and "$0.00" in table
