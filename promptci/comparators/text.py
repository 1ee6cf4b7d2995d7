"""Text comparators: exact, normalized, contains / not_contains, regex and similarity (lexical or embedding).

Each is a factory taking its options as keyword arguments and returning `async (case, completion) -> Score`.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter

from promptci.comparators._common import (
    check_inputs,
    describe_mismatch,
    expected_text,
    ignoring_expected,
    require_bool,
    require_fraction,
    require_strings,
    snippet,
    text_diff,
)
from promptci.errors import ComparatorError
from promptci.types import Case, Comparator, Completion, Request, Score

REGEX_FLAG_LETTERS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "a": re.ASCII}
REGEX_FLAG_NAMES = {
    "IGNORECASE": re.IGNORECASE, "I": re.IGNORECASE, "MULTILINE": re.MULTILINE, "M": re.MULTILINE,
    "DOTALL": re.DOTALL, "S": re.DOTALL, "VERBOSE": re.VERBOSE, "X": re.VERBOSE, "ASCII": re.ASCII, "A": re.ASCII,
}
# Articles carry no meaning for a paraphrase check (the SQuAD answer normalization drops them too).
SIMILARITY_STOPWORDS = frozenset({"a", "an", "the"})


def exact(*, strip: bool = True) -> Comparator:
    """Passes when the output equals the expected text (both stripped of outer white space when strip)."""
    require_bool("exact", "strip", strip)

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("exact", case, completion, needs_expected=True)
        if failed:
            return failed
        expected, output = expected_text(case.expected), completion.text or ""
        if strip:
            expected, output = expected.strip(), output.strip()
        if output == expected:
            return Score("exact", 1.0, True, "output equals expected")
        return Score("exact", 0.0, False, describe_mismatch(expected, output), text_diff(expected, output))

    return score


def normalized(*, case: bool = True, whitespace: bool = True, punctuation: bool = False) -> Comparator:
    """Passes when output and expected are equal after normalizing away what the options name:
    `case` folds letter case, `whitespace` collapses runs of white space (and strips the ends),
    `punctuation` drops punctuation characters."""
    for option, value in (("case", case), ("whitespace", whitespace), ("punctuation", punctuation)):
        require_bool("normalized", option, value)

    def normalize(text: str) -> str:
        if punctuation:
            text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
        if case:
            text = text.casefold()
        if whitespace:
            text = " ".join(text.split())
        return text

    async def score(case_: Case, completion: Completion) -> Score:
        failed = check_inputs("normalized", case_, completion, needs_expected=True)
        if failed:
            return failed
        expected, output = normalize(expected_text(case_.expected)), normalize(completion.text or "")
        if output == expected:
            return Score("normalized", 1.0, True, "output equals expected after normalizing")
        reason = describe_mismatch(expected, output) + " (after normalizing)"
        return Score("normalized", 0.0, False, reason, text_diff(expected, output))

    return score


def _needles(name: str, value: str | None, values: list[str] | None) -> list[str]:
    if (value is None) == (values is None):
        raise ComparatorError(f"comparator {name!r}: give exactly one of `value` (a string) or `values` (a list)")
    if value is not None and not isinstance(value, str):
        raise ComparatorError(f"comparator {name!r}: option 'value' must be a string, got {value!r}")
    needles = [value] if value is not None else require_strings(name, "values", values)
    if not needles:
        raise ComparatorError(f"comparator {name!r}: option 'values' must not be empty")
    if any(needle == "" for needle in needles):
        raise ComparatorError(f"comparator {name!r}: an empty string matches everything; remove it")
    return needles


def _substring_comparator(name: str, needles: list[str], ignore_case: bool, *, present: bool) -> Comparator:
    """Shared body of contains (every needle present) and not_contains (every needle absent)."""
    fold = str.casefold if ignore_case else str

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs(name, case, completion, needs_expected=False)
        if failed:
            return failed
        haystack = fold(completion.text or "")
        wrong = [needle for needle in needles if (fold(needle) in haystack) != present]
        value = 1 - len(wrong) / len(needles)
        if not wrong:
            what = "present" if present else "absent"
            return Score(name, 1.0, True, f"all {len(needles)} substring(s) {what}")
        what = "missing" if present else "found"
        listed = ", ".join(snippet(needle, 40) for needle in wrong)
        return Score(name, value, False, f"{what} {len(wrong)} of {len(needles)}: {listed}")

    return ignoring_expected(score)


def contains(*, value: str | None = None, values: list[str] | None = None, ignore_case: bool = False) -> Comparator:
    """Passes when the output contains `value`, or every string of `values`; the score is the share found."""
    require_bool("contains", "ignore_case", ignore_case)
    return _substring_comparator("contains", _needles("contains", value, values), ignore_case, present=True)


def not_contains(
    *, value: str | None = None, values: list[str] | None = None, ignore_case: bool = False
) -> Comparator:
    """Passes when the output contains none of the strings; the score is the share absent."""
    require_bool("not_contains", "ignore_case", ignore_case)
    return _substring_comparator("not_contains", _needles("not_contains", value, values), ignore_case,
                                 present=False)


def _regex_flags(flags: str | list[str]) -> int:
    if isinstance(flags, str):
        unknown = [letter for letter in flags if letter.lower() not in REGEX_FLAG_LETTERS]
        if unknown:
            raise ComparatorError(
                f"comparator 'regex': unknown flag letter(s) {''.join(unknown)!r} in {flags!r} (use i, m, s, x, a)"
            )
        letters = [REGEX_FLAG_LETTERS[letter.lower()] for letter in flags]
    else:
        names = require_strings("regex", "flags", flags)
        unknown = [n for n in names if n.upper() not in REGEX_FLAG_NAMES]
        if unknown:
            raise ComparatorError(
                f"comparator 'regex': unknown flag(s) {unknown!r} (use IGNORECASE, MULTILINE, DOTALL, VERBOSE, ASCII)"
            )
        letters = [REGEX_FLAG_NAMES[n.upper()] for n in names]
    combined = 0
    for flag in letters:
        combined |= flag
    return combined


def regex(*, pattern: str | None = None, flags: str | list[str] = "") -> Comparator:
    """Passes when `pattern` matches somewhere in the output (re.search). `flags` is letters ("im")
    or a list of names (["IGNORECASE"])."""
    if pattern is None:
        raise ComparatorError("comparator 'regex' needs option 'pattern'")
    if not isinstance(pattern, str):
        raise ComparatorError(f"comparator 'regex': option 'pattern' must be a string, got {pattern!r}")
    try:
        compiled = re.compile(pattern, _regex_flags(flags))
    except re.error as exc:
        raise ComparatorError(f"comparator 'regex': invalid pattern {pattern!r}: {exc}") from exc
    shown = snippet(pattern, 40)

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("regex", case, completion, needs_expected=False)
        if failed:
            return failed
        match = compiled.search(completion.text or "")
        if match is None:
            return Score("regex", 0.0, False, f"pattern {shown} did not match the output")
        found = snippet(match.group(0), 40)
        return Score("regex", 1.0, True, f"pattern {shown} matched {found} at char {match.start()}")

    return ignoring_expected(score)


def similarity_tokens(text: str) -> Counter[str]:
    """Case-folded words with punctuation and articles removed."""
    spaced = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.casefold())
    return Counter(word for word in spaced.split() if word not in SIMILARITY_STOPWORDS)


def lexical_similarity(expected: str, output: str) -> float:
    """Token F1 (as in SQuAD): harmonic mean of the share of output words found in expected and the
    share of expected words found in output, counting repeats. Order-insensitive, so a reworded
    sentence with the same content words scores high, while added or dropped content lowers it."""
    want, got = similarity_tokens(expected), similarity_tokens(output)
    if not want and not got:
        return 1.0
    common = sum((want & got).values())
    # 2PR / (P + R) simplified, so that 4 of 5 words gives exactly 0.8 and meets a 0.8 threshold
    return 2 * common / (sum(want.values()) + sum(got.values()))


DEFAULT_EMBEDDING_MODEL = "openai:text-embedding-3-small"


def similarity(*, threshold: float = 0.8, method: str = "lexical", model: str | None = None) -> Comparator:
    """Passes when the output is similar enough to expected: score >= threshold.
    `method: lexical` is the offline token F1 of `lexical_similarity`; `method: embedding` the cosine of
    the two texts' embeddings from `model` (an OpenAI-compatible embeddings API), through the run's client."""
    threshold = require_fraction("similarity", "threshold", threshold)
    if method == "embedding":
        return embedding_similarity(threshold, model or DEFAULT_EMBEDDING_MODEL)
    if method != "lexical":
        raise ComparatorError(f"comparator 'similarity': unknown method {method!r} (use lexical or embedding)")
    if model is not None:
        raise ComparatorError("comparator 'similarity': option 'model' applies only to method: embedding")

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("similarity", case, completion, needs_expected=True)
        if failed:
            return failed
        value = lexical_similarity(expected_text(case.expected), completion.text or "")
        passed = value >= threshold
        relation = ">=" if passed else "<"
        return Score("similarity", value, passed, f"lexical similarity {value:.3f} {relation} threshold {threshold:g}")

    return score


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine of two vectors, clamped to [0, 1] (a score); 0 when either is all zeros. Each vector is divided
    by its largest component first, so huge finite components cannot overflow into NaN."""
    if len(a) != len(b):
        raise ComparatorError(f"embeddings of different lengths ({len(a)} and {len(b)}): is the model consistent?")
    a, b = unit_scaled(a), unit_scaled(b)
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if norms == 0:
        return 0.0
    value = math.fsum(x * y for x, y in zip(a, b, strict=True)) / norms
    return max(0.0, min(1.0, value))


