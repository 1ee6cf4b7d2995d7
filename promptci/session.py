"""A Session owns what outlives one run: the store (opened once), one event loop, the provider instances
(built once, prepared before the first request, closed at exit) and the in-flight limit. Several plans (two
revisions, two models) run in one session and share its cache and providers.

    with Session(project) as session:
        run = session.run(plan)
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from promptci.client import CallLimits, ClientOptions, Endpoint, ModelClient, RateStatus, RateTally
from promptci.cost.budget import BudgetGuard
from promptci.cost.pricing import UNKNOWN_PRICE_HINT
from promptci.errors import EnvironmentFailure, PromptCIError
from promptci.gitinfo import current_git
from promptci.modelcalls import CURRENT, ModelCalls, helper_models
from promptci.plan import Job, Plan, config_fingerprint
from promptci.planning import build_endpoints
from promptci.project import Project
from promptci.ratelimit import SLOW_START_WINDOW, LimitPolicy
from promptci.recordings import Recordings, load_recordings, write_recordings
from promptci.retrying import RetryPolicy
from promptci.runner import Runner, attribution, comparator_scores, run_jobs
from promptci.spender import spending_actor, spending_branch
from promptci.store import PLAIN_RUN, Store
from promptci.storechoice import open_store
from promptci.types import CaseResult, Completion, GitInfo, Run, Score, now_iso, summarize


class Session:
    def __init__(self, project: Project, concurrency: int | None = None) -> None:
        self.project = project
        self.concurrency = concurrency  # None: the first plan's -j or its settings' concurrency
        self._store: Store | None = None
        self._loop: asyncio.Runner | None = None
        self._instances: dict[str, Any] = {}  # provider instances by endpoint settings
        self._prepared: set[int] = set()
        self._limits: CallLimits | None = None
        self._budget = BudgetGuard(None)  # one budget for every run of the session's command
        self._recordings: dict[str, Recordings] = {}  # by source folder
        self.not_written: list[EnvironmentFailure] = []  # recordings files the disk refused

    def __enter__(self) -> Session:
        self._store = open_store(self.project)
        self._loop = asyncio.Runner()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._loop is not None:
                self._loop.run(self._close_providers())
        finally:
            if self._loop is not None:
                self._loop.close()
            if self._store is not None:
                self._store.close()
            self._loop = self._store = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("use the Session in a `with` block")
        return self._store

    def endpoints(self, plan: Plan) -> dict[str, Endpoint]:
        """The plan's endpoints (and those of the models its comparators call), built once per session."""
        models = (*plan.models, *(m for m in helper_models(plan.jobs) if m not in plan.models))
        return build_endpoints(models, plan.settings, plan.options.replay, self._instances)

    def prepare(self, endpoints: Mapping[str, Endpoint]) -> None:
        """Every provider of the plan made ready (SDK imported, client built) at once, before its run's first
        request is sent: never while requests are in flight and timed. A run the cache answers never pays it."""
        for endpoint in endpoints.values():
            provider = endpoint.provider
            prepare = getattr(provider, "prepare", None)
            if prepare is not None and id(provider) not in self._prepared:
                prepare()
            self._prepared.add(id(provider))

    def recordings(self, project: Project) -> Recordings:
        key = str(project.source)
        if key not in self._recordings:
            self._recordings[key] = load_recordings(project.recordings_dir)
        return self._recordings[key]

    def limits(self, plan: Plan) -> CallLimits:
        """The session's limiters (what they learn about a provider's limit serves every run), -j each, and
        the rpm/tpm the provider's settings give."""
        if self._limits is None:
            concurrency = self.concurrency or plan.options.concurrency or plan.settings.concurrency
            settings = plan.settings

            def policy_for(provider: str) -> LimitPolicy:
                config = settings.providers.get(provider)
                return LimitPolicy(max_concurrency=concurrency, rpm=config.rpm if config else None,
                                   tpm=config.tpm if config else None, initial_window=SLOW_START_WINDOW)

            self._limits = CallLimits(concurrency, policy_for)
        return self._limits

    def run(self, plan: Plan, on_start: Callable[[int], None] | None = None,
            on_result: Callable[[CaseResult], None] | None = None, git: GitInfo | None = None,
            on_rate: Callable[[RateStatus], None] | None = None, command: str = PLAIN_RUN,
            into: Run | None = None) -> Run:
        """Run the plan to its end (or Ctrl-C: the run is marked interrupted and keeps what finished). `git`:
        the revision a materialised source was read from (default: the git state of the plan's source).
        on_rate hears, after each result, whether rate limits hold the run back and the pace of requests.
        `command` is stored with the run: what made it (a shard of a plain run says so itself).
        `into`: a stored run this one continues (a later round of --repeat auto): the results are added to it
        under its id, git state and command, and the Run returned holds its results and these."""
        endpoints = self.endpoints(plan)
        budget_usd = plan.budget_usd
        if budget_usd is not None:
            require_prices(endpoints)
        limits = self.limits(plan)
        limits.require_satisfiable(((job.request, f"case {job.case.id} at {job.case.location}") for job in plan.jobs
                                    if not endpoints[job.request.model].replay_only), endpoints)
        git = git or current_git(plan.project.source)
        run_id, started_at = uuid.uuid4().hex[:12], now_iso()
        config_hash = config_fingerprint(plan.settings, plan.options)
        shard = f"{plan.options.shard[0]}/{plan.options.shard[1]}" if plan.options.shard else None
        if shard and command == PLAIN_RUN:
            command = f"{PLAIN_RUN} --shard {shard}"
        if into is None:
            self.store.start_run(run_id, started_at, git, plan.models,
                                 {**plan.options.to_record(), "config_hash": config_hash}, command)
        else:
            run_id, started_at, git, command = into.run_id, into.started_at, into.git, into.command or command
            self.store.continue_run(run_id)
        self._budget.limit_to(budget_usd)
        tally_before = limits.tally()
        client = self._client(plan, endpoints, limits, git, run_id)
        runner = Runner(run_id, plan.project.source, self.store, client, with_rate(on_result, on_rate, limits),
                        first_position=len(into.results) if into else 0)
        if on_start is not None:
            on_start(len(plan.jobs))
        results, interrupted = self._run_to_end(runner, plan.jobs, limits.concurrency)
        if plan.options.record:
            self._write_recordings(plan, client, drop_stale=plan.options.is_whole_suite and not interrupted)
        problems = (*plan.problems, *(f"{model}: {why}" for model, why in client.stopped_models.items()),
                    *rate_limit_notes(limits.tally().since(tally_before)),
                    *unbounded_notes(client.unbounded_models))
        if into is not None:
            results = [*into.results, *results]
            problems = tuple(dict.fromkeys((*into.problems, *problems)))
            interrupted = interrupted or into.interrupted
        summary = summarize(results, broken=len(plan.problems))
        finished_at = now_iso()
        self.store.finish_run(run_id, finished_at, summary, interrupted, problems, plan.broken)
        return Run(run_id=run_id, started_at=started_at, finished_at=finished_at, git=git, models=plan.models,
                   results=tuple(results), summary=summary, interrupted=interrupted, problems=problems,
                   config_hash=config_hash, shard=shard, command=command, environment=plan.options.environment,
                   broken=plan.broken)

    def _client(self, plan: Plan, endpoints: Mapping[str, Endpoint], limits: CallLimits, git: GitInfo,
                run_id: str | None) -> ModelClient:
        return ModelClient(
            self.store, endpoints, limits, self.recordings(plan.project),
            RetryPolicy(retries=plan.settings.retries), plan.settings.timeout_s,
            ClientOptions(run_id=run_id, git_commit=git.commit, branch=spending_branch(git), actor=spending_actor(),
                          use_cache=plan.options.use_cache,
                          record=plan.options.record, budget=self._budget,
                          unanswered=dict(plan.options.batch_unanswered)),
            before_first_send=lambda: self.prepare(endpoints),
        )

    def score_outputs(self, plan: Plan, outputs: Sequence[Completion]) -> list[tuple[list[Score], list[str]]]:
        """The plan's cases' comparators on given outputs (outputs[i] for plan.jobs[i]) instead of the models'
        answers (`promptci calibrate`): no case request is sent, only what the comparators ask (a judge's
        request), through a client like a run's (cache, retries, budget, ledger). Per job: its scores and
        the comparators that raised."""
        endpoints = self.endpoints(plan)
        if plan.budget_usd is not None:
            require_prices(endpoints)
        self._budget.limit_to(plan.budget_usd)
        client = self._client(plan, endpoints, self.limits(plan), current_git(plan.project.source), None)
        runner = Runner("", plan.project.source, self.store, client)

        async def score(job: Job, output: Completion) -> tuple[list[Score], list[str]]:
            calls = ModelCalls(client, attribution(runner, job))
            token = CURRENT.set(calls)
            raised_by: list[str] = []
            try:
                scores = await comparator_scores(runner, job.case, output, raised_by)
            finally:
                CURRENT.reset(token)
            for entry in calls.ledger:  # a cache hit's row (a billed one is written by the client)
                self.store.record_request(entry)
            return scores, raised_by

        async def score_all() -> list[tuple[list[Score], list[str]]]:
            return list(await asyncio.gather(*(score(job, output) for job, output in zip(plan.jobs, outputs,
                                                                                         strict=True))))

        assert self._loop is not None
        return self._loop.run(score_all())

    def _run_to_end(self, runner: Runner, jobs: Sequence[Job], concurrency: int) -> tuple[list[CaseResult], bool]:
        """Runs the jobs; Ctrl-C keeps what finished (each result is already stored as it finished)."""
        assert self._loop is not None
        slots: list[CaseResult | None] = [None] * len(jobs)
        interrupted = False
        # What is alive now (modules, the suite, the jobs) outlives the request loop: frozen, it is not walked
        # again by each of the loop's garbage collections. Unfrozen after, so a library caller leaks nothing.
        gc.freeze()
        try:
            self._loop.run(run_jobs(runner, jobs, concurrency, slots))
        except KeyboardInterrupt:
            interrupted = True
            self._loop.run(cancel_leftovers())
        finally:
            gc.unfreeze()
        return [r for r in slots if r is not None], interrupted

    def _write_recordings(self, plan: Plan, client: ModelClient, drop_stale: bool) -> None:
        for prompt, entries in sorted(client.recorded.items()):
            try:
                write_recordings(plan.project.recordings_dir, prompt, entries, drop_others=drop_stale)
            except EnvironmentFailure as failure:  # the run is still stored and reported; the CLI exits 4 after
                self.not_written.append(failure)
        self._recordings.pop(str(plan.project.source), None)

    async def _close_providers(self) -> None:
        for provider in {id(p): p for p in self._instances.values()}.values():
            await provider.aclose()
        self._instances.clear()
        self._prepared.clear()


