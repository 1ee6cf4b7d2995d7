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
import hashlib
import os
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from promptci.compare import Comparison
from promptci.errors import ConfigError, PromptCIError
from promptci.loading.yamlfile import parse_yaml, type_name, value_line
from promptci.reporting.stats import printable
from promptci.types import CaseResult, Location, ResultKey, Review, Run, now_iso
from promptci.verdict.diff import decision_of

REVIEWS_DIR = "reviews"
VERDICTS = ("good", "bad")
FIX = "fix the file, or restore the committed one with `git checkout -- reviews/`, or remove it and review again"
HEADER = ("# Human reviews of outputs, written by `promptci view`: keyed by case id, then the output's hash.\n"
          "# Commit this file: it is how the next reviewer, `accept` and `calibrate` find them.\n")


def output_hash(output: str | None) -> str:
    """The key of an output in a reviews file: its text's SHA-256 (no output hashes the empty text)."""
    return "sha256:" + hashlib.sha256((output or "").encode("utf-8")).hexdigest()


def reviews_path(root: Path, prompt: str) -> Path:
    """reviews/<prompt>.yaml; a prompt name that would leave reviews/ is refused."""
    parts = PurePosixPath(prompt).parts
    if not prompt or PurePosixPath(prompt).is_absolute() or any(p in ("..", ".", "") for p in parts) \
            or "\\" in prompt or "\0" in prompt:
        raise PromptCIError(f"cannot keep reviews for prompt {prompt!r}: not a plain prompt name")
    return root / REVIEWS_DIR / PurePosixPath(prompt + ".yaml")


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


def read_reviews(root: Path, prompt: str) -> dict[str, dict[str, Review]]:
    """{case id: {output hash: Review}} of one prompt; none when the file does not exist. A file that is not
    YAML, or not shaped like the module docstring's, is a ConfigError naming its line and the fix."""
    path = reviews_path(root, prompt)
    if not path.is_file():
        return {}
    shown = f"{REVIEWS_DIR}/{prompt}.yaml"
    raw = path.read_bytes()
    try:
        data = parse_yaml(raw.decode("utf-8"), shown)  # line-aware, alias budget
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 ({error.reason} at byte {error.start}) ({FIX})",
                          Location(shown, raw[: error.start].count(b"\n") + 1)) from None
    except ConfigError as error:
        raise ConfigError(f"{error.message} ({FIX})", error.location) from None
    if data is None:
        return {}
    cases = _mapping(data, shown, getattr(data, "line", 1), "the file", "`cases` to the reviewed case ids").get("cases")
    if cases is None:
        return {}
    _mapping(cases, shown, value_line(data, "cases"), "`cases`", "case ids, each mapping output hashes to reviews")
    found: dict[str, dict[str, Review]] = {}
    for case_id, by_hash in cases.items():
        where = value_line(cases, case_id)
        _mapping(by_hash, shown, where, f"case {str(case_id)[:80]!r}", "output hashes, each to a review")
        for digest, entry in by_hash.items():
            found.setdefault(str(case_id), {})[str(digest)] = _review_from(entry, shown, value_line(by_hash, digest))
    return found


def _mapping(value: Any, shown: str, line: int, what: str, wanted: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{what} is {type_name(value)}; it must map {wanted} (fix the line; {FIX})",
                          Location(shown, line))
    return value


def _review_from(entry: Any, shown: str, line: int) -> Review:
    if not isinstance(entry, dict) or entry.get("verdict") not in VERDICTS:
        got = entry.get("verdict") if isinstance(entry, dict) else entry
        raise ConfigError(f"a review needs `verdict: good` or `verdict: bad`, not {printable(repr(got))[:80]} (fix "
                          "the line, or delete this review)", Location(shown, line))
    text = {k: (None if entry.get(k) is None else str(entry.get(k))) for k in ("note", "by", "at", "model", "run")}
    return Review(verdict=str(entry["verdict"]), note=text["note"] or "", by=text["by"] or "unknown",
                  at=text["at"] or "", model=text["model"], run=text["run"])


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
    disagree: list[str] = []
    for result in run.results:
        review = reviews.get(result_key(result))
        if review is not None and review.verdict == "bad" and result.status == "passed":
            repeat = f" (repeat {result.repeat})" if result.repeat else ""
            note = (f"{result.prompt}/{result.case_id} [{result.model}]{repeat}: passes its comparators, but "
                    f"{review.by} reviewed this output bad{f': {review.note}' if review.note else ''}")
            disagree.append(printable(note).replace("\n", "\\n").replace("\t", " "))  # one line, shown as text
    return replace(run, reviews=reviews, notes=(*run.notes, *disagree))


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
    return replace(comparison, reviews=(before, after)) if before or after else comparison


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
