"""`promptci import promptfoo`: a promptfooconfig.yaml -> prompts/, goldens/, data/ and promptci.yaml.

Reads the config with the line-aware loader, so every assertion it cannot convert is named with its
file and line; the files are written by promptci.importers.promptfoo_write.
"""

from __future__ import annotations

import csv
import glob
import io
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptci.errors import ConfigError
from promptci.importers.promptfoo_asserts import NO_EXPECTED, Mapped, Unmapped, map_assertion, parse_csv_expected
from promptci.importers.promptfoo_setup import ImportedPrompt, read_prompts, read_providers
from promptci.loading.yamlfile import item_line, line_of, load_yaml, read_text, relative_path, type_name
from promptci.types import Location


@dataclass(frozen=True)
class Skipped:
    """Something the converter could not convert, where it is, and why."""

    file: str
    line: int
    type: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "type": self.type, "reason": self.reason}


@dataclass
class ImportedCase:
    """One promptfoo test as a promptci case: shared (defaultTest) and own comparators kept apart."""

    id: str
    vars: dict[str, Any]
    description: str | None
    metadata: dict[str, Any]
    shared: list[dict[str, Any]]
    own: list[dict[str, Any]]
    expected: Any = NO_EXPECTED
    todos: list[str] = field(default_factory=list)
    source: str = ""  # the tests file it came from
    is_csv_row: bool = False


@dataclass
class Conversion:
    """Everything read from a promptfoo config, ready to be written."""

    config: str
    description: str | None = None
    prompts: list[ImportedPrompt] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    cases: list[ImportedCase] = field(default_factory=list)
    outcomes: dict[tuple[str, int, str], str | None] = field(default_factory=dict)  # None: converted
    skipped: list[Skipped] = field(default_factory=list)  # not assertions: providers, templates, options
    data_files: dict[str, Path] = field(default_factory=dict)  # CSV source name -> path

    @property
    def converted(self) -> int:
        return sum(1 for reason in self.outcomes.values() if reason is None)

    @property
    def not_converted(self) -> list[Skipped]:
        failed = [Skipped(file, line, kind, reason) for (file, line, kind), reason in self.outcomes.items()
                  if reason is not None]
        return sorted(failed + self.skipped, key=lambda s: (s.file, s.line, s.type))

    def counts_by_type(self) -> dict[str, tuple[int, int]]:
        counts: dict[str, tuple[int, int]] = {}
        for (_file, _line, kind), reason in self.outcomes.items():
            done, failed = counts.get(kind, (0, 0))
            counts[kind] = (done + (reason is None), failed + (reason is not None))
        return dict(sorted(counts.items()))


def read_promptfoo(config_path: Path) -> Conversion:
    """Read a promptfoo config and everything it names; ConfigError (exit 2) when it cannot be read."""
    base = config_path.parent
    if not config_path.is_file():
        raise ConfigError(f"no promptfoo config at {config_path}: name the promptfooconfig.yaml to convert")
    data = load_yaml(config_path, base)
    where = relative_path(config_path, base)
    if not isinstance(data, dict):
        raise ConfigError(f"a promptfoo config must be a mapping with `prompts:`, got {type_name(data)}",
                          Location(where, 1))
    conversion = Conversion(where, description=str(data["description"]) if data.get("description") else None)
    if "prompts" not in data:
        raise ConfigError("has no `prompts:`; nothing to convert", Location(where, 1))
    conversion.prompts, prompt_problems = read_prompts(data["prompts"], data, base, where)
    conversion.skipped.extend(Skipped(*problem) for problem in prompt_problems)
    setup = read_providers(data.get("providers"), data, where)
    conversion.models, conversion.providers, conversion.params = setup.models, setup.providers, setup.params
    conversion.skipped.extend(Skipped(*problem) for problem in setup.problems)
    if "env" in data:
        conversion.skipped.append(Skipped(where, line_of(data, "env"), "env", "`env:` is not converted: promptci "
                                          "reads keys from your shell's environment (api_key_env)"))
    default_test = data.get("defaultTest") or {}
    if not isinstance(default_test, dict):
        raise ConfigError(f"`defaultTest` must be a mapping, got {type_name(default_test)}",
                          Location(where, line_of(data, "defaultTest")))
    _read_options(default_test, where, conversion)
    for test, source, line, is_csv in _tests(data.get("tests"), data, base, where, conversion):
        _add_case(test, default_test, source, line, is_csv, base, conversion)
    return conversion