def unit_scaled(vector: list[float]) -> list[float]:
    largest = max((abs(x) for x in vector), default=0.0)
    return vector if largest == 0 else [x / largest for x in vector]


def parse_vector(text: str | None, model: str, which: str) -> list[float]:
    """The embedding an API sent back, checked: a non-empty list of finite numbers, else a named error."""
    try:
        value = json.loads(text or "")
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                              for x in value):
        raise ComparatorError(f"the embedding of the {which} from {model} is not a list of numbers")
    if not value:
        raise ComparatorError(f"the embedding of the {which} from {model} is empty")
    bad = next((i for i, x in enumerate(value) if not math.isfinite(x)), None)
    if bad is not None:
        raise ComparatorError(f"the embedding of the {which} from {model} holds {value[bad]!r} at index {bad}: "
                              "not a finite number")
    return [float(x) for x in value]


def embedding_similarity(threshold: float, model: str) -> Comparator:
    if ":" not in model:
        raise ComparatorError(f"comparator 'similarity': model {model!r} must be PROVIDER:MODEL "
                              "(e.g. openai:text-embedding-3-small)")

    async def embed(text: str, which: str) -> list[float]:
        from promptci.modelcalls import current_calls

        calls = current_calls("similarity")
        request = Request(model=model, messages=({"role": "user", "content": text},))
        completion = await calls.call(request, "embedding", sample=0)  # an embedding is not a sample
        return parse_vector(completion.text, model, which)

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("similarity", case, completion, needs_expected=True)
        if failed:
            return failed
        value = cosine(await embed(expected_text(case.expected), "expected text"),
                       await embed(completion.text or "", "output"))
        passed = value >= threshold
        relation = ">=" if passed else "<"
        return Score("similarity", value, passed,
                     f"embedding cosine similarity {value:.3f} {relation} threshold {threshold:g} ({model})")

    score.helper_models = (model,)  # type: ignore[attr-defined]
    return score


