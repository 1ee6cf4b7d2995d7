"""Every gate of a run (`run`, `merge`, `show`, `pytest --promptci`): the budget, the pass rate, named metrics,
the upgrade check of --baseline-model with its cost and latency gates, drift, errors and missing shards,
each a Finding of one Verdict. What judges a run (Judging) is apart from what selects and executes it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

from promptci.config import Gate as GateSettings
from promptci.metrics import metric_failures, metric_table, unmeasured_metrics
from promptci.reliability import samples_to_tolerate, wilson_lower
from promptci.types import CaseResult, Run, Status, case_status_of
from promptci.verdict.policy import Finding, Gate, Verdict, interrupted, no_verdict, regression

if TYPE_CHECKING:
    from promptci.matrix import MatrixVerdict
    from promptci.sequential import Design

MODEL_GATES = ("cost", "latency")  # --gate NAME, with --baseline-model


@dataclass(frozen=True)
class Judging:
    """What judges a run, apart from what selects its cases and how they are executed."""

    baseline_model: str | None = None  # --baseline-model: the other models are compared with it
    gates: tuple[str, ...] = ()  # --gate cost|latency, with the baseline
    fail_on_drift: bool = False
    allow_missing_shards: bool = False  # merge --allow-missing-shards
    sequential: Design | None = None  # --repeat auto with the baseline: sample where undecided (sequential.py)
    detect: float | None = None  # --detect DROP: choose the design's MAX (seqtarget.choose_design) for this suite


def case_name(result: CaseResult) -> str:
    return f"{result.file}:{result.line} {result.case_id} [{result.model}]"


def budget_findings(results: Sequence[CaseResult]) -> list[Finding]:
    """A budget that kept cases from being sent is exit 1 in every command."""
    held = list(dict.fromkeys(case_name(r) for r in results if r.skip_kind == "budget"))
    if not held:
        return []
    return [regression(Gate.BUDGET, f"the run budget kept {len(held)} case(s) from being sent", held)]


def error_findings(results: Sequence[CaseResult]) -> list[Finding]:
    errored = list(dict.fromkeys(case_name(r) for r in results if r.status == "error"))
    if not errored:
        return []
    return [no_verdict(Gate.ERRORS, f"{len(errored)} case(s) ended in errors and have no verdict "
                                    f"({', '.join(errored[:5])}{' ...' if len(errored) > 5 else ''})", errored)]


def judged_samples(results: Sequence[CaseResult]) -> list[CaseResult]:
    """The scored samples as the pass-rate gate counts them: a case with a min_pass_rate passes or fails as a
    whole (its status by case_status_of), each of its samples with it; other samples count as they are."""
    cases: dict[tuple[str, str, str, str], list[CaseResult]] = {}
    for r in results:
        cases.setdefault((r.file, r.prompt, r.case_id, r.model), []).append(r)
    judged = []
    for samples in cases.values():
        scored = [r for r in samples if r.status in ("passed", "failed")]
        if scored and scored[0].min_pass_rate is not None and case_status_of(samples) in ("passed", "failed"):
            status = cast(Status, case_status_of(samples))
            judged += [r if r.status == status else replace(r, status=status) for r in scored]
        else:
            judged += scored
    return judged


def pass_rate_findings(run: Run, min_pass_rate: float) -> list[Finding]:
    found = []
    judged = judged_samples(run.results)
    for model in run.models:
        scored = [r for r in judged if r.model == model]
        if not scored:
            continue
        rate = sum(r.status == "passed" for r in scored) / len(scored)
        if rate < min_pass_rate:
            failing = [case_name(r) for r in scored if r.status == "failed"]
            found.append(regression(Gate.PASS_RATE, f"{model} passed {rate * 100:.0f}% of its scored cases, under "
                                                    f"gate.min_pass_rate {min_pass_rate:g}", failing))
    return found


def threshold_notes(run: Run) -> list[str]:
    """What a min_pass_rate can mean at this K: without --repeat nothing (a case's one sample decides it); at a
    K too small to tolerate one failing sample, say the K that would."""
    thresholds = sorted({r.min_pass_rate for r in run.results if r.min_pass_rate is not None})
    if not thresholds:
        return []
    if not any(r.repeat for r in run.results):
        return [f"{len(thresholds)} min_pass_rate value(s) set ({', '.join(f'{t:g}' for t in thresholds)}), but "
                "without --repeat each case is decided by its one sample: run with --repeat K for the threshold to "
                "mean anything"]
    k = max(r.repeat for r in run.results) + 1
    notes = []
    for threshold in thresholds:
        needed = samples_to_tolerate(1, threshold)
        if needed is None or needed > k:
            can = f"--repeat {needed} tolerates one" if needed else "no --repeat up to 10,000 tolerates one"
            notes.append(f"min_pass_rate {threshold:g} at --repeat {k} tolerates no failing sample (the 95% Wilson "
                         f"lower bound of {k - 1}/{k} is {wilson_lower(k - 1, k):.2f}); {can}")
    return notes


def metric_findings(run: Run, settings: GateSettings) -> tuple[list[Finding], list[str]]:
    table = metric_table(run.results)
    failures = [regression(Gate.METRIC, str(f), (f"{f.value.prompt} x {f.value.model}",))
                for f in metric_failures(table, settings.metrics)]
    notes = [f"gate.metrics.{t.name} ({t.location}): no comparator of this run has `metric: {t.name}`, so this "
             "threshold was not checked" for t in unmeasured_metrics(table, settings.metrics)]
    return failures, notes


def upgrade_findings(matrix: MatrixVerdict) -> list[Finding]:
    found = []
    for candidate in matrix.candidates:
        if candidate.is_worse:
            found.append(regression(Gate.UPGRADE, candidate.line(), (candidate.model, *candidate.flagged)))
        for shift in candidate.shifts:
            found += shift.findings()
    return found


def judge_case(results: Sequence[CaseResult]) -> Verdict:
    """One case x model's samples on their own (a pytest item): a failing sample fails it, an error leaves it
    without a verdict, a budget that held it back fails it, as in `run`."""
    failing = [case_name(r) for r in judged_samples(results) if r.status == "failed"]
    findings = budget_findings(results)
    if failing:
        findings.append(regression(Gate.PASS_RATE, f"{len(failing)} sample(s) failed", failing[:1]))
    findings += error_findings(results)
    return Verdict(tuple(findings), (), (Gate.BUDGET, Gate.PASS_RATE, Gate.ERRORS))


def judge_run(run: Run, settings: GateSettings, judging: Judging | None = None,
              matrix: MatrixVerdict | None = None, drift_notes: Sequence[str] = (),
              missing_shards: Sequence[str] = ()) -> Verdict:
    """The run's verdict. With an upgrade check (--baseline-model) its verdict replaces the pass-rate gate:
    cases failing on every model are not the candidate's regression."""
    judging = judging or Judging()
    findings: list[Finding] = [interrupted()] if run.interrupted else []
    gates = [Gate.BUDGET, Gate.ERRORS]
    findings += budget_findings(run.results)
    if matrix is not None:
        gates.append(Gate.UPGRADE)
        gates += [Gate(name) for name in judging.gates]
        findings += upgrade_findings(matrix)
    else:
        gates.append(Gate.PASS_RATE)
        findings += pass_rate_findings(run, settings.min_pass_rate)
    metric_failures_found, notes = metric_findings(run, settings)
    notes += threshold_notes(run)
    if settings.metrics:
        gates.append(Gate.METRIC)
    findings += metric_failures_found
    if judging.fail_on_drift:
        gates.append(Gate.DRIFT)
        findings += [regression(Gate.DRIFT, note) for note in drift_notes]
    if missing_shards:
        message = (f"merged without shard(s) {', '.join(missing_shards)}: their cases are not in this run")
        if judging.allow_missing_shards:
            notes.append(message + " (allowed by --allow-missing-shards)")
        else:
            gates.append(Gate.SHARDS)
            findings.append(no_verdict(Gate.SHARDS, message + "; merge every shard, or pass "
                                                              "--allow-missing-shards", missing_shards))
    findings += error_findings(run.results)
    return Verdict(tuple(findings), tuple(notes), tuple(dict.fromkeys(gates)))


def decision_of(run: Run) -> Verdict:
    """The verdict a report renders: the one the command decided, or for a Run built without one (a library
    caller, a test) the default gates' verdict."""
    return run.decision if run.decision is not None else judge_run(run, GateSettings())
