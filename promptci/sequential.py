"""Sequential resampling for `diff --repeat auto`: an anytime-valid test of "B passes less often than A" that
may look at the evidence after every batch of samples and stop where a case is decided (docs/sequential.md).

Sample j of a case at A is paired with sample j at B. A discordant pair is a win (A passed, B failed) or a loss
(A failed, B passed). If B is no worse than A (p_B >= p_A, samples independent), a discordant pair is a win with
chance p_A (1 - p_B) / (p_A (1 - p_B) + (1 - p_A) p_B) <= 1/2, whatever the pass rates. The evidence against
"no drop" after w wins and l losses is the mixture likelihood ratio

    E(w, l) = integral over q in [1/2, 1] of q^w (1 - q)^l / (1/2)^(w + l), q uniform on [1/2, 1]
            = sum_{j <= w} C(n + 1, j) / ((n + 1) C(n, w)),   n = w + l,

a nonnegative supermartingale under the null (Ramdas, Gruenwald, Vovk and Shafer 2023, "Game-theoretic
statistics and safe anytime-valid inference", Statist. Sci. 38(4)); by Ville's inequality the chance that it
ever reaches 1/a is at most a, however often it is looked at and whenever sampling stops. Each case's
e-process gets a share of alpha and the suite (one e-process over every case's pairs pooled) the rest: a
weighted Bonferroni family, so the family-wise false-alarm rate stays <= alpha.

Pure standard library, exact integers; numpy and scipy are only the tests' oracle and simulator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from fractions import Fraction
from functools import lru_cache

from promptci.stats import CaseTest, DropVerdict

SUITE_WEIGHT = 0.3  # share of alpha for the pooled suite e-process; the cases share the rest equally
METHOD = ("anytime-valid sequential sign test: per case, a mixture e-process over discordant sample pairs "
          "(uniform mixture on [1/2, 1]); over the suite, the same e-process on every case's pairs pooled; "
          "weighted Bonferroni (suite 0.3, each case 0.7/m) with Ville's inequality holding the family-wise "
          "false-alarm rate at alpha under optional stopping")


class Stop(str, Enum):
    DROP = "drop"  # its e-process reached its threshold: B passes less often, with the family's guarantee
    UNCHANGED = "unchanged"  # B passed at least as often as A so far: no sign of a drop worth more samples
    OUT_OF_REACH = "out of reach"  # even all wins up to the maximum could not reach the threshold
    MAXIMUM = "maximum"  # the maximum of samples a side was reached, undecided
    SUITE_FLAGGED = "suite flagged"  # the suite test failed the diff; at its pace so far the case would not be
    # flagged on its own by the maximum, so more samples would only cost
    NOT_PAIRED = "not paired"  # no scored pair (new or removed case, or every pair errored)


@dataclass(frozen=True)
class Design:
    """When to look and when to stop. `first` samples a side start every case; each round adds `batch` samples
    a side to every case still open, up to `maximum`."""

    alpha: float = 0.05
    first: int = 4
    batch: int = 2
    maximum: int = 48
    suite_weight: float = SUITE_WEIGHT
    drop: float = 0.35  # wins - losses grows by p_A - p_B a pair: a case trailing this drop stops as unchanged
    slack: float = 0.8  # by how many sqrt(n) it may trail before it stops

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie within (0, 1), got {self.alpha}")
        if not 1 <= self.first <= self.maximum or self.batch < 1:
            raise ValueError(f"need 1 <= first <= maximum and batch >= 1, got {self}")
        if not 0 < self.suite_weight < 1:
            raise ValueError(f"suite_weight must lie within (0, 1), got {self.suite_weight}")


@dataclass(frozen=True)
class Pairs:
    """One case's paired samples so far: A's and B's outcomes, sample j against sample j."""

    key: str
    a: tuple[bool, ...] = ()
    b: tuple[bool, ...] = ()
    sampled: int = 0  # sample indices drawn a side, errored ones included (n <= sampled)

    @property
    def n(self) -> int:
        return min(len(self.a), len(self.b))

    @property
    def wins(self) -> int:
        return sum(x and not y for x, y in zip(self.a, self.b, strict=False))

    @property
    def losses(self) -> int:
        return sum(y and not x for x, y in zip(self.a, self.b, strict=False))

    def extended(self, a: Sequence[bool], b: Sequence[bool], sampled: int) -> Pairs:
        return replace(self, a=(*self.a, *a), b=(*self.b, *b), sampled=self.sampled + sampled)


