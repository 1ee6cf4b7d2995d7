"""Human reviews (reviews/<prompt>.yaml, read through viewer/reviews.py) in every report of a run: a mark in
the terminal, a `review` per result in JSON, the verdict and note in Markdown and HTML; a reviewed-bad output
that passes its comparators is named as a note."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from promptci.viewer.reviews import write_review

GOLDEN = ("cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n"
          "  - id: bob\n    input: {name: Bob}\n    expected: Goodbye Bob\n"
          "  - id: cy\n    input: {name: Cy}\n    expected: Hello Cy!\n")
NOTE = "too stiff </script><b>x</b>"


@pytest.fixture
def reviewed(project) -> Path:
    """ada passes but a human marked its output bad; bob fails and was marked good; cy is not reviewed."""
    root = project({"prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": GOLDEN,
                    "promptci.yaml": "models: [echo]\n"})
    write_review(root, "greet", "ada", "Hello Ada!", "bad", NOTE, now="2026-12-04T21:00:00Z")
    write_review(root, "greet", "bob", "Hello Bob!", "good", "friendlier", now="2026-12-04T21:01:00Z")
    write_review(root, "greet", "cy", "an output the run did not give", "bad", "old", now="2026-12-04T21:02:00Z")
    return root


def test_json_has_a_review_per_reviewed_result_and_the_disagreement_note(cli, reviewed: Path) -> None:
    done = cli("run", "--root", reviewed, "--no-github", "--format", "json")
    assert done.exit_code == 1, done.output
    document = json.loads(done.stdout)
    by_case = {r["case_id"]: r for r in document["results"]}
    assert by_case["ada"]["review"]["verdict"] == "bad" and by_case["ada"]["review"]["note"] == NOTE
    assert by_case["ada"]["review"]["at"] == "2026-12-04T21:00:00Z" and by_case["ada"]["review"]["by"]
    assert by_case["bob"]["review"]["verdict"] == "good"
    assert "review" not in by_case["cy"]  # its review is of another output
    [disagree] = [n for n in document["notes"] if "reviewed this output bad" in n]
    assert disagree.startswith("greet/ada [echo]: passes its comparators, but ") and disagree.endswith(NOTE)
    assert not any("greet/bob" in n or "greet/cy" in n for n in document["notes"])
    assert "promptci: note: greet/ada [echo]: passes its comparators" in done.stderr


def test_the_terminal_marks_reviewed_cases(cli, reviewed: Path) -> None:
    done = cli("run", "--root", reviewed, "--no-github", "-v")
    assert done.exit_code == 1, done.output
    lines = done.stdout.splitlines()
    assert any(line.startswith("FAILED") and "bob" in line and line.endswith("[reviewed good]") for line in lines)
    assert any(line.startswith("PASSED") and "ada" in line and line.endswith("[reviewed bad]") for line in lines)
    assert any(line.startswith("PASSED") and "cy" in line and "reviewed" not in line for line in lines)
    assert "reviewed good by " in done.stdout and ": friendlier" in done.stdout
    assert lines[0].startswith("note: greet/ada [echo]: passes its comparators, but ")


def test_markdown_and_html_show_the_verdict_and_the_note(cli, reviewed: Path, tmp_path: Path) -> None:
    md, page = tmp_path / "r.md", tmp_path / "r.html"
    done = cli("run", "--root", reviewed, "--no-github", "-q", "-o", f"markdown={md}", "-o", f"html={page}")
    assert done.exit_code == 1, done.output
    text = md.read_text(encoding="utf-8")
    assert "> **note:** `greet/ada [echo]: passes its comparators, but " in text
    assert "### Reviewed outputs (2)" in text
    assert re.search(r"- `goldens/greet\.yaml:\d+ ada \[echo\]` passed: `reviewed bad by .+ at 2026-12-04T21:00:00Z: "
                     + re.escape(NOTE) + "`", text)
    failure = text.split("**❌ failed**")[1]
    assert "bob" in failure.splitlines()[0] and "👤 `reviewed good by " in failure.splitlines()[1]
    html = page.read_text(encoding="utf-8")
    data = json.loads(html.split('id="promptci-data">')[1].split("</script>")[0])
    by_case = {c["c"]: c for c in data["cases"]}
    assert by_case["ada"]["rv"][0] == "bad" and by_case["ada"]["rv"][1].endswith(NOTE)
    assert by_case["bob"]["rv"][0] == "good" and by_case["cy"]["rv"] is None
    assert "<b>x</b>" not in html  # the note is escaped JSON, rendered with textContent
    assert any("passes its comparators" in n for n in data["run"]["notes"])


def test_show_gives_the_reviews_written_after_the_run(cli, reviewed: Path) -> None:
    assert cli("run", "--root", reviewed, "--no-github", "-q").exit_code == 1
    write_review(reviewed, "greet", "cy", "Hello Cy!", "good", "", now="2026-12-04T22:00:00Z")
    shown = json.loads(cli("show", "last", "--root", reviewed, "--format", "json").stdout)
    assert {r["case_id"]: r.get("review", {}).get("verdict") for r in shown["results"]} == \
        {"ada": "bad", "bob": "good", "cy": "good"}


def test_a_hostile_note_reaches_the_log_as_one_line_of_text(cli, reviewed: Path) -> None:
    write_review(reviewed, "greet", "ada", "Hello Ada!", "bad", "x\n::error::pwned\x1b[31m", now="2026-12-04T21:00:00Z")
    done = cli("run", "--root", reviewed, "--no-github", "--format", "json")
    [line] = [line for line in done.stderr.splitlines() if "reviewed this output bad" in line]
    assert line.endswith(": x\\n::error::pwned\\x1b[31m") and "\x1b" not in done.stderr
    assert not any(line.startswith("::") for line in done.stderr.splitlines())


def test_a_damaged_reviews_file_is_a_note_and_the_reports_are_written(cli, reviewed: Path) -> None:
    (reviewed / "reviews" / "greet.yaml").write_text("cases: [unclosed\n", encoding="utf-8")
    done = cli("run", "--root", reviewed, "--no-github", "--format", "json")
    assert done.exit_code == 1, done.output  # the comparators' verdict, not a usage error
    document = json.loads(done.stdout)
    assert any(n.startswith("reviews not shown: reviews/greet.yaml") for n in document["notes"])
    assert all("review" not in r for r in document["results"])



def test_a_runs_disagreement_notes_are_capped_as_a_diffs(cli, project) -> None:
    """Seven reviewed-bad outputs that pass: five notes (each cut to MAX_REVIEW_CHARS), then the rest counted."""
    from promptci.reporting.diffview import MAX_REVIEW_CHARS
    from promptci.viewer.reviews import MAX_DISAGREEMENT_NOTES

    names = [f"n{number}" for number in range(7)]
    golden = "cases:\n" + "".join(f"  - id: {name}\n    input: {{name: {name}}}\n    expected: Hello {name}!\n"
                                  for name in names)
    root = project({"prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": golden,
                    "promptci.yaml": "models: [echo]\n"})
    for name in names:
        write_review(root, "greet", name, f"Hello {name}!", "bad", "long " * 100, now="2026-12-04T21:00:00Z")
    done = cli("run", "--root", root, "--no-github", "--format", "json")
    assert done.exit_code == 0, done.output  # every case passes its comparators
    document = json.loads(done.stdout)
    notes = [n for n in document["notes"] if "reviewed this output bad" in n or "reviewed-bad" in n]
    assert len(notes) == MAX_DISAGREEMENT_NOTES + 1
    assert all(len(n) <= MAX_REVIEW_CHARS for n in notes) and notes[0].endswith("…")
    assert notes[-1] == ("2 more reviewed-bad output(s) pass their comparators (the JSON and HTML reports have "
                         "every review)")
    assert all(r["review"]["verdict"] == "bad" for r in document["results"])  # every review is still in the JSON
