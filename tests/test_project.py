"""Project: the source (prompts, goldens, recordings, code) apart from the state (.promptci/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptci.errors import ExitCode, PromptCIError
from promptci.project import Project, discover


def test_source_and_state_are_apart(tmp_path: Path) -> None:
    here = Project.at(tmp_path)
    assert here.db_path == tmp_path.resolve() / ".promptci" / "promptci.db"
    assert here.recordings_dir == tmp_path.resolve() / "recordings"
    there = here.with_source(tmp_path / "rev")
    assert there.prompts_dir == (tmp_path / "rev").resolve() / "prompts" and there.db_path == here.db_path
    assert there.shown(there.db_path) == ".promptci/promptci.db"


def test_discovery_walks_up_and_a_missing_project_is_a_usage_error(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "proj" / "prompts" / "deep").mkdir(parents=True)
    (tmp_path / "proj" / "goldens").mkdir()
    monkeypatch.chdir(tmp_path / "proj" / "prompts" / "deep")
    assert discover().source == (tmp_path / "proj").resolve()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PromptCIError) as caught:
        discover()
    assert caught.value.exit_code == ExitCode.USAGE and "promptci init" in str(caught.value)
    with pytest.raises(PromptCIError, match="no such directory"):
        discover(tmp_path / "absent")
