"""The pure summaries of a run every report and gate shares: per prompt x model rows (counts, cost as Money,
tokens, latency percentiles), the failing results in order, per-case pass rates of a repeated run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from promptci.compare import Comparison
from promptci.reliability import pass_at_k, pass_hat_k, wilson_lower
from promptci.stats import percentile, wilson_interval
from promptci.types import CaseResult, Run, case_status_of, parse_iso
from promptci.verdict.money import spent


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def result_score(result: CaseResult) -> float | None:
    """The mean of a result's score values; None when it has no scores."""
    return mean([s.value for s in result.scores])


@dataclass(frozen=True)
class GroupRow:
    """Aggregates of one prompt x model cell of the report.

    Tokens count every result that reports them, cached ones included (they describe the answers);
    cost_usd is what was spent (cache hits cost 0) and is None only when no result had a known price.
    Latency and TTFT leave out cache hits, whose timing says nothing about the model.
    """

    prompt: str
    model: str
    total: int
    passed: int
    failed: int
    errors: int
    skipped: int
    pass_rate: float | None  # passed / (total - skipped)
    mean_score: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    cost_unknown: int  # results with an answer but no known price
    saved_usd: float
    cached: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _count(results: Sequence[CaseResult], status: str) -> int:
    return sum(1 for r in results if r.status == status)


def _cost(results: Sequence[CaseResult]) -> tuple[float | None, int]:
    cost = spent(results)
    return (None if cost.unknown and cost.known == 0 else cost.known), cost.unknown


def _timings(results: Sequence[CaseResult]) -> tuple[list[float], list[float]]:
    fresh = [r for r in results if not r.cached]
    latencies = [r.latency_ms for r in fresh if r.latency_ms is not None]
    ttfts = [r.ttft_ms for r in fresh if r.ttft_ms is not None]
    return latencies, ttfts


def build_row(prompt: str, model: str, results: Sequence[CaseResult]) -> GroupRow:
    passed, skipped = _count(results, "passed"), _count(results, "skipped")
    scored = [s for s in (result_score(r) for r in results) if s is not None]
    cost, unknown = _cost(results)
    latencies, ttfts = _timings(results)
    counted = len(results) - skipped
    return GroupRow(
        prompt=prompt,
        model=model,
        total=len(results),
        passed=passed,
        failed=_count(results, "failed"),
        errors=_count(results, "error"),
        skipped=skipped,
        pass_rate=passed / counted if counted else None,
        mean_score=mean(scored),
        input_tokens=sum(r.input_tokens or 0 for r in results if not r.cached),  # billed tokens only
        output_tokens=sum(r.output_tokens or 0 for r in results if not r.cached),
        cost_usd=cost,
        cost_unknown=unknown,
        saved_usd=sum(r.saved_usd or 0.0 for r in results if r.cached),
        cached=sum(1 for r in results if r.cached),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        latency_max_ms=max(latencies, default=None),
        ttft_p50_ms=percentile(ttfts, 50),
        ttft_p95_ms=percentile(ttfts, 95),
    )


def _model_order(run: Run) -> dict[str, int]:
    order = {m: i for i, m in enumerate(run.models)}
    for r in run.results:
        order.setdefault(r.model, len(order))
    return order


def group_rows(run: Run) -> list[GroupRow]:
    """One row per (prompt, model): prompts sorted by name, models in the run's matrix order."""
    groups: dict[tuple[str, str], list[CaseResult]] = {}
    for r in run.results:
        groups.setdefault((r.prompt, r.model), []).append(r)
    order = _model_order(run)
    keys = sorted(groups, key=lambda k: (k[0], order[k[1]]))
    return [build_row(prompt, model, groups[(prompt, model)]) for prompt, model in keys]


@dataclass(frozen=True)
class ProblemCase:
    """A failing or errored case x model, once however many samples it had: its first sample of the case's
    status (an errored one when any errored), and how many of its samples failed and errored."""

    result: CaseResult
    failed: int = 0
    errored: int = 0
    samples: int = 1
    passed: int = 0

    def label(self, with_repeat: bool) -> str:
        """`file:line case-id [model]`, with --repeat the tally: `(3/5 samples failed, 1/5 errored)`, and by a
        min_pass_rate: `(3/5 passed, Wilson lower 0.23 < 0.8 required)`."""
        r = self.result
        label = f"{r.file}:{r.line} {r.case_id} [{r.model}]"
        if not with_repeat:
            return label
        if r.min_pass_rate is not None and not self.errored:
            return f"{label} ({threshold_text(self.passed, self.passed + self.failed, r.min_pass_rate)})"
        counts = [f"{self.failed}/{self.samples} samples failed"] if self.failed else []
        if self.errored:
            counts.append(f"{self.errored}/{self.samples} {'errored' if counts else 'samples errored'}")
        return f"{label} ({', '.join(counts)})"


