"""How a comparator calls a model. While a job is scored, the runner sets a ModelCalls (a contextvar) that
sends through the run's one ModelClient, so judge and embedding requests are cached, retried, budgeted and
in the ledger like case requests; their cost is added to the job's result.

A comparator that calls models declares them in a `helper_models` attribute (a tuple of model names), so the
session builds their endpoints (and checks their keys) before the first request."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from promptci.errors import ComparatorError
from promptci.types import Completion, Request

if TYPE_CHECKING:
    from promptci.client import Attribution, CallKind, ModelClient
    from promptci.plan import Job
    from promptci.store import LedgerEntry


class ModelCallFailed(Exception):
    """A comparator's model call got no answer (provider error, budget): the result has no verdict."""


@dataclass
class ModelCalls:
    """What one job's comparators spent on model calls, and the client they send through."""

    client: ModelClient
    attribution: Attribution
    sample: int = 0
    cost_usd: float = 0.0
    cost_unknown: bool = False
    ledger: list[LedgerEntry] = field(default_factory=list)

    async def call(self, request: Request, kind: CallKind, sample: int | None = None) -> Completion:
        if request.model not in self.client.endpoints:
            raise ComparatorError(f"model {request.model!r} was not prepared for this run: a comparator that calls "
                                  "a model must name it in its `helper_models`")
        answer = await self.client.complete_for(request, kind, self.sample if sample is None else sample,
                                                self.attribution)
        self.ledger.extend(answer.ledger)
        completion = answer.completion
        if completion is None:
            raise ModelCallFailed(f"{kind} request to {request.model} got no answer: {answer.problem}")
        if not completion.cached:
            if completion.cost_usd is None:
                self.cost_unknown = True
            else:
                self.cost_usd += completion.cost_usd
        return completion


CURRENT: ContextVar[ModelCalls | None] = ContextVar("promptci_model_calls", default=None)


def current_calls(comparator: str) -> ModelCalls:
    """The running job's ModelCalls; outside a run (a comparator called directly) a clear error."""
    calls = CURRENT.get()
    if calls is None:
        raise ComparatorError(f"comparator {comparator!r} calls a model, which it can do only inside a promptci run")
    return calls


def helper_models(jobs: Iterable[Job]) -> tuple[str, ...]:
    """Models the jobs' comparators call (judges, embedding models), in first-seen order."""
    found: dict[str, None] = {}
    seen: set[int] = set()
    for job in jobs:
        for spec in job.case.comparators:
            if spec.instance is None or id(spec.instance) in seen:
                continue
            seen.add(id(spec.instance))
            for model in getattr(spec.instance, "helper_models", ()):
                found.setdefault(model, None)
    return tuple(found)
