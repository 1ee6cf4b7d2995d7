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


def test_a_writer_failing_midway_keeps_the_previous_report_whole_and_leaves_no_temp_file(tmp_path: Path) -> None:
    import errno

    previous = tmp_path / "report.json"
    previous.write_text('{"previous": true}\n')

    def write_then_fill_the_disk(report_format: str, stream: TextIO) -> None:
        stream.write("{" * 10_000)
        stream.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(PromptCIError, match="No space left on device") as raised:
        write_targets([("json", previous)], write_then_fill_the_disk)
    assert raised.value.exit_code == ExitCode.INTERNAL_ERROR
    assert previous.read_text() == '{"previous": true}\n'
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]


def test_a_report_replaces_the_previous_one_whole_with_ordinary_permissions(tmp_path: Path) -> None:
    import os
    import stat

    target = tmp_path / "report.md"
    target.write_text("old\n")
    write_targets([("markdown", target)], lambda report_format, stream: stream.write("new\n"))
    assert target.read_text() == "new\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [path.name for path in tmp_path.iterdir()] == ["report.md"]
