"""A hostile world, round two (issue 24): the user's own code (python providers, comparators, transforms)
raising what is not an Exception, or never returning. Each is that case's error; the run finishes, with its
reports; a real Ctrl-C still interrupts."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers_project import make_project
from test_cli_process import promptci

APP = "def answer(messages, params):\n    return 'hi ' + messages[-1]['content']\n"


def user_project(root: Path, checks: str, comparators: str, extra: str = "", app: str = APP) -> Path:
    """Two cases: c1 runs the user's check, c2 fails plainly (so a lost verdict cannot pass for green)."""
    golden = ("cases:\n"
              f"  - id: c1\n    input: {{n: 1}}\n    expected: hi 1\n    comparators: {comparators}\n"
              "  - id: c2\n    input: {n: 2}\n    expected: not this\n")
    return make_project(root, {"promptci.yaml": f"models: ['python:app:answer']\nretries: 0\n{extra}",
                               "app.py": app, "checks.py": checks, "prompts/p.txt": "{{ n }}",
                               "goldens/p.yaml": golden})


def run_with_report(cli, root: Path) -> tuple[int, str, dict]:
    report = root / "report.json"
    result = cli("run", "--root", root, "-o", f"json={report}")
    assert report.exists(), f"no -o report: exit {result.exit_code}\n{result.output}"
    return result.exit_code, result.output, json.loads(report.read_text())


def statuses(document: dict) -> dict[str, str]:
    return {r["case_id"]: r["status"] for r in document["results"]}


def error_of(document: dict, case_id: str) -> str:
    return next(r["error"] for r in document["results"] if r["case_id"] == case_id)


TRANSFORM = "[{type: exact, transform: {python: 'checks.py:clean'}}]"
COMPARATOR = "[{type: python, function: 'checks.py:check'}]"


# ---------------------------------------------------------------- BaseException from user code

@pytest.mark.parametrize(("checks", "comparators", "named"), [
    ("import sys\n\ndef clean(text):\n    sys.exit(0)\n", TRANSFORM, "called sys.exit(0)"),
    ("import asyncio\n\ndef clean(text):\n    raise asyncio.CancelledError()\n", TRANSFORM, "raised CancelledError"),
    ("import asyncio\n\ndef check(output):\n    raise asyncio.CancelledError()\n", COMPARATOR,
     "raised CancelledError"),
    ("import asyncio\n\nasync def check(output):\n    raise asyncio.CancelledError()\n", COMPARATOR,
     "raised CancelledError"),
    ("def check(output):\n    raise KeyboardInterrupt\n", COMPARATOR, "raised KeyboardInterrupt"),
    ("class Odd(BaseException):\n    pass\n\ndef check(output):\n    raise Odd('odd')\n", COMPARATOR,
     "raised Odd: odd"),
    ("import sys\n\nasync def check(output):\n    sys.exit(0)\n", COMPARATOR, "called sys.exit(0)"),
])
def test_a_base_exception_in_a_comparator_or_transform_is_that_cases_error(tmp_path: Path, cli, checks: str,
                                                                            comparators: str, named: str) -> None:
    root = user_project(tmp_path / "p", checks, comparators)
    code, output, document = run_with_report(cli, root)
    assert code == 1, output  # c2's failure: the error did not end the run, nor hide the regression
    assert statuses(document) == {"c1": "error", "c2": "failed"}
    assert named in error_of(document, "c1")
    assert "usercode.py" not in error_of(document, "c1")  # the user's frames only


@pytest.mark.parametrize("app", [
    "import asyncio\n\nasync def answer(messages, params):\n    raise asyncio.CancelledError()\n",
    "import asyncio\n\ndef answer(messages, params):\n    raise asyncio.CancelledError()\n",
    "async def answer(messages, params):\n    raise KeyboardInterrupt\n",
    "import sys\n\nasync def answer(messages, params):\n    sys.exit(0)\n",
])
def test_a_base_exception_in_a_python_provider_is_that_cases_error(tmp_path: Path, cli, app: str) -> None:
    root = user_project(tmp_path / "p", "", "[{type: exact}]", app=app)
    code, output, document = run_with_report(cli, root)
    assert code == 3, output
    assert statuses(document) == {"c1": "error", "c2": "error"}
    assert "app:answer" in error_of(document, "c1")


