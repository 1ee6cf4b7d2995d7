"""Human reviews kept in git: `reviews/<prompt>.yaml`, keyed by case id, then the reviewed output's hash.

The one module that writes them (the pure reader lives below, in promptci/reviewfile.py, for calibrate).
A review says good or bad, with a note, who and when:

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

import getpass
import os
import subprocess
import threading
from dataclasses import asdict, replace
from pathlib import Path

import yaml

from promptci.errors import PromptCIError
from promptci.reporting.stats import printable
from promptci.reviewfile import VERDICTS, output_hash, read_reviews, reviews_path  # the pure reader, moved down
from promptci.types import CaseResult, ResultKey, Review, Run, now_iso

HEADER = ("# Human reviews of outputs, written by `promptci view`: keyed by case id, then the output's hash.\n"
          "# Commit this file: it is how the next reviewer, `accept` and `calibrate` find them.\n")
_write_lock = threading.Lock()


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
    """Record (or replace) the review of this output of this case, and return it."""
    if verdict not in VERDICTS:
        raise PromptCIError(f"a review is {' or '.join(VERDICTS)}, not {verdict!r}")
    review = Review(verdict=verdict, note=note, by=reviewer(root), at=now or now_iso(), model=model, run=run)
    path = reviews_path(root, prompt)
    with _write_lock:
        current = read_reviews(root, prompt)
        current.setdefault(case_id, {})[output_hash(output)] = review
        plain = {"cases": {case: {digest: {k: v for k, v in asdict(r).items() if v is not None}
                                  for digest, r in sorted(by_hash.items())}
                           for case, by_hash in sorted(current.items())}}
        text = HEADER + yaml.safe_dump(plain, allow_unicode=True, sort_keys=False, width=100)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    return review


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
    try:
        found = reviews_for_prompts(root, {r.prompt for r in run.results})
    except PromptCIError as error:
        note = f"reviews not shown: {error}"
        return run if note in run.notes else replace(run, notes=(*run.notes, note))
    if not found:
        return run
    reviews: dict[ResultKey, Review] = {}
    disagree: list[str] = []
    for result in run.results:
        review = found.get(result.prompt, {}).get(result.case_id, {}).get(output_hash(result.output))
        if review is None:
            continue
        reviews[result_key(result)] = review
        if review.verdict == "bad" and result.status == "passed":
            repeat = f" (repeat {result.repeat})" if result.repeat else ""
            note = (f"{result.prompt}/{result.case_id} [{result.model}]{repeat}: passes its comparators, but "
                    f"{review.by} reviewed this output bad{f': {review.note}' if review.note else ''}")
            disagree.append(printable(note).replace("\n", "\\n").replace("\t", " "))  # one line, shown as text
    return replace(run, reviews=reviews, notes=(*run.notes, *disagree))
