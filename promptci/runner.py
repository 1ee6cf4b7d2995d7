"""Runs jobs (case x model x repeat) concurrently: cache, retries, budget, scoring, and a store write
as each result finishes, so a crash or Ctrl-C loses nothing that finished."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from promptci.config import Price
from promptci.errors import ProviderError, ReplayMiss, Timeout
from promptci.estimate import estimate_request_cost
from promptci.pricing import cost_usd
from promptci.providers.base import Provider, split_model
from promptci.recordings import RecordingEntry
from promptci.registry import build_comparator
from promptci.retrying import RetryPolicy, call_with_retries
from promptci.store import LedgerEntry, Store, cache_identity
from promptci.types import (
    Case,
    CaseResult,
    Comparator,
    ComparatorSpec,
    Completion,
    Prompt,
    Request,
    Score,
    canonical_json,
    expected_text,
    now_iso,
)


@dataclass(frozen=True)
class Job:
    case: Case
    prompt: Prompt
    request: Request
    repeat: int = 0


@dataclass(frozen=True)
class Endpoint:
    """A provider instance and what identifies its answers in the cache."""

    provider: Provider
    identity: Mapping[str, Any]
    provider_type: str
    is_free: bool  # local providers (echo, python) cost nothing
    replay_only: bool = False  # answer from the cache and recordings only; a miss is an error
    price: Price | None = None  # None: unknown (or free, see is_free)


@dataclass
class BudgetGuard:
    """Stops sending once spent + in-flight estimates would pass limit_usd."""

    limit_usd: float
    spent_usd: float = 0.0
    in_flight_usd: float = 0.0

    def try_reserve(self, estimate_usd: float) -> bool:
        if self.spent_usd + self.in_flight_usd + estimate_usd > self.limit_usd:
            return False
        self.in_flight_usd += estimate_usd
        return True

    def settle(self, estimate_usd: float, actual_usd: float | None) -> None:
        self.in_flight_usd -= estimate_usd
        self.spent_usd += actual_usd if actual_usd is not None else estimate_usd


@dataclass
class RunContext:
    """Everything a run's jobs share."""

    run_id: str
    root: Path
    store: Store
    endpoints: Mapping[str, Endpoint]  # by model string as -m writes it
    retry: RetryPolicy
    timeout_s: float
    git_commit: str | None = None
    use_cache: bool = True
    record: bool = False
    recordings: Mapping[str, Completion] = field(default_factory=dict)
    budget: BudgetGuard | None = None
    on_result: Callable[[CaseResult], None] | None = None
    stopped_models: dict[str, str] = field(default_factory=dict)  # model -> why its cases stopped
    first_answers: dict[str, asyncio.Event] = field(default_factory=dict)  # model -> set once its first try ended
    recorded: dict[str, list[RecordingEntry]] = field(default_factory=dict)  # by prompt, for --record
    # ledger rows of cache hits, by id(job): stored in the commit of their job's result, not one commit each
    pending_ledger: dict[int, list[LedgerEntry]] = field(default_factory=dict)
    _comparators: dict[str, Comparator] = field(default_factory=dict)

    def comparator(self, spec: ComparatorSpec) -> Comparator:
        if spec.instance is not None:  # built once at load
            return spec.instance
        memo = f"{spec.type}:{canonical_json(dict(spec.options))}"
        if memo not in self._comparators:
            self._comparators[memo] = build_comparator(spec.type, spec.options, self.root)
        return self._comparators[memo]


async def run_jobs(ctx: RunContext, jobs: Sequence[Job], concurrency: int,
                   results: list[CaseResult | None]) -> None:
    """Run every job with at most `concurrency` in flight, filling results[i] for jobs[i] as each finishes,
    so whoever holds `results` keeps what finished even when the run is interrupted."""
    queue: Iterator[int] = iter(range(len(jobs)))

    async def worker() -> None:
        for index in queue:
            result = await run_job(ctx, jobs[index])
            ctx.store.add_result(ctx.run_id, result, ctx.pending_ledger.pop(id(jobs[index]), ()))
            results[index] = result
            if ctx.on_result is not None:
                ctx.on_result(result)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, len(jobs))))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()


async def run_job(ctx: RunContext, job: Job) -> CaseResult:
    model = job.request.model
    if model in ctx.stopped_models:
        return error_result(job, ctx.stopped_models[model], attempts=0)
    endpoint = ctx.endpoints[model]
    completion = await obtain_completion(ctx, job, endpoint)
    if isinstance(completion, CaseResult):
        return completion
    return await score_job(ctx, job, completion)


