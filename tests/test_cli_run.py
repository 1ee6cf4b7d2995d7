"""`promptci run` end to end through the real CLI: exit codes, reports, the store, bad input."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

GREET = {"prompts/greet.txt": "Hello {{ name }}!\n"}
GREET_GOLDEN = """\
cases:
  - id: ada
    input: {name: Ada}
    expected: Hello Ada!
  - id: bob
    input: {name: Bob}
    expected: Hello Bob!
    tags: [smoke]
"""


def db_rows(root: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(root / ".promptci" / "promptci.db") as connection:
        return connection.execute(sql).fetchall()


def test_demo_suite_passes(cli, demo_project: Path) -> None:
    result = cli("run", "--root", demo_project)
    assert result.exit_code == 0, result.output
    assert "29 passed, 0 failed" in result.output
    assert "clinical/summarize" in result.output and "triage/route" in result.output


def test_a_regression_exits_1_and_shows_the_diff(cli, demo_project: Path) -> None:
    golden = demo_project / "goldens" / "triage" / "hl7.yaml"
    text = golden.read_text()
    golden.write_text(text.replace("expected: admission", "expected: discharge", 1))
    result = cli("run", "--root", demo_project)
    assert result.exit_code == 1, result.output
    assert "1 failed" in result.output
    assert "goldens/triage/hl7.yaml:" in result.output
    assert "-discharge" in result.output and "+admission" in result.output


def test_json_report_to_stdout_and_file(cli, project, tmp_path: Path) -> None:
    root = project({**GREET, "goldens/greet.yaml": GREET_GOLDEN, "promptci.yaml": "models: [echo]\n"})
    out = tmp_path / "out" / "results.json"
    result = cli("run", "--root", root, "--format", "json", "-o", f"junit={tmp_path / 'junit.xml'}", "-o", out)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    assert document["summary"]["total"] == 2 and document["summary"]["passed"] == 2
    first = document["results"][0]
    where = (first["prompt"], first["case_id"], first["file"], first["line"])
    assert where == ("greet", "ada", "goldens/greet.yaml", 2)
    assert first["model"] == "echo" and first["output"] == "Hello Ada!\n" and first["scores"][0]["passed"] is True
    assert json.loads(out.read_text())["run_id"] == document["run_id"]
    assert "<testsuite" in (tmp_path / "junit.xml").read_text()


def test_every_result_is_in_the_store(cli, project) -> None:
    root = project({**GREET, "goldens/greet.yaml": GREET_GOLDEN, "promptci.yaml": "models: [echo]\n"})
    result = cli("run", "--root", root, "--format", "json")
    run_id = json.loads(result.stdout)["run_id"]
    rows = db_rows(root, f"SELECT case_id, status FROM results WHERE run_id = '{run_id}' ORDER BY case_id")
    assert rows == [("ada", "passed"), ("bob", "passed")]
    finished = db_rows(root, f"SELECT finished_at, interrupted FROM runs WHERE id = '{run_id}'")
    assert finished[0][0] is not None and finished[0][1] == 0


def test_keyword_selects_by_tag_id_and_prompt(cli, project) -> None:
    root = project({**GREET, "goldens/greet.yaml": GREET_GOLDEN, "promptci.yaml": "models: [echo]\n"})

    def selected(expression: str) -> list[str]:
        result = cli("run", "--root", root, "-k", expression, "--format", "json")
        assert result.exit_code == 0, result.output
        return [r["case_id"] for r in json.loads(result.stdout)["results"]]

    assert selected("smoke") == ["bob"]
    assert selected("not smoke") == ["ada"]
    assert selected("greet and (ada or bob)") == ["ada", "bob"]
    bad = cli("run", "--root", root, "-k", "ada and")
    assert bad.exit_code == 2 and "-k" in bad.output


def test_model_matrix_puts_models_side_by_side(cli, project) -> None:
    root = project({
        **GREET, "goldens/greet.yaml": GREET_GOLDEN,
        "app.py": "def shout(messages, params):\n    return messages[-1]['content'].upper()\n",
    })
    result = cli("run", "--root", root, "-m", "echo", "-m", "python:app:shout", "--format", "json")
    assert result.exit_code == 1, result.output
    by_model = {(r["model"], r["case_id"]): r["status"] for r in json.loads(result.stdout)["results"]}
    assert by_model == {("echo", "ada"): "passed", ("echo", "bob"): "passed",
                        ("python:app:shout", "ada"): "failed", ("python:app:shout", "bob"): "failed"}


def test_gate_min_pass_rate_allows_a_share_of_failures(cli, project) -> None:
    golden = GREET_GOLDEN.replace("expected: Hello Bob!", "expected: Bye Bob!")
    config = "models: [echo]\ngate: {min_pass_rate: 0.5}\n"
    root = project({**GREET, "goldens/greet.yaml": golden, "promptci.yaml": config})
    assert cli("run", "--root", root).exit_code == 0
    (root / "promptci.yaml").write_text("models: [echo]\ngate: {min_pass_rate: 0.9}\n")
    assert cli("run", "--root", root).exit_code == 1


def test_app_errors_leave_cases_unscored_exit_3(cli, project) -> None:
    root = project({
        **GREET, "goldens/greet.yaml": GREET_GOLDEN, "promptci.yaml": "models: ['python:app:answer']\n",
        "app.py": "def answer(messages, params):\n    raise RuntimeError('database is down')\n",
    })
    result = cli("run", "--root", root)
    assert result.exit_code == 3, result.output
    assert "database is down" in result.output and "2 errors" in result.output


def test_prompt_output_json_that_does_not_parse_fails_instead_of_crashing(cli, project) -> None:
    root = project({
        "prompts/extract.txt": "---\noutput: json\n---\nExtract {{ x }}\n",
        "goldens/extract.yaml": "comparators: [{type: contains, value: Extract}]\ncases:\n  - input: {x: 1}\n",
        "promptci.yaml": "models: [echo]\n",
    })
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 1
    scores = json.loads(result.stdout)["results"][0]["scores"]
    assert scores[0]["comparator"] == "output:json" and scores[0]["passed"] is False


def test_keep_going_skips_broken_cases_and_reports_them(cli, project) -> None:
    broken = GREET_GOLDEN + "  - id: broken\n    input: {}\n    expected: x\n"
    root = project({**GREET, "goldens/greet.yaml": broken, "promptci.yaml": "models: [echo]\n"})
    stopped = cli("run", "--root", root)
    assert stopped.exit_code == 2 and "name" in stopped.output
    result = cli("run", "--root", root, "--keep-going", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [r["case_id"] for r in document["results"]] == ["ada", "bob"]
    assert any("goldens/greet.yaml:9" in p for p in document["problems"])


BAD_INPUTS = {
    "malformed yaml": (
        {"goldens/greet.yaml": "cases:\n  - id: a\n    input: {name: [Ada\n"}, "goldens/greet.yaml:"),
    "golden for a missing prompt": (
        {"goldens/greet.yaml": "prompt: gret\n" + GREET_GOLDEN}, "goldens/greet.yaml:1"),
    "missing template variable": (
        {"goldens/greet.yaml": "cases:\n  - id: a\n    input: {nom: Ada}\n    expected: x\n"}, "'name'"),
    "duplicate case ids": (
        {"goldens/greet.yaml": GREET_GOLDEN.replace("id: bob", "id: ada")}, "goldens/greet.yaml:5"),
    "unknown comparator": (
        {"goldens/greet.yaml": "comparators: [exakt]\n" + GREET_GOLDEN}, "exakt"),
    "comparator option error": (
        {"goldens/greet.yaml": "comparators: [{type: exact, strp: true}]\n" + GREET_GOLDEN}, "strp"),
    "invalid regex": (
        {"goldens/greet.yaml": "comparators: [{type: regex, pattern: 'Hello ('}]\n" + GREET_GOLDEN}, "Hello ("),
    "empty suite": ({"goldens/greet.yaml": "cases: []\n", "prompts/greet.txt": "x"}, "no golden cases found"),
    "schema path escaping the root": (
        {"goldens/greet.yaml": "comparators: [{type: json_schema, schema: ../../etc/passwd}]\n" + GREET_GOLDEN},
        "goldens/greet.yaml:1"),
    "binary file": ({"goldens/greet.yaml": b"\x00\x01\xff\xfe binary"}, "goldens/greet.yaml"),
    "non-UTF-8 file": ({"prompts/greet.txt": "Hall\xe5 {{ name }}".encode("latin-1")}, "prompts/greet.txt"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_a_clear_message_and_exit_2(cli, project, name: str) -> None:
    files, expected_in_message = BAD_INPUTS[name]
    root = project({**GREET, "goldens/greet.yaml": GREET_GOLDEN, "promptci.yaml": "models: [echo]\n", **files})
    result = cli("run", "--root", root)
    assert result.exit_code == 2, result.output
    assert "promptci: error" in result.stderr
    assert expected_in_message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not (root / ".promptci" / "promptci.db").exists() or not db_rows(root, "SELECT * FROM results")


def test_unknown_provider_lists_the_known_ones(cli, project) -> None:
    root = project({**GREET, "goldens/greet.yaml": GREET_GOLDEN})
    result = cli("run", "--root", root, "-m", "openia:gpt-4o")
    assert result.exit_code == 2
    assert "unknown provider 'openia'" in result.stderr and "openai" in result.stderr


def test_no_model_anywhere_says_where_to_set_one(cli, project) -> None:
    root = project({**GREET, "goldens/greet.yaml": GREET_GOLDEN})
    result = cli("run", "--root", root)
    assert result.exit_code == 2 and "no model for prompt 'greet'" in result.stderr


def test_missing_key_is_exit_2_before_any_request(cli, project) -> None:
    root = project({**GREET, "goldens/greet.yaml": GREET_GOLDEN})
    result = cli("run", "--root", root, "-m", "openai:gpt-4o-mini")
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.stderr and "openai" in result.stderr


def test_unknown_format_and_no_project(cli, project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project({**GREET, "goldens/greet.yaml": GREET_GOLDEN})
    result = cli("run", "--root", root, "--format", "yaml")
    assert result.exit_code == 2 and "--format 'yaml'" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = cli("run")
    assert result.exit_code == 2 and "promptci init" in result.stderr


def test_two_projects_with_their_own_app_module_in_one_process(cli, project, tmp_path: Path) -> None:
    """python:app:answer must import each project's own app.py, not the first one imported."""
    for word in ("first", "second"):
        root = tmp_path / word
        root.mkdir()
        (root / "prompts").mkdir()
        (root / "goldens").mkdir()
        (root / "prompts" / "p.txt").write_text("q")
        (root / "goldens" / "p.yaml").write_text(f"cases:\n  - input: {{}}\n    expected: {word}\n")
        (root / "app.py").write_text(f"def answer(messages, params):\n    return '{word}'\n")
        result = cli("run", "--root", root, "-m", "python:app:answer")
        assert result.exit_code == 0, result.output


