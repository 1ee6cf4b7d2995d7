"""reviews/<prompt>.yaml under concurrent writers: processes adding reviews to one file at the same time keep
every review (each exactly once) and leave valid YAML; a damaged file is refused, never overwritten."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import yaml

from promptci.errors import PromptCIError
from promptci.viewer.reviews import output_hash, read_reviews, write_review

WRITERS = 6
EACH = 15


def add_reviews(root: str, writer: int, start: multiprocessing.synchronize.Event) -> None:
    start.wait()  # every writer begins together
    for index in range(EACH):
        write_review(Path(root), "greet", f"case-{writer}-{index}", f"output {writer} {index}",
                     "good" if index % 2 else "bad", f"by writer {writer}", now="2026-12-04T21:00:00Z")


def test_processes_writing_one_reviews_file_at_once_keep_every_review(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")  # the reviewer is $USER: no git config to read
    monkeypatch.setenv("USER", "writer")
    context = multiprocessing.get_context("fork")
    start = context.Event()
    writers = [context.Process(target=add_reviews, args=(str(tmp_path), n, start)) for n in range(WRITERS)]
    for process in writers:
        process.start()
    start.set()
    for process in writers:
        process.join()
    assert [p.exitcode for p in writers] == [0] * WRITERS
    text = (tmp_path / "reviews" / "greet.yaml").read_text(encoding="utf-8")
    cases = yaml.safe_load(text)["cases"]
    expected = {f"case-{n}-{i}": {output_hash(f"output {n} {i}")} for n in range(WRITERS) for i in range(EACH)}
    assert {case: set(by_hash) for case, by_hash in cases.items()} == expected
    assert sum(text.count(f"case-{n}-{i}:") for n in range(WRITERS) for i in range(EACH)) == WRITERS * EACH
    assert sorted(p.name for p in (tmp_path / "reviews").iterdir()) == ["greet.yaml"]  # no temp file left
    found = read_reviews(tmp_path, "greet")
    assert found["case-2-3"][output_hash("output 2 3")].note == "by writer 2"


def test_a_review_is_not_written_over_a_damaged_file(tmp_path: Path) -> None:
    (tmp_path / "reviews").mkdir()
    damaged = "cases:\n  ada: [oops\n"
    (tmp_path / "reviews" / "greet.yaml").write_text(damaged, encoding="utf-8")
    with pytest.raises(PromptCIError, match=r"reviews/greet\.yaml"):
        write_review(tmp_path, "greet", "bob", "Hello Bob!", "good")
    assert (tmp_path / "reviews" / "greet.yaml").read_text(encoding="utf-8") == damaged
