"""The SQLite store: migrations, runs and results, the response cache, the ledger, kill safety."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from olddb import database_at_schema

from promptci.errors import PromptCIError
from promptci.migrations import SCHEMA_VERSION, schema_version, split_statements
from promptci.store import LedgerEntry, Store, cache_identity, now_iso
from promptci.types import CaseResult, Completion, ErrorInfo, GitInfo, Request, Score, Summary, Usage

GIT = GitInfo(commit="abc123", dirty=True, branch="main")


def make_result(i: int, **changes: object) -> CaseResult:
    result = CaseResult(
        prompt="triage/route", case_id=f"case-{i}", file="goldens/route.yaml", line=10 + i,
        model="openai:gpt-4o-mini", status="passed" if i % 3 else "failed", repeat=0,
        output=f"answer {i} — ünïcode", input_tokens=70, output_tokens=3, cached_input_tokens=0,
        cost_usd=0.00001 * i, saved_usd=0.001 if i % 2 else None, latency_ms=812.5, ttft_ms=230.1, cached=bool(i % 2),
        resolved_model="gpt-4o-mini-2024-07-18", attempts=1, tags=("smoke",),
        scores=(Score("exact", 1.0 if i % 3 else 0.0, bool(i % 3), "reason", "- a\n+ b"),),
    )
    return replace(result, **changes)  # type: ignore[arg-type]


def make_request(**changes: object) -> Request:
    request = Request(model="openai:gpt-4o-mini",
                      messages=({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}),
                      params={"temperature": 0, "max_tokens": 30})
    return replace(request, **changes)  # type: ignore[arg-type]


OPENAI = {"type": "openai", "base_url": ""}


def integrity_error(store: Store) -> type[Exception]:
    """The backend's DB-API IntegrityError (a constraint refused a row)."""
    from promptci.pgstore import PostgresStore

    if isinstance(store, PostgresStore):
        import psycopg

        return psycopg.IntegrityError
    return sqlite3.IntegrityError


# migrations


def test_open_creates_folder_and_migrates_from_empty(tmp_path: Path) -> None:
    path = tmp_path / ".promptci" / "promptci.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    assert schema_version(conn) == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "results", "ledger", "cache"} <= tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopen_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with Store.open(path) as store:
        store.start_run("r1", "2026-11-01T10:00:00Z", GIT, ["echo"], {})
    for _ in range(2):
        with Store.open(path) as store:
            assert store.load_run("r1") is not None
    assert schema_version(sqlite3.connect(path)) == SCHEMA_VERSION


def test_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(PromptCIError) as caught:
        Store.open(path)
    assert (f"database schema {SCHEMA_VERSION + 5} is newer than this promptci supports "
            f"({SCHEMA_VERSION}); upgrade promptci") in str(caught.value)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(PromptCIError, match="the promptci database is damaged"):
        Store.open(path)


def test_split_statements_keeps_semicolons_inside_strings() -> None:
    script = "CREATE TABLE t (a TEXT DEFAULT ';');\nINSERT INTO t VALUES ('x;y');\n"
    assert list(split_statements(script)) == ["CREATE TABLE t (a TEXT DEFAULT ';');",
                                              "INSERT INTO t VALUES ('x;y');"]


def test_migration_4_keeps_each_runs_resolved_models_in_its_row(tmp_path: Path) -> None:
    from promptci.migrations import migrate
    path = tmp_path / "db.sqlite"
    conn = database_at_schema(path, 3)
    for run_id in ("r1", "r2"):
        conn.execute("INSERT INTO runs (id, started_at, models, options)"
                     " VALUES (?, '2026-11-01T10:00:00Z', '[]', '{}')", (run_id,))
    rows = [("m", '{"resolved_model": "v1"}'), ("m", '{"resolved_model": "v1"}'), ("m", '{"resolved_model": null}'),
            ("n", '{"resolved_model": "w1"}'), ("m", "not json"), ("m", '{"resolved_model": "v2"}')]
    conn.executemany("INSERT INTO results (run_id, prompt, case_id, model, status, data)"
                     " VALUES ('r1', 'p', 'c', ?, 'passed', ?)", rows)
    assert migrate(conn, path) == 3
    found = dict(conn.execute("SELECT id, resolved_models FROM runs").fetchall())
    assert {model: sorted(v) for model, v in json.loads(found["r1"]).items()} == {"m": ["v1", "v2"], "n": ["w1"]}
    assert json.loads(found["r2"]) == {}


