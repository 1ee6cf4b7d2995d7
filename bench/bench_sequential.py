"""Requests spent by fixed --repeat 10 and by --repeat auto (sequential.py), and what each catches (issue 19).

    python bench/bench_sequential.py              # 1,000 simulated PRs per scenario, fixed seed, ~1 min
    python bench/bench_sequential.py --trials 200 # quicker, noisier
    python bench/bench_sequential.py --frontier   # requests on unchanged PRs against naming both broken cases:
                                                  # the futility threshold swept, and the Bayes-optimal bound

A library-level simulation (no HTTP): 20 cases with pass rates p_i ~ U(0.5, 0.95) at A, p_i - drop_i at B.
Fixed K = 10 is stats.drop_verdict on 10 samples a side (400 requests a PR); auto is run_sequential with the
default Design. Each scenario uses the same seed for both procedures' pass rates.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache

import numpy as np

from promptci.sequential import Design, Outcome, case_weight, reaches, run_sequential
from promptci.stats import CaseCounts, drop_verdict

CASES = 20
SCENARIOS = {
    "no change": np.zeros(CASES),
    "0.6 drop on 2 of 20": np.r_[0.6, 0.6, np.zeros(CASES - 2)],
    "30-point drop on every case": np.full(CASES, 0.30),
    "one case 1.0 -> 0.0": np.r_[1.0, np.zeros(CASES - 1)],
}


def rates(rng: np.random.Generator, drops: np.ndarray, scenario: str) -> tuple[np.ndarray, np.ndarray]:
    p = rng.uniform(0.5, 0.95, CASES)
    if scenario == "one case 1.0 -> 0.0":
        p[0] = 1.0
    return p, np.clip(p - drops, 0, 1)


def fixed(seed: int, trials: int, drops: np.ndarray, scenario: str) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    alarms = named = 0
    for _ in range(trials):
        p, q = rates(rng, drops, scenario)
        a, b = rng.binomial(10, p), rng.binomial(10, q)
        verdict = drop_verdict([CaseCounts(str(i), int(x), 10, int(y), 10) for i, (x, y) in
                                enumerate(zip(a, b, strict=True))])
        alarms += verdict.is_drop
        named += {c.key for c in verdict.cases if c.is_drop} >= _broken(drops)
    return alarms / trials, named / trials, 2 * CASES * 10


def sequential(seed: int, trials: int, drops: np.ndarray, scenario: str, design: Design | None = None
               ) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    alarms = named = spent = 0
    for _ in range(trials):
        p, q = rates(rng, drops, scenario)

        def draw(request: Mapping[str, range], p: np.ndarray = p, q: np.ndarray = q
                 ) -> dict[str, tuple[Sequence[Outcome], Sequence[Outcome]]]:
            return {k: ([bool(x) for x in rng.random(len(r)) < p[int(k)]],
                        [bool(y) for y in rng.random(len(r)) < q[int(k)]]) for k, r in request.items()}

        verdict = run_sequential([str(i) for i in range(CASES)], draw, design or Design())
        alarms += verdict.is_drop
        named += {c.key for c in verdict.cases if c.is_drop} >= _broken(drops)
        spent += 2 * sum(verdict.samples.values())
    return alarms / trials, named / trials, spent / trials


def _broken(drops: np.ndarray) -> set[str]:
    return {str(i) for i, d in enumerate(drops) if d >= 0.6}


# The frontier. Whatever stopping rule a design uses, an unchanged case costs the samples it takes to tell it from
# a broken one, and a broken case is lost when the rule stops it first. For this simulation's own prior (p_A
# uniform on [0.5, 0.95], B unchanged or 0.6 lower) the rule that spends least on unchanged cases for a given
# chance of stopping a broken one is found by backward induction over (n, A's passes, B's passes), looking after
# every pair: stop where lam x P(path | broken) <= P(path | unchanged) + the value of going on. It knows the
# simulation's prior, which no real design does; it bounds what any futility rule can do here.

GRID = np.linspace(0.5, 0.95, 200)


@lru_cache(maxsize=1)
def _path_likelihoods() -> tuple[np.ndarray, np.ndarray]:
    """P(one path with a A-passes and b B-passes in n pairs), averaged over the prior: unchanged, broken."""
    top = MAXIMUM_PAIRS
    unchanged, broken = np.zeros((top + 1,) * 3), np.zeros((top + 1,) * 3)
    dropped = np.clip(GRID - 0.6, 0, 1)
    for n in range(top + 1):
        a = np.arange(n + 1)[:, None, None]
        b = np.arange(n + 1)[None, :, None]
        path_a = GRID ** a * (1 - GRID) ** (n - a)
        unchanged[n, :n + 1, :n + 1] = (path_a * GRID ** b * (1 - GRID) ** (n - b)).mean(-1)
        broken[n, :n + 1, :n + 1] = (path_a * dropped ** b * (1 - dropped) ** (n - b)).mean(-1)
    return unchanged, broken


MAXIMUM_PAIRS = 48


def bayes_optimal_stops(lam: float) -> np.ndarray:
    unchanged, broken = _path_likelihoods()
    top = MAXIMUM_PAIRS
    value = np.zeros((top + 2,) * 3)
    stops = np.zeros((top + 1,) * 3, dtype=bool)
    for n in range(top - 1, 0, -1):
        a = np.arange(n + 1)[:, None]
        b = np.arange(n + 1)[None, :]
        go_on = unchanged[n, :n + 1, :n + 1] + value[n + 1, a, b] + value[n + 1, a + 1, b] + \
            value[n + 1, a, b + 1] + value[n + 1, a + 1, b + 1]
        stop = lam * broken[n, :n + 1, :n + 1]
        stops[n, :n + 1, :n + 1] = stop <= go_on
        value[n, :n + 1, :n + 1] = np.minimum(stop, go_on)
    return stops


def single_case(rule: Callable[[int, np.ndarray, np.ndarray], np.ndarray], seed: int, trials: int
                ) -> tuple[float, float]:
    """Samples a side an unchanged case costs, and the chance a broken case (0.6 lower) is flagged by the
    default design's e-value threshold (20 cases) before the rule stops it; looks after every pair."""
    rng = np.random.default_rng(seed)
    weight, alpha = case_weight(Design(), CASES), Design().alpha
    flag = np.array([[reaches(w, lost, weight, alpha) if w + lost <= MAXIMUM_PAIRS else False
                      for lost in range(MAXIMUM_PAIRS + 1)] for w in range(MAXIMUM_PAIRS + 1)])
    p = rng.uniform(0.5, 0.95, trials)
    results = []
    for q in (p, np.clip(p - 0.6, 0, 1)):
        a = rng.random((trials, MAXIMUM_PAIRS)) < p[:, None]
        b = rng.random((trials, MAXIMUM_PAIRS)) < q[:, None]
        passes_a, passes_b = np.cumsum(a, 1), np.cumsum(b, 1)
        wins, losses = np.cumsum(a & ~b, 1), np.cumsum(b & ~a, 1)
        spent = np.full(trials, MAXIMUM_PAIRS)
        flagged = np.zeros(trials, dtype=bool)
        open_ = np.ones(trials, dtype=bool)
        for n in range(1, MAXIMUM_PAIRS + 1):
            hit = open_ & flag[wins[:, n - 1], losses[:, n - 1]]
            flagged |= hit
            stopped = hit | (open_ & rule(n, passes_a[:, n - 1], passes_b[:, n - 1]))
            spent[stopped] = n
            open_ &= ~stopped
        results.append((spent.mean(), flagged.mean()))
    return results[0][0], results[1][1]


