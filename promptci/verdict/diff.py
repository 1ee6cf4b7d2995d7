"""The verdict of `diff`: from a Comparison's transitions to findings, by one table (TRANSITION_FINDINGS), so
that a new transition is one line here; what the chosen K can detect; the budget rule every command shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from promptci.compare import CaseChange, Comparison, Transition
from promptci.sequential import METHOD as SEQUENTIAL_METHOD
from promptci.sequential import Design, flip_samples_needed
from promptci.stats import min_repeat_to_flag_one_case, power_line
from promptci.verdict.gates import budget_findings
from promptci.verdict.policy import Finding, Gate, Verdict, interrupted, no_verdict, regression

MakeFinding = Callable[[Gate, str, Sequence[str]], Finding]


def change_name(change: CaseChange) -> str:
    return f"{change.file}:{change.line} {change.case_id} [{change.model}]"


def has_no_baseline(change: CaseChange) -> bool:
    """Samples at A, none of which was scored (all errored): nothing to compare B with."""
    _, n_a, _, n_b = change.counts
    return bool(change.before) and n_a == 0 and n_b > 0


def every_case(comparison: Comparison, change: CaseChange) -> bool:
    return True


def unless_allowed(comparison: Comparison, change: CaseChange) -> bool:
    """--allow-new-failures: a new case failing at B is reported, and fails nothing."""
    return not comparison.allow_new_failures


def errored_at_b(comparison: Comparison, change: CaseChange) -> bool:
    """Every sample at B errored (a replay miss, a provider error): never scored."""
    return bool(change.after) and all(r.status == "error" for r in change.after)


# (transition, which of its cases, gate, exit code maker, what the cases are). Transitions not here (still
# passing, fixed, removed, skipped, flaky, dropped-but-not-significant) change no exit code; cases with no valid
# baseline are baseline_findings'.
TRANSITION_FINDINGS: tuple[tuple[Transition, Callable[[Comparison, CaseChange], bool], Gate, MakeFinding, str],
                           ...] = (
    ("regressed", every_case, Gate.REGRESSION, regression, "passed at A and fail at B"),
    ("error", every_case, Gate.ERRORS, no_verdict, "have no verdict: an error left a side without a scored sample"),
    ("new_failing", unless_allowed, Gate.REGRESSION, regression,
     "are new and fail at B (--allow-new-failures to report only)"),
    ("new", errored_at_b, Gate.ERRORS, no_verdict, "are new and have no verdict: they errored at B"),
)


def transition_findings(comparison: Comparison) -> list[Finding]:
    """One finding per line of TRANSITION_FINDINGS that has cases, naming them."""
    found = []
    for transition, selects, gate, make, what in TRANSITION_FINDINGS:
        changes = [c for c in comparison.with_transition(transition)
                   if selects(comparison, c) and not has_no_baseline(c)]
        if changes:
            names = [change_name(c) for c in changes]
            found.append(make(gate, f"{len(names)} case(s) {what}: {', '.join(names[:5])}"
                                    f"{' ...' if len(names) > 5 else ''}", names))
    return found


def baseline_findings(comparison: Comparison) -> list[Finding]:
    """A case scored at B but never at A has no valid baseline: no verdict for it, named, never a pass."""
    missing = [change_name(c) for c in comparison.changes if has_no_baseline(c) and c.transition != "regressed"]
    if not missing:
        return []
    return [no_verdict(Gate.NO_BASELINE, f"{len(missing)} case(s) have no valid sample at A to compare with: "
                                         f"{', '.join(missing[:5])}", missing)]


def suite_drop_findings(comparison: Comparison) -> list[Finding]:
    verdict = comparison.verdict
    if verdict is None or not verdict.is_suite_drop or comparison.with_transition("regressed"):
        return []
    return [regression(Gate.REGRESSION, f"the pass rate fell across the suite (suite p = {verdict.suite_p_value:.2g}, "
                                        f"{verdict.adjustment} {verdict.suite_adjusted:.2g} <= alpha "
                                        f"{verdict.alpha:g})")]


def repeat_of(comparison: Comparison) -> int:
    """K: B's samples per case (A may hold more: its baseline pool grows past K)."""
    return max((len(c.after) for c in comparison.changes), default=1)


def detectability_note(comparison: Comparison, alpha: float) -> list[str]:
    """What the chosen K can detect for this suite size and alpha, exactly by the gate's own test: a warning
    naming the K that would work when K is below it."""
    if not comparison.repeated:
        return []
    cases = sum(1 for c in comparison.changes if c.counts[1] > 0 and c.counts[3] > 0)
    if comparison.verdict is not None and comparison.verdict.method == SEQUENTIAL_METHOD:
        return [sequential_detectability(cases, alpha)]
    k = repeat_of(comparison)
    needed = min_repeat_to_flag_one_case(cases, alpha)
    if needed is None:
        return [f"with {cases} cases and alpha {alpha:g}, no K up to 64 lets a single case's drop be flagged"]
    if k >= needed:
        return [f"with {cases} cases and alpha {alpha:g}, a single case going K/K -> 0/K is flagged from K = "
                f"{needed}: K = {k} can flag one case", power_line(cases, k, alpha)]
    return [f"warning: with {cases} cases and alpha {alpha:g}, a single case needs K >= {needed} to be flagged "
            f"(K/K -> 0/K, every other case unchanged); with K = {k} only a drop across the suite can fail this "
            f"diff: use --repeat {needed}", power_line(cases, k, alpha)]


def sequential_detectability(cases: int, alpha: float) -> str:
    """What --repeat auto can detect, by its own thresholds: the samples a side that flag one case's flip."""
    flip = flip_samples_needed(cases, Design(alpha=alpha, maximum=1000))
    return (f"sequential (--repeat auto) with {cases} cases and alpha {alpha:g}: a single case going K/K -> 0/K is "
            f"flagged after {flip} samples a side; a drop on every case is tested pooled over the suite")


def judge_comparison(comparison: Comparison, alpha: float | None = None, interrupted_run: bool = False,
                     notes: Sequence[str] = ()) -> Verdict:
    """The diff's verdict: regressions (exit 1), cases with no verdict or no baseline (exit 3), a budget that
    held cases back at either side (exit 1, as in `run`), an interruption (130)."""
    alpha = alpha if alpha is not None else (comparison.verdict.alpha if comparison.verdict else 0.05)
    findings: list[Finding] = [interrupted()] if interrupted_run else []
    findings += transition_findings(comparison)
    findings += suite_drop_findings(comparison)
    findings += baseline_findings(comparison)
    findings += budget_findings([r for c in comparison.changes for r in (*c.before, *c.after)])
    gates = (Gate.REGRESSION, Gate.ERRORS, Gate.NO_BASELINE, Gate.BUDGET)
    return Verdict(tuple(findings), (*notes, *detectability_note(comparison, alpha)), gates)


def decision_of(comparison: Comparison) -> Verdict:
    """The verdict a diff report renders: the command's, or judged now for a Comparison built without one."""
    return comparison.decision if comparison.decision is not None else judge_comparison(comparison)
