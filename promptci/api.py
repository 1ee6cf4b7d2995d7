"""The library surface: run() and its options. The only place that wires loaders, providers,
the runner and the store together; the CLI calls this and only maps outcomes to exit codes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from promptci.config import ProviderSettings, Settings, find_root, load_settings
from promptci.errors import ConfigError, ExitCode, PromptCIError
from promptci.gitinfo import current_git
from promptci.loading.render import Renderer
from promptci.loading.suite import load_suite, render_suite
from promptci.providers.base import ProviderContext, provider_identity, split_model
from promptci.recordings import load_recordings, write_recordings
from promptci.registry import providers as provider_registry
from promptci.retrying import RetryPolicy
from promptci.runner import BudgetGuard, Endpoint, Job, RunContext, run_jobs, utc_now
from promptci.selection import compile_expression
from promptci.store import Store
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
                                        inner_config.type, is_free=False, replay_only=True)
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
                                    replay_only=replay_only and not is_local)
    return endpoints


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
    store = Store.open(settings.db_path)
    try:
        store.start_run(run_id, started_at, git, models, options_record(options))
        ctx = RunContext(
            run_id=run_id, root=settings.root, store=store, endpoints=endpoints, pricing=settings.pricing,
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


def run_to_end(ctx, jobs: list, concurrency: int) -> tuple[list[CaseResult], bool]:
    """Runs the jobs; Ctrl-C keeps what finished (each result is already stored as it finished)."""
    slots: list[CaseResult | None] = [None] * len(jobs)

    async def main() -> None:
        try:
            await run_jobs(ctx, jobs, concurrency, slots)
        finally:
            await close_endpoints(ctx.endpoints.values())

    interrupted = False
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        interrupted = True
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
