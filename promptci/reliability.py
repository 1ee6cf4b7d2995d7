"""A repeated case's reliability, exactly: its own `min_pass_rate` rule (THE one `run`, `diff` and every report
share), pass@k and pass^k by their unbiased estimators, in exact integer arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

# The confidence of the Wilson bound behind `min_pass_rate`: the 95% interval every repeated report prints.
CONFIDENCE = 0.95
LARGEST_REPEAT = 10_000  # samples_to_tolerate looks no further


def wilson_lower(passes: int, samples: int) -> float:
    from promptci.stats import wilson_interval  # lazily: the library loads stats only when a run needs it

    return wilson_interval(passes, samples, CONFIDENCE).low


def clears_min_pass_rate(passes: int, samples: int, min_pass_rate: float) -> bool:
    """A case with `min_pass_rate` passes when every scored sample passed (the rule without a threshold: the
    threshold only relaxes it), or when the 95% Wilson lower bound of its pass rate is at least the threshold.
    One sample (no --repeat) passes iff it passed: its lower bound is 0."""
    return passes == samples or wilson_lower(passes, samples) >= min_pass_rate


def samples_to_tolerate(failures: int, min_pass_rate: float) -> int | None:
    """The fewest samples at which `failures` failing samples still clear min_pass_rate (None: none up to
    LARGEST_REPEAT does, e.g. min_pass_rate 1). The lower bound grows with the samples at a fixed failure count."""
    if failures <= 0:
        return 1
    low, high = failures + 1, LARGEST_REPEAT
    if not clears_min_pass_rate(high - failures, high, min_pass_rate):
        return None
    while low < high:  # bisect: wilson_lower(n - f, n) increases with n
        middle = (low + high) // 2
        if clears_min_pass_rate(middle - failures, middle, min_pass_rate):
            high = middle
        else:
            low = middle + 1
    return low


def _check(samples: int, passes: int, k: int) -> None:
    if not 0 <= passes <= samples:
        raise ValueError(f"passes must lie within 0..{samples}, got {passes}")
    if not 1 <= k <= samples:
        raise ValueError(f"k must lie within 1..{samples} (the samples), got {k}")


def pass_at_k(samples: int, passes: int, k: int) -> Fraction:
    """The chance that at least one of k samples drawn without replacement from these passes: the unbiased
    estimator 1 - C(n - c, k) / C(n, k) of Chen et al. 2021, "Evaluating Large Language Models Trained on Code"."""
    _check(samples, passes, k)
    return 1 - Fraction(math.comb(samples - passes, k), math.comb(samples, k))


def pass_hat_k(samples: int, passes: int, k: int) -> Fraction:
    """pass^k, the chance that all k samples drawn without replacement pass: C(c, k) / C(n, k), the unbiased
    estimator of Yao et al. 2024, "tau-bench"."""
    _check(samples, passes, k)
    return Fraction(math.comb(passes, k), math.comb(samples, k))
