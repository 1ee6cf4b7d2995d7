"""Pure Run x Run -> Comparison: cases paired across two runs, what happened to each, and the verdict."""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from promptci.comparators.structured import JSONParseError, parse_json
from promptci.gitrev import Rename
from promptci.stats import CaseCounts, DropVerdict, Interval, drop_verdict, wilson_interval
from promptci.types import CaseResult, GitInfo, ResultKey, Review, Run, case_status_of
from promptci.verdict.money import priced

if TYPE_CHECKING:
    from promptci.verdict.policy import Verdict

Transition = Literal["regressed", "fixed", "new", "new_failing", "removed", "still_failing", "still_passing", "flaky",
                     "error", "skipped", "dropped"]
SideStatus = Literal["passed", "failed", "error", "skipped"]
PROMPT_DIR = "prompts/"
PairKey = tuple[str, str, str, str]  # golden file, prompt, case id, model


@dataclass(frozen=True)
class Measure:
    """One quantity at A and at B; None where unknown (never shown as 0)."""

    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before


@dataclass(frozen=True)
class ScoreChange:
    comparator: str
    before: float | None  # mean over samples; None when the side had no such score
    after: float | None


@dataclass(frozen=True)
class CaseChange:
    """One case x model at both sides (all its samples), and what changed."""

    prompt: str  # B's name (A's after a rename), or A's for a removed case
    case_id: str
    model: str
    file: str
    line: int
    transition: Transition
    before: tuple[CaseResult, ...]  # samples, by repeat index
    after: tuple[CaseResult, ...]
    scores: tuple[ScoreChange, ...] = ()
    output_diff: str | None = None  # first sample's output, A -> B
    cost_usd: Measure = Measure(None, None)
    tokens: Measure = Measure(None, None)
    latency_ms: Measure = Measure(None, None)
    renamed_from: str | None = None  # "file::prompt" at A when a rename paired it; "file::prompt::id" for another id
    checks_changed: tuple[str, ...] = ()  # comparators whose options differ A -> B: "fuzzy: threshold 0.95 → 0.5"
    diverged: str | None = None  # a conversation: the first turn where A and B differ, and how

    @property
    def counts(self) -> tuple[int, int, int, int]:
        """(passes at A, samples at A, passes at B, samples at B) over scored samples."""
        return (*_passes(self.before), *_passes(self.after))

    @property
    def intervals(self) -> tuple[Interval, Interval]:
        """95% Wilson intervals of the pass rate at A and at B."""
        passes_a, n_a, passes_b, n_b = self.counts
        return wilson_interval(passes_a, n_a), wilson_interval(passes_b, n_b)

    @property
    def is_flaky(self) -> bool:
        """Mixed outcomes within one side; a case that passed every sample at A and failed every one at B
        is never flaky, whatever the test says."""
        return any(0 < passes < n for passes, n in (_passes(self.before), _passes(self.after)))

    @property
    def repeat(self) -> int:
        return max(len(self.before), len(self.after))


@dataclass(frozen=True)
class GroupTotals:
    """Per prompt x model: cases passing at each side, cost, tokens and mean latency."""

    prompt: str
    model: str
    passed: Measure
    cases: Measure
    cost_usd: Measure
    tokens: Measure
    latency_ms: Measure


@dataclass(frozen=True)
class SampleCounts:
    """A side's samples by where their answers came from."""

    fresh: int = 0  # sent to the model in this run (errors included)
    cached: int = 0  # answered by the cache or the recordings

    @classmethod
    def of(cls, results: Iterable[CaseResult]) -> SampleCounts:
        answered = [r for r in results if r.status != "skipped"]
        cached = sum(r.cached for r in answered)
        return cls(fresh=len(answered) - cached, cached=cached)


@dataclass(frozen=True)
class Side:
    """Which run one side of a comparison is: the revision as the user named it, the run and its git state, and
    how many of its samples were fresh or cached."""

    revision: str
    run_id: str
    git: GitInfo = field(default_factory=GitInfo)
    samples: SampleCounts = field(default_factory=SampleCounts)


