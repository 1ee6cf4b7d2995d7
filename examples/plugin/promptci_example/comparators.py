"""A comparator is a factory: it takes its options as keyword arguments (checked once, when the golden file
is loaded) and returns `async (case, completion) -> Score`. Its docstring's first sentence is what
`promptci comparators` shows; its keyword arguments are the options listed there."""

from __future__ import annotations

from promptci.errors import ComparatorError
from promptci.types import Case, Comparator, Completion, Score


def word_count(*, min_words: int = 1, max_words: int | None = None) -> Comparator:
    """Passes when the output has between min_words and max_words words.

    The score is 1 inside the range, else how close the count came to it (0..1).
    """
    if not isinstance(min_words, int) or min_words < 0:
        raise ComparatorError(f"comparator 'word_count': min_words must be a whole number >= 0, got {min_words!r}")
    if max_words is not None and (not isinstance(max_words, int) or max_words < min_words):
        raise ComparatorError(f"comparator 'word_count': max_words must be a whole number >= min_words, "
                              f"got {max_words!r}")

    async def score(case: Case, completion: Completion) -> Score:
        if completion.text is None:
            return Score("word_count", 0.0, False, "no output to count")
        count = len(completion.text.split())
        if count < min_words:
            return Score("word_count", count / min_words, False, f"{count} words, fewer than {min_words}")
        if max_words is not None and count > max_words:
            return Score("word_count", max_words / count, False, f"{count} words, more than {max_words}")
        return Score("word_count", 1.0, True, f"{count} words")

    return score
