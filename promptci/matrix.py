"""Model against model on one run's results: the side-by-side rows (per prompt, models in columns), the cases
where the models disagree, and the upgrade verdict of `--baseline-model`.

The verdict pairs each candidate's results with the baseline's by (golden file, prompt, case id):
- with repeats (--repeat K > 1), per prompt the same family-wise test as `diff` (stats.drop_verdict: exact
  Boschloo per case and CMH over the prompt's cases, weighted Holm), run in both directions (worse, better);
- without repeats, per prompt an exact one-sided sign test (McNemar) on the discordant pairs (cases one model
  passes and the other fails).
Either way each prompt's p-values are Holm-adjusted across the candidate's prompts, at alpha 0.05.

Gates (`--gate`, repeatable), each comparing a candidate's paired cases with the baseline's:
- cost: fails when the candidate's total cost is more than COST_GATE_RATIO (10 %) above the baseline's, or
  when a price is unknown (the gate cannot be checked);
- latency: fails when the candidate's p95 latency is more than LATENCY_GATE_RATIO (20 %) and more than
  LATENCY_GATE_MIN_MS (100 ms) above the baseline's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from math import comb
from typing import Literal

from promptci.reporting.stats import build_row, percentile
from promptci.stats import CaseCounts, Interval, drop_verdict, holm_adjust, wilson_interval
from promptci.types import CaseResult, Run

ALPHA = 0.05
GATES = ("cost", "latency")
COST_GATE_RATIO = 0.10
LATENCY_GATE_RATIO = 0.20
LATENCY_GATE_MIN_MS = 100.0
Outcome = Literal["worse", "equal", "better"]
CaseKey = tuple[str, str, str]  # golden file, prompt, case id


@dataclass(frozen=True)
class ModelCell:
    """One prompt x model of the side-by-side table."""

    model: str
    passed: int
    scored: int
    interval: Interval
    mean_score: float | None
    cost_usd: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    ttft_p50_ms: float | None

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.scored if self.scored else None


@dataclass(frozen=True)
class MatrixRow:
    prompt: str
    cells: tuple[ModelCell, ...]  # in the run's model order


@dataclass(frozen=True)
class Disagreement:
    """A case whose models did not all get the same status (first sample of each)."""

    file: str
    line: int
    prompt: str
    case_id: str
    by_model: tuple[tuple[str, str, str | None], ...]  # (model, status, output)


@dataclass(frozen=True)
class PromptVerdict:
    prompt: str
    outcome: Outcome
    baseline_rate: float | None
    candidate_rate: float | None
    p_worse: float  # Holm-adjusted across the candidate's prompts
    p_better: float

    @property
    def delta_points(self) -> float | None:
        if self.baseline_rate is None or self.candidate_rate is None:
            return None
        return (self.candidate_rate - self.baseline_rate) * 100


@dataclass(frozen=True)
class CandidateVerdict:
    model: str
    baseline: str
    prompts: tuple[PromptVerdict, ...]
    cost_baseline: float | None
    cost_candidate: float | None
    p95_baseline_ms: float | None
    p95_candidate_ms: float | None
    gate_failures: tuple[str, ...] = ()

    @property
    def worse(self) -> list[PromptVerdict]:
        return [p for p in self.prompts if p.outcome == "worse"]

    @property
    def fails(self) -> bool:
        return bool(self.worse or self.gate_failures)

    @property
    def cost_change(self) -> float | None:
        """Relative change of the candidate's cost over the paired cases; None when unknown or 0 at baseline."""
        if self.cost_baseline is None or self.cost_candidate is None or self.cost_baseline == 0:
            return None
        return self.cost_candidate / self.cost_baseline - 1

    @property
    def p95_change_ms(self) -> float | None:
        if self.p95_baseline_ms is None or self.p95_candidate_ms is None:
            return None
        return self.p95_candidate_ms - self.p95_baseline_ms

    def line(self) -> str:
        """'claude-x: 3 prompts equal, 1 better (route +12 pts), cost -41%, p95 +300 ms'"""
        parts = []
        for outcome in ("worse", "equal", "better"):
            chosen = [p for p in self.prompts if p.outcome == outcome]
            if not chosen:
                continue
            label = f"{len(chosen)} prompt{'s' if len(chosen) != 1 else ''} {outcome}"
            if outcome != "equal":
                label += " (" + ", ".join(f"{p.prompt} {signed_points(p.delta_points)}" for p in chosen) + ")"
            parts.append(label)
        if self.cost_change is not None:
            parts.append(f"cost {self.cost_change * 100:+.0f}%")
        if self.p95_change_ms is not None:
            parts.append(f"p95 {self.p95_change_ms:+.0f} ms")
        verdict = f"{self.model} vs {self.baseline}: {', '.join(parts) or 'no paired cases'}"
        if self.gate_failures:
            verdict += "; gate failed: " + "; ".join(self.gate_failures)
        return verdict


