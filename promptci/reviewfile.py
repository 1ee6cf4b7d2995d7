"""The pure reader of human reviews, `reviews/<prompt>.yaml` (the format: viewer/reviews.py, which writes them).

Below the viewer so that `promptci calibrate` can read reviews too."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from promptci.errors import PromptCIError
from promptci.loading.yamlfile import parse_yaml, to_plain
from promptci.types import Review

REVIEWS_DIR = "reviews"
VERDICTS = ("good", "bad")


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
    """{case id: {output hash: Review}} of one prompt; none when the file does not exist."""
    path = reviews_path(root, prompt)
    if not path.is_file():
        return {}
    shown = f"{REVIEWS_DIR}/{prompt}.yaml"
    try:
        data = to_plain(parse_yaml(path.read_text(encoding="utf-8"), shown))  # line-aware, alias budget
    except UnicodeDecodeError as error:
        raise PromptCIError(f"{shown}: not UTF-8 ({error.reason} at byte {error.start}): fix or remove the file") \
            from None
    cases = (data or {}).get("cases") if isinstance(data, dict) or data is None else None
    if cases is None:
        return {}
    if not isinstance(cases, dict):
        raise PromptCIError(f"{shown}: `cases` must map case ids to reviews: fix or remove the file")
    found: dict[str, dict[str, Review]] = {}
    for case_id, by_hash in cases.items():
        if not isinstance(by_hash, dict):
            continue
        for digest, entry in by_hash.items():
            review = _review_from(entry)
            if review is not None:
                found.setdefault(str(case_id), {})[str(digest)] = review
    return found


def _review_from(entry: Any) -> Review | None:
    if not isinstance(entry, dict) or entry.get("verdict") not in VERDICTS:
        return None
    text = {k: (None if entry.get(k) is None else str(entry.get(k))) for k in ("note", "by", "at", "model", "run")}
    return Review(verdict=str(entry["verdict"]), note=text["note"] or "", by=text["by"] or "unknown",
                  at=text["at"] or "", model=text["model"], run=text["run"])
