"""A hostile world, round two (issue 24): inputs that crashed promptci (exit 4) where they are bad input (exit 2,
naming the file): a `-k` nested 2,000 deep, `cases_from` JSONL and shard JSON holding a lone surrogate, deep
nesting or a huge integer, shard results with a status promptci does not know."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers_project import make_project
from hypothesis import given, settings
from hypothesis import strategies as st

from promptci.errors import PromptCIError
from promptci.loading.casefiles import _jsonl_rows
from promptci.selection import compile_expression
from promptci.types import Case, Location


def echo_project(root: Path, files: dict[str, str] | None = None) -> Path:
    return make_project(root, {"prompts/p.txt": "hi {{ name }}", "promptci.yaml": "models: [echo]\n",
                               "goldens/p.yaml": "cases:\n  - id: a\n    input: {name: x}\n    expected: hi x\n",
                               **(files or {})})


# ---------------------------------------------------------------- -k

@pytest.mark.parametrize("keyword", ["(" * 2000 + "a" + ")" * 2000, "not " * 3000 + "a", "(" * 2000])
def test_a_deeply_nested_k_is_a_usage_error(tmp_path: Path, cli, keyword: str) -> None:
    result = cli("run", "--root", echo_project(tmp_path / "p"), "-k", keyword)
    assert result.exit_code == 2, result.output
    assert "nests more than 100" in result.output
    assert len(result.output) < 400  # the expression is shown cut, not 4,000 characters of it


def test_a_long_flat_k_still_selects(tmp_path: Path, cli) -> None:
    result = cli("run", "--root", echo_project(tmp_path / "p"), "-k", " or ".join(["zz"] * 5000 + ["a"]),
                 "--format", "json")
    assert result.exit_code == 0, result.output
    assert [r["case_id"] for r in json.loads(result.stdout)["results"]] == ["a"]


K_TOKENS = st.lists(st.sampled_from(["(", ")", "and", "or", "not", "a", "b", "smoke"]), max_size=300)


@settings(max_examples=300, deadline=None)
@given(tokens=K_TOKENS, depth=st.integers(0, 1500))
def test_any_k_parses_or_is_a_named_usage_error(tokens: list[str], depth: int) -> None:
    expression = "(" * depth + " ".join(tokens) + ")" * depth
    case = Case(id="a-smoke", prompt="p", location=Location("goldens/p.yaml", 2), input={}, tags=("b",))
    try:
        matcher = compile_expression(expression)
    except PromptCIError as exc:
        assert exc.message.startswith("-k ")
        return
    assert matcher(case) in (True, False)


# ---------------------------------------------------------------- cases_from JSONL

HOSTILE_LINES = {
    "surrogate": '{"id": "s", "name": "\\ud800"}',
    "deep": '{"id": "d", "name": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "huge_int": '{"id": "h", "name": ' + "9" * 5000 + "}",
}


@pytest.mark.parametrize("line", sorted(HOSTILE_LINES))
def test_a_hostile_jsonl_case_is_bad_input_with_its_line(tmp_path: Path, cli, line: str) -> None:
    data = '{"id": "ok", "name": "y"}\n' + HOSTILE_LINES[line] + "\n"
    root = echo_project(tmp_path / "p", {"goldens/p.yaml": "cases_from: data/c.jsonl\n", "data/c.jsonl": data})
    result = cli("run", "--root", root)
    assert result.exit_code == 2, result.output
    assert "data/c.jsonl:2: invalid JSON" in result.output


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=300), st.lists(st.sampled_from(
    ['{"id": "a"}', '{"a": "\\udc00"}', "[" * 1200, '{"n": ' + "1" * 4400 + "}", "{bad", '"x"']), max_size=5)
    .map("\n".join)))
def test_any_jsonl_text_gives_rows_or_problems(text: str) -> None:
    rows, problems = _jsonl_rows(text, "data/c.jsonl")
    assert all(p.location is not None and p.location.file == "data/c.jsonl" for p in problems)
    for row in rows:
        json.dumps(dict(row), ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------- shard JSON for `promptci merge`

def shard_document(index: int, status: str = "passed", output: Any = "hi x") -> dict[str, Any]:
    result = {"prompt": "p", "case_id": f"c{index}", "file": "goldens/p.yaml", "line": 2, "model": "echo",
              "status": status, "repeat": 0, "output": output, "scores": []}
    return {"schema_version": 1, "run_id": f"r{index}", "started_at": "2026-01-01T00:00:00Z",
            "git": {"commit": "abc", "dirty": False}, "models": ["echo"], "results": [result],
            "config_hash": "h", "shard": f"{index}/2"}


def merge(cli, tmp_path: Path, second: str) -> Any:
    root = echo_project(tmp_path / "p")
    first = tmp_path / "s1.json"
    first.write_text(json.dumps(shard_document(1)), encoding="utf-8")
    other = tmp_path / "s2.json"
    other.write_text(second, encoding="utf-8")
    return cli("merge", "--root", root, str(first), str(other), "--format", "json")


@pytest.mark.parametrize(("text", "named"), [
    (json.dumps(shard_document(2, output="\ud800")), "lone UTF-16 surrogate"),
    (json.dumps(shard_document(2)).replace('"hi x"', "[" * 100_000 + "]" * 100_000), "nests too deeply"),
    (json.dumps(shard_document(2)).replace('"hi x"', "9" * 5000), "4300 digits"),
])
def test_a_hostile_shard_is_bad_input_naming_the_file(tmp_path: Path, cli, text: str, named: str) -> None:
    result = merge(cli, tmp_path, text)
    assert result.exit_code == 2, result.output
    assert "s2.json" in result.output and named in result.output


def test_a_shard_that_is_not_utf8_is_bad_input(tmp_path: Path, cli) -> None:
    root = echo_project(tmp_path / "p")
    first, other = tmp_path / "s1.json", tmp_path / "s2.json"
    first.write_text(json.dumps(shard_document(1)), encoding="utf-8")
    other.write_bytes(json.dumps(shard_document(2)).replace("hi x", "hi \udcff", 1).encode("utf-8", "surrogatepass"))
    result = cli("merge", "--root", root, str(first), str(other))
    assert result.exit_code == 2, result.output
    assert "s2.json" in result.output and "UTF-8" in result.output


@pytest.mark.parametrize("status", ["exploded", "PASSED", "", "errors"])
def test_a_shard_result_with_an_unknown_status_is_refused(tmp_path: Path, cli, status: str) -> None:
    result = merge(cli, tmp_path, json.dumps(shard_document(2, status=status)))
    assert result.exit_code == 2, result.output
    assert "s2.json" in result.output and f"status {status!r}" in result.output
