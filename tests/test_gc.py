"""`promptci gc` through the CLI against the fake server: what it prunes, what it keeps (each branch's last run,
the answers kept runs used, recorded answers, recent spend), that a re-run after gc sends 0 requests for kept
answers, VACUUM, and bad options."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server

from promptci.migrations import MIGRATIONS
from promptci.pgstore import PostgresStore
from promptci.store import Store

KEY = "sk-test-SECRET-1234567890"
OLD = "2026-01-01T00:00:00.000Z"  # months before any run of the test


def golden(*names: str) -> str:
    return "cases:\n" + "".join(f"  - id: {n.lower()}\n    input: {{name: {n}}}\n    expected: Hello {n}!\n"
                                for n in names)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FAKE_OPENAI_KEY", KEY)
    with running_fake_server() as fake:
        yield fake


@pytest.fixture
def root(project, server: FakeServer) -> Path:
    root = project({"prompts/greet.txt": "Hello {{ name }}!\n", "goldens/greet.yaml": golden("Ada", "Bob"),
                    "promptci.yaml": f"providers:\n  local: {{type: openai, base_url: '{server.openai_base_url}', "
                                     "api_key_env: FAKE_OPENAI_KEY}\nmodels: ['local:m']\n"
                                     "pricing:\n  local:m: {input: 1.0, output: 2.0}\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    return root


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", *args], cwd=root, check=True)


def run(cli, root: Path, *args: str) -> dict[str, Any]:
    result = cli("run", "--root", root, "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / ".promptci" / "promptci.db")


def age(root: Path, run_ids: list[str]) -> None:
    """Make these runs, their ledger rows and every cache row months old."""
    with db(root) as conn:
        conn.executemany("UPDATE runs SET started_at = ? WHERE id = ?", [(OLD, r) for r in run_ids])
        conn.executemany("UPDATE ledger SET ts = 1767225600, at = ? WHERE run_id = ?", [(OLD, r) for r in run_ids])
        conn.execute("UPDATE cache SET created_at = ?", (OLD,))


def counts(root: Path) -> dict[str, int]:
    with db(root) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("runs", "results", "cache", "ledger")}


def test_gc_keeps_each_branch_last_run_and_its_answers_and_a_rerun_sends_nothing(
        cli, root: Path, server: FakeServer) -> None:
    on_main = run(cli, root)["run_id"]  # 2 requests, cached under main
    git(root, "checkout", "-q", "-b", "feature")
    (root / "goldens" / "greet.yaml").write_text(golden("Cy", "Dee"))
    old_feature = [run(cli, root)["run_id"] for _ in range(3)]  # 2 new requests, then hits
    (root / "goldens" / "greet.yaml").write_text(golden("Eve"))
    newest = run(cli, root)["run_id"]  # 1 new request
    assert server.total == 5
    age(root, [on_main, *old_feature])
    before = counts(root)

    result = cli("gc", "--root", root, "--days", "30", "--runs", "1")
    assert result.exit_code == 0, result.output
    assert "removed 3 runs (6 results), 2 cache rows" in result.stdout
    assert "kept 2 runs, 1 of them as their branch's last" in result.stdout and "freed" in result.stdout
    with db(root) as conn:
        assert {r[0] for r in conn.execute("SELECT id FROM runs")} == {on_main, newest}
        assert conn.execute("SELECT count(*) FROM results WHERE run_id NOT IN (?, ?)", (on_main, newest)).fetchone() \
            == (0,)
        assert conn.execute("PRAGMA freelist_count").fetchone() == (0,)  # vacuumed
    after = counts(root)
    assert after["cache"] == before["cache"] - 2 == 3  # Cy and Dee's answers go; main's and Eve's stay

    server.reset()
    git(root, "checkout", "-q", "main")
    (root / "goldens" / "greet.yaml").write_text(golden("Ada", "Bob"))
    assert all(r["cached"] for r in run(cli, root)["results"])
    (root / "goldens" / "greet.yaml").write_text(golden("Eve"))
    assert all(r["cached"] for r in run(cli, root)["results"])
    assert server.total == 0  # every kept answer came from the cache
    (root / "goldens" / "greet.yaml").write_text(golden("Cy"))
    run(cli, root)
    assert server.total == 1  # a pruned one is asked again


def test_recent_spend_stays_for_cost_check_and_cache_hit_rows_of_pruned_runs_go(
        cli, root: Path, server: FakeServer) -> None:
    first = run(cli, root)["run_id"]  # two billed requests
    second = run(cli, root)["run_id"]  # two cache hits
    run(cli, root)  # main's last run
    result = cli("gc", "--root", root, "--runs", "1", "--days", "30")
    assert result.exit_code == 0, result.output
    assert "removed 2 runs (4 results), 0 cache rows and 2 ledger rows" in result.stdout
    with db(root) as conn:
        hits = conn.execute("SELECT count(*) FROM ledger WHERE run_id = ?", (second,)).fetchone()
        billed = conn.execute("SELECT count(*) FROM ledger WHERE run_id = ? AND status = 'ok'", (first,)).fetchone()
    assert hits == (0,) and billed == (2,)  # a pruned run's recent spend stays for `cost --check`
    cost = cli("cost", "--root", root, "--since", "1d", "--format", "json")
    assert cost.exit_code == 0 and json.loads(cost.stdout)["total"]["cost_usd"] > 0, cost.stdout


def test_recorded_answers_are_kept_whatever_their_age(cli, root: Path, server: FakeServer) -> None:
    recorded = run(cli, root, "--record")["run_id"]
    (root / "goldens" / "greet.yaml").write_text(golden("Zed"))
    latest = run(cli, root)["run_id"]
    with db(root) as conn:
        conn.execute("UPDATE runs SET git_branch = 'other' WHERE id = ?", (recorded,))
    age(root, [recorded])
    with db(root) as conn:
        conn.execute("UPDATE runs SET git_branch = 'x' WHERE id = ?", (latest,))
        conn.execute("INSERT INTO runs (id, started_at, git_branch, models, options) VALUES"
                     " ('newer-other', '2999-01-01T00:00:00.000Z', 'other', '[]', '{}')")
    result = cli("gc", "--root", root, "--days", "0", "--runs", "0")
    assert result.exit_code == 0, result.output
    with db(root) as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE id = ?", (recorded,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM cache").fetchone() == (3,)  # Ada, Bob recorded; Zed: kept run


def test_runs_from_before_the_ledger_kept_cache_keys_keep_their_answers(cli, root: Path, server: FakeServer) -> None:
    run_id = run(cli, root)["run_id"]
    with db(root) as conn:
        conn.execute("UPDATE ledger SET cache_key = NULL")
        conn.execute("UPDATE cache SET created_at = ?", (OLD,))
    result = cli("gc", "--root", root, "--runs", "1", "--days", "36500")
    assert result.exit_code == 0 and counts(root)["cache"] == 2
    assert "by age only" in result.output
    assert run_id


def test_ledger_rows_carry_the_cache_key(cli, root: Path, server: FakeServer) -> None:
    first = run(cli, root)["run_id"]
    second = run(cli, root)["run_id"]
    with db(root) as conn:
        keys = {run_id: sorted(k for (k,) in conn.execute("SELECT cache_key FROM ledger WHERE run_id = ?", (run_id,)))
                for run_id in (first, second)}
        cached = sorted(k for (k,) in conn.execute("SELECT key FROM cache"))
    assert keys[first] == keys[second] == cached and len(cached) == 2


def test_a_database_of_the_previous_schema_is_migrated_first(cli, root: Path, server: FakeServer) -> None:
    path = root / ".promptci" / "promptci.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        for script in MIGRATIONS[:-1]:
            conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    result = cli("gc", "--root", root)
    assert result.exit_code == 0, result.output
    with db(root) as conn:
        assert "cache_key" in [row[1] for row in conn.execute("PRAGMA table_info(ledger)")]


@pytest.mark.parametrize(("args", "said"), [(["--runs", "-1"], "--runs -1: give a number of runs of 0 or more"),
                                            (["--days", "-2"], "--days -2: give an age of 0 days or more"),
                                            (["--runs", "many"], "Invalid value for '--runs'")])
def test_bad_options_are_exit_2_with_the_fix(cli, root: Path, args: list[str], said: str) -> None:
    result = cli("gc", "--root", root, *args)
    assert result.exit_code == 2 and said in result.output


def test_no_database_is_nothing_to_collect(cli, project) -> None:
    root = project({"prompts/a.txt": "x", "goldens/a.yaml": golden("Ada")})
    result = cli("gc", "--root", root)
    assert result.exit_code == 0 and "nothing to collect" in result.output
    assert not (root / ".promptci" / "promptci.db").exists()


@pytest.fixture(params=["sqlite", "postgres"])
def team(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The store gc works on: the project's SQLite file (None), or a PostgreSQL team store (its URL)."""
    if request.param == "sqlite":
        return None
    url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("PROMPTCI_STORE", url)
    return url


