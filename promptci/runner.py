"""Turns jobs (case x model x sample) into results: each job's answer comes from the model client, is
scored by the case's comparators and stored as it finishes, so a crash or Ctrl-C loses nothing finished."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from promptci.client import Attribution, ModelCall, ModelClient
from promptci.comparators.structured import JSON_OUTPUT_SCORE, JSONParseError, parse_json
from promptci.conversation import Conversation, converse
from promptci.errors import UserCodeFailed
from promptci.modelcalls import CURRENT, ModelCalls
from promptci.plan import Job
from promptci.registry import build_comparator
from promptci.store import LedgerEntry, Store
from promptci.types import (
    Case,
    CaseResult,
    Comparator,
    ComparatorSpec,
    Completion,
    Score,
    SkipKind,
    Status,
    canonical_json,
    content_hash,
    expected_text,
)
from promptci.usercode import USER_TIMEOUT_S


@dataclass
class Runner:
    """What a run's jobs share: the client that answers them and where their results go."""

    run_id: str
    root: Path
    store: Store
    client: ModelClient
    on_result: Callable[[CaseResult], None] | None = None
    first_position: int = 0  # where this call's jobs go in the run's stored order (a later sequential round)
    _comparators: dict[str, Comparator] = field(default_factory=dict)

    def comparator(self, spec: ComparatorSpec) -> Comparator:
        if spec.instance is not None:  # built once at load
            return spec.instance
        memo = f"{spec.type}:{canonical_json(dict(spec.options))}"
        if memo not in self._comparators:
            self._comparators[memo] = build_comparator(spec.type, spec.options, self.root)
        return self._comparators[memo]


# Workers per place in flight: a job waiting out a Retry-After or a backoff holds no place, so others are
# ready to take it. The client's limiters, not the workers, keep the requests in flight <= -j.
WORKERS_PER_SLOT = 4


async def run_jobs(runner: Runner, jobs: Sequence[Job], concurrency: int, results: list[CaseResult | None]) -> None:
    """Run every job, filling results[i] for jobs[i] as each finishes, so whoever holds `results` keeps what
    finished even when the run is interrupted."""
    queue: Iterator[int] = iter(range(len(jobs)))

    async def worker() -> None:
        for index in queue:
            result, ledger = await run_job(runner, jobs[index])
            runner.store.add_result(runner.run_id, result, ledger, position=runner.first_position + index)
            results[index] = result
            if runner.on_result is not None:
                runner.on_result(result)

    count = max(1, min(workers_for(concurrency), len(jobs)))
    USER_TIMEOUT_S.set(runner.client.timeout_s)  # the workers' copy of the context: each user-code call's deadline
    workers = [asyncio.create_task(worker()) for _ in range(count)]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()


def attribution(runner: Runner, job: Job) -> Attribution:
    return Attribution(run_id=runner.run_id, git_commit=runner.client.options.git_commit, prompt=job.prompt.name,
                       case_id=job.case.id, where=str(job.case.location))


def workers_for(concurrency: int) -> int:
    """-j 1 keeps one case after another, in order (reproducible, scripted faults land where expected)."""
    return concurrency if concurrency <= 1 else concurrency * WORKERS_PER_SLOT


def model_call(runner: Runner, job: Job) -> ModelCall:
    return ModelCall(job.request, kind="case", sample=job.repeat, attribution=attribution(runner, job))


async def run_job(runner: Runner, job: Job) -> tuple[CaseResult, tuple[LedgerEntry, ...]]:
    """The job's result and the ledger rows to store with it (a cache hit's)."""
    if job.case.is_conversation:  # one request per turn: tool calls answered by mocks, scripted user turns
        talk = await converse(runner.client, model_call(runner, job), job.case.tool_script, job.user_turns)
    else:
        talk = Conversation(await runner.client.complete(model_call(runner, job)))
    answer = talk.answer
    if answer.completion is None:
        if answer.skipped:
            return skipped_result(job, answer.problem or "skipped", "budget"), answer.ledger
        failed = error_result(job, answer.problem or "no answer", attempts=answer.attempts)
        return replace(failed, transcript=talk.transcript), answer.ledger
    calls = ModelCalls(runner.client, attribution(runner, job), sample=job.repeat)
    token = CURRENT.set(calls)  # comparators that call a model (llm_judge, embeddings) send through it
    try:
        result = await score_job(runner, job, answer.completion, talk)
    finally:
        CURRENT.reset(token)
    return replace(with_model_calls(result, calls), transcript=talk.transcript), (*answer.ledger, *calls.ledger)


def with_model_calls(result: CaseResult, calls: ModelCalls) -> CaseResult:
    """The result's cost with what its comparators' model calls spent (unknown if any price was)."""
    if not calls.cost_usd and not calls.cost_unknown:
        return result
    if calls.cost_unknown or result.cost_usd is None:
        return replace(result, cost_usd=None)
    return replace(result, cost_usd=result.cost_usd + calls.cost_usd)


