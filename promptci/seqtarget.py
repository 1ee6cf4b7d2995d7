"""Beside the sequential library (sequential.py): its verdict as the reports name it, and the design chosen
from a target (`--repeat auto --detect DROP`), found by simulating the library's own procedure."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from promptci.errors import PromptCIError
from promptci.sequential import Design, Outcome, SequentialVerdict, as_drop_verdict, run_sequential
from promptci.stats import DropVerdict

# The adjusted p-value of the sequential test is 1/(E x weight): the anytime-valid p-value 1/E under the
# weighted Bonferroni split of alpha (no Holm step-down).
ADJUSTMENT = "Bonferroni-adjusted 1/(E x w)"


def sequential_drop_verdict(verdict: SequentialVerdict, design: Design) -> DropVerdict:
    """as_drop_verdict, with the reports' column naming the adjustment it used."""
    return replace(as_drop_verdict(verdict, design), adjustment=ADJUSTMENT)


BASE_RATE = 0.9  # the pass rate at A the target assumes, as the power lines of a fixed K do (stats.POWER_BASE_RATE)
TARGET_POWER = 0.8
TRIALS = 200  # simulated PRs per design looked at: the power's standard error near 0.8 is 0.028
SEED = 19
DETECT_CAP = 128  # the largest MAX --detect picks on its own; a larger one is asked for with --repeat auto:MAX
FIRSTS = (8, 12)  # larger first looks, tried in turn: fewer cases with a real drop stop as unchanged after it
MAXIMA = (8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 200, 256, 320, 400, 500, 640, 800, 1000)


@dataclass(frozen=True)
class Choice:
    """The design --detect chose, and the simulated power that chose it."""

    design: Design
    drop: float
    cases: int
    power: float

    def line(self) -> str:
        design = self.design
        return (f"--repeat auto --detect {self.drop:g}: design first {design.first}, batch {design.batch}, "
                f"MAX {design.maximum} samples a side, a case stops as unchanged when its counts favour no drop "
                f"over a {design.drop:g} drop "
                f"(Bayes factor under {design.futility:g}); it flags a "
                f"case falling from {BASE_RATE:.0%} to {max(BASE_RATE - self.drop, 0):.0%} by name among "
                f"{self.cases} cases with {self.power:.0%} power at alpha {design.alpha:g} (the sequential "
                f"procedure simulated, {TRIALS} PRs, seed {SEED})")


def detect_power(design: Design, cases: int, drop: float, trials: int = TRIALS, seed: int = SEED) -> float:
    """The chance that one case falling from BASE_RATE by `drop`, among `cases` cases whose pass rate stays
    BASE_RATE, is flagged by name: sequential.run_sequential itself, on seeded simulated samples."""
    return sum(_flagged(design, cases, drop, trials, seed)) / trials


def has_power(design: Design, cases: int, drop: float) -> bool:
    """detect_power(...) >= TARGET_POWER, stopping the simulation once the count decides it either way."""
    caught = missed = 0
    for flagged in _flagged(design, cases, drop, TRIALS, SEED):
        caught, missed = caught + flagged, missed + (not flagged)
        if caught >= TARGET_POWER * TRIALS or missed > (1 - TARGET_POWER) * TRIALS:
            break
    return caught >= TARGET_POWER * TRIALS


def _flagged(design: Design, cases: int, drop: float, trials: int, seed: int) -> Iterator[bool]:
    draws = random.Random(seed)
    after = max(BASE_RATE - drop, 0.0)
    keys = [str(i) for i in range(max(cases, 1))]

    def draw(request: Mapping[str, range]) -> dict[str, tuple[list[Outcome], list[Outcome]]]:
        return {key: ([draws.random() < BASE_RATE for _ in indices],
                      [draws.random() < (after if key == "0" else BASE_RATE) for _ in indices])
                for key, indices in request.items()}

    for _ in range(trials):
        yield run_sequential(keys, draw, design).cases[0].is_drop


def choose_design(design: Design, cases: int, drop: float) -> Choice:
    """The cheapest design up to `design.maximum` samples a side that flags a `drop` on one case by name with
    TARGET_POWER: the futility rule sized for half the drop (a case falling that fast is not stopped as unchanged), the
    first look the smallest of FIRSTS that gets there, then the smallest MAX of MAXIMA. PromptCIError (exit 2)
    when none does."""
    cap = design.maximum
    slower = replace(design, drop=min(design.drop, drop / 2))
    for first in sorted({f for f in (design.first, *FIRSTS) if design.first <= f <= cap}):
        top = replace(slower, first=first)
        if has_power(top, cases, drop):
            found = smallest_maximum(top, cases, drop)
            return Choice(found, drop, cases, detect_power(found, cases, drop))
    raise PromptCIError(
        f"--detect {drop:g}: with {cases} cases and alpha {design.alpha:g}, even --repeat auto:{cap} flags a case "
        f"falling from {BASE_RATE:.0%} to {max(BASE_RATE - drop, 0):.0%} in fewer than {TARGET_POWER:.0%} of "
        f"{TRIALS} simulated PRs: allow more samples (--repeat auto:MAX, MAX up to 1000), detect a larger "
        f"drop (e.g. --detect {min(round(drop * 1.5, 2), 0.9):g}), or raise --alpha")


def smallest_maximum(top: Design, cases: int, drop: float) -> Design:
    """The first MAX of MAXIMA (up to top's, which has TARGET_POWER) with TARGET_POWER, by bisection: power grows
    with MAX, and every design is simulated on the same seeded draws."""
    grid = [m for m in MAXIMA if top.first <= m < top.maximum] + [top.maximum]
    low, high = 0, len(grid) - 1
    while low < high:
        middle = (low + high) // 2
        if has_power(replace(top, maximum=grid[middle]), cases, drop):
            high = middle
        else:
            low = middle + 1
    return replace(top, maximum=grid[high])
