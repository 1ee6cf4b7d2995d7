"""Power you can see (issue 19): what a fixed --repeat K detects, exactly for one case and by a seeded
simulation for the suite, checked against an independent numpy simulation; shown by `run --dry-run --repeat K`
and by every repeated diff."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from gitrepo import commit
from test_diff_sequential import _repo

from promptci.stats import (
    SUITE_WEIGHT,
    CaseCounts,
    boschloo_drop_p,
    case_drop_power,
    cmh_drop_p,
    power_line,
    smallest_case_drop,
    smallest_suite_drop,
    suite_drop_power,
)


def test_case_power_matches_a_simulation_of_its_test() -> None:
    cases, k, drop, trials = 20, 10, 0.8, 4000
    rng = np.random.default_rng(19)
    a, b = rng.binomial(k, 0.9, trials), rng.binomial(k, 0.1, trials)
    level = 0.05 * (1 - SUITE_WEIGHT) / cases
    simulated = float(np.mean([boschloo_drop_p(int(x), k, int(y), k) <= level for x, y in zip(a, b, strict=True)]))
    exact = case_drop_power(cases, k, drop)
    assert abs(exact - simulated) <= 4 * math.sqrt(exact * (1 - exact) / trials)


def test_smallest_case_drop_is_the_first_with_80_percent() -> None:
    drop = smallest_case_drop(20, 10)
    assert drop is not None
    assert case_drop_power(20, 10, drop) >= 0.8 > case_drop_power(20, 10, round(drop - 0.05, 2))
    assert smallest_case_drop(20, 3) is None  # K = 3 cannot flag one case among 20 (the K note says K >= 4)


def test_suite_power_matches_an_independent_simulation() -> None:
    cases, k, drop, trials = 20, 10, 0.08, 1000
    rng = np.random.default_rng(7)
    caught = 0
    for _ in range(trials):
        a, b = rng.binomial(k, 0.9, cases), rng.binomial(k, 0.9 - drop, cases)
        caught += cmh_drop_p([CaseCounts(str(i), int(x), k, int(y), k) for i, (x, y) in
                              enumerate(zip(a, b, strict=True))]) <= 0.05 * SUITE_WEIGHT
    mine = suite_drop_power(cases, k, drop, trials=1000)
    assert abs(mine - caught / trials) <= 4 * math.sqrt(0.25 / trials)
    found = smallest_suite_drop(cases, k)
    assert found is not None and suite_drop_power(cases, k, found) >= 0.8


def test_power_line_says_what_it_assumed() -> None:
    line = power_line(20, 10)
    assert re.fullmatch(r"power: with 20 cases, K = 10 and alpha 0.05, for cases passing 90% at A, 80% power to "
                        r"flag a drop of \d+ points on one case \(exact, Boschloo at its Holm share\) and a drop "
                        r"of \d+ points on every case \(CMH, simulated, seed 19\)", line), line
    assert "not computed above K = 50" in power_line(20, 200)


def test_dry_run_states_the_power_of_its_repeat(cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    result = cli("run", "--root", repo, "--dry-run", "--repeat", "10")
    assert result.exit_code == 0, result.output
    assert "power: with 4 cases, K = 10 and alpha 0.05" in result.output


def test_repeated_diff_states_its_power(cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    commit(repo, {"prompts/greet.txt": "{{ name }}\n\n"}, "an edit the app does not see")
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--repeat", "6", "--no-github")
    assert result.exit_code == 0, result.output
    assert "power: with 4 cases, K = 6 and alpha 0.05" in result.output


def test_repeated_run_states_its_power_in_every_report(cli, tmp_path: Path) -> None:
    import json

    repo = _repo(tmp_path)
    md, js = tmp_path / "run.md", tmp_path / "run.json"
    result = cli("run", "--root", repo, "--repeat", "6", "-j", "1", "--no-github", "-o", str(md), "-o", str(js))
    assert result.exit_code in (0, 1), result.output
    line = power_line(4, 6)
    assert line.startswith("power: with 4 cases, K = 6 and alpha 0.05")
    assert line in " ".join(result.output.split()), result.output  # the terminal may wrap it
    assert line in md.read_text()
    assert line in json.loads(js.read_text())["notes"]


def test_single_sample_run_states_no_power(cli, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    result = cli("run", "--root", repo, "-j", "1", "--no-github")
    assert "power:" not in result.output, result.output
