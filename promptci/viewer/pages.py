"""The viewer's pages as self-contained HTML: runs, a run, two runs compared, a case across history, cost.

Each page is reporting.page.render_page with the report's own pieces (html.py, diff_html.py) where one
exists, plus a navigation bar and the viewer's data in a second escaped JSON element. `links` says how pages
link to each other: served routes, or file names in a bundle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from promptci.compare import Comparison
from promptci.cost.ledger import CostRow, aggregate
from promptci.history import CaseSample
from promptci.reporting.diff_html import _BODY as COMPARE_BODY
from promptci.reporting.diff_html import comparison_data
from promptci.reporting.diff_html_assets import DIFF_CSS, DIFF_JS
from promptci.reporting.html import _BODY as RUN_BODY
from promptci.reporting.html import report_data
from promptci.reporting.html_assets import PAGE_CSS, PAGE_JS
from promptci.reporting.page import EmbeddedJSON, embed_json, render_page
from promptci.reporting.stats import printable
from promptci.store import LedgerEntry, RunInfo
from promptci.types import Run
from promptci.verdict.summary import elapsed_s
from promptci.viewer.assets import (
    CASE_BODY,
    CASE_JS,
    COST_BODY,
    COST_JS,
    REVISIONS_BODY,
    REVISIONS_JS,
    RUNS_BODY,
    RUNS_JS,
    VIEWER_CSS,
    VIEWER_JS,
)
from promptci.viewer.reviews import Review, output_hash, reviewed_comparison

SERVER_ROUTES = {"runs": "/", "run": "/run/{id}", "compare": "/compare?a={a}&b={b}", "case": "/case?p={p}&c={c}",
                 "cost": "/cost", "revisions": "/revisions"}


@dataclass(frozen=True)
class Links:
    """How pages link: `routes` are templates filled by the page script; a bundle also lists the runs and
    pairs it holds (`files`), and links nothing else."""

    routes: Mapping[str, str] = field(default_factory=lambda: dict(SERVER_ROUTES))
    files: Mapping[str, str] | None = None  # bundle: "run id" or "a b" -> file name
    can_write: bool = True  # served: review and accept buttons; a bundle is read-only

    def to_json(self) -> dict[str, Any]:
        return {"routes": dict(self.routes), "files": dict(self.files) if self.files is not None else None,
                "write": self.can_write}


def _page(title: str, body: str, css: str, js: str, data: Any, links: Links, viewer: Mapping[str, Any]) -> str:
    nav = ('<nav id="viewer-nav"></nav>\n<script type="application/json" id="viewer-data">'
           + embed_json({"links": links.to_json(), **viewer}) + "</script>\n")
    return render_page(title, nav + body, css + VIEWER_CSS, VIEWER_JS + js, data,
                       connect_src="'self'" if links.can_write else "'none'")


def _review_json(review: Review) -> dict[str, str]:
    return {"verdict": review.verdict, "note": printable(review.note), "by": printable(review.by), "at": review.at}


def _reviews_json(reviews: Mapping[str, Mapping[str, Mapping[str, Review]]]) -> dict[str, Any]:
    return {prompt: {case: {digest: _review_json(r) for digest, r in by_hash.items()}
                     for case, by_hash in cases.items()} for prompt, cases in reviews.items()}


@dataclass(frozen=True)
class RunData:
    """What a run's page shows that reviews do not change, built once: a finished run's is kept by the server."""

    run_id: str
    prompts: frozenset[str]
    hashes: Mapping[str, str]  # "prompt\0case\0model\0repeat" -> output hash, the key of its review
    report: EmbeddedJSON  # report_data, embedded

    @classmethod
    def of(cls, run: Run) -> RunData:
        hashes = {f"{r.prompt}\0{r.case_id}\0{r.model}\0{r.repeat}": output_hash(r.output) for r in run.results}
        return cls(run.run_id, frozenset(r.prompt for r in run.results), hashes, embed_json(report_data(run)))


def run_page(run: Run | RunData, reviews: Mapping[str, Mapping[str, Mapping[str, Review]]], links: Links) -> str:
    """The HTML report of the run, with history links and review controls on each case."""
    data = run if isinstance(run, RunData) else RunData.of(run)
    viewer = {"page": "run", "run": data.run_id, "hashes": data.hashes, "reviews": _reviews_json(reviews)}
    return _page(f"promptci run {data.run_id}", RUN_BODY, PAGE_CSS, PAGE_JS, data.report, links, viewer)


def compare_page(comparison: Comparison, reviews: Mapping[str, Mapping[str, Mapping[str, Review]]],
                 links: Links) -> str:
    """The diff page of two stored runs, each case with its history link and the reviews of A's and B's outputs
    (matched as the diff reports match them)."""
    data = comparison_data(reviewed_comparison(reviews, comparison))
    runs = [side.run_id for side in comparison.sides]
    return _page("promptci compare", COMPARE_BODY, DIFF_CSS, DIFF_JS, data, links, {"page": "compare", "runs": runs})


def _duration(run: RunInfo) -> float | None:
    return elapsed_s(run.started_at, run.finished_at)


def runs_data(runs: Sequence[RunInfo]) -> list[list[Any]]:
    """[id, started, command, commit, dirty, branch, models, passed, total, cost, seconds, interrupted] per run."""
    return [[r.run_id, r.started_at, printable(r.command) if r.command else None, r.commit,
             r.dirty, printable(r.branch) if r.branch else None, [printable(m) for m in r.models],
             r.summary.passed, r.summary.total, r.summary.cost_usd, _duration(r), r.interrupted]
            for r in runs]


def runs_page(runs: Sequence[RunInfo], links: Links) -> str:
    return _page("promptci runs", RUNS_BODY, PAGE_CSS, RUNS_JS, {"runs": runs_data(runs)}, links, {"page": "runs"})


def case_samples(samples: Iterable[CaseSample]) -> list[list[Any]]:
    """[run, started, commit, dirty, branch, model, repeat, status, output, hash] per stored result."""
    return [[s.run_id, s.started_at, s.commit, s.dirty, printable(s.branch) if s.branch else None,
             printable(s.model), s.repeat, s.status, printable(s.output) if s.output is not None else None,
             output_hash(s.output)] for s in samples]


def case_page(histories: Mapping[tuple[str, str], Sequence[CaseSample]],
              reviews: Mapping[str, Mapping[str, Mapping[str, Review]]], links: Links,
              selected: tuple[str, str] | None) -> str:
    """One case's history (served), or every case of a bundle's runs, chosen by the URL's #p=&c=."""
    data = {"cases": {f"{p}\0{c}": case_samples(samples) for (p, c), samples in histories.items()},
            "selected": f"{selected[0]}\0{selected[1]}" if selected else None}
    return _page("promptci case history", CASE_BODY, PAGE_CSS, CASE_JS, data, links,
                 {"page": "case", "reviews": _reviews_json(reviews)})


