"""Recordings: recordings/<prompt>.jsonl, one response a line sorted by request hash, byte-stable,
reviewable in a diff and committed so CI without keys can run `--replay`. Never a header or key."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from promptci.errors import ConfigError, PromptCIError
from promptci.types import Completion, Location, Usage

SUFFIX = ".jsonl"
REQUIRED_KEYS = ("key", "output")


@dataclass(frozen=True)
class RecordingEntry:
    """One recorded answer: its cache key, the request identity ({"provider": ..., "request": ...})
    and the completion. Latency is left out on purpose: it would make every re-recording a diff."""

    key: str
    identity: Mapping[str, Any]
    completion: Completion

    @classmethod
    def from_cache(cls, entry: Any) -> RecordingEntry:
        """From a store.CacheEntry (anything with key, identity and completion)."""
        return cls(key=entry.key, identity=entry.identity, completion=entry.completion)

    def to_line(self) -> str:
        c = self.completion
        record = {
            "key": self.key,
            "request": self.identity,
            "output": c.text,
            "chunks": list(c.chunks),
            "usage": asdict(c.usage) if c.usage is not None else None,
            "resolved_model": c.resolved_model,
            "finish_reason": c.finish_reason,
        }
        return encode(record)


def encode(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def recording_path(directory: Path, prompt: str) -> Path:
    """prompt "triage/route" -> directory/triage/route.jsonl, refusing names that leave directory."""
    parts = PurePosixPath(prompt).parts
    if not parts or prompt.startswith("/") or any(p in ("..", ".") for p in parts) or "\\" in prompt:
        raise PromptCIError(f"prompt name {prompt!r} cannot name a recordings file")
    return directory.joinpath(*parts[:-1], parts[-1] + SUFFIX)


def write_recordings(directory: Path, prompt: str, entries: Iterable[RecordingEntry]) -> Path:
    """Merge entries into the prompt's recordings file (same key: the new answer wins), sorted by key.

    The same entries always give the same bytes; the file is only rewritten when they change.
    """
    path = recording_path(directory, prompt)
    lines = read_lines(path, label=display_path(directory, path)) if path.exists() else {}
    lines.update({entry.key: entry.to_line() for entry in entries})
    text = "".join(lines[key] + "\n" for key in sorted(lines))
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text, encoding="utf-8", newline="\n")
    os.replace(partial, path)  # a reader never sees half a file
    return path


def load_recordings(directory: Path) -> dict[str, Completion]:
    """Every recorded answer under directory by key, as Completions with cached=True and latency 0."""
    answers: dict[str, Completion] = {}
    if not directory.is_dir():
        return answers
    for path in sorted(directory.rglob("*" + SUFFIX)):
        label = display_path(directory, path)
        for key, line in read_lines(path, label).items():
            answers[key] = completion_from_record(json.loads(line))
    return answers


def read_lines(path: Path, label: str) -> dict[str, str]:
    """key -> the line's JSON re-encoded canonically; ConfigError naming path:line on a bad line."""
    lines: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            record = parse_record(raw, Location(label, number))
            lines[record["key"]] = encode(record)
    return lines


def parse_record(raw: str, where: Location) -> dict[str, Any]:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not a JSON object ({exc.msg}); fix the line or delete the file and run "
                          "`promptci run --record` again", where) from exc
    if not isinstance(record, dict):
        raise ConfigError("each line must be a JSON object", where)
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ConfigError(f"recording lacks {', '.join(missing)}", where)
    if not isinstance(record["key"], str) or not isinstance(record["output"], str):
        raise ConfigError("`key` and `output` must be strings", where)
    try:
        completion_from_record(record)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad recording: {exc}", where) from exc
    return record


def completion_from_record(record: Mapping[str, Any]) -> Completion:
    usage = record.get("usage")
    return Completion(
        text=record["output"],
        usage=Usage(**usage) if usage is not None else None,
        latency_ms=0.0,
        resolved_model=record.get("resolved_model"),
        finish_reason=record.get("finish_reason"),
        chunks=tuple(str(c) for c in record.get("chunks") or ()),
        cached=True,
    )


def display_path(directory: Path, path: Path) -> str:
    """The path as users see it, relative to the project root (the recordings folder's parent)."""
    try:
        return path.relative_to(directory.parent).as_posix()
    except ValueError:
        return str(path)
