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
from promptci.importers.jschecks import CheckFile
from promptci.importers.jstranslate import Untranslatable
from promptci.importers.promptfoo_asserts import (
    NO_EXPECTED,
    Grading,
    Mapped,
    Unmapped,
    add_transform,
    map_assertion,
    parse_csv_expected,
)
from promptci.importers.promptfoo_setup import ImportedPrompt, model_name, read_prompts, read_providers
from promptci.loading.yamlfile import item_line, line_of, load_yaml, read_text, relative_path, resolve_inside, type_name
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
    had_assertions: bool = False  # promptfoo gave it assertions (converted or not)
    had_own_assertions: bool = False  # ... of its own, besides defaultTest's


@dataclass
class Conversion:
    """Everything read from a promptfoo config, ready to be written."""

    config: str
    description: str | None = None
    prompts: list[ImportedPrompt] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # promptci.yaml keys: concurrency, gate
    checks: CheckFile = field(default_factory=CheckFile)
    cases: list[ImportedCase] = field(default_factory=list)
    # one entry per assertion: (file, line, position in its list, type) -> None when converted, else why not
    outcomes: dict[tuple[str, int, int, str], str | None] = field(default_factory=dict)
    dropped_cases: list[Skipped] = field(default_factory=list)  # cases none of whose assertions converted
    skipped: list[Skipped] = field(default_factory=list)  # not assertions: providers, templates, options
    data_files: dict[str, Path] = field(default_factory=dict)  # CSV source name -> path

    @property
    def converted(self) -> int:
        return sum(1 for reason in self.outcomes.values() if reason is None)

    @property
    def not_converted(self) -> list[Skipped]:
        failed = [Skipped(file, line, kind, reason) for (file, line, _index, kind), reason in self.outcomes.items()
                  if reason is not None]
        return sorted(failed + self.skipped + self.dropped_cases, key=lambda s: (s.file, s.line, s.type))

    def rename_prompt(self, old: str, new: str) -> None:
        self.prompts = [ImportedPrompt(new, p.text, p.messages, p.source) if p.name == old else p
                        for p in self.prompts]

    def counts_by_type(self) -> dict[str, tuple[int, int]]:
        counts: dict[str, tuple[int, int]] = {}
        for (_file, _line, _index, kind), reason in self.outcomes.items():
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
    if not conversion.prompts:
        raise ConfigError("no prompt could be converted (" + "; ".join(p[3] for p in prompt_problems) + ")",
                          Location(where, line_of(data, "prompts")))
    setup = read_providers(data.get("providers"), data, where)
    conversion.models, conversion.providers, conversion.params = setup.models, setup.providers, setup.params
    conversion.model_params = setup.model_params
    conversion.skipped.extend(Skipped(*problem) for problem in setup.problems)
    _read_run_settings(data, where, conversion)
    if "env" in data:
        conversion.skipped.append(Skipped(where, line_of(data, "env"), "env", "`env:` is not converted: promptci "
                                          "reads keys from your shell's environment (api_key_env)"))
    default_test = data.get("defaultTest") or {}
    if not isinstance(default_test, dict):
        raise ConfigError(f"`defaultTest` must be a mapping, got {type_name(default_test)}",
                          Location(where, line_of(data, "defaultTest")))
    grading = _read_options(default_test, where, conversion, Grading(conversion.checks, base, hint="default"))
    for test, source, line, is_csv in _tests(data.get("tests"), data, base, where, conversion):
        _add_case(test, default_test, source, line, is_csv, base, conversion, grading, data)
    return conversion


def _read_run_settings(data: Mapping[str, Any], where: str, conversion: Conversion) -> None:
    """evaluateOptions.maxConcurrency -> concurrency; passRateThreshold -> gate.min_pass_rate."""
    options = data.get("evaluateOptions") or {}
    if isinstance(options, dict) and isinstance(options.get("maxConcurrency"), int) and options["maxConcurrency"] > 0:
        conversion.settings["concurrency"] = options["maxConcurrency"]
    for holder in (data, data.get("commandLineOptions") or {}):
        rate = holder.get("passRateThreshold") if isinstance(holder, dict) else None
        if isinstance(rate, (int, float)) and not isinstance(rate, bool):
            share = rate / 100 if rate > 1 else rate  # promptfoo states it in percent
            conversion.settings["gate"] = {"min_pass_rate": share}


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
    fixed = Path(pattern.split("*")[0].split("?")[0].split("[")[0]).parent if "*" in pattern or "?" in pattern \
        or "[" in pattern else Path(pattern)
    try:
        resolve_inside(base, fixed, location)  # before globbing: `../../**` must not walk the disk
    except ConfigError:
        raise ConfigError(f"{reference!r} points outside the config's folder; the tests must be inside it",
                          location) from None
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


GRADING_OPTIONS = ("transform", "provider")


