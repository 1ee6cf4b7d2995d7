"""`--changed-since REV`: which cases a change since a revision can affect, and why each prompt was picked.

A case is affected when its prompt file or any template it includes, extends or imports (transitively)
changed; when its own YAML subtree or its golden file's shared keys changed; when a file its comparators or
transforms depend on changed (each declares them in a `depends_on` attribute: a schema, an llm_judge template
and what that includes, "*.py" for user Python code; a plugin that declares nothing is read from the files its
options name); when Python code behind a `python:` provider changed; or when promptci.yaml changed in a key
that changes answers or scores (then every case is). A changed folder (a git submodule's commit or its edited
files show as its path) affects every file under it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from promptci import gitrev
from promptci.errors import ConfigError
from promptci.loading.yamlfile import parse_yaml, to_plain
from promptci.types import Case, ComparatorSpec, Prompt, Suite, canonical_json

CONFIG_FILE = "promptci.yaml"
# Keys of promptci.yaml that change neither a request nor a score: a change there selects nothing.
CONFIG_KEYS_WITHOUT_EFFECT = frozenset({"concurrency", "timeout_s", "retries", "budgets", "gate", "pricing"})
GOLDEN_FILE_KEYS = ("prompt", "comparators", "transform", "cases_from")  # shared by every case of the file
GOLDEN_SUFFIXES = (".yaml", ".yml")

ReadOld = Callable[[str], "str | None"]  # project-relative path -> its text at the revision, None if absent
ReadNow = Callable[[str], "str | None"]


@dataclass(frozen=True)
class ChangeSelection:
    """The affected cases (by Case.key) and, per prompt, why it was selected."""

    case_keys: frozenset[str]
    reasons: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    everything: str | None = None  # why every case is affected, when one change touches all

    def selects(self, case: Case) -> bool:
        return self.everything is not None or case.key in self.case_keys

    def explain(self, since: str | None) -> list[str]:
        """Why each prompt was selected (for -v), one line a prompt; one line when every case is."""
        if self.everything:
            return [f"changed since {since}: every case, as {self.everything}"]
        return [f"changed since {since}: {prompt}: {'; '.join(reasons)}"
                for prompt, reasons in sorted(self.reasons.items())]

    def apply(self, suite: Suite) -> Suite:
        cases = tuple(c for c in suite.cases if self.selects(c))
        used = {c.prompt for c in cases}
        return Suite(prompts={n: p for n, p in suite.prompts.items() if n in used}, cases=cases,
                     problems=suite.problems)


def changed_since(root: Path, since: str, suite: Suite, models: Sequence[str], until: str | None = None,
                  source: Path | None = None) -> ChangeSelection:
    """The cases of suite (loaded from root's working tree) that changes since revision `since` affect.
    `until` compares with that revision instead of the working tree; `source` is where its files were
    materialised (they are read from there)."""
    revision = gitrev.resolve(root, since)
    changed = gitrev.changed_files(root, since, until)
    now = source or root
    return select_changed(suite, changed, lambda path: gitrev.read_at(root, revision, path),
                          lambda path: _read_now(now, path), models, linked_files(now, suite))


def linked_files(root: Path, suite: Suite) -> dict[str, str]:
    """Case files that are links (or lie under a linked folder) -> the project file they reach."""
    resolved_root = root.resolve()
    found: dict[str, str] = {}
    for file in {c.location.file for c in suite.cases}:
        target = (root / file).resolve()
        if target != resolved_root / file and target.is_relative_to(resolved_root):
            found[file] = target.relative_to(resolved_root).as_posix()
    return found


def _read_now(root: Path, path: str) -> str | None:
    try:
        return (root / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def select_changed(suite: Suite, changed: Iterable[str], read_old: ReadOld, read_now: ReadNow,
                   models: Sequence[str], links: Mapping[str, str] | None = None) -> ChangeSelection:
    """Pure core of changed_since: `changed` holds project-relative paths that differ; `links` maps a case file
    that is a link to the file it reaches (a change there changes the link's cases too)."""
    changed = frozenset(changed)
    changed |= {file for file, target in (links or {}).items() if changed_behind(changed, target)}
    if CONFIG_FILE in changed:
        config_keys = changed_config_keys(read_old(CONFIG_FILE), read_now(CONFIG_FILE))
        if config_keys:
            return ChangeSelection(frozenset(), everything=f"{CONFIG_FILE} changed: {', '.join(sorted(config_keys))}")
    python_changed = sorted(p for p in changed if p.endswith(".py"))
    if python_changed and any(m.startswith("python:") for m in models):
        return ChangeSelection(frozenset(), everything=f"Python code behind a python: provider changed: "
                                                       f"{', '.join(python_changed)}")
    reasons: dict[str, list[str]] = {}
    keys: set[str] = set()

    def pick(case: Case, reason: str) -> None:
        keys.add(case.key)
        if reason not in reasons.setdefault(case.prompt, []):
            reasons[case.prompt].append(reason)

    prompt_reasons = {name: _prompt_reasons(p, changed, read_now, python_changed)
                      for name, p in suite.prompts.items()}
    golden_changes = _case_changes(suite, changed, read_old, read_now)
    for case in suite.cases:
        for reason in prompt_reasons.get(case.prompt, ()):
            pick(case, reason)
        change = golden_changes.get(case.location.file)
        if change is not None and (change[0] is ALL or case.id in change[0]):
            pick(case, f"{case.location.file}: case {case.id!r} changed" if change[0] is not ALL else change[1])
        for reason in _comparator_reasons(case.comparators, case.prompt, changed, suite.prompts, read_now):
            pick(case, f"case {case.id!r}: {reason}")
    return ChangeSelection(frozenset(keys), {p: tuple(r) for p, r in reasons.items()})


def changed_config_keys(old: str | None, new: str | None) -> set[str]:
    """Top-level keys of promptci.yaml whose value changed, leaving out those without effect on results."""
    before, after = _top_level(old), _top_level(new)
    if before is None or after is None:
        return {"(the whole file)"}
    differing = {k for k in before.keys() | after.keys()
                 if canonical_json(before.get(k)) != canonical_json(after.get(k))}
    return differing - CONFIG_KEYS_WITHOUT_EFFECT


def _top_level(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return {}
    try:
        data = to_plain(parse_yaml(text, CONFIG_FILE))
    except ConfigError:
        return None
    return data if isinstance(data, dict) else ({} if data is None else None)


def _prompt_reasons(prompt: Prompt, changed: frozenset[str], read_now: ReadNow,
                    python_changed: Sequence[str]) -> list[str]:
    found: list[str] = []
    if changed_behind(changed, prompt.path):
        found.append(f"{prompt.path} changed")
    for template, is_dynamic in referenced_templates(prompt, read_now):
        if is_dynamic:
            if any(p.startswith("prompts/") and p != prompt.path for p in changed):
                found.append(f"{prompt.path} includes a template chosen at render time, and prompts/ changed")
        elif changed_behind(changed, f"prompts/{template}"):
            found.append(f"{prompt.path} uses prompts/{template}, which changed")
    if prompt.model and prompt.model.startswith("python:") and python_changed:
        found.append(f"Python code behind {prompt.model} changed")
    return found


def changed_behind(changed: frozenset[str], dependency: str) -> list[str]:
    """The changed paths a dependency is affected by: itself, a folder holding it (a submodule shows as its
    folder), or for a pattern such as "*.py" every path it matches."""
    if any(c in dependency for c in "*?["):
        return sorted(p for p in changed if fnmatchcase(p, dependency))
    return sorted(p for p in changed if p == dependency or dependency.startswith(p.rstrip("/") + "/"))


def referenced_templates(prompt: Prompt, read_now: ReadNow) -> list[tuple[str, bool]]:
    """Templates a prompt includes, extends or imports, transitively, as (name under prompts/, False);
    a name computed at render time gives ("", True)."""
    return template_closure([m.content for m in prompt.messages], read_now)


def template_closure(sources: list[str], read_now: ReadNow) -> list[tuple[str, bool]]:
    """What the template sources include, extend or import, transitively (see referenced_templates)."""
    from jinja2 import Environment, meta
    from jinja2 import TemplateError as JinjaTemplateError

    env = Environment()
    found: list[tuple[str, bool]] = []
    seen: set[str] = set()
    pending = list(sources)
    while pending:
        try:
            tree = env.parse(pending.pop())
        except JinjaTemplateError:
            continue  # the run reports the syntax error; here it can only add nothing
        for name in meta.find_referenced_templates(tree):
            if name is None:
                found.append(("", True))
            elif name not in seen:
                seen.add(name)
                found.append((name, False))
                source = read_now(f"prompts/{name}")
                if source is not None:
                    pending.append(source)
    return found


class _All(frozenset):  # marker: every case of the file
    pass


ALL: frozenset[str] = _All()


def _case_changes(suite: Suite, changed: frozenset[str], read_old: ReadOld, read_now: ReadNow
                  ) -> dict[str, tuple[frozenset[str], str]]:
    """Per file that cases are read from: the ids of changed cases (or ALL), and why when ALL.

    Cases read with `cases_from:` are located in their data file: a change to that file selects all of
    its rows, and a change to the golden file's shared keys selects them too.
    """
    found: dict[str, tuple[frozenset[str], str]] = {}
    for path in sorted(changed):
        if not (path.startswith("goldens/") and path.endswith(GOLDEN_SUFFIXES)):
            continue
        ids = _changed_case_ids(path, read_old(path), read_now(path))
        found[path] = (ids, f"{path} is new or changed in keys shared by its cases")
        data_file = (_golden_doc(path, read_now(path)) or {}).get("cases_from")
        if ids is ALL and isinstance(data_file, str):
            found[data_file.strip().removeprefix("./")] = (ALL, f"{path} changed in keys shared by its cases")
    case_files = {c.location.file for c in suite.cases}
    for path in sorted((changed & case_files) - found.keys()):
        found[path] = (ALL, f"{path} changed (cases_from rows are compared as a whole file)")
    return found


def _changed_case_ids(path: str, old: str | None, new: str | None) -> frozenset[str]:
    """Ids of cases whose YAML subtree differs (ALL when the file's shared keys differ or it was new)."""
    before, after = _golden_doc(path, old), _golden_doc(path, new)
    if before is None or after is None:
        return ALL
    if any(canonical_json(before.get(k)) != canonical_json(after.get(k)) for k in GOLDEN_FILE_KEYS):
        return ALL
    old_cases, new_cases = _cases_by_id(before), _cases_by_id(after)
    return frozenset(i for i, item in new_cases.items()
                     if i not in old_cases or canonical_json(old_cases[i]) != canonical_json(item))


def _golden_doc(path: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        data = to_plain(parse_yaml(text, path))
    except ConfigError:
        return None
    return data if isinstance(data, dict) else None


def _cases_by_id(doc: Mapping[str, Any]) -> dict[str, Any]:
    cases = doc.get("cases")
    if not isinstance(cases, list):
        return {}
    return {str(item.get("id", index) if isinstance(item, dict) else index): item
            for index, item in enumerate(cases)}


def _comparator_reasons(specs: Sequence[ComparatorSpec], prompt: str, changed: frozenset[str],
                        prompts: Mapping[str, Prompt], read_now: ReadNow) -> list[str]:
    found: list[str] = []
    for spec in specs:
        told: set[str] = set()  # changed paths already named for this comparator
        # a judge gates or only reports by its calibration file (comparators.judge.JudgeSetup)
        calibration_of = getattr(getattr(spec.instance, "judge", None), "calibration_file", None)
        calibration = [calibration_of(prompt)] if callable(calibration_of) else []
        for dependency in [*dependencies(spec, prompts, read_now), *calibration]:
            hits = [p for p in changed_behind(changed, dependency) if p not in told]
            told.update(hits)
            if hits == [dependency]:
                found.append(f"{spec.type} comparator's {dependency} changed")
            elif hits:
                found.append(f"{spec.type} comparator depends on {dependency}: {', '.join(hits)} changed")
    return found


def dependencies(spec: ComparatorSpec, prompts: Mapping[str, Prompt], read_now: ReadNow) -> list[str]:
    """The files (and patterns) a comparator and its transforms declare, with what a declared template
    includes; for a plugin that declares nothing, the files its options name."""
    from promptci.registry import BUILTIN_COMPARATORS

    declared = list(getattr(spec.instance, "depends_on", ()))
    if spec.type not in BUILTIN_COMPARATORS and not declared:
        declared = sorted(_named_files(spec.options))
    by_path = {p.path: p for p in prompts.values()}
    for path in [d for d in declared if d.startswith("prompts/")]:
        prompt = by_path.get(path)
        source = [m.content for m in prompt.messages] if prompt is not None else [read_now(path) or ""]
        declared.extend(f"prompts/{name}" for name, is_dynamic in template_closure(source, read_now)
                        if not is_dynamic and f"prompts/{name}" not in declared)
    return declared


def _named_files(options: Any) -> set[str]:
    """Every string in a comparator's options that could name a project file ("schemas/x.json",
    "checks.py:fn" -> "checks.py")."""
    if isinstance(options, Mapping):
        return set().union(*(_named_files(v) for v in options.values())) if options else set()
    if isinstance(options, (list, tuple)):
        return set().union(*(_named_files(v) for v in options)) if options else set()
    if isinstance(options, str) and "\n" not in options and len(options) < 300:
        path = options.split(":", 1)[0] if ".py:" in options else options
        return {path.removeprefix("./")}
    return set()
