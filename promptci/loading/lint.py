"""`promptci lint`: every offline check of prompts and goldens, as errors and warnings with path:line."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from promptci.config import Settings, suggest
from promptci.errors import Problem, TemplateError
from promptci.loading.render import Renderer
from promptci.loading.suite import SuiteScan, collect_suite, empty_suite_problem
from promptci.types import Location

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class LintProblem(Problem):
    """A Problem with a severity: errors fail `promptci lint`, warnings are shown."""

    severity: Severity = "error"


Check = Callable[[SuiteScan], list["LintProblem"]]  # a check a layer below loading adds (api.lint)


def lint_project(settings: Settings, paths: Sequence[Path] = (), checks: Sequence[Check] = ()) -> list[LintProblem]:
    """Everything load_suite checks, plus rendering every case, unused case variables and unused prompts, and
    `checks` (whatever needs more than loading knows: which judges gate, calibration.py's).

    Sorted by file and line. A ConfigError is raised only for a bad PATH argument.
    """
    scan = collect_suite(settings, paths)
    found = [_as(problem, "error") for problem in scan.problems]
    if not scan.cases and not scan.problems:
        found.append(_as(empty_suite_problem(scan), "error"))
    renderer = Renderer(settings.root)
    found += _render_problems(scan, renderer)
    found += _unused_variable_warnings(scan, renderer)
    found += _undeclared_mocked_tools(scan)
    if not paths:
        found += _unused_prompt_warnings(scan)
        found += _unmeasured_gate_metrics(settings, scan)
    for check in checks:
        found += check(scan)
    return sorted(found, key=_sort_key)


def has_errors(problems: Sequence[LintProblem]) -> bool:
    return any(p.severity == "error" for p in problems)


def _as(problem: Problem, severity: Severity) -> LintProblem:
    return LintProblem(problem.message, problem.location, severity)


def _render_problems(scan: SuiteScan, renderer: Renderer) -> list[LintProblem]:
    found = []
    for case in scan.cases:
        try:
            renderer.render(scan.prompts[case.prompt], case)
            renderer.render_turns(case)
        except TemplateError as exc:
            found += [_as(problem, "error") for problem in exc.problems]
    return found


def _unused_variable_warnings(scan: SuiteScan, renderer: Renderer) -> list[LintProblem]:
    """A case's variable that none of its prompts reads (`prompt: [a, b]` runs each case on both)."""
    used_by_prompt = {name: renderer.undeclared_variables(prompt) for name, prompt in scan.prompts.items()}
    used_by_case: dict[tuple[str, int, str], set[str]] = {}
    for case in scan.cases:
        key = (case.location.file, case.location.line, case.id)
        used_by_case.setdefault(key, set()).update(used_by_prompt[case.prompt])
    found = []
    warned: set[tuple[str, int, str]] = set()
    for case in scan.cases:
        key = (case.location.file, case.location.line, case.id)
        if key in warned:
            continue
        warned.add(key)
        prompt = scan.prompts[case.prompt]
        used = used_by_case[key]
        for name in sorted(set(case.input) - used):
            hint = suggest(name, used - set(case.input)) or " (a typo, or a leftover?)"
            found.append(LintProblem(f"case {case.id!r} supplies {name!r}, which {prompt.path} never uses{hint}",
                                     case.location, "warning"))
    return found


def _undeclared_mocked_tools(scan: SuiteScan) -> list[LintProblem]:
    """A tool mock for a tool the prompt does not offer can never answer a call: most likely a typo."""
    found = []
    for case in scan.cases:
        prompt = scan.prompts[case.prompt]
        declared = {tool["function"]["name"] for tool in prompt.params.get("tools") or ()
                    if isinstance(tool, dict) and isinstance(tool.get("function"), dict)}
        for mock in case.tool_script.mocks if case.tool_script else ():
            if mock.tool not in declared:
                found.append(LintProblem(
                    f"tool mock {mock.tool!r}: {prompt.path} declares no such tool{suggest(mock.tool, declared)} "
                    f"(its tools: {', '.join(sorted(declared)) or 'none'}), so this mock never answers a call",
                    mock.location))
    return found


def _unused_prompt_warnings(scan: SuiteScan) -> list[LintProblem]:
    """A prompt no golden runs; a judge template (llm_judge's `template:`) is used by its comparator."""
    judge_templates = {spec.options.get("template") for case in scan.cases for spec in case.comparators
                       if spec.type == "llm_judge"}
    return [
        LintProblem(f"prompt {name!r} has no golden cases; add goldens/{name}.yaml", Location(prompt.path, 1),
                    "warning")
        for name, prompt in sorted(scan.prompts.items())
        if name not in scan.golden_prompts and name not in judge_templates
    ]


def _sort_key(problem: LintProblem) -> tuple[str, int, str, str]:
    location = problem.location or Location("")
    return (location.file, location.line, problem.severity, problem.message)


def _unmeasured_gate_metrics(settings: Settings, scan: SuiteScan) -> list[LintProblem]:
    """A `gate.metrics` name that no comparator carries can never fail the gate: most likely a typo."""
    carried = {spec.metric for case in scan.cases for spec in case.comparators if spec.metric is not None}
    return [
        LintProblem(f"gate.metrics.{threshold.name}: no comparator has `metric: {threshold.name}`"
                    f"{suggest(threshold.name, carried)}, so this threshold can never fail the gate"
                    f" (metrics in the goldens: {', '.join(sorted(carried)) or 'none'})", threshold.location)
        for threshold in settings.gate.metrics
        if threshold.name not in carried
    ]