async def obtain_completion(ctx: RunContext, job: Job, endpoint: Endpoint) -> Completion | CaseResult:
    """From the cache or recordings when possible, else from the provider; a failure becomes a result."""
    key = cache_key(endpoint, job.request)
    cached = lookup_cached(ctx, endpoint, key)
    if cached is not None:
        saved = price_completion(endpoint, cached)
        hit = ledger_entry(ctx, job, endpoint, cached, cost=0.0, saved=saved, status="cached")
        ctx.pending_ledger.setdefault(id(job), []).append(hit)
        remember_response(ctx, job, endpoint, key, cached)
        return replace(cached, cost_usd=saved)
    if endpoint.replay_only:
        return error_result(job, f"--replay: no recorded response for case {job.case.id!r} "
                                 f"({job.case.location}) on {job.request.model}; run once with --record")
    estimate = estimate_cost(job.request, endpoint)
    if ctx.budget is not None and not endpoint.is_free and not ctx.budget.try_reserve(estimate or 0.0):
        from promptci.reporting.stats import format_usd  # the one money formatter (pure, imports only types)

        limit = format_usd(ctx.budget.limit_usd)
        return skipped_result(job, f"budget: sending it would pass the run budget of {limit}")
    first = await take_turn(ctx, job.request.model, endpoint)
    try:
        if job.request.model in ctx.stopped_models:  # the model's first request found a bad key or model
            raise ModelStopped(ctx.stopped_models[job.request.model])
        completion = await call_with_retries(lambda: attempt(ctx, endpoint, job.request, first), ctx.retry)
    except ProviderError as exc:
        if ctx.budget is not None and not endpoint.is_free:
            ctx.budget.settle(estimate or 0.0, 0.0)
        if isinstance(exc, ModelStopped):
            return error_result(job, exc.message, attempts=0)
        return provider_failure(ctx, job, endpoint, exc)
    finally:
        if first is not None:
            first.set()
    cost = price_completion(endpoint, completion)
    if ctx.budget is not None and not endpoint.is_free:
        ctx.budget.settle(estimate or 0.0, cost)
    completion = replace(completion, cost_usd=cost)
    billed = ledger_entry(ctx, job, endpoint, completion, cost=cost, saved=None, status="ok")
    if endpoint.provider.is_cacheable:  # the answer and its ledger row in one commit, at once
        ctx.store.cache_put(key, job.request, completion, provider_identity=endpoint.identity, ledger=billed)
        remember_response(ctx, job, endpoint, key, completion)
    else:
        ctx.store.record_request(billed)
    return completion


def remember_response(ctx: RunContext, job: Job, endpoint: Endpoint, key: str, completion: Completion) -> None:
    if ctx.record:
        identity = cache_identity(endpoint.identity, cache_request(job.request))
        ctx.recorded.setdefault(job.prompt.name, []).append(RecordingEntry(key, identity, completion))


class ModelStopped(ProviderError):
    """Not sent: an earlier request showed that every request to this model would fail the same way."""

    kind = "stopped"


async def take_turn(ctx: RunContext, model: str, endpoint: Endpoint) -> asyncio.Event | None:
    """The first request to a paid model goes alone and the others wait until its first try ends, so a bad
    key or an unknown model costs one request, not one per slot in flight. Returns the event the first
    request sets; None for the others."""
    if endpoint.is_free:
        return None
    answered = ctx.first_answers.get(model)
    if answered is None:
        ctx.first_answers[model] = asyncio.Event()
        return ctx.first_answers[model]
    await answered.wait()
    return None


async def attempt(ctx: RunContext, endpoint: Endpoint, request: Request,
                  first: asyncio.Event | None = None) -> Completion:
    try:
        return await within(ctx.timeout_s, endpoint.provider.complete(request))
    except asyncio.TimeoutError:
        raise Timeout(f"no answer from {request.model} within timeout_s={ctx.timeout_s:g}") from None
    except ProviderError as exc:
        if exc.stops_model:  # before the waiting requests wake up
            stop_model(ctx, request.model, exc)
        raise
    finally:
        if first is not None:
            first.set()


async def within(seconds: float, awaitable: Awaitable[Completion]) -> Completion:
    """The whole request, not just each read as the SDKs time it, so a slow drip cannot hang a run."""
    if sys.version_info >= (3, 11):  # asyncio.timeout runs in this task: no extra task per request
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout=seconds)


def stop_model(ctx: RunContext, model: str, exc: ProviderError) -> None:
    ctx.stopped_models.setdefault(model, f"{exc.message} (remaining cases of this model not sent)")


def cache_key(endpoint: Endpoint, request: Request) -> str:
    return Store.cache_key(endpoint.identity, cache_request(request))


def cache_request(request: Request) -> Request:
    """`replay:openai:gpt-4o-mini` looks up what `openai:gpt-4o-mini` recorded."""
    provider_name, inner = split_model(request.model)
    return replace(request, model=inner) if provider_name == "replay" else request


