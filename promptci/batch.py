"""Batch mode (`run --batch`): the plan's case requests that the cache and the recordings cannot answer go to the
providers' batch APIs (OpenAI Batch API, Anthropic Message Batches) at half price; their answers go into the cache
under the key a live request would use (promptci.client), with a ledger row at the batch price. The run that
follows is an ordinary run that the cache answers, so reports, verdicts and exit codes are the usual ones; a batch
answer has no latency or time to first token, and, like any cached answer, is never failed on them.

A batch's id is stored (table `batches`, migration 7) the moment the provider gives it, so re-running the same
command after a crash or a CI timeout collects the open batches instead of submitting again. Lines a batch did not
answer (errored, expired, cancelled) are left out of the cache: the run sends them live."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from promptci import retrying
from promptci.client import (
    Attribution,
    ClientOptions,
    Endpoint,
    ModelCall,
    estimate_request,
    ledger_entry,
    lookup_request,
    worst_request_cost,
)
from promptci.cost.estimate import DryRunReport
from promptci.cost.pricing import BATCH_DISCOUNT, batch_cost_usd, cost_usd
from promptci.cost.totals import format_usd
from promptci.errors import ExitCode, PromptCIError
from promptci.plan import Plan, RunOptions
from promptci.providers.batching import BatchStatus, LineOutcome
from promptci.recordings import Recordings, load_recordings, recording_key
from promptci.store import Store, cache_identity
from promptci.storechoice import open_store
from promptci.types import Completion, Request, content_hash, now_iso

FRESH_HOURS = 24.0  # --batch --no-cache: a batch submitted this recently gives fresh answers
FIRST_POLL_S = 10.0  # --wait: seconds before the first status read, then 1.5x more each time
MAX_POLL_S = 300.0


@dataclass(frozen=True)
class Pending:
    """A case request the cache cannot answer, as the model client would key it."""

    key: str
    identity: Mapping[str, Any]
    call: ModelCall
    endpoint: Endpoint


@dataclass
class BatchOutcome:
    """What `run --batch` did before the run itself."""

    submitted: list[str] = field(default_factory=list)  # batch ids made by this command
    submitted_requests: int = 0
    answered: set[str] = field(default_factory=set)  # cache keys of the answers this command collected
    open_batches: list[str] = field(default_factory=list)  # still running at the end
    waiting: int = 0  # requests of the plan in those batches
    unanswered: dict[str, str] = field(default_factory=dict)  # cache key -> why the batch collected now gave none
    live_only: int = 0  # requests of providers without a batch API (sent live by the run)

    @property
    def is_complete(self) -> bool:
        return not self.open_batches


@dataclass(frozen=True)
class BatchRow:
    batch_id: str
    model: str
    submitted_at: str
    requests: int
    state: str
    collected_at: str | None


Sleep = Callable[[float], Awaitable[None]]


class BatchOverBudget(PromptCIError):
    """The batch's worst case passes the run budget: nothing was submitted (exit 1, as a budget exceeded)."""

    exit_code = ExitCode.REGRESSION