def with_rate(on_result: Callable[[CaseResult], None] | None, on_rate: Callable[[RateStatus], None] | None,
              limits: CallLimits) -> Callable[[CaseResult], None] | None:
    """on_result, then on_rate with the limits' status."""
    if on_rate is None:
        return on_result

    def heard(result: CaseResult) -> None:
        if on_result is not None:
            on_result(result)
        on_rate(limits.status())

    return heard


def unbounded_notes(models: set[str]) -> list[str]:
    """The run note when the budget sent requests one at a time: their longest answer was unknown."""
    return [f"budget: requests to {model} without max_tokens went one at a time, as the model's longest answer "
            f"is unknown (set max_tokens in the prompt, or max_output_tokens under `pricing:` for {model})"
            for model in sorted(models)]


def rate_limit_notes(tally: RateTally) -> list[str]:
    """The run note on rate limits, when they held the run back: requests refused and time spent waiting."""
    if not tally.refused and tally.waited_s < 0.05:
        return []
    share = f" ({tally.refused / tally.sent:.1%})" if tally.sent else ""
    refused = f"{tally.refused} request{'' if tally.refused == 1 else 's'} refused{share}"
    return [f"rate limits: {refused}, {tally.waited_s:.1f} s spent waiting"]


async def cancel_leftovers() -> None:
    """After Ctrl-C, the tasks of the interrupted run stop: none may send another request."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


def require_prices(endpoints: Mapping[str, Endpoint]) -> None:
    """A budget cannot be kept for a model whose price is unknown: refuse before sending anything."""
    unpriced = [model for model, endpoint in endpoints.items()
                if not (endpoint.is_free or endpoint.replay_only) and endpoint.price is None]
    if unpriced:
        raise PromptCIError(f"a run budget is set but the price of {', '.join(unpriced)} is unknown, so the budget "
                            f"cannot be kept; {UNKNOWN_PRICE_HINT}")