def test_last_resolved_models_is_the_newest_earlier_run_that_resolved_the_model(store: Store) -> None:
    def stored(run_id: str, minute: int, *versions: str | None, model: str = "openai:gpt-4o-mini",
               finish: bool = True) -> None:
        store.start_run(run_id, f"2026-11-01T10:{minute:02d}:00Z", GIT, [model], {})
        for i, version in enumerate(versions):
            store.add_result(run_id, make_result(i, model=model, resolved_model=version))
        if finish:
            store.finish_run(run_id, f"2026-11-01T10:{minute:02d}:30Z", Summary(total=len(versions)), False)

    stored("old", 1, "v1", "v2", "v1")
    stored("newer", 2, "v3", None)
    stored("unresolved", 3, None, None)
    stored("other-model", 4, "x9", model="anthropic:claude")
    stored("killed", 5, "v9", finish=False)  # never finished: its results are not a baseline
    stored("now", 6, "v4")
    stored("later", 7, "v5")
    assert store.last_resolved_models("openai:gpt-4o-mini", "now") == ("newer", {"v3"})
    assert store.last_resolved_models("openai:gpt-4o-mini", "newer") == ("old", {"v1", "v2"})
    assert store.last_resolved_models("openai:gpt-4o-mini", "old") is None
    assert store.last_resolved_models("anthropic:claude", "later") == ("other-model", {"x9"})
    assert store.last_resolved_models("openai:gpt-4o-mini", "later") == ("now", {"v4"})


# runs and results


def test_results_round_trip_through_load_run(store: Store) -> None:
    results = [make_result(i) for i in range(7)]
    results.append(make_result(99, status="error", output=None, error="rate limited after 4 tries",
                               cost_usd=None, scores=()))
    summary = Summary(total=8, passed=4, failed=3, errors=1, cost_usd=0.001, cost_unknown=1, cached=3)
    store.start_run("run-0001", "2026-11-01T10:00:00Z", GIT, ["openai:gpt-4o-mini", "echo"], {"j": 8})
    for result in results:
        store.add_result("run-0001", result)
    store.finish_run("run-0001", "2026-11-01T10:01:00Z", summary, interrupted=False, problems=["note"])

    run = store.load_run("run-0001")
    assert run is not None
    assert run.results == tuple(results)
    assert run.summary == summary
    assert run.git == GIT
    assert run.models == ("openai:gpt-4o-mini", "echo")
    assert (run.started_at, run.finished_at, run.interrupted) == (
        "2026-11-01T10:00:00Z", "2026-11-01T10:01:00Z", False)
    assert run.problems == ("note",)


def test_load_run_by_unique_prefix_and_ambiguous_prefix(store: Store) -> None:
    for run_id, at in (("a1b2c3", "2026-11-01T10:00:00Z"), ("a1ffff", "2026-11-02T10:00:00Z")):
        store.start_run(run_id, at, GIT, ["echo"], {})
    assert store.load_run("a1b").run_id == "a1b2c3"  # type: ignore[union-attr]
    assert store.load_run("zz") is None
    with pytest.raises(PromptCIError, match="ambiguous"):
        store.load_run("a1")


def test_last_run_skips_unfinished_and_honours_before(store: Store) -> None:
    store.start_run("old", "2026-11-01T10:00:00Z", GIT, ["echo"], {})
    store.finish_run("old", "2026-11-01T10:01:00Z", Summary(total=1), interrupted=False)
    store.start_run("mid", "2026-11-02T10:00:00Z", GIT, ["echo"], {})
    store.finish_run("mid", "2026-11-02T10:01:00Z", Summary(total=2), interrupted=True)
    store.start_run("crashed", "2026-11-03T10:00:00Z", GIT, ["echo"], {})
    assert store.last_run().run_id == "mid"  # type: ignore[union-attr]
    assert store.last_run(before="mid").run_id == "old"  # type: ignore[union-attr]
    assert store.last_run(before="2026-11-01T12:00:00Z").run_id == "old"  # type: ignore[union-attr]
    assert store.last_run(before="old") is None


