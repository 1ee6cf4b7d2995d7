"""`promptci run --baseline-model M --repeat auto` end to end: two seeded random `python:` models of one app, run
through the CLI by the sequential procedure of `diff --repeat auto` (the baseline is side A, the other model B)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gitrepo import commit, new_repo

from promptci.sequential import Design

# Each model passes a call with chance RATE, from its own seeded draws (-j 1 keeps the order). BROKEN names the
# case the candidate always fails; ERRORS makes every candidate call raise.
APP = """\
import random
_base, _cand, _same = random.Random(1), random.Random(2), random.Random(3)
BROKEN = {broken!r}
ERRORS = {errors!r}

def _answer(messages, draws, broken):
    name = messages[-1]["content"].strip()
    return f"Hello {{name}}!" if draws.random() < 0.8 and name != broken else "nope"

def base(messages, params):
    return _answer(messages, _base, "")

def same(messages, params):
    return _answer(messages, _same, "")

def cand(messages, params):
    if ERRORS:
        raise RuntimeError("the candidate is down")
    return _answer(messages, _cand, BROKEN)
"""
NAMES = ("Ada", "Bob", "Cy", "Di")
GOLDEN = "cases:\n" + "".join(f"  - id: {n.lower()}\n    input: {{name: {n}}}\n    expected: Hello {n}!\n"
                              for n in NAMES)
BASE, CAND = "python:seqapp:base", "python:seqapp:cand"


def _repo(tmp_path: Path, broken: str = "", errors: bool = False) -> Path:
    repo = new_repo(tmp_path / "seq")
    commit(repo, {".gitignore": ".promptci/\n", "promptci.yaml": f"models: ['{BASE}']\n",
                  "prompts/greet.txt": "{{ name }}\n", "goldens/greet.yaml": GOLDEN,
                  "seqapp.py": APP.format(broken=broken, errors=errors)}, "two models of one app")
    return repo


def _run(cli, repo: Path, *more: str):
    return cli("run", "--root", repo, "-m", BASE, "-m", CAND, "--baseline-model", BASE, "--repeat", "auto",
               "-j", "1", "--no-github", "-v", *more)


def _spent(output: str) -> tuple[int, int]:
    found = re.search(r"requests spent: A (\d+) \(\+\d+ cached\), B (\d+) \(\+\d+ cached\)", output)
    assert found, output
    return int(found.group(1)), int(found.group(2))


def test_a_candidate_worse_on_one_case_fails_naming_it(tmp_path: Path, cli) -> None:
    repo = _repo(tmp_path, broken="Bob")
    js, md = tmp_path / "run.json", tmp_path / "run.md"
    result = _run(cli, repo, "-o", str(js), "-o", str(md))
    assert result.exit_code == 1, result.output
    assert "goldens/greet.yaml::bob[greet, python:seqapp:cand] dropped: p-value" in md.read_text()
    assert "Bonferroni-adjusted 1/(E x w)" in md.read_text()
    assert re.search(r"stopped goldens/greet\.yaml::bob\[greet, python:seqapp:cand\]: drop after \d+ samples",
                     result.output), result.output
    assert "flagged: goldens/greet.yaml::bob[greet, python:seqapp:cand]" in " ".join(result.output.split())
    assert "sequential (--repeat auto) with 4 cases and alpha 0.05" in " ".join(result.output.split())
    assert re.search(r"python:seqapp:cand vs python:seqapp:base: goldens/greet\.yaml::bob\[greet, "
                     r"python:seqapp:cand\] dropped: p-value \S+, Bonferroni-adjusted 1/\(E x w\) \S+ <= alpha 0\.05",
                     " ".join(result.output.split())), result.output
    assert "method: anytime-valid sequential sign test" in " ".join(result.output.split())
    spent_a, spent_b = _spent(result.output)
    design = Design()
    assert 4 * design.first <= spent_b <= 4 * design.maximum and spent_a == spent_b
    data = json.loads(js.read_text())
    verdict = data["matrix"]["verdict"]
    assert verdict["method"].startswith("--repeat auto, per candidate: anytime-valid sequential sign test")
    assert [p["outcome"] for p in verdict["candidates"][0]["prompts"]] == ["worse"]
    tests = verdict["candidates"][0]["sequential"]  # the per-case columns of a diff's JSON report
    assert tests["adjustment"] == "Bonferroni-adjusted 1/(E x w)"
    flagged = [c for c in tests["cases"] if c["is_drop"]]
    assert [c["key"] for c in flagged] == ["goldens/greet.yaml::bob[greet, python:seqapp:cand]"]
    assert flagged[0]["adjusted"] <= 0.05 < min(c["adjusted"] for c in tests["cases"] if not c["is_drop"])
    upgrade = [f for f in data["verdict"]["findings"] if f["gate"] == "upgrade"]
    assert upgrade and "goldens/greet.yaml::bob[greet, python:seqapp:cand]" in upgrade[0]["subjects"]


def test_identical_models_pass_with_fewer_requests_than_fixed_k10(tmp_path: Path, cli) -> None:
    repo = _repo(tmp_path)
    result = _run(cli, repo)
    assert result.exit_code == 0, result.output
    spent_a, spent_b = _spent(result.output)
    assert spent_a + spent_b < 2 * len(NAMES) * 10, result.output
    assert "stopped goldens/greet.yaml::ada[greet, python:seqapp:cand]" in result.output
    assert "python:seqapp:cand vs python:seqapp:base: 1 prompt equal" in " ".join(result.output.split())


def test_errored_samples_leave_no_verdict(tmp_path: Path, cli) -> None:
    repo = _repo(tmp_path, errors=True)
    result = _run(cli, repo)
    assert result.exit_code == 3, result.output
    assert "not paired" in result.output and "errors" in result.output


def test_auto_repeat_needs_a_baseline_and_a_live_run(tmp_path: Path, cli) -> None:
    repo = _repo(tmp_path)
    result = cli("run", "--root", repo, "--repeat", "auto", "--no-github")
    assert result.exit_code == 2, result.output
    assert "--repeat auto samples where two sides disagree: add --baseline-model MODEL" in result.output
    result = cli("run", "--root", repo, "-m", BASE, "-m", CAND, "--baseline-model", BASE, "--repeat", "auto",
                 "--dry-run")
    assert result.exit_code == 2, result.output
    assert "give --repeat MAX for the most it could send" in result.output
    for bad in ("auto:2", "often"):
        result = cli("run", "--root", repo, "--repeat", bad, "--no-github")
        assert result.exit_code == 2, result.output
        assert f"--repeat {bad}" in result.output


def test_several_candidates_share_the_baseline_samples(tmp_path: Path, cli) -> None:
    """One family a candidate; the baseline's samples are drawn once and reused by the second candidate."""
    repo = _repo(tmp_path, broken="Bob")
    same = "python:seqapp:same"
    result = cli("run", "--root", repo, "-m", BASE, "-m", same, "-m", CAND, "--baseline-model", BASE, "--repeat",
                 "auto", "-j", "1", "--no-github", "-v")
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"{same} vs {BASE}: 1 prompt equal" in text
    assert f"flagged: goldens/greet.yaml::bob[greet, {CAND}]" in text
    spent = re.findall(r"(python:seqapp:\w+) vs python:seqapp:base: requests spent: A (\d+) \(\+\d+ cached\), "
                       r"B (\d+)", text)
    assert [model for model, _, _ in spent] == [same, CAND], text
    (_, first_a, first_b), (_, second_a, second_b) = spent
    assert int(first_a) == int(first_b) >= 4 * Design().first  # the first family draws the baseline's samples
    assert int(second_a) < int(second_b)  # the second reuses them, drawing only those it needs beyond


