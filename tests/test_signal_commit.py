"""Issue 24: a SIGTERM or SIGHUP landing inside a store commit. The handler never re-enters the store: it only
records the signal and stops the run loop between steps (or, outside a loop, after the commit), so the store
stays consistent, the run is marked interrupted and its reports are written. The signal is delivered from
inside a commit (deterministically, by a connection that sends it), in-process and in a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_project import make_project
from test_store import make_result

from promptci.cli.edge import signals_as_interrupt
from promptci.store import Store
from promptci.types import GitInfo, Summary

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class SignallingConnection:
    """A sqlite3 connection that sends this process a signal right after the `at`-th BEGIN IMMEDIATE (inside
    the commit: the handler runs before the next statement)."""

    def __init__(self, conn: sqlite3.Connection, signum: int, at: int) -> None:
        self._conn, self.signum, self.at, self.begun = conn, signum, at, 0

    def execute(self, sql: str, *params: Any) -> Any:
        cursor = self._conn.execute(sql, *params)
        if sql.startswith("BEGIN"):
            self.begun += 1
            if self.begun == self.at:
                os.kill(os.getpid(), self.signum)
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def signalling_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Every Store.open from now on sends settings["signum"] inside its settings["at"]-th commit."""
    settings: dict[str, Any] = {"signum": signal.SIGTERM, "at": 3}
    real_open = Store.open.__func__  # type: ignore[attr-defined]

    def open_signalling(cls: type[Store], *args: Any, **kwargs: Any) -> Store:
        store = real_open(cls, *args, **kwargs)
        store._conn = SignallingConnection(store._conn, settings["signum"], settings["at"])  # type: ignore[assignment]
        return store

    monkeypatch.setattr(Store, "open", classmethod(open_signalling))
    yield settings


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_inside_a_commit_outside_the_loop_lets_the_commit_finish_and_the_store_work_on(
        tmp_path: Path, signalling_store: dict[str, Any], signum: int) -> None:
    signalling_store.update(signum=signum, at=1)
    store = Store.open(tmp_path / "db.sqlite")
    with signals_as_interrupt(), pytest.raises(KeyboardInterrupt):
        store.start_run("r1", "2026-01-01T00:00:00Z", GitInfo(None, False, None), ["echo"], {})
    assert not store._conn.in_transaction
    store.add_result("r1", make_result(1))  # no "cannot start a transaction within a transaction"
    store.finish_run("r1", "2026-01-01T00:00:01Z", Summary(), True)
    assert store.unstored.error() is None
    store.close()
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        assert db.execute("SELECT id, interrupted FROM runs").fetchall() == [("r1", 1)]
        assert db.execute("SELECT COUNT(*) FROM results").fetchone() == (1,)


def test_a_commit_cut_short_by_an_interrupt_is_rolled_back_before_the_next(tmp_path: Path) -> None:
    """However a KeyboardInterrupt gets in (a library caller's Ctrl-C), the next write finds no transaction
    left open by it."""
    store = Store.open(tmp_path / "db.sqlite")
    store._conn.execute("BEGIN IMMEDIATE")  # as left by an interrupt between BEGIN and the statements
    store._conn.execute("INSERT INTO runs (id, started_at, models, options) VALUES ('half', 'x', '[]', '{}')")
    store.start_run("r1", "2026-01-01T00:00:00Z", GitInfo(None, False, None), ["echo"], {})
    store.close()
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        assert db.execute("SELECT id FROM runs").fetchall() == [("r1",)]


AWAITING_APP = """\
import asyncio

async def answer(messages, params):
    await asyncio.sleep(0)  # the run loop gets a turn, as with any provider doing I/O
    return messages[-1]["content"]
"""


def echo_project(root: Path, cases: int) -> Path:
    golden = "cases:\n" + "".join(f"  - id: c{i}\n    input: {{n: {i}}}\n    expected: hi {i}\n" for i in range(cases))
    return make_project(root, {"promptci.yaml": "models: ['python:app:answer']\nconcurrency: 1\n",
                               "app.py": AWAITING_APP, "prompts/p.txt": "hi {{ n }}", "goldens/p.yaml": golden})


def stored_run(root: Path) -> tuple[int, str | None, int]:
    with sqlite3.connect(root / ".promptci" / "promptci.db") as db:
        interrupted, finished_at = db.execute("SELECT interrupted, finished_at FROM runs").fetchone()
        results = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    return interrupted, finished_at, results


@pytest.mark.parametrize("signum, exit_code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_inside_a_result_commit_ends_the_run_interrupted_with_its_report(
        tmp_path: Path, cli: Any, signalling_store: dict[str, Any], signum: int, exit_code: int) -> None:
    root = echo_project(tmp_path / "p", cases=30)
    # commits: start_run, then a ledger row and a result per case: the 5th is case 2's result
    signalling_store.update(signum=signum, at=5)
    report = tmp_path / "report.json"
    done = cli("run", "--root", root, "-o", f"json={report}")
    assert done.exit_code == exit_code, done.output
    assert "transaction" not in done.output and "internal error" not in done.output
    interrupted, finished_at, results = stored_run(root)
    assert interrupted == 1 and finished_at is not None
    assert 2 <= results < 30  # the result whose commit the signal landed in is stored whole
    document = json.loads(report.read_text())
    assert len(document["results"]) == results


SUBPROCESS_SCRIPT = """\
import os, signal, sqlite3, sys
from promptci.store import Store

real_open = Store.open.__func__

class SignallingConnection:
    def __init__(self, conn):
        self._conn, self.begun = conn, 0
    def execute(self, sql, *params):
        cursor = self._conn.execute(sql, *params)
        if sql.startswith("BEGIN"):
            self.begun += 1
            if self.begun == {at}:
                os.kill(os.getpid(), signal.{signal_name})
        return cursor
    def __getattr__(self, name):
        return getattr(self._conn, name)

def open_signalling(cls, *args, **kwargs):
    store = real_open(cls, *args, **kwargs)
    store._conn = SignallingConnection(store._conn)
    return store

Store.open = classmethod(open_signalling)
from promptci.cli import main
sys.argv = ["promptci", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("signal_name, at, exit_code", [("SIGTERM", 5, 143), ("SIGHUP", 2, 129),
                                                        ("SIGTERM", 1, 143)])
def test_a_real_process_signalled_inside_a_commit_exits_with_the_signal_code_and_a_whole_store(
        tmp_path: Path, signal_name: str, at: int, exit_code: int) -> None:
    root = echo_project(tmp_path / "p", cases=20)
    script = tmp_path / "signalling.py"
    script.write_text(SUBPROCESS_SCRIPT.format(at=at, signal_name=signal_name))
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, str(script), "run", "--root", str(root), "-o", f"json={report}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == exit_code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "transaction" not in done.stderr, done.stderr
    if at > 1:  # inside a result's commit: the run loop stops, the run is stored interrupted and reported
        interrupted, finished_at, results = stored_run(root)
        assert interrupted == 1 and finished_at is not None
        assert json.loads(report.read_text())["summary"]["total"] == results
    check = subprocess.run([sys.executable, "-m", "promptci", "runs", "--root", str(root)], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stderr
