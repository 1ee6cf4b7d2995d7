"""`run --repeat K`: per case a pass rate and a Wilson interval, flaky cases named, the summary counting cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# A python stand-in that answers right on odd calls for "flip" only: that case's samples disagree.
APP = '''
import itertools
_calls = itertools.count()

def answer(messages, params):
    text = messages[-1]["content"].strip()
    if text == "flip":
        return "yes" if next(_calls) % 2 else "no"
    return "yes" if text == "steady" else "no"
'''
GOLDEN = """\
comparators: [{type: contains, value: 'yes'}]
cases:
  - id: steady
    input: {word: steady}
  - id: flip
    input: {word: flip}
  - id: broken
    input: {word: broken}
"""


@pytest.fixture
def root(project) -> Path:
    return project({"promptci.yaml": "models: ['python:flipapp:answer']\nconcurrency: 1\n",
                    "flipapp.py": APP, "prompts/say.txt": "{{ word }}\n", "goldens/say.yaml": GOLDEN})


def test_json_has_per_case_rates_intervals_and_flaky(cli, root: Path) -> None:
    result = cli("run", "--root", root, "--repeat", "4", "--format", "json", "--no-github")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert len(document["results"]) == 12
    assert document["summary"]["total"] == 3  # cases, not samples
    assert (document["summary"]["passed"], document["summary"]["failed"]) == (1, 2)
    cases = {c["case_id"]: c for c in document["cases"]}
    assert (cases["steady"]["pass_rate"], cases["steady"]["flaky"]) == (1.0, False)
    assert (cases["flip"]["passed"], cases["flip"]["samples"], cases["flip"]["flaky"]) == (2, 4, True)
    assert (cases["broken"]["pass_rate"], cases["broken"]["flaky"]) == (0.0, False)
    low, high = cases["flip"]["interval"]
    assert low == pytest.approx(0.1500, abs=1e-4) and high == pytest.approx(0.8500, abs=1e-4)  # Wilson, 2 of 4


def test_table_names_flaky_cases_and_counts_cases(cli, root: Path) -> None:
    result = cli("run", "--root", root, "--repeat", "4", "--no-github")
    assert result.exit_code == 1
    assert "flip [python:flipapp:answer]: flaky passed 2 of 4 (50%, 95% CI 15%-85%)" in result.stdout
    assert "steady [" not in result.stdout.split("flaky (samples disagreed)")[1].split("\n\n")[0]
    assert "1 passed, 2 failed, 0 errors, 0 skipped (cases; 12 samples)" in result.stdout
    verbose = cli("run", "--root", root, "--repeat", "4", "-v", "--no-github")
    assert "steady [python:flipapp:answer]: passed 4 of 4 (100%" in verbose.stdout


def test_without_repeat_nothing_changes(cli, root: Path) -> None:
    result = cli("run", "--root", root, "--format", "json", "--no-github")
    document = json.loads(result.stdout)
    assert document["cases"] == [] and document["summary"]["total"] == 3
