"""Model against model on one run's results: the side-by-side rows (per prompt, models in columns), the cases
where the models disagree, and the upgrade verdict of `--baseline-model`.

The verdict pairs each candidate's results with the baseline's by (golden file, prompt, case id):
- with repeats (--repeat K > 1), per prompt the same family-wise test as `diff` (stats.drop_verdict: exact
  Boschloo per case and CMH over the prompt's cases, weighted Holm), run in both directions (worse, better);
- without repeats, per prompt an exact one-sided sign test (McNemar) on the discordant pairs (cases one model
  passes and the other fails).
Either way each prompt's p-values are Holm-adjusted across the candidate's prompts, at alpha 0.05.
With --repeat auto the run's own sequential test (sequential.py, one family per candidate: a case is flagged by
name, or the suite) decides instead; a prompt is worse when one of its cases was flagged, never better (the
sequential test looks for drops only).

Gates (`--gate cost|latency`, repeatable): a test of the paired per-case differences (verdict/paired.py), so
that two identical models pass and a real shift fails; a case without the figure is missing evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from math import comb
from typing import Literal

from promptci.compare import pair_label
from promptci.stats import CaseCounts, DropVerdict, Interval, drop_verdict, holm_adjust, percentile, wilson_interval
from promptci.types import CaseResult, Run
from promptci.verdict.money import priced
from promptci.verdict.paired import PairedShift, measured_latency, paired_shift
from promptci.verdict.policy import Gate
from promptci.verdict.summary import build_row

ALPHA = 0.05
GATES = ("cost", "latency")
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
    shifts: tuple[PairedShift, ...] = ()  # the --gate tests, one per gate asked for
    drops: DropVerdict | None = None  # --repeat auto: the sequential test of this candidate against the baseline

    @property
    def worse(self) -> list[PromptVerdict]:
        return [p for p in self.prompts if p.outcome == "worse"]

    @property
    def flagged(self) -> list[str]:
        """--repeat auto: the cases the sequential test flagged by name."""
        return [c.key for c in self.drops.cases if c.is_drop] if self.drops else []

    @property
    def is_suite_drop(self) -> bool:
        return bool(self.drops and self.drops.is_suite_drop)

    @property
    def is_worse(self) -> bool:
        return bool(self.worse or self.is_suite_drop)

    @property
    def fails(self) -> bool:
        return bool(self.is_worse or any(shift.fails for shift in self.shifts))

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
        tested = [shift.summary() + (" FAILS" if shift.fails else "") for shift in self.shifts]
        return verdict + self._sequential_text() + ("; gate " + "; ".join(tested) if tested else "")

    def test_lines(self) -> list[str]:
        """--repeat auto: the sequential test as a diff's report gives it: each flagged case's p-value (1/E) and
        adjusted value, the suite line and the method."""
        drops = self.drops
        if drops is None:
            return []
        prefix = f"{self.model} vs {self.baseline}"
        flagged = [f"{prefix}: {c.key} dropped: p-value {c.p_value:.2g}, {drops.adjustment} {c.adjusted:.2g} <= "
                   f"alpha {drops.alpha:g}" for c in drops.cases if c.is_drop]
        found = "a drop across the suite" if drops.is_suite_drop else "no suite-wide drop"
        suite = (f"{prefix}: suite p-value {drops.suite_p_value:.2g} ({drops.adjustment} {drops.suite_adjusted:.2g}),"
                 f" alpha {drops.alpha:g}: {found}")
        return [*flagged, suite, f"{prefix}: method: {drops.method}"]

    def _sequential_text(self) -> str:
        if self.drops is None:
            return ""
        flagged = self.flagged
        named = f"; flagged: {', '.join(flagged[:5])}{' ...' if len(flagged) > 5 else ''}" if flagged else ""
        suite = (f"; a drop across the suite ({self.drops.adjustment} {self.drops.suite_adjusted:.2g} <= alpha "
                 f"{self.drops.alpha:g})" if self.is_suite_drop else "")
        return named + suite


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
        tested = [c.drops for c in self.candidates if c.drops is not None]
        if tested:
            return f"--repeat auto, per candidate: {tested[0].method}"
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
    """What the answers cost at their price (cache hits included); None when a price is unknown."""
    return priced(results).amount


def p95(results: Sequence[CaseResult]) -> float | None:
    """p95 of the latencies measured when the answers were obtained (a cache hit keeps its own)."""
    return percentile([v for v in map(measured_latency, results) if v is not None], 95)


def compare_models(run: Run, baseline: str, gates: Sequence[str] = (), alpha: float = ALPHA) -> MatrixVerdict:
    """Every other model of the run against `baseline`, case by case (by the run's sequential test when it had
    one: --repeat auto)."""
    base = samples_by_case(run, baseline)
    repeated = any(len(s) > 1 for s in base.values()) or bool(run.sequential)
    candidates = []
    for model in run.models:
        if model == baseline:
            continue
        other = samples_by_case(run, model)
        candidate = compare_one(run, baseline, model, base, other, repeated and not run.sequential, gates, alpha)
        drops = run.sequential.get(model)
        candidates.append(with_sequential_test(candidate, drops, other) if run.sequential else candidate)
    return MatrixVerdict(baseline, tuple(candidates), repeated)


def with_sequential_test(candidate: CandidateVerdict, drops: DropVerdict | None,
                         samples: dict[CaseKey, list[CaseResult]]) -> CandidateVerdict:
    """The candidate judged by its sequential test: a prompt is worse when one of its cases was flagged, its
    p-value the smallest adjusted one of its cases; no test (interrupted) leaves every prompt equal."""
    tests = {c.key: c for c in drops.cases} if drops else {}
    prompt_of = {pair_label((*key, candidate.model)): key[1] for key in samples}
    prompts = []
    for verdict in candidate.prompts:
        mine = [t for key, t in tests.items() if prompt_of.get(key) == verdict.prompt]
        p_worse = min((t.adjusted for t in mine), default=1.0)
        outcome: Outcome = "worse" if any(t.is_drop for t in mine) else "equal"
        prompts.append(replace(verdict, outcome=outcome, p_worse=p_worse, p_better=1.0))
    return replace(candidate, prompts=tuple(prompts), drops=drops)


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
    paired_keys = {k: base[k] for k in keys}
    shifts = tuple(paired_shift(Gate(name), model, baseline, paired_keys, other, alpha) for name in gates)
    return CandidateVerdict(model, baseline, tuple(verdicts), total_cost(paired_base), total_cost(paired_other),
                            p95(paired_base), p95(paired_other), shifts)


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
