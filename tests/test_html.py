"""The HTML report: self-contained, strict CSP, data escaped; opened in headless Chromium where available."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from promptci.reporting.html import embed_json, render_html, report_data
from promptci.types import CaseResult, GitInfo, Run, Score, summarize

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
