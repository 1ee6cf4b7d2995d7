"""The library surface: run(), dry_run(), cost_report(), list_runs(), show_run(). The only place that
wires loaders, providers, the runner and the store together; the CLI calls this and maps outcomes to
exit codes."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from promptci.config import Settings, load_settings
from promptci.errors import ExitCode, PromptCIError
from promptci.estimate import DryRunReport, DryRunRow, estimate_request_cost
from promptci.gitinfo import current_git
from promptci.history import CostReport, cost_report, list_runs, parse_dimensions, run_info_to_dict, show_run
from promptci.merge import config_fingerprint, merge_runs, read_shards, store_run
from promptci.planning import (
    LOCAL_PROVIDERS,
    PreparedRun,
    RunOptions,
    build_endpoints,
    missing_keys,
    model_pricing,
    prepare_run,
    resolve_root,
)
from promptci.pricing import UNKNOWN_PRICE_HINT
from promptci.recordings import load_recordings, write_recordings
from promptci.reporting.stats import format_usd
from promptci.retrying import RetryPolicy
from promptci.runner import BudgetGuard, Endpoint, RunContext, run_jobs
from promptci.store import Store
from promptci.types import CaseResult, Run, now_iso, summarize

__all__ = [
    "LOCAL_PROVIDERS", "CostReport", "DryRunReport", "PreparedRun", "RunOptions", "RunOutcome", "cost_report",
    "dry_run", "list_runs", "merge", "parse_dimensions", "prepare_run", "resolve_root", "run", "run_info_to_dict",
    "show_run",
]


@dataclass
class RunOutcome:
    run: Run
    exit_code: ExitCode
    notes: list[str] = field(default_factory=list)


def run(options: RunOptions, on_start: Callable[[int], None] | None = None,
        on_result: Callable[[CaseResult], None] | None = None) -> RunOutcome:
    prepared = prepare_run(options)
    settings = prepared.settings
    endpoints = build_endpoints(prepared.models, settings, options.replay)
    return execute(settings, options, prepared.jobs, prepared.models, endpoints, prepared.problems,
                   on_start, on_result)


def execute(settings: Settings, options: RunOptions, jobs: list, models: list[str], endpoints: dict,
            problems: list[str], on_start: Callable[[int], None] | None,
            on_result: Callable[[CaseResult], None] | None) -> RunOutcome:

    git = current_git(settings.root)
    run_id = uuid.uuid4().hex[:12]
    started_at = now_iso()
    budget_usd = options.max_cost if options.max_cost is not None else settings.budgets.run_usd
    if budget_usd is not None:
        require_prices(endpoints, settings)
    store = Store.open(settings.db_path)
    try:
        store.start_run(run_id, started_at, git, models, options_record(options))
        ctx = RunContext(
            run_id=run_id, root=settings.root, store=store, endpoints=endpoints,
            retry=RetryPolicy(retries=settings.retries), timeout_s=settings.timeout_s, git_commit=git.commit,
            use_cache=options.use_cache, record=options.record, recordings=load_recordings(settings.recordings_dir),
            budget=BudgetGuard(budget_usd) if budget_usd is not None else None, on_result=on_result,
        )
        if on_start is not None:
            on_start(len(jobs))
        results, interrupted = run_to_end(ctx, jobs, options.concurrency or settings.concurrency)
        if options.record:
            write_run_recordings(ctx, settings)
        summary = summarize(results)
        store.finish_run(run_id, now_iso(), summary, interrupted)
    finally:
        store.close()
    notes = [f"{model}: {why}" for model, why in ctx.stopped_models.items()]
    run_record = Run(run_id=run_id, started_at=started_at, finished_at=now_iso(), git=git, models=tuple(models),
                     results=tuple(results), summary=summary, interrupted=interrupted,
                     problems=tuple(problems + notes), config_hash=config_fingerprint(settings, options),
                     shard=f"{options.shard[0]}/{options.shard[1]}" if options.shard else None)
    return RunOutcome(run_record, exit_code_for(run_record, settings), notes)


def merge(root: Path | None, paths: Sequence[Path]) -> RunOutcome:
    """`promptci merge`: shards' JSON results joined into one stored run, gated like a run."""
    settings = load_settings(resolve_root(root))
    merged = merge_runs(read_shards(paths))
    store_run(settings, merged)
    return RunOutcome(merged, exit_code_for(merged, settings))


def require_prices(endpoints: dict[str, Endpoint], settings: Settings) -> None:
    """A budget cannot be kept for a model whose price is unknown: refuse before sending anything."""
    unpriced = [model for model, endpoint in endpoints.items()
                if not (endpoint.is_free or endpoint.replay_only) and endpoint.price is None]
    if unpriced:
        raise PromptCIError(f"a run budget is set but the price of {', '.join(unpriced)} is unknown, so the budget "
                            f"cannot be kept; {UNKNOWN_PRICE_HINT}")


