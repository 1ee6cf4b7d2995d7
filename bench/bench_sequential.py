"""Requests spent by fixed --repeat 10 and by --repeat auto (sequential.py), and what each catches (issue 19).

    python bench/bench_sequential.py              # 1,000 simulated PRs per scenario, fixed seed, ~1 min
    python bench/bench_sequential.py --trials 200 # quicker, noisier

A library-level simulation (no HTTP): 20 cases with pass rates p_i ~ U(0.5, 0.95) at A, p_i - drop_i at B.
Fixed K = 10 is stats.drop_verdict on 10 samples a side (400 requests a PR); auto is run_sequential with the
default Design. Each scenario uses the same seed for both procedures' pass rates.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

import numpy as np

from promptci.sequential import Design, Outcome, run_sequential
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


def sequential(seed: int, trials: int, drops: np.ndarray, scenario: str) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    alarms = named = spent = 0
    for _ in range(trials):
        p, q = rates(rng, drops, scenario)

        def draw(request: Mapping[str, range], p: np.ndarray = p, q: np.ndarray = q
                 ) -> dict[str, tuple[Sequence[Outcome], Sequence[Outcome]]]:
            return {k: ([bool(x) for x in rng.random(len(r)) < p[int(k)]],
                        [bool(y) for y in rng.random(len(r)) < q[int(k)]]) for k, r in request.items()}

        verdict = run_sequential([str(i) for i in range(CASES)], draw, Design())
        alarms += verdict.is_drop
        named += {c.key for c in verdict.cases if c.is_drop} >= _broken(drops)
        spent += 2 * sum(verdict.samples.values())
    return alarms / trials, named / trials, spent / trials


def _broken(drops: np.ndarray) -> set[str]:
    return {str(i) for i, d in enumerate(drops) if d >= 0.6}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    trials = parser.parse_args().trials
    print(f"{trials} simulated PRs per scenario, 20 cases, p_i ~ U(0.5, 0.95); default Design: {Design()}")
    print(f"{'scenario':<30} {'procedure':<10} {'alarm rate':>10} {'named':>6} {'requests/PR':>12}")
    for seed, (scenario, drops) in enumerate(SCENARIOS.items(), start=1):
        for name, procedure in (("fixed K=10", fixed), ("auto", sequential)):
            alarm, named, spent = procedure(seed, trials, drops, scenario)
            shown = f"{named:.3f}" if _broken(drops) else "-"
            print(f"{scenario:<30} {name:<10} {alarm:>10.3f} {shown:>6} {spent:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