def test_an_exception_in_a_transform_stays_a_failing_check(tmp_path: Path, cli) -> None:
    root = user_project(tmp_path / "p", "def clean(text):\n    raise ValueError('no fence')\n", TRANSFORM)
    code, output, document = run_with_report(cli, root)
    assert code == 1, output
    assert statuses(document) == {"c1": "failed", "c2": "failed"}
    [score] = document["results"][0]["scores"]
    assert "transform python:checks.py:clean failed: ValueError: no fence" in score["reason"]


# ---------------------------------------------------------------- text no UTF-8 store can hold

SURROGATE = "\\ud800"  # as Python source inside the user's module


@pytest.mark.parametrize(("checks", "comparators", "status", "named"), [
    (f"def check(output):\n    raise ValueError('bad {SURROGATE} text')\n", COMPARATOR, "error",
     "raised ValueError: bad \ufffd"),
    (f"from promptci.types import Score\n\ndef check(output):\n    return Score('x', 0.0, False, 'why {SURROGATE}')\n",
     COMPARATOR, "failed", None),
    (f"def clean(text):\n    return 'x{SURROGATE}'\n", TRANSFORM, "failed", None),
])
def test_user_code_making_a_lone_surrogate_never_crashes_the_run(tmp_path: Path, cli, checks: str,
                                                                 comparators: str, status: str,
                                                                 named: str | None) -> None:
    root = user_project(tmp_path / "p", checks, comparators)
    code, output, document = run_with_report(cli, root)
    assert code == 1, output
    assert statuses(document) == {"c1": status, "c2": "failed"}
    if named:
        assert named in error_of(document, "c1")


def test_a_python_provider_returning_a_lone_surrogate_is_that_cases_error(tmp_path: Path, cli) -> None:
    app = f"def answer(messages, params):\n    return 'x{SURROGATE}'\n"
    root = user_project(tmp_path / "p", "", "[{type: exact}]", app=app)
    code, output, document = run_with_report(cli, root)
    assert code == 3, output
    assert statuses(document) == {"c1": "error", "c2": "error"}
    assert "lone UTF-16 surrogate" in error_of(document, "c1")


# ---------------------------------------------------------------- deadlines

STUCK_SYNC = "import threading\n\ndef {name}(text):\n    threading.Event().wait()\n"


@pytest.mark.parametrize(("checks", "comparators"), [
    (STUCK_SYNC.format(name="clean"), TRANSFORM),
    (STUCK_SYNC.format(name="check"), COMPARATOR),
    ("import asyncio\n\nasync def check(output):\n    await asyncio.Event().wait()\n", COMPARATOR),
])
def test_a_stuck_comparator_or_transform_is_that_cases_timeout(tmp_path: Path, cli, checks: str,
                                                               comparators: str) -> None:
    root = user_project(tmp_path / "p", checks, comparators, extra="timeout_s: 0.5\n")
    code, output, document = run_with_report(cli, root)
    assert code == 1, output  # c2's failure: the error did not end the run, nor hide the regression
    assert statuses(document) == {"c1": "error", "c2": "failed"}
    assert "did not return within timeout_s=0.5" in error_of(document, "c1")


def run_in_subprocess(root: Path) -> subprocess.CompletedProcess[str]:
    """The console script; the timeout only guards the test suite against a hang, it asserts nothing."""
    return subprocess.run([*promptci(), "run", "--root", str(root), "-o", f"json={root / 'report.json'}"],
                          capture_output=True, text=True, timeout=300)


def test_an_async_comparator_that_blocks_its_loop_is_that_cases_timeout(tmp_path: Path) -> None:
    checks = "import time\n\nasync def check(output):\n    time.sleep(3600)\n    return True\n"
    root = user_project(tmp_path / "p", checks, COMPARATOR, extra="timeout_s: 1\n")
    done = run_in_subprocess(root)
    assert done.returncode == 1, done.stderr
    document = json.loads((root / "report.json").read_text())
    assert statuses(document) == {"c1": "error", "c2": "failed"}
    assert "did not return within timeout_s=1" in error_of(document, "c1")