class BatchStore:
    """The `batches` and `batch_requests` tables, through the store's own transaction and lock handling."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, batch_id: str, model: str, requests: Sequence[Pending]) -> None:
        statements: list[tuple[str, Sequence[Any]]] = [(
            "INSERT INTO batches (id, model, submitted_at, requests, state) VALUES (?, ?, ?, ?, 'submitted')",
            (batch_id, model, now_iso(), len(requests)))]
        statements += [(
            "INSERT INTO batch_requests (batch_id, key, identity, prompt, case_id, kind)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (batch_id, key) DO NOTHING",  # SQLite and PostgreSQL alike
            (batch_id, p.key, json.dumps(p.identity, sort_keys=True, ensure_ascii=False),
             p.call.attribution.prompt, p.call.attribution.case_id, p.call.kind)) for p in requests]
        self.store._write_together(statements, "batch ids")

    def rows(self, only_open: bool = False, limit: int | None = None) -> list[BatchRow]:
        sql = "SELECT id, model, submitted_at, requests, state, collected_at FROM batches"
        if only_open:
            sql += " WHERE collected_at IS NULL"
        sql += " ORDER BY submitted_at DESC, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [BatchRow(*row) for row in self.store._read(sql)]

    def row(self, batch_id: str) -> BatchRow | None:
        found = self.store._read("SELECT id, model, submitted_at, requests, state, collected_at FROM batches"
                                 " WHERE id = ?", (batch_id,))
        return BatchRow(*found[0]) if found else None

    def open_keys(self) -> dict[str, str]:
        """Cache key -> the open batch holding it."""
        rows = self.store._read("SELECT r.key, r.batch_id FROM batch_requests r JOIN batches b ON b.id = r.batch_id"
                                " WHERE b.collected_at IS NULL")
        return {key: batch_id for key, batch_id in rows}

    def requests(self, batch_id: str) -> dict[str, tuple[Mapping[str, Any], str | None, str | None, str]]:
        rows = self.store._read("SELECT key, identity, prompt, case_id, kind FROM batch_requests WHERE batch_id = ?",
                                (batch_id,))
        return {key: (json.loads(identity), prompt, case_id, kind) for key, identity, prompt, case_id, kind in rows}

    def answered_since(self, since: str) -> set[str]:
        """The keys that batches submitted at or after `since` (ISO time) answered."""
        rows = self.store._read("SELECT r.key FROM batch_requests r JOIN batches b ON b.id = r.batch_id"
                                " WHERE b.collected_at IS NOT NULL AND r.problem IS NULL AND b.submitted_at >= ?",
                                (since,))
        return {row[0] for row in rows}

    def set_state(self, batch_id: str, state: str) -> None:
        self.store._write("UPDATE batches SET state = ? WHERE id = ?", (state, batch_id))

    def collected(self, batch_id: str, state: str, problems: Mapping[str, str]) -> None:
        statements: list[tuple[str, Sequence[Any]]] = [
            ("UPDATE batches SET state = ?, collected_at = ? WHERE id = ?", (state, now_iso(), batch_id))]
        statements += [("UPDATE batch_requests SET problem = ? WHERE batch_id = ? AND key = ?", (why, batch_id, key))
                       for key, why in problems.items()]
        self.store._write_together(statements, "batch results")


def check_batch_options(options: RunOptions) -> None:
    if options.replay:
        raise PromptCIError("--batch sends requests; --replay sends none: use one or the other")


def supports_batches(endpoint: Endpoint) -> bool:
    return (not endpoint.is_free and not endpoint.replay_only and endpoint.provider.is_cacheable
            and hasattr(endpoint.provider, "submit_batch"))


def pending_requests(plan: Plan, endpoints: Mapping[str, Endpoint], store: Store,
                     recordings: Recordings, fresh_since: str | None = None) -> tuple[list[Pending], int]:
    """The plan's case requests that neither the cache nor the recordings answer, once each, keyed exactly as
    ModelClient.complete keys them; and how many requests go live because their provider has no batch API.
    With `fresh_since` (--no-cache) only a batch submitted since then counts as an answer."""
    wanted: dict[str, Pending] = {}
    live_only = 0
    for job in plan.jobs:
        endpoint = endpoints[job.request.model]
        if not supports_batches(endpoint):
            live_only += 0 if endpoint.is_free else 1
            continue
        identity = cache_identity(endpoint.identity, lookup_request(job.request), "case", job.repeat)
        key = content_hash(identity)
        if key not in wanted:
            call = ModelCall(job.request, "case", job.repeat,
                             Attribution(prompt=job.prompt.name, case_id=job.case.id, where=str(job.case.location)))
            wanted[key] = Pending(key, identity, call, endpoint)
    if fresh_since is not None:
        fresh = BatchStore(store).answered_since(fresh_since)
        return [p for key, p in wanted.items() if key not in fresh], live_only
    cached = cached_among(store, wanted)
    return [p for key, p in wanted.items() if key not in cached
            and recordings.get(recording_key(p.identity)) is None], live_only


def cached_among(store: Store, keys: Iterable[str]) -> set[str]:
    """Which of these keys the cache answers (Store.cached_keys takes at most 500 at a time)."""
    ordered = list(keys)
    cached: set[str] = set()
    for start in range(0, len(ordered), 500):
        cached |= store.cached_keys(ordered[start:start + 500])
    return cached


def chunks(entries: Sequence[tuple[Pending, Mapping[str, Any]]], max_lines: int,
           max_bytes: int) -> list[list[tuple[Pending, Mapping[str, Any]]]]:
    """The entries in order, split so no batch passes the provider's line or byte limit."""
    batches: list[list[tuple[Pending, Mapping[str, Any]]]] = [[]]
    size = 0
    for pending, entry in entries:
        line_bytes = len(json.dumps(entry, ensure_ascii=False).encode()) + 1
        if batches[-1] and (len(batches[-1]) >= max_lines or size + line_bytes > max_bytes):
            batches.append([])
            size = 0
        batches[-1].append((pending, entry))
        size += line_bytes
    return [batch for batch in batches if batch]


