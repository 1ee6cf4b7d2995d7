"""Human reviews kept in git: `reviews/<prompt>.yaml`, keyed by case id, then the reviewed output's hash.

The one module that reads and writes them. A review says good or bad, with a note, who and when:

    cases:
      greet-ada:
        sha256:3f2a...:
          verdict: good
          note: friendlier than the golden
          by: Ada Lovelace
          at: '2026-12-04T21:00:00Z'
          model: openai:gpt-4o-mini
          run: 20261204-...
"""

from __future__ import annotations

import fcntl
import getpass
import os
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import yaml

from promptci.compare import Comparison
from promptci.errors import PromptCIError
from promptci.reporting.diffview import shortened
from promptci.reporting.stats import printable
from promptci.reviewfile import (  # the pure reader, below the viewer so that calibrate reads reviews too
    REVIEWS_DIR,
    VERDICTS,
    output_hash,
    read_reviews,
    reviews_path,
)
from promptci.types import CaseResult, ResultKey, Review, Run, now_iso
from promptci.verdict.diff import decision_of

MAX_DISAGREEMENT_NOTES = 5  # a run's or a diff's notes on reviewed-bad outputs that pass; the rest are counted
HEADER = ("# Human reviews of outputs, written by `promptci view`: keyed by case id, then the output's hash.\n"
          "# Commit this file: it is how the next reviewer, `accept` and `calibrate` find them.\n")

