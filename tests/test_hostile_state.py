"""Issue 10, disks, locks and damaged state: a database locked by another process, a full disk, read-only
folders, -o targets that cannot be written, `.promptci` being a file, and damaged databases. Each is a clear
message with a defined exit code (2 usage, 4 environment), never a traceback, and the verdict is still shown."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from fakeserver import FakeServer
from helpers_project import make_project
from test_cli_process import promptci
from test_hostile import openai_project
from test_store import make_result

from promptci.migrations import SCHEMA_VERSION
from promptci.types import GitInfo, Summary


def run_cli(*args: str | Path, env: Mapping[str, str] | None = None, preexec: Callable[[], None] | None = None,
            honour_modes: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """promptci in a subprocess; honour_modes: read-only files are read-only even when the tests run as root."""
    inherited = {name: value for name, value in os.environ.items() if name != "PROMPTCI_STATE"}
    environment = {**inherited, "PROMPTCI_LOCK_TIMEOUT": "2", **(env or {})}
    prefix = without_override() if honour_modes else []
    return subprocess.run([*prefix, *promptci(), *map(str, args)], capture_output=True, text=True, env=environment,
                          preexec_fn=preexec, timeout=timeout)


def without_override() -> list[str]:
    """Root ignores file modes through CAP_DAC_OVERRIDE: drop it (and CAP_DAC_READ_SEARCH) for the child."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: read-only files cannot be made read-only for root")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    text = done.stdout + done.stderr
    assert "Traceback" not in text and "internal error" not in text, text


def echo_project(root: Path, cases: int = 3, config: str = "models: [echo]\n") -> Path:
    golden = "cases:\n" + "".join(f"  - id: c{i}\n    input: {{n: {i}}}\n    expected: hi {i}\n" for i in range(cases))
    return make_project(root, {"promptci.yaml": config, "prompts/p.txt": "hi {{ n }}", "goldens/p.yaml": golden})


def stored_results(root: Path) -> int:
    with sqlite3.connect(root / ".promptci" / "promptci.db") as conn:
        return int(conn.execute("SELECT count(*) FROM results").fetchone()[0])


# -- a lock held by another process ------------------------------------------------------------------------

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def hold_lock() -> Iterator[Callable[[Path, float], subprocess.Popen[str]]]:
    """hold_lock(db, seconds): a second process holding BEGIN EXCLUSIVE on the database."""
    holders: list[subprocess.Popen[str]] = []

    def hold(db: Path, seconds: float) -> subprocess.Popen[str]:
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE,
                                  text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        holders.append(holder)
        return holder

    yield hold
    for holder in holders:
        holder.kill()
        holder.wait()


def test_a_lock_held_before_the_run_is_waited_for_visibly_then_exit_4(tmp_path: Path, hold_lock) -> None:
    root = echo_project(tmp_path / "p")
    assert run_cli("run", "--root", root).returncode == 0
    hold_lock(root / ".promptci" / "promptci.db", 3600)  # held far past the run's timeout: it gives up, or hangs
    done = run_cli("run", "--root", root, env={"PROMPTCI_LOCK_TIMEOUT": "2"})
    assert done.returncode == 4, done.stderr
    assert "waiting for the database lock held by another promptci process" in done.stderr
    assert "giving up in 2 s" in done.stderr
    assert "stayed locked" in done.stderr and "PROMPTCI_LOCK_TIMEOUT" in done.stderr
    no_traceback(done)