def test_unfinished_run_gets_a_summary_from_its_results(store: Store) -> None:
    store.start_run("r", "2026-11-01T10:00:00Z", GIT, ["echo"], {})
    for i in range(1, 5):
        store.add_result("r", make_result(i))
    run = store.load_run("r")
    assert run is not None and run.finished_at is None
    assert (run.summary.total, run.summary.passed, run.summary.failed) == (4, 3, 1)
    assert run.summary.cost_usd == pytest.approx(0.0001)
    assert (run.summary.cached, run.summary.saved_usd) == (2, pytest.approx(0.002))
    assert run.summary.input_tokens == 140  # the two cache hits billed no tokens


def test_list_runs_newest_first_with_totals(store: Store) -> None:
    for n in range(3):
        run_id = f"run{n}"
        store.start_run(run_id, f"2026-11-0{n + 1}T10:00:00Z", GIT, ["echo"], {})
        store.add_result(run_id, make_result(1))
        if n < 2:
            store.finish_run(run_id, f"2026-11-0{n + 1}T10:05:00Z",
                             Summary(total=1, passed=1, cost_usd=0.5 * n), interrupted=n == 1)
    infos = store.list_runs(limit=2)
    assert [i.run_id for i in infos] == ["run2", "run1"]
    assert infos[0].summary.total == 1 and infos[0].finished_at is None
    assert infos[1].interrupted and infos[1].cost_usd == 0.5
    assert (infos[1].commit, infos[1].dirty, infos[1].models) == ("abc123", True, ("echo",))


# response cache


def test_cache_key_is_stable_and_changes_with_what_changes_the_answer() -> None:
    key = Store.cache_key(OPENAI, make_request())
    assert key == Store.cache_key(dict(OPENAI), make_request())
    assert len(key) == 64
    changed = [
        Store.cache_key(OPENAI, make_request(params={"temperature": 0.5, "max_tokens": 30})),
        Store.cache_key(OPENAI, make_request(messages=({"role": "user", "content": "Hi!"},))),
        Store.cache_key({"type": "openai", "base_url": "http://127.0.0.1:9/v1"}, make_request()),
        Store.cache_key(OPENAI, make_request(model="openai:gpt-4o")),
        Store.cache_key(OPENAI, make_request(output="json")),
    ]
    assert len({key, *changed}) == len(changed) + 1


def test_cache_key_ignores_param_order_and_has_no_room_for_timeouts() -> None:
    a = make_request(params={"temperature": 0, "max_tokens": 30})
    b = make_request(params={"max_tokens": 30, "temperature": 0})
    assert Store.cache_key(OPENAI, a) == Store.cache_key(OPENAI, b)
    # timeouts, retries and concurrency live in Settings, never in a Request or provider identity
    assert set(make_request().identity()) == {"model", "messages", "params", "output"}


def test_cache_hit_miss_and_failures_not_cached(store: Store) -> None:
    request = make_request()
    key = Store.cache_key(OPENAI, request)
    assert store.cache_get(key) is None
    fresh = Completion(text="Hello!", usage=Usage(12, 3, 4), latency_ms=812.5, ttft_ms=230.1,
                       resolved_model="gpt-4o-mini-2024-07-18", finish_reason="stop", chunks=("Hel", "lo!"))
    store.cache_put(key, cache_identity(OPENAI, request), fresh)
    assert store.cache_get(key) == replace(fresh, cached=True)

    failed = Completion(text=None, error=ErrorInfo("server", "boom", 500, True))
    other = Store.cache_key(OPENAI, make_request(params={}))
    store.cache_put(other, cache_identity(None, request), failed)
    assert store.cache_get(other) is None