@dataclass(frozen=True)
class Comparison:
    changes: tuple[CaseChange, ...]
    totals: tuple[GroupTotals, ...]
    repeated: bool
    verdict: DropVerdict | None = None  # the family-wise test, when samples were repeated
    counts: Mapping[str, int] = field(default_factory=dict)  # transition -> cases
    sides: tuple[Side, Side] = (Side("A", ""), Side("B", ""))  # what the reports name A and B
    allow_new_failures: bool = False  # --allow-new-failures: a new case failing at B does not fail the gate
    decision: Verdict | None = None  # what the gates decided (verdict/diff.py): every report renders it
    # the human reviews of A's and of B's outputs, by result (viewer/reviews.py's comparison_with_reviews fills it)
    reviews: tuple[Mapping[ResultKey, Review], Mapping[ResultKey, Review]] = field(
        default_factory=lambda: ({}, {}), hash=False, compare=False)

    def with_transition(self, *names: Transition) -> list[CaseChange]:
        return [c for c in self.changes if c.transition in names]


def prompt_renames(renames: Iterable[Rename]) -> dict[str, str]:
    """Prompt names renamed between revisions, from git's file renames: prompts/a.txt -> prompts/b.j2
    gives {"a": "b"}."""
    found: dict[str, str] = {}
    for rename in renames:
        if rename.old.startswith(PROMPT_DIR) and rename.new.startswith(PROMPT_DIR):
            found[_prompt_name(rename.old)] = _prompt_name(rename.new)
    return found


def _prompt_name(path: str) -> str:
    stem = path[len(PROMPT_DIR):]
    return stem.rsplit(".", 1)[0] if "." in stem.rsplit("/", 1)[-1] else stem


def compare_runs(before: Run, after: Run, renames: Iterable[Rename] = (), alpha: float = 0.05,
                 revisions: tuple[str, str] = ("A", "B"), allow_new_failures: bool = False,
                 verdict: DropVerdict | None = None) -> Comparison:
    """Pair A's and B's results (see pair_cases) and say what happened to each case. `revisions` are the
    names the reports give A and B. `verdict`: the family-wise test already decided (a sequential design's,
    keyed by pair_label); without it the fixed-sample test of stats.drop_verdict decides."""
    pairs = pair_results(before.results, after.results, renames)
    repeated = any(len(s) > 1 for _, a, b in pairs for s in (a, b))
    if repeated and verdict is None:
        verdict = drop_verdict([CaseCounts(_label(k), *_passes(a), *_passes(b)) for k, a, b in pairs], alpha)
    elif not repeated:
        verdict = None
    drops = {c.key for c in verdict.cases if c.is_drop} if verdict else set()
    changes = tuple(_change(k, a, b, repeated, _label(k) in drops) for k, a, b in pairs)
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.transition] = counts.get(change.transition, 0) + 1
    sides = (Side(revisions[0], before.run_id, before.git, SampleCounts.of(before.results)),
             Side(revisions[1], after.run_id, after.git, SampleCounts.of(after.results)))
    return Comparison(changes=changes, totals=_totals(changes), repeated=repeated, verdict=verdict, counts=counts,
                      sides=sides, allow_new_failures=allow_new_failures)


Samples = tuple[CaseResult, ...]


def pair_results(before: Iterable[CaseResult], after: Iterable[CaseResult], renames: Iterable[Rename] = ()
                 ) -> list[tuple[PairKey, Samples, Samples]]:
    """A's and B's samples grouped by case and paired (pair_cases), A's keys followed through git's renames."""
    renames = tuple(renames)
    files = {r.old: r.new for r in renames}
    return pair_cases(_group(before, files, prompt_renames(renames)), _group(after, {}, {}))


def pair_label(key: PairKey) -> str:
    """How the family-wise test names a paired case."""
    return _label(key)


def pair_cases(old: Mapping[PairKey, Samples],
               new: Mapping[PairKey, Samples]) -> list[tuple[PairKey, Samples, Samples]]:
    """(B's key, A's samples, B's samples) for every case, B's order first, then the cases only A has.

    A case pairs with its A side by (golden file, prompt, case id, model), git's renames of files and prompts
    followed; then by (prompt, case id, model) in another file, when only one such case is left on each side;
    then by content, (prompt, input, model), one to one in order: a case renamed, or moved to a file git does
    not see as a rename, keeps its history."""
    match = {key: key for key in new if key in old}

    def by_id(key: PairKey, samples: Samples) -> Hashable:
        return key[1:]

    def by_content(key: PairKey, samples: Samples) -> Hashable:
        return (key[1], samples[0].input_hash, key[3]) if samples and samples[0].input_hash else None

    for facet, unique in ((by_id, True), (by_content, False)):
        taken = set(match.values())
        _match_by(facet, {k: v for k, v in new.items() if k not in match},
                  {k: v for k, v in old.items() if k not in taken}, match, unique)
    taken = set(match.values())
    return [(k, old[match[k]] if k in match else (), v) for k, v in new.items()] + \
        [(k, v, ()) for k, v in old.items() if k not in taken]