@dataclass(frozen=True)
class CaseDecision:
    key: str
    wins: int
    losses: int
    n: int
    e_value: float
    threshold: float  # 1 / (weight x alpha)
    stop: Stop | None  # None: still open

    @property
    def is_drop(self) -> bool:
        return self.stop is Stop.DROP


@dataclass(frozen=True)
class SequentialVerdict:
    cases: tuple[CaseDecision, ...]
    suite_e_value: float
    suite_threshold: float
    alpha: float
    method: str = METHOD
    rounds: int = 0
    samples: Mapping[str, int] = field(default_factory=dict)  # samples a side spent per case

    @property
    def is_suite_drop(self) -> bool:
        return self.suite_e_value >= self.suite_threshold

    @property
    def is_drop(self) -> bool:
        return self.is_suite_drop or any(c.is_drop for c in self.cases)

    @property
    def is_open(self) -> bool:
        return any(c.stop is None for c in self.cases)


@lru_cache(maxsize=65536)
def _e_parts(wins: int, losses: int) -> tuple[int, int]:
    """E(wins, losses) as numerator / denominator, exact integers."""
    n = wins + losses
    return sum(math.comb(n + 1, j) for j in range(wins + 1)), (n + 1) * math.comb(n, wins)


def e_value(wins: int, losses: int) -> float:
    """The mixture e-value of `wins` A-pass/B-fail pairs and `losses` A-fail/B-pass pairs (1 with none)."""
    if wins < 0 or losses < 0:
        raise ValueError(f"wins and losses must be >= 0, got {wins}, {losses}")
    top, bottom = _e_parts(wins, losses)
    return math.exp(math.log(top) - math.log(bottom))  # math.log of an int is exact past float range


def reaches(wins: int, losses: int, weight: float, alpha: float) -> bool:
    """E(wins, losses) >= 1 / (weight x alpha), decided in exact rationals."""
    top, bottom = _e_parts(wins, losses)
    return Fraction(top) * Fraction(weight) * Fraction(alpha) >= bottom


def wins_needed(n: int, weight: float, alpha: float) -> int | None:
    """The fewest wins among n discordant pairs (the rest losses) that reach the threshold; None if none does."""
    for wins in range(n + 1):
        if reaches(wins, n - wins, weight, alpha):
            return wins
    return None


def case_weight(design: Design, cases: int) -> float:
    return (1 - design.suite_weight) / max(cases, 1)


def decide(cases: Sequence[Pairs], design: Design) -> SequentialVerdict:
    """Every case's e-value and whether it stops now (a drop, unchanged, out of reach, at the maximum)."""
    weight = case_weight(design, len(cases))  # fixed before the first look: every case of the family
    wins = sum(c.wins for c in cases)
    losses = sum(c.losses for c in cases)
    suite_flagged = reaches(wins, losses, design.suite_weight, design.alpha)
    decisions = tuple(_decide_case(c, weight, design, suite_flagged) for c in cases)
    return SequentialVerdict(
        cases=decisions, suite_e_value=e_value(wins, losses),
        suite_threshold=1 / (design.suite_weight * design.alpha), alpha=design.alpha,
        samples={c.key: c.sampled for c in cases})


