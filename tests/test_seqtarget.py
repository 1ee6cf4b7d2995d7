"""`--repeat auto --detect DROP` (issue 19): the sequential design chosen from a target drop by simulating the
library's own procedure, seeded; the choice stated in every report; unreachable targets and bad input refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from gitrepo import commit
from test_diff_sequential import APP
from test_diff_sequential import _repo as diff_repo
from test_run_sequential import BASE, CAND
from test_run_sequential import _repo as run_repo

from promptci.errors import PromptCIError
from promptci.seqtarget import MAXIMA, TARGET_POWER, choose_design, detect_power, has_power
from promptci.sequential import Design, flip_samples_needed


def test_the_chosen_design_is_the_smallest_maximum_with_80_percent_power() -> None:
    choice = choose_design(replace(Design(), maximum=128), 4, 0.5)
    design = choice.design
    assert choice.power == detect_power(design, 4, 0.5) >= TARGET_POWER
    assert design.maximum in MAXIMA
    smaller = [m for m in MAXIMA if design.first <= m < design.maximum]
    if smaller:  # the grid point below it does not reach the target
        assert not has_power(replace(design, maximum=smaller[-1]), 4, 0.5)
    assert choose_design(replace(Design(), maximum=128), 4, 0.5) == choice  # seeded: the same every time


def test_a_flip_is_always_caught_once_max_reaches_its_samples() -> None:
    """An independent check of the simulation: B never passes, so after flip_samples_needed straight wins the
    case's e-value is over its threshold whatever A drew; with A at 90% nearly every pair is a win."""
    design = replace(Design(), maximum=64)
    needed = flip_samples_needed(4, design)
    assert needed is not None and needed < 64
    assert detect_power(design, 4, 0.9) >= 0.99


def test_has_power_agrees_with_the_full_simulation() -> None:
    for maximum in (8, 16, 48):
        design = replace(Design(), maximum=maximum)
        assert has_power(design, 4, 0.6) == (detect_power(design, 4, 0.6) >= TARGET_POWER)


def test_an_unreachable_target_is_refused_with_the_fix() -> None:
    with pytest.raises(PromptCIError) as raised:
        choose_design(replace(Design(), maximum=16), 4, 0.2)
    message = str(raised.value)
    assert "--detect 0.2: with 4 cases and alpha 0.05, even --repeat auto:16" in message
    assert "allow more samples (--repeat auto:MAX" in message and raised.value.exit_code == 2


def test_diff_states_the_chosen_design_in_its_reports(tmp_path: Path, cli) -> None:
    repo = diff_repo(tmp_path)
    commit(repo, {"seqapp.py": APP.format(seed=2, broken="Bob")}, "Bob breaks")
    md, js = tmp_path / "diff.md", tmp_path / "diff.json"
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--repeat", "auto", "--detect", "0.5", "-j", "1",
                 "--no-github", "-o", str(md), "-o", str(js))
    assert result.exit_code == 1, result.output
    line = choose_design(replace(Design(), maximum=128), 4, 0.5).line()
    assert line.startswith("--repeat auto --detect 0.5: design first")
    assert line in " ".join(result.output.split())
    assert line in md.read_text()
    assert line in json.loads(js.read_text())["decision"]["notes"]


def test_run_states_the_chosen_design(tmp_path: Path, cli) -> None:
    repo = run_repo(tmp_path)
    js = tmp_path / "run.json"
    result = cli("run", "--root", repo, "-m", BASE, "-m", CAND, "--baseline-model", BASE, "--repeat", "auto",
                 "--detect", "0.5", "-j", "1", "--no-github", "-o", str(js))
    assert result.exit_code == 0, result.output
    line = choose_design(replace(Design(), maximum=128), 4, 0.5).line()
    assert line in json.loads(js.read_text())["notes"]
    assert line in " ".join(result.output.split())


@pytest.mark.parametrize("command", ["run", "diff"])
def test_bad_detect_is_a_usage_error(tmp_path: Path, cli, command: str) -> None:
    repo = run_repo(tmp_path)
    head = ["diff", "HEAD"] if command == "diff" else ["run", "-m", BASE, "-m", CAND, "--baseline-model", BASE]
    for args, expected in ((["--repeat", "auto", "--detect", "1.5"], "--detect 1.5: give the drop in pass rate"),
                           (["--repeat", "auto", "--detect", "0"], "--detect 0: give the drop in pass rate"),
                           (["--repeat", "5", "--detect", "0.3"], "--detect 0.3 chooses the sequential design of "
                                                                  "--repeat auto: add --repeat auto"),
                           (["--detect", "0.3"], "add --repeat auto"),
                           (["--repeat", "auto:16", "--detect", "0.2"], "even --repeat auto:16")):
        result = cli(*head, "--root", repo, *args, "--no-github")
        assert result.exit_code == 2, (args, result.output)
        assert expected in " ".join(result.output.split()), (args, result.output)
