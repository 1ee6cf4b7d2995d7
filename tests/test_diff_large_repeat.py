"""`diff --repeat K` over the whole range --repeat allows (issue 16, item 11): at K = 600 the old main ran every
sample and then crashed in the Boschloo test (OverflowError, exit 4)."""

from __future__ import annotations

from pathlib import Path

from gitrepo import commit, new_repo

FLAKY_APP = """\
import itertools
_calls = itertools.count()

def answer(messages, params):
    return "Hello Ada!" if next(_calls) % 4 else "nope"
"""


def test_diff_with_600_samples_a_side_gives_a_verdict(tmp_path: Path, cli) -> None:
    repo = new_repo(tmp_path / "flaky")
    golden = "cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n"
    commit(repo, {".gitignore": ".promptci/\n", "promptci.yaml": "models: ['python:flakyapp:answer']\n",
                  "prompts/greet.txt": "{{ name }}\n", "goldens/greet.yaml": golden, "flakyapp.py": FLAKY_APP},
           "passes 3 of 4")
    commit(repo, {"prompts/greet.txt": "Name: {{ name }}\n"}, "an edit the app does not care about")
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--repeat", "600", "-j", "8", "--no-github")
    assert result.exit_code == 0, result.output  # 450/600 at both sides: no drop
    assert "450/600" in result.output
