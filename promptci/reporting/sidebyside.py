"""Prompts side by side: a golden file that names several prompts (`prompt: [v1, v2]`) runs the same cases
on each, so the reports put those prompts in columns, per model, the way a matrix puts models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from promptci.reporting.stats import format_cost, format_ms, format_rate, format_score
from promptci.types import CaseResult, Run
from promptci.verdict.summary import GroupRow, build_row


@dataclass(frozen=True)
class PromptSides:
    """One golden file's prompts on its cases: a row per (model, prompt)."""

    file: str
    prompts: tuple[str, ...]  # in the order the run met them: the file's `prompt:` order
    models: tuple[str, ...]
    cases: int  # distinct case ids of the file in the run
    rows: tuple[GroupRow, ...]

    def row(self, model: str, prompt: str) -> GroupRow | None:
        return next((r for r in self.rows if r.model == model and r.prompt == prompt), None)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "prompts": list(self.prompts), "models": list(self.models),
                "cases": self.cases, "rows": [row.to_dict() for row in self.rows]}


def prompt_sides(run: Run) -> list[PromptSides]:
    """Every golden file of the run whose results come from more than one prompt, sorted by file."""
    by_file: dict[str, list[CaseResult]] = {}
    for result in run.results:
        by_file.setdefault(result.file, []).append(result)
    sides = []
    for file, results in sorted(by_file.items()):
        prompts = tuple(dict.fromkeys(r.prompt for r in results))
        if len(prompts) < 2:
            continue
        present = {r.model for r in results}
        models = tuple(m for m in dict.fromkeys((*run.models, *(r.model for r in results))) if m in present)
        cells: dict[tuple[str, str], list[CaseResult]] = {}
        for result in results:
            cells.setdefault((result.model, result.prompt), []).append(result)
        rows = tuple(build_row(prompt, model, cells[(model, prompt)]) for model in models for prompt in prompts
                     if (model, prompt) in cells)
        sides.append(PromptSides(file, prompts, models, len({r.case_id for r in results}), rows))
    return sides


# The measures a side-by-side table shows for each prompt, as plain text.
MEASURES: tuple[tuple[str, Callable[[GroupRow], str]], ...] = (
    ("passed", lambda row: f"{row.passed}/{row.total - row.skipped} ({format_rate(row.pass_rate)})"),
    ("score", lambda row: format_score(row.mean_score)),
    ("cost", lambda row: format_cost(row.cost_usd, row.cost_unknown)),
    ("latency p50/p95", lambda row: f"{format_ms(row.latency_p50_ms)}/{format_ms(row.latency_p95_ms)}"),
)


def measure_cells(sides: PromptSides, model: str) -> list[tuple[str, list[str]]]:
    """(measure, one cell per prompt) for one model; "-" where a prompt has no result on it."""
    cells = []
    for name, shown in MEASURES:
        cells.append((name, [shown(row) if (row := sides.row(model, prompt)) else "-" for prompt in sides.prompts]))
    return cells
