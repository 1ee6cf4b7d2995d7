"""The library surface: run(), diff(), bisect(), dry_run(), cost_report(), list_runs(), show_run(). The only place that
wires loaders, providers, the runner and the store together; the CLI calls this and maps outcomes to
exit codes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptci import history
from promptci.client import ModelCall, RateStatus, answer_key, call_key
from promptci.config import Settings
from promptci.cost.estimate import DryRunReport, DryRunRow, estimate_request_cost, output_limit
from promptci.cost.pricing import UNKNOWN_PRICE_HINT
from promptci.cost.totals import format_usd
from promptci.drift import find_drift
from promptci.errors import EnvironmentFailure, ExitCode, PromptCIError
from promptci.gitinfo import current_git
from promptci.history import list_runs, run_info_to_dict
from promptci.merge import merge_runs, missing_shards, read_shards, store_run
from promptci.modelcalls import helper_models
from promptci.plan import Plan, RunOptions
from promptci.planning import LOCAL_PROVIDERS, build_plan, missing_keys, model_pricing
from promptci.project import Project, discover
from promptci.recordings import load_recordings
from promptci.session import Session
from promptci.storechoice import has_store, open_store, store_note
from promptci.types import CaseResult, Run, now_iso, summarize
from promptci.verdict.gates import Judging, judge_run
from promptci.verdict.judges import judge_notes
from promptci.verdict.policy import Verdict

if TYPE_CHECKING:  # diff and bisect load git, compare and stats; the matrix and cost report load when asked for
    from promptci.changes import ChangeSelection
    from promptci.cost.report import CostReport, cost_report, parse_dimensions
    from promptci.diffing import BisectOutcome, BisectStep, DiffOptions, DiffOutcome
    from promptci.loading.lint import LintProblem
    from promptci.matrix import MatrixVerdict

LAZY_EXPORTS = {"BisectOutcome": "promptci.diffing", "BisectStep": "promptci.diffing",
                "DiffOptions": "promptci.diffing", "DiffOutcome": "promptci.diffing",
                "CostReport": "promptci.cost.report", "cost_report": "promptci.cost.report",
                "parse_dimensions": "promptci.cost.report"}

__all__ = [
    "LOCAL_PROVIDERS",
    "BisectOutcome",
    "CostReport",
    "DiffOptions",
    "DiffOutcome",
    "DryRunReport",
    "Judging",
    "Plan",
    "Project",
    "RunOptions",
    "RunOutcome",
    "Session",
    "bisect",
    "build_plan",
    "cost_report",
    "diff",
    "discover",
    "dry_run",
    "lint",
    "list_runs",
    "merge",
    "parse_dimensions",
    "run",
    "run_info_to_dict",
    "show_run",
]


@dataclass
class RunOutcome:
    run: Run  # run.decision is the verdict every report renders
    exit_code: ExitCode
    notes: list[str] = field(default_factory=list)
    not_stored: PromptCIError | None = None  # writes the database refused (a lock held too long, a full disk)
    selection: ChangeSelection | None = None  # with --changed-since: the affected cases and why
    stops: tuple[str, ...] = ()  # --repeat auto: why sampling stopped at each case (printed with -v)

    @property
    def verdict(self) -> Verdict:
        return self.run.decision or Verdict()


def run(options: RunOptions, on_start: Callable[[int], None] | None = None,
        on_result: Callable[[CaseResult], None] | None = None, on_rate: Callable[[RateStatus], None] | None = None,
        judging: Judging | None = None) -> RunOutcome:
    judging = judging or Judging()
    plan = build_plan(options)
    if not plan.jobs and options.changed_since is not None:  # nothing to run is a fine answer, not stored
        from promptci.diffing import nothing_changed_note

        return RunOutcome(replace(empty_run(plan), decision=Verdict()), ExitCode.OK,
                          [nothing_changed_note(options.changed_since)], selection=plan.selection)
    matrix: MatrixVerdict | None = None
    if judging.baseline_model is not None or judging.gates:  # the model matrix (and its statistics) when asked
        from promptci.matrix import check_matrix_options

        check_matrix_options(judging.baseline_model, judging.gates, plan.models)
    judging, design_notes = with_chosen_design(plan, judging)
    with Session(plan.project, concurrency=options.concurrency) as session:
        sequential_notes: tuple[str, ...] = ()
        stops: tuple[str, ...] = ()
        if judging.sequential is not None and judging.baseline_model is not None:
            run_record, sequential_notes, stops = run_upgrade_sequential(session, plan, judging, on_start, on_result)
        else:
            run_record = session.run(plan, on_start, on_result, on_rate=on_rate)
        not_stored = environment_failures([*session.not_written, session.store.unstored.error()])
        drifts = [drift.note() for drift in find_drift(session.store, run_record)]
        if judging.baseline_model is not None:
            from promptci.matrix import compare_models

            matrix = compare_models(run_record, judging.baseline_model, judging.gates)
        verdict_lines = [line for candidate in (matrix.candidates if matrix else ())
                         for line in (candidate.line(), *candidate.test_lines())]
        where = store_note(plan.project, plan.settings)  # this machine's file, though a team store is configured
        run_record = replace(run_record, baseline_model=judging.baseline_model,
                             notes=(*([where] if where else []), *drifts, *verdict_lines, *design_notes,
                                    *sequential_notes, *repeat_power_notes(plan), *judge_notes(run_record.results)))
        decision = judge_run(run_record, plan.settings.gate, judging, matrix, drifts)
        run_record = replace(run_record, decision=decision)
        if not_stored is None:  # a store that already refused is not waited on again; `show` judges it anew
            try:
                session.store.add_run_notes(run_record.run_id, run_record.notes, run_record.baseline_model,
                                            decision.to_dict(), run_record.sequential)
            except EnvironmentFailure as failure:
                not_stored = failure
    notes = [problem for problem in run_record.problems if problem not in plan.problems]  # stopped models
    return RunOutcome(run_record, decision.exit_code, notes, not_stored, plan.selection, stops)


def with_chosen_design(plan: Plan, judging: Judging) -> tuple[Judging, tuple[str, ...]]:
    """--repeat auto --detect DROP: the design seqtarget.choose_design picks for this suite, and a line saying so."""
    if judging.sequential is None:
        return judging, ()
    if judging.baseline_model is None:
        raise PromptCIError("--repeat auto samples where two sides disagree: add --baseline-model MODEL")
    if judging.detect is None:
        return judging, ()
    from promptci.seqtarget import choose_design

    choice = choose_design(judging.sequential, len({job.case.key for job in plan.jobs}), judging.detect)
    return replace(judging, sequential=choice.design), (choice.line(),)


def run_upgrade_sequential(session: Session, plan: Plan, judging: Judging, on_start: Callable[[int], None] | None,
                           on_result: Callable[[CaseResult], None] | None) -> tuple[Run, tuple[str, ...],
                                                                                      tuple[str, ...]]:
    """`run --baseline-model M --repeat auto`: the rounds of diffing.run_upgrade_sequential, and what the design
    detects for this suite."""
    from promptci.diffing import run_upgrade_sequential as run_rounds
    from promptci.verdict.diff import sequential_detectability

    assert judging.sequential is not None and judging.baseline_model is not None
    found = run_rounds(session, plan, judging.baseline_model, judging.sequential, on_start, on_result)
    cases = len({job.case.key for job in plan.jobs if job.request.model == judging.baseline_model})
    return found.run, (*found.notes, sequential_detectability(cases, judging.sequential.alpha)), found.stops


def environment_failures(failures: Sequence[PromptCIError | None]) -> PromptCIError | None:
    """What the disk or the database refused after the run, as one error (None: everything was written)."""
    found = [failure for failure in failures if failure is not None]
    if len(found) <= 1:
        return found[0] if found else None
    return EnvironmentFailure("\n".join(str(failure) for failure in found))


def empty_run(plan: Plan) -> Run:
    started = now_iso()
    return Run(run_id="", started_at=started, finished_at=started, git=current_git(plan.project.source),
               models=plan.models, results=(), summary=summarize((), broken=len(plan.problems)),
               problems=plan.problems, broken=plan.broken)


def diff(options: DiffOptions, on_start: Callable[[int], None] | None = None,
         on_result: Callable[[CaseResult], None] | None = None) -> DiffOutcome:
    """`promptci diff`: the suite at two revisions, one Session, compared case by case (see diffing.py)."""
    from promptci import diffing

    return diffing.diff(options, on_start, on_result)


def bisect(options: RunOptions, good: str, bad: str,
           on_step: Callable[[BisectStep], None] | None = None) -> BisectOutcome:
    """`promptci bisect`: the first commit after GOOD, up to BAD, where a selected case fails."""
    from promptci import diffing

    return diffing.bisect(options, good, bad, on_step)


def merge(root: Path | None, paths: Sequence[Path], allow_missing_shards: bool = False) -> RunOutcome:
    """`promptci merge`: shards' JSON results joined into one stored run, gated like a run; a missing shard is
    no verdict (exit 3) unless allowed."""
    project = discover(root)
    settings = project.settings()
    shards = read_shards(paths)
    merged = merge_runs(shards)
    decision = judge_run(merged, settings.gate, Judging(allow_missing_shards=allow_missing_shards),
                         missing_shards=missing_shards([run for _, run in shards]))
    merged = replace(merged, decision=decision)
    store_run(project, merged)
    return RunOutcome(merged, decision.exit_code)


def lint(root: Path | None) -> list[LintProblem]:
    """`promptci lint`: every offline check of loading.lint, and a warning for each llm_judge that will only
    report (calibration.report_only_judges: the rule with_judge_gates applies to a run)."""
    from promptci.calibration import report_only_judges
    from promptci.loading.lint import lint_project

    settings = discover(root).settings()
    return lint_project(settings, checks=[lambda scan: report_only_judges(scan.cases, scan.prompts, settings.root,
                                                                          settings.judges)])


def show_run(root: Path | None, run_ref: str) -> Run:
    """A stored run with the verdict it was given (older runs: judged again by today's gate settings)."""
    project = discover(root)
    found = history.show_run(root, run_ref)
    with open_store(project, readonly=True) as store:
        stored = store.stored_verdict(found.run_id)
    if stored is not None:
        try:
            return replace(found, decision=Verdict.from_dict(stored))
        except (KeyError, TypeError, ValueError):  # written by a newer promptci: judge it again
            pass
    return replace(found, decision=judge_run(found, project.settings().gate))


def dry_run(options: RunOptions) -> DryRunReport:
    """Load and render everything exactly as run() does, then count and price the requests. Nothing is
    sent and no provider is built, so a missing key or an unreachable server does not matter here."""
    prepared = build_plan(options)
    settings = prepared.settings
    models = {model: model_pricing(model, settings, options.replay) for model in prepared.models}
    calls = {id(job): ModelCall(job.request, sample=job.repeat) for job in prepared.jobs
             if not models[job.request.model][0]}
    answered = answered_calls(prepared.project, {key: (models[call.request.model][2], call)
                                                 for key, call in calls.items()}) if options.use_cache else set()
    rows: dict[tuple[str, str], DryRunRow] = {}
    for job in prepared.jobs:
        model = job.request.model
        is_free, price, _ = models[model]
        row = rows.setdefault((job.prompt.name, model), DryRunRow(job.prompt.name, model, price, is_free))
        estimate = estimate_request_cost(job.request.messages, job.request.params, model, price)
        row.max_tokens = output_limit(job.request.params)
        row.add(job.case.key, estimate, is_cached=id(job) in answered)
    judged = add_judge_estimates(prepared, rows, options.replay)
    order = {model: index for index, model in enumerate((*prepared.models, *sorted({m for _, m in rows})))}
    report = DryRunReport(rows=tuple(sorted(rows.values(), key=lambda r: (r.prompt, order[r.model]))),
                          problems=tuple(prepared.problems),
                          budget_usd=options.max_cost if options.max_cost is not None else settings.budgets.run_usd)
    notes = dry_run_notes(report, (*prepared.models, *helper_models(prepared.jobs)), settings, options.replay)
    if judged:
        notes.append(f"{judged} llm_judge request(s) are estimated with each case's expected answer standing in "
                     "for the output it will grade")
    return replace(report, notes=(*notes, *repeat_power_notes(prepared)))


def repeat_power_notes(plan: Plan) -> list[str]:
    """With --repeat K: what the design detects for this suite (stats.power_line), one (case, model) a case."""
    if plan.options.repeat < 2:
        return []
    from promptci.stats import power_line

    return [power_line(len({(job.case.key, job.request.model) for job in plan.jobs}), plan.options.repeat)]


def add_judge_estimates(plan: Plan, rows: dict[tuple[str, str], DryRunRow], replay: bool) -> int:
    """A row per prompt x judge model: each job's judge request, the expected answer standing in for the
    output. Returns how many judge requests were estimated."""
    from promptci.types import expected_text

    count = 0
    for job in plan.jobs:
        for spec in job.case.comparators:
            judge_request = getattr(spec.instance, "judge_request", None)
            if judge_request is None:
                continue
            request = judge_request(job.case, expected_text(job.case) or "")
            is_free, price, _ = model_pricing(request.model, plan.settings, replay)
            row = rows.setdefault((job.prompt.name, request.model),
                                  DryRunRow(job.prompt.name, request.model, price, is_free))
            estimate = estimate_request_cost(request.messages, request.params, request.model, price)
            row.add(job.case.key, estimate, is_cached=False)
            count += 1
    return count


def answered_calls(project: Project, calls: dict[int, tuple[dict, ModelCall]]) -> set[int]:
    """The calls (by id) that the recordings or the response cache already answer: a real run sends none."""
    recordings = load_recordings(project.recordings_dir)
    found = {ref for ref, (identity, call) in calls.items() if recordings.get(answer_key(identity, call))}
    keys = {call_key(identity, call): ref for ref, (identity, call) in calls.items() if ref not in found}
    if keys and has_store(project):
        with open_store(project, readonly=True) as store:
            found |= {keys[entry.key] for entry in store.cache_entries(keys)}
    return found


def dry_run_notes(report: DryRunReport, models: Sequence[str], settings: Settings, replay: bool) -> list[str]:
    """What a real run of the same options would run into."""
    notes: list[str] = []
    for variable, model in missing_keys(models, settings, replay).items():
        notes.append(f"{variable} is not set: a real run on {model} would stop before sending anything (exit 2)")
    if report.unknown_price_models:
        notes.append(f"no price for {', '.join(report.unknown_price_models)}: {UNKNOWN_PRICE_HINT}")
    if report.budget_usd is not None and report.cost_usd > report.budget_usd:
        notes.append(f"the estimate ({format_usd(report.cost_usd)}) passes the run budget of "
                     f"{format_usd(report.budget_usd)}: "
                     "a real run would stop sending once it would pass it, and exit 1")
    return notes


def __getattr__(name: str) -> Any:
    if name in LAZY_EXPORTS:
        import importlib

        return getattr(importlib.import_module(LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module 'promptci.api' has no attribute {name!r}")
