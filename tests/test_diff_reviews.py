"""Human reviews (reviews/<prompt>.yaml) in every report of a diff: a case whose output at A or B was reviewed
shows who said good or bad and the note, shortened, in the terminal, Markdown (and so the PR comment), HTML and
JSON reports; a hostile note stays text; a review of an output neither side gave is left out, never a crash."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from gitrepo import commit, new_repo
from test_diff_cli import FILES, GREET_BROKEN
from test_diff_reports import HOSTILE, mixed, written
from test_html import dump_dom, needs_chromium, parse, shown_count
from test_markdown import outside_code

from promptci.compare import Comparison
from promptci.prcheck import CheckContext, compose
from promptci.reporting.diffview import MAX_REVIEW_CHARS
from promptci.reporting.markdown import MAX_COMMENT_CHARS
from promptci.viewer.reviews import comparison_with_reviews, write_review

WHEN = "2026-12-04T21:00:00Z"
LONG = "much too curt " * 40


@pytest.fixture
def reviewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Comparison]:
    """mixed()'s comparison with: `breaks` reviewed bad at B (a hostile note), `hostile` reviewed good at A,
    `same` (still passing) reviewed good at both sides' output, and stale reviews of outputs no run gave."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("USER", "Ada")
    write_review(tmp_path, "greet", "breaks", "Hello here world", "bad", "lost the greeting " + HOSTILE, now=WHEN)
    write_review(tmp_path, "greet", "hostile", "safe", "good", LONG, now=WHEN)
    write_review(tmp_path, "greet", "same", "out", "good", "fine", now=WHEN)
    write_review(tmp_path, "greet", "breaks", "an output before the golden changed", "good", "stale", now=WHEN)
    write_review(tmp_path, "greet", "ghost", "a case no longer in the goldens", "bad", "stale", now=WHEN)
    write_review(tmp_path, "other", "x", "a prompt no run used", "bad", "stale", now=WHEN)
    return tmp_path, comparison_with_reviews(tmp_path, mixed())


def test_the_comparison_carries_the_reviews_of_each_side(reviewed: tuple[Path, Comparison]) -> None:
    root, comparison = reviewed
    before, after = comparison.reviews
    assert {key[1]: r.verdict for key, r in before.items()} == {"hostile": "good", "same": "good"}
    assert {key[1]: r.verdict for key, r in after.items()} == {"breaks": "bad", "same": "good"}
    assert all(r.note != "stale" for side in comparison.reviews for r in side.values())  # left out: no such output
    assert comparison_with_reviews(root, comparison) is comparison  # given already: not read again


