"""The console script in real subprocesses: SIGTERM/SIGHUP (how CI cancels a job) and writes to fd 1."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_process import count_results, held_project, promptci, running, wait_for_results


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signal_name, exit_code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_cancelled_ci_job_keeps_results_and_writes_its_reports(tmp_path: Path, signal_name: str,
                                                                 exit_code: int) -> None:
    root = held_project(tmp_path / "held", cases=40, answered=4)
    report = root / "out" / "report.json"
    with running("run", "--root", str(root), "-o", f"json={report}") as process:
        wait_for_results(root, at_least=4, process=process)
        process.send_signal(getattr(signal, signal_name))
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == exit_code, stderr
    assert "Traceback" not in stderr
    kept = count_results(root)
    assert kept == 4  # the answered cases; the held ones never finish
    with sqlite3.connect(root / ".promptci" / "promptci.db") as connection:
        interrupted, finished_at = connection.execute("SELECT interrupted, finished_at FROM runs").fetchone()
    assert interrupted == 1 and finished_at is not None
    document = json.loads(report.read_text())
    assert len(document["results"]) == kept
    assert "interrupted" in stdout


FD_APP = """\
import os

def answer(messages, params):
    os.write(1, b"written to fd 1 by user code\\n")
    print("printed by user code", flush=True)
    return messages[-1]["content"]
"""


def test_writes_to_fd_1_from_user_code_go_to_stderr(tmp_path: Path) -> None:
    root = held_project(tmp_path / "fd", cases=3, answered=None)
    (root / "app.py").write_text(FD_APP)
    done = subprocess.run([*promptci(), "run", "--root", str(root), "--format", "json"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["passed"] == 3
    assert done.stderr.count("written to fd 1 by user code") == 3
    assert done.stderr.count("printed by user code") == 3
