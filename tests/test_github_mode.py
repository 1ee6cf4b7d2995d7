"""GitHub Actions auto-mode of `run`: annotations at repository-relative golden lines, the step summary,
`--no-github`, and model output that tries to inject workflow commands."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from helpers_project import make_project

from promptci.reporting.github import command, escape_data, escape_property, repository_prefix

HOSTILE = "evil%0A\\n::add-mask::hunter2\\r\\n::stop-commands::abc\\n::error file=x,line=1::forged\\n,:%"
GOLDEN = f"""\
cases:
  - id: fine
    input: {{name: Ada}}
    expected: Hello Ada!
  - id: broken
    input: {{name: Bob}}
    expected: Hello Robert!
  - id: hostile
    input: {{name: "{HOSTILE}"}}
    expected: safe
"""
COMMAND_LINE = re.compile(r"^::(error|warning|notice) [^:]*::")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose promptci project lives in services/bot/."""
    root = tmp_path / "repo"
    make_project(root / "services" / "bot", {"prompts/greet.txt": "Hello {{ name }}!",
                                             "goldens/greet.yaml": GOLDEN, "promptci.yaml": "models: [echo]\n"})
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def github_env(tmp_path: Path) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}


def test_escaping_follows_the_runner_rules() -> None:
    assert escape_data("a%b\r\nc") == "a%25b%0D%0Ac"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    line = command("error", "x\n::add-mask::k", file="a,b:c", line=3, title="t\r::stop-commands::z")
    assert "\n" not in line and "\r" not in line
    assert line == "::error file=a%2Cb%3Ac,line=3,title=t\\x0d%3A%3Astop-commands%3A%3Az::x%0A::add-mask::k"


def test_repository_prefix(repo: Path, tmp_path: Path) -> None:
    assert repository_prefix(repo / "services" / "bot") == "services/bot/"
    assert repository_prefix(repo) == ""
    outside = tmp_path / "plain"
    outside.mkdir()
    assert repository_prefix(outside) == ""


def test_annotations_point_at_golden_lines_from_the_repository_root(cli, repo: Path, tmp_path: Path) -> None:
    result = cli("run", "--root", repo / "services" / "bot", env=github_env(tmp_path))
    assert result.exit_code == 1, result.output
    annotations = [line for line in result.stderr.splitlines() if line.startswith("::")]
    errors = [line for line in annotations if line.startswith("::error ")]
    assert len(errors) == 2
    assert errors[0].startswith("::error file=services/bot/goldens/greet.yaml,line=5,title=greet broken failed")
    assert errors[1].startswith("::error file=services/bot/goldens/greet.yaml,line=8,title=greet hostile failed")
    assert annotations[-1].startswith("::notice title=promptci::")
    for line in result.stderr.splitlines():  # every line is one whole command: none forged by the output
        assert COMMAND_LINE.match(line), line
    assert "%0A+::add-mask::hunter2%0A" in errors[1] and "evil%250A" in errors[1]


def test_the_step_summary_gets_the_markdown(cli, repo: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = cli("run", "--root", repo / "services" / "bot", env=github_env(tmp_path))
    assert result.exit_code == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n## promptci run")
    assert "### Failures (2)" in text and "<details>" in text
    assert "<script" not in text


def test_the_log_report_is_fenced_by_stop_commands(cli, repo: Path, tmp_path: Path) -> None:
    result = cli("run", "--root", repo / "services" / "bot", env=github_env(tmp_path))
    lines = result.stdout.splitlines()
    start = [i for i, line in enumerate(lines) if line.startswith("::stop-commands::")]
    assert len(start) == 1 and start[0] == 0
    token = lines[0].removeprefix("::stop-commands::")
    assert len(token) == 32 and token not in HOSTILE
    end = lines.index(f"::{token}::")
    hostile_lines = [i for i, line in enumerate(lines) if "::add-mask::" in line]
    assert hostile_lines and all(0 < i < end for i in hostile_lines)


def test_no_github_and_outside_actions_print_no_commands(cli, repo: Path, tmp_path: Path) -> None:
    for args, env in ((["--no-github"], github_env(tmp_path)), ([], {"GITHUB_ACTIONS": ""})):
        result = cli("run", "--root", repo / "services" / "bot", *args, env=env)
        assert result.exit_code == 1
        assert "::error" not in result.stderr
        assert not any(line.startswith("::stop-commands::") for line in result.stdout.splitlines())
    assert not (tmp_path / "summary.md").exists()


def test_json_on_stdout_stays_clean_under_actions(cli, repo: Path, tmp_path: Path) -> None:
    import json

    result = cli("run", "--root", repo / "services" / "bot", "--format", "json", env=github_env(tmp_path))
    assert json.loads(result.stdout)["summary"]["failed"] == 2
    assert "::error file=services/bot/goldens/greet.yaml" in result.stderr


def test_format_github_uses_repository_paths_once(cli, repo: Path, tmp_path: Path) -> None:
    result = cli("run", "--root", repo / "services" / "bot", "--format", "github", env=github_env(tmp_path))
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("::error ")]
    assert len(errors) == 2  # not repeated by auto-mode
    assert all(line.startswith("::error file=services/bot/goldens/greet.yaml,") for line in errors)
    assert (tmp_path / "summary.md").read_text().count("## promptci run") == 1


def test_show_fences_its_table_like_run_and_annotates_nothing(cli, repo: Path, tmp_path: Path) -> None:
    root = repo / "services" / "bot"
    assert cli("run", "--root", root, env={"GITHUB_ACTIONS": ""}).exit_code == 1
    result = cli("show", "last", "--root", root, env=github_env(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::stop-commands::")
    token = lines[0].removeprefix("::stop-commands::")
    assert len(token) == 32 and token not in HOSTILE
    end = lines.index(f"::{token}::")
    hostile_lines = [i for i, line in enumerate(lines) if "::add-mask::" in line]
    assert hostile_lines and all(0 < i < end for i in hostile_lines)
    assert "::error" not in result.stderr and not (tmp_path / "summary.md").exists()


def test_show_as_json_under_actions_is_not_fenced(cli, repo: Path, tmp_path: Path) -> None:
    import json

    root = repo / "services" / "bot"
    assert cli("run", "--root", root, env={"GITHUB_ACTIONS": ""}).exit_code == 1
    result = cli("show", "last", "--root", root, "--format", "json", env=github_env(tmp_path))
    assert json.loads(result.stdout)["summary"]["failed"] == 2
