"""Which judges of a run gated and which only reported, in words every report prints with the run's notes.

Pure: read from the scores (each judge's score carries its gate and why, set when the run was planned:
calibration.py), so a stored run (`show`) says the same."""

from __future__ import annotations

from collections.abc import Iterable

from promptci.types import CaseResult


def judge_notes(results: Iterable[CaseResult]) -> list[str]:
    """One line per judge (and gate): 'judge greet.llm_judge (openai:gpt-4o-mini): gated: calibrated (...)';
    a report-only judge's line names the outputs it failed, which did not fail the run."""
    failed: dict[str, list[str]] = {}
    judged: dict[str, int] = {}
    for result in results:
        for score in result.scores:
            if score.gate_note is None:
                continue
            judged[score.gate_note] = judged.get(score.gate_note, 0) + 1
            names = failed.setdefault(score.gate_note, [])
            if not score.gating and not score.passed:
                names.append(f"{result.case_id} [{result.model}]" + (f" (repeat {result.repeat})" if result.repeat
                                                                      else ""))
    lines = []
    for note, count in judged.items():
        misses = failed[note]
        lines.append(f"{note}; it failed {len(misses)} of {count} outputs: {', '.join(misses)}" if misses else note)
    return lines


def diff_judge_notes(before: Iterable[CaseResult], after: Iterable[CaseResult]) -> list[str]:
    """A diff's judge lines: side B's, then side A's that differ (each side's calibration files are its own)."""
    at_b = judge_notes(after)
    return [*at_b, *(f"at A: {note}" for note in judge_notes(before) if note not in at_b)]
