"""`promptci accept`: a stored run's outputs written into `expected` of the selected failing cases.

The golden file is edited in place by splicing: ruamel.yaml's composer gives each value's exact span and
ruamel renders the new value, so every byte outside the changed values (comments, key order, quoting,
blank lines, indentation) stays as it was.
"""

from __future__ import annotations

import difflib
import io
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptci.comparators._common import reads_expected
from promptci.comparators.structured import JSON_OUTPUT_SCORE, JSONParseError, parse_json
from promptci.errors import ConfigError, PromptCIError
from promptci.loading.yamlfile import parse_yaml, resolve_inside, to_plain
from promptci.registry import build_comparator
from promptci.reporting.stats import plural
from promptci.selection import compile_expression
from promptci.types import Case, CaseResult, Location, Run, Score, canonical_json, content_hash

EXPECTED = "expected"


@dataclass(frozen=True)
class Accepted:
    file: str
    case_id: str
    value: Any  # what `expected` now holds


@dataclass(frozen=True)
class AcceptResult:
    accepted: tuple[Accepted, ...]
    diff: str  # unified diff of every golden file changed
    notes: tuple[str, ...] = ()  # cases that could not be written, and why
    left: int = 0  # failing cases selected but not accepted (the notes say why)


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


def accept_run(root: Path, run: Run, *, paths: Sequence[str] = (), keyword: str | None = None,
               json_prompts: Collection[str] = (), force: bool = False, write: bool = True,
               requests_now: Mapping[tuple[str, str, str], str] | None = None) -> AcceptResult:
    """Write the outputs of run's failing cases (under paths, matching -k keyword) into their goldens: only
    those whose failures accepting fixes (every failing comparator reads `expected`) and, given requests_now
    ((file, case id, model) -> the request the case renders today), only cases unchanged since the run."""
    check_acceptable(run, force)
    failing = select_failing(run, paths, keyword)
    fixable, notes = _fixable(failing, root)
    if requests_now is not None:
        fixable, stale_notes = _unchanged_since(fixable, requests_now, run.run_id)
        notes += stale_notes
    chosen = _choose_outputs(fixable, run.models, force)
    by_file: dict[str, list[tuple[str, Any]]] = {}
    for (file, case_id), result in chosen.items():
        by_file.setdefault(file, []).append((case_id, _expected_value(result, result.prompt in json_prompts)))
    accepted: list[Accepted] = []
    diffs: list[str] = []
    for file in sorted(by_file):
        if not file.endswith((".yaml", ".yml")):
            notes.append(f"{file}: {plural(len(by_file[file]), 'case')} read with `cases_from:` not changed: accept "
                         "writes golden YAML files only; update that file by hand")
            continue
        path = resolve_inside(root, file, Location(file))
        if path != root.resolve() / file:  # a linked golden: its file holds the cases of another prompt too
            notes.append(f"{file}: not changed, it is a link to {path.relative_to(root.resolve()).as_posix()}, whose "
                         "cases other prompts use too; replace the link with a copy to accept outputs into it")
            continue
        before = path.read_bytes().decode("utf-8")  # as bytes: line endings stay as they are
        after, done, missing = set_expected(before, file, by_file[file])
        notes += [f"{file}: no case {case_id!r} any more (edited since the run?); not changed" for case_id in missing]
        accepted += [Accepted(file, case_id, value) for case_id, value in done]
        if after != before:
            diffs.append("".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                                      fromfile=f"a/{file}", tofile=f"b/{file}")))
            if write:
                path.write_bytes(after.encode("utf-8"))
    left = len({(r.file, r.case_id) for r in failing} - set(chosen))
    return AcceptResult(tuple(accepted), "".join(diffs), tuple(notes), left)


def _fixable(results: Sequence[CaseResult], root: Path) -> tuple[list[CaseResult], list[str]]:
    """The results whose every failing score comes from a comparator that reads `expected`, and a note for
    each case left out, naming the comparators accepting cannot satisfy."""
    fixable: list[CaseResult] = []
    notes: dict[tuple[str, str], str] = {}
    judged: dict[str, str | None] = {}
    for result in results:
        blocking = [why for score in result.scores if not score.passed
                    for why in [_why_not_fixed(score, root, judged)] if why]
        reasons = [f"it fails {', '.join(blocking)}"] if blocking else []
        if result.error:  # a comparator raised beside the failures: it raises whatever `expected` holds
            reasons.append("a comparator of it raised (`promptci show` names it)")
        if not reasons:
            fixable.append(result)
        else:
            where = f"{result.file}:{result.line} {result.case_id}"
            notes.setdefault((result.file, result.case_id),
                             f"{where}: not accepted: {'; '.join(reasons)}; writing its output into `expected` "
                             "would not make it pass: fix the prompt or the check")
    return fixable, list(notes.values())