def _read_options(test: Mapping[str, Any], where: str, conversion: Conversion, grading: Grading,
                  line: int | None = None) -> Grading:
    """The test's `options.transform` and grading `options.provider` on top of `grading`; the options
    promptci has no place for (prefix, suffix, threshold, ...) are named."""
    options = test.get("options")
    result = grading
    if isinstance(options, dict):
        at = line or line_of(test, "options")
        provider = options.get("provider")
        judge = _provider_model(provider, "text")
        embedding = _provider_model(provider, "embedding")
        if provider is not None and judge is None and embedding is None:
            conversion.skipped.append(Skipped(where, at, "options", f"grading provider {provider!r} has no "
                                              "promptci model; the judge keeps its default"))
        transform = grading.transform
        if "transform" in options:
            try:
                transform = add_transform(grading, options["transform"])
            except Untranslatable as exc:
                conversion.skipped.append(Skipped(where, at, "options", f"options.transform does not translate: "
                                                  f"{exc.reason}; the checks see the untransformed output"))
        result = Grading(grading.checks, grading.base, judge or grading.judge_model,
                         embedding or grading.embedding_model, grading.hint, transform)
        rest = [str(key) for key in options if key not in GRADING_OPTIONS]
        if rest:
            conversion.skipped.append(Skipped(where, at, "options", f"test options {', '.join(rest)} are not "
                                              "converted; set them on the case by hand"))
    elif options is not None:
        conversion.skipped.append(Skipped(where, line or line_of(test, "options"), "options",
                                          "test `options` must be a mapping; not converted"))
    for key in ("threshold", "provider", "providerOutput"):
        if key in test:
            conversion.skipped.append(Skipped(where, line or line_of(test, key), key,
                                              f"test {key} is not converted; set it on the case by hand"))
    return result


def _provider_model(provider: Any, purpose: str) -> str | None:
    """The model of a grading provider for `purpose` (text: the judge; embedding: only when named as such)."""
    if purpose == "embedding" and not (isinstance(provider, dict) and "embedding" in provider):
        return None
    if isinstance(provider, dict):
        chosen = provider.get(purpose, provider if "id" in provider else None)
        provider = chosen.get("id") if isinstance(chosen, dict) else chosen
    return model_name(provider) if isinstance(provider, str) else None


def _add_case(test: Mapping[str, Any], default_test: Mapping[str, Any], source: str, line: int, is_csv: bool,
              base: Path, conversion: Conversion, grading: Grading, config: Mapping[str, Any]) -> None:
    row_line = None if hasattr(test, "key_lines") else line  # CSV and JSONL rows: one line for everything
    grading = _read_options(test, source, conversion, grading, row_line)
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
        case_grading = Grading(grading.checks, grading.base, grading.judge_model, grading.embedding_model,
                               case.id, grading.transform)
        shared_grading = Grading(grading.checks, grading.base, grading.judge_model, grading.embedding_model,
                                 "default", grading.transform)
        _add_assertions(case, default_test.get("assert"), conversion.config, None, case.shared, conversion,
                        shared_grading, config)
        _add_assertions(case, test.get("assert"), source, row_line, case.own, conversion, case_grading, config)
        if (case.had_own_assertions and not case.own) or (case.had_assertions and not case.shared + case.own):
            conversion.dropped_cases.append(Skipped(source, line, "case", f"case {case.id!r}: none of its "
                                                    "assertions converted, so it is not imported (it would pass "
                                                    "without checking anything)"))
            continue
        conversion.cases.append(case)


def _resolve_ref(assertion: Any, config: Mapping[str, Any]) -> Any:
    """An assertion `{$ref: '#/path/in/config'}` -> the mapping it points at (str: why it cannot be)."""
    if not isinstance(assertion, dict) or "$ref" not in assertion:
        return assertion
    reference = assertion["$ref"]
    if not isinstance(reference, str) or not reference.startswith("#/"):
        return f"$ref {reference!r} is not a reference inside the config (#/...)"
    target: Any = config
    for part in reference[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and key in target:
            target = target[key]
        elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
            target = target[int(key)]
        else:
            return f"$ref {reference!r} points at nothing in the config"
    if not isinstance(target, dict):
        return f"$ref {reference!r} is not an assertion mapping"
    return {**target, **{k: v for k, v in assertion.items() if k != "$ref"}}


def _add_assertions(case: ImportedCase, assertions: Any, where: str, fixed_line: int | None,
                    into: list[dict[str, Any]], conversion: Conversion, grading: Grading,
                    config: Mapping[str, Any]) -> None:
    for index, raw in enumerate(assertions or ()):
        case.had_assertions = True
        case.had_own_assertions = case.had_own_assertions or into is case.own
        line = fixed_line or item_line(assertions, index)
        assertion = _resolve_ref(raw, config)
        if isinstance(assertion, str):
            conversion.outcomes[(where, line, index, "$ref")] = assertion
            case.todos.append(f"TODO promptfoo $ref ({where}:{line}) not converted: {assertion}")
            continue
        if not isinstance(assertion, dict):
            conversion.outcomes[(where, line, index, "?")] = (f"an assertion must be a mapping, got "
                                                             f"{type_name(assertion)}")
            continue
        kind = str(assertion.get("type", "?"))
        key = (where, line, index, kind)
        result = map_assertion(assertion, case.vars, grading)
        if isinstance(result, Mapped):
            result = _place(case, result, kind)
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
