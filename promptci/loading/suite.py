"""Prompts and goldens on disk -> Suite, collecting every problem so the user fixes them in one pass."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from promptci.config import Settings
from promptci.errors import ConfigError, Problem, TemplateError
from promptci.loading.goldens import GOLDEN_SUFFIXES, GoldenFile, read_golden_file
from promptci.loading.prompts import PROMPT_SUFFIXES, PromptScan, prompt_name, scan_prompts
from promptci.loading.render import Renderer
from promptci.loading.yamlfile import relative_path, relative_to, resolve_inside
from promptci.types import BrokenCase, Case, Location, Message, Prompt, Suite

__all__ = ["SuiteScan", "collect_suite", "load_suite", "render_suite", "resolve_inside"]

EXAMPLE_GOLDEN = "cases:\n  - id: first\n    input: {name: Ada}\n    expected: Hello Ada"


@dataclass
class SuiteScan:
    """Everything found on disk: the sound prompts and cases, and every problem with its location."""

    prompts: dict[str, Prompt]
    cases: list[Case] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)  # cases left out because their prompt is broken
    golden_files: list[str] = field(default_factory=list)
    golden_prompts: set[str] = field(default_factory=set)  # prompts that some golden file names
    looked_in: str = "goldens/"
    seen: set[tuple[Path, tuple[str, ...]]] = field(default_factory=set)  # (file, its prompts) already added


def load_suite(settings: Settings, paths: Sequence[Path] = (), keep_going: bool = False) -> Suite:
    """The suite under settings.root (only goldens under `paths` when given).

    Any problem raises ConfigError listing them all; with keep_going the broken cases and files are left
    out and their problems are kept as "path:line: message" lines in Suite.problems.
    """
    scan = collect_suite(settings, paths)
    if scan.problems and not keep_going:
        raise ConfigError.from_problems(scan.problems)
    if not scan.cases:
        raise ConfigError.from_problems([*scan.problems, *scan.skipped, empty_suite_problem(scan)])
    return Suite(
        prompts=scan.prompts,
        cases=tuple(scan.cases),
        problems=tuple(str(p) for p in (*scan.problems, *scan.skipped)),
        broken=broken_cases((*scan.problems, *scan.skipped)),
    )


def broken_cases(problems: Sequence[Problem]) -> tuple[BrokenCase, ...]:
    return tuple(BrokenCase(str(p.location) if p.location else None, p.message) for p in problems)


def empty_suite_problem(scan: SuiteScan) -> Problem:
    return Problem(
        f"no golden cases found in {scan.looked_in}; add a YAML file under goldens/ named after a prompt, "
        f"e.g. goldens/greet.yaml for prompts/greet.txt, holding:\n{EXAMPLE_GOLDEN}\n"
        "(or run `promptci init` to scaffold one)"
    )


def collect_suite(settings: Settings, paths: Sequence[Path] = ()) -> SuiteScan:
    """Load every prompt and selected golden file, keeping the sound cases and all the problems."""
    root = settings.root.resolve()
    selected = [_resolve_selected(root, Path(p)) for p in paths]
    prompt_scan = scan_prompts(root)
    scan = SuiteScan(prompts=prompt_scan.prompts, problems=list(prompt_scan.problems))
    all_goldens = _golden_files(root)
    if not selected:
        for path in all_goldens:
            _add_golden(scan, prompt_scan, path, settings, wanted_prompts=None)
        return scan
    scan.looked_in = ", ".join(relative_path(p, root) for p in selected)
    wanted_prompts = _selected_prompts(root, selected)
    direct = _directly_selected(all_goldens, selected, root)
    candidates = set(direct) | (set(all_goldens) if wanted_prompts is not None else set())
    for path in sorted(candidates):
        _add_golden(scan, prompt_scan, path, settings, None if path in direct else wanted_prompts)
    return scan


def _add_golden(scan: SuiteScan, prompt_scan: PromptScan, path: Path, settings: Settings,
                wanted_prompts: set[str] | None) -> None:
    """Add one golden file's cases; with wanted_prompts, only when its prompt is one of them."""
    root = settings.root.resolve()
    golden = read_golden_file(path, root, settings.comparators)
    names = [name for name in golden.prompts if wanted_prompts is None or name in wanted_prompts]
    if wanted_prompts is not None and not names:
        return
    reached = (path.resolve(), tuple(golden.prompts))
    if reached in scan.seen:  # the same file for the same prompts, through a link: one entry
        return
    scan.seen.add(reached)
    scan.golden_files.append(golden.path)
    scan.problems.extend(golden.problems)
    for name in names:
        _add_prompt_cases(scan, prompt_scan, golden, name)