def test_cache_entries_hold_the_identity_and_filter_by_key(store: Store) -> None:
    keys = []
    for n in range(3):
        request = make_request(params={"seed": n})
        key = Store.cache_key(OPENAI, request)
        keys.append(key)
        store.cache_put(key, cache_identity(OPENAI, request), Completion(text=f"t{n}", usage=None))
    entries = list(store.cache_entries())
    assert [e.key for e in entries] == sorted(keys)
    assert entries[0].identity["provider"] == OPENAI
    assert entries[0].identity["request"]["params"]["seed"] in (0, 1, 2)
    picked = list(store.cache_entries([keys[1], "missing"]))
    assert [e.completion.text for e in picked] == ["t1"]
    assert picked[0].completion.usage is None and picked[0].completion.cached


# ledger


def ledger_entry(at: str, **changes: object) -> LedgerEntry:
    entry = LedgerEntry(at=at, run_id="r1", git_commit="abc", prompt="p", case_id="c", model="openai:gpt-4o",
                        provider="openai", input_tokens=100, output_tokens=20, cached_input_tokens=10,
                        cost_usd=0.0012, saved_usd=None, latency_ms=450.0, ttft_ms=120.0, status="ok",
                        attempts=2, kind="case", error_kind=None)
    return replace(entry, **changes)  # type: ignore[arg-type]


def test_ledger_round_trip_and_filters(store: Store) -> None:
    entries = [
        ledger_entry("2026-11-01T23:59:59.500Z"),
        ledger_entry("2026-11-02T00:00:00+00:00", status="cached", cost_usd=0.0, saved_usd=0.0012),
        ledger_entry("2026-11-02T01:00:00+01:00", run_id="r2", cost_usd=None, kind="judge"),  # = 00:00Z
        ledger_entry("2026-11-03T08:00:00Z", status="error", error_kind="rate_limited", cost_usd=None),
    ]
    for entry in entries:
        store.record_request(entry)
    assert store.ledger() == [entries[0], entries[1], entries[2], entries[3]]
    assert store.ledger(since="2026-11-02T00:00:00Z") == entries[1:]
    assert store.ledger(since="2026-11-02") == entries[1:]
    assert store.ledger(run_id="r2") == [entries[2]]
    assert store.ledger(since="2026-11-03T00:00:00Z", run_id="r1") == [entries[3]]


def test_add_result_with_its_requests_writes_both_or_neither(store: Store) -> None:
    store.start_run("r1", "2026-11-01T10:00:00Z", GIT, ["openai:gpt-4o"], {})
    store.add_result("r1", make_result(1), requests=[ledger_entry("2026-11-01T10:00:01Z"),
                                                     ledger_entry("2026-11-01T10:00:02Z", kind="judge")])
    assert [e.kind for e in store.ledger(run_id="r1")] == ["case", "judge"]
    with pytest.raises(integrity_error(store)):  # model is NOT NULL: fails after the result's insert
        store.add_result("r1", make_result(2), requests=[ledger_entry("2026-11-01T10:00:03Z", model=None)])
    assert len(store.load_run("r1").results) == 1  # type: ignore[union-attr]
    assert len(store.ledger(run_id="r1")) == 2
    store.add_result("r1", make_result(3))  # the store still works after the rollback
    assert len(store.load_run("r1").results) == 2  # type: ignore[union-attr]


def test_now_iso_is_utc_and_parseable(store: Store) -> None:
    stamp = now_iso()
    assert stamp.endswith("Z")
    store.record_request(ledger_entry(stamp))
    assert store.ledger(since="2000-01-01")[0].at == stamp


def test_nothing_secret_lands_in_the_database(tmp_path: Path) -> None:
    secret = "sk-test-SECRET-never-stored"
    path = tmp_path / "db.sqlite"
    with Store.open(path) as store:
        request = make_request()
        key = Store.cache_key(OPENAI, request)
        store.cache_put(key, cache_identity(OPENAI, request), Completion(text="ok"))
        store.record_request(ledger_entry(now_iso()))
    assert secret.encode() not in path.read_bytes()


# durability