class BatchMode:
    """Submits, polls and collects the batches of one plan."""

    def __init__(self, store: Store, endpoints: Mapping[str, Endpoint], git_commit: str | None = None,
                 say: Callable[[str], None] | None = None, sleep: Sleep | None = None,
                 clock: Callable[[], float] | None = None, budget_usd: float | None = None) -> None:
        self.store = store
        self.budget_usd = budget_usd
        self.batches = BatchStore(store)
        self.endpoints = endpoints
        self.git_commit = git_commit
        self.say = say or (lambda text: print(f"promptci: {text}", file=sys.stderr))
        self.sleep = sleep or (lambda seconds: retrying.default_sleep(seconds))
        self.clock = clock or (lambda: retrying.default_clock())

    async def prepare(self, pending: Sequence[Pending], wait: bool) -> BatchOutcome:
        """Collects the open batches that ended, submits what no batch holds yet, and with `wait` polls until every
        batch the plan needs has ended and is collected."""
        outcome = BatchOutcome()
        await self.collect_ended(outcome)
        settled = outcome.answered | outcome.unanswered.keys()
        in_open = self.batches.open_keys()  # a line its batch just left unanswered goes live, not in a new batch
        await self.submit([p for p in pending if p.key not in in_open and p.key not in settled], outcome)
        needed = {p.key for p in pending}
        if wait:
            await self.wait_for(needed, outcome)
        self.note_open(needed, outcome)
        outcome.unanswered = {key: why for key, why in outcome.unanswered.items() if key in needed}
        return outcome

    async def submit(self, pending: Sequence[Pending], outcome: BatchOutcome) -> None:
        self.check_budget(pending)
        by_model: dict[str, list[Pending]] = {}
        for p in pending:
            by_model.setdefault(p.call.request.model, []).append(p)
        for model, requests in by_model.items():
            provider: Any = self.endpoints[model].provider
            entries = [(p, provider.batch_entry(p.key, p.call.request)) for p in requests]
            for part in chunks(entries, provider.batch_limits.lines, provider.batch_limits.bytes):
                batch_id = await provider.submit_batch([entry for _, entry in part])
                self.batches.add(batch_id, model, [p for p, _ in part])  # stored at once: a re-run collects it
                outcome.submitted.append(batch_id)
                outcome.submitted_requests += len(part)
        if outcome.submitted:
            self.say(f"submitted {outcome.submitted_requests} request(s) in {len(outcome.submitted)} batch(es): "
                     f"{', '.join(outcome.submitted)}")

    def check_budget(self, pending: Sequence[Pending]) -> None:
        """A batch is paid as a whole once submitted: with a budget (--max-cost, budgets.run_usd), the worst case of
        every request it would hold (its input and longest answer, at batch prices) must fit before any is sent."""
        if self.budget_usd is None or not pending:
            return
        worst = 0.0
        for p in pending:
            one = worst_request_cost(p.call.request, p.endpoint, estimate_request(p.call.request, p.endpoint))
            if one is None:
                raise BatchOverBudget(f"--batch under a budget of {format_usd(self.budget_usd)}: the longest answer of "
                                      f"{p.call.request.model} is unknown, so the batch's cost has no bound; set "
                                      "max_tokens in the prompt's params, or drop the budget")
            worst += one * BATCH_DISCOUNT
        if worst > self.budget_usd:
            raise BatchOverBudget(f"--batch: {len(pending)} request(s) could cost up to {format_usd(worst)} at batch "
                                  f"prices, over the budget of {format_usd(self.budget_usd)}; nothing was submitted "
                                  "(narrow the run with -k or a path, lower max_tokens, or raise --max-cost)")

    async def collect_ended(self, outcome: BatchOutcome) -> list[BatchStatus]:
        """Reads each open batch's state; stores the answers of those that ended. Returns the states of those
        still running."""
        running = []
        for row in self.batches.rows(only_open=True):
            endpoint = self.endpoints.get(row.model)
            if endpoint is None or not supports_batches(endpoint):
                continue  # another command's batch on a model this plan does not use
            provider: Any = endpoint.provider
            status: BatchStatus = await provider.batch_status(row.batch_id)
            if not status.is_ended:
                if status.state != row.state:
                    self.batches.set_state(row.batch_id, status.state)
                running.append(status)
                continue
            lines: list[LineOutcome] = [] if status.failure else await provider.batch_results(row.batch_id)
            stored, problems = self.store_answers(row, endpoint, status, lines)
            outcome.answered |= stored
            outcome.unanswered.update(problems)
        return running

    def store_answers(self, row: BatchRow, endpoint: Endpoint, status: BatchStatus,
                      lines: Sequence[LineOutcome]) -> tuple[set[str], dict[str, str]]:
        """Each answered line into the cache with its ledger row at the batch price; the others' problems kept
        with the batch. Lines naming a request the batch never held are ignored."""
        requests = self.batches.requests(row.batch_id)
        problems: dict[str, str] = {}
        stored: set[str] = set()
        for line in lines:
            request = requests.pop(line.custom_id, None)
            if request is None:
                continue
            if line.completion is None:
                problems[line.custom_id] = line.problem or "no answer"
                continue
            self.store_answer(line.custom_id, request, row.model, endpoint, line.completion)
            stored.add(line.custom_id)
        for key in requests:  # no line at all: a failed batch, or a provider that dropped it
            problems[key] = (f"batch {status.state}: {status.failure}" if status.failure
                             else f"no result ({status.state})")
        self.batches.collected(row.batch_id, status.state, problems)
        return stored, problems

    def store_answer(self, key: str, request: tuple[Mapping[str, Any], str | None, str | None, str], model: str,
                     endpoint: Endpoint, completion: Completion) -> None:
        identity, prompt, case_id, kind = request
        price = 0.0 if endpoint.is_free else batch_cost_usd(completion.usage, endpoint.price)
        live = 0.0 if endpoint.is_free else cost_usd(completion.usage, endpoint.price)
        saved = None if price is None or live is None else live - price
        call = ModelCall(request=ledger_request(model), kind=kind,  # type: ignore[arg-type]
                         attribution=Attribution(prompt=prompt, case_id=case_id))
        row = ledger_entry(call, ClientOptions(git_commit=self.git_commit), endpoint, completion, cost=price,
                           saved=saved, status="ok", key=key)
        self.store.cache_put(key, identity, replace(completion, cost_usd=price),
                             ledger=replace(row, latency_ms=None, ttft_ms=None))

    async def wait_for(self, needed: set[str], outcome: BatchOutcome) -> None:
        """Polls with backoff until no open batch holds a request of the plan, saying how far they are."""
        delay = FIRST_POLL_S
        started, first_done = self.clock(), None
        while set(self.batches.open_keys()) & needed:
            await self.sleep(delay)
            delay = min(delay * 1.5, MAX_POLL_S)
            running = await self.collect_ended(outcome)
            done, total = sum(s.done for s in running), sum(s.total for s in running)
            first_done = done if first_done is None else first_done
            if running:
                left = eta(done - first_done, total - done, self.clock() - started)
                self.say(f"batches: {done}/{total} request(s) done{left}")

    def note_open(self, needed: set[str], outcome: BatchOutcome) -> None:
        holding = {batch_id for key, batch_id in self.batches.open_keys().items() if key in needed}
        outcome.open_batches = sorted(holding)
        outcome.waiting = sum(1 for key, batch_id in self.batches.open_keys().items() if key in needed)


