"""`promptci runs` and `promptci show` through the real CLI, on runs stored by real `promptci run`s."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from promptci.store import Store
from promptci.types import GitInfo

PROMPT = {"prompts/greet.txt": "Hello {{ name }}!\n"}
GOLDEN = """\
cases:
  - id: ada
    input: {name: Ada}
    expected: Hello Ada!
  - id: bob
    input: {name: Bob}
    expected: Hello Bob!
"""
APP = """\
import time

def answer(messages, params):
    time.sleep(0.002)
    return messages[-1]["content"]
"""


def run_json(cli, root: Path, *args: str) -> dict:
    result = cli("run", "--root", root, "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


@pytest.fixture
def two_runs(cli, project) -> tuple[Path, dict, dict]:
    """A passing run on echo, then a run where bob fails."""
    root = project({**PROMPT, "goldens/greet.yaml": GOLDEN, "app.py": APP, "promptci.yaml": "models: [echo]\n"})
    passing = run_json(cli, root)
    (root / "goldens" / "greet.yaml").write_text(GOLDEN.replace("Hello Bob!", "Hi Bob!"))
    failing = run_json(cli, root, "-m", "python:app:answer")
    return root, passing, failing


def test_runs_table_lists_newest_first(cli, two_runs) -> None:
    root, passing, failing = two_runs
    result = cli("runs", "--root", root)
    assert result.exit_code == 0, result.output
    lines = [x for x in result.stdout.splitlines() if passing["run_id"] in x or failing["run_id"] in x]
    assert [x.split()[0] for x in lines] == [failing["run_id"], passing["run_id"]]
    assert lines[0].split()[-5:] == ["1", "1", "0", "0", "$0.00"]  # passed, failed, errors, skipped, cost
    assert "python:app:answer" in lines[0] and "echo" in lines[1]


def test_runs_json_and_limit(cli, two_runs) -> None:
    root, passing, failing = two_runs
    result = cli("runs", "--root", root, "--format", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [r["run_id"] for r in listed] == [failing["run_id"], passing["run_id"]]
    assert listed[0]["summary"]["failed"] == 1 and listed[1]["summary"]["passed"] == 2
    assert listed[0]["models"] == ["python:app:answer"] and listed[0]["interrupted"] is False
    assert set(listed[0]["git"]) == {"commit", "dirty"}
    limited = json.loads(cli("runs", "--root", root, "--format", "json", "--limit", "1").stdout)
    assert [r["run_id"] for r in limited] == [failing["run_id"]]


def test_runs_marks_interrupted_and_unfinished_runs(cli, project) -> None:
    root = project({**PROMPT, "goldens/greet.yaml": GOLDEN})
    with Store.open(root / ".promptci" / "promptci.db") as store:
        store.start_run("crashed00001", "2025-01-01T00:00:00.000Z", GitInfo("a" * 40, dirty=True), ["echo"], {})
    result = cli("runs", "--root", root)
    line = next(x for x in result.stdout.splitlines() if "crashed00001" in x)
    assert "unfinished" in line and "aaaaaaaaaa+dirty" in line


def test_runs_with_nothing_stored(cli, project) -> None:
    root = project({**PROMPT, "goldens/greet.yaml": GOLDEN})
    result = cli("runs", "--root", root)
    assert result.exit_code == 0 and "no runs stored yet" in result.stdout
    assert json.loads(cli("runs", "--root", root, "--format", "json").stdout) == []
    shown = cli("show", "last", "--root", root)
    assert shown.exit_code == 2 and "no runs stored yet" in shown.output


def test_show_json_is_the_stored_run(cli, two_runs) -> None:
    root, passing, _ = two_runs
    result = cli("show", passing["run_id"][:6], "--root", root, "--format", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["run_id"] == passing["run_id"] and shown["summary"] == passing["summary"]
    assert [r["output"] for r in shown["results"]] == [r["output"] for r in passing["results"]]


def test_show_last_as_junit(cli, two_runs, tmp_path: Path) -> None:
    root, _, failing = two_runs
    out = tmp_path / "report.md"
    result = cli("show", "last", "--root", root, "--format", "junit", "-o", f"markdown={out}")
    assert result.exit_code == 0, result.output  # showing a failed run does not gate
    suite = ET.fromstring(result.stdout)
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["bob"]
    assert f"promptci run `{failing['run_id']}`" in out.read_text()


def test_show_unknown_run_lists_the_latest(cli, two_runs) -> None:
    root, passing, failing = two_runs
    result = cli("show", "nosuchrun", "--root", root)
    assert result.exit_code == 2
    assert "no stored run 'nosuchrun'" in result.output
    assert passing["run_id"] in result.output and failing["run_id"] in result.output


def test_show_table_and_markdown_carry_latency(cli, two_runs) -> None:
    root, _, failing = two_runs
    table = cli("show", "last", "--root", root).stdout
    assert "latency p50/p95/max" in table and "TTFT p50/p95" in table and "FAILED" in table
    (group,) = failing["groups"]
    assert group["latency_max_ms"] >= group["latency_p95_ms"] >= group["latency_p50_ms"] > 0
    markdown = cli("show", "last", "--root", root, "--format", "markdown").stdout
    assert "latency p50 / p95 / max" in markdown and "TTFT p50 / p95" in markdown
    row = next(x for x in markdown.splitlines() if "python:app:answer" in x and x.startswith("|"))
    assert row.count("ms /") == 2  # p50 / p95 / max, all measured
