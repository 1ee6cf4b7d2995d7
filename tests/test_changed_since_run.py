"""`run --changed-since REV` and `diff --changed-since REV`: only the cases a change since REV can affect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepo import commit, new_repo, write

from promptci import api
from promptci.errors import ExitCode

FILES = {
    ".gitignore": ".promptci/\n",
    "promptci.yaml": "models: [echo]\n",
    "prompts/ask.txt": "{% include '_partials/header.j2' %}\nQ: {{ q }}\n",
    "prompts/_partials/header.j2": "{% include '_partials/tone.j2' %} Answer briefly.",
    "prompts/_partials/tone.j2": "Be kind.",
    "prompts/other.txt": "Say {{ word }}\n",
    "goldens/ask.yaml": "comparators: [{type: contains, value: 'Q:'}]\ncases:\n"
                        "  - id: a\n    input: {q: one}\n  - id: b\n    input: {q: two}\n",
    "goldens/other.yaml": "comparators: [{type: contains, value: Say}]\ncases:\n"
                          "  - id: x\n    input: {word: hi}\n  - id: y\n    input: {word: yo}\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = new_repo(tmp_path / "repo")
    commit(root, FILES, "base")
    return root


def ran(outcome: api.RunOutcome) -> set[str]:
    return {r.case_id for r in outcome.run.results}


def test_a_partial_two_includes_deep_selects_exactly_its_prompts_cases(repo: Path) -> None:
    write(repo, {"prompts/_partials/tone.j2": "Be very kind."})
    outcome = api.run(api.RunOptions(root=repo, changed_since="HEAD"))
    assert ran(outcome) == {"a", "b"}
    assert outcome.exit_code == ExitCode.OK
    assert outcome.selection is not None
    assert outcome.selection.reasons["ask"] == ("prompts/ask.txt uses prompts/_partials/tone.j2, which changed",)


def test_one_changed_case_selects_only_it(repo: Path) -> None:
    commit(repo, {"goldens/other.yaml": FILES["goldens/other.yaml"].replace("word: yo", "word: yoo")}, "y changed")
    outcome = api.run(api.RunOptions(root=repo, changed_since="HEAD~1"))
    assert ran(outcome) == {"y"}


def test_nothing_changed_is_exit_0_with_a_clear_note_and_no_stored_run(repo: Path, cli) -> None:
    outcome = api.run(api.RunOptions(root=repo, changed_since="HEAD"))
    assert outcome.exit_code == ExitCode.OK and outcome.run.results == ()
    assert outcome.notes == ["nothing changed since HEAD that affects a case: nothing to run"]
    assert not (repo / ".promptci" / "promptci.db").exists() or not api.list_runs(repo, 5)
    result = cli("run", "--changed-since", "HEAD", "--root", repo, "--no-github")
    assert result.exit_code == 0, result.output
    assert "nothing changed since HEAD that affects a case" in result.stderr


def test_cli_v_prints_why_each_prompt_was_selected(repo: Path, cli) -> None:
    write(repo, {"prompts/other.txt": "Say {{ word }}!\n"})
    result = cli("run", "--changed-since", "HEAD", "-v", "--root", repo, "--format", "json", "--no-github")
    assert result.exit_code == 0, result.output
    assert {r["case_id"] for r in json.loads(result.stdout)["results"]} == {"x", "y"}
    assert "changed since HEAD: other: prompts/other.txt changed" in result.stderr


def test_unknown_revision_is_a_usage_error(repo: Path, cli) -> None:
    result = cli("run", "--changed-since", "nope", "--root", repo)
    assert result.exit_code == 2
    assert "unknown revision 'nope'" in result.output


def test_diff_with_changed_since_runs_only_the_affected_cases_at_both_sides(repo: Path) -> None:
    commit(repo, {"prompts/_partials/header.j2": "{% include '_partials/tone.j2' %} Be brief."}, "header")
    options = api.RunOptions(root=repo, changed_since="HEAD~1")
    outcome = api.diff(api.DiffOptions(run=options, before="HEAD~1", after="HEAD"))
    assert {r.case_id for r in outcome.before.results} == {"a", "b"}
    assert {r.case_id for r in outcome.after.results} == {"a", "b"}
    assert outcome.exit_code == ExitCode.OK
    nothing = api.diff(api.DiffOptions(run=api.RunOptions(root=repo, changed_since="HEAD"), before="HEAD~1"))
    assert nothing.notes == ("nothing changed since HEAD that affects a case: nothing to run",)
    assert nothing.exit_code == ExitCode.OK


def test_record_with_changed_since_keeps_the_unselected_cases_recordings(repo: Path, fake_server,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-1234567890")
    config = ("models: ['fake:m']\nproviders:\n"
              f"  fake: {{type: openai, base_url: '{fake_server.openai_base_url}', api_key_env: FAKE_OPENAI_KEY}}\n")
    commit(repo, {"promptci.yaml": config}, "served")
    api.run(api.RunOptions(root=repo, record=True))
    recorded = (repo / "recordings" / "other.jsonl").read_text().splitlines()
    assert len(recorded) == 2
    write(repo, {"goldens/other.yaml": FILES["goldens/other.yaml"].replace("word: yo", "word: yoo")})
    outcome = api.run(api.RunOptions(root=repo, record=True, changed_since="HEAD"))
    assert ran(outcome) == {"y"}
    now = (repo / "recordings" / "other.jsonl").read_text().splitlines()
    assert len(now) == 3 and set(recorded) <= set(now)  # x's recording kept, y's new answer added
