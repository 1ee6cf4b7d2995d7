"""The pure reader of human reviews, `reviews/<prompt>.yaml` (the format: viewer/reviews.py, which writes them).

Below the viewer so that `promptci calibrate` can read reviews too."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from promptci.errors import ConfigError, PromptCIError
from promptci.loading.yamlfile import parse_yaml, type_name, value_line
from promptci.types import Location, Review

REVIEWS_DIR = "reviews"
VERDICTS = ("good", "bad")
FIX = "fix the file, or restore the committed one with `git checkout -- reviews/`, or remove it and review again"


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
        raise ConfigError(f"a review needs `verdict: good` or `verdict: bad`, not {repr(got)[:80]} (fix "
                          "the line, or delete this review)", Location(shown, line))
    text = {k: (None if entry.get(k) is None else str(entry.get(k))) for k in ("note", "by", "at", "model", "run")}
    return Review(verdict=str(entry["verdict"]), note=text["note"] or "", by=text["by"] or "unknown",
                  at=text["at"] or "", model=text["model"], run=text["run"])