def test_a_lock_released_within_the_timeout_is_waited_out(tmp_path: Path, hold_lock) -> None:
    """The holder lets go once the run says it is waiting (an event, not a race with the run's start-up)."""
    root = echo_project(tmp_path / "p")
    assert run_cli("run", "--root", root).returncode == 0
    holder = hold_lock(root / ".promptci" / "promptci.db", 120)
    environment = {**os.environ, "PROMPTCI_LOCK_TIMEOUT": "60"}
    environment.pop("PROMPTCI_STATE", None)
    run = subprocess.Popen([*promptci(), "run", "--root", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=environment)
    assert run.stderr is not None
    seen = ""
    while "waiting for the database lock" not in seen and (line := run.stderr.readline()):
        seen += line
    holder.kill()
    holder.wait()
    stdout, stderr = run.communicate(timeout=120)
    assert "waiting for the database lock" in seen, seen + stderr
    assert run.returncode == 0, stdout + stderr
    assert stored_results(root) == 6


def test_a_bad_lock_timeout_is_exit_2(tmp_path: Path) -> None:
    done = run_cli("run", "--root", echo_project(tmp_path / "p"), env={"PROMPTCI_LOCK_TIMEOUT": "soon"})
    assert done.returncode == 2 and "PROMPTCI_LOCK_TIMEOUT='soon'" in done.stderr


LOCKING_APP = """
import subprocess, sys
from pathlib import Path

HOLDER = {holder!r}
HOLDERS = []

def answer(messages, params):
    text = messages[-1]["content"]
    if text == "hi 2":  # case c2 finishes after another process took the database lock
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, ".promptci/promptci.db", "{hold}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                  text=True, cwd=Path(__file__).parent)
        holder.stdout.readline()
        Path(__file__).with_name("holder.pid").write_text(str(holder.pid))
        HOLDERS.append(holder)
    if text == "hi 4" and {release}:  # the lock is let go before case c4 finishes
        HOLDERS[0].kill()
        HOLDERS[0].wait()
    return text
"""


def locking_project(root: Path, hold: float, release: bool) -> Path:
    root = echo_project(root, cases=6, config="models: ['python:app:answer']\nconcurrency: 1\n")
    (root / "app.py").write_text(LOCKING_APP.format(holder=HOLDER, hold=hold, release=release), encoding="utf-8")
    return root


def stop_holder(root: Path) -> None:
    pid = int((root / "holder.pid").read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_a_lock_taken_mid_run_keeps_finished_results_and_names_the_rest(tmp_path: Path) -> None:
    root = locking_project(tmp_path / "p", hold=60, release=False)
    try:
        done = run_cli("run", "--root", root, "-j", "1", env={"PROMPTCI_LOCK_TIMEOUT": "1"})
    finally:
        stop_holder(root)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "6 passed" in done.stdout  # the verdict of every case is still shown
    assert "were not stored" in done.stderr and "stayed locked" in done.stderr
    for case in ("c2", "c3", "c4", "c5"):
        assert f"p/{case} on python:app:answer" in done.stderr
    assert "p/c0 on" not in done.stderr and "p/c1 on" not in done.stderr
    assert stored_results(root) == 2  # c0 and c1 stayed stored
    no_traceback(done)


def test_a_lock_released_mid_run_gets_the_kept_results_stored(tmp_path: Path) -> None:
    root = locking_project(tmp_path / "p", hold=60, release=True)
    try:
        done = run_cli("run", "--root", root, "-j", "1", env={"PROMPTCI_LOCK_TIMEOUT": "1"})
    finally:
        stop_holder(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert stored_results(root) == 6
    shown = run_cli("show", "last", "--format", "json", "--root", root)
    assert shown.returncode == 0 and json.loads(shown.stdout)["summary"]["passed"] == 6


# -- a full disk --------------------------------------------------------------------------------------------

def test_a_full_disk_mid_run_shows_the_verdict_and_exits_4(tmp_path: Path) -> None:
    root = echo_project(tmp_path / "p", cases=40)
    (root / "prompts/p.txt").write_text("hi {{ n }}" + "x" * 3000, encoding="utf-8")
    golden = "cases:\n" + "".join(f"  - id: c{i}\n    input: {{n: {i}}}\n    expected: hi {i}{'x' * 3000}\n"
                                  for i in range(40))
    (root / "goldens/p.yaml").write_text(golden, encoding="utf-8")
    assert run_cli("run", "--root", root).returncode == 0
    room = (root / ".promptci/promptci.db").stat().st_size + 40_000

    def small_disk() -> None:  # files may not grow past `room` bytes: what a full disk looks like to SQLite
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    done = run_cli("run", "--root", root, "--no-cache", "-q", preexec=small_disk)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "40 passed" in done.stdout
    assert "were not stored" in done.stderr and "the disk refused" in done.stderr
    no_traceback(done)
    assert run_cli("runs", "--root", root).returncode == 0  # the database is still whole


def test_database_or_disk_is_full_keeps_the_write_to_name_it(tmp_path: Path) -> None:
    from promptci.errors import EnvironmentFailure
    from promptci.store import Store

    store = Store.open(tmp_path / "db.sqlite")
    store.start_run("r1", "2026-01-01T00:00:00Z", GitInfo(None, False, None), ["echo"], {})
    store._conn.execute("PRAGMA max_page_count = 1")  # SQLite's own quota: the next page is "disk is full"
    store.add_result("r1", make_result(1, output="x" * 50_000))
    store.finish_run("r1", "2026-01-01T00:00:01Z", Summary(), False)
    failure = store.unstored.error()
    store.close()
    assert isinstance(failure, EnvironmentFailure) and "disk is full" in str(failure)
    assert "triage/route/case-1 on openai:gpt-4o-mini" in str(failure) and "the run's summary" not in str(failure)


# -- read-only folders ------------------------------------------------------------------------------------

def read_only(*paths: Path) -> None:
    for path in paths:
        for inner in (path, *path.rglob("*")) if path.is_dir() else (path,):
            inner.chmod(0o555 if inner.is_dir() else 0o444)


def test_a_read_only_healthy_db_is_readable_by_runs_show_and_cost(tmp_path: Path) -> None:
    root = echo_project(tmp_path / "p")
    first = run_cli("run", "--root", root, "--format", "json")
    assert first.returncode == 0
    run_id = json.loads(first.stdout)["run_id"]
    read_only(root)
    for command in (["runs"], ["show", "last"], ["show", run_id[:6]], ["cost"], ["run", "--dry-run"]):
        done = run_cli(*command, "--root", root, honour_modes=True)
        assert done.returncode == 0, (command, done.stdout + done.stderr)
        assert "damaged" not in done.stderr and "cannot open" not in done.stderr
    assert run_id in run_cli("runs", "--root", root, honour_modes=True).stdout


def test_an_older_schema_is_migrated_by_a_reading_command(tmp_path: Path) -> None:
    root = echo_project(tmp_path / "p")
    assert run_cli("run", "--root", root).returncode == 0
    db = root / ".promptci" / "promptci.db"
    # back to the schema of migration 1: undo what migrations 2 and later added
    change_db(db, "DROP TRIGGER ledger_days_insert", "DROP TRIGGER ledger_days_delete",
              "DROP TRIGGER ledger_days_update", "DROP TABLE ledger_days", "DROP TABLE ledger_day_timings",
              "DROP INDEX results_run_position", "DROP INDEX ledger_request",
              "ALTER TABLE ledger DROP COLUMN request_id",
              "ALTER TABLE results DROP COLUMN position", "ALTER TABLE cache DROP COLUMN tool_calls",
              "ALTER TABLE runs DROP COLUMN resolved_models", "ALTER TABLE runs DROP COLUMN command",
              "ALTER TABLE ledger DROP COLUMN cache_key", "ALTER TABLE ledger DROP COLUMN branch",
              "ALTER TABLE ledger DROP COLUMN actor",
              "DROP TABLE batch_requests", "DROP TABLE batches",
              "DROP INDEX ledger_ts_cost", "DROP INDEX ledger_unpriced",
              "PRAGMA user_version = 1")
    done = run_cli("show", "last", "--root", root)
    assert done.returncode == 0, done.stderr
    assert "3 passed" in done.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_read_only_project_without_state_is_exit_4_naming_the_folder(tmp_path: Path) -> None:
    root = echo_project(tmp_path / "p")
    read_only(root)
    done = run_cli("run", "--root", root, honour_modes=True)
    assert done.returncode == 4, done.stderr
    assert "cannot create the state folder" in done.stderr and "PROMPTCI_STATE" in done.stderr
    no_traceback(done)
    fresh = tmp_path / "state"
    elsewhere = run_cli("run", "--root", root, env={"PROMPTCI_STATE": str(fresh)}, honour_modes=True)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert (fresh / "promptci.db").is_file()


def test_a_read_only_project_with_its_db_is_exit_4_before_anything_runs(tmp_path: Path) -> None:
    root = echo_project(tmp_path / "p")
    assert run_cli("run", "--root", root).returncode == 0
    read_only(root)
    done = run_cli("run", "--root", root, honour_modes=True)
    assert done.returncode == 4, done.stderr
    assert "refused" in done.stderr and "passed" not in done.stdout
    no_traceback(done)


def test_a_read_only_recordings_folder_keeps_the_run_and_exits_4(tmp_path: Path, fake_server: FakeServer) -> None:
    root = openai_project(tmp_path, fake_server)
    (root / "recordings").mkdir()
    read_only(root / "recordings")
    done = run_cli("run", "--root", root, "--record", "--format", "json", env={"LOCAL_KEY": "sk-test-123456"},
                   honour_modes=True)
    assert done.returncode == 4, done.stdout + done.stderr
    assert json.loads(done.stdout)["results"][0]["case_id"] == "c1"  # the report is whole
    assert "recordings/p.jsonl: cannot write the recordings" in done.stderr and "nothing is sent" in done.stderr
    no_traceback(done)
    runs = run_cli("runs", "--format", "json", "--root", root)
    assert json.loads(runs.stdout)[0]["finished_at"] is not None  # the run was stored whole


# -- report targets and the state folder ------------------------------------------------------------------

def test_o_into_a_folder_is_exit_2_before_the_run(tmp_path: Path) -> None:
    root = echo_project(tmp_path / "p")
    (tmp_path / "out").mkdir()
    done = run_cli("run", "--root", root, "-o", f"json={tmp_path / 'out'}")
    assert done.returncode == 2 and "is a folder" in done.stderr
    assert not (root / ".promptci").exists()  # refused before anything ran


def test_o_under_a_file_is_exit_2_before_the_run(tmp_path: Path) -> None:
    root = echo_project(tmp_path / "p")
    (tmp_path / "plain").write_text("x")
    done = run_cli("run", "--root", root, "-o", str(tmp_path / "plain" / "deeper" / "r.json"))
    assert done.returncode == 2 and "is a file" in done.stderr
    assert not (root / ".promptci").exists()


def test_o_to_dev_full_is_exit_4_with_the_report_shown_and_others_written(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    root = echo_project(tmp_path / "p")
    done = run_cli("run", "--root", root, "-o", "json=/dev/full", "-o", str(tmp_path / "r.xml"))
    assert done.returncode == 4, done.stderr
    assert "3 passed" in done.stdout and "/dev/full" in done.stderr and "No space left" in done.stderr
    assert (tmp_path / "r.xml").read_text().startswith("<?xml")
    no_traceback(done)


def test_o_into_a_folder_that_cannot_be_created_is_exit_4(tmp_path: Path) -> None:
    root = echo_project(tmp_path / "p")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    done = run_cli("run", "--root", root, "-o", str(locked / "new" / "r.json"), honour_modes=True)
    assert done.returncode == 4, done.stderr
    assert "3 passed" in done.stdout and "Permission denied" in done.stderr
    no_traceback(done)


def test_a_state_folder_that_is_a_file_is_exit_2(tmp_path: Path) -> None:
    root = echo_project(tmp_path / "p")
    (root / ".promptci").write_text("not a folder")
    done = run_cli("run", "--root", root)
    assert done.returncode == 2, done.stderr
    assert ".promptci is a file" in done.stderr and "PROMPTCI_STATE" in done.stderr
    no_traceback(done)


def test_a_stray_disk_error_is_exit_4_without_a_traceback() -> None:
    from promptci.cli.edge import environment_failure
    from promptci.errors import EnvironmentFailure

    refused = environment_failure(OSError(28, "No space left on device", "/x/y"))
    assert isinstance(refused, EnvironmentFailure) and str(refused).startswith("/x/y: No space left on device")
    assert environment_failure(OSError(2, "No such file")) is None  # not the environment's: stays a bug


# -- damaged databases -------------------------------------------------------------------------------------

@pytest.fixture
def stored_project(tmp_path: Path) -> Path:
    root = echo_project(tmp_path / "p", cases=200)
    assert run_cli("run", "--root", root, "-q").returncode == 0
    return root


def damage_pages(db: Path) -> None:
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for start in range(3 * page, len(data) - page, 4 * page):  # every 4th page after the first few
        data[start:start + page] = os.urandom(page)
    db.write_bytes(bytes(data))


def change_db(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in statements:
        conn.execute(statement)
    conn.close()


DAMAGE = {
    "garbage pages": (lambda db: damage_pages(db), "damaged"),
    "a dropped table": (lambda db: change_db(db, "DROP TABLE results"), "lacks table results"),
    "a renamed column": (lambda db: change_db(db, "ALTER TABLE ledger RENAME COLUMN cost_usd TO price"),
                         "lacks column ledger.cost_usd"),
    "a file that is not a database": (lambda db: db.write_bytes(b"garbage" * 4096), "damaged"),
    "a dropped trigger": (lambda db: change_db(db, "DROP TRIGGER ledger_days_delete"),
                          "lacks trigger ledger_days_delete"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("command", [["run"], ["runs"], ["show", "last"], ["cost"]])
def test_a_damaged_db_is_exit_2_saying_how_to_recover(stored_project: Path, damage: str, command: list[str]) -> None:
    db = stored_project / ".promptci" / "promptci.db"
    harm, said = DAMAGE[damage]
    harm(db)
    done = run_cli(*command, "--root", stored_project)
    assert done.returncode == 2, (damage, command, done.stdout + done.stderr)
    assert said in done.stderr and "move" in done.stderr and "PROMPTCI_STATE" in done.stderr
    no_traceback(done)


def test_a_fresh_state_folder_runs_beside_a_damaged_db(stored_project: Path, tmp_path: Path) -> None:
    damage_pages(stored_project / ".promptci" / "promptci.db")
    fresh = tmp_path / "fresh-state"
    done = run_cli("run", "--no-cache", "--root", stored_project, env={"PROMPTCI_STATE": str(fresh)})
    assert done.returncode == 0, done.stderr
    assert "200 passed" in done.stdout and (fresh / "promptci.db").is_file()


def test_bad_json_in_one_result_row_is_named_by_show(stored_project: Path) -> None:
    db = stored_project / ".promptci" / "promptci.db"
    change_db(db, "UPDATE results SET data = '{not json' WHERE id = 7")
    done = run_cli("show", "last", "--root", stored_project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "results row 7 cannot be read" in done.stderr and "delete that row" in done.stderr
    no_traceback(done)
    assert run_cli("runs", "--root", stored_project).returncode == 0  # the list does not read the results


def test_bad_json_in_a_run_row_is_named_by_runs(stored_project: Path) -> None:
    change_db(stored_project / ".promptci" / "promptci.db", "UPDATE runs SET models = 'oops'")
    done = run_cli("runs", "--root", stored_project)
    assert done.returncode == 2 and "runs row" in done.stderr
    no_traceback(done)


@contextlib.contextmanager
def tiny_disk(tmp_path: Path, kib: int) -> Iterator[Path]:
    """A tmpfs of `kib` KiB (needs root and mount); skips the test where none can be mounted."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_o_onto_a_full_disk_keeps_the_previous_report_whole(tmp_path: Path) -> None:
    root = echo_project(tmp_path / "p", cases=40)  # a report of several pages: more than truncating frees
    with tiny_disk(tmp_path, 16) as disk:
        report = disk / "report.json"
        report.write_text('{"previous": "report"}\n')
        with contextlib.suppress(OSError), (disk / "filler").open("wb") as filler:
            filler.write(b"x" * 64 * 1024)  # the rest of the disk
        done = run_cli("run", "--root", root, "-o", f"json={report}")
        assert done.returncode == 4, done.stdout + done.stderr
        assert "40 passed" in done.stdout and "No space left" in done.stderr
        no_traceback(done)
        assert report.read_text() == '{"previous": "report"}\n'
        assert sorted(path.name for path in disk.iterdir()) == ["filler", "report.json"]