def iso_hours_ago(hours: float) -> str:
    from datetime import datetime, timedelta, timezone

    moment = datetime.now(timezone.utc) - timedelta(hours=hours)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # as now_iso() writes it


def ledger_request(model: str) -> Request:
    """What ledger_entry reads of a request (its model) for an answer collected without the plan's request."""
    return Request(model=model, messages=())


def eta(progress: int, remaining: int, elapsed_s: float) -> str:
    """`, about N min left` from the pace since the first read; nothing until there is a pace."""
    if progress <= 0 or elapsed_s <= 0 or remaining <= 0:
        return ""
    minutes = remaining / (progress / elapsed_s) / 60
    return f", about {minutes:.0f} min left" if minutes >= 1 else ", under a minute left"


def prepare_batches(options: RunOptions, wait: bool, say: Callable[[str], None] | None = None) -> BatchOutcome:
    """`run --batch` before the run: builds the plan as the run will, submits or collects its batches."""
    from promptci.gitinfo import current_git
    from promptci.planning import build_endpoints, build_plan

    plan = build_plan(options)
    endpoints = build_endpoints(plan.models, plan.settings, replay_only=False)
    with open_store(plan.project, settings=plan.settings) as store:
        mode = BatchMode(store, endpoints, current_git(plan.project.source).commit, say, budget_usd=plan.budget_usd)
        fresh_since = None if options.use_cache else iso_hours_ago(FRESH_HOURS)
        pending, live_only = pending_requests(plan, endpoints, store, load_recordings(plan.project.recordings_dir),
                                              fresh_since)
        outcome = asyncio.run(with_closed_providers(mode.prepare(pending, wait), endpoints))
    outcome.live_only = live_only
    return outcome


