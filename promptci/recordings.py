"""Recordings: recordings/<prompt>.jsonl, one response a line sorted by request hash, byte-stable,
reviewable in a diff and committed so CI without keys can run `--replay`. Never a header or key.

A recording is keyed by what identifies the answer: the provider's type, the model as -m names it (provider
name included), params, messages, output (and the request kind and sample when not a case's first). Never
the base_url or the key: moving a local server to another port keeps every recording valid."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from promptci.errors import ConfigError, EnvironmentFailure, PromptCIError
from promptci.types import Completion, Location, ToolCall, Usage, content_hash

SUFFIX = ".jsonl"
REQUIRED_KEYS = ("key", "output")


def answer_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """A cache identity ({"provider": {type, base_url}, "request": ...}) without what does not change the
    answer: the base_url."""
    provider = {k: v for k, v in dict(identity.get("provider") or {}).items() if k != "base_url"}
    return {**identity, "provider": provider}


def recording_key(identity: Mapping[str, Any]) -> str:
    return content_hash(answer_identity(identity))


@dataclass(frozen=True)
class RecordingEntry:
    """One recorded answer: the request identity ({"provider": ..., "request": ...}) and the completion;
    its key follows from the identity. Latency is left out on purpose: it would make every re-recording a
    diff."""

    identity: Mapping[str, Any]
    completion: Completion

    @property
    def key(self) -> str:
        return recording_key(self.identity)

    @classmethod
    def from_cache(cls, entry: Any) -> RecordingEntry:
        """From a store.CacheEntry (anything with identity and completion)."""
        return cls(identity=entry.identity, completion=entry.completion)

    def to_line(self) -> str:
        c = self.completion
        record: dict[str, Any] = {
            "key": self.key,
            "request": answer_identity(self.identity),
            "output": c.text,
            "chunks": list(c.chunks),
            "usage": asdict(c.usage) if c.usage is not None else None,
            "resolved_model": c.resolved_model,
            "finish_reason": c.finish_reason,
        }
        if c.tool_calls:  # only then, so recordings without tool calls keep their bytes
            record["tool_calls"] = [call.to_dict() for call in c.tool_calls]
        return encode(record)


@dataclass
class Recordings:
    """Every recorded answer under a recordings folder, by key, and the identities each prompt's file
    holds (to say why a request has none)."""

    answers: dict[str, Completion] = field(default_factory=dict)
    identities: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)  # prompt -> key -> identity

    def get(self, key: str) -> Completion | None:
        return self.answers.get(key)

    def why_missing(self, prompt: str, identity: Mapping[str, Any]) -> str:
        """Why no recording answers `identity`: what the prompt's file holds and how the closest differs."""
        held = self.identities.get(prompt, {})
        if not held:
            return f"recordings/{prompt}{SUFFIX} holds no recording"
        wanted = flatten(answer_identity(identity))
        closest = min(held.values(), key=lambda other: len(differences(wanted, flatten(other))))
        differ = ", ".join(differences(wanted, flatten(closest))[:3])
        return (f"recordings/{prompt}{SUFFIX} holds {len(held)} entr{'y' if len(held) == 1 else 'ies'}, "
                f"none for this request; the closest differs in {differ}")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists are compared whole, except messages, by index."""
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, child in value.items():
            flat.update(flatten(child, f"{prefix}{key}."))
        return flat
    if isinstance(value, list) and prefix.endswith("messages."):
        return {f"{prefix}{index}": item for index, item in enumerate(value)} or {prefix.rstrip("."): []}
    return {prefix.rstrip("."): value}


def differences(wanted: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    names = sorted(k for k in set(wanted) | set(other) if wanted.get(k) != other.get(k))
    return [name.removeprefix("request.") for name in names]


def encode(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def recording_path(directory: Path, prompt: str) -> Path:
    """prompt "triage/route" -> directory/triage/route.jsonl, refusing names that leave directory."""
    parts = PurePosixPath(prompt).parts
    if not parts or prompt.startswith("/") or any(p in ("..", ".") for p in parts) or "\\" in prompt:
        raise PromptCIError(f"prompt name {prompt!r} cannot name a recordings file")
    return directory.joinpath(*parts[:-1], parts[-1] + SUFFIX)


def write_recordings(directory: Path, prompt: str, entries: Iterable[RecordingEntry], *,
                     drop_others: bool = False) -> Path:
    """Merge entries into the prompt's recordings file (same key: the new answer wins), sorted by key;
    with drop_others, the file holds these entries only (a full --record run drops stale ones).

    The same entries always give the same bytes; the file is only rewritten when they change.
    """
    path = recording_path(directory, prompt)
    kept = read_lines(path, label=display_path(directory, path)) if path.exists() and not drop_others else {}
    lines = {**kept, **{entry.key: entry.to_line() for entry in entries}}
    text = "".join(lines[key] + "\n" for key in sorted(lines))
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    partial = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8", newline="\n")
        os.replace(partial, path)  # a reader never sees half a file
    except OSError as error:
        with contextlib.suppress(OSError):  # half a file must not stay behind, where it can be removed
            partial.unlink(missing_ok=True)
        raise EnvironmentFailure(
            f"{display_path(directory, path)}: cannot write the recordings ({error.strerror or error}); the answers "
            "are in the cache: make the folder writable and run `promptci run --record` again (nothing is sent)"
        ) from None
    return path


def load_recordings(directory: Path) -> Recordings:
    """Every recorded answer under directory, as Completions with cached=True and latency 0."""
    found = Recordings()
    if not directory.is_dir():
        return found
    for path in sorted(directory.rglob("*" + SUFFIX)):
        label = display_path(directory, path)
        prompt = path.relative_to(directory).as_posix().removesuffix(SUFFIX)
        held = found.identities.setdefault(prompt, {})
        for key, line in read_lines(path, label).items():
            record = json.loads(line)
            found.answers[key] = completion_from_record(record)
            held[key] = record.get("request") or {}
    return found


def read_lines(path: Path, label: str) -> dict[str, str]:
    """key -> the line's JSON re-encoded canonically; ConfigError naming path:line on a bad line."""
    lines: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            record = parse_record(raw, Location(label, number))
            if isinstance(record.get("request"), Mapping):  # files written before keys left out the base_url
                record["request"] = answer_identity(record["request"])
                record["key"] = recording_key(record["request"])
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
        tool_calls=tuple(ToolCall.from_dict(call) for call in record.get("tool_calls") or ()),
    )


def display_path(directory: Path, path: Path) -> str:
    """The path as users see it, relative to the project root (the recordings folder's parent)."""
    try:
        return path.relative_to(directory.parent).as_posix()
    except ValueError:
        return str(path)