def test_paths_select_golden_files(cli, project) -> None:
    root = project({
        **GREET, "goldens/greet.yaml": GREET_GOLDEN, "promptci.yaml": "models: [echo]\n",
        "prompts/other.txt": "Other {{ x }}",
        "goldens/other.yaml": "cases:\n  - input: {x: 1}\n    expected: Other 1\n",
    })
    result = cli("run", "--root", root, root / "goldens" / "other.yaml", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [r["prompt"] for r in json.loads(result.stdout)["results"]] == ["other"]


def test_an_empty_comparator_list_is_refused(cli, project) -> None:
    golden = "cases:\n  - input: {name: Ada}\n    expected: nope\n    comparators: []\n"
    root = project({**GREET, "goldens/greet.yaml": golden, "promptci.yaml": "models: [echo]\n"})
    result = cli("run", "--root", root)
    assert result.exit_code == 2
    assert "goldens/greet.yaml:4: an empty `comparators:` list" in result.stderr


def test_a_local_function_names_a_comparator_directly(cli, project) -> None:
    golden = "comparators: ['checks/polite.py:is_polite']\n" + GREET_GOLDEN
    root = project({
        **GREET, "goldens/greet.yaml": golden, "promptci.yaml": "models: [echo]\n",
        "checks/polite.py": "def is_polite(output, expected):\n    return output.startswith('Hello')\n",
    })
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 0, result.output
    scores = [r["scores"][0] for r in json.loads(result.stdout)["results"]]
    assert [(s["comparator"], s["passed"]) for s in scores] == [("python", True), ("python", True)]
    (root / "goldens" / "greet.yaml").write_text("comparators: ['../outside.py:f']\n" + GREET_GOLDEN)
    escaped = cli("run", "--root", root)
    assert escaped.exit_code == 2 and "goldens/greet.yaml:1" in escaped.stderr
