"""Recordings files: sorted, byte-stable, merged, free of secrets, and loaded back for --replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptci.errors import ConfigError, PromptCIError
from promptci.recordings import RecordingEntry, load_recordings, recording_path, write_recordings
from promptci.store import Store, cache_identity
from promptci.types import Completion, Request, Usage

PROVIDER = {"type": "openai", "base_url": ""}


def entry(content: str, text: str, **completion: object) -> RecordingEntry:
    request = Request(model="openai:gpt-4o-mini", messages=({"role": "user", "content": content},),
                      params={"temperature": 0})
    fields = {"usage": Usage(10, 2, 0), "latency_ms": 812.5, "ttft_ms": 100.0,
              "resolved_model": "gpt-4o-mini-2024-07-18", "finish_reason": "stop", "chunks": (text,)}
    fields.update(completion)
    identity = {"provider": PROVIDER, "request": request.identity()}
    return RecordingEntry(identity=identity, completion=Completion(text=text, **fields))  # type: ignore[arg-type]


def test_path_follows_the_prompt_name(tmp_path: Path) -> None:
    assert recording_path(tmp_path, "triage/route") == tmp_path / "triage" / "route.jsonl"
    for bad in ("../escape", "/abs", "a/../../b", ""):
        with pytest.raises(PromptCIError):
            recording_path(tmp_path, bad)


def test_lines_are_sorted_by_key_sorted_inside_and_carry_no_latency(tmp_path: Path) -> None:
    entries = [entry(f"q{n}", f"ünswer {n}") for n in range(5)]
    path = write_recordings(tmp_path / "recordings", "triage/route", entries)
    assert path == tmp_path / "recordings" / "triage" / "route.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["key"] for r in records] == sorted(e.key for e in entries)
    assert all(list(r) == sorted(r) for r in records)
    assert set(records[0]) == {"key", "request", "output", "chunks", "usage", "resolved_model", "finish_reason"}
    assert "latency" not in path.read_text(encoding="utf-8")
    assert "ünswer" in path.read_text(encoding="utf-8")  # ensure_ascii=False: readable in a diff
    assert records[0]["request"]["provider"] == {"type": "openai"}  # never the base_url


def test_same_entries_give_the_same_bytes_in_any_order(tmp_path: Path) -> None:
    entries = [entry(f"q{n}", f"a{n}") for n in range(6)]
    first = write_recordings(tmp_path / "one", "p", entries).read_bytes()
    second = write_recordings(tmp_path / "two", "p", list(reversed(entries))).read_bytes()
    again = write_recordings(tmp_path / "one", "p", entries).read_bytes()
    assert first == second == again
    assert first.endswith(b"\n") and b"\r" not in first
    # latency measured on a later run must not change the file
    slower = [entry(f"q{n}", f"a{n}", latency_ms=9999.0, ttft_ms=5.0) for n in range(6)]
    assert write_recordings(tmp_path / "one", "p", slower).read_bytes() == first


def test_merge_keeps_other_keys_and_replaces_same_key(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    write_recordings(directory, "p", [entry("q1", "old one"), entry("q2", "two")])
    write_recordings(directory, "p", [entry("q1", "new one"), entry("q3", "three")])
    answers = load_recordings(directory).answers
    assert {c.text for c in answers.values()} == {"new one", "two", "three"}
    assert answers[entry("q1", "").key].text == "new one"
    assert len((directory / "p.jsonl").read_text().splitlines()) == 3


def test_load_gives_cached_completions_with_zero_latency(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    original = entry("q", "hello", chunks=("hel", "lo"), usage=Usage(7, 1, 3))
    write_recordings(directory, "nested/deep/p", [original])
    write_recordings(directory, "other", [entry("x", "y", usage=None)])
    answers = load_recordings(directory).answers
    got = answers[original.key]
    assert got == Completion(text="hello", usage=Usage(7, 1, 3), latency_ms=0.0, ttft_ms=None,
                             resolved_model="gpt-4o-mini-2024-07-18", finish_reason="stop",
                             chunks=("hel", "lo"), cached=True)
    assert answers[entry("x", "").key].usage is None
    assert load_recordings(tmp_path / "absent").answers == {}


def test_entry_from_cache_round_trip(tmp_path: Path) -> None:
    original = entry("q", "cached text")
    with Store.open(tmp_path / ".promptci" / "promptci.db") as store:
        request = Request(model="openai:gpt-4o-mini", messages=({"role": "user", "content": "q"},),
                          params={"temperature": 0})
        store.cache_put(Store.cache_key(PROVIDER, request), cache_identity(PROVIDER, request), original.completion)
        from_cache = [RecordingEntry.from_cache(e) for e in store.cache_entries()]
    via_cache = write_recordings(tmp_path / "a", "p", from_cache).read_bytes()
    direct = write_recordings(tmp_path / "b", "p", [original]).read_bytes()
    assert via_cache == direct


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not a JSON object"),
        ("[1, 2]", "must be a JSON object"),
        ('{"output": "x"}', "lacks key"),
        ('{"key": "k", "output": "x", "usage": {"bogus": 1}}', "bad recording"),
    ],
)
def test_bad_line_names_path_and_line(tmp_path: Path, line: str, message: str) -> None:
    directory = tmp_path / "recordings"
    directory.mkdir()
    good = entry("q", "fine").to_line()
    (directory / "p.jsonl").write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_recordings(directory)
    assert str(caught.value).startswith("recordings/p.jsonl:3: ")
    assert message in str(caught.value)


def test_no_secret_reaches_a_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123")
    path = write_recordings(tmp_path, "p", [entry("q", "a")])
    text = path.read_text()
    assert "sk-secret-value-123" not in text
    assert "authorization" not in text.lower() and "api_key" not in text