WRITER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from promptci.store import Store, LedgerEntry
    from promptci.types import CaseResult, GitInfo
    store = Store.open(Path(sys.argv[1]))
    store.start_run("killed", "2026-11-01T10:00:00Z", GitInfo(), ["echo"], {})
    for i in range(int(sys.argv[2])):
        store.add_result("killed", CaseResult("p", f"c{i}", "g.yaml", i, "echo", "passed", output=str(i)))
        store.record_request(LedgerEntry("2026-11-01T10:00:00Z", "killed", None, "p", f"c{i}", "echo", "echo"))
    if sys.argv[3] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(0)
""")


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_killed_process_loses_no_finished_result(tmp_path: Path, how: str) -> None:
    if how == "kill" and not hasattr(signal, "SIGKILL"):
        pytest.skip("no SIGKILL here")
    path = tmp_path / ".promptci" / "promptci.db"
    done = subprocess.run([sys.executable, "-c", WRITER, str(path), "250", how], check=False)
    assert done.returncode == (-signal.SIGKILL if how == "kill" else 0)
    assert (path.parent / "promptci.db-wal").exists()  # nothing was checkpointed on a clean close
    with Store.open(path) as store:
        run = store.load_run("killed")
        assert run is not None and run.finished_at is None
        assert len(run.results) == 250
        assert [r.output for r in run.results[-2:]] == ["248", "249"]
        assert len(store.ledger(run_id="killed")) == 250


def test_two_connections_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with Store.open(path) as writer, Store.open(path) as reader:
        writer.start_run("shared", "2026-11-01T10:00:00Z", GIT, ["echo"], {})
        writer.add_result("shared", make_result(1))
        assert len(reader.load_run("shared").results) == 1  # type: ignore[union-attr]
    assert os.path.getsize(path) > 0


def test_a_request_id_is_stored_once_however_often_its_row_is_written(store: Store) -> None:
    store.start_run("r1", "2026-11-01T10:00:00Z", GIT, ["openai:gpt-4o"], {})
    once = ledger_entry("2026-11-01T10:00:01Z", request_id="req-1")
    store.record_request(once)
    store.record_request(once)  # a write retried after its commit landed
    store.add_result("r1", make_result(1), requests=[once], position=0)
    store.cache_put("k", {"request": 1}, Completion(text="a", latency_ms=1.0), ledger=once)
    assert store.ledger() == [once]
    unkeyed = ledger_entry("2026-11-01T10:00:02Z")  # rows from before request ids: each write is a row
    store.record_request(unkeyed)
    store.record_request(unkeyed)
    assert store.ledger() == [once, unkeyed, unkeyed]


def test_a_result_at_its_place_in_a_run_is_stored_once(store: Store) -> None:
    store.start_run("r1", "2026-11-01T10:00:00Z", GIT, ["openai:gpt-4o"], {})
    store.add_result("r1", make_result(1), position=0)
    store.add_result("r1", make_result(1), position=0)  # a write retried after its commit landed
    store.add_result("r1", make_result(2), position=1)
    store.add_result("r1", make_result(3))  # no place (stored before places were kept): each write is a row
    store.add_result("r1", make_result(3))
    assert [r.case_id for r in store.load_run("r1").results] == ["case-3", "case-3", "case-1", "case-2"]  # type: ignore[union-attr]


def test_migration_9_drops_a_result_stored_twice_at_one_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = database_at_schema(path, 8)
    conn.execute("INSERT INTO runs (id, started_at, models, options) VALUES ('r', '2026-11-01T10:00:00Z', '[]', '{}')")
    for position in (0, 0, 1, None, None):
        conn.execute("INSERT INTO results (run_id, prompt, case_id, model, status, data, position)"
                     " VALUES ('r', 'p', ?, 'm', 'passed', ?, ?)",
                     (f"c{position}", json.dumps(make_result(0).to_dict()), position))
    conn.close()
    with Store.open(path) as store:
        placed = store._read("SELECT position FROM results WHERE position IS NOT NULL")
        assert sorted(row[0] for row in placed) == [0, 1]
        assert store._read("SELECT count(*) FROM results WHERE position IS NULL") == [(2,)]