def _cost_row(dimension: str, row: CostRow) -> list[Any]:
    return [printable(row.value(dimension) or "-"), row.requests, row.cost_usd, row.cost_unknown, row.saved_usd,
            row.input_tokens, row.output_tokens]


COST_DIMENSIONS = ("day", "prompt", "model", "branch")  # the cost page's tables, as `promptci cost --by` groups


def cost_data(tables: Mapping[str, Sequence[CostRow]], total: CostRow, since: str) -> dict[str, Any]:
    """The cost page's data: a table per dimension of COST_DIMENSIONS and the total."""
    return {"since": since, **{d: [_cost_row(d, r) for r in tables.get(d, ())] for d in COST_DIMENSIONS},
            "total": [total.requests, total.cost_usd, total.cost_unknown]}


def ledger_tables(entries: Sequence[LedgerEntry]) -> tuple[dict[str, list[CostRow]], CostRow]:
    """cost_data's tables of some ledger rows (a bundle's chosen runs), summed here as the store sums them."""
    return {d: aggregate(entries, [d]) for d in COST_DIMENSIONS}, aggregate(entries, [])[0]


def cost_page(tables: Mapping[str, Sequence[CostRow]], total: CostRow, since: str, links: Links) -> str:
    return _page("promptci cost", COST_BODY, PAGE_CSS, COST_JS, cost_data(tables, total, since), links,
                 {"page": "cost"})


def revisions_page(links: Links) -> str:
    return _page("promptci compare revisions", REVISIONS_BODY, PAGE_CSS, REVISIONS_JS, {}, links,
                 {"page": "revisions"})
