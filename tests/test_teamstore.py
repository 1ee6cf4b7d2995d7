"""The PostgreSQL team store end to end: chosen by PROMPTCI_STORE or store.url, shared by runners (a cache hit
across project copies), many writers at once losing and double-counting nothing, an unreachable store (exit 4),
and DSN passwords never printed. Against a real server the suite starts (tests/pgserver.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server

from promptci.pgstore import PostgresStore
from promptci.secrets import environment_secrets, redact_dsn, redact_environment
from promptci.store import usd_units

KEY = "sk-test-SECRET-1234567890"
PROMPT = "---\nsystem: Be brief.\nparams: {temperature: 0}\n---\nHello {{ name }}!\n"
GOLDEN = "cases:\n" + "".join(f"  - id: {n.lower()}\n    input: {{name: {n}}}\n    expected: Hello {n}!\n"
                              for n in ("Ada", "Bob", "Cy"))
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FAKE_OPENAI_KEY", KEY)
    with running_fake_server(latency_s=0.0, chunks=1) as fake:
        yield fake


def runner_copy(folder: Path, server: FakeServer, extra_config: str = "") -> Path:
    """One runner's checkout of the project: its own folder and its own .promptci state."""
    files = {"prompts/greet.txt": PROMPT, "goldens/greet.yaml": GOLDEN,
             "promptci.yaml": f"providers:\n  local: {{type: openai, base_url: '{server.openai_base_url}', "
                              "api_key_env: FAKE_OPENAI_KEY}\npricing:\n  local:m: {input: 1.0, output: 2.0}\n"
                              + extra_config}
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text, encoding="utf-8")
    return folder


def run_json(cli, root: Path, url: str) -> dict:
    result = cli("run", "--root", root, "-m", "local:m", "--format", "json", env={"PROMPTCI_STORE": url})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_run_on_runner_b_is_answered_by_what_runner_a_cached(cli, tmp_path: Path, server: FakeServer,
                                                               postgres_url: str) -> None:
    runner_a = runner_copy(tmp_path / "a", server)
    runner_b = runner_copy(tmp_path / "b", server)
    first = run_json(cli, runner_a, postgres_url)
    assert server.total == 3 and [r["cached"] for r in first["results"]] == [False] * 3
    server.reset()
    second = run_json(cli, runner_b, postgres_url)
    assert server.total == 0
    assert [r["cached"] for r in second["results"]] == [True] * 3
    assert not (runner_a / ".promptci" / "promptci.db").exists()  # nothing went to a local file
    assert not (runner_b / ".promptci" / "promptci.db").exists()
    with PostgresStore.open(postgres_url) as store:
        statuses = sorted(e.status for e in store.ledger())
        runs = store.list_runs()
    assert statuses == ["cached"] * 3 + ["ok"] * 3  # one ledger row per request, from both runners
    assert len(runs) == 2
    shown = cli("runs", "--root", runner_b, env={"PROMPTCI_STORE": postgres_url})
    assert shown.exit_code == 0 and runs[1].run_id[:8] in shown.output  # B lists A's run too


def test_store_url_in_promptci_yaml_chooses_the_team_store(cli, tmp_path: Path, server: FakeServer,
                                                           postgres_url: str) -> None:
    root = runner_copy(tmp_path / "a", server, f"store:\n  url: '{postgres_url}'\n")
    result = cli("run", "--root", root, "-m", "local:m", "--format", "json")
    assert result.exit_code == 0, result.output
    with PostgresStore.open(postgres_url) as store:
        assert len(store.ledger()) == 3
    local = cli("run", "--root", root, "-m", "local:m", "--format", "json", env={"PROMPTCI_STORE": "local"})
    assert local.exit_code == 0, local.output
    assert (root / ".promptci" / "promptci.db").is_file()  # PROMPTCI_STORE=local: this machine's file


def test_a_password_in_promptci_yaml_is_refused_with_its_line(cli, tmp_path: Path, server: FakeServer) -> None:
    root = runner_copy(tmp_path / "a", server, "store:\n  url: postgresql://ci:hunter2-long-secret@db/promptci\n")
    result = cli("run", "--root", root, "-m", "local:m")
    assert result.exit_code == 2
    assert "promptci.yaml:6" in result.output and "PGPASSWORD" in result.output
    assert "hunter2-long-secret" not in result.output


