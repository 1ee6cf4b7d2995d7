"""promptci.prcheck on its own: the comment for each outcome from the report folder, hostile report files and
logs (read as data, escaped), and the exit code under `missing-secrets`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from promptci.prcheck import CheckContext, compose, fenced, main, read_facts

SHA = "0123456789abcdef0123456789abcdef01234567"


@given(st.text())
def test_a_fenced_log_cannot_close_its_fence(text: str) -> None:
    block = fenced(text)
    fence = re.match(r"`+", block).group(0)  # type: ignore[union-attr]
    assert block.endswith("\n" + fence)
    assert fence not in block[len(fence):-len(fence)]


def test_a_damaged_or_hostile_json_report_is_no_report(tmp_path: Path) -> None:
    for content in ("{not json", "[" * 50_000, json.dumps({"results": "nope"}), json.dumps([1, 2]),
                    json.dumps({"kind": "comparison", "changes": [None, {"before": 3, "after": [None]}]})):
        (tmp_path / "report.json").write_text(content)
        facts = read_facts(tmp_path / "report.json")
        assert facts.spend.requests == 0 and facts.needs_live == []


def test_requests_and_dollars_count_what_was_sent(tmp_path: Path) -> None:
    results = [{"status": "passed", "cached": False, "attempts": 2, "cost_usd": 0.25},
               {"status": "passed", "cached": True, "attempts": 1, "cost_usd": 0.0},
               {"status": "skipped", "cached": False, "attempts": 0, "cost_usd": None},
               {"status": "failed", "cached": False, "attempts": 1, "cost_usd": None},
               {"status": "error", "cached": False, "error": "--replay: no recorded response for case 'x'",
                "case_id": "x", "file": "goldens/a.yaml", "line": 3, "model": "m"}]
    (tmp_path / "report.json").write_text(json.dumps({"results": results}))
    body, code = compose(CheckContext(exit_code=3, head_sha=SHA, offline=True, policy="warn"), tmp_path)
    assert "spent: 3 requests, $0.2500 (1 at an unknown price)" in body
    assert "- `x` (goldens/a.yaml:3) on m" in body and code == 0


def test_the_warn_policy_never_hides_a_regression_or_another_error(tmp_path: Path) -> None:
    miss = {"status": "error", "error": "--replay: no recorded response", "case_id": "x", "file": "f", "line": 1}
    other = {"status": "error", "error": "timeout", "case_id": "y"}
    (tmp_path / "report.json").write_text(json.dumps({"results": [miss, other]}))
    assert compose(CheckContext(exit_code=3, head_sha=SHA, offline=True, policy="warn"), tmp_path)[1] == 3
    (tmp_path / "report.json").write_text(json.dumps({"results": [miss]}))
    assert compose(CheckContext(exit_code=1, head_sha=SHA, offline=True, policy="warn"), tmp_path)[1] == 1
    assert compose(CheckContext(exit_code=3, head_sha=SHA, offline=False, policy="warn"), tmp_path)[1] == 3


def test_a_head_that_is_not_a_sha_is_not_shown(tmp_path: Path) -> None:
    body, _ = compose(CheckContext(exit_code=0, head_sha="<img src=x>", base="main"), tmp_path)
    assert "<img" not in body and "head `unknown`" in body


def test_the_command_line_writes_the_comment_and_prints_the_exit_code(tmp_path: Path, capsys) -> None:
    (tmp_path / "promptci.log").write_text("progress\npromptci: error: goldens/a.yaml:3: bad ```fence\n")
    out = tmp_path / "comment.md"
    assert main(["comment", "--reports", str(tmp_path), "--out", str(out), "--exit-code", "2", "--head-sha", SHA,
                 "--artifact-url", "https://example.invalid/a"]) == 0
    assert capsys.readouterr().out == "2\n"
    body = out.read_text()
    assert body.startswith(":no_entry: **promptci: bad input** (exit 2)")
    assert "````text\npromptci: error: goldens/a.yaml:3: bad ```fence\n````" in body and "progress" not in body


def test_the_maintainer_command_selects_plain_ids_only(tmp_path: Path) -> None:
    def body_for(*ids: str) -> str:
        results = [{"status": "error", "error": "--replay: no recorded response", "case_id": i, "file": "f",
                    "line": n, "model": "m"} for n, i in enumerate(ids)]
        (tmp_path / "report.json").write_text(json.dumps({"results": results}))
        return compose(CheckContext(exit_code=3, head_sha=SHA, offline=True, pr_number=4), tmp_path)[0]

    assert "`gh pr checkout 4 && promptci run --record -k 'a-1 or b.2'`" in body_for("b.2", "a-1")
    hostile = body_for("x'; rm -rf ~ #", "a`b\n<img src=x>[link](y)")
    assert "`gh pr checkout 4 && promptci run --record`" in hostile
    assert "- `a b img src=x link (y)` (f:1) on m" in hostile and "<img" not in hostile