def threshold_text(passes: int, samples: int, min_pass_rate: float) -> str:
    """How a case's min_pass_rate decided it: `3/5 passed, Wilson lower 0.23 < 0.8 required`."""
    if passes == samples:
        return f"{passes}/{samples} passed, every sample: min_pass_rate {min_pass_rate:g} met"
    low = wilson_lower(passes, samples)
    sign = ">=" if low >= min_pass_rate else "<"
    return f"{passes}/{samples} passed, Wilson lower {low:.2f} {sign} {min_pass_rate:g} required"


def problem_cases(run: Run) -> list[ProblemCase]:
    """Failing and errored cases, each once (with --repeat K, not K times), in file, line, model order."""
    samples: dict[tuple[str, str, str, str], list[CaseResult]] = {}
    for r in run.results:
        samples.setdefault((r.file, r.prompt, r.case_id, r.model), []).append(r)
    problems = []
    for results in samples.values():
        failed, errored = (sum(r.status == status for r in results) for status in ("failed", "error"))
        if case_status_of(results) in ("failed", "error"):
            shown = next(r for r in sorted(results, key=lambda r: r.repeat)
                         if r.status == ("error" if errored else "failed"))
            passed = sum(r.status == "passed" for r in results)
            problems.append(ProblemCase(shown, failed, errored, len(results), passed))
    order = _model_order(run)
    return sorted(problems, key=lambda p: (p.result.file, p.result.line, p.result.case_id, order[p.result.model]))


def duration_s(run: Run) -> float | None:
    """Wall time of the run from its ISO 8601 timestamps; None when unfinished or unparsable."""
    return elapsed_s(run.started_at, run.finished_at)


def elapsed_s(started_at: str, finished_at: str | None) -> float | None:
    """Seconds between two stored ISO 8601 timestamps; None when unfinished or unparsable."""
    if not finished_at:
        return None
    try:
        return max((parse_iso(finished_at) - parse_iso(started_at)).total_seconds(), 0.0)
    except (ValueError, TypeError):
        return None


def has_repeats(run: Run) -> bool:
    return any(r.repeat for r in run.results)


@dataclass(frozen=True)
class CaseRate:
    """A repeated case x model: how many of its scored samples passed, the 95% Wilson interval of that rate,
    whether the samples disagreed (flaky: some passed, some failed), its min_pass_rate and status by it, and
    pass@k and pass^k at the run's K (None when fewer than K samples were scored)."""

    prompt: str
    case_id: str
    model: str
    file: str
    line: int
    passed: int
    samples: int  # scored samples (passed or failed); errors and skips leave no verdict
    pass_rate: float | None
    interval: tuple[float, float]
    status: str = "passed"  # types.case_status_of its samples
    min_pass_rate: float | None = None
    k: int = 1
    pass_at_k: float | None = None
    pass_hat_k: float | None = None

    @property
    def is_flaky(self) -> bool:
        return 0 < self.passed < self.samples

    def threshold(self) -> str | None:
        """How min_pass_rate decided the case (`3/5 passed, Wilson lower 0.23 < 0.8 required`); None without one."""
        if self.min_pass_rate is None or not self.samples:
            return None
        return threshold_text(self.passed, self.samples, self.min_pass_rate)

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "case_id": self.case_id, "model": self.model, "file": self.file,
                "line": self.line, "passed": self.passed, "samples": self.samples, "pass_rate": self.pass_rate,
                "interval": list(self.interval), "flaky": self.is_flaky, "status": self.status,
                "min_pass_rate": self.min_pass_rate, "threshold": self.threshold(), "k": self.k,
                "pass_at_k": self.pass_at_k, "pass_hat_k": self.pass_hat_k}


def repeat_count(run: Run) -> int:
    """K: the samples a case had in this run (--repeat K)."""
    return max((r.repeat for r in run.results), default=0) + 1


def case_rates(run: Run) -> list[CaseRate]:
    """Per case x model of a repeated run (none without --repeat), in the run's order."""
    if not has_repeats(run):
        return []
    samples: dict[tuple[str, str, str, str], list[CaseResult]] = {}
    for r in run.results:
        samples.setdefault((r.file, r.prompt, r.case_id, r.model), []).append(r)
    k = repeat_count(run)
    rates = []
    for (file, prompt, case_id, model), results in samples.items():
        scored = [r for r in results if r.status in ("passed", "failed")]
        passed = sum(r.status == "passed" for r in scored)
        interval = wilson_interval(passed, len(scored))
        at_k, hat_k = pass_k_of(results, k)
        rates.append(CaseRate(prompt, case_id, model, file, results[0].line, passed, len(scored),
                              passed / len(scored) if scored else None, (interval.low, interval.high),
                              case_status_of(results), results[0].min_pass_rate, k, at_k, hat_k))
    return rates


