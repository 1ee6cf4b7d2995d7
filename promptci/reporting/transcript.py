"""A conversation's transcript (CaseResult.transcript) as lines of text, for every report: who spoke at which
turn, tool calls marked `→ call`, mock answers `← mock`, an unanswered call `✗`. Pure: the writers escape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

COMPACT_CHARS = 100  # a line of the terminal's compact transcript is cut here


def transcript_lines(transcript: Sequence[Mapping[str, Any]], *, limit: int | None = None) -> list[str]:
    """One line per message; with `limit`, each text cut to that many characters and kept on one line."""

    def clip(text: Any) -> str:
        shown = str(text if text is not None else "")
        if limit is None:
            return shown
        shown = shown.replace("\n", "\\n")
        return shown if len(shown) <= limit else shown[:limit] + "…"

    lines: list[str] = []
    for turn in transcript:
        number = turn.get("turn", "?")
        if turn.get("user"):
            lines.append(f"[{number}] user: {clip(turn['user'])}")
        for call in turn.get("tool_calls") or ():
            lines.append(f"[{number}] → call {call.get('name')}({clip(call.get('arguments'))})")
            if call.get("mock") is None:
                lines.append(f"[{number}] ✗ no mock answers this call: the case failed closed here")
            else:
                lines.append(f"[{number}] ← mock {call['mock']}: {clip(call.get('result'))}")
        if turn.get("text"):
            lines.append(f"[{number}] assistant: {clip(turn['text'])}")
    return lines