def _match_by(facet: Callable[[PairKey, Samples], Hashable], new: Mapping[PairKey, Samples],
              old: Mapping[PairKey, Samples], match: dict[PairKey, PairKey], unique: bool) -> None:
    """Pair B's unpaired cases with A's of the same facet (None never pairs), in order; with `unique`, only
    where one case on each side has that facet."""
    waiting: dict[Hashable, list[PairKey]] = {}
    for key, samples in old.items():
        waiting.setdefault(facet(key, samples), []).append(key)
    facets = {key: facet(key, samples) for key, samples in new.items()}
    wanted = Counter(facets.values())
    for key, found_facet in facets.items():
        found = waiting.get(found_facet)
        if found_facet is None or not found or (unique and (len(found) > 1 or wanted[found_facet] > 1)):
            continue
        match[key] = found.pop(0)


def _label(key: PairKey) -> str:
    file, prompt, case_id, model = key
    return f"{file}::{case_id}[{prompt}, {model}]"


def _group(results: Iterable[CaseResult], files: Mapping[str, str],
           prompts: Mapping[str, str]) -> dict[PairKey, tuple[CaseResult, ...]]:
    grouped: dict[PairKey, list[CaseResult]] = {}
    for r in results:
        key = (files.get(r.file, r.file), prompts.get(r.prompt, r.prompt), r.case_id, r.model)
        grouped.setdefault(key, []).append(r)
    return {k: tuple(sorted(v, key=lambda r: r.repeat)) for k, v in grouped.items()}


def _passes(samples: Sequence[CaseResult]) -> tuple[int, int]:
    scored = [r for r in samples if r.status in ("passed", "failed")]
    return sum(r.status == "passed" for r in scored), len(scored)


def side_status(samples: Sequence[CaseResult]) -> SideStatus:
    """A case's status over its samples, as in `run` (types.case_status_of): an error anywhere leaves no
    verdict; passed only if all passed, or when the case has a min_pass_rate, if its rate clears it."""
    return cast(SideStatus, case_status_of(samples))


def has_threshold(samples: Sequence[CaseResult]) -> bool:
    return any(r.min_pass_rate is not None for r in samples)


def _transition(before: Sequence[CaseResult], after: Sequence[CaseResult], repeated: bool,
                is_drop: bool) -> Transition:
    if not before:
        return "new_failing" if side_status(after) == "failed" else "new"
    if not after:
        return "removed"
    if is_drop:  # a significant drop stays one when a sample also errored
        return "regressed"
    old, new = side_status(before), side_status(after)
    if "error" in (old, new):
        return "error"
    if "skipped" in (old, new):
        return "skipped"
    if old == new:
        return "still_passing" if old == "passed" else "still_failing"
    if not repeated or has_threshold(after):  # B's min_pass_rate decides B's status: crossing it is the change
        return "regressed" if old == "passed" else "fixed"
    (passes_a, n_a), (passes_b, n_b) = _passes(before), _passes(after)
    if 0 < passes_a < n_a or 0 < passes_b < n_b:
        return "flaky"  # mixed outcomes within a side (9/10 -> 10/10 is not "fixed")
    return "fixed" if new == "passed" else "dropped"  # K/K -> 0/K that the test does not call significant


def _change(key: PairKey, before: tuple[CaseResult, ...], after: tuple[CaseResult, ...], repeated: bool,
            is_drop: bool) -> CaseChange:
    file, prompt, case_id, model = key
    where = after[0] if after else before[0]
    renamed_from = None
    if before and (before[0].file != file or before[0].prompt != prompt):
        renamed_from = f"{before[0].file}::{before[0].prompt}"
    if before and before[0].case_id != case_id:
        renamed_from = f"{before[0].file}::{before[0].prompt}::{before[0].case_id}"
    transition = _transition(before, after, repeated, is_drop)
    return CaseChange(
        prompt=prompt, case_id=case_id, model=model, file=where.file, line=where.line, transition=transition,
        before=before, after=after, scores=_score_changes(before, after),
        output_diff=output_diff(before[0].output, after[0].output) if before and after else None,
        cost_usd=Measure(priced(before).amount if before else None, priced(after).amount if after else None),
        tokens=Measure(_tokens(before), _tokens(after)),
        latency_ms=Measure(_mean(before, "latency_ms"), _mean(after, "latency_ms")),
        renamed_from=renamed_from, checks_changed=comparator_changes(before, after),
        diverged=divergence(before[0].transcript, after[0].transcript) if before and after else None,
    )


