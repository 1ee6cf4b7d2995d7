"""`promptci view` benchmark: the runs page with 1,000 stored runs (server answer time), and a 10,000-case
run page's first render in headless Chromium (measured by the page itself: navigation to rendered, with
style and layout).

    python bench/bench_view.py [--runs 1000] [--cases 10000] [--tries 15] [--cold 3]

A first load is one of a fresh viewer (nothing kept): `--cold` of them, each with its own server; the server's
share is also timed alone (a fresh viewer answering the run page to urllib).

Targets (issue 20): runs page < 200 ms; 10,000-case run page first render < 1.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_html import make_run

from promptci.project import discover
from promptci.store import Store
from promptci.types import CaseResult, GitInfo, Score, summarize
from promptci.viewer.server import start_in_thread

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def fill_store(root: Path, runs: int, cases: int) -> str:
    (root / "prompts").mkdir(parents=True)
    (root / "goldens").mkdir()
    (root / "promptci.yaml").write_text("models: [openai:model-0]\n")
    with Store.open(discover(root).db_path) as store:
        for i in range(runs):
            run_id = f"run{i:06d}"
            results = [CaseResult(prompt="p", case_id=f"c{j}", file="goldens/p.yaml", line=3, model="openai:model-0",
                                  status="passed" if (i + j) % 7 else "failed", output=f"out {j}",
                                  scores=(Score("exact", 1.0, True),), cost_usd=0.001) for j in range(5)]
            started = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"
            store.start_run(run_id, started, GitInfo(f"{i:040x}", False, "main"), ["openai:model-0"], {})
            for position, result in enumerate(results):
                store.add_result(run_id, result, (), position)
            store.finish_run(run_id, started.replace(":00:00Z", ":05:00Z"), summarize(results), False)
        big = make_run(cases, 1, 0.1, 400)
        store.start_run("big", "2027-01-01T00:00:00Z", GitInfo("f" * 40), big.models, {})
        for position, result in enumerate(big.results):
            store.add_result("big", result, (), position)
        store.finish_run("big", "2027-01-01T00:10:00Z", big.summary, False)
    return "big"


def time_runs_page(url: str, tries: int) -> list[float]:
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        with urllib.request.urlopen(url) as answer:
            answer.read()
        times.append((time.perf_counter() - start) * 1000)
    return times


def first_render_ms(url: str, tries: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    found = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(tries):
            page = browser.new_page()
            page.goto(url, timeout=120_000)
            page.wait_for_function("document.documentElement.dataset.renderedMs !== undefined")
            found.append(float(page.evaluate("document.documentElement.dataset.renderedMs")))
            page.close()
        browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--tries", type=int, default=15)
    parser.add_argument("--cold", type=int, default=3, help="first loads, each of a fresh viewer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        started = time.perf_counter()
        big = fill_store(root, args.runs, args.cases)
        print(f"stored {args.runs} runs + one of {args.cases} cases in {time.perf_counter() - started:.1f} s")
        viewer = start_in_thread(root)
        try:
            runs = time_runs_page(viewer.url, args.tries)
            print(f"runs page ({args.runs + 1} runs): median {statistics.median(runs):.0f} ms, "
                  f"max {max(runs):.0f} ms over {args.tries} requests")
            render = first_render_ms(f"{viewer.url}run/{big}", max(4, args.tries // 4))
        finally:
            viewer.stop()
        cold, server = [], []
        for _ in range(args.cold):
            fresh = start_in_thread(root)
            try:
                server += time_runs_page(f"{fresh.url}run/{big}", 1)
            finally:
                fresh.stop()
            fresh = start_in_thread(root)
            try:
                cold += first_render_ms(f"{fresh.url}run/{big}", 1)
            finally:
                fresh.stop()
        warm = render[1:]
        print(f"run page ({args.cases} cases) first render in Chromium, navigation to rendered: first load (a fresh"
              f" viewer builds the page from the store) median {statistics.median(cold):.0f} ms, max {max(cold):.0f}"
              f" ms over {len(cold)} fresh viewers (the server's answer alone: median {statistics.median(server):.0f}"
              f" ms); later loads (page data kept) median {statistics.median(warm):.0f} ms, max {max(warm):.0f} ms"
              f" over {len(warm)} loads")


if __name__ == "__main__":
    main()
