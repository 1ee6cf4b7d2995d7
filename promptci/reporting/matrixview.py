"""The model matrix as every report shows it: a cell's texts and the JSON report's `matrix` section, whose
verdict is the run's own (never recomputed here without its gates)."""

from __future__ import annotations

from promptci.matrix import ModelCell, compare_models, disagreements, side_by_side
from promptci.reporting.stats import format_cost, format_ms, format_rate, format_score
from promptci.types import Run
from promptci.verdict.gates import decision_of
from promptci.verdict.policy import Gate

MATRIX_METRICS = ("pass rate [95% CI]", "mean score", "cost", "latency p50/p95", "first token p50")
MAX_DISAGREEMENTS_SHOWN = 20


def cell_texts(cell: ModelCell) -> tuple[str, ...]:
    """A cell's values in MATRIX_METRICS order, as every report shows them."""
    interval = f" [{cell.interval.low * 100:.0f}-{cell.interval.high * 100:.0f}]" if cell.scored else ""
    return (f"{format_rate(cell.pass_rate)}{interval} ({cell.passed}/{cell.scored})", format_score(cell.mean_score),
            format_cost(cell.cost_usd), f"{format_ms(cell.latency_p50_ms)}/{format_ms(cell.latency_p95_ms)}",
            format_ms(cell.ttft_p50_ms))


def matrix_to_dict(run: Run) -> dict[str, object] | None:
    """The JSON report's `matrix` section; None for a run of one model."""
    if len(run.models) < 2:
        return None
    verdict = compare_models(run, run.baseline_model) if run.baseline_model in run.models else None
    decision = decision_of(run)
    failing = {model for f in decision.by_gate(Gate.UPGRADE, Gate.COST, Gate.LATENCY) if f.exit_code == 1
               for model in f.subjects}
    return {
        "models": list(run.models),
        "prompts": [{"prompt": row.prompt, "models": [
            {"model": c.model, "passed": c.passed, "scored": c.scored, "pass_rate": c.pass_rate,
             "pass_rate_interval": [c.interval.low, c.interval.high], "mean_score": c.mean_score,
             "cost_usd": c.cost_usd, "latency_p50_ms": c.latency_p50_ms, "latency_p95_ms": c.latency_p95_ms,
             "ttft_p50_ms": c.ttft_p50_ms} for c in row.cells]} for row in side_by_side(run)],
        "disagreements": [{"file": d.file, "line": d.line, "prompt": d.prompt, "case_id": d.case_id,
                           "models": [{"model": m, "status": s, "output": o} for m, s, o in d.by_model]}
                          for d in disagreements(run)],
        "verdict": None if verdict is None else {
            "baseline": verdict.baseline, "method": verdict.method, "fails": bool(failing),
            "candidates": [{"model": c.model, "summary": c.line(), "fails": c.model in failing,
                            "cost_change": c.cost_change, "p95_change_ms": c.p95_change_ms,
                            "prompts": [{"prompt": p.prompt, "outcome": p.outcome, "baseline_rate": p.baseline_rate,
                                         "candidate_rate": p.candidate_rate, "p_worse": p.p_worse,
                                         "p_better": p.p_better} for p in c.prompts],
                            "sequential": c.drops.to_dict() if c.drops else None}
                           for c in verdict.candidates]},
    }
