"""Shards back into one run: `promptci merge FILES...` joins the JSON results of `run --shard I/N` jobs,
refusing shards that ran different revisions or configurations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from promptci.errors import PromptCIError
from promptci.types import CaseResult, Location, Run, summarize

if TYPE_CHECKING:
    from promptci.project import Project


def _shard_count(run: Run) -> int | None:
    return int(run.shard.split("/")[1]) if run.shard else None


def _check_compatible(runs: Sequence[tuple[str, Run]]) -> None:
    if len(runs) > 1:
        whole = [name for name, run in runs if run.shard is None]
        if whole:
            raise PromptCIError(f"cannot merge: {whole[0]} is a whole run, not a shard; merge the JSON results of "
                                "`promptci run --shard I/N` jobs", Location(whole[0]))
    first_name, first = runs[0]
    for name, other in runs[1:]:
        for what, mine, theirs in (
            ("git commit", first.git.commit, other.git.commit),
            ("uncommitted changes", first.git.dirty, other.git.dirty),
            ("config (promptci.yaml and run options)", first.config_hash, other.config_hash),
            ("shard count", _shard_count(first), _shard_count(other)),
        ):
            if mine != theirs:
                raise PromptCIError(
                    f"cannot merge: {name} has {what} {theirs!r} but {first_name} has {mine!r}; "
                    "merge only the shards of one run (same commit, same promptci.yaml and options)",
                    Location(name))
    seen: dict[str, str] = {}
    for name, run in runs:
        if run.shard is not None and run.shard in seen:
            raise PromptCIError(f"cannot merge: shard {run.shard} is given twice ({seen[run.shard]} and {name})",
                                Location(name))
        if run.shard is not None:
            seen[run.shard] = name


def missing_shards(runs: Sequence[Run]) -> list[str]:
    """The shards I/N of a sharded run that are not among `runs`."""
    count = _shard_count(runs[0])
    if count is None:
        return []
    present = {run.shard for run in runs}
    return [f"{i}/{count}" for i in range(1, count + 1) if f"{i}/{count}" not in present]


def _models(runs: Sequence[Run]) -> tuple[str, ...]:
    models: list[str] = []
    for run in runs:
        models += [m for m in run.models if m not in models]
    return tuple(models)


def merge_runs(runs: Sequence[tuple[str, Run]], run_id: str | None = None) -> Run:
    """One Run from shards (file name, Run): results in golden order, totals recomputed."""
    if not runs:
        raise PromptCIError("promptci merge needs at least one JSON results file (from `run --format json`)")
    _check_compatible(runs)
    parts = [run for _, run in runs]
    models = _models(parts)
    model_rank = {m: i for i, m in enumerate(models)}
    results: list[CaseResult] = sorted(
        (r for run in parts for r in run.results),
        key=lambda r: (r.file, r.line, r.case_id, model_rank.get(r.model, 0), r.repeat))
    problems = [p for run in parts for p in run.problems]  # a missing shard is the verdict's (verdict/gates.py)
    finished = [run.finished_at for run in parts if run.finished_at]
    return Run(
        run_id=run_id or uuid.uuid4().hex[:12], started_at=min(run.started_at for run in parts),
        finished_at=max(finished) if finished else None, git=parts[0].git, models=models,
        results=tuple(results), summary=summarize(results), interrupted=any(run.interrupted for run in parts),
        problems=tuple(dict.fromkeys(problems)), config_hash=parts[0].config_hash, shard=None,
        broken=tuple(dict.fromkeys(b for run in parts for b in run.broken)),
    )


def read_shards(paths: Sequence[Path]) -> list[tuple[str, Run]]:
    from promptci.reporting.jsonreport import read_json

    shards = []
    for path in paths:
        try:
            with path.open(encoding="utf-8") as stream:
                shards.append((str(path), read_json(stream, str(path))))
        except OSError as exc:
            raise PromptCIError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return shards


def store_run(project: Project, run: Run) -> None:
    """Write a merged run into the project's store, so `show`, `runs` and later diffs see it."""
    from promptci.storechoice import open_store

    store = open_store(project)
    try:
        store.start_run(run.run_id, run.started_at, run.git, run.models,
                        {"merged": True, "config_hash": run.config_hash}, command="merge")
        for position, result in enumerate(run.results):
            store.add_result(run.run_id, result, position=position)
        store.finish_run(run.run_id, run.finished_at or run.started_at, run.summary, run.interrupted,
                         run.problems, run.broken)
        if run.decision is not None:
            store.add_run_notes(run.run_id, run.notes, run.baseline_model, run.decision.to_dict())
        not_stored = store.unstored.error()
        if not_stored is not None:
            raise not_stored
    finally:
        store.close()
