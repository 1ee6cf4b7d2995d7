"""`promptci view` clicked through in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
a run filtered to failures, two runs compared with the regression first, a case's history, reviews written
to reviews/*.yaml, a reviewed output accepted into its golden, the static bundle from file://, and hostile
output that stays text."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from viewer_project import HOSTILE, repeated_project, viewer_project

from promptci.viewer.bundle import write_bundle
from promptci.viewer.reviews import write_review
from promptci.viewer.server import Viewer, start_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
UI_TIMEOUT_MS = 120_000  # how long any step may wait for the page: a loaded 2-core machine slows Chromium for seconds

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the `test` extra)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=UI_TIMEOUT_MS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(UI_TIMEOUT_MS)  # every action, wait_for_* and navigation (Playwright's default: 30 s)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    yield opened
    context.close()
    refusals = "Failed to load resource: the server responded with a status of 409"  # asserted where expected
    assert [e for e in errors if not e.startswith(refusals)] == []  # no script error, no CSP violation


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, Viewer]]:
    root = viewer_project(tmp_path)
    viewer = start_in_thread(root)
    yield root, viewer
    viewer.stop()


def open_run(page: Any, viewer: Viewer, run_id: str) -> None:
    page.goto(viewer.login_url)  # sets the token's cookie, then shows the runs
    page.click(f"tr[data-run='{run_id}'] a.run-link")
    page.wait_for_selector("#cases tbody tr.row")


def expand_case(page: Any, case_id: str) -> None:
    page.click(f"#cases tbody tr.row:has-text('greet / {case_id}')")
    page.wait_for_selector(".review")


def test_runs_page_lists_every_run_with_commit_branch_and_pass_rate(page: Any, served: tuple[Path, Viewer]) -> None:
    _, viewer = served
    page.goto(viewer.login_url)
    assert page.url == viewer.url
    rows = page.locator("#runs tbody tr")
    assert rows.count() == 2
    newest = rows.nth(0).inner_text()
    assert "bbbb00000002" in newest and "bbbbbbbbbbbb" in newest and "feature" in newest and "1/2 (50.0%)" in newest
    page.fill("#f-q", "aaaa")
    assert page.locator("#runs tbody tr:visible").count() == 1
    assert "q=aaaa" in page.url


def test_open_a_run_and_filter_to_failures(page: Any, served: tuple[Path, Viewer]) -> None:
    _, viewer = served
    open_run(page, viewer, "bbbb00000002")
    assert page.url.endswith("/run/bbbb00000002")
    assert page.locator("#shown").get_attribute("data-shown") == "2"
    page.select_option("#f-status", "failed")
    assert page.locator("#shown").get_attribute("data-shown") == "1"
    assert "status=failed" in page.url
    assert "greet / ada" in page.locator("#cases tbody").inner_text()
    page.reload()  # the filter is in the URL
    assert page.locator("#shown").get_attribute("data-shown") == "1"


def test_compare_two_runs_shows_the_regressed_case_first(page: Any, served: tuple[Path, Viewer]) -> None:
    _, viewer = served
    page.goto(viewer.login_url)
    page.check("tr[data-run='aaaa00000001'] input.pick-a")
    page.check("tr[data-run='bbbb00000002'] input.pick-b")
    page.click("#compare-picked")
    page.wait_for_selector("#cases tbody tr")
    assert "/compare?a=aaaa00000001&b=bbbb00000002" in page.url
    first = page.locator("#cases tbody tr").first.inner_text()
    assert "ada" in first and "regressed" in first
    assert "REGRESSED" in page.locator("#verdict").inner_text()
    page.locator("#cases tbody tr.row").first.click()
    assert page.locator(".detail .reviewed").count() == 0  # nothing reviewed yet
    page.click("a.history-link")
    page.wait_for_selector("#commits tbody tr")
    assert "/case?p=greet&c=ada" in page.url


def test_follow_a_case_across_history(page: Any, served: tuple[Path, Viewer]) -> None:
    _, viewer = served
    open_run(page, viewer, "bbbb00000002")
    expand_case(page, "ada")
    page.click("a.history-link")
    page.wait_for_selector("#commits tbody tr")
    assert "/case?p=greet&c=ada" in page.url
    commits = page.locator("#commits tbody tr")
    assert commits.count() == 2
    assert "aaaaaaaaaaaa" in commits.nth(0).inner_text() and "1/1 (100.0%)" in commits.nth(0).inner_text()
    assert "output changed" in commits.nth(1).inner_text() and "0/1 (0.0%)" in commits.nth(1).inner_text()
    assert page.locator("#chart svg circle").count() == 2
    assert "Hi Ada, welcome back" in page.locator("#outputs").inner_text()


def test_mark_an_output_bad_writes_reviews_yaml(page: Any, served: tuple[Path, Viewer],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    root, viewer = served
    open_run(page, viewer, "bbbb00000002")
    expand_case(page, "ada")
    page.fill(".review-note", "too familiar")
    page.click("button.review-bad")
    page.wait_for_selector(".review-msg:has-text('written to reviews/greet.yaml')")
    assert "reviewed bad" in page.locator(".review-state").inner_text()
    text = (root / "reviews" / "greet.yaml").read_text(encoding="utf-8")
    [(digest, entry)] = yaml.safe_load(text)["cases"]["ada"].items()
    assert digest.startswith("sha256:") and entry["verdict"] == "bad" and entry["note"] == "too familiar"
    assert entry["by"] and entry["at"].startswith("20") and entry["run"] == "bbbb00000002"
    page.reload()  # the review is shown again from the file
    expand_case(page, "ada")
    assert "reviewed bad" in page.locator(".review-state").inner_text()
    page.goto(viewer.url + "compare?a=aaaa00000001&b=bbbb00000002")
    page.locator("#cases tbody tr.row").first.click()
    assert page.locator(".detail .reviewed.bad").inner_text().startswith("B: reviewed bad by ")
    assert page.locator(".detail .reviewed.bad").inner_text().endswith(": too familiar")
    assert "B: reviewed bad" in page.locator("#cases tbody tr.row").first.inner_text()  # on the row too


def test_accept_a_reviewed_good_output_changes_the_golden(page: Any, served: tuple[Path, Viewer]) -> None:
    root, viewer = served
    golden = root / "goldens" / "greet.yaml"
    open_run(page, viewer, "bbbb00000002")
    expand_case(page, "ada")
    page.click("button.review-accept")  # not reviewed yet: refused
    page.wait_for_selector(".review-msg:has-text('mark this output good before accepting it')")
    assert "Hello Ada!" in golden.read_text(encoding="utf-8")
    page.click("button.review-good")
    page.wait_for_selector(".review-msg:has-text('written to')")
    page.click("button.review-accept")
    page.wait_for_selector(".review-msg:has-text('golden changed')")
    cases = yaml.safe_load(golden.read_text(encoding="utf-8"))["cases"]
    assert [c["expected"] for c in cases] == ["Hi Ada, welcome back", "Hello Bob!"]


def test_bundle_opens_from_file_with_the_same_content(page: Any, served: tuple[Path, Viewer], tmp_path: Path) -> None:
    root, viewer = served
    page.goto(viewer.url + "run/bbbb00000002")
    served_counts = page.locator("#counts").inner_text()
    write_bundle(root, tmp_path / "bundle")
    viewer.stop()  # no server behind the bundle
    page.goto((tmp_path / "bundle" / "index.html").as_uri())
    assert page.locator("#runs tbody tr").count() == 2
    page.click("tr[data-run='bbbb00000002'] a.run-link")
    page.wait_for_selector("#cases tbody tr.row")
    assert page.locator("#counts").inner_text() == served_counts
    assert page.locator("button.review-bad").count() == 0
    expand_case(page, "ada")
    page.click("a.history-link")
    page.wait_for_selector("#commits tbody tr")
    assert page.locator("#commits tbody tr").count() == 2
    page.goto((tmp_path / "bundle" / "index.html").as_uri())
    page.click("tr[data-run='bbbb00000002'] a.vs-previous")
    page.wait_for_selector("#cases tbody tr")
    assert "regressed" in page.locator("#cases tbody tr").first.inner_text()


def test_hostile_output_stays_text_on_every_page(page: Any, tmp_path: Path) -> None:
    root = viewer_project(tmp_path, hostile=True)
    write_review(root, "greet", "ada", HOSTILE, "bad", note=HOSTILE)  # a hostile note too
    write_bundle(root, tmp_path / "bundle")
    viewer = start_in_thread(root)
    bundle = (tmp_path / "bundle").as_uri() + "/"
    try:
        page.goto(viewer.login_url)
        for url in (viewer.url + "run/bbbb00000002", viewer.url + "compare?a=aaaa00000001&b=bbbb00000002",
                    viewer.url + "case?p=greet&c=ada", bundle + "run-bbbb00000002.html",
                    bundle + "case.html#p=greet&c=ada"):
            path = url.rsplit("/", 2)[1] if "/run/" in url else url.rsplit("/", 1)[1]
            page.goto(url)
            page.wait_for_load_state("load")
            if path.startswith("run"):
                expand_case(page, "ada")
            elif path.startswith("compare"):
                page.click("#expand-all")
            assert HOSTILE in page.locator("body").inner_text()
            if path.startswith(("run", "case", "compare")):
                assert "reviewed bad" in page.locator("body").inner_text()
            assert page.evaluate("window.pwned") is None
            assert page.locator("body img").count() == 0
    finally:
        viewer.stop()


def test_chromium_is_debians() -> None:
    assert shutil.which("chromium") or Path(CHROMIUM).exists()


def test_compare_repeated_runs_shows_the_statistics(page: Any, tmp_path: Path) -> None:
    viewer = start_in_thread(repeated_project(tmp_path))
    try:
        page.goto(viewer.url + "compare?a=cccc00000001&b=dddd00000002")
        page.wait_for_selector("#cases tbody tr")
        assert page.locator("#statistics li").count() >= 1
        first = page.locator("#cases tbody tr").first.inner_text()
        assert "regressed" in first and "8/8" in first and "0/8" in first
        assert "p " in first  # the per-case test's p-value
    finally:
        viewer.stop()


def test_compare_two_revisions_not_stored_runs_diff_and_shows_the_regression_first(page: Any, tmp_path: Path) -> None:
    from gitrepo import commit, new_repo

    root = new_repo(tmp_path / "repo")
    golden = "cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n" \
             "  - id: cy\n    input: {name: Cy}\n    expected: Hello Cy!\n"
    commit(root, {".gitignore": ".promptci/\n", "promptci.yaml": "models: [echo]\n",
                  "prompts/greet.txt": "Hello {{ name }}!\n", "goldens/greet.yaml": golden}, "base")
    commit(root, {"prompts/greet.txt": "{% if name == 'Cy' %}Hello{% else %}Hi{% endif %} {{ name }}!\n"}, "terse")
    viewer = start_in_thread(root)
    try:
        page.goto(viewer.login_url)
        page.click("#viewer-nav a:has-text('compare revisions')")
        page.fill("#rev-a", "HEAD~1")
        page.fill("#rev-b", "HEAD")
        page.click("#rev-run")
        page.wait_for_url("**/compare?a=*")
        page.wait_for_selector("#cases tbody tr")
        first = page.locator("#cases tbody tr").first.inner_text()
        assert "ada" in first and "regressed" in first
        assert "HEAD~1" not in page.url  # the two stored runs, by id: a permanent address
        page.goto(viewer.url + "revisions")
        page.fill("#rev-a", "no-such-branch")
        page.click("#rev-run")
        page.wait_for_selector("#rev-progress:has-text('not started')")
        assert "no-such-branch" in page.locator("#rev-progress").inner_text()
    finally:
        viewer.stop()


def long_run(cases: int) -> Any:
    """`cases` passing cases, the last one failing with an output found nowhere else."""
    from promptci.types import CaseResult, GitInfo, Run, Score, summarize

    def one(i: int) -> CaseResult:
        last = i == cases - 1
        return CaseResult(prompt="route", case_id=f"c{i:05d}", file="goldens/route.yaml", line=3 + i,
                          model="m:a", status="failed" if last else "passed",
                          output="the needle " + HOSTILE if last else f"fine {i}", expected=f"fine {i}",
                          scores=(Score("exact", float(not last), not last),))
    results = tuple(one(i) for i in range(cases))
    return Run(run_id="long", started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:01:00Z",
               git=GitInfo("abc123"), models=("m:a",), results=results, summary=summarize(results))


def test_a_2000_case_report_shows_the_first_rows_and_finds_a_case_far_down(page: Any, tmp_path: Path) -> None:
    from promptci.reporting.html import render_html

    report = tmp_path / "report.html"
    report.write_text(render_html(long_run(2000)), encoding="utf-8")
    page.goto(report.as_uri())
    page.wait_for_selector("#cases tbody tr.row")
    assert page.locator("#shown").get_attribute("data-shown") == "2000"
    rows = page.locator("#cases tbody tr.row")
    assert rows.first.inner_text().startswith("route / c00000")
    built = rows.count()
    assert 0 < built < 2000  # the first screenful, not every row
    assert "c01999" not in page.locator("#cases tbody").inner_text()
    assert "rows not built yet" in page.locator("#cases tbody tr.more").inner_text()

    page.fill("#f-q", "needle")  # search reads every case, built or not
    assert page.locator("#shown").get_attribute("data-shown") == "1"
    assert rows.count() == 1 and rows.first.inner_text().startswith("route / c01999")
    assert page.locator("#cases tbody tr.more").count() == 0
    rows.first.click()
    assert HOSTILE in page.locator("#cases tbody tr.detail").inner_text()  # still text
    assert page.locator("#cases img").count() == 0

    page.fill("#f-q", "")
    page.select_option("#f-status", "failed")  # and so does a filter
    assert page.locator("#shown").get_attribute("data-shown") == "1"
    assert rows.count() == 1 and "c01999" in rows.first.inner_text()
    assert "status=failed" in page.url

    page.select_option("#f-status", "")
    assert rows.count() == built
    page.locator("#cases tbody tr.more").scroll_into_view_if_needed()  # scrolling near the end builds more
    sync_api.expect(rows.nth(built)).to_be_attached(timeout=UI_TIMEOUT_MS)  # expect's default is 5 s
    sync_api.expect(rows).to_have_count(built + 500, timeout=UI_TIMEOUT_MS)
    # and so does the button: its click is dispatched, because Playwright's scrolling before a real click would
    # wake the scroll watcher too, whose rows then move the button away from under the click
    page.locator("#cases tbody tr.more button").dispatch_event("click")
    sync_api.expect(rows).to_have_count(built + 1000, timeout=UI_TIMEOUT_MS)


def test_a_2000_case_report_opened_with_a_search_in_the_url_shows_the_case(page: Any, tmp_path: Path) -> None:
    from promptci.reporting.html import render_html

    report = tmp_path / "report.html"
    report.write_text(render_html(long_run(2000)), encoding="utf-8")
    page.goto(report.as_uri() + "#q=c01998&expand=1")
    page.wait_for_selector("#cases tbody tr.row")
    assert page.locator("#cases tbody tr.row").count() == 1
    assert "fine 1998" in page.locator("#cases tbody tr.detail").inner_text()


def test_the_html_report_shows_a_review_on_its_row_and_in_the_detail(page: Any, tmp_path: Path) -> None:
    from dataclasses import replace

    from promptci.reporting.html import render_html
    from promptci.types import Review

    run = long_run(3)
    review = Review("bad", "wrong tone " + HOSTILE, "Ada", "2026-12-04T21:00:00Z")
    report = tmp_path / "report.html"
    report.write_text(render_html(replace(run, reviews={("route", "c00001", "m:a", 0): review})), encoding="utf-8")
    page.goto(report.as_uri() + "#q=wrong+tone")  # the note is searched too
    row = page.locator("#cases tbody tr.row")
    assert row.count() == 1 and row.first.inner_text().startswith("route / c00001")
    assert "reviewed bad" in row.first.inner_text()
    row.first.click()
    assert page.locator(".detail .reviewed.bad").inner_text() == \
        "reviewed bad by Ada at 2026-12-04T21:00:00Z: wrong tone " + HOSTILE
    assert page.locator("#cases img").count() == 0
