"""The Markdown report for PR comments: the comment limit, flaky cases, hostile model output."""

from __future__ import annotations

import re
from dataclasses import replace

from promptci.reporting.markdown import MAX_COMMENT_CHARS, fit_comment, render_markdown, report_pointer
from promptci.types import CaseResult, GitInfo, Run, Score, summarize

HOSTILE = ("````\n</details><script>alert(1)</script><img src=x onerror=alert(1)>\n@octocat #1 "
           "| --- |\n<!-- x")


def result(case_id: str, status: str, **kw: object) -> CaseResult:
    fields: dict[str, object] = {"prompt": "route", "file": "goldens/route.yaml", "line": 3, "model": "m:a"}
    fields.update(kw)
    return CaseResult(case_id=case_id, status=status, **fields)  # type: ignore[arg-type]


def make_run(*results: CaseResult, problems: tuple[str, ...] = ()) -> Run:
    return Run(run_id="r1", started_at="2026-01-01T00:00:00Z", finished_at=None, git=GitInfo(), models=("m:a",),
               results=results, summary=summarize(results), problems=problems)


def outside_code(markdown: str) -> str:
    """The text a renderer treats as Markdown/HTML: outside fences (CommonMark's closing rule) and code spans."""
    outside, fence = [], ""
    for line in markdown.splitlines():
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and set(stripped) == {"`"}:
                fence = ""
        elif re.match("```", stripped):
            fence = re.match("`+", stripped).group()  # type: ignore[union-attr]
        else:
            outside.append(line)
    text = "\n".join(outside)
    for ticks in sorted({m.group() for m in re.finditer("`+", text)}, key=len, reverse=True):
        text = re.sub(f"(?<!`){ticks}(?!`).*?(?<!`){ticks}(?!`)", "", text)
    return text


def test_hostile_output_stays_inside_code() -> None:
    failed = result("c1", "failed", output=HOSTILE, scores=(Score("exact", 0.0, False, HOSTILE, f"-a\n+{HOSTILE}"),))
    md = render_markdown(make_run(failed, result(HOSTILE, "error", error=HOSTILE)))
    visible = outside_code(md)
    for needle in ("<script", "<img", "@octocat", "<!--", "</details><script"):
        assert needle not in visible, needle
    assert visible.count("<details>") == visible.count("</details>") == 1


def test_flaky_cases_are_named() -> None:
    a = result("wobbly", "passed", output="x")
    run = make_run(a, replace(a, repeat=1, status="failed"), replace(a, repeat=2),
                   result("steady", "passed", repeat=0), result("steady", "passed", repeat=1))
    md = render_markdown(run)
    assert "### Flaky cases (1)" in md
    assert "`goldens/route.yaml:3 wobbly [m:a]`: passed 2 of 3" in md
    assert "steady [m:a]`: passed" not in md


def test_a_huge_run_is_cut_at_the_comment_limit_with_a_pointer() -> None:
    problems = tuple(f"goldens/x{i}.yaml:1: " + "p" * 500 for i in range(300))  # 150 kB of problems alone
    failures = [result(f"c{i}", "failed", line=i, output="y" * 5000,
                       scores=(Score("exact", 0.0, False, "no", "-a\n+b" * 500),)) for i in range(50)]
    md = render_markdown(make_run(*failures, problems=problems))
    assert len(md) <= MAX_COMMENT_CHARS
    assert "Truncated to fit a comment" in md and "full report" in md


def test_fit_comment_closes_an_open_fence_and_details() -> None:
    text = "head\n<details><summary>s</summary>\n\n````text\n" + "</details>\n" * 3000 + "````\n</details>\n"
    cut = fit_comment(text, 10_000)
    assert len(cut) <= 10_000
    assert outside_code(cut).count("<details>") == outside_code(cut).count("</details>") == 1
    assert "\n````\n</details>\n\n> ⚠️ Truncated" in cut
    assert fit_comment("short") == "short"


def test_the_pointer_links_the_workflow_run_only_when_it_is_well_formed() -> None:
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/bot", "GITHUB_RUN_ID": "42"}
    assert "(https://github.com/acme/bot/actions/runs/42)" in report_pointer(env)
    assert "](" not in report_pointer({**env, "GITHUB_REPOSITORY": "acme/bot) [x](javascript:alert(1)"})
    assert "-o html=" in report_pointer({})
