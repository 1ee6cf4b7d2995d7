"""The installed console script in real subprocesses: start-up, Ctrl-C and a killed process."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SLOW_APP = """\
import asyncio

async def answer(messages, params):
    await asyncio.sleep(0.15)
    return messages[-1]["content"]
"""


def promptci() -> list[str]:
    script = shutil.which("promptci", path=os.path.dirname(sys.executable)) or shutil.which("promptci")
    assert script, "the promptci console script is not installed (pip install -e .)"
    return [script]


def slow_project(root: Path, cases: int) -> Path:
    (root / "prompts").mkdir(parents=True)
    (root / "goldens").mkdir()
    (root / "app.py").write_text(SLOW_APP)
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


def wait_for_results(root: Path, at_least: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while count_results(root) < at_least:
        assert time.monotonic() < deadline, "the run wrote no results in time"
        time.sleep(0.05)


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
    root = slow_project(tmp_path / "slow", cases=40)
    process = subprocess.Popen([*promptci(), "run", "--root", str(root)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for_results(root, at_least=4)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    kept = count_results(root)
    assert 4 <= kept < 40
    with sqlite3.connect(root / ".promptci" / "promptci.db") as connection:
        interrupted, finished_at = connection.execute("SELECT interrupted, finished_at FROM runs").fetchone()
    assert interrupted == 1 and finished_at is not None
    assert "interrupted" in (stdout + stderr).lower()
    assert "Traceback" not in stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_killed_process_loses_no_finished_result(tmp_path: Path) -> None:
    root = slow_project(tmp_path / "slow", cases=40)
    process = subprocess.Popen([*promptci(), "run", "--root", str(root)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for_results(root, at_least=4)
    process.kill()
    process.wait(timeout=30)
    kept = count_results(root)
    assert kept >= 4
    with sqlite3.connect(root / ".promptci" / "promptci.db") as connection:
        statuses = {row[0] for row in connection.execute("SELECT status FROM results")}
    assert statuses == {"passed"}
