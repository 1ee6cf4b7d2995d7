"""The read-only views of the store: the list of runs, one stored run (the cost ledger: promptci.cost.report)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptci.errors import PromptCIError
from promptci.project import discover
from promptci.store import RunInfo
from promptci.storechoice import has_store, open_store
from promptci.types import Run


def list_runs(root: Path | None, limit: int = 20) -> list[RunInfo]:
    project = discover(root)
    if not has_store(project):
        return []
    with open_store(project, readonly=True) as store:
        return store.list_runs(limit)


def show_run(root: Path | None, run_ref: str) -> Run:
    """A stored run by id, unique id prefix, or `last` (the last plain `promptci run`, not a diff side or a
    bisect step); an unknown one is a usage error naming the latest."""
    project = discover(root)
    if not has_store(project):
        raise PromptCIError(f"no runs stored yet (no {project.shown(project.db_path)}): run `promptci run` first")
    with open_store(project, readonly=True) as store:
        found = store.last_run(plain=True) if run_ref == "last" else store.load_run(run_ref)
        latest = store.list_runs(5) if found is None else []
    if found is not None:
        return found
    if not latest:
        raise PromptCIError("no runs stored yet: run `promptci run` first")
    listed = ", ".join(f"{info.run_id} ({info.command or 'run'}, {info.started_at[:16].replace('T', ' ')})"
                       for info in latest)
    if run_ref == "last":
        raise PromptCIError(f"no plain `promptci run` stored yet (`last` is the last one); name one of the latest "
                            f"by its id: {listed} (`promptci runs` lists more)")
    raise PromptCIError(f"no stored run {run_ref!r}; the latest are: {listed} (`promptci runs` lists more)")


def run_info_to_dict(info: RunInfo) -> dict[str, Any]:
    from promptci.reporting.jsonreport import summary_to_dict

    return {
        "run_id": info.run_id, "started_at": info.started_at, "finished_at": info.finished_at,
        "git": {"commit": info.commit, "dirty": info.dirty}, "models": list(info.models),
        "summary": summary_to_dict(info.summary), "interrupted": info.interrupted, "command": info.command,
    }


@dataclass(frozen=True)
class CaseSample:
    """One stored result of a case, with the run it belongs to (for a case's history across commits)."""

    run_id: str
    started_at: str
    commit: str | None
    dirty: bool
    branch: str | None
    model: str
    repeat: int
    status: str
    output: str | None


def case_history(root: Path | None, prompt: str, case_id: str) -> list[CaseSample]:
    """Every stored result of one case (all models and repeats), oldest run first. The result's JSON is read
    here, not in SQL, so the query is the same for every store."""
    project = discover(root)
    if not has_store(project):
        return []
    with open_store(project, readonly=True) as store:
        rows = store._read(
            "SELECT runs.id, runs.started_at, runs.git_commit, runs.git_dirty, runs.git_branch, results.model,"
            " results.status, results.data FROM results JOIN runs ON runs.id = results.run_id"
            " WHERE results.prompt = ? AND results.case_id = ?"
            " ORDER BY runs.started_at, runs.rowid, results.position, results.id", (prompt, case_id))
    samples = []
    for r in rows:
        try:
            data = json.loads(r[7])
        except (TypeError, ValueError):
            continue  # a damaged row: the store names those when it loads a run
        if not isinstance(data, dict):
            continue
        repeat, output = data.get("repeat"), data.get("output")
        samples.append(CaseSample(run_id=r[0], started_at=r[1], commit=r[2], dirty=bool(r[3]), branch=r[4],
                                  model=r[5], repeat=repeat if isinstance(repeat, int) else 0, status=r[6],
                                  output=output if isinstance(output, str) else None))
    return samples