async def with_closed_providers(work: Awaitable[BatchOutcome], endpoints: Mapping[str, Endpoint]) -> BatchOutcome:
    """A provider's refusal (a bad key, a 500 on create) propagates as the ProviderError it is: exit 3."""
    try:
        return await work
    finally:
        for provider in {id(e.provider): e.provider for e in endpoints.values()}.values():
            await provider.aclose()


# `promptci batch list|status|cancel`


@dataclass(frozen=True)
class BatchView:
    """A stored batch and, when asked, what its provider says of it now."""

    row: BatchRow
    status: BatchStatus | None = None

    def to_dict(self) -> dict[str, Any]:
        live = self.status
        return {"id": self.row.batch_id, "model": self.row.model, "submitted_at": self.row.submitted_at,
                "requests": self.row.requests, "state": live.state if live else self.row.state,
                "collected": self.row.collected_at is not None, "collected_at": self.row.collected_at,
                "done": live.done if live else None, "total": live.total if live else None}


def list_batches(root: Path | None, limit: int | None = None) -> list[BatchView]:
    """The stored batches, newest first, as last seen (no request is sent)."""
    from promptci.project import discover

    with open_store(discover(root)) as store:
        return [BatchView(row) for row in BatchStore(store).rows(limit=limit)]


def batch_status(root: Path | None, batch_ids: Sequence[str] = ()) -> list[BatchView]:
    """The open batches (or these ones) as their providers report them now; the state is stored."""
    return asyncio.run(_each_batch(root, batch_ids, cancel=False))


def cancel_batches(root: Path | None, batch_ids: Sequence[str]) -> list[BatchView]:
    """Asks the providers to cancel these batches. What they answered before the cancel is collected by the next
    `run --batch`, like any ended batch; the rest is sent live then."""
    return asyncio.run(_each_batch(root, batch_ids, cancel=True))


async def _each_batch(root: Path | None, batch_ids: Sequence[str], cancel: bool) -> list[BatchView]:
    from promptci.planning import build_endpoints
    from promptci.project import discover

    project = discover(root)
    settings = project.settings()
    views: list[BatchView] = []
    endpoints: dict[str, Endpoint] = {}
    with open_store(project, settings=settings) as store:
        batches = BatchStore(store)
        rows = chosen_rows(batches, batch_ids)
        try:
            for row in rows:
                if row.model not in endpoints:
                    endpoints.update(build_endpoints([row.model], settings, replay_only=False))
                provider: Any = endpoints[row.model].provider
                status = await (provider.cancel_batch(row.batch_id) if cancel else provider.batch_status(row.batch_id))
                batches.set_state(row.batch_id, status.state)
                views.append(BatchView(replace(row, state=status.state), status))
        finally:
            for provider in {id(e.provider): e.provider for e in endpoints.values()}.values():
                await provider.aclose()
    return views


def chosen_rows(batches: BatchStore, batch_ids: Sequence[str]) -> list[BatchRow]:
    if not batch_ids:
        return batches.rows(only_open=True)
    rows = []
    for batch_id in batch_ids:
        row = batches.row(batch_id)
        if row is None:
            raise PromptCIError(f"no batch {batch_id!r} in this project's state; `promptci batch list` names them")
        rows.append(row)
    return rows


def with_batch_estimate(report: DryRunReport) -> DryRunReport:
    """The dry run's estimate with a note of what the same requests cost through the batch APIs (`run --batch`)."""
    live = report.cost_usd
    if live <= 0:
        return report
    note = (f"with --batch: about {format_usd(live * BATCH_DISCOUNT)} instead of {format_usd(live)} live "
            "(batch prices are half; answers within 24 hours)")
    return replace(report, notes=(*report.notes, note))