def opened(root: Path, url: str | None) -> Store:
    return PostgresStore.open(url) if url else Store.open(root / ".promptci" / "promptci.db")


def test_the_same_rules_prune_either_store(cli, root: Path, server: FakeServer, team: str | None) -> None:
    first, hits = run(cli, root)["run_id"], run(cli, root)["run_id"]  # Ada and Bob billed, then cache hits
    git(root, "checkout", "-q", "-b", "feature")
    (root / "goldens" / "greet.yaml").write_text(golden("Cy"))
    old_feature = run(cli, root)["run_id"]
    (root / "goldens" / "greet.yaml").write_text(golden("Dee"))
    run(cli, root)  # feature's last run
    git(root, "checkout", "-q", "main")
    (root / "goldens" / "greet.yaml").write_text(golden("Ada", "Bob"))
    run(cli, root)  # main's last run: cache hits
    with opened(root, team) as store:
        aged = [first, hits, old_feature]
        store._write_together([*(("UPDATE runs SET started_at = ? WHERE id = ?", (OLD, r)) for r in aged),
                               *(("UPDATE ledger SET ts = 1767225600, at = ? WHERE run_id = ?", (OLD, r))
                                 for r in aged),
                               ("UPDATE cache SET created_at = ?", (OLD,))])
    result = cli("gc", "--root", root, "--days", "30", "--runs", "1")
    assert result.exit_code == 0, result.output
    assert ("removed 3 runs (5 results), 1 cache row and 5 ledger rows; kept 2 runs, 1 of them as their branch's "
            "last") in result.stdout
    with opened(root, team) as store:
        assert not {r.run_id for r in store.list_runs()} & set(aged)
        assert [e.case_id for e in store.ledger()] == ["dee", "ada", "bob"]  # feature's bill; main's hits
        assert store._read("SELECT count(*) FROM cache") == [(3,)]  # Cy's answer went
    server.reset()
    assert all(r["cached"] for r in run(cli, root)["results"]) and server.total == 0
    if team:
        assert "does not shrink" in result.output and not (root / ".promptci" / "promptci.db").exists()


def test_a_day_of_spend_stays_whatever_days_says(cli, root: Path, server: FakeServer, team: str | None) -> None:
    billed = run(cli, root)["run_id"]
    run(cli, root)  # cache hits: main's last run
    result = cli("gc", "--root", root, "--days", "0", "--runs", "0")
    assert result.exit_code == 0, result.output
    assert "removed 1 run (2 results), 0 cache rows and 0 ledger rows" in result.stdout
    with opened(root, team) as store:
        assert [e.status for e in store.ledger(run_id=billed)] == ["ok", "ok"]  # today's spend, for cost --check
    cost = cli("cost", "--root", root, "--since", "1d", "--format", "json")
    assert cost.exit_code == 0 and json.loads(cost.stdout)["total"]["cost_usd"] > 0, cost.stdout
