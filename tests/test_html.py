"""The HTML report: self-contained, strict CSP, data escaped; opened in headless Chromium where available."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from promptci.reporting.html import render_html, report_data
from promptci.reporting.page import embed_json
from promptci.types import BrokenCase, CaseResult, GitInfo, Run, Score, summarize

HOSTILE = ("<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned2'\">"
           "</script><!-- \u2028\u2029 & ]]>")


def result(case_id: str, model: str, status: str, **kw: object) -> CaseResult:
    fields: dict[str, object] = {"prompt": "route", "file": "goldens/route.yaml", "line": 3}
    fields.update(kw)
    return CaseResult(case_id=case_id, model=model, status=status, **fields)  # type: ignore[arg-type]


def hostile_run() -> Run:
    results = (
        result("ok", "m:a", "passed", output="fine", expected="fine", latency_ms=12.0, cost_usd=0.001),
        result("bad", "m:a", "failed", line=8, output=HOSTILE, expected="safe", tags=("smoke",),
               scores=(Score("exact", 0.0, False, HOSTILE, f"-safe\n+{HOSTILE}"),)),
        result("bad", "m:b", "passed", line=8, output="safe", expected="safe"),
        result(HOSTILE, "m:b", "error", prompt="summ", error=HOSTILE),
    )
    return Run(run_id="r1", started_at="2026-01-01T00:00:00Z", finished_at=None, git=GitInfo("abc123"),
               models=("m:a", "m:b"), results=results, summary=summarize(results), problems=(HOSTILE,))


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


def test_embedded_json_cannot_close_its_element() -> None:
    text = embed_json({"o": HOSTILE})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"o": HOSTILE}


def test_the_page_is_self_contained_with_a_strict_policy() -> None:
    page = render_html(hostile_run())
    parsed = parse(page)
    assert [t for t, _ in parsed.tags].count("script") == 2  # the data block and the one inline script
    assert not [t for t, _ in parsed.tags if t in ("img", "iframe", "link", "object", "embed")]
    assert not [(t, a) for t, a in parsed.tags if any(name.startswith("on") for name in a)]
    assert not re.search(r"\b(?:src|href)\s*=", page.split('id="promptci-data"')[0])
    assert "http://" not in page and "https://" not in page
    policy = next(a["content"] for t, a in parsed.tags if a.get("http-equiv") == "Content-Security-Policy")
    assert policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    code = parsed.scripts[-1]
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert "innerHTML" not in code and "insertAdjacentHTML" not in code and "eval(" not in code


def test_the_data_block_round_trips() -> None:
    run = hostile_run()
    page = render_html(run)
    data = json.loads(parse(page).scripts[0])
    assert data == json.loads(json.dumps(report_data(run)))
    bad = next(c for c in data["cases"] if c["c"] == "bad" and c["m"] == "m:a")
    assert bad["o"] == HOSTILE and bad["x"] == "safe" and bad["d"].startswith("-safe\n+<script>")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; "
                                    ".ci/run installs it)")


def dump_dom(page: Path, fragment: str, tmp_path: Path) -> str:
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", f"{page.as_uri()}{fragment}"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def shown_count(dom: str) -> int:
    match = re.search(r'id="shown" data-shown="(\d+)"', dom) or re.search(r'data-shown="(\d+)" id="shown"', dom)
    assert match, dom[:3000]
    return int(match.group(1))


@needs_chromium
def test_chromium_renders_counts_filters_and_keeps_hostile_output_as_text(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(hostile_run()), encoding="utf-8")
    dom = dump_dom(page, "#status=failed&expand=1", tmp_path)
    assert "<title>promptci report</title>" in dom  # the hostile script did not run
    assert "pwned" not in dom.split("<body")[0]
    assert "4 results: 2 passed, 1 failed, 1 errors, 0 skipped" in dom
    assert shown_count(dom) == 1  # the status filter from the URL was applied on load
    body = dom.split('<script type="application/json"')[0]
    assert not re.search(r"<img\b", body) and body.count("<script") == 0
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img src=x onerror=" in body
    assert 'class="del"' in body and 'class="add"' in body  # the diff panel rendered


@needs_chromium
def test_chromium_applies_prompt_model_and_search_filters(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(hostile_run()), encoding="utf-8")
    assert shown_count(dump_dom(page, "#model=m:b&q=safe", tmp_path)) == 1
    assert shown_count(dump_dom(page, "#prompt=summ", tmp_path)) == 1


@needs_chromium
def test_cli_writes_the_html_report(cli, project, tmp_path: Path) -> None:
    golden = "cases:\n  - id: a\n    input: {name: A}\n    expected: Hello A!\n  - id: b\n    input: {name: B}\n" \
             "    expected: nope\n"
    root = project({"prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": golden,
                    "promptci.yaml": "models: [echo]\n"})
    out = tmp_path / "report.html"
    result = cli("run", "--root", root, "--no-github", "-q", "-o", f"html={out}")
    assert result.exit_code == 1, result.output
    dom = dump_dom(out, "", tmp_path)
    assert "2 results: 1 passed, 1 failed" in dom and shown_count(dom) == 2


def sections_run() -> Run:
    """Two prompts on one golden file, two models that disagree on a hostile output, a named metric, repeats
    with a flaky case, and notes at the top: every section the other reports have."""
    def sample(case_id: str, prompt: str, model: str, repeat: int, passed: bool, output: str) -> CaseResult:
        score = Score("exact", 1.0 if passed else 0.0, passed, "" if passed else "differs", metric="accuracy")
        return result(case_id, model, "passed" if passed else "failed", prompt=prompt, file="goldens/sum.yaml",
                      line=4 if case_id == "c1" else 9, repeat=repeat, output=output, expected="safe",
                      scores=(score,), latency_ms=100.0 + repeat, cost_usd=0.001)

    results = []
    for repeat in (0, 1):
        results += [sample("c1", "sum_v1", "m:a", repeat, repeat == 0, "safe" if repeat == 0 else "other"),
                    sample("c1", "sum_v1", "m:b", repeat, True, "safe"),
                    sample("c2", "sum_v1", "m:a", repeat, False, HOSTILE),
                    sample("c2", "sum_v1", "m:b", repeat, True, "safe from m:b"),
                    *(sample(c, "sum_v2", m, repeat, True, "safe") for c in ("c1", "c2") for m in ("m:a", "m:b"))]
    return Run(run_id="r2", started_at="2026-01-01T00:00:00Z", finished_at=None, git=GitInfo("abc123"),
               models=("m:a", "m:b"), results=tuple(results), summary=summarize(results),
               problems=("m:b: rate limited 3 times",), baseline_model="m:a",
               notes=("drift: m:a now resolves to m-a-2026 " + HOSTILE, "m:b: 1 prompt equal, 1 better"))


def test_the_data_holds_every_section_the_other_reports_have() -> None:
    from promptci.matrix import disagreements
    from promptci.metrics import metric_table
    from promptci.reporting.stats import run_notes
    from promptci.verdict.summary import case_rates, flaky_cases

    run = sections_run()
    data = report_data(run)
    assert data["run"]["notes"][:2] == list(run.notes) and data["run"]["notes"][2:] == run_notes(run)
    assert data["run"]["problems"] == []  # no broken case: its details are the only problems listed apart
    assert [m[:3] for m in data["metrics"]] == [[v.metric, v.prompt, v.model] for v in metric_table(run.results)]
    assert [m[3] for m in data["metrics"]] == [0.25, 1.0, 1.0, 1.0]
    [side] = data["sides"]
    assert side["file"] == "goldens/sum.yaml" and side["prompts"] == ["sum_v1", "sum_v2"] and side["cases"] == 2
    assert [model for model, _ in side["models"]] == ["m:a", "m:b"]
    assert list(side["models"][0][1][0]) == ["passed", ["1/4 (25%)", "4/4 (100%)"]]
    matrix = data["matrix"]
    assert [row["prompt"] for row in matrix["rows"]] == ["sum_v1", "sum_v2"]
    assert matrix["rows"][0]["cells"]["m:a"][0].endswith("(1/4)")
    [disagreement] = matrix["disagree"]
    assert len(disagreements(run)) == 1
    assert disagreement["c"] == "c2" and [by[:2] for by in disagreement["by"]] == [["m:a", "failed"], ["m:b", "passed"]]
    assert [data["cases"][by[2]]["o"] for by in disagreement["by"]] == [HOSTILE, "safe from m:b"]  # first samples
    assert len(data["rates"]) == len(case_rates(run)) == 8
    assert [r[:3] for r in data["rates"] if r[-1]] == [[f.prompt, f.case_id, f.model] for f in flaky_cases(run)]
    assert [r[:3] for r in data["rates"] if r[-1]] == [["sum_v1", "c1", "m:a"]]


def test_one_model_without_repeats_has_no_matrix_rates_or_sides() -> None:
    data = report_data(replace(hostile_run(), models=("m:a",), results=hostile_run().results[:2]))
    assert data["matrix"] is None and data["rates"] == [] and data["sides"] == [] and data["metrics"] == []


def test_broken_cases_stay_listed_apart_and_are_counted_in_the_notes() -> None:
    run = replace(hostile_run(), problems=("goldens/route.yaml:7: unknown comparator 'exakt'",),
                  broken=(BrokenCase("goldens/route.yaml:7", "unknown comparator 'exakt'"),))
    data = report_data(run)
    assert data["run"]["problems"] == ["goldens/route.yaml:7: unknown comparator 'exakt'"]
    assert data["run"]["notes"] == ["1 case skipped (broken): goldens/route.yaml:7"]


@needs_chromium
def test_chromium_shows_the_new_sections_and_keeps_a_disagreeing_hostile_output_as_text(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(sections_run()), encoding="utf-8")
    dom = dump_dom(page, "", tmp_path)
    assert "<title>promptci report</title>" in dom
    body = dom.split('<script type="application/json"')[0]
    assert not re.search(r"<img\b", body) and body.count("<script") == 0
    notes = body.split('id="notes"')[1].split("</ul>")[0]
    assert notes.index("drift: m:a now resolves to m-a-2026 &lt;script&gt;") < notes.index(
        "m:b: 1 prompt equal, 1 better") < notes.index("m:b: rate limited 3 times")
    assert body.index('id="notes"') < body.index('id="groups"')  # the notes are at the top
    for section in ("metrics-section", "sides-section", "matrix-section", "rates-section"):
        opening = re.search(f'<section id="{section}"[^>]*>', body)
        assert opening and "hidden" not in opening.group(0), section
    metrics = body.split('id="metrics"')[1].split("</table>")[0]
    assert "<td>accuracy</td>" in metrics or "<th>accuracy</th>" in metrics
    assert "<td>0.250</td>" in metrics
    sides = body.split('id="sides"')[1].split("</table>")[0]
    assert "<th>sum_v1</th><th>sum_v2</th>" in sides and "<td>1/4 (25%)</td><td>4/4 (100%)</td>" in sides
    matrix = body.split('id="matrix"')[1].split("</table>")[0]
    assert "<th>m:a</th><th>m:b</th>" in matrix and "(1/4)" in matrix and "(4/4)" in matrix
    assert "1 case(s) where the models disagree" in body
    disagreement = body.split('id="disagree"')[1].split("</section>")[0]
    assert "sum_v1 / c2 — goldens/sum.yaml:9 — m:a failed, m:b passed" in disagreement
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img src=x onerror=" in disagreement
    assert "safe from m:b" in disagreement
    assert "8 repeated case(s), 1 flaky (samples disagreed)" in body
    flaky = body.split('id="flaky"')[1].split("</ul>")[0]
    assert "goldens/sum.yaml:4 sum_v1 / c1 [m:a]: flaky, passed 1 of 2 (50%" in flaky
    rates = body.split('id="rates"')[1].split("</table>")[0]
    assert rates.count("<tr") == 9 and rates.count('class="flaky"') == 1  # header + 8 cases, one flaky
