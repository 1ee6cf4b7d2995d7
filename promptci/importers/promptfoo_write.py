"""Write a Conversion as a promptci project: promptci.yaml, prompts/, goldens/ and data/ (CSV cases)."""

from __future__ import annotations

import csv
import io
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from promptci.errors import ConfigError
from promptci.importers import jsruntime
from promptci.importers.jschecks import CHECKS_FILE, RUNTIME_MODULE
from promptci.importers.promptfoo import Conversion, ImportedCase
from promptci.importers.promptfoo_asserts import NO_EXPECTED
from promptci.importers.promptfoo_setup import ImportedPrompt
from promptci.loading.yamlfile import to_plain

CASE_COLUMNS = ("id", "expected", "tags", "description")
# promptfoo passes a test without assertions when the model answers; promptci needs a comparator to say so.
NO_ASSERTIONS = {"type": "length", "min_chars": 0}
# promptfoo's llm-rubric fails a test; promptci's uncalibrated judges only report unless the config allows them
JUDGES_GATE_AS_IN_PROMPTFOO = {"allow_uncalibrated": True}
JUDGES_NOTE = ("llm-rubric judges gate as they did in promptfoo: promptci.yaml sets judges.allow_uncalibrated; "
               "calibrate them (promptci calibrate PROMPT) and remove that setting so only calibrated judges gate")


def render_files(conversion: Conversion) -> dict[str, str]:
    """Relative path -> text of every file the conversion writes."""
    meta: dict[str, Any] = {"params": conversion.params} if conversion.params else {}
    files = {f"prompts/{p.name}{'.yaml' if p.messages else '.txt'}": _prompt_file(p, meta)
             for p in conversion.prompts}
    models: list[Any] = [{"name": model, "params": conversion.model_params[model]}
                         if model in conversion.model_params else model for model in conversion.models or ["echo"]]
    judges = {"judges": JUDGES_GATE_AS_IN_PROMPTFOO} if has_judge(conversion) else {}
    files["promptci.yaml"] = _dump({"models": models, **conversion.settings, **judges, **(
        {"providers": conversion.providers} if conversion.providers else {})})
    if conversion.checks.functions:
        files[CHECKS_FILE] = conversion.checks.render()
        files[f"{RUNTIME_MODULE}.py"] = Path(jsruntime.__file__).read_text(encoding="utf-8")
    prompt_names = [p.name for p in conversion.prompts]
    stem = prompt_names[0] if len(prompt_names) == 1 else "promptfoo"
    inline: list[ImportedCase] = []
    for source in dict.fromkeys(case.source for case in conversion.cases):
        group = [case for case in conversion.cases if case.source == source]
        csv_text = _clean_csv(group) if group[0].is_csv_row else None
        if csv_text is None:
            inline.extend(group)
            continue
        data_name = f"data/{PurePosixPath(source).stem}.csv"
        files[data_name] = csv_text
        files[f"goldens/{stem}-{PurePosixPath(source).stem}.yaml"] = _dump(
            {"prompt": _prompt_key(prompt_names), "comparators": group[0].shared + group[0].own,
             "cases_from": data_name})
    if inline or not conversion.cases:
        files[f"goldens/{stem}.yaml"] = _golden(prompt_names, inline, conversion.description)
    return files


def write_files(files: dict[str, str], out: Path, force: bool, converted_in_place: frozenset[Path] = frozenset()
                ) -> list[Path]:
    """Write the files under `out`; refuse (ConfigError) to change an existing one unless `force`, or
    unless it is a promptfoo prompt file this conversion turns into its promptci form (`converted_in_place`).

    A file that already holds exactly this text is left alone, so converting again is harmless."""
    targets = {out / name: text for name, text in files.items()}
    changed = {path: text for path, text in targets.items() if not _holds(path, text)}
    existing = [str(path) for path in changed if path.exists() and path.resolve() not in converted_in_place]
    if existing and not force:
        raise ConfigError(f"refusing to overwrite {', '.join(existing)}: pass --force, or --out a new folder")
    for path, text in changed.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(targets)


