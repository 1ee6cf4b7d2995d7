"""`promptci store copy`: an SQLite file into the PostgreSQL team store and back, idempotently, through the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeserver import FakeServer, running_fake_server
from test_teamstore import runner_copy

from promptci.pgstore import PostgresStore
from promptci.store import LedgerEntry, Store

NOTHING = "copied 0 run(s), 0 result(s), 0 cache row(s) and 0 ledger row(s)"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-1234567890")
    with running_fake_server(latency_s=0.0, chunks=1) as fake:
        yield fake


def stored(store: Store) -> tuple:
    """What a store holds, comparable across backends."""
    runs = store.list_runs(limit=100)
    loaded = [store.load_run(r.run_id) for r in runs]
    return ([(r.run_id, r.summary, r.command) for r in runs], [run.results for run in loaded if run],
            store.ledger(), sorted((e.key, e.completion.text) for e in store.cache_entries()))


def test_copy_to_the_team_store_and_back_is_idempotent(cli, tmp_path: Path, server: FakeServer,
                                                       postgres_url: str) -> None:
    laptop = runner_copy(tmp_path / "laptop", server)
    for _ in range(2):  # a fresh run, then a cached one: results, cache, and ok + cached ledger rows
        assert cli("run", "--root", laptop, "-m", "local:m").exit_code == 0
    database = laptop / ".promptci" / "promptci.db"
    with Store.open(database) as store:
        store.record_request(LedgerEntry(at="2026-11-01T10:00:00Z", run_id=None, git_commit=None, prompt="p",
                                         case_id="c", model="m", provider=None, cost_usd=0.25))
        store.record_request(LedgerEntry(at="2026-11-01T10:00:00Z", run_id=None, git_commit=None, prompt="p",
                                         case_id="c", model="m", provider=None, cost_usd=0.25))  # twice, both kept
        expected = stored(store)
    moved = cli("store", "copy", "--from", database, "--to", postgres_url)
    assert moved.exit_code == 0, moved.output
    assert "copied 2 run(s), 6 result(s), 3 cache row(s) and 8 ledger row(s)" in moved.output
    with PostgresStore.open(postgres_url) as team:
        assert stored(team) == expected
    again = cli("store", "copy", "--from", database, "--to", postgres_url)
    assert again.exit_code == 0 and NOTHING in again.output
    back = tmp_path / "back.db"
    returned = cli("store", "copy", "--from", postgres_url, "--to", back)
    assert returned.exit_code == 0, returned.output
    with Store.open(back) as store:
        assert stored(store) == expected
    server.reset()
    ci = runner_copy(tmp_path / "ci", server)
    result = cli("run", "--root", ci, "-m", "local:m", "--format", "json", env={"PROMPTCI_STORE": postgres_url})
    assert result.exit_code == 0 and server.total == 0  # the laptop's answers, moved in, answer CI
    assert all(r["cached"] for r in json.loads(result.stdout)["results"])


def test_copy_from_a_missing_file_is_a_usage_error(cli, tmp_path: Path) -> None:
    result = cli("store", "copy", "--from", tmp_path / "none.db", "--to", tmp_path / "x.db")
    assert result.exit_code == 2 and "no such database file" in result.output
    assert not (tmp_path / "x.db").exists()


def test_copy_never_prints_the_password(cli, tmp_path: Path) -> None:
    source = tmp_path / "a.db"
    Store.open(source).close()
    url = f"postgresql://ci:hunter2-long-secret@/x?host={tmp_path / 'nothing-here'}"
    result = cli("store", "copy", "--from", source, "--to", url)
    assert result.exit_code == 4 and "hunter2-long-secret" not in result.output
    assert "postgresql://ci:[redacted]@/x" in result.output
