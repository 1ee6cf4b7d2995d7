"""The CLI edge: internal errors (exit 4), user prints kept off the report stream, usage errors with
their fix, --help metavars, range checks and the reporter registry."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from promptci.cli.edge import guarded
from promptci.cost.totals import format_usd
from promptci.reporting import FORMATS, REPORTERS, format_for_suffix

SECRET = "sk-edge-secret-0123456789"
GREET = {"prompts/greet.txt": "Hello {{ name }}!\n",
         "goldens/greet.yaml": "cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n"}


def crashing_app() -> typer.Typer:
    """A command with a bug in it, behind the same edge as every promptci command."""
    crashing = typer.Typer()

    @crashing.command()
    @guarded
    def boom(root: Annotated[Path | None, typer.Option("--root")] = None,
             verbose: Annotated[int, typer.Option("-v", count=True)] = 0) -> None:
        raise RuntimeError(f"unexpected state while holding {SECRET}")

    return crashing


def test_an_internal_error_exits_4_with_one_line_and_a_log(project, monkeypatch) -> None:
    monkeypatch.setenv("EDGE_API_KEY", SECRET)
    monkeypatch.delenv("PROMPTCI_RAISE", raising=False)
    root = project(GREET)
    result = CliRunner().invoke(crashing_app(), ["--root", str(root)])
    assert result.exit_code == 4
    line, = result.stderr.strip().splitlines()
    assert line.startswith("promptci: internal error: RuntimeError: unexpected state while holding <$EDGE_API_KEY>")
    assert "(a bug in promptci or a plugin; full traceback in " in line and "-v shows it)" in line
    logs = list((root / ".promptci" / "logs").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    logged = logs[0].read_text()
    assert "Traceback (most recent call last)" in logged and "RuntimeError" in logged and SECRET not in logged
    assert SECRET not in result.output and "Traceback" not in result.output


def test_verbose_shows_the_traceback_and_promptci_raise_reraises(project, monkeypatch) -> None:
    monkeypatch.setenv("EDGE_API_KEY", SECRET)
    monkeypatch.delenv("PROMPTCI_RAISE", raising=False)
    root = project(GREET)
    verbose = CliRunner().invoke(crashing_app(), ["--root", str(root), "-v"])
    assert verbose.exit_code == 4 and "Traceback (most recent call last)" in verbose.stderr
    assert SECRET not in verbose.stderr
    monkeypatch.setenv("PROMPTCI_RAISE", "1")
    raised = CliRunner().invoke(crashing_app(), ["--root", str(root)])
    assert isinstance(raised.exception, RuntimeError)


def test_without_a_project_the_log_goes_to_a_temp_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PROMPTCI_RAISE", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile caches its folder: read TMPDIR again
    result = CliRunner().invoke(crashing_app(), ["--root", str(tmp_path / "nowhere")])
    assert result.exit_code == 4
    assert list((tmp_path / "tmp" / "promptci-logs").glob("crash-*.log"))


PRINTING_APP = """\
import os, sys, threading

def answer(messages, params):
    print("provider says hi")
    sys.stdout.write("written to sys.stdout\\n")
    thread = threading.Thread(target=lambda: print("from a thread"))
    thread.start(); thread.join()
    return messages[-1]["content"]
"""
PRINTING_CHECK = """\
def check(output, expected):
    print("comparator says hi")
    return output.strip() == expected
