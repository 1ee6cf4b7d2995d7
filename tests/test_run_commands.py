"""Every stored run records the command that made it (run, a shard, a diff side, a bisect step, a merge, the
pytest plugin); `runs` shows it; `show last` and `accept` take the last plain `run`, never a diff side."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from gitrepo import commit, new_repo

from promptci import api

pytest_plugins = ["pytester"]

GOLDEN = ("cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n"
          "  - id: bob\n    input: {name: Bob}\n    expected: Hello Bob!\n")
BASE = {".gitignore": ".promptci/\n", "promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello {{ name }}!",
        "goldens/greet.yaml": GOLDEN}
BROKEN = {"prompts/greet.txt": "{% if name == 'Bob' %}Hi{% else %}Hello{% endif %} {{ name }}!"}


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, list[str]]:
    root = new_repo(tmp_path / "repo")
    shas = [commit(root, BASE, "base"), commit(root, {"notes.txt": "x\n"}, "note"), commit(root, BROKEN, "break bob")]
    return root, shas


def commands(cli: Any, root: Path) -> list[str | None]:
    listed = cli("runs", "--root", root, "--format", "json")
    assert listed.exit_code == 0, listed.output
    return [run["command"] for run in reversed(json.loads(listed.stdout))]


def test_each_command_is_recorded_and_listed(cli: Any, repo: tuple[Path, list[str]], tmp_path: Path) -> None:
    root, shas = repo
    assert cli("run", "--root", root).exit_code == 1  # bob fails at HEAD
    assert cli("diff", "HEAD~2", "--root", root, "--no-github").exit_code == 1
    outcome = api.bisect(api.RunOptions(root=root), shas[0], shas[-1])
    assert outcome.first_bad == shas[2]
    files = []
    for index in (1, 2):
        path = tmp_path / f"shard{index}.json"
        assert cli("run", "--root", root, "--shard", f"{index}/2", "-o", f"json={path}").exit_code in (0, 1)
        files.append(path)
    assert cli("merge", "--root", root, "--no-github", *files).exit_code == 1
    bisect_steps = [f"bisect step {sha[:12]}" for sha in (shas[0], shas[2], shas[1])]
    recorded = commands(cli, root)
    assert recorded[:6] == ["run", "diff A: HEAD~2", "diff B: working tree", *bisect_steps]
    # the merged run keeps its shards' start time, so it lists among them
    assert sorted(recorded[6:]) == ["merge", "run --shard 1/2", "run --shard 2/2"]
    table = cli("runs", "--root", root)
    assert "command" in table.stdout and "diff A: HEAD~2" in table.stdout


def test_show_last_and_accept_take_the_last_plain_run(cli: Any, repo: tuple[Path, list[str]]) -> None:
    root, _ = repo
    ran = cli("run", "--root", root, "--format", "json")
    assert ran.exit_code == 1
    plain_id = json.loads(ran.stdout)["run_id"]
    assert cli("diff", "HEAD~2", "HEAD~1", "--root", root, "--no-github").exit_code == 0  # both sides pass
    shown = cli("show", "last", "--root", root, "--format", "json")
    assert json.loads(shown.stdout)["run_id"] == plain_id
    accepted = cli("accept", "--root", root)
    assert accepted.exit_code == 0, accepted.output
    assert "accepted 1 case in 1 file" in accepted.stderr  # bob from the plain run, not "nothing to accept"


def test_runs_stored_before_commands_were_recorded_count_as_plain(cli: Any, project: Any) -> None:
    root = project({"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello {{ name }}!",
                    "goldens/greet.yaml": GOLDEN})
    first = json.loads(cli("run", "--root", root, "--format", "json").stdout)["run_id"]
    with sqlite3.connect(root / ".promptci" / "promptci.db") as db:
        db.execute("UPDATE runs SET command = NULL")
    assert json.loads(cli("show", "last", "--root", root, "--format", "json").stdout)["run_id"] == first
    assert commands(cli, root) == [None]
    assert " - " in cli("runs", "--root", root).stdout


def test_only_diff_sides_stored_is_a_clear_usage_error(cli: Any, repo: tuple[Path, list[str]]) -> None:
    root, _ = repo
    assert cli("diff", "HEAD~2", "HEAD~1", "--root", root, "--no-github").exit_code == 0
    shown = cli("show", "last", "--root", root)
    assert shown.exit_code == 2
    assert "no plain `promptci run` stored yet" in shown.stderr and "(diff B: HEAD~1," in shown.stderr


def test_the_pytest_plugin_records_its_runs_as_pytest(pytester: pytest.Pytester) -> None:
    pytester.makefile(".txt", **{"prompts/greet": "Hello {{ name }}!"})
    pytester.makefile(".yaml", **{"goldens/greet": GOLDEN})
    pytester.makefile(".yaml", promptci="models: [echo]\n")
    pytester.runpytest_subprocess("--promptci", "goldens")
    with sqlite3.connect(pytester.path / ".promptci" / "promptci.db") as db:
        assert db.execute("SELECT command FROM runs").fetchall() == [("pytest",)]
