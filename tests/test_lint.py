"""`promptci lint`: load problems and render errors as errors; unused variables and prompts as warnings."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_project import make_project

from promptci.config import load_settings
from promptci.errors import ConfigError, Problem
from promptci.loading.lint import LintProblem, has_errors, lint_project
from promptci.types import Location


def lint(root: Path, paths: list[Path] | None = None) -> list[str]:
    return [shown(p) for p in lint_project(load_settings(root), paths or ())]


def shown(problem: LintProblem) -> str:
    return f"{problem.location}: {problem.severity}: {problem.message}"


def test_clean_project_has_no_findings(tmp_path: Path) -> None:
    assert lint(make_project(tmp_path, with_greet=True)) == []


def test_errors_and_warnings_sorted_by_file_and_line(tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "prompts/unused.txt": "nobody tests me\n",
        "prompts/_partial.j2": "{{ whatever }}\n",
        "goldens/greet.yaml": """\
            cases:
              - id: ok
                input: {name: Ada, extra: 1}
                expected: x
              - id: lacks
                input: {nam: Ada}
                expected: x
              - id: ok
                expected: x
              - id: re
                comparators: [{type: regex, pattern: "[a-"}]
            """,
    }, with_greet=False)
    (root / "prompts/greet.txt").write_text("Hello {{ name }}!\n")
    findings = lint_project(load_settings(root))
    assert [shown(f) for f in findings] == [
        "goldens/greet.yaml:2: warning: case 'ok' supplies 'extra', which prompts/greet.txt never uses "
        "(a typo, or a leftover?)",
        "goldens/greet.yaml:5: error: rendering 'greet' for case 'lacks' failed at prompts/greet.txt:1: variable "
        "'name' is undefined: add `name:` to the case's input, or give it a default in the template "
        "({{ name | default('') }})",
        "goldens/greet.yaml:5: warning: case 'lacks' supplies 'nam', which prompts/greet.txt never uses "
        "(did you mean 'name'?)",
        "goldens/greet.yaml:8: error: duplicate case id 'ok': first at line 2, again at line 8; ids must be "
        "unique within a file",
        shown(findings[4]),
        "prompts/unused.txt:1: warning: prompt 'unused' has no golden cases; add goldens/unused.yaml",
    ]
    regex_error = findings[4]
    assert (regex_error.severity, str(regex_error.location)) == ("error", "goldens/greet.yaml:11")
    assert "regex" in regex_error.message
    assert has_errors(findings)


def test_warnings_alone_are_not_errors(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/spare.txt": "x\n"}, with_greet=True)
    findings = lint_project(load_settings(root))
    assert [(f.severity, f.message) for f in findings] == [
        ("warning", "prompt 'spare' has no golden cases; add goldens/spare.yaml")]
    assert not has_errors(findings)


def test_broken_yaml_and_missing_prompt_are_errors(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"goldens/a.yaml": "cases:\n  - {expected: x}\n",
                                   "goldens/b.yaml": "cases:\n  - id: x\n   bad: 1\n"}, with_greet=True)
    findings = lint(root)
    assert findings[0].startswith("goldens/a.yaml:1: error: prompt 'a' does not exist")
    assert findings[1].startswith("goldens/b.yaml:3: error: invalid YAML")
    assert len(findings) == 2


def test_empty_project_is_an_error(tmp_path: Path) -> None:
    findings = lint_project(load_settings(make_project(tmp_path)))
    assert len(findings) == 1
    assert findings[0].severity == "error"
    assert "no golden cases found in goldens/" in findings[0].message


def test_paths_limit_lint_and_skip_unused_prompt_warnings(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/spare.txt": "x\n", "goldens/other.yaml": "cases: [\n"}, with_greet=True)
    assert lint(root, [root / "goldens/greet.yaml"]) == []
    with pytest.raises(ConfigError, match="does not exist"):
        lint(root, [root / "goldens/nope.yaml"])


def test_lint_problem_is_a_problem() -> None:
    problem = LintProblem("m", Location("f.yaml", 3), "warning")
    assert isinstance(problem, Problem)
    assert (str(problem), problem.severity, LintProblem("m").severity) == ("f.yaml:3: m", "warning", "error")