def lookup_cached(ctx: RunContext, endpoint: Endpoint, key: str) -> Completion | None:
    if not (endpoint.provider.is_cacheable or endpoint.replay_only):
        return None
    if not (ctx.use_cache or endpoint.replay_only):
        return None
    hit = ctx.store.cache_get(key)
    if hit is None and key in ctx.recordings:
        hit = replace(ctx.recordings[key], cached=True)
    return hit


def provider_failure(ctx: RunContext, job: Job, endpoint: Endpoint, exc: ProviderError) -> CaseResult:
    attempts = exc.attempts
    if exc.stops_model:
        stop_model(ctx, job.request.model, exc)
    if not isinstance(exc, ReplayMiss):
        failed = Completion(text=None, error=exc.info(), attempts=attempts)
        ctx.store.record_request(ledger_entry(ctx, job, endpoint, failed, cost=None, saved=None, status="error"))
    status = f" (HTTP {exc.status})" if exc.status else ""
    retried = f" after {attempts} attempts" if attempts > 1 else ""
    return error_result(job, f"{exc.kind}{status}{retried}: {exc.message}", attempts=attempts)


def estimate_cost(request: Request, endpoint: Endpoint) -> float | None:
    """Before sending, the same estimate as --dry-run: input tokens counted, max_tokens out."""
    if endpoint.is_free:
        return 0.0
    return estimate_request_cost(request.messages, request.params, request.model, endpoint.price).cost_usd


def price_completion(endpoint: Endpoint, completion: Completion) -> float | None:
    if endpoint.is_free:
        return 0.0
    return cost_usd(completion.usage, endpoint.price)


def ledger_entry(ctx: RunContext, job: Job, endpoint: Endpoint, completion: Completion, *,
                 cost: float | None, saved: float | None, status: str) -> LedgerEntry:
    usage = completion.usage
    return LedgerEntry(
        at=now_iso(), run_id=ctx.run_id, git_commit=ctx.git_commit, prompt=job.prompt.name,
        case_id=job.case.id, model=job.request.model, provider=endpoint.provider_type,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        cached_input_tokens=usage.cached_input_tokens if usage else None,
        cost_usd=cost, saved_usd=saved,
        latency_ms=None if status == "cached" else completion.latency_ms,
        ttft_ms=None if status == "cached" else completion.ttft_ms,
        status=status, attempts=completion.attempts, kind="case",
        error_kind=completion.error.kind if completion.error else None,
    )


async def score_job(ctx: RunContext, job: Job, completion: Completion) -> CaseResult:
    scores: list[Score] = []
    if job.prompt.output == "json":
        scores.extend(json_output_score(completion.text or ""))
    for spec in job.case.comparators:
        scores.append(await run_comparator(ctx, spec, job.case, completion))
    passed = all(s.passed for s in scores)
    return base_result(job, "passed" if passed else "failed", completion, tuple(scores))


def json_output_score(text: str) -> list[Score]:
    try:
        json.loads(text)
    except ValueError as exc:
        return [Score("output:json", 0.0, False, f"the prompt says output: json but the output is not JSON: {exc}")]
    return []


async def run_comparator(ctx: RunContext, spec: ComparatorSpec, case: Case, completion: Completion) -> Score:
    try:
        return await ctx.comparator(spec)(case, completion)
    except Exception as exc:  # a comparator bug must not lose the run
        return Score(spec.type, 0.0, False, f"comparator raised {type(exc).__name__}: {exc}")


def base_result(job: Job, status: str, completion: Completion | None, scores: tuple[Score, ...] = (),
                error: str | None = None, skip_reason: str | None = None, attempts: int = 0) -> CaseResult:
    c = completion
    usage = c.usage if c else None
    return CaseResult(
        prompt=job.prompt.name, case_id=job.case.id, file=job.case.location.file, line=job.case.location.line,
        model=job.request.model, status=status, repeat=job.repeat,  # type: ignore[arg-type]
        output=c.text if c else None, scores=scores,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        cached_input_tokens=usage.cached_input_tokens if usage else None,
        cost_usd=(0.0 if c.cached else c.cost_usd) if c else None,
        saved_usd=c.cost_usd if c and c.cached else None,
        latency_ms=c.latency_ms if c else None, ttft_ms=c.ttft_ms if c else None,
        cached=c.cached if c else False, resolved_model=c.resolved_model if c else None,
        error=error, attempts=c.attempts if c else attempts, tags=job.case.tags, skip_reason=skip_reason,
        expected=expected_text(job.case),
    )


def error_result(job: Job, message: str, attempts: int = 1) -> CaseResult:
    return base_result(job, "error", None, error=message, attempts=attempts)


def skipped_result(job: Job, reason: str) -> CaseResult:
    return base_result(job, "skipped", None, skip_reason=reason)
