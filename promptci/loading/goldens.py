"""Golden files -> Cases, with every comparator built once to validate it, and every problem at path:line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptci import registry
from promptci.config import unknown_keys
from promptci.errors import ConfigError, Problem, PromptCIError
from promptci.loading.yamlfile import (
    item_line,
    line_of,
    load_yaml,
    relative_path,
    relative_to,
    to_plain,
    type_name,
)
from promptci.types import Case, ComparatorSpec, Location

GOLDEN_KEYS = ("prompt", "comparators", "cases")
CASE_KEYS = ("id", "input", "expected", "comparators", "tags")
NEEDS_EXPECTED = frozenset({"exact", "normalized", "json", "similarity"})
GOLDEN_SUFFIXES = (".yaml", ".yml")


@dataclass
class GoldenFile:
    """One golden file as loaded: the good cases, the problems, and where its prompt is named."""

    path: str
    prompt: str | None = None  # None: the `prompt:` value is unusable
    prompt_line: int = 1
    cases: list[Case] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def golden_prompt_name(path: Path, root: Path) -> str:
    """goldens/triage/route.yaml -> "triage/route" (the default `prompt:`)."""
    relative = relative_to(path, root / "goldens") or Path(path.name)
    return relative.with_suffix("").as_posix()


def load_golden_file(path: Path, root: Path, default_comparators: Sequence[ComparatorSpec]
                     ) -> tuple[list[Case], list[Problem]]:
    """The cases of one golden file that are sound, and the problems of the rest."""
    golden = read_golden_file(path, root, default_comparators)
    return golden.cases, golden.problems


def read_golden_file(path: Path, root: Path, default_comparators: Sequence[ComparatorSpec]) -> GoldenFile:
    """Like load_golden_file, keeping the prompt name and the line that names it."""
    where = relative_path(path, root)
    golden = GoldenFile(where, prompt=golden_prompt_name(path, root))
    try:
        data = load_yaml(path, root)
    except ConfigError as exc:
        golden.problems.extend(exc.problems)
        golden.prompt = None
        return golden
    if data is None:
        return golden
    if not isinstance(data, dict):
        golden.problems.append(Problem(
            f"a golden file must be a mapping with `cases:` (a list), got {type_name(data)}",
            Location(where, getattr(data, "line", 1) or 1)))
        golden.prompt = None
        return golden
    golden.problems.extend(unknown_keys(data, GOLDEN_KEYS, "a golden file", where))
    _read_prompt_key(data, golden)
    comparators: Sequence[ComparatorSpec] | None = default_comparators
    if "comparators" in data:
        comparators, problems = parse_comparators(data["comparators"], where, line_of(data, "comparators"), root)
        golden.problems.extend(problems)
        if problems:
            comparators = None  # cases relying on the file's defaults cannot be scored as written
    cases = data.get("cases")
    if not isinstance(cases, list):
        message = "`cases` must be a list of cases" if "cases" in data else "has no `cases:` list"
        golden.problems.append(Problem(f"{message}, e.g. `cases: [{{input: {{name: Ada}}, expected: Hi Ada}}]`",
                                       Location(where, line_of(data, "cases") or 1)))
        return golden
    _read_cases(cases, golden, comparators, root)
    return golden


def _read_prompt_key(data: Mapping[str, Any], golden: GoldenFile) -> None:
    if "prompt" not in data:
        return
    golden.prompt_line = line_of(data, "prompt")
    value = data["prompt"]
    if not isinstance(value, str) or not value.strip():
        golden.problems.append(Problem(f"`prompt` must be a prompt name like triage/route, got {value!r}",
                                       Location(golden.path, golden.prompt_line)))
        golden.prompt = None
    else:
        golden.prompt = value.strip().strip("/")


def _read_cases(cases: list[Any], golden: GoldenFile, file_comparators: Sequence[ComparatorSpec] | None,
                root: Path) -> None:
    first_line_of_id: dict[str, int] = {}
    for index, item in enumerate(cases):
        line = item_line(cases, index)
        case, problems = _read_case(item, index, line, golden, file_comparators, root)
        if case is not None and case.id in first_line_of_id:
            problems.append(Problem(f"duplicate case id {case.id!r}: first at line {first_line_of_id[case.id]}, "
                                    f"again at line {line}; ids must be unique within a file",
                                    Location(golden.path, line)))
        elif case is not None:
            first_line_of_id[case.id] = line
        golden.problems.extend(problems)
        if case is not None and not problems and golden.prompt is not None:
            golden.cases.append(case)


def _read_case(item: Any, index: int, line: int, golden: GoldenFile,
               file_comparators: Sequence[ComparatorSpec] | None, root: Path
               ) -> tuple[Case | None, list[Problem]]:
    where = golden.path
    location = Location(where, line)
    if not isinstance(item, dict):
        return None, [Problem(f"a case must be a mapping with `input:` and `expected:`, got {type_name(item)}",
                              location)]
    problems = unknown_keys(item, CASE_KEYS, "a case", where)
    case_id = item.get("id", index)
    if isinstance(case_id, bool) or not isinstance(case_id, (str, int)) or not str(case_id).strip():
        problems.append(Problem(f"case `id` must be a non-empty string, got {case_id!r}",
                                Location(where, line_of(item, "id"))))
        case_id = index
    inputs = item.get("input")
    if inputs is None:
        inputs = {}
    elif not isinstance(inputs, dict) or not all(isinstance(k, str) for k in inputs):
        problems.append(Problem(f"case `input` must be a mapping of template variables, got {type_name(inputs)}",
                                Location(where, line_of(item, "input"))))
        inputs = {}
    comparators = file_comparators
    if "comparators" in item:
        comparators, comparator_problems = parse_comparators(item["comparators"], where,
                                                             line_of(item, "comparators"), root)
        problems.extend(comparator_problems)
    tags = _read_tags(item, where, problems)
    has_expected = "expected" in item
    for spec in comparators or ():
        if spec.type in NEEDS_EXPECTED and not has_expected:
            problems.append(Problem(
                f"case {str(case_id)!r} has no `expected`, which comparator {spec.type!r} ({_origin(spec)}) "
                "needs; add `expected:` or use comparators that need none (regex, contains, json_schema, "
                "latency, cost)", location))
    if comparators is None:
        return None, problems
    return Case(
        id=str(case_id).strip(),
        prompt=golden.prompt or "",
        location=location,
        input=to_plain(inputs),
        expected=to_plain(item.get("expected")),
        has_expected=has_expected,
        comparators=tuple(comparators),
        tags=tags,
    ), problems


def _origin(spec: ComparatorSpec) -> str:
    return f"from {spec.location}" if spec.location.line else "the default when no file names any"


def _read_tags(item: Mapping[str, Any], where: str, problems: list[Problem]) -> tuple[str, ...]:
    tags = item.get("tags")
    if tags is None:
        return ()
    if isinstance(tags, str):
        return (tags,)
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.append(Problem(f"case `tags` must be a list of strings, got {tags!r}",
                                Location(where, line_of(item, "tags"))))
        return ()
    return tuple(tags)


def parse_comparators(value: Any, file: str, line: int, root: Path) -> tuple[tuple[ComparatorSpec, ...],
                                                                             list[Problem]]:
    """A `comparators:` value (a list of names or {type: ..., **options}) -> validated specs and problems.

    Every entry is built once by its factory, so an unknown name, a bad option or an invalid regex is
    reported here, at the entry's line, before anything runs.
    """
    items = value if isinstance(value, list) else [value]
    specs: list[ComparatorSpec] = []
    problems: list[Problem] = []
    if not items:
        problems.append(Problem("an empty `comparators:` list would let every output pass; name at least one "
                                "comparator, or remove the key to use the defaults", Location(file, line)))
    for index, item in enumerate(items):
        location = Location(file, item_line(value, index) if isinstance(value, list) else line)
        if isinstance(item, dict):
            location = Location(file, getattr(item, "line", location.line))
            name, options = item.get("type"), {k: to_plain(v) for k, v in item.items() if k != "type"}
        else:
            name, options = item, {}
        if not isinstance(name, str) or not name:
            problems.append(Problem(
                f"a comparator must be a name or a mapping with `type:`, got {type_name(item)} "
                "(e.g. `- exact` or `- {type: regex, pattern: '^ok'}`)", location))
            continue
        if ":" in name:  # `- checks.py:is_polite` is shorthand for the python comparator
            name, options = "python", {"function": name, **options}
        try:
            registry.build_comparator(name, options, root)  # files it names must stay inside root: it checks
        except PromptCIError as exc:
            problems.append(Problem(exc.message, location))
            continue
        specs.append(ComparatorSpec(name, options, location))
    return tuple(specs), problems