def divergence(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]) -> str | None:
    """Two conversations' transcripts paired turn by turn: the first turn that differs and what differs in it
    (the user message, the tool calls, the mocks' answers, the model's text); None when they are the same."""
    if not before and not after:
        return None
    for index in range(max(len(before), len(after))):
        number = index + 1
        if index >= len(before) or index >= len(after):
            longer, side = ("B", after) if index >= len(before) else ("A", before)
            return f"turn {number}: only {longer} has it ({_calls_text(side[index]) or 'a text answer'})"
        old, new = before[index], after[index]
        if old.get("user") != new.get("user"):
            return f"turn {number}: the user message differs"
        old_calls, new_calls = _calls_text(old), _calls_text(new)
        if old_calls != new_calls:
            return f"turn {number}: A called {old_calls or 'no tool'}, B called {new_calls or 'no tool'}"
        if [c.get("result") for c in old.get("tool_calls") or ()] != [c.get("result")
                                                                        for c in new.get("tool_calls") or ()]:
            return f"turn {number}: the mocks answered differently"
        if old.get("text") != new.get("text"):
            return f"turn {number}: the model's text differs"
    return None


def _calls_text(turn: Mapping[str, Any]) -> str:
    return ", ".join(f"{call.get('name')}({call.get('arguments')})" for call in turn.get("tool_calls") or ())


def _score_changes(before: Sequence[CaseResult], after: Sequence[CaseResult]) -> tuple[ScoreChange, ...]:
    def means(samples: Sequence[CaseResult]) -> dict[str, float]:
        values: dict[str, list[float]] = {}
        for r in samples:
            for s in r.scores:
                values.setdefault(s.comparator, []).append(s.value)
        return {name: sum(v) / len(v) for name, v in values.items()}

    old, new = means(before), means(after)
    names = list(new) + [n for n in old if n not in new]
    return tuple(ScoreChange(n, old.get(n), new.get(n)) for n in names)


def comparator_changes(before: Sequence[CaseResult], after: Sequence[CaseResult]) -> tuple[str, ...]:
    """How the case's comparators differ A -> B, from the options each score records: `fuzzy: threshold 0.95 →
    0.5`, `json_schema added`, `contains removed`. A case scored by other rules at each side has verdicts that do
    not compare as they stand. Empty when a side has no scored sample."""
    old, new = _comparators_of(before), _comparators_of(after)
    if old is None or new is None:
        return ()
    changes: list[str] = []
    for name in list(new) + [n for n in old if n not in new]:
        was, now = old.get(name, []), new.get(name, [])
        for old_options, new_options in zip(was, now, strict=False):
            changed = [f"{key} {_option_text(old_options, key)} → {_option_text(new_options, key)}"
                       for key in list(old_options) + [k for k in new_options if k not in old_options]
                       if old_options.get(key, _UNSET) != new_options.get(key, _UNSET)]
            if changed:
                changes.append(f"{name}: {', '.join(changed)}")
        changes += [f"{name} added"] * max(0, len(now) - len(was)) + [f"{name} removed"] * max(0, len(was) - len(now))
    return tuple(changes)


_UNSET = object()


def _comparators_of(samples: Sequence[CaseResult]) -> dict[str, list[Mapping[str, Any]]] | None:
    """comparator -> the options of each of the case's comparators of that type, in order (from its first
    scored sample); None when no sample was scored."""
    scored = next((r for r in samples if r.scores and not r.error), None)  # a raising comparator has no score
    if scored is None:
        return None
    found: dict[str, list[Mapping[str, Any]]] = {}
    for score in scored.scores:
        found.setdefault(score.comparator, []).append(score.options)
    return found


def _option_text(options: Mapping[str, Any], key: str) -> str:
    if key not in options:
        return "unset"
    text = json.dumps(options[key], ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:40] + "…"


