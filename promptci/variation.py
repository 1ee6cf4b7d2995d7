"""Whether a model's outputs vary between samples of one unchanged request, as a diff with one sample per side
can tell: then a single sample can flip a case's verdict by chance, and the diff says so and suggests --repeat."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from promptci.client import ModelCall, call_key
from promptci.plan import Plan
from promptci.session import Session
from promptci.types import CaseResult, Run

# How many other samples of an unchanged request to look up in the cache (an earlier --repeat left them there).
CACHED_SAMPLES_LOOKED_AT = 2

OtherSamples = Callable[[CaseResult], Sequence[str]]  # a result -> the cached outputs of its request's other samples


@dataclass(frozen=True)
class Variation:
    """One unchanged request answered differently by two samples: the case, and where the samples came from."""

    result: CaseResult
    evidence: str  # "A and B" or "cached samples"


def find_variations(before: Run, after: Run, other_samples: OtherSamples) -> list[Variation]:
    """Cases whose request did not change A -> B yet got different outputs: at A and at B, or from another sample
    of the same request in the cache. Only for one sample per side (--repeat measures variation itself)."""
    if any(r.repeat for r in (*before.results, *after.results)):
        return []
    at_a = {(r.file, r.case_id, r.model, r.request_hash): r.output for r in before.results if r.request_hash}
    found = []
    for result in after.results:
        if result.output is None or result.request_hash is None:
            continue
        output_a = at_a.get((result.file, result.case_id, result.model, result.request_hash))
        if output_a is not None and output_a != result.output:
            found.append(Variation(result, "A and B"))
        elif any(text != result.output for text in other_samples(result)):
            found.append(Variation(result, "cached samples"))
    return found


def variation_notes(variations: Sequence[Variation]) -> list[str]:
    """One note per model whose outputs varied, naming a case and suggesting --repeat."""
    by_model: dict[str, list[Variation]] = {}
    for variation in variations:
        by_model.setdefault(variation.result.model, []).append(variation)
    notes = []
    for model, found in by_model.items():
        first = found[0].result
        count = f"{len(found)} unchanged request{'s' if len(found) > 1 else ''}"
        notes.append(f"{model} answered {count} differently from one sample to the next (e.g. {first.file}:"
                     f"{first.line} {first.case_id}, {found[0].evidence}): its outputs vary, so with one sample per "
                     "side a case can pass or fail by chance; run the diff with --repeat K (e.g. --repeat 5) to "
                     "compare pass rates")
    return notes


def cached_other_samples(session: Session, plan: Plan) -> OtherSamples:
    """Looks up, for a result of `plan`, the cached answers of its request's samples 1..N (none for providers
    whose answers are not cached)."""
    requests = {(job.case.location.file, job.case.id, job.request.model): job.request
                for job in plan.jobs if job.repeat == 0}
    endpoints = session.endpoints(plan) if plan.jobs else {}

    def other_samples(result: CaseResult) -> list[str]:
        request = requests.get((result.file, result.case_id, result.model))
        endpoint = endpoints.get(result.model)
        if request is None or endpoint is None or not (endpoint.provider.is_cacheable or endpoint.replay_only):
            return []
        found = (session.store.cache_get(call_key(endpoint.identity, ModelCall(request, sample=sample)))
                 for sample in range(1, CACHED_SAMPLES_LOOKED_AT + 1))
        return [completion.text for completion in found if completion is not None and completion.text is not None]

    return other_samples
