"""The library surface: run() and its options. The only place that wires loaders, providers,
the runner and the store together; the CLI calls this and only maps outcomes to exit codes."""

from __future__ import annotations

import asyncio
import gc
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from promptci.config import DEFAULT_KEY_ENV, Price, ProviderSettings, Settings, find_root, load_settings
from promptci.costreport import CostRow, aggregate, check_dimensions, days_over_budget, parse_since, rows_to_json
from promptci.errors import ConfigError, ExitCode, PromptCIError
from promptci.estimate import DryRunReport, DryRunRow, estimate_request_cost
from promptci.gitinfo import current_git
from promptci.loading.render import Renderer
from promptci.loading.suite import load_suite, render_suite
from promptci.pricing import UNKNOWN_PRICE_HINT, price_for
from promptci.providers.base import ProviderContext, provider_identity, split_model
from promptci.recordings import load_recordings, write_recordings
from promptci.registry import providers as provider_registry
from promptci.retrying import RetryPolicy
from promptci.runner import BudgetGuard, Endpoint, Job, RunContext, run_jobs, utc_now
from promptci.selection import compile_expression
from promptci.store import LedgerEntry, RunInfo, Store, parse_iso
from promptci.types import Case, CaseResult, Prompt, Request, Run, Suite, summarize

LOCAL_PROVIDERS = ("echo", "python", "replay")


@dataclass(frozen=True)
class RunOptions:
    root: Path | None = None
    paths: tuple[Path, ...] = ()
    models: tuple[str, ...] = ()
    keyword: str | None = None
    concurrency: int | None = None
    keep_going: bool = False
    use_cache: bool = True
    replay: bool = False
    record: bool = False
    environment: str | None = None
    max_cost: float | None = None
    repeat: int = 1


@dataclass
class RunOutcome:
    run: Run
    exit_code: ExitCode
    notes: list[str] = field(default_factory=list)


def resolve_root(root: Path | None) -> Path:
    if root is not None:
        if not root.is_dir():
            raise PromptCIError(f"--root {root}: no such directory")
        return root.resolve()
    found = find_root(Path.cwd())
    if found is None:
        raise PromptCIError(
            "no promptci project here: looked for promptci.yaml (or prompts/ and goldens/) in this folder and "
            "its parents; run `promptci init` to create one, or pass --root DIR"
        )
    return found


def select_cases(suite: Suite, keyword: str | None) -> list[Case]:
    if not keyword:
        return list(suite.cases)
    matches = compile_expression(keyword)
    return [case for case in suite.cases if matches(case)]


def models_for(prompt: Prompt, options: RunOptions, settings: Settings) -> tuple[str, ...]:
    if options.models:
        return options.models
    if prompt.model:
        return (prompt.model,)
    if settings.models:
        return settings.models
    raise ConfigError(
        f"no model for prompt {prompt.name!r}: set `models:` in promptci.yaml, `model:` in {prompt.path}, "
        "or pass -m (e.g. -m echo to test the templates offline)"
    )


def provider_config(model: str, settings: Settings) -> ProviderSettings:
    """The ProviderSettings a model string points at; an unknown provider is a usage error."""
    name, inner = split_model(model)
    if name in settings.providers:
        return settings.providers[name]
    if name == "python":
        if not inner:
            raise PromptCIError(f"model {model!r}: write python:package.module:function")
        return ProviderSettings(name="python", type="python", options={"function": inner})
    if name in LOCAL_PROVIDERS:
        return ProviderSettings(name=name, type=name)
    try:
        provider_registry.get(name)
    except PromptCIError:
        known = sorted(set(settings.providers) | set(provider_registry.names()))
        raise PromptCIError(
            f"unknown provider {name!r} in model {model!r} (known: {', '.join(known)}; "
            "name your own endpoints under `providers:` in promptci.yaml)"
        ) from None
    return ProviderSettings(name=name, type=name)