def _values(samples: Sequence[CaseResult], name: str) -> list[float] | None:
    values = [getattr(r, name) for r in samples]
    return None if not values or any(v is None for v in values) else values


def _sum(samples: Sequence[CaseResult], name: str) -> float | None:
    values = _values(samples, name)
    return None if values is None else float(sum(values))


def _mean(samples: Sequence[CaseResult], name: str) -> float | None:
    values = _values(samples, name)
    return None if values is None else sum(values) / len(values)


def _tokens(samples: Sequence[CaseResult]) -> float | None:
    inputs, outputs = _sum(samples, "input_tokens"), _sum(samples, "output_tokens")
    return None if inputs is None or outputs is None else inputs + outputs


def _totals(changes: Sequence[CaseChange]) -> tuple[GroupTotals, ...]:
    groups: dict[tuple[str, str], list[CaseChange]] = {}
    for change in changes:
        groups.setdefault((change.prompt, change.model), []).append(change)
    return tuple(_group_totals(prompt, model, group) for (prompt, model), group in groups.items())


def _group_totals(prompt: str, model: str, group: Sequence[CaseChange]) -> GroupTotals:
    def side(pick: str) -> tuple[float, float, float | None, float | None, float | None]:
        present = [getattr(c, pick) for c in group if getattr(c, pick)]
        passed = sum(side_status(s) == "passed" for s in present)
        samples = [r for s in present for r in s]
        cost = priced(samples).amount if samples else None
        return passed, len(present), cost, _tokens(samples), _mean(samples, "latency_ms")

    a, b = side("before"), side("after")
    return GroupTotals(prompt, model, *(Measure(x, y) for x, y in zip(a, b, strict=True)))


_WORDS = re.compile(r"\s+|[^\s]+")


def output_diff(before: str | None, after: str | None) -> str | None:
    """What changed in the output: a DeepDiff when both sides are JSON documents, else a word diff in
    git's `[-old-]{+new+}` form; None when nothing changed."""
    if before == after:
        return None
    old_json, new_json = _as_json(before), _as_json(after)
    if old_json is not None and new_json is not None:
        from deepdiff import DeepDiff  # about 200 ms to import: only when a diff needs it

        found = DeepDiff(old_json, new_json, verbose_level=2)
        return found.pretty() if found else "same JSON value, different text"
    return word_diff(before or "", after or "")


def _as_json(text: str | None) -> Any:
    """A JSON object or array parsed from the output; None for anything else."""
    if text is None:
        return None
    try:
        value = parse_json(text)
    except JSONParseError:
        return None
    return value if isinstance(value, (dict, list)) else None


# A word diff of two long, repetitive outputs is quadratic or worse in difflib (400 repeated words took 12 s):
# past this many words on a side it works line by line first and word by word only inside changed lines.
WORD_DIFF_MAX_WORDS = 2_000


def word_diff(before: str, after: str) -> str:
    """git's `--word-diff=plain` form: [-removed-]{+added+}; long outputs are diffed line by line first."""
    old, new = _WORDS.findall(before), _WORDS.findall(after)
    if max(len(old), len(new)) > WORD_DIFF_MAX_WORDS:
        return _line_then_word_diff(before, after)
    return _diff_tokens(old, new)


def _line_then_word_diff(before: str, after: str) -> str:
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    parts: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new).get_opcodes():
        if op == "equal":
            parts.append("".join(old[i1:i2]))
        elif op == "replace" and max(i2 - i1, j2 - j1) <= 50:
            parts.append(_diff_tokens(_WORDS.findall("".join(old[i1:i2])), _WORDS.findall("".join(new[j1:j2]))))
        else:
            removed, added = "".join(old[i1:i2]), "".join(new[j1:j2])
            parts.append(_diff_tokens([removed] if removed else [], [added] if added else []))
    return "".join(parts)


def _diff_tokens(old: list[str], new: list[str]) -> str:
    parts: list[str] = []
    # autojunk only on long inputs: it treats frequent tokens (spaces, "the") as junk, which is what keeps
    # difflib fast there, at the cost of a coarser diff
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=len(old) + len(new) > 400)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            parts.append("".join(old[i1:i2]))
            continue
        if i2 > i1:
            parts.append(f"[-{''.join(old[i1:i2])}-]")
        if j2 > j1:
            parts.append(f"{{+{''.join(new[j1:j2])}+}}")
    return "".join(parts)