def _why_not_fixed(score: Score, root: Path, judged: dict[str, str | None]) -> str | None:
    """Why accepting cannot fix this failing score (None: its comparator reads `expected`)."""
    if score.comparator == JSON_OUTPUT_SCORE:
        return f"{JSON_OUTPUT_SCORE} (the prompt says `output: json` and the output is not JSON)"
    memo = f"{score.comparator}:{canonical_json(dict(score.options))}"
    if memo not in judged:
        try:
            comparator = build_comparator(score.comparator, score.options, root)
        except PromptCIError as exc:
            judged[memo] = f"{score.comparator} (cannot be loaded to check: {exc.message})"
        else:
            judged[memo] = None if reads_expected(comparator) else f"{score.comparator} (it does not read `expected`)"
    return judged[memo]


def _unchanged_since(results: Sequence[CaseResult], requests_now: Mapping[tuple[str, str, str], str],
                     run_id: str) -> tuple[list[CaseResult], list[str]]:
    """The results whose case still renders the request that produced them; a note for each case whose input,
    prompt or parameters changed since the run (its output answers a question the case no longer asks)."""
    kept: list[CaseResult] = []
    notes: dict[tuple[str, str], str] = {}
    unknown = 0
    for result in results:
        now = requests_now.get((result.file, result.case_id, result.model))
        if result.request_hash is None:
            unknown += 1
        elif now is not None and now != result.request_hash:
            notes.setdefault((result.file, result.case_id),
                             f"{result.file}:{result.line} {result.case_id}: not accepted: the case (its input, prompt "
                             f"or parameters) changed since run {run_id}, so its output there answers another "
                             "request; run the suite again, then accept")
            continue
        kept.append(result)
    lines = list(notes.values())
    if unknown:
        lines.append(f"run {run_id} does not record the requests it sent (stored by an older promptci): whether "
                     f"{plural(unknown, 'result')} still match their cases is not checked")
    return kept, lines


def check_acceptable(run: Run, force: bool) -> None:
    """A run with errors or cut short may hold partial outputs: refuse it unless forced."""
    if force:
        return
    errors = sum(r.status == "error" for r in run.results)
    if errors:
        raise PromptCIError(f"run {run.run_id} has {errors} result(s) with errors: its outputs are incomplete; "
                            "run the suite again, or accept anyway with --force")
    if run.interrupted:
        raise PromptCIError(f"run {run.run_id} was interrupted: run the suite again, or accept anyway with --force")


def select_failing(run: Run, paths: Sequence[str], keyword: str | None) -> list[CaseResult]:
    """The failed results under paths (golden files or folders, relative to the root) matching -k."""
    matcher = compile_expression(keyword) if keyword else None
    prefixes = [p.strip("/") for p in paths]
    chosen = []
    for r in run.results:
        if r.status != "failed":
            continue
        if prefixes and not any(r.file == p or r.file.startswith(p + "/") for p in prefixes):
            continue
        as_case = Case(id=r.case_id, prompt=r.prompt, location=Location(r.file, r.line), input={}, tags=r.tags)
        if matcher is None or matcher(as_case):
            chosen.append(r)
    return chosen


def _choose_outputs(results: Sequence[CaseResult], models: Sequence[str],
                    force: bool) -> dict[tuple[str, str], CaseResult]:
    """One result per case; refuses a case whose repeats or models gave different outputs unless forced
    (then the first model's first sample wins)."""
    order = {m: i for i, m in enumerate(models)}
    grouped: dict[tuple[str, str], list[CaseResult]] = {}
    for r in results:
        if r.output is not None:
            grouped.setdefault((r.file, r.case_id), []).append(r)
    chosen: dict[tuple[str, str], CaseResult] = {}
    for key, group in grouped.items():
        group.sort(key=lambda r: (order.get(r.model, len(order)), r.repeat))
        if len({r.output for r in group}) > 1 and not force:
            raise PromptCIError(f"{key[0]}: case {key[1]!r} has {len(group)} outputs that disagree (repeats or "
                                "models): accepting one would hide the rest; narrow with -k, or --force to take "
                                f"the first ({group[0].model}, sample {group[0].repeat})")
        chosen[key] = group[0]
    return chosen


def _expected_value(result: CaseResult, is_json_prompt: bool) -> Any:
    text = result.output or ""
    if is_json_prompt:
        try:
            parsed = parse_json(text)
        except JSONParseError:
            return text  # not JSON: kept as text so the failing comparator still explains why
        # a JSON string stays JSON text ('"hi"'): written as `hi`, `expected` would not read as JSON any more
        return text.strip() if isinstance(parsed, str) else parsed
    return text


