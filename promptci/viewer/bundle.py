"""`promptci view --bundle DIR`: the viewer's pages as static files for the chosen runs (no server), opening
from file:// or any static host. Read-only: no review buttons, no requests."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from pathlib import Path

from promptci.cost.report import read_ledger
from promptci.errors import PromptCIError
from promptci.history import CaseSample, case_history, list_runs, show_run
from promptci.types import Run
from promptci.viewer.pages import Links, case_page, compare_page, cost_page, ledger_tables, run_page, runs_page
from promptci.viewer.reviews import read_reviews, reviews_for_prompts
from promptci.viewer.site import ALL_RUNS, Site

SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
BUNDLE_ROUTES = {"runs": "index.html", "cost": "cost.html"}
DEFAULT_RUNS = 10


def _file_part(run_id: str) -> str:
    return run_id if SAFE_NAME.match(run_id) else hashlib.sha256(run_id.encode()).hexdigest()[:16]


def write_bundle(root: Path | None, out: Path, run_refs: Sequence[str] = ()) -> list[Path]:
    """Write index.html, a page per run, a comparison of each run with the one before, every case's history
    over these runs and their cost into `out`; return the files written."""
    if out.exists() and not out.is_dir():
        raise PromptCIError(f"--bundle {out}: a file is there; give a folder (it is created if missing)")
    site = Site.at(root)
    source = site.source
    runs = [show_run(source, ref) for ref in run_refs] if run_refs else \
        [show_run(source, run.run_id) for run in list_runs(source, DEFAULT_RUNS)]
    if not runs:
        raise PromptCIError("no runs stored yet: run `promptci run` first")
    runs.sort(key=lambda run: run.started_at)
    files = {run.run_id: f"run-{_file_part(run.run_id)}.html" for run in runs}
    pairs = list(itertools.pairwise(runs))
    for a, b in pairs:
        files[f"{a.run_id} {b.run_id}"] = f"compare-{_file_part(a.run_id)}-{_file_part(b.run_id)}.html"
    links = Links(routes=dict(BUNDLE_ROUTES), files=files, can_write=False)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(name: str, html: str) -> None:
        path = out / name
        path.write_text(html, encoding="utf-8")
        written.append(path)

    chosen = {run.run_id for run in runs}
    rows = [run for run in list_runs(source, ALL_RUNS) if run.run_id in chosen]
    put("index.html", runs_page(rows, links))
    prompts = {r.prompt for run in runs for r in run.results}
    reviews = reviews_for_prompts(source, prompts)
    for run in runs:
        put(files[run.run_id], run_page(run, reviews, links))
    from promptci.compare import compare_runs

    for a, b in pairs:
        comparison = compare_runs(a, b, revisions=(f"run {a.run_id}", f"run {b.run_id}"))
        put(files[f"{a.run_id} {b.run_id}"], compare_page(comparison, reviews, links))
    put("case.html", case_page(_histories(source, runs, chosen), {p: read_reviews(source, p) for p in prompts},
                               links, None))
    since = min(run.started_at for run in runs)
    tables, total = ledger_tables([e for e in read_ledger(site.project, since) if e.run_id in chosen])
    put("cost.html", cost_page(tables, total, f"the first of these runs ({since})", links))
    return written


def _histories(source: Path, runs: Sequence[Run], chosen: set[str]) -> dict[tuple[str, str], list[CaseSample]]:
    keys = dict.fromkeys((r.prompt, r.case_id) for run in runs for r in run.results)
    return {key: [s for s in case_history(source, *key) if s.run_id in chosen] for key in keys}
