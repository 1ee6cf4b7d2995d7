"""Golden files -> Cases, with every comparator built once at load, and every problem at path:line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from promptci.comparator_specs import check_case_problem, comparator_of, parse_comparators
from promptci.config import unknown_keys
from promptci.errors import ConfigError, Problem, PromptCIError
from promptci.loading.casefiles import DATA_SUFFIXES, read_case_rows
from promptci.loading.conversations import CONVERSATION_KEYS, read_tool_script, read_user_turns
from promptci.loading.yamlfile import (
    item_line,
    line_of,
    load_yaml,
    relative_path,
    relative_to,
    resolve_inside,
    to_plain,
    type_name,
    value_line,
)
from promptci.transforms import Transform, parse_transform, with_transform
from promptci.types import Case, ComparatorSpec, Location

__all__ = ["GOLDEN_SUFFIXES", "GoldenFile", "golden_prompt_name", "load_golden_file", "read_golden_file"]

GOLDEN_KEYS = ("prompt", "comparators", "transform", "cases", "cases_from", "description", "metadata",
               "min_pass_rate")
CASE_KEYS = ("id", "input", "expected", "comparators", "comparators+", "transform", "tags", "description",
             "metadata", "min_pass_rate", *CONVERSATION_KEYS)
NEEDS_EXPECTED = frozenset({"exact", "normalized", "json", "similarity", "fuzzy", "levenshtein"})
GOLDEN_SUFFIXES = (".yaml", ".yml")
Specs = tuple[ComparatorSpec, ...]
Steps = tuple[tuple[str, Transform], ...]


@dataclass
class GoldenFile:
    """One golden file as loaded: the good cases, the problems, and where its prompt(s) are named."""

    path: str
    prompts: list[str] = field(default_factory=list)  # empty: the `prompt:` value is unusable
    prompt_line: int = 1
    cases: list[Case] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def prompt(self) -> str | None:
        """The first prompt the file names (None when unusable)."""
        return self.prompts[0] if self.prompts else None


@dataclass(frozen=True)
class _FileDefaults:
    comparators: Specs | None  # None: the file's own comparators are broken
    transform: Steps = ()  # the file's `transform:`, applied to every comparator of its cases
    min_pass_rate: float | None = None  # the file's `min_pass_rate:`, for cases without their own


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
    """Like load_golden_file, keeping the prompt names and the line that names them."""
    where = relative_path(path, root)
    golden = GoldenFile(where, prompts=[golden_prompt_name(path, root)])
    try:
        data = load_yaml(path, root)
    except ConfigError as exc:
        golden.problems.extend(exc.problems)
        golden.prompts = []
        return golden
    if data is None:
        return golden
    if not isinstance(data, dict):
        golden.problems.append(Problem(
            f"a golden file must be a mapping with `cases:` (a list), got {type_name(data)}",
            Location(where, getattr(data, "line", 1) or 1)))
        golden.prompts = []
        return golden
    golden.problems.extend(unknown_keys(data, GOLDEN_KEYS, "a golden file", where))
    _read_prompt_key(data, golden)
    defaults = _read_file_defaults(data, golden, tuple(default_comparators), root)
    items = _case_items(data, golden, root)
    if items is None:
        return golden
    _read_cases(items, golden, defaults, root)
    return golden


def _read_file_defaults(data: Mapping[str, Any], golden: GoldenFile, defaults: Specs, root: Path) -> _FileDefaults:
    comparators: Specs | None = defaults
    if "comparators" in data:
        comparators, problems = parse_comparators(data["comparators"], golden.path, line_of(data, "comparators"), root)
        golden.problems.extend(problems)
        if problems:
            comparators = None  # cases relying on the file's defaults cannot be scored as written
    steps: Steps = ()
    if data.get("transform") is not None:
        try:
            steps = tuple(parse_transform(to_plain(data["transform"]), root))
        except PromptCIError as exc:
            golden.problems.append(Problem(exc.message, Location(golden.path, line_of(data, "transform"))))
            comparators = None
    return _FileDefaults(comparators, steps, read_min_pass_rate(data, golden.path, golden.problems))


def read_min_pass_rate(data: Mapping[str, Any], where: str, problems: list[Problem]) -> float | None:
    """`min_pass_rate:` of a file or a case: a number in (0, 1], the share of its samples that must pass."""
    value = data.get("min_pass_rate")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        problems.append(Problem(
            f"`min_pass_rate` must be a number above 0 and at most 1, the share of a case's --repeat samples that "
            f"must pass (e.g. `min_pass_rate: 0.8`), got {to_plain(value)!r}",
            Location(where, line_of(data, "min_pass_rate"))))
        return None
    return float(value)


def _case_items(data: Mapping[str, Any], golden: GoldenFile, root: Path) -> list[tuple[Any, Location]] | None:
    """Each case mapping of `cases:` then `cases_from:`, with where it was written (None: no cases at all)."""
    where = golden.path
    cases = data.get("cases")
    if "cases_from" not in data and not isinstance(cases, list):
        message = "`cases` must be a list of cases" if "cases" in data else "has no `cases:` list"
        golden.problems.append(Problem(f"{message}, e.g. `cases: [{{input: {{name: Ada}}, expected: Hi Ada}}]`",
                                       Location(where, line_of(data, "cases") or 1)))
        return None
    items: list[tuple[Any, Location]] = []
    if isinstance(cases, list):
        items = [(item, Location(where, item_line(cases, index))) for index, item in enumerate(cases)]
    elif "cases" in data:
        golden.problems.append(Problem("`cases` must be a list of cases", Location(where, line_of(data, "cases"))))
    if "cases_from" in data:
        items += [(row, Location(row.file, row.line)) for row in _rows_from(data, golden, root)]
    return items


def _rows_from(data: Mapping[str, Any], golden: GoldenFile, root: Path) -> list[Any]:
    value, location = data["cases_from"], Location(golden.path, value_line(data, "cases_from"))
    if not isinstance(value, str) or not value.strip().lower().endswith(DATA_SUFFIXES):
        golden.problems.append(Problem(f"`cases_from` must name a .csv or .jsonl file inside the project, like "
                                       f"data/cases.csv, got {to_plain(value)!r}", location))
        return []
    try:
        path = resolve_inside(root, value.strip(), location)
    except ConfigError as exc:
        golden.problems.extend(exc.problems)
        return []
    rows, problems = read_case_rows(path, root)
    golden.problems.extend(problems)
    return rows


def _read_prompt_key(data: Mapping[str, Any], golden: GoldenFile) -> None:
    if "prompt" not in data:
        return
    golden.prompt_line = line_of(data, "prompt")
    value = data["prompt"]
    names = value if isinstance(value, list) and value else [value]
    if not all(isinstance(name, str) and name.strip() for name in names):
        golden.problems.append(Problem(
            f"`prompt` must be a prompt name like triage/route, or a list of them, got {to_plain(value)!r}",
            Location(golden.path, golden.prompt_line)))
        golden.prompts = []
        return
    golden.prompts = list(dict.fromkeys(name.strip().strip("/") for name in names))


def _read_cases(items: list[tuple[Any, Location]], golden: GoldenFile, defaults: _FileDefaults, root: Path) -> None:
    first_place_of_id: dict[str, Location] = {}
    for index, (item, location) in enumerate(items):
        case, problems = _read_case(item, index, location, golden, defaults, root)
        if case is not None and case.id in first_place_of_id:
            first = first_place_of_id[case.id]
            said = f"line {first.line}" if first.file == location.file else str(first)
            problems.append(Problem(f"duplicate case id {case.id!r}: first at {said}, again at line {location.line}; "
                                    "ids must be unique within a file", location))
        elif case is not None:
            first_place_of_id[case.id] = location
        golden.problems.extend(problems)
        if case is not None and not problems:
            golden.cases.extend(_for_each_prompt(case, golden.prompts))


def _for_each_prompt(case: Case, prompts: list[str]) -> list[Case]:
    if len(prompts) == 1:
        return [replace(case, prompt=prompts[0])]
    return [replace(case, prompt=name, key_prefix=f"{name}::") for name in prompts]


def _read_case(item: Any, index: int, location: Location, golden: GoldenFile, defaults: _FileDefaults,
               root: Path) -> tuple[Case | None, list[Problem]]:
    where = location.file
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
    comparators = _case_comparators(item, where, defaults, root, problems)
    tags = _read_tags(item, where, problems)
    description, metadata = _read_notes(item, where, problems)
    min_pass_rate = read_min_pass_rate(item, where, problems)
    tool_script = read_tool_script(item, where, root, problems)
    user_turns = read_user_turns(item, where, root, problems)
    has_expected = "expected" in item
    for spec in comparators or ():
        if spec.type in NEEDS_EXPECTED and not has_expected:
            problems.append(Problem(
                f"case {str(case_id)!r} has no `expected`, which comparator {spec.type!r} ({_origin(spec)}) "
                "needs; add `expected:` or use comparators that need none (regex, contains, json_schema, "
                "latency, cost)", location))
    if comparators is None:
        return None, problems
    case = Case(id=str(case_id).strip(), prompt=golden.prompt or "", location=location, input=to_plain(inputs),
                expected=to_plain(item.get("expected")), has_expected=has_expected, comparators=comparators,
                tags=tags, description=description, metadata=metadata, tool_script=tool_script,
                user_turns=user_turns,
                min_pass_rate=defaults.min_pass_rate if min_pass_rate is None else min_pass_rate)
    expected_at = Location(where, value_line(item, "expected") if has_expected else location.line)
    for spec in comparators:
        found = check_case_problem(spec, case)
        if found:
            problems.append(Problem(f"{found} (comparator {spec.type!r} {_origin(spec)})", expected_at))
    return case, problems


def _case_comparators(item: Mapping[str, Any], where: str, defaults: _FileDefaults, root: Path,
                      problems: list[Problem]) -> Specs | None:
    """The case's comparators: its own or the file's, plus `comparators+`, with transforms applied."""
    comparators = defaults.comparators
    if "comparators" in item:
        comparators, found = parse_comparators(item["comparators"], where, line_of(item, "comparators"), root)
        problems.extend(found)
    if "comparators+" in item:
        extra, found = parse_comparators(item["comparators+"], where, line_of(item, "comparators+"), root)
        problems.extend(found)
        comparators = None if comparators is None else (*comparators, *extra)
    if comparators is None:
        return None
    # wrapped innermost first: the file's transform runs first, then the case's, then the comparator's own
    if item.get("transform") is not None:
        try:
            comparators = _transformed(comparators, tuple(parse_transform(to_plain(item["transform"]), root)), root)
        except PromptCIError as exc:
            problems.append(Problem(exc.message, Location(where, line_of(item, "transform"))))
    if defaults.transform:
        comparators = _transformed(comparators, defaults.transform, root)
    return comparators


def _transformed(specs: Specs, steps: Steps, root: Path) -> Specs:
    return tuple(replace(spec, instance=with_transform(comparator_of(spec, root), list(steps), spec.type))
                 for spec in specs)


def _origin(spec: ComparatorSpec) -> str:
    return f"from {spec.location}" if spec.location.line else "the default when no file names any"


def _read_notes(item: Mapping[str, Any], where: str, problems: list[Problem]) -> tuple[str | None, dict[str, Any]]:
    description, metadata = item.get("description"), item.get("metadata")
    if description is not None and not isinstance(description, str):
        problems.append(Problem(f"case `description` must be text, got {type_name(description)}",
                                Location(where, line_of(item, "description"))))
        description = None
    if metadata is not None and not isinstance(metadata, dict):
        problems.append(Problem(f"case `metadata` must be a mapping, got {type_name(metadata)}",
                                Location(where, line_of(item, "metadata"))))
        metadata = None
    return description, to_plain(metadata or {})


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