def test_a_team_store_whose_ledger_trigger_was_dropped_is_refused_naming_it(cli, tmp_path: Path, server: FakeServer,
                                                                           postgres_url: str) -> None:
    from promptci.pgstore import TRIGGERS

    assert TRIGGERS == ("ledger_days_insert", "ledger_days_delete", "ledger_days_update")
    with PostgresStore.open(postgres_url) as store:
        store._write("DROP TRIGGER ledger_days_delete ON ledger", ())
    result = cli("cost", "--root", runner_copy(tmp_path / "a", server), env={"PROMPTCI_STORE": postgres_url})
    assert result.exit_code == 2, result.output
    assert "lacks trigger ledger_days_delete" in result.output and "store copy" in result.output


def test_a_store_url_that_is_not_postgres_is_a_usage_error(cli, tmp_path: Path, server: FakeServer) -> None:
    root = runner_copy(tmp_path / "a", server)
    result = cli("run", "--root", root, "-m", "local:m", env={"PROMPTCI_STORE": "mysql://x@db/y"})
    assert result.exit_code == 2 and "PROMPTCI_STORE" in result.output and "postgresql://" in result.output


def test_an_unreachable_store_at_start_is_exit_4_without_the_password(cli, tmp_path: Path,
                                                                      server: FakeServer) -> None:
    root = runner_copy(tmp_path / "a", server)
    url = f"postgresql://ci:hunter2-long-secret@/promptci?host={tmp_path / 'no-server-here'}"
    result = cli("run", "--root", root, "-m", "local:m", env={"PROMPTCI_STORE": url})
    assert result.exit_code == 4, result.output
    assert "team store postgresql://ci:[redacted]@/promptci" in result.output
    assert "cannot connect" in result.output and "PROMPTCI_STORE" in result.output
    assert "hunter2-long-secret" not in result.output
    assert server.total == 0  # nothing was asked of a model whose answer could not be stored


def test_redact_dsn_covers_urls_and_connection_strings() -> None:
    text = ("postgresql://bob:s3cret-pass@db:5432/x?sslmode=require; "
            "host=db user=bob password='it''s long' dbname=x; postgres://only-user@db/x")
    shown = redact_dsn(text)
    assert "s3cret-pass" not in shown and "it''s long" not in shown
    assert "postgresql://bob:[redacted]@db:5432/x" in shown and "password=[redacted]" in shown
    assert "postgres://only-user@db/x" in shown


def test_the_last_line_of_defence_redacts_the_store_password_alone_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTCI_STORE", "postgresql://bob:p%40ss-w0rd-long@db/x")
    assert ("<$PROMPTCI_STORE password>", "p@ss-w0rd-long") in environment_secrets()
    assert redact_environment("auth failed for p@ss-w0rd-long") == "auth failed for <$PROMPTCI_STORE password>"


WRITER = textwrap.dedent("""
    import sys
    from promptci.pgstore import PostgresStore
    from promptci.store import LedgerEntry
    from promptci.types import CaseResult, Completion, GitInfo, Usage

    url, writer, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with PostgresStore.open(url) as store:
        run_id = f"run-{writer}"
        store.start_run(run_id, "2026-11-01T10:00:00Z", GitInfo(None, False, None), ["m"], {})
        for i in range(count):
            cost = (writer * count + i + 1) / 2**20  # exact binary fractions: any order of summing is exact
            result = CaseResult(prompt="p", case_id=f"w{writer}-{i}", file="g.yaml", line=1, model="m",
                                status="passed", repeat=0, output="x", cost_usd=cost)
            entry = LedgerEntry(at="2026-11-01T10:00:01Z", run_id=run_id, git_commit=None, prompt="p",
                                case_id=result.case_id, model="m", provider="local", cost_usd=cost)
            store.add_result(run_id, result, [entry], position=i)
            if i % 5 == 0:  # every writer caches the same 100 answers: the same key, one row
                store.cache_put(f"key-{i // 5}", {"request": i // 5},
                                Completion(text=f"answer {i // 5}", usage=Usage(1, 1), latency_ms=1.0))
        store.finish_run(run_id, "2026-11-01T10:05:00Z", store.load_run(run_id).summary, False)
    print("done", writer)
""")