def set_expected(text: str, file: str, values: Sequence[tuple[str, Any]]
                 ) -> tuple[str, list[tuple[str, Any]], list[str]]:
    """The golden text with `expected` of each (case id, value) replaced or added; returns the new text,
    the cases done and the ids not found. A file written with CRLF line endings keeps them."""
    if "\r\n" in text and text.count("\r\n") == text.count("\n"):
        lf_text, lf_done, lf_missing = set_expected(text.replace("\r\n", "\n"), file, values)
        return lf_text.replace("\n", "\r\n"), lf_done, lf_missing
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    root = YAML().compose(_for_composer(text))
    cases_node = None
    if isinstance(root, MappingNode):
        cases_node = next((v for k, v in root.value if k.value == "cases"), None)
    items = cases_node.value if isinstance(cases_node, SequenceNode) else []
    by_id = {_case_id(item, index): item for index, item in enumerate(items) if isinstance(item, MappingNode)}
    edits: list[_Edit] = []
    done: list[tuple[str, Any]] = []
    missing: list[str] = []
    for case_id, value in values:
        item = by_id.get(case_id)
        if item is None:
            missing.append(case_id)
            continue
        edits.append(_edit_for(text, item, value))
        done.append((case_id, value))
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[:edit.start] + edit.text + text[edit.end:]
    _check_written(text, file, done)
    return text, done, missing


TAB_BEFORE_COMMENT = re.compile(r"\t(?=[ \t]*#)")


def _for_composer(text: str) -> str:
    """The text ruamel can compose, of the same length (every span stays valid for `text`): YAML lets a tab
    separate a value from its comment, which ruamel's scanner refuses."""
    return TAB_BEFORE_COMMENT.sub(" ", text)


def _case_id(item: Any, index: int) -> str:
    for key, value in item.value:
        if key.value == "id" and hasattr(value, "value") and isinstance(value.value, str):
            return str(value.value)
    return str(index)


def _edit_for(text: str, item: Any, value: Any) -> _Edit:
    pair = next(((k, v) for k, v in item.value if k.value == EXPECTED), None)
    if item.flow_style:
        flow = _flow_json(value)
        if pair is None:
            close = item.end_mark.index - 1  # the mapping's "}"
            return _Edit(close, close, f", {EXPECTED}: {flow}")
        return _Edit(pair[1].start_mark.index, pair[1].end_mark.index, flow)
    if pair is None:
        last_key, last_value = item.value[-1]
        column = item.value[0][0].start_mark.column
        end = _content_end(text, last_key.end_mark.index, last_value.end_mark.index, column)
        return _Edit(end, end, "\n" + " " * column + EXPECTED + _render(value, None, column))
    key, old = pair
    if getattr(old, "flow_style", False):  # `expected: {a: 1}` stays a flow mapping, on its line
        return _Edit(old.start_mark.index, old.end_mark.index, _flow_json(value))
    column = key.start_mark.column
    end = _content_end(text, key.end_mark.index, old.end_mark.index, column)
    return _keep_trailing_comment(text, _Edit(key.end_mark.index, end, _render(value, getattr(old, "style", None),
                                                                                column)))


def _keep_trailing_comment(text: str, edit: _Edit) -> _Edit:
    """A comment after a one-line value moves up beside the header of a block value (`expected: |  # note`),
    where YAML keeps it a comment; left where it was, it would become part of the block's text."""
    line_end = text.find("\n", edit.end)
    line_end = len(text) if line_end < 0 else line_end
    rest = text[edit.end:line_end]
    if "\n" not in edit.text or not rest.strip():
        return edit
    first, others = edit.text.split("\n", 1)
    if not BLOCK_HEADER.fullmatch(first):  # a value that is not a block: the comment stays after its end
        return _Edit(edit.start, line_end, f"{edit.text}{rest}")
    return _Edit(edit.start, line_end, f"{first}{rest}\n{others}")


# `: |-`, `: >2`, or `:` alone (a block mapping or sequence follows): a comment may stand after it
BLOCK_HEADER = re.compile(r":(?: [|>][-+0-9]*)?")


def _content_end(text: str, start: int, end: int, column: int) -> int:
    """Where a value really ends: a block node's span runs on over the blank lines and the comments
    that follow it, which belong to what comes next."""
    lines = text[start:end].splitlines(keepends=True)
    while len(lines) > 1:
        last = lines[-1]
        stripped = last.strip()
        indent = len(last) - len(last.lstrip(" "))
        if stripped and not (stripped.startswith("#") and indent <= column):
            break
        lines.pop()
    kept = "".join(lines)
    return start + len(kept.rstrip("\n") if kept.endswith("\n") else kept)