BLOCKS_ONCE = """\
import time

async def check(output):
    if output == "hi 1":
        time.sleep(3600)  # blocks the loop it runs on, for good
    return True
"""


def test_a_user_loop_blocked_for_good_is_replaced_so_later_cases_run(tmp_path: Path) -> None:
    golden = "cases:\n" + "".join(f"  - id: c{n}\n    input: {{n: {n}}}\n    comparators: {COMPARATOR}\n"
                                   for n in range(1, 7))
    root = make_project(tmp_path / "p", {"promptci.yaml": "models: ['python:app:answer']\nretries: 0\n"
                                                          "timeout_s: 1\nconcurrency: 1\n",
                                         "app.py": APP, "checks.py": BLOCKS_ONCE, "prompts/p.txt": "{{ n }}",
                                         "goldens/p.yaml": golden})
    done = run_in_subprocess(root)
    document = json.loads((root / "report.json").read_text())
    found = statuses(document)
    assert found["c1"] == "error" and found["c6"] == "passed", (found, done.stderr)


def test_the_user_loop_is_blocked_only_when_silent_after_a_timeout() -> None:
    from promptci.usercode import UserLoop

    now = [0.0]
    user = UserLoop(clock=lambda: now[0])
    entered, release = threading.Event(), threading.Event()

    async def block() -> None:
        entered.set()
        release.wait()

    asyncio.run_coroutine_threadsafe(block(), user.loop)
    entered.wait()
    try:
        now[0] = 10.0
        assert not user.is_blocked()  # silent, but nothing overran: maybe just busy
        user.timed_out_at = 9.0
        assert user.is_blocked()
        user.last_beat = 9.5  # it beat after the timeout: alive
        assert not user.is_blocked()
    finally:
        release.set()


def test_an_async_provider_that_blocks_the_event_loop_is_a_timeout(tmp_path: Path) -> None:
    app = "import time\n\nasync def answer(messages, params):\n    time.sleep(3600)\n"
    root = user_project(tmp_path / "p", "", "[{type: exact}]", extra="timeout_s: 1\n", app=app)
    done = run_in_subprocess(root)
    assert done.returncode == 3, done.stderr
    document = json.loads((root / "report.json").read_text())
    assert statuses(document) == {"c1": "error", "c2": "error"}
    assert "timeout" in error_of(document, "c1")


# ---------------------------------------------------------------- a real Ctrl-C still interrupts

WAITING_CHECK = """\
import pathlib, threading

def check(output):
    pathlib.Path(__file__).with_name("started").write_text("yes")
    threading.Event().wait()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_real_ctrl_c_while_user_code_runs_interrupts_the_run(tmp_path: Path) -> None:
    root = user_project(tmp_path / "p", WAITING_CHECK, COMPARATOR, extra="timeout_s: 600\n")
    process = subprocess.Popen([*promptci(), "run", "--root", str(root), "-o", f"json={root / 'report.json'}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = root / "started"
        while not started.exists() and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # it did not stop: leave nothing running behind the test
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "interrupted" in stdout
    assert json.loads((root / "report.json").read_text())["interrupted"] is True


# ---------------------------------------------------------------- at import

@pytest.mark.parametrize("raised", ["asyncio.CancelledError()", "GeneratorExit()"])
def test_a_base_exception_while_importing_user_code_is_a_load_error(tmp_path: Path, cli, raised: str) -> None:
    module = f"import asyncio\nraise {raised}\n"
    for root, where in ((user_project(tmp_path / "c", module, COMPARATOR), "checks.py"),
                        (user_project(tmp_path / "a", "", "[{type: exact}]", app=module), "app")):
        result = cli("run", "--root", root)
        assert result.exit_code == 2, result.output
        assert where in result.output and raised.split("(")[0].split(".")[-1] in result.output


def test_an_exception_that_cannot_be_printed_is_still_that_cases_error(tmp_path: Path, cli) -> None:
    checks = ("class Odd(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\n\n"
              "def check(output):\n    raise Odd()\n")
    root = user_project(tmp_path / "p", checks, COMPARATOR)
    code, output, document = run_with_report(cli, root)
    assert code == 1, output
    assert statuses(document) == {"c1": "error", "c2": "failed"}
    assert "check raised Odd: <not printable: its RuntimeError>" in error_of(document, "c1")
