"""A stored run reproduces every report the run wrote, byte for byte; the broken cases --keep-going skipped
are counted and named; a comparator that raises gives an error (no verdict), and each score carries the
options of the comparator that gave it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakeserver import FakeServer

KEY = "sk-test-stored-0123456789"
PROMPT = "---\nparams: {max_tokens: 10}\n---\nHello {{ name }}!\n"
CHECKS = "def shouts(case, completion):\n    return completion.text.isupper()\n"


def golden(count: int) -> str:
    body = "".join(f"  - id: c{n}\n    input: {{name: N{n}}}\n    expected: Hello N{n}!\n" for n in range(count))
    broken = "  - id: broken\n    input: {}\n    expected: x\n"
    return "cases:\n" + body + broken


@pytest.fixture
def root(project, fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STORED_KEY", KEY)
    config = ("models: ['local:m']\nretries: 0\n"
              f"providers:\n  local: {{type: openai, base_url: '{fake_server.openai_base_url}', "
              "api_key_env: STORED_KEY}\npricing:\n  'local:m': {input: 1000, output: 1000}\n")
    return project({"promptci.yaml": config, "prompts/greet.txt": PROMPT, "goldens/greet.yaml": golden(8)})


@pytest.mark.parametrize("fmt", ["json", "junit", "markdown", "github"])
def test_show_reproduces_the_report_the_run_wrote(cli, root: Path, fmt: str) -> None:
    ran = cli("run", "--root", root, "--keep-going", "--max-cost", "0.02", "-j", "4", "--format", fmt)
    assert ran.exit_code == 1, ran.output
    if fmt != "junit":  # the broken case is in the report (JUnit has no place for it)
        assert "goldens/greet.yaml:26" in ran.stdout
    shown = cli("show", "last", "--root", root, "--format", fmt)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == ran.stdout


def test_keep_going_counts_and_names_the_broken_cases_it_skipped(cli, root: Path) -> None:
    result = cli("run", "--root", root, "--keep-going", "--format", "json")
    document = json.loads(result.stdout)
    assert result.exit_code == 0, result.output
    assert document["summary"]["skipped"] == 1 and document["summary"]["total"] == 9
    assert [p.split(": ")[0] for p in document["problems"]] == ["goldens/greet.yaml:26"]
    shown = json.loads(cli("show", "last", "--root", root, "--format", "json").stdout)
    assert shown["summary"] == document["summary"] and shown["problems"] == document["problems"]


def test_a_comparator_that_raises_is_an_error_naming_it_and_its_line(cli, project,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from promptci import registry

    def exploding(threshold: float = 0.5):  # a third-party comparator with a bug
        async def score(case, completion):
            raise ValueError("no idea")

        return score

    monkeypatch.setitem(registry.comparators._loaded, "exploding", exploding)
    golden_text = ("cases:\n  - id: a\n    input: {name: Ada}\n    expected: Hello Ada!\n"
                   "    comparators: [exact, {type: exploding, threshold: 0.7}]\n")
    root = project({"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello {{ name }}!\n",
                    "goldens/greet.yaml": golden_text})
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 3, result.output
    outcome = json.loads(result.stdout)["results"][0]
    assert outcome["status"] == "error" and outcome["output"] == "Hello Ada!\n"
    assert outcome["error"] == "comparator exploding (goldens/greet.yaml:5) raised ValueError: no idea"


def test_each_score_records_the_options_of_its_comparator(cli, project) -> None:
    golden_text = ("cases:\n  - id: a\n    input: {name: Ada}\n    expected: Hello Ada!\n"
                   "    comparators: [{type: contains, value: Ada, ignore_case: true}]\n")
    root = project({"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello {{ name }}!\n",
                    "goldens/greet.yaml": golden_text})
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 0, result.output
    score = json.loads(result.stdout)["results"][0]["scores"][0]
    assert score["comparator"] == "contains"
    assert score["options"]["value"] == "Ada"
    shown = json.loads(cli("show", "last", "--root", root, "--format", "json").stdout)
    assert shown["results"][0]["scores"][0]["options"] == score["options"]
