"""Measures of the output: length (characters, words) and edit distances from expected (rapidfuzz)."""

from __future__ import annotations

from promptci.comparators._common import (
    check_inputs,
    expected_text,
    ignoring_expected,
    require_fraction,
    require_number,
)
from promptci.errors import ComparatorError
from promptci.types import Case, Comparator, Completion, Score


def _limit(option: str, value: float | None) -> float | None:
    if value is None:
        return None
    number = require_number("length", option, value)
    if not number.is_integer():
        raise ComparatorError(f"comparator 'length': option {option!r} must be a whole number, got {value!r}")
    return number


def length(*, min_chars: int | None = None, max_chars: int | None = None, min_words: int | None = None,
           max_words: int | None = None) -> Comparator:
    """Passes when the output's characters and words (split on white space) are within the limits given."""
    limits = {"chars": (_limit("min_chars", min_chars), _limit("max_chars", max_chars)),
              "words": (_limit("min_words", min_words), _limit("max_words", max_words))}
    if all(bound is None for pair in limits.values() for bound in pair):
        raise ComparatorError("comparator 'length' needs min_chars, max_chars, min_words or max_words")
    for unit, (low, high) in limits.items():
        if low is not None and high is not None and low > high:
            raise ComparatorError(f"comparator 'length': min_{unit} {low:g} is greater than max_{unit} {high:g}")

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("length", case, completion, needs_expected=False)
        if failed:
            return failed
        text = (completion.text or "").strip()
        measured = {"chars": len(text), "words": len(text.split())}
        wrong = []
        for unit, (low, high) in limits.items():
            if low is not None and measured[unit] < low:
                wrong.append(f"{measured[unit]} {unit} < min {low:g}")
            if high is not None and measured[unit] > high:
                wrong.append(f"{measured[unit]} {unit} > max {high:g}")
        if wrong:
            return Score("length", 0.0, False, "; ".join(wrong))
        return Score("length", 1.0, True, f"{measured['chars']} chars, {measured['words']} words: within limits")

    return ignoring_expected(score)


def fuzzy(*, threshold: float = 0.8, ignore_case: bool = False) -> Comparator:
    """Passes when rapidfuzz's normalized InDel ratio of output and expected is >= threshold (0..1)."""
    from rapidfuzz import fuzz

    limit = require_fraction("fuzzy", "threshold", threshold)
    fold = str.casefold if ignore_case else str

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("fuzzy", case, completion, needs_expected=True)
        if failed:
            return failed
        ratio = fuzz.ratio(fold(expected_text(case.expected).strip()), fold((completion.text or "").strip())) / 100
        passed = ratio >= limit
        return Score("fuzzy", ratio, passed, f"fuzzy ratio {ratio:.3f} {'>=' if passed else '<'} threshold {limit:g}")

    return score


def levenshtein(*, max_distance: int | None = None) -> Comparator:
    """Passes when output and expected (both stripped) are at most max_distance edits apart."""
    from rapidfuzz.distance import Levenshtein

    if max_distance is None:
        raise ComparatorError("comparator 'levenshtein' needs option 'max_distance' (a whole number of edits)")
    if isinstance(max_distance, bool) or not isinstance(max_distance, int) or max_distance < 0:
        raise ComparatorError(f"comparator 'levenshtein': option 'max_distance' must be a whole number >= 0, "
                              f"got {max_distance!r}")

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("levenshtein", case, completion, needs_expected=True)
        if failed:
            return failed
        expected, output = expected_text(case.expected).strip(), (completion.text or "").strip()
        distance = Levenshtein.distance(expected, output)
        passed = distance <= max_distance
        value = 1.0 if passed else Levenshtein.normalized_similarity(expected, output)
        return Score("levenshtein", value, passed,
                     f"edit distance {distance} {'<=' if passed else '>'} max {max_distance}")

    return score
