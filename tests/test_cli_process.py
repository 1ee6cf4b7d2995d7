"""The installed console script in real subprocesses: start-up, Ctrl-C and a killed process."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HELD_APP = """\
import asyncio, itertools

ANSWERED = {answered}  # calls answered at once; every later one is held until the process ends
calls = itertools.count()

async def answer(messages, params):
    if ANSWERED is not None and next(calls) >= ANSWERED:
        await asyncio.Event().wait()  # a run that cannot finish before the test's signal or kill
    return messages[-1]["content"]
"""


def promptci() -> list[str]:
    script = shutil.which("promptci", path=os.path.dirname(sys.executable)) or shutil.which("promptci")
    assert script, "the promptci console script is not installed (pip install -e .)"
    return [script]


def held_project(root: Path, cases: int, answered: int | None) -> Path:
    """A project whose model answers `answered` cases, then holds every later call for good (None: answers all):
    a test signals or kills its run once the answers are stored, and the run is still going by construction."""
    (root / "prompts").mkdir(parents=True)
    (root / "goldens").mkdir()
    (root / "app.py").write_text(HELD_APP.format(answered=answered))
    (root / "promptci.yaml").write_text("models: ['python:app:answer']\nconcurrency: 2\n")
    (root / "prompts" / "p.txt").write_text("case {{ n }}")
    body = "".join(f"  - id: c{n}\n    input: {{n: {n}}}\n    expected: case {n}\n" for n in range(cases))
    (root / "goldens" / "p.yaml").write_text("cases:\n" + body)
    return root


def count_results(root: Path) -> int:
    db = root / ".promptci" / "promptci.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as connection:
            return connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def wait_for_results(root: Path, at_least: int, process: subprocess.Popen[str] | None = None,
                     timeout_s: float = 120.0) -> None:
    """Until the run stored `at_least` results (the timeout only bounds a hang); fails at once if it ended."""
    deadline = time.monotonic() + timeout_s
    while count_results(root) < at_least:
        assert process is None or process.poll() is None, f"the run ended early (exit {process.returncode})"
        assert time.monotonic() < deadline, "the run wrote no results in time"
        time.sleep(0.05)


@contextmanager
def running(*args: str) -> Iterator[subprocess.Popen[str]]:
    """promptci ARGS in a subprocess, stdout and stderr piped; killed on the way out if it is still running
    (a held run the test's signal did not stop leaves nothing behind)."""
    process = subprocess.Popen([*promptci(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_console_script_help_and_run(demo_project: Path) -> None:
    done = subprocess.run([*promptci(), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "run" in done.stdout and "lint" in done.stdout
    done = subprocess.run([*promptci(), "run"], cwd=demo_project, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "29 passed" in done.stdout
    assert "\x1b[" not in done.stdout and "\x1b[" not in done.stderr  # piped: no ANSI codes, no progress bar


def test_help_does_not_import_the_sdks() -> None:
    heavy = ("openai", "anthropic", "rich", "jinja2", "deepdiff")
    code = f"import sys; from promptci.cli import app; print(any(m in sys.modules for m in {heavy!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False"


def test_the_library_loads_the_model_matrix_and_cost_report_only_when_asked_for() -> None:
    later = ("promptci.matrix", "promptci.stats", "promptci.cost.report")
    code = (f"import sys, promptci.api as api; print(sorted(m for m in {later!r} if m in sys.modules));"
            " from promptci.api import cost_report, CostReport; print(cost_report.__module__, CostReport.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split("\n")[:2] == ["[]", "promptci.cost.report CostReport"], done.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_keeps_finished_results_and_exits_130(tmp_path: Path) -> None:
    root = held_project(tmp_path / "held", cases=40, answered=4)
    with running("run", "--root", str(root)) as process:
        wait_for_results(root, at_least=4, process=process)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    kept = count_results(root)
    assert kept == 4  # the answered cases; the held ones never finish
    with sqlite3.connect(root / ".promptci" / "promptci.db") as connection:
        interrupted, finished_at = connection.execute("SELECT interrupted, finished_at FROM runs").fetchone()
    assert interrupted == 1 and finished_at is not None
    assert "interrupted" in (stdout + stderr).lower()
    assert "Traceback" not in stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_killed_process_loses_no_finished_result(tmp_path: Path) -> None:
    root = held_project(tmp_path / "held", cases=40, answered=4)
    with running("run", "--root", str(root)) as process:
        wait_for_results(root, at_least=4, process=process)
        process.kill()
        process.communicate(timeout=120)
    kept = count_results(root)
    assert kept == 4
    with sqlite3.connect(root / ".promptci" / "promptci.db") as connection:
        statuses = {row[0] for row in connection.execute("SELECT status FROM results")}
    assert statuses == {"passed"}