async def score_job(runner: Runner, job: Job, completion: Completion, talk: Conversation | None = None
                    ) -> CaseResult:
    """Every comparator's score, each comparator asked even when another raised. The case fails when any
    comparator failed; a comparator that raised (naming it and where the golden file sets it) makes the
    result an error (no verdict) only when none failed, and is named beside the failures when some did. A
    conversation's own verdicts come first, then each scripted user turn's checks on the reply to it."""
    scores: list[Score] = list(talk.scores) if talk else []
    raised_by: list[str] = []
    for index, reply in talk.replies if talk else ():
        turn = job.case.user_turns[index]
        case = replace(job.case, expected=turn.expected, has_expected=turn.has_expected, comparators=turn.comparators)
        scores.extend(replace(score, reason=f"user turn {index + 1} ({turn.location}): {score.reason}")
                      for score in await comparator_scores(runner, case, reply, raised_by))
    if job.prompt.output == "json":
        scores.extend(json_output_score(completion.text or ""))
    scores.extend(await comparator_scores(runner, job.case, completion, raised_by))
    return base_result(job, combined_status(scores, raised_by), completion, tuple(scores),
                       error="\n".join(raised_by) or None)


async def comparator_scores(runner: Runner, case: Case, completion: Completion, raised_by: list[str]) -> list[Score]:
    """The case's comparators on the completion; each one that raised is added to raised_by instead."""
    scores: list[Score] = []
    for spec in case.comparators:
        try:
            score = await runner.comparator(spec)(case, completion)
        except Exception as exc:  # a comparator bug must not lose the run, nor pass for a regression
            problem = f"comparator {spec.type} ({spec.location}) {raised(exc)}"
            if spec.gating:
                raised_by.append(problem)
                continue
            score = Score(spec.type, 0.0, False, problem)  # a report-only comparator's error only reports too
        scores.append(replace(score, options=json.loads(canonical_json(dict(spec.options))), metric=spec.metric,
                              weight=spec.weight, gating=spec.gating, gate_note=spec.gate_note))
    return scores


def combined_status(scores: Sequence[Score], raised_by: Sequence[str]) -> Status:
    """failed when a gating comparator failed (whatever the others did), else error when one raised, else
    passed. A report-only comparator's score (see ComparatorSpec.gating) is shown and never decides."""
    if not all(s.passed for s in scores if s.gating):
        return "failed"
    return "error" if raised_by else "passed"


def raised(exc: Exception) -> str:
    if isinstance(exc, UserCodeFailed):  # already names the user's function, with its short traceback
        return f"failed: {exc.describe()}"
    return f"raised {type(exc).__name__}: {exc}"


def json_output_score(text: str) -> list[Score]:
    try:
        parse_json(text)
    except JSONParseError as exc:
        return [Score(JSON_OUTPUT_SCORE, 0.0, False, f"the prompt says output: json but the output is not JSON: {exc}")]
    return []


def base_result(job: Job, status: Status, completion: Completion | None, scores: tuple[Score, ...] = (),
                error: str | None = None, skip_reason: str | None = None, attempts: int = 0) -> CaseResult:
    c = completion
    usage = c.usage if c else None
    return CaseResult(
        prompt=job.prompt.name, case_id=job.case.id, file=job.case.location.file, line=job.case.location.line,
        model=job.request.model, status=status, repeat=job.repeat,
        output=c.text if c else None, scores=scores, tool_calls=c.tool_calls if c else (),
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        cached_input_tokens=usage.cached_input_tokens if usage else None,
        cost_usd=(0.0 if c.cached else c.cost_usd) if c else None,
        saved_usd=c.cost_usd if c and c.cached else None,
        latency_ms=c.latency_ms if c else None, ttft_ms=c.ttft_ms if c else None,
        cached=c.cached if c else False, resolved_model=c.resolved_model if c else None,
        error=error, attempts=c.attempts if c else attempts, tags=job.case.tags, skip_reason=skip_reason,
        expected=expected_text(job.case), input_hash=input_hash(job.case),
        request_hash=content_hash(job.request.identity()), min_pass_rate=job.case.min_pass_rate,
    )


def input_hash(case: Case) -> str:
    """What the case asks, apart from its id and where it is written: its input variables."""
    return content_hash(dict(case.input))[:16]


def error_result(job: Job, message: str, attempts: int = 1) -> CaseResult:
    return base_result(job, "error", None, error=message, attempts=attempts)


def skipped_result(job: Job, reason: str, kind: SkipKind | None = None) -> CaseResult:
    return replace(base_result(job, "skipped", None, skip_reason=reason), skip_kind=kind)