def pass_k_of(samples: Sequence[CaseResult], k: int) -> tuple[float | None, float | None]:
    """pass@k and pass^k of one case's samples by reliability.py's exact estimators, over its scored samples;
    (None, None) when fewer than k were scored."""
    scored = [r for r in samples if r.status in ("passed", "failed")]
    if len(scored) < k:
        return None, None
    passed = sum(r.status == "passed" for r in scored)
    return float(pass_at_k(len(scored), passed, k)), float(pass_hat_k(len(scored), passed, k))


def flaky_cases(run: Run) -> list[CaseRate]:
    """Repeated cases whose samples disagreed: some passed, some did not."""
    return [rate for rate in case_rates(run) if rate.is_flaky]


@dataclass(frozen=True)
class PromptReliability:
    """pass@k and pass^k of one prompt x model: the mean over its cases that had k scored samples."""

    prompt: str
    model: str
    k: int
    cases: int  # cases counted (k scored samples or more)
    pass_at_k: float | None
    pass_hat_k: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prompt_reliability(run: Run, rates: Sequence[CaseRate] | None = None) -> list[PromptReliability]:
    """Per prompt x model of a repeated run, prompts by name, models in the run's order."""
    rates = case_rates(run) if rates is None else rates
    groups: dict[tuple[str, str], list[CaseRate]] = {}
    for rate in rates:
        groups.setdefault((rate.prompt, rate.model), []).append(rate)
    order = _model_order(run)
    rows = []
    for prompt, model in sorted(groups, key=lambda key: (key[0], order.get(key[1], len(order)))):
        counted = [rate for rate in groups[(prompt, model)] if rate.pass_at_k is not None]
        rows.append(PromptReliability(prompt, model, repeat_count(run), len(counted),
                                      mean([rate.pass_at_k for rate in counted if rate.pass_at_k is not None]),
                                      mean([rate.pass_hat_k for rate in counted if rate.pass_hat_k is not None])))
    return rows



@dataclass(frozen=True)
class SidesReliability:
    """pass@k and pass^k of a diff at A and at B: one case x model (case_id set), or one prompt x model, the mean
    over its cases that had k scored samples at that side (`cases` counts them, A and B). None: no such case."""

    prompt: str
    model: str
    k: int
    pass_at_k: tuple[float | None, float | None]
    pass_hat_k: tuple[float | None, float | None]
    case_id: str | None = None
    file: str | None = None
    cases: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"prompt": self.prompt, "model": self.model, "k": self.k,
                                 "pass_at_k": {"before": self.pass_at_k[0], "after": self.pass_at_k[1]},
                                 "pass_hat_k": {"before": self.pass_hat_k[0], "after": self.pass_hat_k[1]}}
        if self.case_id is None:
            return {**found, "cases": {"before": self.cases[0], "after": self.cases[1]}}
        return {"file": self.file, "case_id": self.case_id, **found}


def diff_k(comparison: Comparison) -> int | None:
    """The k of a repeated diff's pass@k and pass^k: the fewest samples a case had at B (K of --repeat K, the
    first look of --repeat auto); None without repeats."""
    if not comparison.repeated:
        return None
    counts = [max(r.repeat for r in change.after) + 1 for change in comparison.changes if change.after]
    return min(counts) if counts else None


def diff_case_reliability(comparison: Comparison) -> list[SidesReliability]:
    """Per case x model of a repeated diff, in the comparison's order (none without repeats)."""
    k = diff_k(comparison)
    if k is None:
        return []
    rows = []
    for change in comparison.changes:
        (at_a, hat_a), (at_b, hat_b) = pass_k_of(change.before, k), pass_k_of(change.after, k)
        rows.append(SidesReliability(change.prompt, change.model, k, (at_a, at_b), (hat_a, hat_b), change.case_id,
                                     change.file))
    return rows


def diff_prompt_reliability(comparison: Comparison,
                            cases: Sequence[SidesReliability] | None = None) -> list[SidesReliability]:
    """Per prompt x model of a repeated diff, in the order of the comparison's totals."""
    cases = diff_case_reliability(comparison) if cases is None else cases
    groups: dict[tuple[str, str], list[SidesReliability]] = {(t.prompt, t.model): [] for t in comparison.totals}
    for row in cases:
        groups.setdefault((row.prompt, row.model), []).append(row)
    found = []
    for (prompt, model), rows in groups.items():
        if not rows:
            continue
        at_k = [[r.pass_at_k[side] for r in rows if r.pass_at_k[side] is not None] for side in (0, 1)]
        hat_k = [[r.pass_hat_k[side] for r in rows if r.pass_hat_k[side] is not None] for side in (0, 1)]
        found.append(SidesReliability(prompt, model, rows[0].k, (_mean_of(at_k[0]), _mean_of(at_k[1])),
                                      (_mean_of(hat_k[0]), _mean_of(hat_k[1])), cases=(len(at_k[0]), len(at_k[1]))))
    return found


def _mean_of(values: Sequence[float | None]) -> float | None:
    return mean([v for v in values if v is not None])
