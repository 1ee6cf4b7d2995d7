"""cli/reports.py: the -o files of a run and of a diff are written by one rule."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import pytest

from promptci.cli.reports import write_targets
from promptci.errors import ExitCode, PromptCIError


def test_one_unwritable_target_does_not_stop_the_others_and_its_error_is_raised_after(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    written: list[str] = []

    def write(report_format: str, stream: TextIO) -> None:
        written.append(report_format)
        stream.write(f"{report_format} report\n")

    with pytest.raises(PromptCIError, match=r"-o .*taken: cannot write the json report there") as raised:
        write_targets([("json", tmp_path / "taken"), ("markdown", tmp_path / "sub" / "d.md")], write)
    assert raised.value.exit_code == ExitCode.USAGE
    assert written == ["markdown"]
    assert (tmp_path / "sub" / "d.md").read_text() == "markdown report\n"
