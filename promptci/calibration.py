"""Judge calibrations, `calibration/<prompt>.<judge>.yaml`: how well an llm_judge agreed with human labels when
`promptci calibrate` measured it, and for which judge (model, threshold, rubric hash, template hash). Here a
run's judges are told whether they gate: a judge whose calibration is missing or stale (its model, threshold,
rubric, or template and what that includes, changed since) only reports (ComparatorSpec.gating), unless
`judges.allow_uncalibrated`; `judges.min_kappa` keeps a calibrated judge that agreed too little report-only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from promptci.changes import dependencies
from promptci.comparators.judge import JUDGE_SYSTEM, JudgeSetup, calibration_file
from promptci.config import Judges
from promptci.errors import ConfigError, Problem
from promptci.loading.lint import LintProblem
from promptci.loading.yamlfile import line_of, load_yaml, to_plain
from promptci.stats import KAPPA_METHOD, Agreement, Interval
from promptci.types import Case, ComparatorSpec, Location, Prompt, content_hash, now_iso

SCHEMA_VERSION = 1
IDENTITY_KEYS = ("model", "threshold", "rubric_hash", "template_hash")  # what makes a calibration stale
HEADER = ("# Written by `promptci calibrate`: how well this judge agreed with human labels. Commit it: a judge\n"
          "# gates (can fail the run) only while this file matches it (model, threshold, rubric, template).\n")


@dataclass(frozen=True)
class JudgeIdentity:
    """What a judge's verdicts depend on, hashed: a calibration holds for this and nothing else."""

    prompt: str
    name: str
    model: str
    threshold: float
    rubric_hash: str
    template_hash: str  # the judge template and every file it includes (or the built-in judge prompt)
    template_files: tuple[str, ...] = ()

    def fields(self) -> dict[str, Any]:
        return {"model": self.model, "threshold": self.threshold, "rubric_hash": self.rubric_hash,
                "template_hash": self.template_hash}


@dataclass(frozen=True)
class Calibration:
    """A calibration file, read back: the identity it was measured for and its figures."""

    path: str  # calibration/<prompt>.<judge>.yaml
    identity: Mapping[str, Any]  # IDENTITY_KEYS
    kappa: float | None
    n: int
    date: str


def judge_setup(spec: ComparatorSpec) -> JudgeSetup | None:
    """The judge behind a comparator spec (an llm_judge, transformed or not); None for other comparators."""
    setup = getattr(spec.instance, "judge", None)
    return setup if isinstance(setup, JudgeSetup) else None


def judge_identity(spec: ComparatorSpec, setup: JudgeSetup, prompt: str, root: Path,
                   prompts: Mapping[str, Prompt]) -> JudgeIdentity:
    """The judge's identity in the project at root: its template's files are read as they are now."""
    def read_now(path: str) -> str | None:
        file = root / path
        try:
            return file.read_text(encoding="utf-8") if file.is_file() else None
        except (OSError, UnicodeDecodeError):
            return None

    if setup.template is None:
        files: list[str] = []
        template_hash = "sha256:" + content_hash({"built-in": JUDGE_SYSTEM})
    else:
        files = sorted(d for d in dependencies(spec, prompts, read_now) if not any(c in d for c in "*?["))
        template_hash = "sha256:" + content_hash({path: read_now(path) for path in files})
    return JudgeIdentity(prompt=prompt, name=setup.name, model=setup.model, threshold=setup.threshold,
                         rubric_hash="sha256:" + content_hash(setup.rubric), template_hash=template_hash,
                         template_files=tuple(files))


def read_calibration(root: Path, prompt: str, judge: str) -> Calibration | None:
    """The judge's calibration file; None when there is none. A damaged one is a ConfigError at its line."""
    shown = calibration_file(prompt, judge)
    path = root / shown
    if not path.is_file():
        return None
    data = load_yaml(path, root)
    fix = f"run `promptci calibrate {prompt} --judge {judge}` again, or delete the file"
    if not isinstance(data, dict):
        raise ConfigError.from_problems([Problem(f"must be a mapping written by promptci calibrate: {fix}",
                                                 Location(shown, getattr(data, "line", 1) or 1))])
    problems = [Problem(f"`{key}` is missing: {fix}", Location(shown, 1)) for key in IDENTITY_KEYS
                if key not in data]
    figures = data.get("figures")
    kappa = figures.get("kappa") if isinstance(figures, dict) else None
    kappa_value = kappa.get("value") if isinstance(kappa, dict) else None
    if kappa_value is not None and (isinstance(kappa_value, bool) or not isinstance(kappa_value, (int, float))):
        problems.append(Problem(f"`figures.kappa.value` must be a number or null: {fix}",
                                Location(shown, line_of(kappa, "value"))))
    if problems:
        raise ConfigError.from_problems(problems)
    n = figures.get("n") if isinstance(figures, dict) else 0
    return Calibration(shown, {key: to_plain(data[key]) for key in IDENTITY_KEYS},
                       None if kappa_value is None else float(kappa_value),
                       n if isinstance(n, int) else 0, str(data.get("date", "")))


def stale_reasons(identity: JudgeIdentity, calibration: Calibration) -> list[str]:
    """What changed since the calibration: 'rubric changed', 'model changed', ..."""
    now = identity.fields()
    return [f"{key.removesuffix('_hash')} changed" for key in IDENTITY_KEYS
            if calibration.identity.get(key) != now[key]]


