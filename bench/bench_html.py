"""HTML report benchmark: size of a 10,000-case report and the time headless Chromium takes to open it.

    python bench/bench_html.py [--cases 10000] [--models 1] [--repeat 1] [--failing 0.1] [--output-chars 400]

Targets (issue 11): under 15 MB, opening (navigation to first full render, measured by the page itself)
under 3 s. Also prints Chromium's whole wall time (process start, render, DOM dump), which is larger.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from promptci.reporting.html import render_html
from promptci.types import CaseResult, GitInfo, Run, Score, summarize


def make_run(cases: int, models: int, failing: float, output_chars: int, repeat: int = 1) -> Run:
    rng = random.Random(11)
    words = ["the", "patient", "was", "admitted", "discharged", "transferred", "with", "acute", "pain",
             "fever", "stable", "notes", "lab"]
    results = []
    for i in range(cases):
        expected = " ".join(rng.choice(words) for _ in range(output_chars // 6))[:output_chars]
        for m, sample in ((m, sample) for m in range(models) for sample in range(repeat)):
            fails = rng.random() < failing
            output = expected if not fails else expected[: output_chars // 2] + " <b>drift</b> & more"
            scores = (Score("exact", 0.0, False, "output differs", f"-{expected}\n+{output}", metric="accuracy"),
                      ) if fails else (Score("exact", 1.0, True, metric="accuracy"),)
            results.append(CaseResult(
                prompt=f"prompt{i % 12}", case_id=f"case-{i:05d}", file=f"goldens/prompt{i % 12}.yaml", line=3 + i,
                model=f"openai:model-{m}", repeat=sample, status="failed" if fails else "passed", output=output,
                expected=expected,
                scores=scores, input_tokens=120, output_tokens=60, cost_usd=0.0001, latency_ms=rng.uniform(200, 900),
                ttft_ms=rng.uniform(50, 200), tags=("smoke",) if i % 5 == 0 else ()))
    return Run(run_id="bench", started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:10:00Z",
               git=GitInfo("0" * 40), models=tuple(f"openai:model-{m}" for m in range(models)),
               results=tuple(results), summary=summarize(results))


def open_in_chromium(page: Path, profile: Path) -> tuple[float, int | None]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    started = time.perf_counter()
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile}",
         "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    match = re.search(r'data-rendered-ms="(\d+)"', done.stdout)
    return wall, int(match.group(1)) if match else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--models", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="samples per case x model (--repeat)")
    parser.add_argument("--failing", type=float, default=0.1)
    parser.add_argument("--output-chars", type=int, default=400)
    args = parser.parse_args()
    run = make_run(args.cases, args.models, args.failing, args.output_chars, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        started = time.perf_counter()
        page.write_text(render_html(run), encoding="utf-8")
        written = time.perf_counter() - started
        size_mb = page.stat().st_size / 1e6
        wall, rendered_ms = open_in_chromium(page, Path(tmp) / "profile")
    print(f"results: {len(run.results):,} ({args.cases:,} cases x {args.models} model(s) x {args.repeat} "
          f"sample(s), {args.failing:.0%} failing, {args.output_chars}-char outputs)")
    print(f"written in {written:.2f} s; size {size_mb:.2f} MB (target < 15 MB)")
    shown = f"{rendered_ms / 1000:.2f} s" if rendered_ms is not None else "not measured (page did not render)"
    print(f"opened (navigation to first full render, in the page): {shown} (target < 3 s)")
    print(f"chromium wall time (start, render, dump the DOM, exit): {wall:.2f} s")


if __name__ == "__main__":
    main()
