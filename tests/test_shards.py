"""`run --shard I/N` and `promptci merge`: shards cover every case once, merge back to the unsharded run,
and refuse shards of different revisions or configs."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from promptci.errors import PromptCIError
from promptci.selection import parse_shard, shard_of

CASES = 23


def golden(count: int, fail: tuple[int, ...] = ()) -> str:
    lines = ["cases:"]
    for i in range(count):
        expected = "nope" if i in fail else f"Hello n{i}!"
        lines += [f"  - id: c{i:02d}", f"    input: {{name: n{i}}}", f"    expected: {expected}"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def suite(project) -> Path:
    return project({"prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": golden(CASES, fail=(3, 17)),
                    "prompts/bye.txt": "Bye {{ name }}!", "goldens/bye.yaml": golden(5).replace("Hello", "Bye"),
                    "promptci.yaml": "models: [echo]\n"})


def keys(document: dict) -> list[tuple]:
    return sorted((r["prompt"], r["case_id"], r["model"], r["repeat"], r["status"], r["output"])
                  for r in document["results"])


def run_json(cli, root: Path, *args: str) -> tuple[int, dict]:
    result = cli("run", "--root", root, "--format", "json", "--no-github", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def test_parse_shard_accepts_i_of_n_and_names_the_fix() -> None:
    assert parse_shard("2/5") == (2, 5)
    for bad in ("0/3", "4/3", "1", "a/b", "1/0", "-1/2"):
        with pytest.raises(PromptCIError, match="expected I/N"):
            parse_shard(bad)


def test_shard_of_is_pinned() -> None:
    """A change of hash would reshuffle every CI matrix and every cached shard: these values must not move."""
    assert [shard_of("greet", f"c{i}", 4) for i in range(8)] == [3, 4, 3, 3, 2, 2, 2, 2]
    assert [shard_of("route", "adt-a01", n) for n in range(1, 8)] == [1, 1, 1, 1, 5, 1, 4]
    assert shard_of("a", "bc", 97) != shard_of("ab", "c", 97)  # the separator keeps prompt and id apart


def test_shards_spread_evenly() -> None:
    for count in (2, 3, 5, 7):
        spread = Counter(shard_of("p", f"case-{i}", count) for i in range(7000))
        assert set(spread) == set(range(1, count + 1))
        expected = 7000 / count
        assert all(abs(n - expected) < 0.1 * expected for n in spread.values()), spread


@pytest.mark.parametrize("count", range(1, 8))
def test_shards_cover_every_case_exactly_once(cli, suite: Path, count: int) -> None:
    _, whole = run_json(cli, suite)
    seen: list[tuple] = []
    for index in range(1, count + 1):
        _, part = run_json(cli, suite, "--shard", f"{index}/{count}")
        assert part["shard"] == f"{index}/{count}"
        seen += keys(part)
    assert sorted(seen) == keys(whole)
    assert len(seen) == CASES + 5


def test_adding_a_case_moves_no_other_case(cli, suite: Path) -> None:
    before = {r["case_id"] for r in run_json(cli, suite, "--shard", "2/3")[1]["results"] if r["prompt"] == "greet"}
    (suite / "goldens" / "greet.yaml").write_text(golden(CASES + 10, fail=(3, 17)))
    after = {r["case_id"] for r in run_json(cli, suite, "--shard", "2/3")[1]["results"] if r["prompt"] == "greet"}
    assert before <= after and all(int(c[1:]) >= CASES for c in after - before)


def shard_files(cli, root: Path, tmp_path: Path, count: int) -> list[Path]:
    files = []
    for index in range(1, count + 1):
        path = tmp_path / f"shard-{index}.json"
        result = cli("run", "--root", root, "--no-github", "--shard", f"{index}/{count}", "-q", "-o", f"json={path}")
        assert result.exit_code in (0, 1), result.output
        files.append(path)
    return files


def test_merge_gives_back_the_unsharded_run_and_gates_it(cli, suite: Path, tmp_path: Path) -> None:
    code, whole = run_json(cli, suite)
    assert code == 1
    files = shard_files(cli, suite, tmp_path, 3)
    merged = cli("merge", "--root", suite, "--no-github", "--format", "json", *files)
    assert merged.exit_code == 1, merged.output  # two cases fail: the gate sees them after the merge
    document = json.loads(merged.stdout)
    assert keys(document) == keys(whole)
    assert document["summary"]["total"] == whole["summary"]["total"]
    assert document["summary"]["failed"] == 2 and document["shard"] is None
    shown = cli("show", document["run_id"], "--root", suite, "--format", "junit")
    assert shown.exit_code == 0 and 'failures="2"' in shown.stdout


def test_merge_of_green_shards_exits_0(cli, project, tmp_path: Path) -> None:
    root = project({"prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": golden(9),
                    "promptci.yaml": "models: [echo]\n"})
    merged = cli("merge", "--root", root, "--no-github", *shard_files(cli, root, tmp_path, 2))
    assert merged.exit_code == 0, merged.output
    assert "9 passed" in merged.output


def test_merge_names_a_missing_shard(cli, suite: Path, tmp_path: Path) -> None:
    files = shard_files(cli, suite, tmp_path, 3)
    merged = cli("merge", "--root", suite, "--no-github", "--format", "json", files[0], files[2])
    verdict = json.loads(merged.stdout)["verdict"]
    assert merged.exit_code == verdict["exit_code"] == 1, merged.output  # a failing case: the regression wins
    shards = [f for f in verdict["findings"] if f["gate"] == "shards"]
    assert shards[0]["exit_code"] == 3 and shards[0]["subjects"] == ["2/3"]
    assert "merged without shard(s) 2/3" in merged.stderr and "--allow-missing-shards" in merged.stderr


def test_merge_refuses_shards_of_different_configs(cli, suite: Path, tmp_path: Path) -> None:
    first = shard_files(cli, suite, tmp_path, 2)[0]
    (suite / "promptci.yaml").write_text("models: [echo]\nconcurrency: 3\n")
    second = tmp_path / "other.json"
    assert cli("run", "--root", suite, "--no-github", "--shard", "2/2", "-q", "-o", f"json={second}").exit_code == 1
    merged = cli("merge", "--root", suite, *[first, second])
    assert merged.exit_code == 2
    assert "cannot merge" in merged.output and "config" in merged.output and str(second) in merged.output


def test_merge_refuses_shards_of_different_commits(cli, suite: Path, tmp_path: Path) -> None:
    files = shard_files(cli, suite, tmp_path, 2)
    document = json.loads(files[1].read_text())
    document["git"]["commit"] = "0" * 40
    files[1].write_text(json.dumps(document))
    merged = cli("merge", "--root", suite, *files)
    assert merged.exit_code == 2 and "git commit" in merged.output


def test_merge_refuses_the_same_shard_twice_and_bad_files(cli, suite: Path, tmp_path: Path) -> None:
    files = shard_files(cli, suite, tmp_path, 2)
    twice = cli("merge", "--root", suite, files[0], files[0])
    assert twice.exit_code == 2 and "shard 1/2 is given twice" in twice.output
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    bad = cli("merge", "--root", suite, broken)
    assert bad.exit_code == 2 and f"{broken}:1" in bad.output
    missing = cli("merge", "--root", suite, tmp_path / "nope.json")
    assert missing.exit_code == 2 and "nope.json" in missing.output


def test_shard_of_an_empty_share_is_an_empty_green_run(cli, project) -> None:
    root = project({"prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": golden(1),
                    "promptci.yaml": "models: [echo]\n"})
    owner = shard_of("greet", "c00", 7)
    empty = 1 if owner != 1 else 2
    result = cli("run", "--root", root, "--no-github", "--shard", f"{empty}/7")
    assert result.exit_code == 0, result.output


def test_bad_shard_option_exits_2(cli, suite: Path) -> None:
    result = cli("run", "--root", suite, "--shard", "3/2")
    assert result.exit_code == 2 and "--shard '3/2'" in result.output


def test_git_commit_is_carried(cli, suite: Path, tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=suite, check=True)
    subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qam", "x", "--allow-empty"],
                   cwd=suite, check=True)
    document = run_json(cli, suite, "--shard", "1/2")[1]
    assert document["git"]["commit"] and len(document["config_hash"]) == 16


def test_merge_refuses_whole_runs_mixed_in(cli, suite: Path, tmp_path: Path) -> None:
    files = shard_files(cli, suite, tmp_path, 2)
    whole = tmp_path / "whole.json"
    cli("run", "--root", suite, "--no-github", "-q", "-o", f"json={whole}")
    merged = cli("merge", "--root", suite, files[0], whole)
    assert merged.exit_code == 2 and "is a whole run, not a shard" in merged.output
    alone = cli("merge", "--root", suite, "--no-github", "--format", "json", whole)  # one file: stored as it is
    assert alone.exit_code == 1 and json.loads(alone.stdout)["summary"]["total"] == CASES + 5