def starts_with(*, value: str | None = None, ignore_case: bool = False, strip: bool = True) -> Comparator:
    """Passes when the output (stripped of leading white space when strip) starts with `value`."""
    if not isinstance(value, str) or not value:
        raise ComparatorError(f"comparator 'starts_with' needs option 'value' (non-empty text), got {value!r}")
    require_bool("starts_with", "ignore_case", ignore_case)
    require_bool("starts_with", "strip", strip)
    fold = str.casefold if ignore_case else str

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("starts_with", case, completion, needs_expected=False)
        if failed:
            return failed
        output = completion.text or ""
        output = output.lstrip() if strip else output
        if fold(output).startswith(fold(value)):
            return Score("starts_with", 1.0, True, f"output starts with {snippet(value, 40)}")
        return Score("starts_with", 0.0, False,
                     f"output starts {snippet(output[:len(value) + 10], 40)}, not {snippet(value, 40)}")

    return ignoring_expected(score)


def not_regex(*, pattern: str | None = None, flags: str | list[str] = "") -> Comparator:
    """Passes when `pattern` matches nowhere in the output (the opposite of regex, same options)."""
    found = regex(pattern=pattern, flags=flags)

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("not_regex", case, completion, needs_expected=False)
        if failed:
            return failed
        matched = await found(case, completion)
        if matched.passed:
            return Score("not_regex", 0.0, False, matched.reason.replace("matched", "must not match but matched"))
        return Score("not_regex", 1.0, True, matched.reason.replace("did not match", "does not match"))

    return ignoring_expected(score)


def one_of(*, values: list[str] | None = None, ignore_case: bool = False, strip: bool = True) -> Comparator:
    """Passes when the whole output (stripped when strip) equals one of `values` (a label classifier)."""
    options = require_strings("one_of", "values", values)
    if not options:
        raise ComparatorError("comparator 'one_of': option 'values' must not be empty")
    require_bool("one_of", "ignore_case", ignore_case)
    require_bool("one_of", "strip", strip)
    fold = str.casefold if ignore_case else str
    allowed = {fold(option.strip() if strip else option) for option in options}

    async def score(case: Case, completion: Completion) -> Score:
        failed = check_inputs("one_of", case, completion, needs_expected=False)
        if failed:
            return failed
        output = completion.text or ""
        if fold(output.strip() if strip else output) in allowed:
            return Score("one_of", 1.0, True, f"output {snippet(output.strip(), 40)} is one of {len(options)} values")
        listed = ", ".join(snippet(option, 20) for option in options[:5])
        return Score("one_of", 0.0, False, f"output {snippet(output.strip(), 40)} is none of {listed}")

    return ignoring_expected(score)
