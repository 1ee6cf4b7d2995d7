"""Screenshots of every `promptci view` page (issue 20's note): a generated project in a fresh git repository,
three real `promptci run`s against the fake server (its own process) across three commits, then the viewer
driven by Debian's Chromium through Playwright. Not a test: it writes PNGs and prints their paths.

    python bench/screenshots.py [OUT_DIR]        # default /tmp/promptci-screens

Pages: runs, a run filtered to failures, two runs compared (the regressed case opened), a case's history,
cost, and a review being marked bad (the note typed, the button clicked, the answer shown).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakeserver_process import fake_server_process, write_greet_project

from promptci.viewer.server import Viewer, start_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
CASES = 12
# Each commit's template: the second says "hi" to every third person (their cases regress), the third mends
# half of them.
TEMPLATES = (
    "Say hello to {{ name }} from the {{ team }} team.\n",
    "Say {% if name[-1] in '036' %}hi{% else %}hello{% endif %} to {{ name }} from the {{ team }} team.\n",
    "Say {% if name[-1] in '3' %}hi{% else %}hello{% endif %} to {{ name }} from the {{ team }} team.\n",
)


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def make_history(root: Path, url: str) -> list[str]:
    """Three commits, one run each; the run ids, oldest first."""
    write_greet_project(root, CASES, url)
    (root / ".gitignore").write_text(".promptci/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Screenshot Reviewer")
    git(root, "config", "user.email", "reviewer@example.com")
    env = {**os.environ, "BENCH_KEY": "sk-bench"}
    for number, template in enumerate(TEMPLATES):
        if number == 2:
            git(root, "checkout", "-q", "-b", "feature/mend")
        (root / "prompts" / "greet.txt").write_text(template)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"greeting, take {number + 1}")
        done = subprocess.run([sys.executable, "-m", "promptci", "run", "-q", "--no-github"], cwd=root, env=env,
                              capture_output=True, text=True)
        if done.returncode not in (0, 1):
            raise SystemExit(f"promptci run exited {done.returncode}:\n{done.stderr}")
    listed = subprocess.run([sys.executable, "-m", "promptci", "runs", "--format", "json"], cwd=root, env=env,
                            capture_output=True, text=True, check=True)
    import json

    return [row["run_id"] for row in sorted(json.loads(listed.stdout), key=lambda r: r["started_at"])]


def shoot(viewer: Viewer, runs: list[str], out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def save(name: str) -> None:
            path = out / f"{name}.png"
            page.screenshot(path=str(path), full_page=True)
            written.append(path)

        page.goto(viewer.login_url)  # the token's cookie, then the runs
        page.wait_for_selector("#runs tbody tr")
        save("runs")
        page.goto(f"{viewer.url}run/{runs[1]}#status=failed")
        page.wait_for_selector("#cases tbody tr.row")
        page.locator("#cases tbody tr.row").first.click()
        save("run")
        page.goto(f"{viewer.url}compare?a={runs[0]}&b={runs[1]}")
        page.wait_for_selector("#cases tbody tr.row")
        page.locator("#cases tbody tr.row").first.click()
        save("compare")
        page.goto(f"{viewer.url}case?p=greet&c=case-00003")
        page.wait_for_selector("#commits tbody tr")
        save("case-history")
        page.goto(f"{viewer.url}cost")
        page.wait_for_selector("svg")
        save("cost")
        mark_review(page, viewer, runs[1])
        save("review")
        browser.close()
    return written


def mark_review(page: Any, viewer: Viewer, run_id: str) -> None:
    """A failing case opened on its run's page, a note typed and `mark bad` clicked, until the answer shows."""
    page.goto(f"{viewer.url}run/{run_id}#status=failed")
    page.wait_for_selector("#cases tbody tr.row")
    page.locator("#cases tbody tr.row").first.click()
    page.wait_for_selector(".review")
    page.fill(".review-note", "says hi where the style guide wants hello")
    page.click("button.review-bad")
    page.wait_for_selector(".review-msg:has-text('written to reviews/greet.yaml')")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("/tmp/promptci-screens"),
                        help="folder for the PNGs (default: /tmp/promptci-screens)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is not installed (apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, fake_server_process(0.0) as url:
        root = Path(tmp) / "project"
        runs = make_history(root, url)
        viewer = start_in_thread(root)
        try:
            written = shoot(viewer, runs, args.out)
        finally:
            viewer.stop()
    for path in written:
        print(f"{path}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