@dataclass(frozen=True)
class MatrixVerdict:
    baseline: str
    candidates: tuple[CandidateVerdict, ...]
    repeated: bool

    @property
    def fails(self) -> bool:
        return any(c.fails for c in self.candidates)

    @property
    def method(self) -> str:
        if self.repeated:
            return ("per prompt, the diff gate's family-wise test (Boschloo per case, CMH over cases, weighted Holm) "
                    "in each direction; Holm across prompts, alpha 0.05")
        return "per prompt, an exact one-sided sign test on discordant pairs; Holm across prompts, alpha 0.05"


def signed_points(points: float | None) -> str:
    return "n/a" if points is None else f"{points:+.0f} pts"


def is_scored(result: CaseResult) -> bool:
    return result.status in ("passed", "failed")


def samples_by_case(run: Run, model: str) -> dict[CaseKey, list[CaseResult]]:
    grouped: dict[CaseKey, list[CaseResult]] = {}
    for result in run.results:
        if result.model == model:
            grouped.setdefault((result.file, result.prompt, result.case_id), []).append(result)
    return grouped


def prompts_of(run: Run) -> list[str]:
    return list(dict.fromkeys(r.prompt for r in run.results))


def side_by_side(run: Run) -> list[MatrixRow]:
    """Per prompt, one cell per model of the run."""
    rows = []
    for prompt in prompts_of(run):
        cells = []
        for model in run.models:
            results = [r for r in run.results if r.prompt == prompt and r.model == model]
            if not results:
                continue
            group = build_row(prompt, model, results)
            scored = group.passed + group.failed
            cells.append(ModelCell(model, group.passed, scored, wilson_interval(group.passed, scored),
                                   group.mean_score, group.cost_usd, group.latency_p50_ms, group.latency_p95_ms,
                                   group.ttft_p50_ms))
        rows.append(MatrixRow(prompt, tuple(cells)))
    return rows


def disagreements(run: Run) -> list[Disagreement]:
    """Cases (first sample) whose status differs between models; only when the run has several models."""
    if len(run.models) < 2:
        return []
    firsts: dict[CaseKey, dict[str, CaseResult]] = {}
    for result in run.results:
        firsts.setdefault((result.file, result.prompt, result.case_id), {}).setdefault(result.model, result)
    found = []
    for (file, prompt, case_id), by_model in firsts.items():
        if len(by_model) > 1 and len({r.status for r in by_model.values()}) > 1:
            line = next(iter(by_model.values())).line
            found.append(Disagreement(file, line, prompt, case_id,
                                      tuple((m, by_model[m].status, by_model[m].output) for m in run.models
                                            if m in by_model)))
    return found