def frontier(trials: int) -> None:
    print(f"default Design with its futility threshold swept ({trials} simulated PRs each; requests both sides):")
    print(f"{'futility':>9} {'requests, no change':>20} {'of fixed K=10':>14} {'both named, 0.6 on 2 of 20':>27}")
    for futility in (0.3, 0.2, 0.15, 0.1, 0.05, 0.02):
        design = replace(Design(), futility=futility)
        _, _, spent = sequential(1, trials, SCENARIOS["no change"], "no change", design)
        _, named, _ = sequential(2, trials, SCENARIOS["0.6 drop on 2 of 20"], "0.6 drop on 2 of 20", design)
        print(f"{futility:>9} {spent:>20.1f} {spent / 400:>14.2f} {named:>27.3f}", flush=True)
    print("\nBayes-optimal futility rule for the simulation's own prior, one case at a time (20,000 simulated cases;"
          "\nrequests = 20 x 2 x samples a side; both named ~ (chance one broken case is flagged)^2):")
    print(f"{'lam':>9} {'requests, no change':>20} {'of fixed K=10':>14} {'one flagged':>12} {'both ~':>7}")
    for lam in (10, 20, 40, 80, 160):
        stops = bayes_optimal_stops(lam)
        samples, flagged = single_case(lambda n, a, b, stops=stops: stops[n, a, b], 3, 20_000)
        print(f"{lam:>9} {CASES * 2 * samples:>20.1f} {CASES * 2 * samples / 400:>14.2f} {flagged:>12.3f} "
              f"{flagged ** 2:>7.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--frontier", action="store_true")
    arguments = parser.parse_args()
    trials = arguments.trials
    if arguments.frontier:
        frontier(trials)
        return
    print(f"{trials} simulated PRs per scenario, 20 cases, p_i ~ U(0.5, 0.95); default Design: {Design()}")
    print(f"{'scenario':<30} {'procedure':<10} {'alarm rate':>10} {'named':>6} {'requests/PR':>12}")
    for seed, (scenario, drops) in enumerate(SCENARIOS.items(), start=1):
        for name, procedure in (("fixed K=10", fixed), ("auto", sequential)):
            alarm, named, spent = procedure(seed, trials, drops, scenario)
            shown = f"{named:.3f}" if _broken(drops) else "-"
            print(f"{scenario:<30} {name:<10} {alarm:>10.3f} {shown:>6} {spent:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