def reviewer(root: Path) -> str:
    """Who reviews: git's user.name in the project, else $USER."""
    try:
        name = subprocess.run(["git", "config", "user.name"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    if name:
        return name
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (OSError, KeyError):
        return "unknown"

def write_review(root: Path, prompt: str, case_id: str, output: str | None, verdict: str, note: str = "",
                 model: str | None = None, run: str | None = None, now: str | None = None) -> Review:
    """Record (or replace) the review of this output of this case, and return it. Writers take turns, across
    processes too (reviews_locked): each reads the file as the last one left it, so no review is lost; a
    damaged file is refused (its ConfigError), never overwritten."""
    if verdict not in VERDICTS:
        raise PromptCIError(f"a review is {' or '.join(VERDICTS)}, not {verdict!r}")
    review = Review(verdict=verdict, note=note, by=reviewer(root), at=now or now_iso(), model=model, run=run)
    path = reviews_path(root, prompt)
    with reviews_locked(root):
        current = read_reviews(root, prompt)
        current.setdefault(case_id, {})[output_hash(output)] = review
        plain = {"cases": {case: {digest: {k: v for k, v in asdict(r).items() if v is not None}
                                  for digest, r in sorted(by_hash.items())}
                           for case, by_hash in sorted(current.items())}}
        _replace_file(path, HEADER + yaml.safe_dump(plain, allow_unicode=True, sort_keys=False, width=100))
    return review


@contextmanager
def reviews_locked(root: Path) -> Iterator[None]:
    """One writer of reviews/ at a time, across threads and processes: an flock on the reviews/ folder itself
    (no lock file to commit, and the lock outlives the renames of the files in it). flock belongs to an open
    file description, so two opens conflict in one process too."""
    folder = root / REVIEWS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def _replace_file(path: Path, text: str) -> None:
    """The whole new text in a hidden temp file beside it, renamed over it: a reader sees the old file or the
    new one, never half of one (the temp file's name is free: writers hold reviews_locked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def all_reviews(root: Path) -> dict[str, dict[str, dict[str, Review]]]:
    """{prompt: {case id: {hash: Review}}} of every reviews/**/*.yaml; the first damaged file's ConfigError."""
    folder = root / REVIEWS_DIR
    if not folder.is_dir():
        return {}
    prompts = {path.relative_to(folder).with_suffix("").as_posix() for path in folder.rglob("*.yaml")
               if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)}
    return reviews_for_prompts(root, prompts)


def reviews_for_prompts(root: Path, prompts: set[str]) -> dict[str, dict[str, dict[str, Review]]]:
    """{prompt: {case id: {hash: Review}}} for each prompt that has a reviews file."""
    return {prompt: found for prompt in sorted(prompts) if (found := read_reviews(root, prompt))}


def result_key(result: CaseResult) -> ResultKey:
    return (result.prompt, result.case_id, result.model, result.repeat)


def with_reviews(root: Path, run: Run) -> Run:
    """The run with the reviews of its outputs, for every report; a reviewed-bad output that passed its
    comparators is named in the notes (a human disagrees with them). A damaged reviews file is a note too: the
    run's reports are still written. Given a run that has its reviews, the same run."""
    if run.reviews:
        return run  # given already
    found, damaged = _project_reviews(root, {r.prompt for r in run.results})
    if damaged is not None:
        return run if damaged in run.notes else replace(run, notes=(*run.notes, damaged))
    if not found:
        return run
    reviews = reviews_of_results(found, run.results)
    return replace(run, reviews=reviews, notes=(*run.notes, *capped_notes(disagreements(run.results, reviews))))


def disagreements(results: Iterable[CaseResult], reviews: Mapping[ResultKey, Review], side: str = "") -> list[str]:
    """A note for each reviewed-bad output that passed its comparators (a human disagrees with them)."""
    found: list[str] = []
    for result in results:
        review = reviews.get(result_key(result))
        if review is not None and review.verdict == "bad" and result.status == "passed":
            repeat = f" (repeat {result.repeat})" if result.repeat else ""
            note = (f"{side}{result.prompt}/{result.case_id} [{result.model}]{repeat}: passes its comparators, but "
                    f"{review.by} reviewed this output bad{f': {review.note}' if review.note else ''}")
            found.append(printable(note).replace("\n", "\\n").replace("\t", " "))  # one line, shown as text
    return found


def capped_notes(disagree: list[str], side: str = "") -> list[str]:
    """At most MAX_DISAGREEMENT_NOTES disagreement notes, each shortened, the rest counted: a verdict's notes
    head every report and the PR comment."""
    if len(disagree) > MAX_DISAGREEMENT_NOTES:
        more = len(disagree) - MAX_DISAGREEMENT_NOTES
        disagree = [*disagree[:MAX_DISAGREEMENT_NOTES], f"{side}{more} more reviewed-bad output(s) pass their "
                    "comparators (the JSON and HTML reports have every review)"]
    return [shortened(note) for note in disagree]


def comparison_with_reviews(root: Path, comparison: Comparison) -> Comparison:
    """with_reviews() for what `diff` found: the reviews of A's and of B's outputs, read once for both sides.
    A review of an output neither side gave (the golden or the prompt changed since) is left out, as in a
    run's reports. A damaged reviews file is a note of the verdict; the reports are still written."""
    if any(comparison.reviews):
        return comparison  # given already
    found, damaged = _project_reviews(root, {r.prompt for c in comparison.changes for r in (*c.before, *c.after)})
    if damaged is not None:
        decision = decision_of(comparison)
        return comparison if damaged in decision.notes else replace(
            comparison, decision=replace(decision, notes=(*decision.notes, damaged)))
    return reviewed_comparison(found, comparison)


def reviewed_comparison(found: Mapping[str, Mapping[str, Mapping[str, Review]]], comparison: Comparison) -> Comparison:
    """The comparison with these reviews ({prompt: {case id: {hash: Review}}}) matched to A's and B's outputs:
    the diff reports' and the viewer's compare page's one matching."""
    before = reviews_of_results(found, (r for c in comparison.changes for r in c.before))
    after = reviews_of_results(found, (r for c in comparison.changes for r in c.after))
    if not before and not after:
        return comparison
    decision = decision_of(comparison)
    disagree = capped_notes([note for note in disagreements((r for c in comparison.changes for r in c.after), after,
                                                            "B: ") if note not in decision.notes], "B: ")
    return replace(comparison, reviews=(before, after),
                   decision=replace(decision, notes=(*decision.notes, *disagree)) if disagree else comparison.decision)


def _project_reviews(root: Path, prompts: set[str]) -> tuple[dict[str, dict[str, dict[str, Review]]], str | None]:
    """The reviews of these prompts, or none and the note a report gives when a reviews file is damaged."""
    try:
        return reviews_for_prompts(root, prompts), None
    except PromptCIError as error:
        return {}, f"reviews not shown: {error}"


def reviews_of_results(found: Mapping[str, Mapping[str, Mapping[str, Review]]],
                       results: Iterable[CaseResult]) -> dict[ResultKey, Review]:
    """The review of each result whose output was reviewed: matched by prompt, case id and the output's hash."""
    reviews: dict[ResultKey, Review] = {}
    for result in results:
        review = found.get(result.prompt, {}).get(result.case_id, {}).get(output_hash(result.output))
        if review is not None:
            reviews[result_key(result)] = review
    return reviews