def _render(value: Any, old_style: str | None, column: int) -> str:
    """`: VALUE` as ruamel writes it under a key at `column`, keeping the old value's quoting style."""
    from ruamel.yaml.scalarstring import (
        DoubleQuotedScalarString,
        FoldedScalarString,
        LiteralScalarString,
        SingleQuotedScalarString,
    )

    styled = value
    if isinstance(value, str):
        if "\n" in value or old_style in ("|", ">"):
            styled = FoldedScalarString(value) if old_style == ">" and "\n" not in value else LiteralScalarString(value)
        elif old_style == "'":
            styled = SingleQuotedScalarString(value)
        elif old_style == '"':
            styled = DoubleQuotedScalarString(value)
    rendered = _indent(_dump(styled), column)
    if not _reads_back(rendered, value, column):
        # ruamel writes YAML 1.2, where `yes` is a string, which a YAML 1.1 reader takes for a bool; a block
        # with kept trailing blank lines ends in a document marker; a key holding NEL breaks its line: one
        # quoted line (or one JSON line, every such character escaped) is always safe
        rendered = _dump(DoubleQuotedScalarString(value)) if isinstance(value, str) else f": {_flow_json(value)}"
    return rendered


# Characters a YAML reader takes for a line break (NEL, LS, PS) or refuses unescaped (DEL, C1 controls, BOM,
# non-characters, lone surrogates); JSON leaves them raw inside strings, YAML's double quotes read \uXXXX.
YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def _flow_json(value: Any) -> str:
    """value as one line of JSON, which is YAML flow style, with what YAML would misread escaped."""
    return YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))


def _indent(rendered: str, column: int) -> str:
    return "\n".join(line if not line or index == 0 else " " * column + line
                     for index, line in enumerate(rendered.split("\n")))


def _dump(value: Any) -> str:
    from ruamel.yaml import YAML

    writer = YAML()
    writer.default_flow_style = False
    writer.width = 2**31 - 1  # never fold a long line the user did not fold (a fold would split the value)
    writer.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    writer.dump({EXPECTED: value}, out)
    rendered = out.getvalue()[len(EXPECTED):]
    return rendered[:-1] if rendered.endswith("\n") else rendered


def _reads_back(rendered: str, value: Any, column: int) -> bool:
    """Whether `rendered`, under a key at `column` with a sibling key after it, reads back as value."""
    pad = " " * column
    probe = (f"x:\n{pad}{EXPECTED}{rendered}\n{pad}after: 1\n" if column
             else f"{EXPECTED}{rendered}\nafter: 1\n")
    try:
        data = to_plain(parse_yaml(probe, "<accept>"))
    except ConfigError:
        return False
    found = data["x"] if column else data
    return isinstance(found, dict) and found.get(EXPECTED) == value and found.get("after") == 1


def _check_written(text: str, file: str, done: Sequence[tuple[str, Any]]) -> None:
    """Read back what was written: a splice that changed the meaning is a bug, never written to disk."""
    data = to_plain(parse_yaml(text, file))
    items = data.get("cases", []) if isinstance(data, dict) else []
    cases = {str(c.get("id", i)): c for i, c in enumerate(items) if isinstance(c, dict)}
    for case_id, value in done:
        if cases.get(case_id, {}).get(EXPECTED) != value:
            raise RuntimeError(f"accept: {file} case {case_id!r} did not read back as written; nothing was saved")


def accept(root: Path | None, run_ref: str = "last", *, paths: Sequence[Path] = (), keyword: str | None = None,
           force: bool = False, write: bool = True) -> AcceptResult:
    """`promptci accept`: the stored run (the last one by default) accepted into the project's goldens."""
    from promptci.history import show_run
    from promptci.loading.prompts import scan_prompts
    from promptci.loading.yamlfile import relative_to
    from promptci.project import discover

    project = discover(root).source
    run = show_run(project, run_ref)
    relative: list[str] = []
    for path in paths:
        inside = relative_to(path if path.is_absolute() else Path.cwd() / path, project)
        if inside is None:
            raise PromptCIError(f"{path} is outside the project {project}: give golden files or folders inside it")
        relative.append(inside.as_posix())
    json_prompts = {name for name, prompt in scan_prompts(project).prompts.items() if prompt.output == "json"}
    return accept_run(project, run, paths=relative, keyword=keyword, json_prompts=json_prompts, force=force,
                      write=write, requests_now=requests_now(project, run.models, run.environment))


def requests_now(project: Path, models: Sequence[str], environment: str | None = None
                 ) -> dict[tuple[str, str, str], str]:
    """(file, case id, model) -> the hash of the request each case renders today, as a run with the same models
    and --env would send it."""
    from promptci.plan import RunOptions
    from promptci.planning import build_plan

    plan = build_plan(RunOptions(root=project, models=tuple(models), keep_going=True, environment=environment),
                      allow_empty=True)
    return {(job.case.location.file, job.case.id, job.request.model): content_hash(job.request.identity())
            for job in plan.jobs}