def run_to_end(ctx, jobs: list, concurrency: int) -> tuple[list[CaseResult], bool]:
    """Runs the jobs; Ctrl-C keeps what finished (each result is already stored as it finished)."""
    slots: list[CaseResult | None] = [None] * len(jobs)

    async def main() -> None:
        try:
            await run_jobs(ctx, jobs, concurrency, slots)
        finally:
            await close_endpoints(ctx.endpoints.values())

    interrupted = False
    # What is alive now (modules, the suite, the jobs) outlives the request loop: frozen, it is not walked
    # again by each of the loop's garbage collections. Unfrozen after, so a library caller leaks nothing.
    gc.freeze()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        interrupted = True
    finally:
        gc.unfreeze()
    return [r for r in slots if r is not None], interrupted


async def close_endpoints(endpoints) -> None:
    seen: set[int] = set()
    for endpoint in endpoints:
        if id(endpoint.provider) not in seen:
            seen.add(id(endpoint.provider))
            await endpoint.provider.aclose()


def write_run_recordings(ctx, settings: Settings) -> None:
    for prompt, entries in sorted(ctx.recorded.items()):
        write_recordings(settings.recordings_dir, prompt, entries)


def options_record(options: RunOptions) -> dict:
    return {
        "models": list(options.models), "keyword": options.keyword, "concurrency": options.concurrency,
        "use_cache": options.use_cache, "replay": options.replay, "record": options.record,
        "environment": options.environment, "max_cost": options.max_cost, "repeat": options.repeat,
        "paths": [str(p) for p in options.paths], "shard": list(options.shard) if options.shard else None,
    }


def exit_code_for(run_record: Run, settings: Settings) -> ExitCode:
    if run_record.interrupted:
        return ExitCode.INTERRUPTED
    if any(r.status == "skipped" and (r.skip_reason or "").startswith("budget") for r in run_record.results):
        return ExitCode.REGRESSION
    if failing_models(run_record, settings.gate.min_pass_rate):
        return ExitCode.REGRESSION
    if run_record.summary.errors:
        return ExitCode.NO_VERDICT
    return ExitCode.OK


def failing_models(run_record: Run, min_pass_rate: float) -> list[str]:
    """Models whose pass rate over scored cases falls under the gate."""
    failing = []
    for model in run_record.models:
        scored = [r for r in run_record.results if r.model == model and r.status in ("passed", "failed")]
        if scored and sum(r.status == "passed" for r in scored) / len(scored) < min_pass_rate:
            failing.append(model)
    return failing


def dry_run(options: RunOptions) -> DryRunReport:
    """Load and render everything exactly as run() does, then count and price the requests. Nothing is
    sent and no provider is built, so a missing key or an unreachable server does not matter here."""
    prepared = prepare_run(options)
    settings = prepared.settings
    models = {model: model_pricing(model, settings, options.replay) for model in prepared.models}
    keys = {id(job): Store.cache_key(models[job.request.model][2], job.request) for job in prepared.jobs
            if not models[job.request.model][0]}
    answered = cached_keys(settings, set(keys.values())) if options.use_cache else set()
    rows: dict[tuple[str, str], DryRunRow] = {}
    for job in prepared.jobs:
        model = job.request.model
        is_free, price, _ = models[model]
        row = rows.setdefault((job.prompt.name, model), DryRunRow(job.prompt.name, model, price, is_free))
        estimate = estimate_request_cost(job.request.messages, job.request.params, model, price)
        row.add(job.case.key, estimate, is_cached=keys.get(id(job)) in answered)
    order = {model: index for index, model in enumerate(prepared.models)}
    report = DryRunReport(rows=tuple(sorted(rows.values(), key=lambda r: (r.prompt, order[r.model]))),
                          problems=tuple(prepared.problems),
                          budget_usd=options.max_cost if options.max_cost is not None else settings.budgets.run_usd)
    notes = dry_run_notes(report, prepared.models, settings, options.replay)
    judged = sum(any(spec.type == "llm_judge" for spec in job.case.comparators) for job in prepared.jobs)
    if judged:
        notes.append(f"{judged} request(s) are also graded by an llm_judge model: those judge requests are not "
                     "in this estimate")
    return replace(report, notes=tuple(notes))


def cached_keys(settings: Settings, keys: set[str]) -> set[str]:
    """The keys that the response cache or the recordings already answer (a real run sends none of them)."""
    found = keys & set(load_recordings(settings.recordings_dir))
    if keys - found and settings.db_path.is_file():
        with Store.open(settings.db_path) as store:
            found |= {entry.key for entry in store.cache_entries(keys - found)}
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