def _shown(cli, repo: Path, run_id: str, tmp_path: Path) -> dict:
    shown = tmp_path / f"show-{run_id}.json"
    result = cli("show", run_id, "--root", repo, "-o", str(shown))
    assert result.exit_code == 0, result.output
    return json.loads(shown.read_text())


def test_show_of_a_stored_auto_repeat_run_is_what_the_run_decided(tmp_path: Path, cli) -> None:
    """Every round is stored under the run's one id, with each candidate's sequential test: `show` gives every
    sample, the same matrix verdict and the same findings as the run printed, not a fixed-K retest of round 1."""
    repo = _repo(tmp_path, broken="Bob")
    js = tmp_path / "run.json"
    result = _run(cli, repo, "-o", str(js))
    assert result.exit_code == 1, result.output
    ran = json.loads(js.read_text())
    spent_a, spent_b = _spent(result.output)
    assert len(ran["results"]) == spent_a + spent_b > 4 * 2 * Design().first  # more than the first round
    shown = _shown(cli, repo, ran["run_id"], tmp_path)
    assert len(shown["results"]) == len(ran["results"])
    assert shown["cases"] == ran["cases"]
    assert shown["matrix"]["verdict"] == ran["matrix"]["verdict"]
    assert shown["verdict"]["exit_code"] == ran["verdict"]["exit_code"] == 1
    assert shown["verdict"]["findings"] == ran["verdict"]["findings"]
    runs = json.loads(cli("runs", "--root", repo, "--format", "json").output)
    assert [r["run_id"] for r in runs] == [ran["run_id"]]  # the rounds are one stored run
    assert runs[0]["summary"] == ran["summary"]


def test_a_stored_sequential_test_reads_back_and_a_damaged_one_is_left_out() -> None:
    """What add_run_notes keeps comes back whole; a value another promptci wrote is not read as a test (`show`
    then tests the stored samples anew)."""
    from promptci.stats import CaseTest, DropVerdict
    from promptci.store import stored_sequential

    test = DropVerdict((CaseTest("f::a[p, m]", 0.01, 0.02, True), CaseTest("f::b[p, m]", 0.5, 1.0, False)),
                       0.3, 0.6, 0.05, "a method", "Bonferroni-adjusted 1/(E x w)")
    assert stored_sequential(json.loads(json.dumps({"m": test.to_dict()}))) == {"m": test}
    for damaged in (None, [], {"m": None}, {"m": {"cases": [{"key": "x"}]}}, {"m": {**test.to_dict(), "alpha": "?"}}):
        assert stored_sequential(damaged) == {}