def _add_prompt_cases(scan: SuiteScan, prompt_scan: PromptScan, golden: GoldenFile, name: str) -> None:
    """Add the golden file's cases for prompt `name`, or say why they cannot run."""
    cases = [case for case in golden.cases if case.prompt == name]
    scan.golden_prompts.add(name)
    if name in prompt_scan.broken:
        if cases:
            scan.skipped.append(Problem(f"{len(cases)} case(s) skipped: prompt {name!r} has errors",
                                        Location(golden.path, golden.prompt_line)))
        return
    if name not in scan.prompts:
        scan.problems.append(missing_prompt_problem(name, scan.prompts, golden.path, golden.prompt_line))
        return
    scan.cases.extend(cases)


def missing_prompt_problem(name: str, prompts: Mapping[str, Prompt], file: str, line: int) -> Problem:
    close = difflib.get_close_matches(name, list(prompts), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    known = ", ".join(sorted(prompts)[:20]) or "none: prompts/ holds no prompt files"
    suffixes = ", ".join(PROMPT_SUFFIXES)
    return Problem(
        f"prompt {name!r} does not exist (no prompts/{name} with suffix {suffixes}); {hint}"
        f"known prompts: {known}. Set `prompt:` in the golden file or rename it after its prompt",
        Location(file, line),
    )


def _resolve_selected(root: Path, path: Path) -> Path:
    """A PATH argument: relative to the working directory, else to the root; it must exist inside root. Kept
    as written under the root (a symlinked golden keeps its own name, which names its prompt)."""
    candidate = path if path.is_absolute() else Path.cwd() / path
    if not path.is_absolute() and not candidate.exists() and (root / path).exists():
        candidate = root / path
    inside = relative_to(candidate, root)
    if inside is None:
        raise ConfigError(f"path {str(path)!r} is outside the project root {root}; name files under goldens/ "
                          "or prompts/ (or pass --root)")
    if not candidate.exists():
        raise ConfigError(f"path {str(path)!r} does not exist (looked for {candidate.resolve()})")
    return root / inside if inside.parts else root


def _golden_files(root: Path) -> list[Path]:
    """Every *.yaml / *.yml under goldens/ (hidden folders and files left out), sorted, by the path as written:
    a symlinked golden belongs to the prompt its own path names."""
    goldens_dir = root / "goldens"
    if not goldens_dir.is_dir():
        return []
    return sorted(
        p for p in goldens_dir.rglob("*")
        if p.suffix.lower() in GOLDEN_SUFFIXES and not p.is_dir()  # a FIFO is named when read, not skipped
        and not any(part.startswith(".") for part in p.relative_to(goldens_dir).parts)
    )


def _directly_selected(all_goldens: Sequence[Path], selected: Sequence[Path], root: Path) -> set[Path]:
    """Golden files named by PATHS outside prompts/: those under a named folder, and named YAML files."""
    prompts_dir = (root / "prompts").resolve()
    others = [s for s in selected if s != prompts_dir and prompts_dir not in s.parents]
    chosen = {p for p in all_goldens if any(p == s or s in p.parents for s in others)}
    chosen |= {s for s in others if s.is_file() and s.suffix.lower() in GOLDEN_SUFFIXES}
    return chosen


def _selected_prompts(root: Path, selected: Sequence[Path]) -> set[str] | None:
    """Prompt names picked by PATHS under prompts/; None when no prompt path was given."""
    prompts_dir = (root / "prompts").resolve()
    prompt_paths = [s for s in selected if s == prompts_dir or prompts_dir in s.parents]
    if not prompt_paths:
        return None
    names: set[str] = set()
    for path in prompt_paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.suffix.lower() in PROMPT_SUFFIXES]
        names |= {prompt_name(p, root) for p in files}
    return names


def render_suite(suite: Suite, renderer: Renderer, keep_going: bool = False,
                 turns: dict[str, tuple[str, ...]] | None = None
                 ) -> tuple[dict[str, tuple[Message, ...]], list[Problem]]:
    """Render every case once (before any request): messages by case key, and every template problem. A case's
    scripted `turns:` go into `turns` (by case key) when given.

    Without keep_going any problem raises TemplateError listing them all.
    """
    rendered: dict[str, tuple[Message, ...]] = {}
    problems: list[Problem] = []
    for case in suite.cases:
        try:
            messages = renderer.render(suite.prompts[case.prompt], case)
            user_turns = renderer.render_turns(case)
            rendered[case.key] = messages
            if turns is not None and user_turns:
                turns[case.key] = user_turns
        except TemplateError as exc:
            problems.extend(exc.problems)
    if problems and not keep_going:
        raise TemplateError.from_problems(problems)
    return rendered, problems