def sign_test_p(wins: int, losses: int) -> float:
    """One-sided exact binomial: the chance of at least `losses` of the wins + losses discordant pairs going
    against the candidate if either direction were equally likely (exact McNemar)."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(comb(n, k) for k in range(losses, n + 1)) / 2**n


def pass_counts(samples: Sequence[CaseResult]) -> tuple[int, int]:
    scored = [r for r in samples if is_scored(r)]
    return sum(r.status == "passed" for r in scored), len(scored)


def prompt_p_values(pairs: Sequence[tuple[CaseKey, list[CaseResult], list[CaseResult]]],
                    repeated: bool) -> tuple[float, float]:
    """(p of 'candidate worse', p of 'candidate better') for one prompt's paired cases."""
    if repeated:
        counts = [CaseCounts("::".join(key), *pass_counts(a), *pass_counts(b)) for key, a, b in pairs]
        swapped = [CaseCounts(c.key, c.passes_b, c.n_b, c.passes_a, c.n_a) for c in counts]
        return family_p(counts), family_p(swapped)
    losses = wins = 0
    for _, baseline, candidate in pairs:
        a, b = baseline[0], candidate[0]
        if is_scored(a) and is_scored(b) and a.status != b.status:
            losses += a.status == "passed"
            wins += b.status == "passed"
    return sign_test_p(wins, losses), sign_test_p(losses, wins)


def family_p(counts: Sequence[CaseCounts]) -> float:
    """The smallest family-wise adjusted p-value of the diff gate's test: the prompt's p of a drop."""
    verdict = drop_verdict(counts, ALPHA)
    return min([verdict.suite_adjusted, *(c.adjusted for c in verdict.cases)])


def rate(samples: Sequence[Sequence[CaseResult]]) -> float | None:
    passes = scored = 0
    for group in samples:
        p, n = pass_counts(group)
        passes, scored = passes + p, scored + n
    return passes / scored if scored else None


def total_cost(results: Sequence[CaseResult]) -> float | None:
    """What the answers cost, a cache hit at what it would have cost: the models' prices, not the cache's luck."""
    costs = [r.saved_usd if r.cached else r.cost_usd for r in results if r.status != "skipped"]
    return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)


def p95(results: Sequence[CaseResult]) -> float | None:
    return percentile([r.latency_ms for r in results if r.latency_ms is not None and not r.cached], 95)


def compare_models(run: Run, baseline: str, gates: Sequence[str] = (), alpha: float = ALPHA) -> MatrixVerdict:
    """Every other model of the run against `baseline`, case by case."""
    base = samples_by_case(run, baseline)
    repeated = any(len(s) > 1 for s in base.values())
    candidates = []
    for model in run.models:
        if model == baseline:
            continue
        other = samples_by_case(run, model)
        candidates.append(compare_one(run, baseline, model, base, other, repeated, gates, alpha))
    return MatrixVerdict(baseline, tuple(candidates), repeated)


def compare_one(run: Run, baseline: str, model: str, base: dict[CaseKey, list[CaseResult]],
                other: dict[CaseKey, list[CaseResult]], repeated: bool, gates: Sequence[str],
                alpha: float) -> CandidateVerdict:
    keys = [k for k in base if k in other]
    prompts = [p for p in prompts_of(run) if any(k[1] == p for k in keys)]
    raw = [prompt_p_values([(k, base[k], other[k]) for k in keys if k[1] == p], repeated) for p in prompts]
    worse_p = holm_adjust([w for w, _ in raw])
    better_p = holm_adjust([b for _, b in raw])
    verdicts = []
    for index, prompt in enumerate(prompts):
        mine = [k for k in keys if k[1] == prompt]
        outcome: Outcome = "worse" if worse_p[index] <= alpha else "better" if better_p[index] <= alpha else "equal"
        verdicts.append(PromptVerdict(prompt, outcome, rate([base[k] for k in mine]), rate([other[k] for k in mine]),
                                      worse_p[index], better_p[index]))
    paired_base = [r for k in keys for r in base[k]]
    paired_other = [r for k in keys for r in other[k]]
    verdict = CandidateVerdict(model, baseline, tuple(verdicts), total_cost(paired_base), total_cost(paired_other),
                               p95(paired_base), p95(paired_other))
    return replace(verdict, gate_failures=gate_failures(verdict, gates))


