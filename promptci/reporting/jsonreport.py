"""The JSON results document (SPEC section 4): a Run to a versioned dict and back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO, get_args

from promptci.errors import PromptCIError
from promptci.jsontext import JSONTextError
from promptci.jsontext import read_json as read_json_text
from promptci.metrics import metric_table
from promptci.reporting.matrixview import matrix_to_dict
from promptci.reporting.sidebyside import prompt_sides
from promptci.reporting.stats import review_of
from promptci.types import (
    RESULTS_SCHEMA_VERSION,
    BrokenCase,
    CaseResult,
    GitInfo,
    Location,
    Review,
    Run,
    Status,
    Summary,
    summarize,
)
from promptci.verdict.gates import decision_of
from promptci.verdict.summary import case_rates, group_rows, prompt_reliability

SUMMARY_FIELDS = (
    "total", "passed", "failed", "errors", "skipped", "cost_usd", "input_tokens", "output_tokens",
    "cached", "saved_usd", "cost_unknown",
)


def summary_to_dict(summary: Summary) -> dict[str, Any]:
    return {name: getattr(summary, name) for name in SUMMARY_FIELDS}


def run_to_dict(run: Run) -> dict[str, Any]:
    """The document other tools rely on: SPEC 4's fields first, then what promptci adds."""
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "run_id": run.run_id,
        "git": {"commit": run.git.commit, "dirty": run.git.dirty, "branch": run.git.branch},
        "summary": summary_to_dict(run.summary),
        "results": [_result_dict(run, r) for r in run.results],
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "models": list(run.models),
        "interrupted": run.interrupted,
        "problems": list(run.problems),
        "broken": [b.to_dict() for b in run.broken],  # the cases --keep-going left out, as data
        "groups": [row.to_dict() for row in group_rows(run)],
        "metrics": [value.to_dict() for value in metric_table(run.results)],
        "prompt_sides": [sides.to_dict() for sides in prompt_sides(run)],
        # with --repeat: per case x model its pass rate, Wilson interval and flakiness (summary counts these
        # cases; `results` holds every sample)
        "cases": [rate.to_dict() for rate in case_rates(run)],
        # with --repeat: pass@k and pass^k per prompt x model (k = K), the mean over its cases
        "reliability": [row.to_dict() for row in prompt_reliability(run)],
        "config_hash": run.config_hash,
        "shard": run.shard,
        "notes": list(run.notes),
        "baseline_model": run.baseline_model,
        "matrix": matrix_to_dict(run),
        "verdict": decision_of(run).to_dict(),  # the exit code and every finding behind it
    }


def _result_dict(run: Run, result: CaseResult) -> dict[str, Any]:
    return result_dict(result, review_of(run, result))


def result_dict(result: CaseResult, review: Review | None) -> dict[str, Any]:
    """A result; with `review` when a human reviewed its output (verdict, note, by, at): a run's and a diff's."""
    if review is None:
        return result.to_dict()
    return {**result.to_dict(), "review": {"verdict": review.verdict, "note": review.note, "by": review.by,
                                           "at": review.at}}


def write_json(run: Run, stream: TextIO) -> None:
    json.dump(run_to_dict(run), stream, indent=2, ensure_ascii=False)
    stream.write("\n")


STATUSES: tuple[str, ...] = get_args(Status)


def _where(source: str | None) -> Location | None:
    return Location(source) if source else None


def _check_version(d: Mapping[str, Any], source: str | None) -> None:
    version = d.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PromptCIError(
            "not a promptci results document: it has no integer 'schema_version' "
            "(write one with `promptci run --format json`)",
            _where(source),
        )
    if version > RESULTS_SCHEMA_VERSION:
        raise PromptCIError(
            f"results schema_version {version} is newer than this promptci understands "
            f"(up to {RESULTS_SCHEMA_VERSION}); upgrade promptci to read it",
            _where(source),
        )
    if version < 1:
        raise PromptCIError(f"results schema_version {version} is not valid (expected 1..{RESULTS_SCHEMA_VERSION})",
                            _where(source))


def _summary_from_dict(d: Mapping[str, Any]) -> Summary:
    known = {k: d[k] for k in Summary.__dataclass_fields__ if k in d and d[k] is not None}
    return Summary(**known)


def _check_statuses(results: tuple[CaseResult, ...], source: str | None) -> None:
    """A status promptci does not know would be dropped from every count: refused, naming the result."""
    for index, result in enumerate(results):
        if result.status not in STATUSES:
            raise PromptCIError(f"result {index + 1} ({result.case_id!r}) has status {result.status!r}; a promptci "
                                f"result is one of {', '.join(STATUSES)}", _where(source))


def run_from_dict(d: Mapping[str, Any], source: str | None = None) -> Run:
    """Rebuild a Run from run_to_dict's output; `source` (a file name) goes into error messages."""
    if not isinstance(d, Mapping):
        raise PromptCIError("not a promptci results document: expected a JSON object on top", _where(source))
    _check_version(d, source)
    try:
        git = d.get("git") or {}
        results = tuple(CaseResult.from_dict(r) for r in d.get("results") or ())
        _check_statuses(results, source)
        summary = _summary_from_dict(d["summary"]) if d.get("summary") else summarize(results)
        return Run(
            run_id=str(d["run_id"]),
            started_at=d.get("started_at") or "",
            finished_at=d.get("finished_at"),
            git=GitInfo(commit=git.get("commit"), dirty=bool(git.get("dirty", False)), branch=git.get("branch")),
            models=tuple(d.get("models") or ()),
            results=results,
            summary=summary,
            interrupted=bool(d.get("interrupted", False)),
            problems=tuple(d.get("problems") or ()),
            broken=tuple(BrokenCase.from_dict(b) for b in d.get("broken") or ()),
            config_hash=d.get("config_hash"),
            shard=d.get("shard"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PromptCIError(f"malformed promptci results document: {type(exc).__name__}: {exc}",
                            _where(source)) from exc


def read_json(stream: TextIO, source: str | None = None) -> Run:
    try:
        data = read_json_text(stream.read())
    except UnicodeDecodeError as exc:
        raise PromptCIError(f"not valid UTF-8 text at byte {exc.start}", _where(source)) from None
    except JSONTextError as exc:
        cause = exc.__cause__
        line = cause.lineno if isinstance(cause, json.JSONDecodeError) else 0
        raise PromptCIError(f"not valid JSON: {exc}", Location(source, line) if source else None) from exc
    return run_from_dict(data, source)