def build_endpoints(models: Sequence[str], settings: Settings, replay_only: bool) -> dict[str, Endpoint]:
    """One provider instance per named provider (per function for python:), built before any request,
    so a missing key stops the run with exit 2 before anything is spent."""
    from promptci.providers.offline import ReplayProvider

    ctx = ProviderContext(settings=settings, root=settings.root)
    instances: dict[str, object] = {}
    endpoints: dict[str, Endpoint] = {}
    for model in models:
        config = provider_config(model, settings)
        inner = split_model(model)[1]
        if config.type == "replay":
            inner_config = provider_config(inner, settings) if inner else config
            endpoints[model] = Endpoint(ReplayProvider(name="replay"), provider_identity(inner_config),
                                        inner_config.type, is_free=False, replay_only=True,
                                        price=model_price(inner, inner_config, settings))
            continue
        is_local = config.type in LOCAL_PROVIDERS
        if replay_only and not is_local:
            provider = ReplayProvider(name=config.name, is_cacheable=True)
        else:
            instance_key = model if config.type == "python" else config.name
            if instance_key not in instances:
                instances[instance_key] = provider_registry.get(config.type)(config, ctx)
            provider = instances[instance_key]
        endpoints[model] = Endpoint(provider, provider_identity(config), config.type, is_free=is_local,
                                    replay_only=replay_only and not is_local,
                                    price=None if is_local else model_price(model, config, settings))
    return endpoints


def model_price(model: str, config: ProviderSettings, settings: Settings) -> Price | None:
    """`pricing:` first; the built-in list prices only for a provider's official endpoint. A model behind a
    base_url of your own (vLLM, Ollama, a gateway) is not billed at list price: its price is unknown until
    `pricing:` names it."""
    return price_for(model, settings.pricing, None if config.base_url else config.type)


def build_jobs(cases: Sequence[Case], suite: Suite, rendered: dict, options: RunOptions,
               settings: Settings) -> tuple[list, list[str]]:

    jobs: list[Job] = []
    models: list[str] = []
    for case in cases:
        if case.key not in rendered:
            continue
        prompt = suite.prompts[case.prompt]
        for model in models_for(prompt, options, settings):
            if model not in models:
                models.append(model)
            request = Request(model=model, messages=rendered[case.key], params=dict(prompt.params),
                              output=prompt.output)
            jobs.extend(Job(case, prompt, request, repeat) for repeat in range(options.repeat))
    return jobs, models


@dataclass
class PreparedRun:
    """A run loaded and rendered up to its jobs, before any provider is built: what run() and
    dry_run() share."""

    settings: Settings
    jobs: list[Job]
    models: list[str]
    problems: list[str]


def prepare_run(options: RunOptions) -> PreparedRun:
    root = resolve_root(options.root)
    settings = load_settings(root, options.environment)
    suite = load_suite(settings, options.paths, keep_going=options.keep_going)
    cases = select_cases(suite, options.keyword)
    rendered, render_problems = render_suite(replace(suite, cases=tuple(cases)), Renderer(root), options.keep_going)
    problems = list(suite.problems) + [str(p) for p in render_problems]
    jobs, models = build_jobs(cases, suite, rendered, options, settings)
    if not jobs:
        raise PromptCIError(f"no case matches -k {options.keyword!r}" if options.keyword else "no case to run")
    return PreparedRun(settings, jobs, models, problems)


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
    started_at = utc_now()
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
        store.finish_run(run_id, utc_now(), summary, interrupted)
    finally:
        store.close()
    notes = [f"{model}: {why}" for model, why in ctx.stopped_models.items()]
    run_record = Run(run_id=run_id, started_at=started_at, finished_at=utc_now(), git=git, models=tuple(models),
                     results=tuple(results), summary=summary, interrupted=interrupted,
                     problems=tuple(problems + notes))
    return RunOutcome(run_record, exit_code_for(run_record, settings), notes)


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
        "paths": [str(p) for p in options.paths],
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


# The read-only commands: run --dry-run, cost, runs and show.

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


def model_pricing(model: str, settings: Settings, replay: bool) -> tuple[bool, Price | None, dict[str, Any]]:
    """(is_free, price, provider identity) of a model, from settings alone: no provider is built."""
    config = provider_config(model, settings)
    is_free = replay or config.type in LOCAL_PROVIDERS
    price = None if is_free else model_price(model, config, settings)
    return is_free, price, provider_identity(config)


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
        notes.append(f"the estimate (${report.cost_usd:.4f}) passes the run budget of ${report.budget_usd:.2f}: "
                     "a real run would stop sending once it would pass it, and exit 1")
    return notes


def missing_keys(models: Sequence[str], settings: Settings, replay: bool) -> dict[str, str]:
    """Key variable -> the first model that needs it, for keys not set in the environment."""
    missing: dict[str, str] = {}
    for model in [] if replay else models:
        config = provider_config(model, settings)
        variable = config.api_key_env or DEFAULT_KEY_ENV.get(config.type)
        if variable and not os.environ.get(variable) and config.type not in LOCAL_PROVIDERS:
            missing.setdefault(variable, model)
    return missing


