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
weighted Bonferroni family, so the family-wise false-alarm rate stays <= alpha. When a case stops sampling is
decided by other evidence too (a Bayes factor on both sides' pass counts, `drop_bayes_factor`); stopping rules
never move a threshold, so they change cost and power, not the guarantee.

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
# The default design (docs/sequential.md, "The frontier": the trade-off between requests spent on an
# unchanged suite and the chance of naming broken cases, measured by bench/bench_sequential.py)
FIRST = 3  # samples a side every case starts with
BATCH = 2  # samples a side added a round to every case still open
MAXIMUM = 48  # samples a side at most
DROP = 0.5  # the per-case drop the futility rule guards
FUTILITY = 0.1  # Bayes-factor threshold under which a case stops as unchanged
SUITE_STOP_FACTOR = 3.0  # once the suite is flagged, a case off course stops unless its factor says dropped
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
    first: int = FIRST
    batch: int = BATCH
    maximum: int = MAXIMUM
    suite_weight: float = SUITE_WEIGHT
    drop: float = DROP  # the drop of one case's pass rate the design is sized to name (the futility rule's
    # alternative); smaller drops spread over the suite are the suite test's
    futility: float = FUTILITY  # a case stops as unchanged once the Bayes factor of "dropped by `drop`" against
    # "unchanged" falls under this

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie within (0, 1), got {self.alpha}")
        if not 1 <= self.first <= self.maximum or self.batch < 1:
            raise ValueError(f"need 1 <= first <= maximum and batch >= 1, got {self}")
        if not 0 < self.drop < 1 or not 0 < self.futility < 1:
            raise ValueError(f"need 0 < drop < 1 and 0 < futility < 1, got {self}")
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
    elif (factor := _drop_factor(case, design)) < design.futility:
        stop = Stop.UNCHANGED
    elif not reaches(wins + design.maximum - case.sampled, losses, weight, design.alpha):
        stop = Stop.OUT_OF_REACH
    elif case.sampled >= design.maximum:
        stop = Stop.MAXIMUM
    elif suite_flagged and factor < SUITE_STOP_FACTOR and not _on_course(case, weight, design):
        stop = Stop.SUITE_FLAGGED
    return CaseDecision(case.key, wins, losses, n, e_value(wins, losses), 1 / (weight * design.alpha), stop)


def _on_course(case: Pairs, weight: float, design: Design) -> bool:
    """Whether the case, winning and losing at its rates so far up to the maximum, would reach its threshold."""
    left = design.maximum - case.sampled
    wins = case.wins + math.ceil(case.wins / case.n * left)
    losses = case.losses + math.floor(case.losses / case.n * left)
    return reaches(wins, losses, weight, design.alpha)


_NODES = 400  # midpoint rule on [drop, 1]: the futility rule needs two digits, not exactness


@lru_cache(maxsize=65536)
def drop_bayes_factor(passes_a: int, n_a: int, passes_b: int, n_b: int, drop: float) -> float:
    """How much likelier A's and B's pass counts are if B's pass rate is A's minus `drop` (0 at the least) than
    if both pass at one rate, A's rate uniform on [0, 1] under both:

        BF = integral_0^1 p^a (1-p)^(n_a-a) r^b (1-r)^(n_b-b) dp / integral_0^1 p^(a+b) (1-p)^(n_a+n_b-a-b) dp,

    r = max(0, p - drop). Only the futility rule uses it (when to stop sampling), never a rejection."""
    a, b, fa, fb = passes_a, passes_b, n_a - passes_a, n_b - passes_b
    # the denominator is the Beta function B(a + b + 1, fa + fb + 1)
    log_null = math.lgamma(a + b + 1) + math.lgamma(fa + fb + 1) - math.lgamma(a + b + fa + fb + 2)
    terms: list[float] = []
    if b == 0:  # p <= drop: B's rate is 0, so only a B without passes has weight there
        width = drop / _NODES
        terms += [math.log(width) + _log_binomial_path(width * (i + 0.5), a, fa) for i in range(_NODES)]
    width = (1 - drop) / _NODES
    for i in range(_NODES):
        p = drop + width * (i + 0.5)
        terms.append(math.log(width) + _log_binomial_path(p, a, fa) + _log_binomial_path(p - drop, b, fb))
    top = max(terms)
    log_drop = top + math.log(sum(math.exp(t - top) for t in terms))
    return math.exp(log_drop - log_null)


def _log_binomial_path(p: float, passes: int, fails: int) -> float:
    return passes * math.log(p) + fails * math.log1p(-p)


def _drop_factor(case: Pairs, design: Design) -> float:
    return drop_bayes_factor(sum(case.a), len(case.a), sum(case.b), len(case.b), design.drop)


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
    """Samples a side after which one case going K/K -> 0/K (every pair a win) is flagged among `cases` cases:
    the first look (`first`, then every `batch` more, and the maximum) where its wins reach the threshold; None
    when the design's maximum comes first."""
    weight = case_weight(design, cases)
    looks = sorted({*range(design.first, design.maximum + 1, design.batch), design.maximum})
    return next((n for n in looks if reaches(n, 0, weight, design.alpha)), None)
