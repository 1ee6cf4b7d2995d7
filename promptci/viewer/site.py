"""What the viewer shows, read from the project: each page as HTML from the store, and the two write actions
(a review, accepting a reviewed output). The HTTP server (server.py) and the bundle (bundle.py) both use it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptci.errors import PromptCIError
from promptci.history import case_history, list_runs, show_run
from promptci.project import Project, discover
from promptci.types import CaseResult, Run
from promptci.viewer.jobs import DiffJobs
from promptci.viewer.pages import (
    COST_DIMENSIONS,
    Links,
    RunData,
    case_page,
    compare_page,
    cost_page,
    revisions_page,
    run_page,
    runs_page,
)
from promptci.viewer.reviews import output_hash, read_reviews, reviews_for_prompts, write_review

ALL_RUNS = 1_000_000
CACHED_RUNS = 4


@dataclass(frozen=True)
class Site:
    """The project the viewer shows."""

    project: Project
    links: Links
    diffs: DiffJobs
    # finished runs do not change: the data of their pages is kept (the reviews are read for each page)
    run_data: dict[str, RunData] = field(default_factory=dict, compare=False)

    @classmethod
    def at(cls, root: Path | None, links: Links | None = None) -> Site:
        project = discover(root)
        return cls(project, links or Links(), DiffJobs(project.source))

    @property
    def source(self) -> Path:
        return self.project.source

    def runs(self) -> str:
        return runs_page(list_runs(self.source, ALL_RUNS), self.links)

    def run(self, run_ref: str) -> str:
        data = self.run_data.get(run_ref)
        if data is None:
            run = show_run(self.source, run_ref)
            data = RunData.of(run)
            if run.run_id == run_ref and (run.finished_at or run.interrupted):
                while len(self.run_data) >= CACHED_RUNS:
                    self.run_data.pop(next(iter(self.run_data)))
                self.run_data[run_ref] = data
        return run_page(data, reviews_for_prompts(self.source, set(data.prompts)), self.links)

    def compare(self, a_ref: str, b_ref: str) -> str:
        from promptci.compare import compare_runs

        a, b = show_run(self.source, a_ref), show_run(self.source, b_ref)
        comparison = compare_runs(a, b, revisions=(f"run {a.run_id}", f"run {b.run_id}"))
        prompts = {c.prompt for c in comparison.changes}
        return compare_page(comparison, reviews_for_prompts(self.source, prompts), self.links)

    def case(self, prompt: str, case_id: str) -> str:
        history = case_history(self.source, prompt, case_id)
        if not history:
            raise PromptCIError(f"no stored result of case {case_id!r} of prompt {prompt!r}")
        return case_page({(prompt, case_id): history}, {prompt: read_reviews(self.source, prompt)}, self.links,
                         (prompt, case_id))

    def cost(self, since: str) -> str:
        from promptci.cost.report import cost_tables

        tables, total = cost_tables(self.project, since, COST_DIMENSIONS)
        return cost_page(tables, total, since, self.links)

    def revisions(self) -> str:
        return revisions_page(self.links)

    def diff_state(self, job_id: str) -> dict[str, Any]:
        job = self.diffs.jobs.get(job_id)
        if job is None:
            raise PromptCIError(f"no diff {job_id!r} was started here")
        return job.to_json()

    # the write actions

    def start_diff(self, target: Mapping[str, Any]) -> dict[str, Any]:
        before, after = target.get("a"), target.get("b")
        if not isinstance(before, str) or not isinstance(after, str):
            raise PromptCIError("give revisions a and b (b empty: the working tree)")
        return {"job": self.diffs.start(before.strip(), after.strip() or None)}

    def review(self, target: Mapping[str, Any]) -> dict[str, Any]:
        run, result = self._target(target)
        verdict, note = target.get("verdict"), target.get("note") or ""
        if not isinstance(verdict, str) or not isinstance(note, str):
            raise PromptCIError("a review needs `verdict` (good or bad) and a text `note`")
        review = write_review(self.source, result.prompt, result.case_id, result.output, verdict, note,
                              model=result.model, run=run.run_id)
        return {"review": {"verdict": review.verdict, "note": review.note, "by": review.by, "at": review.at},
                "file": f"reviews/{result.prompt}.yaml"}

    def accept(self, target: Mapping[str, Any]) -> dict[str, Any]:
        """The reviewed-good output written into its golden, through promptci.accept."""
        from promptci.accept import accept

        run, result = self._target(target)
        review = read_reviews(self.source, result.prompt).get(result.case_id, {}).get(output_hash(result.output))
        if review is None or review.verdict != "good":
            raise PromptCIError(f"case {result.case_id!r}: mark this output good before accepting it")
        if any(ch.isspace() or ch in "()" for ch in result.case_id) or result.case_id in ("and", "or", "not"):
            raise PromptCIError(f"case {result.case_id!r}: its id cannot be selected alone; use `promptci accept -k`")
        golden = self.source / result.file
        chosen = accept(self.source, run.run_id, paths=(golden,), keyword=result.case_id, write=False)
        picked = {(a.file, a.case_id) for a in chosen.accepted}
        if picked != {(result.file, result.case_id)}:
            names = ", ".join(sorted(case for _, case in picked)) or "none"
            raise PromptCIError(f"case {result.case_id!r}: accept would change {names}; use `promptci accept -k`")
        done = accept(self.source, run.run_id, paths=(golden,), keyword=result.case_id, write=True)
        return {"diff": done.diff, "notes": list(done.notes), "file": result.file}

    def _target(self, target: Mapping[str, Any]) -> tuple[Run, CaseResult]:
        """The stored result a write names, checked to still hold the output the page showed."""
        run_id, prompt, case_id, model = (target.get(k) for k in ("run", "prompt", "case", "model"))
        repeat, digest = target.get("repeat"), target.get("hash")
        if not all(isinstance(v, str) for v in (run_id, prompt, case_id, model, digest)) or not isinstance(repeat, int):
            raise PromptCIError("the request must name run, prompt, case, model, repeat and hash")
        run = show_run(self.source, str(run_id))
        for result in run.results:
            if (result.prompt, result.case_id, result.model, result.repeat) == (prompt, case_id, model, repeat):
                if output_hash(result.output) != digest:
                    raise PromptCIError("that output is not the one stored: reload the page")
                return run, result
        raise PromptCIError(f"run {run.run_id} has no result {prompt}/{case_id} on {model} (repeat {repeat})")