def _tests(value: Any, config: Mapping[str, Any], base: Path, where: str, conversion: Conversion
           ) -> list[tuple[Mapping[str, Any], str, int, bool]]:
    """(test mapping, source file, line, from CSV) for every test, inline or from files, in order."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    tests: list[tuple[Mapping[str, Any], str, int, bool]] = []
    for index, item in enumerate(items):
        line = item_line(value, index) if isinstance(value, list) else line_of(config, "tests")
        if isinstance(item, dict):
            tests.append((item, where, getattr(item, "line", line), False))
        elif isinstance(item, str):
            for path in _expand(item, base, Location(where, line)):
                tests.extend(_tests_from_file(path, base, conversion))
        else:
            raise ConfigError(f"a test must be a mapping or a file:// path, got {type_name(item)}",
                              Location(where, line))
    return tests


def _expand(reference: str, base: Path, location: Location) -> list[Path]:
    pattern = reference.removeprefix("file://")
    if any(char in pattern for char in "*?["):
        paths = sorted(Path(p) for p in glob.glob(str(base / pattern), recursive=True))
    else:
        paths = [base / pattern]
    if not paths or not all(p.is_file() for p in paths):
        raise ConfigError(f"{reference!r} names no file (paths are relative to the config's folder)", location)
    return paths


def _tests_from_file(path: Path, base: Path, conversion: Conversion) -> list[tuple[Mapping[str, Any], str, int, bool]]:
    where = relative_path(path, base)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        conversion.data_files[where] = path
        return [(row, where, line, True) for row, line in _csv_tests(read_text(path, base))]
    if suffix == ".jsonl":
        rows = []
        for number, text in enumerate(read_text(path, base).splitlines(), start=1):
            if text.strip():
                try:
                    rows.append((json.loads(text), where, number, False))
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"invalid JSON: {exc.msg}", Location(where, number)) from None
        return rows
    if suffix in (".yaml", ".yml", ".json"):
        data = load_yaml(path, base)
        items = data if isinstance(data, list) else [data]
        return [(item, where, item_line(data, i) if isinstance(data, list) else 1, False)
                for i, item in enumerate(items) if isinstance(item, dict)]
    raise ConfigError("tests files must be .yaml, .yml, .json, .jsonl or .csv", Location(where))


def _csv_tests(text: str) -> list[tuple[dict[str, Any], int]]:
    """promptfoo CSV rows -> test mappings: `__expected*` columns are assertions, others vars."""
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    tests = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        row = dict(zip(header, values, strict=False))
        test: dict[str, Any] = {"vars": {k: v for k, v in row.items() if not k.startswith("__")}, "assert": []}
        for name, cell in row.items():
            if name.startswith("__expected") and cell.strip():
                assertion = parse_csv_expected(cell)
                if row.get("__metric"):
                    assertion["metric"] = row["__metric"]
                test["assert"].append(assertion)
            elif name == "__description" and cell.strip():
                test["description"] = cell
            elif name.startswith("__metadata:"):
                test.setdefault("metadata", {})[name.split(":", 1)[1]] = cell
            elif name.startswith("__") and name not in ("__metric",) and cell.strip():
                test.setdefault("options", {})[name] = cell
        tests.append((test, reader.line_num))
    return tests


def _read_options(test: Mapping[str, Any], where: str, conversion: Conversion, line: int | None = None) -> None:
    """Test options promptci has no place for (transform, prefix, provider, threshold) are named."""
    for key in ("options", "threshold", "provider", "providerOutput"):
        if key not in test:
            continue
        keys = ", ".join(map(str, test[key])) if isinstance(test[key], dict) else key
        conversion.skipped.append(Skipped(where, line or line_of(test, key), key,
                                          f"test {key} ({keys}) is not converted; set it on the case by hand"))


def _add_case(test: Mapping[str, Any], default_test: Mapping[str, Any], source: str, line: int, is_csv: bool,
              base: Path, conversion: Conversion) -> None:
    row_line = None if hasattr(test, "key_lines") else line  # CSV and JSONL rows: one line for everything
    _read_options(test, source, conversion, row_line)
    default_vars = default_test.get("vars") or {}
    variables = {**_plain_vars(default_vars, base, conversion.config, conversion),
                 **_plain_vars(test.get("vars") or {}, base, source, conversion)}
    names = [name for name, value in variables.items() if isinstance(value, list)]
    combinations = list(itertools.product(*(variables[n] for n in names))) if names else [()]
    for number, combination in enumerate(combinations, start=1):
        case_vars = {**variables, **dict(zip(names, combination, strict=True))}
        description = test.get("description")
        case = ImportedCase(
            id=_case_id(description, len(conversion.cases) + 1, number if len(combinations) > 1 else 0),
            vars=case_vars, description=str(description) if description else None,
            metadata=dict(test.get("metadata") or {}), shared=[], own=[], source=source, is_csv_row=is_csv)
        _add_assertions(case, default_test.get("assert"), conversion.config, None, case.shared, conversion)
        _add_assertions(case, test.get("assert"), source, row_line, case.own, conversion)
        conversion.cases.append(case)


def _add_assertions(case: ImportedCase, assertions: Any, where: str, fixed_line: int | None,
                    into: list[dict[str, Any]], conversion: Conversion) -> None:
    for index, assertion in enumerate(assertions or ()):
        line = fixed_line or item_line(assertions, index)
        if not isinstance(assertion, dict):
            conversion.outcomes[(where, line, "?")] = f"an assertion must be a mapping, got {type_name(assertion)}"
            continue
        kind = str(assertion.get("type", "?"))
        result = map_assertion(assertion, case.vars)
        if isinstance(result, Mapped):
            result = _place(case, result, kind)
        key = (where, line, kind)
        if isinstance(result, Unmapped):
            conversion.outcomes[key] = result.reason
            case.todos.append(f"TODO promptfoo {kind} ({where}:{line}) not converted: {result.reason}")
            case.todos.extend(f"    {source_line}" for text in result.source for source_line in text.splitlines())
            continue
        conversion.outcomes.setdefault(key, None)
        into.append(result.spec)


def _place(case: ImportedCase, mapped: Mapped, kind: str) -> Mapped | Unmapped:
    """Give the case the comparator's expected value, or use the check's form that needs none."""
    if mapped.expected is NO_EXPECTED or case.expected in (NO_EXPECTED, mapped.expected):
        if mapped.expected is not NO_EXPECTED:
            case.expected = mapped.expected
        return mapped
    if mapped.fallback is not None:
        return Mapped(mapped.fallback)
    return Unmapped(kind, "a case holds one `expected`, and another assertion of this case already set it",
                    [f"{kind}: {mapped.expected}"])


def _plain_vars(variables: Any, base: Path, where: str, conversion: Conversion) -> dict[str, Any]:
    if not isinstance(variables, dict):
        raise ConfigError(f"`vars` must be a mapping, got {type_name(variables)}",
                          Location(where, getattr(variables, "line", 0)))
    plain = {}
    for name, value in variables.items():
        if isinstance(value, str) and value.startswith("file://"):
            value = _var_file(value, base, Location(where, line_of(variables, name)), conversion)
        plain[str(name)] = value
    return plain


def _var_file(reference: str, base: Path, location: Location, conversion: Conversion) -> Any:
    (path,) = _expand(reference, base, location)[:1]
    suffix = path.suffix.lower()
    if suffix in (".js", ".py", ".mjs", ".ts"):
        conversion.skipped.append(Skipped(location.file or "", location.line or 0, "var",
                                          f"a var computed by {reference} is not converted; the reference is kept"))
        return reference
    text = read_text(path, base)
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc.msg}", Location(relative_path(path, base), exc.lineno)) from None
    if suffix in (".yaml", ".yml"):
        return load_yaml(path, base)
    return text


def _case_id(description: Any, position: int, variant: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", str(description or "").lower()).strip("-")[:48].strip("-")
    name = slug or f"case-{position}"
    return f"{name}-{variant}" if variant else name