def _holds(path: Path, text: str) -> bool:
    try:
        return path.is_file() and path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def _prompt_file(prompt: ImportedPrompt, meta: dict[str, Any]) -> str:
    if prompt.messages is not None:
        return _dump({"messages": prompt.messages, **meta})
    text = prompt.text or ""
    if meta or text.startswith("---"):
        return f"---\n{_dump(meta) if meta else ''}---\n{text}"
    return text


def has_judge(conversion: Conversion) -> bool:
    """Whether any converted comparator (nested ones included) is an llm_judge."""
    return any(_holds_judge(spec) for case in conversion.cases for spec in (*case.shared, *case.own))


def _holds_judge(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("type") == "llm_judge" or any(_holds_judge(item) for item in value.values())
    return isinstance(value, list) and any(_holds_judge(item) for item in value)


def _prompt_key(prompts: list[str]) -> str | list[str]:
    return prompts[0] if len(prompts) == 1 else prompts


def _golden(prompts: list[str], cases: list[ImportedCase], description: str | None) -> str:
    head: dict[str, Any] = {"prompt": _prompt_key(prompts), **({"description": description} if description else {})}
    shared = _shared(cases)
    if shared:
        head["comparators"] = shared
    lines = [_dump(head).rstrip("\n"), "cases:" if cases else "cases: []"]
    seen: set[str] = set()
    for case in cases:
        lines += [f"  # {todo}" for todo in case.todos]
        body = _dump([_case_mapping(case, _unique(case.id, seen), shared is not None)])
        lines.append("\n".join("  " + line for line in body.rstrip("\n").splitlines()))
    return "\n".join(lines) + "\n"


def _shared(cases: list[ImportedCase]) -> list[dict[str, Any]] | None:
    """The defaultTest comparators when every case has the same ones (written once, on the file)."""
    if not cases or not cases[0].shared or any(case.shared != cases[0].shared for case in cases):
        return None
    return cases[0].shared


def _case_mapping(case: ImportedCase, case_id: str, has_file_comparators: bool) -> dict[str, Any]:
    mapping: dict[str, Any] = {"id": case_id}
    if case.description:
        mapping["description"] = case.description
    mapping["input"] = case.vars
    if case.expected is not NO_EXPECTED:
        mapping["expected"] = case.expected
    if has_file_comparators:
        if case.own:
            mapping["comparators+"] = case.own
    else:
        mapping["comparators"] = case.shared + case.own or [NO_ASSERTIONS]
    if case.metadata:
        mapping["metadata"] = case.metadata
    return mapping


def _clean_csv(cases: list[ImportedCase]) -> str | None:
    """The cases as a `cases_from` CSV when they map cleanly (same checks, string vars, one expected
    column or none, nothing left as a TODO); None to write them inline instead."""
    first = cases[0]
    columns = list(first.vars)
    has_expected = first.expected is not NO_EXPECTED
    for case in cases:
        if (case.todos or case.metadata or case.shared + case.own != first.shared + first.own
                or list(case.vars) != columns or (case.expected is not NO_EXPECTED) != has_expected
                or (not isinstance(case.expected, str) and has_expected)
                or any(not isinstance(v, str) for v in case.vars.values())):
            return None
    if not first.shared + first.own or any(c in CASE_COLUMNS or c.startswith("input.") for c in columns):
        return None
    has_description = any(case.description for case in cases)
    header = ["id", *(["description"] if has_description else []), *columns, *(["expected"] if has_expected else [])]
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    seen: set[str] = set()
    for case in cases:
        writer.writerow([_unique(case.id, seen), *([case.description or ""] if has_description else []),
                         *case.vars.values(), *([str(case.expected)] if has_expected else [])])
    return stream.getvalue()


def _unique(case_id: str, seen: set[str]) -> str:
    candidate, number = case_id, 1
    while candidate in seen:
        number += 1
        candidate = f"{case_id}-{number}"
    seen.add(candidate)
    return candidate


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, so prompts and tickets read as they were written."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text.rstrip("\n") and not any(line != line.rstrip() for line in text.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(value: Any) -> str:
    return yaml.dump(to_plain(value), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=110)
