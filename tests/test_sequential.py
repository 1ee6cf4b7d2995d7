"""sequential.py: the mixture e-value against scipy and its martingale property in exact rationals, and the
issue's simulation targets for `diff --repeat auto` (20 cases, pass rates 0.5-0.95) against fixed K = 10."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate, special

from promptci.sequential import (
    Design,
    Outcome,
    Pairs,
    SequentialVerdict,
    Stop,
    _e_parts,
    decide,
    drop_bayes_factor,
    e_value,
    flip_samples_needed,
    reaches,
    run_sequential,
    wins_needed,
)
from promptci.stats import CaseCounts, drop_verdict, fisher_drop_p

CASES = 20


@pytest.mark.parametrize(("wins", "losses"), [(0, 0), (1, 0), (0, 1), (3, 2), (12, 0), (7, 9), (40, 3), (150, 130)])
def test_e_value_is_the_mixture_integral(wins: int, losses: int) -> None:
    # E = 2 * 2^n * integral_{1/2}^{1} q^w (1 - q)^l dq = 2^(n+1) B(w+1, l+1) (1 - I_{1/2}(w+1, l+1))
    n = wins + losses
    log_integral = special.betaln(wins + 1, losses + 1) + math.log(special.betainc(losses + 1, wins + 1, 0.5))
    expected = math.exp((n + 1) * math.log(2) + log_integral)
    assert e_value(wins, losses) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("wins", "losses"), [(0, 0), (2, 1), (5, 5), (13, 0), (30, 41)])
def test_e_value_is_a_martingale_at_half_and_a_supermartingale_below(wins: int, losses: int) -> None:
    # Ville's inequality needs E[E_{n+1} | past] <= E_n when a discordant pair is a win with chance q <= 1/2;
    # checked exactly: equality at 1/2, strictly less below.
    def exact(w: int, lost: int) -> Fraction:
        top, bottom = _e_parts(w, lost)
        return Fraction(top, bottom)

    now = exact(wins, losses)
    for q in (Fraction(1, 2), Fraction(2, 5), Fraction(1, 10)):
        step = q * exact(wins + 1, losses) + (1 - q) * exact(wins, losses + 1)
        assert step == now if q == Fraction(1, 2) else step < now


def test_thresholds_in_exact_rationals() -> None:
    # 12 straight wins: (2^13 - 1) / 13 = 630.1 >= 1 / (0.035 * 0.05) = 571.4; 11 give 341.25 < 571.4.
    assert reaches(12, 0, 0.035, 0.05) and not reaches(11, 0, 0.035, 0.05)
    assert wins_needed(12, 0.035, 0.05) == 12
    assert wins_needed(3, 0.035, 0.05) is None
    with pytest.raises(ValueError, match="alpha"):
        Design(alpha=0)
    with pytest.raises(ValueError, match="first <= maximum"):
        Design(first=50, maximum=40)


def test_stopping_reasons() -> None:
    design = Design()
    flipped = Pairs("flip", (True,) * 12, (False,) * 12, sampled=12)
    same = Pairs("same", (True, True, False, True), (True, True, True, True), sampled=4)
    silent = Pairs("silent", (False,) * 4, (False,) * 4, sampled=4)
    errored = Pairs("errored", sampled=4)
    verdict = decide([same, silent, errored], design)
    # B passing 4 of 4 where A passed 3: the Bayes factor of a 50-point drop is 0.024 (< 0.15): unchanged. Neither
    # side passing: 1.8, no evidence either way, the case samples on.
    assert {c.key: c.stop for c in verdict.cases} == {"same": Stop.UNCHANGED, "silent": None,
                                                     "errored": Stop.NOT_PAIRED}
    assert not verdict.is_drop and verdict.is_open
    verdict = decide([flipped, same], design)
    assert {c.key: c.stop for c in verdict.cases} == {"flip": Stop.DROP, "same": Stop.UNCHANGED}
    assert verdict.is_drop and not verdict.is_open


@pytest.mark.parametrize(("passes_a", "passes_b", "n", "drop"),
                         [(3, 0, 3, 0.5), (3, 3, 3, 0.5), (2, 1, 3, 0.5), (9, 2, 11, 0.4), (0, 0, 4, 0.5),
                          (20, 19, 24, 0.6)])
def test_drop_bayes_factor_is_the_integral(passes_a: int, passes_b: int, n: int, drop: float) -> None:
    # the futility rule's factor against scipy's quadrature of the same two integrals
    def drop_path(p: float) -> float:
        r = max(0.0, p - drop)
        return float(p ** passes_a * (1 - p) ** (n - passes_a) * r ** passes_b * (1 - r) ** (n - passes_b))

    top = sum(integrate.quad(drop_path, lo, hi, epsabs=0, epsrel=1e-10)[0] for lo, hi in ((0, drop), (drop, 1)))
    bottom = float(special.beta(passes_a + passes_b + 1, 2 * n - passes_a - passes_b + 1))
    assert drop_bayes_factor(passes_a, n, passes_b, n, drop) == pytest.approx(top / bottom, rel=1e-3)


# The simulation: each case has a pass rate p_i ~ U(0.5, 0.95) at A and p_i - drop_i at B (clipped at 0).

def _draw(rng: np.random.Generator, p: np.ndarray, q: np.ndarray):  # type: ignore[no-untyped-def]
    def draw(request: Mapping[str, range]) -> dict[str, tuple[Sequence[Outcome], Sequence[Outcome]]]:
        return {key: ([bool(x) for x in rng.random(len(r)) < p[int(key)]],
                      [bool(y) for y in rng.random(len(r)) < q[int(key)]]) for key, r in request.items()}
    return draw


def _simulate(seed: int, trials: int, drops: np.ndarray, design: Design | None = None
              ) -> list[SequentialVerdict]:
    rng = np.random.default_rng(seed)
    verdicts = []
    for _ in range(trials):
        p = rng.uniform(0.5, 0.95, CASES)
        verdicts.append(run_sequential([str(i) for i in range(CASES)], _draw(rng, p, np.clip(p - drops, 0, 1)),
                                       design or Design()))
    return verdicts


def _fixed_k10_alarm_rate(seed: int, trials: int, drops: np.ndarray) -> float:
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(trials):
        p = rng.uniform(0.5, 0.95, CASES)
        a, b = rng.binomial(10, p), rng.binomial(10, np.clip(p - drops, 0, 1))
        counts = [CaseCounts(str(i), int(x), 10, int(y), 10) for i, (x, y) in enumerate(zip(a, b, strict=True))]
        alarms += drop_verdict(counts).is_drop
    return alarms / trials


def _requests(verdicts: Sequence[SequentialVerdict]) -> float:
    return float(np.mean([2 * sum(v.samples.values()) for v in verdicts]))


def test_simulation_null_false_alarms_under_alpha_and_fewer_requests_than_fixed_k10() -> None:
    trials = 400
    verdicts = _simulate(20261204, trials, np.zeros(CASES))
    rate = sum(v.is_drop for v in verdicts) / trials
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / trials)
    fixed = 2 * CASES * 10
    # measured 261.6 requests, 0.654 of fixed K = 10's (per-PR sd 53, so the mean's standard error is 2.7
    # requests, 0.007; it was 0.72 before the Bayes-factor futility rule). The target, 0.50, is not met:
    # docs/sequential.md ("The frontier") shows that a futility rule spending 0.50 names both broken cases of the
    # next test far under 90% unless it knows the simulation's prior (the Bayes-optimal rule that does: 0.49
    # and ~0.915).
    assert _requests(verdicts) <= 0.70 * fixed


def test_simulation_two_broken_cases_of_twenty_both_named() -> None:
    # measured 0.939 over these 1,000 PRs (binomial standard error 0.0076, so 0.90 is 5 of them below; 0.90-0.93
    # before the Bayes-factor futility rule)
    trials = 1000
    verdicts = _simulate(7, trials, np.r_[0.6, 0.6, np.zeros(CASES - 2)])
    both = sum({c.key for c in v.cases if c.is_drop} >= {"0", "1"} for v in verdicts) / trials
    assert both >= 0.90
    assert all(c.key in ("0", "1") for v in verdicts for c in v.cases if c.is_drop) or \
        sum(c.is_drop and c.key not in ("0", "1") for v in verdicts for c in v.cases) <= 0.05 * trials


def test_simulation_thirty_point_drop_everywhere_at_least_fixed_k10_power() -> None:
    trials = 300
    drops = np.full(CASES, 0.30)
    verdicts = _simulate(11, trials, drops)
    power = sum(v.is_drop for v in verdicts) / trials
    assert power >= _fixed_k10_alarm_rate(11, trials, drops)
    # once the suite test has failed the diff, cases not on course to be named stop (measured 1.19 x fixed K;
    # 2.5 x before that stop)
    assert _requests(verdicts) <= 1.3 * 2 * CASES * 10


def test_suite_flag_stops_the_cases_that_would_not_be_named() -> None:
    # 19 cases at 3 wins, 1 loss in 6 pairs: the pooled E is ~59,000 (over 66.7), but at that pace a case
    # reaches only E(27, 8) < 571 by 48 samples; the case winning every pair is on course and samples on.
    slow = [Pairs(str(i), (True, True, True, False, True, True), (False, False, False, True, True, True), sampled=6)
            for i in range(19)]
    fast = Pairs("fast", (True,) * 6, (False,) * 6, sampled=6)
    verdict = decide([*slow, fast], Design())
    assert verdict.is_suite_drop
    assert {c.key: c.stop for c in verdict.cases} == {**{str(i): Stop.SUITE_FLAGGED for i in range(19)}, "fast": None}


def test_single_case_flip_always_caught() -> None:
    p = np.r_[1.0, np.full(CASES - 1, 0.8)]
    q = np.r_[0.0, np.full(CASES - 1, 0.8)]
    for seed in range(20):
        verdict = run_sequential([str(i) for i in range(CASES)], _draw(np.random.default_rng(seed), p, q), Design())
        assert [c.key for c in verdict.cases if c.is_drop] == ["0"]
        # 12 straight wins reach 1 / (0.035 x 0.05); looks come at 3, 5, ..., 13 samples a side
        assert verdict.samples["0"] == 13 == flip_samples_needed(CASES, Design())


def test_peeking_after_every_pair_keeps_the_e_process_under_alpha_where_a_fixed_test_cries_wolf() -> None:
    # One unchanged case (p = 0.5 at both sides), looked at after every pair up to 200: the chance that the
    # e-process ever reaches 1/alpha stays under alpha (Ville); the chance that a fixed-sample Fisher test
    # ever dips under alpha at some look is far above it. Both on the same draws.
    rng = np.random.default_rng(1939)
    trials, pairs, alpha = 400, 200, 0.05
    ever_e = ever_fisher = 0
    for _ in range(trials):
        a, b = rng.random(pairs) < 0.5, rng.random(pairs) < 0.5
        wins, losses = np.cumsum(a & ~b), np.cumsum(b & ~a)
        ever_e += any(reaches(int(w), int(lost), 1.0, alpha) for w, lost in zip(wins, losses, strict=True))
        passes_a, passes_b = np.cumsum(a), np.cumsum(b)
        ever_fisher += any(fisher_drop_p(int(x), n, int(y), n) <= alpha
                           for n, x, y in zip(range(10, pairs + 1, 10), passes_a[9::10], passes_b[9::10],
                                              strict=True))
    assert ever_e / trials <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / trials)
    assert ever_fisher / trials > 2 * alpha
