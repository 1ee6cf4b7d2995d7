"""reviews/<prompt>.yaml under concurrent writers: processes adding reviews to one file at the same time keep
every review (each exactly once) and leave valid YAML; a damaged file is refused, never overwritten. A review of
an output no stored run gave (stale) is left out of every report; a damaged file stops `view` with exit 2."""

from __future__ import annotations

import multiprocessing
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from viewer_project import viewer_project

from promptci.errors import ConfigError, PromptCIError
from promptci.viewer.reviews import all_reviews, output_hash, read_reviews, write_review
from promptci.viewer.server import start_in_thread

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


# --- a review of an output no run gave (stale), and a damaged file at start-up --------------------------

STALE = "an output from before the golden changed"


def stale_project(tmp_path: Path) -> Path:
    """viewer_project's stored runs, with reviews only of outputs they never gave: a changed golden's old output,
    a case no longer in the goldens, a prompt since removed."""
    root = viewer_project(tmp_path)
    write_review(root, "greet", "ada", STALE, "good", "stale review", now="2026-12-04T21:00:00Z")
    write_review(root, "greet", "gone", "whatever", "bad", "stale review", now="2026-12-04T21:00:00Z")
    write_review(root, "removed", "x", "y", "bad", "stale review", now="2026-12-04T21:00:00Z")
    return root


@pytest.mark.parametrize("fmt", ["json", "markdown", "html", "table", "junit"])
def test_a_stale_review_is_left_out_of_every_run_report(tmp_path: Path, cli, fmt: str) -> None:
    root = stale_project(tmp_path)
    done = cli("show", "bbbb00000002", "--root", root, "--format", fmt)
    assert done.exit_code == 0, done.output  # `show` shows, it does not gate
    assert "stale review" not in done.output and "reviewed good" not in done.stdout and "reviews not shown" not in \
        done.output
    assert "ada" in done.stdout


def test_the_viewer_serves_every_page_with_stale_reviews(tmp_path: Path) -> None:
    root = stale_project(tmp_path)
    viewer = start_in_thread(root)
    try:
        with pytest.raises(urllib.error.HTTPError) as gone:  # a reviewed case no run has: no page, said so
            urllib.request.urlopen(viewer.url + "case?p=greet&c=gone")
        assert gone.value.code == 404 and b"no stored result of case 'gone'" in gone.value.read()
        for path in ("", "run/bbbb00000002", "compare?a=aaaa00000001&b=bbbb00000002", "case?p=greet&c=ada",
                     "cost"):
            with urllib.request.urlopen(viewer.url + path) as answer:
                assert answer.status == 200, path
    finally:
        viewer.stop()


def test_the_viewer_refuses_to_start_on_a_damaged_reviews_file(tmp_path: Path) -> None:
    root = viewer_project(tmp_path)
    (root / "reviews" / "team").mkdir(parents=True)
    (root / "reviews" / "team" / "triage.yaml").write_text("cases:\n  ada:\n    sha256:1: {verdict: fine}\n")
    try:
        viewer = start_in_thread(root)
    except ConfigError as error:
        assert str(error.location) == "reviews/team/triage.yaml:3"
        assert "`verdict: good` or `verdict: bad`, not 'fine'" in error.message
    else:
        viewer.stop()
        pytest.fail("the viewer started with a damaged reviews file")


def test_view_bundle_exits_2_naming_the_file_the_line_and_the_fix(tmp_path: Path, cli) -> None:
    root = viewer_project(tmp_path)
    (root / "reviews").mkdir()
    (root / "reviews" / "greet.yaml").write_text("# reviews\ncases:\n  ada: {sha256:1: {verdict: good}\n",
                                                  encoding="utf-8")
    done = cli("view", "--bundle", tmp_path / "bundle", "--root", root)
    assert done.exit_code == 2
    assert "reviews/greet.yaml:4: invalid YAML" in done.output
    assert "restore the committed one with `git checkout -- reviews/`" in done.output
    assert "Traceback" not in done.output


def test_a_reviews_file_that_is_not_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "reviews").mkdir()
    (tmp_path / "reviews" / "greet.yaml").write_bytes(b"cases:\n  ada:\n    h: {verdict: good, note: caf\xe9}\n")
    with pytest.raises(ConfigError) as refused:
        read_reviews(tmp_path, "greet")
    assert str(refused.value.location) == "reviews/greet.yaml:3" and "not UTF-8" in refused.value.message


def test_all_reviews_reads_every_prompts_file_and_skips_hidden_ones(tmp_path: Path) -> None:
    write_review(tmp_path, "greet", "ada", "Hi", "good", now="2026-12-04T21:00:00Z")
    write_review(tmp_path, "team/triage", "t1", "ok", "bad", now="2026-12-04T21:00:00Z")
    (tmp_path / "reviews" / ".greet.yaml.partial").write_text("cases: [half")
    assert {p: sorted(c) for p, c in all_reviews(tmp_path).items()} == {"greet": ["ada"], "team/triage": ["t1"]}