def gate_failures(verdict: CandidateVerdict, gates: Sequence[str]) -> tuple[str, ...]:
    failures = []
    if "cost" in gates:
        if verdict.cost_baseline is None or verdict.cost_candidate is None:
            failures.append("cost: a price is unknown, so the cost gate cannot be checked (add it under pricing:)")
        elif verdict.cost_candidate > verdict.cost_baseline * (1 + COST_GATE_RATIO) + 1e-12:
            change = verdict.cost_change
            shown = f"{change * 100:+.0f}%" if change is not None else "from $0"
            failures.append(f"cost {shown} (more than +{COST_GATE_RATIO * 100:.0f}%)")
    if "latency" in gates:
        before, after = verdict.p95_baseline_ms, verdict.p95_candidate_ms
        if before is not None and after is not None and after > before * (1 + LATENCY_GATE_RATIO) \
                and after - before > LATENCY_GATE_MIN_MS:
            failures.append(f"p95 latency {before:.0f} -> {after:.0f} ms (more than +{LATENCY_GATE_RATIO * 100:.0f}% "
                            f"and +{LATENCY_GATE_MIN_MS:.0f} ms)")
    return tuple(failures)



def check_matrix_options(baseline: str | None, gates: Sequence[str], models: Sequence[str]) -> None:
    """--baseline-model must name a model of the matrix, with another to compare; --gate needs a baseline."""
    from promptci.errors import PromptCIError

    unknown = [g for g in gates if g not in GATES]
    if unknown:
        raise PromptCIError(f"--gate {unknown[0]!r} is not known (known: {', '.join(GATES)})")
    if gates and baseline is None:
        raise PromptCIError("--gate compares models with the baseline: add --baseline-model MODEL")
    if baseline is None:
        return
    if baseline not in models:
        raise PromptCIError(f"--baseline-model {baseline!r} is not in the run's models ({', '.join(models)}): "
                            f"add -m {baseline}")
    if len(models) < 2:
        raise PromptCIError(f"--baseline-model {baseline!r} needs another model to compare: add -m MODEL")


MATRIX_METRICS = ("pass rate [95% CI]", "mean score", "cost", "latency p50/p95", "first token p50")
MAX_DISAGREEMENTS_SHOWN = 20


def cell_texts(cell: ModelCell) -> tuple[str, ...]:
    """A cell's values in MATRIX_METRICS order, as every report shows them."""
    from promptci.reporting.stats import format_cost, format_ms, format_rate, format_score

    interval = f" [{cell.interval.low * 100:.0f}-{cell.interval.high * 100:.0f}]" if cell.scored else ""
    return (f"{format_rate(cell.pass_rate)}{interval} ({cell.passed}/{cell.scored})", format_score(cell.mean_score),
            format_cost(cell.cost_usd), f"{format_ms(cell.latency_p50_ms)}/{format_ms(cell.latency_p95_ms)}",
            format_ms(cell.ttft_p50_ms))


def matrix_to_dict(run: Run) -> dict[str, object] | None:
    """The JSON report's `matrix` section; None for a run of one model."""
    if len(run.models) < 2:
        return None
    verdict = compare_models(run, run.baseline_model) if run.baseline_model in run.models else None
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
            "baseline": verdict.baseline, "method": verdict.method, "fails": verdict.fails,
            "candidates": [{"model": c.model, "summary": c.line(), "fails": c.fails,
                            "cost_change": c.cost_change, "p95_change_ms": c.p95_change_ms,
                            "prompts": [{"prompt": p.prompt, "outcome": p.outcome, "baseline_rate": p.baseline_rate,
                                         "candidate_rate": p.candidate_rate, "p_worse": p.p_worse,
                                         "p_better": p.p_better} for p in c.prompts]}
                           for c in verdict.candidates]},
    }