def _decide_case(case: Pairs, weight: float, design: Design, suite_flagged: bool) -> CaseDecision:
    wins, losses, n = case.wins, case.losses, case.n
    stop: Stop | None = None
    if n == 0 and case.sampled >= design.first:
        stop = Stop.NOT_PAIRED
    elif n == 0:
        stop = None
    elif reaches(wins, losses, weight, design.alpha):
        stop = Stop.DROP
    elif not _b_silent(case, design) and wins - losses < max(1.0, design.drop * n - design.slack * math.sqrt(n)):
        stop = Stop.UNCHANGED
    elif not reaches(wins + design.maximum - case.sampled, losses, weight, design.alpha):
        stop = Stop.OUT_OF_REACH
    elif case.sampled >= design.maximum:
        stop = Stop.MAXIMUM
    elif suite_flagged and not _b_silent(case, design) and not _on_course(case, weight, design):
        stop = Stop.SUITE_FLAGGED
    return CaseDecision(case.key, wins, losses, n, e_value(wins, losses), 1 / (weight * design.alpha), stop)


def _on_course(case: Pairs, weight: float, design: Design) -> bool:
    """Whether the case, winning and losing at its rates so far up to the maximum, would reach its threshold."""
    left = design.maximum - case.sampled
    wins = case.wins + math.ceil(case.wins / case.n * left)
    losses = case.losses + math.floor(case.losses / case.n * left)
    return reaches(wins, losses, weight, design.alpha)


def _b_silent(case: Pairs, design: Design) -> bool:
    """B has not passed once in its first looks: what a drop to a pass rate near 0 looks like even while A's
    samples happened to fail too (wins 0), so the case gets one more look before it may stop as unchanged."""
    return not any(case.b) and case.sampled < 2 * design.first


# draw({key: range of sample indices}) -> {key: (A's outcomes, B's outcomes)} for those samples, in order; an
# errored sample is None and leaves its pair out.
Outcome = bool | None
Draw = Callable[[Mapping[str, range]], Mapping[str, tuple[Sequence[Outcome], Sequence[Outcome]]]]


def run_sequential(keys: Sequence[str], draw: Draw, design: Design) -> SequentialVerdict:
    """Sample every case `first` times a side, then `batch` more a round where still open, until every case
    stopped. Each round is one call of `draw`, so a caller can send a round's samples together."""
    pairs = {key: Pairs(key) for key in keys}
    wanted = dict.fromkeys(keys, design.first)
    rounds = 0
    while True:
        request = {key: range(pairs[key].sampled, pairs[key].sampled + more) for key, more in wanted.items()
                   if more > 0}
        if not request:
            break
        rounds += 1
        for key, (a, b) in draw(request).items():
            kept = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
            pairs[key] = pairs[key].extended([bool(x) for x, _ in kept], [bool(y) for _, y in kept],
                                             len(request[key]))
        verdict = decide(list(pairs.values()), design)
        wanted = {d.key: min(design.batch, design.maximum - pairs[d.key].sampled) if d.stop is None else 0
                  for d in verdict.cases}
    return replace(decide(list(pairs.values()), design), rounds=rounds)


def as_drop_verdict(verdict: SequentialVerdict, weights: Design) -> DropVerdict:
    """The sequential verdict in the shape every report renders: each p-value is 1/E (anytime-valid: P(1/E <=
    a) <= a under "no drop" at any stopping time), adjusted by its Bonferroni weight, so adjusted <= alpha
    exactly when the e-value reached its threshold."""
    weight = case_weight(weights, len(verdict.cases))
    tests = tuple(CaseTest(c.key, min(1.0, 1 / c.e_value), min(1.0, 1 / (c.e_value * weight)), c.is_drop)
                  for c in verdict.cases)
    return DropVerdict(cases=tests, suite_p_value=min(1.0, 1 / verdict.suite_e_value),
                       suite_adjusted=min(1.0, 1 / (verdict.suite_e_value * weights.suite_weight)),
                       alpha=verdict.alpha, method=METHOD)


def flip_samples_needed(cases: int, design: Design) -> int | None:
    """Samples a side after which one case going K/K -> 0/K (every pair a win) is flagged among `cases` cases;
    None when the design's maximum comes first."""
    weight = case_weight(design, cases)
    return next((n for n in range(1, design.maximum + 1) if reaches(n, 0, weight, design.alpha)), None)
