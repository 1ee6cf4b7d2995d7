"""`promptci calibrate PROMPT`: an llm_judge against human labels. The labels come from `labels/<prompt>.yaml`
(or `--labels FILE`: case id -> pass/fail, optionally with the output labelled) and from the prompt's reviews
(`reviews/<prompt>.yaml`: good is pass, bad is fail). The judge grades each labelled output itself, through a
Session's model client; the agreement (TPR, TNR, Cohen's kappa, with intervals) is written to
calibration/<prompt>.<judge>.yaml (calibration.py), which lets the judge gate."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from promptci.calibration import (
    JudgeIdentity,
    calibration_document,
    judge_identity,
    judge_setup,
    write_calibration,
)
from promptci.errors import ConfigError, ExitCode, Problem, PromptCIError
from promptci.loading.suite import load_suite
from promptci.loading.yamlfile import line_of, load_yaml, parse_yaml, relative_path, relative_to
from promptci.plan import Job, Plan, RunOptions
from promptci.project import Project, discover
from promptci.reviewfile import REVIEWS_DIR, output_hash, read_reviews
from promptci.session import Session
from promptci.stats import Agreement
from promptci.store import Store
from promptci.types import Case, ComparatorSpec, Completion, Location, Request

LABELS_DIR = "labels"
LABELS = {"pass": True, "fail": False}
STORED_RUNS_SEARCHED = 200  # newest first: where the outputs that labels and reviews name are looked for


@dataclass(frozen=True)
class CalibrateOptions:
    prompt: str
    root: Path | None = None
    judge: str | None = None  # the judge's `name:` (default: the prompt's only judge)
    labels: Path | None = None  # default: labels/<prompt>.yaml when it exists
    concurrency: int | None = None
    environment: str | None = None
    use_cache: bool = True


@dataclass(frozen=True)
class Label:
    """One human label of one output: where it was given (labels file line, or review)."""

    case_id: str
    passes: bool
    where: str
    output: str | None = None  # None: the case's newest stored output (labels file without `output:`)
    location: Location | None = None  # a labels file's line
    digest: str | None = None  # a review's: the hash of the output it reviewed
    run: str | None = None  # a review's run: where its output is looked for first


@dataclass(frozen=True)
class Judged:
    label: Label
    output: str
    judge_passes: bool | None  # None: the judge gave no verdict (its error is in `reason`)
    reason: str


@dataclass
class CalibrationOutcome:
    identity: JudgeIdentity
    judged: list[Judged]
    agreement: Agreement | None = None
    document: dict[str, Any] | None = None
    written: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.written is not None else ExitCode.NO_VERDICT

    def disagreements(self) -> list[Judged]:
        return [j for j in self.judged if j.judge_passes is not None and j.judge_passes != j.label.passes]


def calibrate(options: CalibrateOptions) -> CalibrationOutcome:
    project = discover(options.root)
    settings = project.settings(options.environment)
    suite = load_suite(settings)
    if options.prompt not in suite.prompts:
        known = ", ".join(sorted(suite.prompts)) or "none"
        raise PromptCIError(f"no prompt {options.prompt!r} with golden cases (known: {known})")
    judged_cases = judge_cases(suite.cases, options.prompt, options.judge)
    identity = one_identity(judged_cases, options.prompt, project, suite.prompts)
    labels = all_labels(project.source, options, set(judged_cases))
    run_options = RunOptions(root=project.source, concurrency=options.concurrency, environment=options.environment,
                             use_cache=options.use_cache)
    with Session(project, concurrency=options.concurrency) as session:
        items, notes = with_outputs(session.store, options.prompt, labels)
        if not items:
            raise PromptCIError(f"none of the reviews of {options.prompt!r} has its output in the store (reviews "
                                f"name outputs by hash): label cases in {LABELS_DIR}/{options.prompt}.yaml with "
                                "`output:`")
        jobs = [Job(replace(judged_cases[label.case_id][0], comparators=(judged_cases[label.case_id][1],)),
                    suite.prompts[options.prompt], Request(model="echo", messages=()), 0) for label, _ in items]
        scored = session.score_outputs(Plan(project, settings, run_options, tuple(jobs), ()),
                                       [Completion(text=output) for _, output in items])
    outcome = CalibrationOutcome(identity, [judged(label, output, scores, raised)
                                            for (label, output), (scores, raised) in zip(items, scored, strict=True)],
                                 notes=notes)
    return written(outcome, project.source)


def all_labels(root: Path, options: CalibrateOptions, case_ids: set[str]) -> list[Label]:
    """The labels file's labels (--labels, else labels/<prompt>.yaml when there is one), then the reviews'."""
    path = options.labels or root / LABELS_DIR / f"{options.prompt}.yaml"
    labels = read_labels(path, root, case_ids) if options.labels or path.is_file() else []
    labels += review_labels(root, options.prompt, case_ids)
    if not labels:
        raise PromptCIError(f"no labels for prompt {options.prompt!r}: write {LABELS_DIR}/{options.prompt}.yaml "
                            "(labels: {CASE_ID: pass or fail}) or review outputs in `promptci view`")
    return labels


def written(outcome: CalibrationOutcome, root: Path) -> CalibrationOutcome:
    """The outcome with its figures, written to the calibration file; nothing written when the judge gave no
    verdict on some output (a calibration that left them out would flatter it)."""
    failed = [j for j in outcome.judged if j.judge_passes is None]
    if failed:
        outcome.notes += [f"no verdict for {j.label.case_id} ({j.label.where}): {j.reason}" for j in failed]
        outcome.notes.append(f"nothing written: the judge gave no verdict on {len(failed)} of {len(outcome.judged)} "
                             "outputs (a calibration leaves none out); fix them and run calibrate again (answers "
                             "are cached)")
        return outcome
    from promptci import __version__

    outcome.agreement = agreement_of(outcome.judged)
    reviewed = sum(j.label.digest is not None for j in outcome.judged)
    sources = {"labels_file": len(outcome.judged) - reviewed, "reviews": reviewed}
    outcome.document = calibration_document(outcome.identity, outcome.agreement, sources, __version__)
    outcome.written = write_calibration(root, outcome.document)
    return outcome


def judge_cases(cases: Sequence[Case], prompt: str, judge: str | None) -> dict[str, tuple[Case, ComparatorSpec]]:
    """{case id: (case, its judge's spec)} of the prompt's cases that have the judge; one judge must be meant."""
    names: dict[str, None] = {}
    found: dict[str, tuple[Case, ComparatorSpec]] = {}
    for case in cases:
        if case.prompt != prompt:
            continue
        for spec in case.comparators:
            setup = judge_setup(spec)
            if setup is None:
                continue
            names.setdefault(setup.name, None)
            if judge in (None, setup.name):
                found.setdefault(case.id, (case, spec))
    if not names:
        raise PromptCIError(f"prompt {prompt!r} has no llm_judge comparator to calibrate")
    if judge is not None and not found:
        raise PromptCIError(f"prompt {prompt!r} has no llm_judge named {judge!r} (its judges: {', '.join(names)})")
    if judge is None and len(names) > 1:
        raise PromptCIError(f"prompt {prompt!r} has several judges ({', '.join(names)}): say which with --judge")
    return found


def one_identity(judged_cases: Mapping[str, tuple[Case, ComparatorSpec]], prompt: str, project: Project,
                 prompts: Mapping[str, Any]) -> JudgeIdentity:
    """The judge's identity. One calibration file holds one judge: cases whose judge of that name differs
    (rubric, model, threshold, template) are named, so they get their own `name:`."""
    identities = []
    for _, spec in judged_cases.values():
        setup = judge_setup(spec)
        assert setup is not None
        identities.append((judge_identity(spec, setup, prompt, project.source, prompts), spec.location))
    (first, where), *others = identities
    for other, location in others:
        if other != first:
            raise PromptCIError(
                f"judge {first.name!r} of prompt {prompt!r} differs between {where} and {location} (rubric, model, "
                "threshold or template): one calibration file holds one judge; give them different `name:`s")
    return first


def read_labels(path: Path, root: Path, case_ids: set[str]) -> list[Label]:
    """`labels: {CASE_ID: pass|fail}` or `CASE_ID: {label: pass|fail, output: TEXT}`; problems at file:line."""
    data, shown = labels_document(path, root)
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, dict):
        raise ConfigError.from_problems([Problem(
            "a labels file is a mapping `labels: {CASE_ID: pass or fail}` (or CASE_ID: {label: fail, output: TEXT})",
            location_in(shown, data, "labels" if isinstance(data, dict) else None))])
    problems: list[Problem] = []
    found: list[Label] = []
    for case_id, value in labels.items():
        where = location_in(shown, labels, case_id)
        entry = value if isinstance(value, dict) else {"label": value}
        unknown = [k for k in entry if k not in ("label", "output")]
        label, output = entry.get("label"), entry.get("output")
        if str(case_id) not in case_ids:
            known = ", ".join(sorted(case_ids)[:8]) + (", ..." if len(case_ids) > 8 else "")
            problems.append(Problem(f"no case {case_id!r} of this prompt has the judge (its cases: {known})", where))
        elif unknown:
            problems.append(Problem(f"unknown key {unknown[0]!r} in the label of {case_id!r}; known keys: label, "
                                    "output", where))
        elif not isinstance(label, str) or label not in LABELS:
            problems.append(Problem(f"the label of {case_id!r} must be pass or fail, got {label!r}", where))
        elif output is not None and not isinstance(output, str):
            problems.append(Problem(f"the output of {case_id!r} must be text, got {type(output).__name__}", where))
        else:
            found.append(Label(str(case_id), LABELS[label], str(where), output, where))
    if problems:
        raise ConfigError.from_problems(problems)
    return found


def labels_document(path: Path, root: Path) -> tuple[Any, str]:
    """The labels file parsed (line-aware), and its name as messages give it; --labels may name a file outside
    the project."""
    shown = relative_path(path, root)
    if not path.is_file():
        raise PromptCIError(f"{shown}: no such labels file")
    if relative_to(path, root) is not None:
        return load_yaml(path, root), shown
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the labels file: {error}", Location(shown)) from None
    return parse_yaml(text, shown), shown


def location_in(file: str, container: Any, key: Any) -> Location:
    line = line_of(container, key) if key is not None else getattr(container, "line", 0)
    return Location(file, line or 1)


def review_labels(root: Path, prompt: str, case_ids: set[str]) -> list[Label]:
    """The prompt's reviews of cases that have the judge, as labels of the reviewed outputs (by hash)."""
    found: list[Label] = []
    for case_id, by_hash in read_reviews(root, prompt).items():
        if case_id not in case_ids:
            continue
        for digest, review in by_hash.items():
            found.append(Label(case_id, review.verdict == "good",
                               f"{REVIEWS_DIR}/{prompt}.yaml ({review.verdict} by {review.by}, {digest[:15]})",
                               digest=digest, run=review.run))
    return found


def with_outputs(store: Store, prompt: str, labels: Sequence[Label]) -> tuple[list[tuple[Label, str]], list[str]]:
    """Each label with the output it labels: given in the labels file, else the newest stored output of the
    case (labels file) or the stored output with the review's hash (reviews). A label whose output is not
    found: a labels-file one is an error (its line), a review is left out with a note. One output labelled
    twice keeps the labels file's label."""
    outputs = StoredOutputs(store, prompt)
    items: list[tuple[Label, str]] = []
    seen: set[tuple[str, str]] = set()
    notes: list[str] = []
    problems: list[Problem] = []
    for label in labels:
        if label.output is not None:
            output: str | None = label.output
        elif label.digest is None:
            output = outputs.newest(label.case_id)
            if output is None:
                problems.append(Problem(f"no stored output of case {label.case_id!r} to judge: run `promptci run` "
                                        "first, or give the labelled text as `output:`", label.location))
                continue
        else:
            output = outputs.with_hash(label.case_id, label.digest, label.run)
        if output is None:
            notes.append(f"left out: {label.where}: its output is not in the store")
            continue
        key = (label.case_id, output_hash(output))
        if key in seen:
            continue
        seen.add(key)
        items.append((label, output))
    if problems:
        raise ConfigError.from_problems(problems)
    return items, notes


class StoredOutputs:
    """The prompt's outputs in the store, newest run first, read as far back as a question needs."""

    def __init__(self, store: Store, prompt: str) -> None:
        self.store = store
        self.prompt = prompt
        self._runs: Iterator[str] | None = None
        self._by_case: dict[str, list[str]] = {}  # newest first
        self._read: set[str] = set()

    def _outputs(self, run_id: str) -> None:
        run = self.store.load_run(run_id)
        self._read.add(run_id)
        for result in run.results if run else ():
            if result.prompt == self.prompt and result.output is not None:
                self._by_case.setdefault(result.case_id, []).append(result.output)

    def _more(self) -> bool:
        if self._runs is None:
            self._runs = iter([info.run_id for info in self.store.list_runs(STORED_RUNS_SEARCHED)])
        for run_id in self._runs:
            if run_id not in self._read:
                self._outputs(run_id)
                return True
        return False

    def newest(self, case_id: str) -> str | None:
        while case_id not in self._by_case and self._more():
            pass
        found = self._by_case.get(case_id)
        return found[0] if found else None

    def with_hash(self, case_id: str, digest: str, run_id: str | None) -> str | None:
        if run_id and run_id not in self._read:
            with suppress(PromptCIError):  # an unknown or ambiguous run id: searched like the rest
                self._outputs(run_id)
        while True:
            for output in self._by_case.get(case_id, ()):
                if output_hash(output) == digest:
                    return output
            if not self._more():
                return None


def judged(label: Label, output: str, scores: Sequence[Any], raised: Sequence[str]) -> Judged:
    if raised or not scores:
        return Judged(label, output, None, "; ".join(raised) or "no score")
    score = scores[-1]
    return Judged(label, output, bool(score.passed), score.reason)


def agreement_of(items: Sequence[Judged]) -> Agreement:
    def count(human: bool, judge: bool) -> int:
        return sum(j.label.passes == human and j.judge_passes == judge for j in items)

    return Agreement(tp=count(True, True), fn=count(True, False), fp=count(False, True), tn=count(False, False))
