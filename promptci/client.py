"""The one way to call a model. A ModelCall (a Request, its kind, its sample index and who it is for) goes
through the cache, the recordings, the budget, the in-flight limit, the retry policy and the per-model
canary; what it cost is priced and written to the ledger. Case requests, judge and embedding requests all
come here, so none of them can skip a step."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from promptci import retrying
from promptci.config import Price
from promptci.cost.budget import BudgetGuard
from promptci.cost.estimate import RequestEstimate, estimate_request_cost, worst_case_cost
from promptci.cost.pricing import cost_usd
from promptci.cost.totals import format_usd
from promptci.errors import BadRequest, PromptCIError, ProviderError, ReplayMiss, Timeout
from promptci.providers.base import Provider, split_model
from promptci.ratelimit import SLOW_START_WINDOW, AdaptiveLimiter, LimiterPool, LimitPolicy, unmet_limit
from promptci.recordings import RecordingEntry, Recordings, recording_key
from promptci.retrying import RetryPolicy, call_with_retries
from promptci.store import LedgerEntry, Store, cache_identity
from promptci.types import Completion, Request, content_hash, now_iso

CallKind = Literal["case", "judge", "embedding"]


@dataclass(frozen=True)
class Attribution:
    """Whom a call is for, as the ledger and error messages name it."""

    run_id: str | None = None
    git_commit: str | None = None
    prompt: str | None = None
    case_id: str | None = None
    where: str = ""  # "goldens/x.yaml:12", for messages


@dataclass(frozen=True)
class ModelCall:
    request: Request
    kind: CallKind = "case"
    sample: int = 0  # the repeat k of --repeat K: each sample is a fresh answer
    attribution: Attribution = field(default_factory=Attribution)


@dataclass(frozen=True)
class Endpoint:
    """A provider instance and what identifies its answers in the cache."""

    provider: Provider
    identity: Mapping[str, Any]
    provider_type: str
    is_free: bool  # local providers (echo, python) cost nothing
    replay_only: bool = False  # answer from the cache and recordings only; a miss is an error
    price: Price | None = None  # None: unknown (or free, see is_free)


@dataclass(frozen=True)
class Answer:
    """A call's outcome: a completion, or why there is none (`skipped` when the budget held it back).
    `ledger` holds rows the caller stores with its result (a cache hit's row), in one commit."""

    completion: Completion | None
    problem: str | None = None
    skipped: bool = False
    attempts: int = 0
    ledger: tuple[LedgerEntry, ...] = ()


@dataclass(frozen=True)
class RateTally:
    """What the limits did so far: attempts sent, refused (429/529) and the seconds spent waiting on limits."""

    sent: int = 0
    refused: int = 0
    waited_s: float = 0.0

    def since(self, earlier: RateTally) -> RateTally:
        return RateTally(self.sent - earlier.sent, self.refused - earlier.refused, self.waited_s - earlier.waited_s)


@dataclass(frozen=True)
class RateStatus:
    """For the progress line: whether the limits hold the run back now, and the pace of requests sent."""

    is_limited: bool
    requests_per_s: float | None  # None: not measured yet


class CallLimits:
    """The session's limits on sending: an adaptive limiter per endpoint and model (promptci.ratelimit), each
    at most -j in flight, and -j over all models together. Attempts hold a place only while they are sent."""

    def __init__(self, concurrency: int, policy_for: Callable[[str], LimitPolicy] | None = None) -> None:
        self.concurrency = max(1, concurrency)
        self.pool = LimiterPool(policy_for or (lambda _: LimitPolicy(max_concurrency=self.concurrency,
                                                                     initial_window=SLOW_START_WINDOW)),
                                make=session_limiter)
        self.in_flight = asyncio.Semaphore(self.concurrency)
        self.sent = 0
        self._mark = (retrying.default_clock(), 0)  # (when, sent then): the pace is measured from here
        self._pace: float | None = None

    def limiter(self, model: str) -> AdaptiveLimiter:
        return self.pool.limiter(split_model(model)[0], model)

    def require_satisfiable(self, requests: Iterable[tuple[Request, str]], endpoints: Mapping[str, Endpoint]) -> None:
        """Before anything is sent: a limit no request could ever start under (rpm below one, tpm below one
        request's estimate) is a usage error naming the provider, the model, the setting and where the
        request comes from, rather than a wait past every deadline."""
        for request, where in requests:
            endpoint = endpoints[request.model]
            provider = split_model(request.model)[0]
            policy = self.pool.policy(provider)
            if endpoint.is_free or (policy.rpm is None and policy.tpm is None):
                continue
            expected = estimate_request(request, endpoint)
            tokens = expected.input_tokens + expected.output_tokens if expected is not None else 0
            unmet = unmet_limit(policy, tokens)
            if unmet is not None:
                raise PromptCIError(f"promptci.yaml: providers.{provider}.{unmet}: no request to {request.model} "
                                    f"could ever start ({where})")

    def tally(self) -> RateTally:
        stats = self.pool.stats().values()
        return RateTally(self.sent, sum(s.limited for s in stats), sum(s.waited_s for s in stats))

    def status(self) -> RateStatus:
        """Limited: a Retry-After holds every start, or 429s shrank a window below -j. The pace is measured
        over at least a second."""
        stats = self.pool.stats().values()
        is_limited = any(s.is_limited_now or s.window < self.concurrency - 0.5 for s in stats)
        now = retrying.default_clock()
        since, sent_then = self._mark
        if now - since >= 1.0:
            self._pace = (self.sent - sent_then) / (now - since)
            self._mark = (now, self.sent)
        return RateStatus(is_limited, self._pace)


def session_limiter(policy: LimitPolicy) -> AdaptiveLimiter:
    """Waits and deadlines through retrying's clock and sleep, which tests replace (no real waits)."""
    return AdaptiveLimiter(policy, clock=lambda: retrying.default_clock(),
                           sleep=lambda seconds: retrying.default_sleep(seconds))


class ModelStopped(ProviderError):
    """Not sent: an earlier request showed that every request to this model would fail the same way."""

    kind = "stopped"


@dataclass
class ClientOptions:
    """What one run asks of the client."""

    run_id: str | None = None
    git_commit: str | None = None
    branch: str | None = None  # who spends, in each ledger row (spender.py)
    actor: str | None = None
    use_cache: bool = True
    record: bool = False
    budget: BudgetGuard | None = None
    unanswered: Mapping[str, str] = field(default_factory=dict)  # cache key -> why its batch gave none: not sent


class ModelClient:
    """Calls models for one run; the limiter, store and recordings are the session's, shared by its runs."""

    def __init__(self, store: Store, endpoints: Mapping[str, Endpoint], limits: CallLimits,
                 recordings: Recordings, retry: RetryPolicy, timeout_s: float,
                 options: ClientOptions | None = None, before_first_send: Callable[[], None] | None = None) -> None:
        self.store = store
        self.endpoints = endpoints
        self.limits = limits
        self.recordings = recordings
        self.retry = retry
        self.timeout_s = timeout_s
        self.options = options or ClientOptions()
        self.stopped_models: dict[str, str] = {}  # model -> why its calls stopped
        self._first_answers: dict[str, asyncio.Event] = {}  # model -> set once its first try ended
        self.recorded: dict[str, list[RecordingEntry]] = {}  # by prompt, for --record
        self.unbounded_models: set[str] = set()  # sent one at a time under the budget: no known longest answer
        # Runs once, synchronously, before the first request is sent (so with none in flight): slow set-up
        # such as importing the SDKs of every endpoint.
        self._before_first_send = before_first_send

    async def complete_for(self, request: Request, kind: CallKind, sample: int, attribution: Attribution) -> Answer:
        """complete() for a comparator's helper request (modelcalls.py), which knows requests, not ModelCalls."""
        return await self.complete(ModelCall(request, kind=kind, sample=sample, attribution=attribution))

    async def complete(self, call: ModelCall) -> Answer:
        model = call.request.model
        if model in self.stopped_models:
            return Answer(None, self.stopped_models[model])
        endpoint = self.endpoints[model]
        identity = cache_identity(endpoint.identity, lookup_request(call.request), call.kind, call.sample)
        key = content_hash(identity)
        cached = self.lookup(endpoint, key, identity)
        if cached is not None:
            saved = price(endpoint, cached)
            hit = self.ledger_row(call, endpoint, cached, cost=0.0, saved=saved, status="cached", key=key)
            self.remember(call, identity, cached)
            return Answer(replace(cached, cost_usd=saved), attempts=cached.attempts, ledger=(hit,))
        if key in self.options.unanswered:  # run --batch --batch-errors report
            return Answer(None, f"batch: {self.options.unanswered[key]} (not sent live: --batch-errors report)")
        if endpoint.replay_only:
            why = self.recordings.why_missing(call.attribution.prompt or "", identity)
            return Answer(None, f"--replay: no recorded response for case {call.attribution.case_id!r} "
                                f"({call.attribution.where}) on {model}: {why}; run once with --record")
        return await self.send(call, endpoint, key, identity)

    def lookup(self, endpoint: Endpoint, key: str, identity: Mapping[str, Any]) -> Completion | None:
        if not (endpoint.provider.is_cacheable or endpoint.replay_only):
            return None
        if not (self.options.use_cache or endpoint.replay_only):
            return None
        hit = self.store.cache_get(key)
        if hit is None:  # the recordings' key only on a cache miss: a warm run hashes each request once
            recorded = self.recordings.get(recording_key(identity))
            hit = replace(recorded, cached=True) if recorded is not None else None
        return hit

    async def send(self, call: ModelCall, endpoint: Endpoint, key: str, identity: Mapping[str, Any]) -> Answer:
        budget = self.options.budget if not endpoint.is_free else None
        expected = estimate_request(call.request, endpoint)
        hold = None
        if budget is not None:
            expected_usd = (expected.cost_usd or 0.0) if expected is not None else 0.0
            worst_usd = worst_request_cost(call.request, endpoint, expected)
            if worst_usd is None and budget.limit_usd is not None:
                self.unbounded_models.add(call.request.model)
            hold = await budget.reserve(expected_usd, worst_usd)
            if hold is None:
                limit = format_usd(budget.limit_usd or 0.0)
                return Answer(None, f"budget: sending it would pass the run budget of {limit}", skipped=True)
        charged: float | None = None  # None: unknown, the hold is charged (an interrupted request may be billed)
        try:
            completion = await self.send_held(call, endpoint, expected)
            charged = price(endpoint, completion)
        except ProviderError as exc:
            charged = 0.0
            if isinstance(exc, ModelStopped):
                return Answer(None, exc.message)
            return self.failure(call, endpoint, exc)
        finally:
            if budget is not None and hold is not None:
                budget.settle(hold, charged)
        completion = replace(completion, cost_usd=charged)
        billed = self.ledger_row(call, endpoint, completion, cost=charged, saved=None, status="ok", key=key)
        if endpoint.provider.is_cacheable:  # the answer and its ledger row in one commit, at once
            self.store.cache_put(key, identity, completion, ledger=billed)
            self.remember(call, identity, completion)
        else:
            self.store.record_request(billed)
        return Answer(completion, attempts=completion.attempts)

    async def send_held(self, call: ModelCall, endpoint: Endpoint, expected: RequestEstimate | None) -> Completion:
        """Sends with retries, after the model's first request showed that its key and name work."""
        if self._before_first_send is not None:
            ready, self._before_first_send = self._before_first_send, None
            ready()
        model = call.request.model
        first = await self.take_turn(model, endpoint)
        try:
            if model in self.stopped_models:  # the model's first request found a bad key or model
                raise ModelStopped(self.stopped_models[model])
            tokens = expected.input_tokens + expected.output_tokens if expected is not None else 0
            return await call_with_retries(lambda: self.attempt(endpoint, call.request, first, call.kind),
                                           self.retry, limiter=self.limits.limiter(model), tokens=tokens,
                                           limit_wait_s=self.timeout_s)
        finally:
            if first is not None:
                first.set()

    async def take_turn(self, model: str, endpoint: Endpoint) -> asyncio.Event | None:
        """The first request to a paid model goes alone and the others wait until its first try ends, so a
        bad key or an unknown model costs one request, not one per slot in flight. Returns the event the
        first request sets; None for the others."""
        if endpoint.is_free:
            return None
        answered = self._first_answers.get(model)
        if answered is None:
            self._first_answers[model] = asyncio.Event()
            return self._first_answers[model]
        await answered.wait()
        return None

    async def attempt(self, endpoint: Endpoint, request: Request, first: asyncio.Event | None = None,
                      kind: CallKind = "case") -> Completion:
        """One try, sent inside its limiter slot (call_with_retries holds it) and a place of -j over all models."""
        try:
            async with self.limits.in_flight:
                self.limits.sent += 1
                return await within(self.timeout_s, send_to(endpoint.provider, request, kind))
        except asyncio.TimeoutError:
            raise Timeout(f"no answer from {request.model} within timeout_s={self.timeout_s:g}") from None
        except ProviderError as exc:
            if exc.stops_model:  # before the waiting requests wake up
                self.stop_model(request.model, exc)
            raise
        finally:
            if first is not None:
                first.set()

    def stop_model(self, model: str, exc: ProviderError) -> None:
        self.stopped_models.setdefault(model, f"{exc.message} (remaining cases of this model not sent)")

    def failure(self, call: ModelCall, endpoint: Endpoint, exc: ProviderError) -> Answer:
        attempts = exc.attempts
        if exc.stops_model:
            self.stop_model(call.request.model, exc)
        if not isinstance(exc, ReplayMiss):
            failed = Completion(text=None, error=exc.info(), attempts=attempts)
            self.store.record_request(self.ledger_row(call, endpoint, failed, cost=None, saved=None, status="error"))
        status = f" (HTTP {exc.status})" if exc.status else ""
        retried = f" after {attempts} attempts" if attempts > 1 else ""
        return Answer(None, f"{exc.kind}{status}{retried}: {exc.message}", attempts=attempts)

    def remember(self, call: ModelCall, identity: Mapping[str, Any], completion: Completion) -> None:
        if self.options.record:
            self.recorded.setdefault(call.attribution.prompt or "", []).append(RecordingEntry(identity, completion))

    def ledger_row(self, call: ModelCall, endpoint: Endpoint, completion: Completion, *,
                   cost: float | None, saved: float | None, status: str, key: str | None = None) -> LedgerEntry:
        return ledger_entry(call, self.options, endpoint, completion, cost=cost, saved=saved, status=status,
                            key=key)


def ledger_entry(call: ModelCall, options: ClientOptions, endpoint: Endpoint, completion: Completion, *,
                 cost: float | None, saved: float | None, status: str, key: str | None = None) -> LedgerEntry:
    usage = completion.usage
    who = call.attribution
    return LedgerEntry(
        at=now_iso(), run_id=options.run_id, git_commit=options.git_commit, prompt=who.prompt,
        case_id=who.case_id, model=call.request.model, provider=endpoint.provider_type,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        cached_input_tokens=usage.cached_input_tokens if usage else None,
        cost_usd=cost, saved_usd=saved,
        latency_ms=None if status == "cached" else completion.latency_ms,
        ttft_ms=None if status == "cached" else completion.ttft_ms,
        status=status, attempts=completion.attempts, kind=call.kind,
        error_kind=completion.error.kind if completion.error else None, cache_key=key,
        branch=options.branch, actor=options.actor, request_id=uuid.uuid4().hex,
    )


async def send_to(provider: Provider, request: Request, kind: CallKind) -> Completion:
    """An embedding call goes to the provider's embed() (its vector as JSON text); every other to complete()."""
    if kind != "embedding":
        return await provider.complete(request)
    embed = getattr(provider, "embed", None)
    if embed is None:
        raise BadRequest(f"provider {provider.name!r} has no embeddings API (use an openai-type provider)")
    completion: Completion = await embed(request)
    return completion


async def within(seconds: float, awaitable: Awaitable[Completion]) -> Completion:
    """The whole request, not just each read as the SDKs time it, so a slow drip cannot hang a run."""
    if sys.version_info >= (3, 11):  # asyncio.timeout runs in this task: no extra task per request
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout=seconds)