@dataclass(frozen=True)
class CostReport:
    """The ledger from `since` grouped by `dimensions`, and the daily spend against budgets.daily_usd."""

    since: datetime
    dimensions: tuple[str, ...]
    rows: tuple[CostRow, ...]
    total: CostRow
    unknown_price_models: tuple[str, ...]
    daily_usd: float | None
    daily_spend: tuple[tuple[str, float], ...]  # (UTC day, known spend), whole days from since's day

    @property
    def is_empty(self) -> bool:
        return self.total.requests == 0

    @property
    def days_over(self) -> list[tuple[str, float]]:
        limit = self.daily_usd
        return [] if limit is None else [(day, spent) for day, spent in self.daily_spend if spent > limit]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat().replace("+00:00", "Z"), "by": list(self.dimensions),
            "rows": rows_to_json(self.rows), "total": rows_to_json([self.total])[0],
            "unknown_price_models": list(self.unknown_price_models), "daily_usd": self.daily_usd,
            "daily_spend": [{"day": day, "cost_usd": spent} for day, spent in self.daily_spend],
            "days_over_budget": [{"day": day, "cost_usd": spent} for day, spent in self.days_over],
        }


def parse_dimensions(by: Sequence[str]) -> tuple[str, ...]:
    """`--by day --by model,run` -> ("day", "model", "run"); nothing given -> ("day",)."""
    names = [name.strip() for item in by for name in item.split(",") if name.strip()]
    check_dimensions(names)
    return tuple(dict.fromkeys(names)) or ("day",)


def cost_report(root: Path | None, by: Sequence[str] = ("day",), since: str = "7d",
                now: datetime | None = None) -> CostReport:
    settings = load_settings(resolve_root(root))
    dimensions = parse_dimensions(by)
    start = parse_since(since, now or datetime.now(timezone.utc))
    day_start = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    with_whole_days = read_ledger(settings, day_start.isoformat())
    entries = [e for e in with_whole_days if parse_iso(e.at) >= start]
    unknown = sorted({e.model for e in entries if e.status == "ok" and e.cost_usd is None})
    return CostReport(
        since=start, dimensions=dimensions, rows=tuple(aggregate(entries, dimensions)),
        total=aggregate(entries, [])[0], unknown_price_models=tuple(unknown), daily_usd=settings.budgets.daily_usd,
        daily_spend=tuple(days_over_budget(with_whole_days, 0.0)),
    )


def read_ledger(settings: Settings, since: str) -> list[LedgerEntry]:
    if not settings.db_path.is_file():  # nothing recorded yet: do not create the database just to read it
        return []
    with Store.open(settings.db_path) as store:
        return store.ledger(since=since)


def list_runs(root: Path | None, limit: int = 20) -> list[RunInfo]:
    settings = load_settings(resolve_root(root))
    if not settings.db_path.is_file():
        return []
    with Store.open(settings.db_path) as store:
        return store.list_runs(limit)


def show_run(root: Path | None, run_ref: str) -> Run:
    """A stored run by id, unique id prefix, or `last`; an unknown one is a usage error naming the latest."""
    settings = load_settings(resolve_root(root))
    if not settings.db_path.is_file():
        raise PromptCIError(f"no runs stored yet (no {settings.db_path.relative_to(settings.root)}): "
                            "run `promptci run` first")
    with Store.open(settings.db_path) as store:
        found = store.last_run() if run_ref == "last" else store.load_run(run_ref)
        latest = store.list_runs(5) if found is None else []
    if found is not None:
        return found
    if not latest:
        raise PromptCIError("no runs stored yet: run `promptci run` first")
    listed = ", ".join(f"{info.run_id} ({info.started_at[:16].replace('T', ' ')})" for info in latest)
    raise PromptCIError(f"no stored run {run_ref!r}; the latest are: {listed} (`promptci runs` lists more)")


def run_info_to_dict(info: RunInfo) -> dict[str, Any]:
    from promptci.reporting.jsonreport import summary_to_dict

    return {
        "run_id": info.run_id, "started_at": info.started_at, "finished_at": info.finished_at,
        "git": {"commit": info.commit, "dirty": info.dirty}, "models": list(info.models),
        "summary": summary_to_dict(info.summary), "interrupted": info.interrupted,
    }
