"""`promptci diff --repeat auto` end to end: a seeded random `python:` app, each side's own copy, run through
the CLI. A real drop fails the diff with the case named; no change passes with fewer requests than fixed K = 10."""

from __future__ import annotations

import re
from pathlib import Path

from gitrepo import commit, new_repo

# Each call passes with chance 0.8, seeded: the same draws every run (-j 1 keeps the order); each side its own
# seed, so unchanged cases disagree between sides as real samples do. BROKEN names a case that always fails.
APP = """\
import random
_draws = random.Random({seed})
BROKEN = {broken!r}

def answer(messages, params):
    name = messages[-1]["content"].strip()
    lucky = _draws.random() < 0.8
    return f"Hello {{name}}!" if lucky and name != BROKEN else "nope"
"""
NAMES = ("Ada", "Bob", "Cy", "Di")
GOLDEN = "cases:\n" + "".join(f"  - id: {n.lower()}\n    input: {{name: {n}}}\n    expected: Hello {n}!\n"
                              for n in NAMES)


def _repo(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path / "seq")
    commit(repo, {".gitignore": ".promptci/\n", "promptci.yaml": "models: ['python:seqapp:answer']\n",
                  "prompts/greet.txt": "{{ name }}\n", "goldens/greet.yaml": GOLDEN,
                  "seqapp.py": APP.format(seed=1, broken="")}, "every case passes 80%")
    return repo


def _spent(output: str) -> tuple[int, int]:
    found = re.search(r"requests spent: A (\d+) \(\+\d+ cached\), B (\d+) \(\+\d+ cached\)", output)
    assert found, output
    return int(found.group(1)), int(found.group(2))


def test_auto_repeat_catches_a_real_drop_and_names_it(tmp_path: Path, cli) -> None:
    repo = _repo(tmp_path)
    commit(repo, {"seqapp.py": APP.format(seed=2, broken="Bob")}, "Bob breaks")
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--repeat", "auto", "-j", "1", "--no-github", "-v")
    assert result.exit_code == 1, result.output
    assert "bob" in result.output and "regressed" in result.output
    assert re.search(r"stopped goldens/greet\.yaml::bob\[greet, python:seqapp:answer\]: drop after \d+ samples",
                     result.output), result.output
    assert "sequential (--repeat auto) with 4 cases" in result.output
    spent_a, spent_b = _spent(result.output)
    assert spent_a == spent_b and spent_b <= 4 * 48


def test_auto_repeat_passes_an_unchanged_app_with_fewer_requests_than_fixed_k10(tmp_path: Path, cli) -> None:
    repo = _repo(tmp_path)
    commit(repo, {"seqapp.py": APP.format(seed=2, broken="")}, "new draws, the same 80% pass rate")
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--repeat", "auto:20", "-j", "1", "--no-github", "-v",
                 "--alpha", "0.1")
    assert result.exit_code == 0, result.output
    assert "does nothing without --repeat" not in result.output  # auto repeats: --alpha is its level
    assert "sequential (--repeat auto) with 4 cases and alpha 0.1" in result.output
    spent_a, spent_b = _spent(result.output)
    assert spent_a + spent_b < 2 * len(NAMES) * 10, result.output
    assert "stopped goldens/greet.yaml::ada" in result.output


def test_auto_repeat_bad_maximum_is_a_usage_error(tmp_path: Path, cli) -> None:
    repo = _repo(tmp_path)
    for bad in ("auto:2", "auto:x", "sometimes"):
        result = cli("diff", "HEAD", "--root", repo, "--repeat", bad, "--no-github")
        assert result.exit_code == 2, result.output
        assert f"--repeat {bad}" in result.output and "auto:MAX" in result.output


def test_auto_repeat_reports_name_the_adjustment_they_used(tmp_path: Path, cli) -> None:
    """The sequential test adjusts 1/E by its Bonferroni weight, not by Holm: every report's column says so."""
    import json

    repo = _repo(tmp_path)
    commit(repo, {"seqapp.py": APP.format(seed=2, broken="Bob")}, "Bob breaks")
    md, js = tmp_path / "diff.md", tmp_path / "diff.json"
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--repeat", "auto", "-j", "1", "--no-github",
                 "-o", str(md), "-o", str(js))
    assert result.exit_code == 1, result.output
    for text in (result.output, md.read_text()):
        assert "Holm" not in text, text
        assert "Bonferroni-adjusted 1/(E x w)" in text, text
    assert "| case | passed A -> B | p-value | Bonferroni-adjusted 1/(E x w) | drop |" in md.read_text()
    data = json.loads(js.read_text())
    assert data["verdict"]["adjustment"] == "Bonferroni-adjusted 1/(E x w)", data["verdict"]


def test_fixed_repeat_reports_keep_holm(tmp_path: Path, cli) -> None:
    import json

    repo = _repo(tmp_path)
    commit(repo, {"seqapp.py": APP.format(seed=2, broken="Bob")}, "Bob breaks")
    js = tmp_path / "diff.json"
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--repeat", "12", "-j", "1", "--no-github", "-o", str(js))
    assert "Holm-adjusted" in result.output, result.output
    assert json.loads(js.read_text())["verdict"]["adjustment"] == "Holm-adjusted"


def test_show_of_an_auto_repeat_side_holds_every_round(tmp_path: Path, cli) -> None:
    """Each side's rounds are one stored run: `show` of it has every sample the diff's verdict was drawn from."""
    import json

    repo = _repo(tmp_path)
    commit(repo, {"seqapp.py": APP.format(seed=2, broken="Bob")}, "Bob breaks")
    js = tmp_path / "diff.json"
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--repeat", "auto", "-j", "1", "--no-github", "-o", str(js))
    assert result.exit_code == 1, result.output
    data = json.loads(js.read_text())
    spent = _spent(result.output)
    runs = json.loads(cli("runs", "--root", repo, "--format", "json").output)
    assert sorted(r["command"] for r in runs) == ["diff A: HEAD~1 (--repeat auto)", "diff B: HEAD (--repeat auto)"]
    for side, fresh in zip(("before", "after"), spent, strict=True):
        shown = tmp_path / f"{side}.json"
        run_id = data[side]["run_id"]
        assert cli("show", run_id, "--root", repo, "-o", str(shown)).exit_code == 0
        stored = json.loads(shown.read_text())
        assert len(stored["results"]) == data[side]["samples"]["fresh"] + data[side]["samples"]["cached"] == fresh
        assert stored["summary"]["total"] == len(NAMES)
    assert data["reliability"]["k"] == 3  # pass@k and pass^k at the first look, the samples every case had