def test_the_terminal_shows_the_review_under_the_case(reviewed: tuple[Path, Comparison],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    text = written(reviewed[1], "table")
    breaks = text.split("REGRESSED goldens/greet.yaml:3 breaks [openai:gpt-4o-mini]\n")[1].splitlines()[0]
    assert breaks.strip().startswith(f"B: reviewed bad by Ada at {WHEN}: lost the greeting x\\n::add-mask::hunter2")
    hostile = text.split("REGRESSED goldens/greet.yaml:3 hostile")[1].splitlines()[1].strip()
    assert hostile.startswith("A: reviewed good by Ada") and hostile.endswith("…")
    assert len(hostile) == MAX_REVIEW_CHARS
    assert "reviewed by a human, not listed above: 1" in text
    assert re.search(r"goldens/greet.yaml:3 same \[openai:gpt-4o-mini\] \(still passing\)\s+A: reviewed good by "
                     r"Ada at \S+: fine; B: reviewed good", text)
    assert "stale" not in text and "\x1b[31m" not in text
    assert not any(line.startswith("::") for line in text.splitlines())


def test_markdown_shows_the_review_in_a_code_span(reviewed: tuple[Path, Comparison]) -> None:
    md = written(reviewed[1], "markdown")
    regressed = md.split("### Regressed (passed -> failed): 2")[1].split("###")[0]
    assert re.search(r"^- `goldens/greet.yaml:3 breaks \[openai:gpt-4o-mini\]`\n  - `+B: reviewed bad by Ada at "
                     r"2026-12-04T21:00:00Z: lost the greeting x\\n::add-mask::hunter2", regressed, re.MULTILINE)
    assert "  - `A: reviewed good by Ada at 2026-12-04T21:00:00Z: much too curt" in regressed
    assert "### Reviewed by a human, not listed above: 1" in md
    assert "- `goldens/greet.yaml:3 same [openai:gpt-4o-mini]` still passing: `A: reviewed good by Ada" in md
    visible = outside_code(md)
    for needle in ("<script", "<img", "@octocat", "hunter2", "stale"):
        assert needle not in visible, needle
    assert "\x1b" not in md and "stale" not in md


def test_json_gives_each_reviewed_sample_its_review(reviewed: tuple[Path, Comparison]) -> None:
    document = json.loads(written(reviewed[1], "json"))
    changes = {c["case_id"]: c for c in document["changes"]}
    assert changes["breaks"]["after"][0]["review"] == {
        "verdict": "bad", "note": "lost the greeting " + HOSTILE, "by": "Ada", "at": WHEN}
    assert "review" not in changes["breaks"]["before"][0]  # A gave another output
    assert changes["hostile"]["before"][0]["review"]["note"] == LONG  # JSON keeps the whole note
    assert changes["same"]["before"][0]["review"]["verdict"] == changes["same"]["after"][0]["review"]["verdict"]
    assert "ghost" not in changes and "stale" not in json.dumps(document)


def test_html_puts_the_review_on_the_row_as_data_only(reviewed: tuple[Path, Comparison]) -> None:
    page = written(reviewed[1], "html")
    elements = parse(page)
    assert "img" not in [tag for tag, _ in elements.tags] and page.count("<script") == 2
    cases = {c["c"]: c for c in json.loads(elements.scripts[0])["cases"]}
    [[verdict, line]] = cases["breaks"]["rv"]
    assert verdict == "bad" and line.startswith("B: reviewed bad by Ada") and "<script>document.title" in line
    assert cases["same"]["rv"] == [["good", f"A: reviewed good by Ada at {WHEN}: fine"],
                                   ["good", f"B: reviewed good by Ada at {WHEN}: fine"]]
    assert cases["mended"]["rv"] == []


def test_a_damaged_reviews_file_is_a_note_of_the_diff_and_the_reports_are_written(tmp_path: Path) -> None:
    (tmp_path / "reviews").mkdir()
    (tmp_path / "reviews" / "greet.yaml").write_text("cases:\n  breaks: [oops\n", encoding="utf-8")
    comparison = comparison_with_reviews(tmp_path, mixed())
    document = json.loads(written(comparison, "json"))
    [note] = [n for n in document["decision"]["notes"] if n.startswith("reviews not shown")]
    assert note.startswith("reviews not shown: reviews/greet.yaml:3: invalid YAML")
    assert document["exit_code"] == 1  # the regressions still decide
    assert re.search(r"^- note: `+reviews not shown: reviews/greet.yaml:3", written(comparison, "markdown"), re.M)


def test_the_pr_comment_shows_a_hostile_review_note_as_code_and_stays_within_the_limit(
        reviewed: tuple[Path, Comparison], tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "report.md").write_text(written(reviewed[1], "markdown"), encoding="utf-8")
    (reports / "report.json").write_text(written(reviewed[1], "json"), encoding="utf-8")
    body, code = compose(CheckContext(exit_code=1, head_sha="b" * 40), reports)
    assert code == 1 and len(body) <= MAX_COMMENT_CHARS
    assert "B: reviewed bad by Ada at 2026-12-04T21:00:00Z: lost the greeting" in body
    visible = outside_code(body)
    for needle in ("<script", "<img", "@octocat", "hunter2", "</details><script"):
        assert needle not in visible, needle
    assert visible.count("<details") == visible.count("</details>")


def test_many_long_reviews_keep_the_comment_within_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_compare import result, run

    from promptci.compare import compare_runs

    monkeypatch.setenv("USER", "Ada")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    before = run(*(result(f"c{i}", "passed", output=f"out {i}") for i in range(400)))
    after = run(*(result(f"c{i}", "failed" if i < 200 else "passed", output=f"new {i}") for i in range(400)))
    for i in range(400):
        write_review(tmp_path, "greet", f"c{i}", f"new {i}", "bad", "```` </details> " + "x" * 3000, now=WHEN)
    md = written(comparison_with_reviews(tmp_path, compare_runs(before, after)), "markdown")
    assert len(md) <= MAX_COMMENT_CHARS
    assert "- … 180 more (the JSON and HTML reports have every review)" in md
    visible = outside_code(md)
    assert visible.count("<details>") == visible.count("</details>")


def test_promptci_diff_shows_the_reviews_in_every_report(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("USER", "Ada")
    repo = new_repo(tmp_path / "repo")
    commit(repo, FILES, "base")
    commit(repo, {"prompts/greet.txt": GREET_BROKEN}, "terser greeting")
    first = json.loads(cli("diff", "HEAD~1", "HEAD", "--root", repo, "--no-github", "--format", "json").stdout)
    ada = next(c for c in first["changes"] if c["case_id"] == "ada")
    assert "review" not in ada["after"][0]
    write_review(repo, "greet", "ada", ada["after"][0]["output"], "bad", "too familiar\n::error::x", now=WHEN)
    write_review(repo, "greet", "ada", "an output of a golden since changed", "good", "stale", now=WHEN)
    md, page = tmp_path / "diff.md", tmp_path / "diff.html"
    done = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--no-github", "-o", f"markdown={md}", "-o", f"html={page}")
    assert done.exit_code == 1
    assert f"B: reviewed bad by Ada at {WHEN}: too familiar\\n::error::x" in done.stdout
    assert f"B: reviewed bad by Ada at {WHEN}: too familiar\\n::error::x" in md.read_text(encoding="utf-8")
    data = json.loads(parse(page.read_text(encoding="utf-8")).scripts[0])
    assert next(c for c in data["cases"] if c["c"] == "ada")["rv"][0][0] == "bad"
    again = json.loads(cli("diff", "HEAD~1", "HEAD", "--root", repo, "--no-github", "--format", "json").stdout)
    ada = next(c for c in again["changes"] if c["case_id"] == "ada")
    assert ada["after"][0]["review"]["note"] == "too familiar\n::error::x" and "review" not in ada["before"][0]
    assert "stale" not in done.stdout + md.read_text(encoding="utf-8")


@needs_chromium
def test_chromium_shows_a_hostile_review_note_as_text_on_the_row_and_in_the_detail(
        reviewed: tuple[Path, Comparison], tmp_path: Path) -> None:
    page = tmp_path / "diff.html"
    page.write_text(written(reviewed[1], "html"), encoding="utf-8")
    dom = dump_dom(page, "#q=lost+the+greeting&expand=1", tmp_path)  # the note is searched too
    assert "<title>promptci diff</title>" in dom  # the hostile script did not run
    assert shown_count(dom) == 1
    body = dom.split('<script type="application/json"')[0]
    assert not re.search(r"<img\b", body) and body.count("<script") == 0
    assert '<span class="reviewed bad"> · B: reviewed bad</span>' in body
    assert ('<div class="reviewed bad">B: reviewed bad by Ada at 2026-12-04T21:00:00Z: lost the greeting x\\n'
            "::add-mask::hunter2\\n::stop-commands::abc\\n````\\n&lt;/details&gt;&lt;script&gt;") in body


def test_a_reviewed_bad_output_that_passes_at_b_is_a_note_of_the_diff(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a run's reports: a human disagrees with the comparators about B's output, and the PR comment says so."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("USER", "Ada")
    write_review(tmp_path, "greet", "same", "out", "bad", "too curt", now=WHEN)
    comparison = comparison_with_reviews(tmp_path, mixed())
    expected = "B: greet/same [openai:gpt-4o-mini]: passes its comparators, but Ada reviewed this output bad: too curt"
    assert comparison.decision is not None and expected in comparison.decision.notes
    assert expected in written(comparison, "markdown")
    assert comparison_with_reviews(tmp_path, comparison) is comparison  # not read, nor noted, twice