"""


def printing_project(project) -> Path:
    return project({
        **GREET, "app.py": PRINTING_APP, "checks.py": PRINTING_CHECK,
        "goldens/greet.yaml": "comparators: [{type: python, function: 'checks.py:check'}]\n"
                              "cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n",
    })


@pytest.mark.parametrize("fmt", ["json", "junit"])
def test_user_prints_never_reach_a_report_on_stdout(cli, project, fmt: str) -> None:
    root = printing_project(project)
    result = cli("run", "--root", root, "-m", "python:app:answer", "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "json":
        assert json.loads(result.stdout)["summary"]["passed"] == 1
    else:
        import xml.etree.ElementTree as ElementTree

        ElementTree.fromstring(result.stdout)
    for said in ("provider says hi", "written to sys.stdout", "from a thread", "comparator says hi"):
        assert said in result.stderr and said not in result.stdout


def test_output_needs_a_known_suffix_or_a_format(cli, project) -> None:
    root = project(GREET)
    result = cli("run", "--root", root, "-m", "echo", "-o", "report.txt")
    assert result.exit_code == 2
    assert "-o 'report.txt'" in result.stderr and ".json, .xml, .md" in result.stderr
    assert "FORMAT=FILE" in result.stderr and "json=report.txt" in result.stderr
    assert not (root / "report.txt").exists()
    written = cli("run", "--root", root, "-m", "echo", "-o", f"json={root / 'report.txt'}",
                  "-o", str(root / "out.xml"))
    assert written.exit_code == 0, written.output
    assert json.loads((root / "report.txt").read_text())["summary"]["passed"] == 1
    assert (root / "out.xml").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("command", ["run", "init", "lint", "comparators", "cost", "runs", "show",
                                     "import promptfoo"])
def test_help_metavars_read_like_words(cli, command: str) -> None:
    result = cli(*command.split(), "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert not re.search(r"<(list\[|int|float|str|path)", result.stdout), result.stdout


def test_run_help_names_its_values(cli) -> None:
    text = cli("run", "--help", env={"COLUMNS": "200"}).stdout
    for shown in ("--model MODEL", "-k EXPR", "--concurrency N", "--max-cost USD", "--repeat K", "--root DIR",
                  "--output [FORMAT=]FILE", "PATHS"):
        assert shown in text, shown


def test_a_bare_model_name_says_provider_model_and_suggests_one(cli, project) -> None:
    root = project(GREET)
    result = cli("run", "--root", root, "-m", "gpt-4o-mini")
    assert result.exit_code == 2
    assert "model names are PROVIDER:MODEL" in result.stderr and "'openai:gpt-4o-mini'" in result.stderr
    claude = cli("run", "--root", root, "-m", "claude-sonnet-4-5")
    assert "'anthropic:claude-sonnet-4-5'" in claude.stderr


def test_a_misspelled_provider_gets_did_you_mean(cli, project) -> None:
    root = project(GREET)
    result = cli("run", "--root", root, "-m", "opnai:gpt-4o-mini")
    assert result.exit_code == 2
    assert "unknown provider 'opnai'" in result.stderr and "did you mean 'openai'?" in result.stderr


@pytest.mark.parametrize("args", [
    ("--repeat", "1001"), ("--repeat", "0"), ("--repeat", str(10**20)), ("-j", "0"), ("-j", "513"),
    ("--max-cost", "nan"), ("--max-cost", "inf"), ("--max-cost", "-1"),
])
def test_out_of_range_options_exit_2(cli, project, args: tuple[str, str]) -> None:
    root = project(GREET)
    result = cli("run", "--root", root, "-m", "echo", *args)
    assert result.exit_code == 2, result.output
    assert not (root / ".promptci" / "promptci.db").exists() or "Traceback" not in result.output


def test_reporters_come_from_one_registry() -> None:
    assert FORMATS == ("table", "json", "junit", "markdown", "github", "html")
    assert set(REPORTERS) == set(FORMATS)
    assert format_for_suffix(Path("r.json")) == "json" and format_for_suffix(Path("r.XML")) == "junit"
    assert format_for_suffix(Path("r.md")) == "markdown" and format_for_suffix(Path("r.txt")) is None
    assert format_for_suffix(Path("r.html")) == "html"


@pytest.mark.parametrize("amount, shown", [
    (0.0, "$0.00"), (0.004, "$0.004"), (0.001, "$0.001"), (0.0000123, "$0.0000123"), (1e-12, "$0.000000000001"),
    (2.0, "$2.00"), (1234.5, "$1,234.50"),
])
def test_money_never_reads_as_zero_when_it_is_not(amount: float, shown: str) -> None:
    assert format_usd(amount) == shown
    assert amount == 0 or format_usd(amount) != "$0.00"
    assert not math.isnan(amount)