def gate_of(identity: JudgeIdentity, calibration: Calibration | None, judges: Judges) -> tuple[bool, str]:
    """Whether the judge gates, and why: words for the reports ('gated: calibrated (...)', 'report-only, it
    cannot fail the run: stale: rubric changed ...')."""
    command = f"`promptci calibrate {identity.prompt} --judge {identity.name}`"
    if calibration is None:
        why = f"no calibration ({calibration_file(identity.prompt, identity.name)}; run {command})"
    elif stale := stale_reasons(identity, calibration):
        why = f"stale: {', '.join(stale)} since {calibration.path} was written (run {command} again)"
    elif judges.min_kappa is not None and (calibration.kappa is None or calibration.kappa < judges.min_kappa):
        kappa = "unknown" if calibration.kappa is None else f"{calibration.kappa:.2f}"
        why = f"kappa {kappa} in {calibration.path} is under judges.min_kappa {judges.min_kappa:g}"
    else:
        kappa = "unknown" if calibration.kappa is None else f"{calibration.kappa:.2f}"
        return True, f"gated: calibrated ({calibration.path}: kappa {kappa} on {calibration.n} labels)"
    if judges.allow_uncalibrated:
        return True, f"gated, as judges.allow_uncalibrated allows: {why}"
    return False, f"report-only, it cannot fail the run: {why}"


def with_judge_gates(cases: Sequence[Case], prompts: Mapping[str, Prompt], root: Path, judges: Judges
                     ) -> list[Case]:
    """The cases with each llm_judge spec told whether it gates (ComparatorSpec.gating, gate_note). Each
    calibration file is read once."""
    found: dict[tuple[str, str], Calibration | None] = {}
    decided: dict[tuple[str, int], tuple[bool, str]] = {}

    def gated(spec: ComparatorSpec, prompt: str) -> ComparatorSpec:
        setup = judge_setup(spec)
        if setup is None:
            return spec
        memo = (prompt, id(spec.instance))
        if memo not in decided:
            identity = judge_identity(spec, setup, prompt, root, prompts)
            if (prompt, setup.name) not in found:
                found[(prompt, setup.name)] = read_calibration(root, prompt, setup.name)
            decided[memo] = gate_of(identity, found[(prompt, setup.name)], judges)
        gating, note = decided[memo]
        return replace(spec, gating=gating, gate_note=f"judge {prompt}.{setup.name} ({setup.model}): {note}")

    def case_gated(case: Case) -> Case:
        if not any(judge_setup(s) for s in (*case.comparators, *(c for t in case.user_turns for c in t.comparators))):
            return case
        turns = tuple(replace(t, comparators=tuple(gated(s, case.prompt) for s in t.comparators))
                      for t in case.user_turns)
        return replace(case, comparators=tuple(gated(s, case.prompt) for s in case.comparators), user_turns=turns)

    return [case_gated(case) for case in cases]


def report_only_judges(cases: Sequence[Case], prompts: Mapping[str, Prompt], root: Path, judges: Judges
                       ) -> list[LintProblem]:
    """`promptci lint`'s warning for each llm_judge that with_judge_gates leaves report-only (no calibration, a
    stale one, kappa under judges.min_kappa), once per judge, prompt and golden line; a damaged calibration file
    is an error at its line, as it is for `run`."""
    try:
        gated = with_judge_gates(cases, prompts, root, judges)
    except ConfigError as error:
        return [LintProblem(p.message, p.location, "error") for p in error.problems]
    found: dict[tuple[str, int, str, str], LintProblem] = {}
    for case in gated:
        for spec in (*case.comparators, *(c for t in case.user_turns for c in t.comparators)):
            setup = judge_setup(spec)
            if setup is None or spec.gating:
                continue
            fix = (f"fix: `promptci calibrate {case.prompt} --judge {setup.name}` (with labels: see `promptci "
                   "calibrate --help`), or `judges: {allow_uncalibrated: true}` in promptci.yaml to let uncalibrated "
                   "judges gate")
            key = (spec.location.file, spec.location.line, case.prompt, setup.name)
            found.setdefault(key, LintProblem(f"{spec.gate_note}; {fix}", spec.location, "warning"))
    return list(found.values())


def calibration_document(identity: JudgeIdentity, agreement: Agreement, sources: Mapping[str, int],
                         version: str, date: str | None = None) -> dict[str, Any]:
    """The calibration file's content (see docs/SPEC.md, `promptci calibrate`)."""
    tpr, tpr_interval = agreement.tpr()
    tnr, tnr_interval = agreement.tnr()
    kappa, kappa_interval = agreement.kappa()
    return {
        "schema_version": SCHEMA_VERSION,
        "prompt": identity.prompt,
        "judge": identity.name,
        **identity.fields(),
        "template_files": list(identity.template_files),
        "figures": {
            "n": agreement.n,
            "counts": {"tp": agreement.tp, "fn": agreement.fn, "fp": agreement.fp, "tn": agreement.tn},
            "tpr": rate_figure(tpr, tpr_interval),
            "tnr": rate_figure(tnr, tnr_interval),
            "kappa": {**rate_figure(kappa, kappa_interval), "method": KAPPA_METHOD},
        },
        "labels": dict(sources),
        "date": date or now_iso(),
        "promptci_version": version,
    }


def rate_figure(value: float | None, interval: Interval | None) -> dict[str, Any]:
    """{value, low, high} rounded to 4 places (what a reviewer reads); nulls when unknown."""
    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    return {"value": rounded(value), "low": rounded(interval.low) if interval and value is not None else None,
            "high": rounded(interval.high) if interval and value is not None else None}


def write_calibration(root: Path, document: Mapping[str, Any]) -> Path:
    """Write calibration/<prompt>.<judge>.yaml (atomically) and return its path."""
    import os

    path = root / calibration_file(str(document["prompt"]), str(document["judge"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(HEADER + yaml.safe_dump(dict(document), allow_unicode=True, sort_keys=False, width=100),
                       encoding="utf-8")
    os.replace(partial, path)
    return path