def lookup_request(request: Request) -> Request:
    """`replay:openai:gpt-4o-mini` looks up what `openai:gpt-4o-mini` recorded."""
    provider_name, inner = split_model(request.model)
    return replace(request, model=inner) if provider_name == "replay" else request


def call_key(endpoint_identity: Mapping[str, Any], call: ModelCall) -> str:
    """The cache key of a call, as complete() computes it (dry runs ask which calls the cache answers)."""
    return Store.cache_key(endpoint_identity, lookup_request(call.request), call.kind, call.sample)


def answer_key(endpoint_identity: Mapping[str, Any], call: ModelCall) -> str:
    """The recordings key of a call, as complete() computes it."""
    return recording_key(cache_identity(endpoint_identity, lookup_request(call.request), call.kind, call.sample))


def estimate_request(request: Request, endpoint: Endpoint) -> RequestEstimate | None:
    """Before sending, the same estimate as --dry-run: input tokens counted, max_tokens out (its tokens pace a
    tpm limit). None for a free local endpoint."""
    if endpoint.is_free:
        return None
    return estimate_request_cost(request.messages, request.params, request.model, endpoint.price)


def worst_request_cost(request: Request, endpoint: Endpoint, expected: RequestEstimate | None) -> float | None:
    """The most one request can cost: its input and the longest answer it may get (max_tokens, the provider's
    default max_tokens or the model's maximum output). None when that length is unknown."""
    if expected is None:
        return 0.0
    provider_default = getattr(endpoint.provider, "default_max_tokens", None)
    return worst_case_cost(expected.input_tokens, request.params, endpoint.price, provider_default)


def price(endpoint: Endpoint, completion: Completion) -> float | None:
    if endpoint.is_free:
        return 0.0
    return cost_usd(completion.usage, endpoint.price)
