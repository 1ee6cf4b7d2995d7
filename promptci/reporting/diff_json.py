"""The JSON comparison document: both runs, every case's change with its samples, totals and the verdict.

`kind: "comparison"` tells it from a results document; its `schema_version` moves on its own."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

from promptci.compare import CaseChange, Comparison, GroupTotals, Measure, Side
from promptci.reporting.diffview import STATUS_WORDS, threshold_note
from promptci.reporting.jsonreport import result_dict
from promptci.stats import Interval
from promptci.types import CaseResult, ResultKey, Review
from promptci.verdict.diff import decision_of
from promptci.verdict.summary import diff_case_reliability, diff_k, diff_prompt_reliability

COMPARISON_SCHEMA_VERSION = 1


def _measure(measure: Measure) -> dict[str, float | None]:
    return {"before": measure.before, "after": measure.after, "delta": measure.delta}


def _interval(interval: Interval) -> dict[str, float]:
    return {"low": interval.low, "high": interval.high}


def _side(side: Side) -> dict[str, Any]:
    return {"revision": side.revision, "run_id": side.run_id,
            "git": {"commit": side.git.commit, "dirty": side.git.dirty, "branch": side.git.branch},
            "samples": {"fresh": side.samples.fresh, "cached": side.samples.cached}}


def change_to_dict(change: CaseChange, reviews: tuple[Mapping[ResultKey, Review], Mapping[ResultKey, Review]] = (
        {}, {})) -> dict[str, Any]:
    """One case's change; a sample whose output a human reviewed has `review`, as a run document's result."""
    def samples(results: tuple[CaseResult, ...], reviewed: Mapping[ResultKey, Review]) -> list[dict[str, Any]]:
        return [result_dict(r, reviewed.get((r.prompt, r.case_id, r.model, r.repeat))) for r in results]

    passes_a, n_a, passes_b, n_b = change.counts
    before, after = change.intervals
    return {
        "prompt": change.prompt, "case_id": change.case_id, "model": change.model, "file": change.file,
        "line": change.line, "transition": change.transition, "renamed_from": change.renamed_from,
        "flaky": change.is_flaky, "checks_changed": list(change.checks_changed),
        "min_pass_rate": threshold_note(change),  # how B's min_pass_rate decided a repeated case, or null
        "counts": {"passes_before": passes_a, "samples_before": n_a, "passes_after": passes_b, "samples_after": n_b},
        "intervals": {"before": _interval(before), "after": _interval(after)},
        "scores": [{"comparator": s.comparator, "before": s.before, "after": s.after} for s in change.scores],
        "output_diff": change.output_diff, "diverged": change.diverged,
        "cost_usd": _measure(change.cost_usd), "tokens": _measure(change.tokens),
        "latency_ms": _measure(change.latency_ms),
        "before": samples(change.before, reviews[0]), "after": samples(change.after, reviews[1]),
    }


def _totals(totals: GroupTotals) -> dict[str, Any]:
    return {"prompt": totals.prompt, "model": totals.model,
            **{name: _measure(getattr(totals, name)) for name in ("passed", "cases", "cost_usd", "tokens",
                                                                   "latency_ms")}}


def comparison_to_dict(comparison: Comparison) -> dict[str, Any]:
    decision = decision_of(comparison)
    code = decision.exit_code
    before, after = comparison.sides
    return {
        "schema_version": COMPARISON_SCHEMA_VERSION,
        "kind": "comparison",
        "before": _side(before),
        "after": _side(after),
        "status": STATUS_WORDS.get(code, code.name).lower().replace(" ", "_"),
        "exit_code": int(code),
        "repeated": comparison.repeated,
        "counts": dict(comparison.counts),
        "totals": [_totals(t) for t in comparison.totals],
        "verdict": comparison.verdict.to_dict() if comparison.verdict else None,
        "changes": [change_to_dict(c, comparison.reviews) for c in comparison.changes],
        "reliability": _reliability(comparison),
        "decision": decision.to_dict(),  # the exit code's findings and notes, as every report states them
    }


def _reliability(comparison: Comparison) -> dict[str, Any] | None:
    """With repeats: pass@k and pass^k at A and at B, per prompt x model and per case x model (None without)."""
    k = diff_k(comparison)
    if k is None:
        return None
    cases = diff_case_reliability(comparison)
    return {"k": k, "prompts": [row.to_dict() for row in diff_prompt_reliability(comparison, cases)],
            "cases": [row.to_dict() for row in cases]}


def write_comparison_json(comparison: Comparison, stream: TextIO) -> None:
    json.dump(comparison_to_dict(comparison), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
