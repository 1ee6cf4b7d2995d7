"""With --repeat K a failing case is listed once, with how many of its K samples failed (terminal, Markdown,
GitHub annotations); the JSON report keeps every sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# The first call of each case passes, the later ones fail: 2 of 3 samples fail.
APP = """\
calls = {}

def answer(messages, params):
    text = messages[-1]["content"]
    calls[text] = calls.get(text, 0) + 1
    return text if calls[text] == 1 else "something else"
"""
GOLDEN = ("cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n"
          "  - id: bob\n    input: {name: Bob}\n    expected: Hello Bob!\n")


@pytest.fixture
def root(project: Any) -> Path:
    return project({"promptci.yaml": "models: ['python:app:answer']\n", "app.py": APP,
                    "prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": GOLDEN})


def test_terminal_lists_a_failing_case_once_with_k_of_k(cli: Any, root: Path) -> None:
    result = cli("run", "--root", root, "--repeat", "3", "-j", "1")
    assert result.exit_code == 1, result.output
    assert [line for line in result.output.splitlines() if line.startswith("FAILED ")] == [
        "FAILED goldens/greet.yaml:2 ada [python:app:answer] (2/3 samples failed)",
        "FAILED goldens/greet.yaml:5 bob [python:app:answer] (2/3 samples failed)"]
    assert "FAILED goldens/greet.yaml:2 ada [python:app:answer] (2/3 samples failed)" in result.output
    assert result.output.count("exact: output differs from expected") == 2


def test_markdown_and_annotations_once_json_every_sample(cli: Any, root: Path, tmp_path: Path) -> None:
    markdown, github, report = tmp_path / "r.md", tmp_path / "r.txt", tmp_path / "r.json"
    result = cli("run", "--root", root, "--repeat", "3", "-j", "1", "-o", f"markdown={markdown}",
                 "-o", f"github={github}", "-o", f"json={report}")
    assert result.exit_code == 1, result.output
    text = markdown.read_text()
    assert "### Failures (2)" in text and text.count("❌ failed") == 2
    assert "`goldens/greet.yaml:5 bob [python:app:answer] (2/3 samples failed)`" in text
    annotations = [line for line in github.read_text().splitlines() if line.startswith("::error ")]
    assert len(annotations) == 2 and "(2/3 samples failed)" in annotations[0]
    samples = json.loads(report.read_text())["results"]
    assert [(r["case_id"], r["repeat"], r["status"]) for r in samples if r["case_id"] == "ada"] == [
        ("ada", 0, "passed"), ("ada", 1, "failed"), ("ada", 2, "failed")]