def test_eight_writers_at_once_lose_nothing_and_count_nothing_twice(tmp_path: Path, postgres_url: str) -> None:
    writers, count = 8, 500
    PostgresStore.open(postgres_url).close()  # the schema first; the migration race has its own test
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    processes = [subprocess.Popen([sys.executable, str(script), postgres_url, str(w), str(count)], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for w in range(writers)]
    outputs = [process.communicate(timeout=600) for process in processes]
    assert [p.returncode for p in processes] == [0] * writers, [err[-2000:] for _, err in outputs]
    with PostgresStore.open(postgres_url) as store:
        case_ids = [row[0] for row in store._read("SELECT case_id FROM results")]
        ledger = store.ledger()
        cache_rows = store._read("SELECT count(*) FROM cache")[0][0]
        runs = store.list_runs(limit=50)
    expected_ids = {f"w{w}-{i}" for w in range(writers) for i in range(count)}
    assert len(case_ids) == writers * count and set(case_ids) == expected_ids  # every row, once
    assert len(ledger) == writers * count and len({e.case_id for e in ledger}) == writers * count
    exact = sum(Fraction(k, 2**20) for k in range(1, writers * count + 1))
    assert Fraction(sum(e.cost_usd for e in ledger if e.cost_usd is not None)) == exact
    assert cache_rows == count // 5
    assert day_sums_of(postgres_url) == [("p", writers * count, sum(usd_units(e.cost_usd or 0) for e in ledger))]
    assert sorted(r.run_id for r in runs) == [f"run-{w}" for w in range(writers)]
    assert all(r.summary.total == count and r.finished_at for r in runs)


OPENER = "import sys\nfrom promptci.pgstore import PostgresStore\nPostgresStore.open(sys.argv[1]).close()\n"


def test_runners_opening_a_new_store_at_once_migrate_it_once(tmp_path: Path, postgres_url: str) -> None:
    processes = [subprocess.Popen([sys.executable, "-c", OPENER, postgres_url], cwd=REPO, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
    errors = [process.communicate(timeout=300)[1] for process in processes]
    assert [p.returncode for p in processes] == [0] * 4, errors
    with PostgresStore.open(postgres_url) as store:
        from promptci.migrations import SCHEMA_VERSION

        assert store._read("SELECT version FROM promptci_schema") == [(SCHEMA_VERSION,)]


def test_a_dropped_connection_is_opened_again(postgres_url: str, postgres_server) -> None:
    from promptci.store import LedgerEntry

    with PostgresStore.open(postgres_url) as store:
        pid = store._read("SELECT pg_backend_pid()")[0][0]
        with postgres_server.admin() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        store.record_request(LedgerEntry(at="2026-11-01T10:00:01Z", run_id=None, git_commit=None, prompt="p",
                                         case_id="c", model="m", provider="local", cost_usd=0.5))
        assert [e.cost_usd for e in store.ledger()] == [0.5]


class CommitThenDrop:
    """The store's connection whose next transaction commits and then loses the connection before the client
    hears back (its backend terminated from another connection): the drop that leaves a retry unsure."""

    def __init__(self, conn: Any, server: Any) -> None:
        self._conn, self._server, self.dropped = conn, server, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._conn.transaction() as transaction:
            yield transaction
        if not self.dropped:
            self.dropped = True
            pid = self._conn.info.backend_pid
            with self._server.admin() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                    pass  # until the backend is gone
            self._conn.execute("SELECT 1")  # the client learns of the drop only now: OperationalError


def test_a_write_retried_after_its_commit_landed_stores_each_request_and_result_once(
        postgres_url: str, postgres_server) -> None:
    from promptci.store import LedgerEntry
    from promptci.types import CaseResult, Completion, GitInfo

    def entry(n: int) -> LedgerEntry:
        return LedgerEntry(at="2026-11-01T10:00:01Z", run_id="r", git_commit=None, prompt="p", case_id=f"c{n}",
                           model="m", provider="local", cost_usd=0.5, request_id=f"req-{n}")

    with PostgresStore.open(postgres_url) as store:
        store.start_run("r", "2026-11-01T10:00:00Z", GitInfo(None, False, None), ["m"], {})
        writes = [lambda: store.add_result("r", CaseResult("p", "c1", "g.yaml", 1, "m", "passed", output="x"),
                                           [entry(1)], position=0),
                  lambda: store.cache_put("k", {"request": 2}, Completion(text="a", latency_ms=1.0), ledger=entry(2)),
                  lambda: store.record_request(entry(3))]
        for write in writes:
            dropping = store._pg = CommitThenDrop(store._pg, postgres_server)
            write()
            assert dropping.dropped and store._pg is not dropping  # it did reconnect and write again
        assert [e.case_id for e in store.ledger()] == ["c1", "c2", "c3"]
        assert [r.case_id for r in store.load_run("r").results] == ["c1"]
        assert store._read("SELECT count(*) FROM cache") == [(1,)]
    assert day_sums_of(postgres_url) == [("p", 3, 3 * usd_units(0.5))]  # the day sums count each request once


def day_sums_of(url: str) -> list[tuple[str, int, int]]:
    """(prompt, requests, cost in USD units) of the team store's day sums (migration 11), summed over its days."""
    with PostgresStore.open(url) as store:
        return [(prompt, int(requests), int(units)) for prompt, requests, units in store._read(
            "SELECT prompt, sum(requests), sum(cost_units) FROM ledger_days GROUP BY prompt ORDER BY prompt")]


def test_a_write_the_server_rolls_back_for_a_deadlock_is_written_again(postgres_url: str, postgres_server) -> None:
    """Two writers lock one day's sums in opposite orders: the store's transaction (its deadlock check fires first:
    the other connection waits 60 s before checking) is rolled back by the server, and is run again, whole."""
    import threading

    from promptci.pgstore import connect_postgres, postgres_sql
    from promptci.store import LedgerEntry, ledger_insert

    def row(n: int, prompt: str) -> tuple[str, list[object]]:
        return ledger_insert(LedgerEntry(at="2026-11-01T10:00:01Z", run_id=None, git_commit=None, prompt=prompt,
                                         case_id=f"c{n}", model="m", provider="local", cost_usd=0.5,
                                         request_id=f"req-{n}"))

    with PostgresStore.open(postgres_url) as store, connect_postgres(postgres_url) as other:
        other.execute("SET deadlock_timeout = '60s'")
        other.execute("BEGIN")
        other.execute(postgres_sql(row(1, "y")[0]), row(1, "y")[1])  # holds the day sums of prompt y
        failures: list[BaseException] = []

        def write_x_then_y() -> None:
            try:
                store._write_together([row(2, "x"), row(3, "y")])
            except BaseException as error:
                failures.append(error)

        writer = threading.Thread(target=write_x_then_y)
        writer.start()
        pid = store._pg.info.backend_pid
        with postgres_server.admin() as admin:  # until the store's transaction waits for prompt y's row
            while not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
                                    (pid,)).fetchone():
                pass
        other.execute(postgres_sql(row(4, "x")[0]), row(4, "x")[1])  # waits for x: a deadlock, the store's undone
        other.execute("COMMIT")
        writer.join(timeout=300)
        assert not writer.is_alive() and failures == []
        assert sorted(e.case_id for e in store.ledger()) == ["c1", "c2", "c3", "c4"]
    assert day_sums_of(postgres_url) == [("x", 2, 2 * usd_units(0.5)), ("y", 2, 2 * usd_units(0.5))]


def test_every_ledger_row_has_its_own_request_id(cli, project) -> None:
    from promptci.store import Store

    root = project({"promptci.yaml": "models: [echo]\n"}, with_greet=True)
    for _ in range(2):  # fresh answers, then cache hits
        assert cli("run", "--root", root, "--no-github", "-q").exit_code in (0, 1)
    with Store.open(root / ".promptci" / "promptci.db") as store:
        ids = [e.request_id for e in store.ledger()]
    assert ids and None not in ids and len(set(ids)) == len(ids)


def test_sharded_runs_merge_into_the_team_store(cli, project, tmp_path: Path, postgres_url: str) -> None:
    root = project({"prompts/greet.txt": "Hello {{ name }}!", "promptci.yaml": "models: [echo]\n",
                    "goldens/greet.yaml": "cases:\n" + "".join(
                        f"  - id: c{i}\n    input: {{name: n{i}}}\n    expected: Hello n{i}!\n" for i in range(6))})
    team = {"PROMPTCI_STORE": postgres_url}
    files = []
    for index in (1, 2):
        files.append(tmp_path / f"shard-{index}.json")
        shard = cli("run", "--root", root, "--no-github", "--shard", f"{index}/2", "-q", "-o", f"json={files[-1]}",
                    env=team)
        assert shard.exit_code == 0, shard.output
    merged = cli("merge", "--root", root, "--no-github", "--format", "json", *files, env=team)
    assert merged.exit_code == 0, merged.output
    run_id = json.loads(merged.stdout)["run_id"]
    with PostgresStore.open(postgres_url) as store:
        run = store.load_run(run_id)
    assert run is not None and run.command == "merge" and run.summary.passed == 6
    assert not (root / ".promptci" / "promptci.db").exists()


def test_store_local_runs_on_this_machine_and_the_report_says_so(cli, tmp_path: Path, server: FakeServer,
                                                                  postgres_url: str) -> None:
    root = runner_copy(tmp_path / "a", server)
    team = {"PROMPTCI_STORE": postgres_url.replace("promptci@", "promptci:pw-long-secret@")}
    result = cli("run", "--root", root, "-m", "local:m", "--store", "local", "--format", "json", env=team)
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    assert notes == ["stored in this machine's database .promptci/promptci.db (--store local), not in the team "
                     f"store {redact_dsn(team['PROMPTCI_STORE'])}"]
    assert "pw-long-secret" not in result.output
    assert (root / ".promptci" / "promptci.db").is_file()
    with PostgresStore.open(postgres_url) as store:
        assert store.list_runs() == [] and store.ledger() == []
    terminal = cli("run", "--root", root, "-m", "local:m", "--store", "local", env=team)
    assert terminal.exit_code == 0 and "(--store local), not in the team store" in terminal.output
    listed = cli("runs", "--root", root, "--store", "local", "--format", "json", env=team)
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) == 2
    assert cli("runs", "--root", root, "--format", "json", env=team).stdout.strip() == "[]"  # the team store's
    cost = cli("cost", "--root", root, "--store", "local", "--format", "json", env=team)
    assert cost.exit_code == 0 and json.loads(cost.stdout)["total"]["requests"] == 6, cost.stdout
    plain = cli("run", "--root", root, "-m", "local:m", "--format", "json")  # no team store configured
    assert plain.exit_code == 0 and json.loads(plain.stdout)["notes"] == []
    with_variable = cli("run", "--root", runner_copy(tmp_path / "b", server, f"store:\n  url: '{postgres_url}'\n"),
                        "-m", "local:m", "--format", "json", env={"PROMPTCI_STORE": "local"})
    assert "(PROMPTCI_STORE=local), not in the team store" in json.loads(with_variable.stdout)["notes"][0]


def test_an_unreachable_team_store_names_the_store_local_fix_which_works(cli, tmp_path: Path,
                                                                         server: FakeServer) -> None:
    root = runner_copy(tmp_path / "a", server, f"store:\n  url: 'postgresql://ci@/promptci?host={tmp_path / 'no'}'\n")
    down = cli("run", "--root", root, "-m", "local:m")
    assert down.exit_code == 4 and "cannot connect" in down.output
    assert "add --store local to use this machine's database (.promptci/promptci.db)" in down.output
    assert server.total == 0
    fallback = cli("run", "--root", root, "-m", "local:m", "--store", "local", "--format", "json")
    assert fallback.exit_code == 0, fallback.output
    assert "(--store local), not in the team store postgresql://ci@/promptci" in json.loads(fallback.stdout)["notes"][0]
    assert cli("gc", "--root", root, "--store", "local").exit_code == 0  # this machine's file, not the team store
    assert cli("cost", "--root", root).exit_code == 4


@pytest.mark.parametrize("command", ["run", "diff", "cost", "runs", "show", "gc", "merge"])
def test_store_takes_only_local(cli, tmp_path: Path, server: FakeServer, command: str) -> None:
    root = runner_copy(tmp_path / "a", server)
    for value in ("nonsense", "postgresql://ci:pw-long-secret@db/x"):
        result = cli(command, "--root", root, "--store", value)
        assert result.exit_code == 2, result.output
        assert "Invalid value for '--store'" in result.output and "give --store local" in result.output
        assert "pw-long-secret" not in result.output
    assert server.total == 0
