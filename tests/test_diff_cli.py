"""`promptci diff REV_A [REV_B]`: the suite at two revisions of a real git repository, one Session, compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepo import commit, git, new_repo, snapshot, write

from promptci import api
from promptci.errors import ExitCode, PromptCIError
from promptci.store import Store

GREET = "Hello {{ name }}!\n"
# Breaks ada and bob (they now get "Hi"), keeps cy.
GREET_BROKEN = "{% if name == 'Cy' %}Hello{% else %}Hi{% endif %} {{ name }}!\n"
GOLDEN = """\
cases:
  - id: ada
    input: {name: Ada}
    expected: Hello Ada!
  - id: bob
    input: {name: Bob}
    expected: Hello Bob!
  - id: cy
    input: {name: Cy}
    expected: Hello Cy!
"""
FILES = {
    ".gitignore": ".promptci/\n",
    "promptci.yaml": "models: [echo]\n",
    "prompts/greet.txt": GREET,
    "goldens/greet.yaml": GOLDEN,
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = new_repo(tmp_path / "repo")
    commit(root, FILES, "base")
    return root


def diff(root: Path, before: str, after: str | None = None, **options) -> api.DiffOutcome:
    return api.diff(api.DiffOptions(run=api.RunOptions(root=root, **options), before=before, after=after))


def moved(outcome: api.DiffOutcome, transition: str) -> set[str]:
    return {c.case_id for c in outcome.comparison.with_transition(transition)}


def test_an_edit_that_breaks_two_cases_names_exactly_those_and_exits_1(repo: Path) -> None:
    commit(repo, {"prompts/greet.txt": GREET_BROKEN}, "terser greeting")
    outcome = diff(repo, "HEAD~1", "HEAD")
    assert outcome.exit_code == ExitCode.REGRESSION
    assert moved(outcome, "regressed") == {"ada", "bob"}
    assert moved(outcome, "still_passing") == {"cy"}
    ada = next(c for c in outcome.comparison.changes if c.case_id == "ada")
    assert ada.output_diff == "[-Hello-]{+Hi+} Ada!\n"


def test_the_working_tree_is_the_default_after_side(repo: Path) -> None:
    write(repo, {"prompts/greet.txt": GREET_BROKEN})  # not committed
    outcome = diff(repo, "HEAD")
    assert outcome.exit_code == ExitCode.REGRESSION
    assert moved(outcome, "regressed") == {"ada", "bob"}


def test_an_edit_that_fixes_one_case_exits_0_and_names_it(repo: Path) -> None:
    commit(repo, {"goldens/greet.yaml": GOLDEN.replace("Hello Bob!", "Hey Bob!")}, "bob wants hey")
    commit(repo, {"prompts/greet.txt": "{% if name == 'Bob' %}Hey{% else %}Hello{% endif %} {{ name }}!\n"}, "fix")
    outcome = diff(repo, "HEAD~1", "HEAD")
    assert outcome.exit_code == ExitCode.OK
    assert moved(outcome, "fixed") == {"bob"}
    assert moved(outcome, "regressed") == set()


def test_new_removed_and_renamed_cases(repo: Path) -> None:
    golden = GOLDEN.replace("  - id: cy\n    input: {name: Cy}\n    expected: Hello Cy!\n",
                            "  - id: dee\n    input: {name: Dee}\n    expected: Hello Dee!\n")
    commit(repo, {"goldens/greet.yaml": None, "goldens/hello.yaml": "prompt: greet\n" + golden},
           "rename the golden file, cy -> dee")
    outcome = diff(repo, "HEAD~1", "HEAD")
    assert outcome.exit_code == ExitCode.OK
    assert moved(outcome, "new") == {"dee"}
    assert moved(outcome, "removed") == {"cy"}
    paired = {c.case_id: c for c in outcome.comparison.with_transition("still_passing")}
    assert set(paired) == {"ada", "bob"}  # followed through git's rename of the golden file
    assert paired["ada"].file == "goldens/hello.yaml" and paired["ada"].renamed_from == "goldens/greet.yaml::greet"


APP = "def answer(messages, params):\n    return {reply!r} + messages[-1]['content'].split()[-1]\n"


def test_python_code_runs_as_it_stood_at_each_revision(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "app")
    golden = "cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n"
    commit(repo, {"promptci.yaml": "models: ['python:app:answer']\n", "prompts/greet.txt": "Name: {{ name }}!\n",
                  "goldens/greet.yaml": golden, "app.py": APP.format(reply="Hello ")}, "app says hello")
    commit(repo, {"app.py": APP.format(reply="Bye ")}, "app says bye")
    outcome = diff(repo, "HEAD~1", "HEAD")
    (change,) = outcome.comparison.changes
    assert (change.before[0].output, change.after[0].output) == ("Hello Ada!", "Bye Ada!")
    assert change.transition == "regressed" and outcome.exit_code == ExitCode.REGRESSION
    back = diff(repo, "HEAD", "HEAD~1")  # the same module name, the other way round: never the stale module
    (change,) = back.comparison.changes
    assert (change.before[0].output, change.after[0].output) == ("Bye Ada!", "Hello Ada!")


def test_user_working_tree_index_and_stash_are_untouched(repo: Path) -> None:
    commit(repo, {"prompts/greet.txt": GREET_BROKEN}, "break")
    # an edited file, a staged new one, an untracked one stashed
    write(repo, {"prompts/greet.txt": "Hey {{ name }}!\n", "goldens/extra.yaml": "prompt: greet\n" + GOLDEN})
    git(repo, "add", "goldens/extra.yaml")
    write(repo, {"notes.txt": "scratch"})
    git(repo, "stash", "push", "-q", "--include-untracked", "--", "notes.txt")
    before = snapshot(repo)
    diff(repo, "HEAD~1")
    diff(repo, "HEAD~1", "HEAD")
    assert snapshot(repo) == before
    assert (repo / "prompts/greet.txt").read_text() == "Hey {{ name }}!\n"


def test_both_runs_are_stored_with_their_revisions(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD").strip()
    second = commit(repo, {"prompts/greet.txt": GREET_BROKEN}, "break")
    outcome = diff(repo, "HEAD~1", "HEAD")
    assert (outcome.before.git.commit, outcome.after.git.commit) == (first, second)
    with Store.open(repo / ".promptci" / "promptci.db") as store:
        stored = {info.run_id for info in store.list_runs(10)}
    assert {outcome.before.run_id, outcome.after.run_id} <= stored


@pytest.mark.parametrize(("before", "after", "message"), [
    ("nope", None, "unknown revision 'nope'"),
    ("HEAD", "missing-branch", "unknown revision 'missing-branch'"),
])
def test_unknown_revisions_are_usage_errors(repo: Path, before: str, after: str | None, message: str) -> None:
    with pytest.raises(PromptCIError, match=message) as caught:
        diff(repo, before, after)
    assert caught.value.exit_code == ExitCode.USAGE


def test_not_a_git_repository(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write(root, FILES)
    with pytest.raises(PromptCIError, match="is not inside a git repository"):
        diff(root, "HEAD")


def test_no_prompts_at_a_revision(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "late")
    commit(repo, {"README.md": "soon\n"}, "empty")
    commit(repo, FILES, "the project")
    with pytest.raises(PromptCIError, match="no prompts/ folder at revision 'HEAD~1'"):
        diff(repo, "HEAD~1")


def test_shallow_clone_says_fetch_depth_0(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"prompts/greet.txt": GREET_BROKEN}, "break")
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    with pytest.raises(PromptCIError, match="fetch-depth: 0"):
        diff(clone, "HEAD~1")


def test_second_diff_of_the_same_revisions_sends_no_request(tmp_path: Path, fake_server,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-1234567890")
    repo = new_repo(tmp_path / "served")
    config = ("models: ['fake:m']\nproviders:\n"
              f"  fake: {{type: openai, base_url: '{fake_server.openai_base_url}', api_key_env: FAKE_OPENAI_KEY}}\n")
    commit(repo, {**FILES, "promptci.yaml": config}, "base")
    dee = "  - id: dee\n    input: {name: Dee}\n    expected: Hello Dee!\n"
    commit(repo, {"goldens/greet.yaml": GOLDEN + dee}, "one more case")
    diff(repo, "HEAD~1", "HEAD")
    assert fake_server.total == 4  # ada, bob, cy once (the same request at both sides), dee at B
    again = diff(repo, "HEAD~1", "HEAD")
    assert fake_server.total == 4
    assert all(r.cached for c in again.comparison.changes for r in (*c.before, *c.after))


# The command line --------------------------------------------------------------------------------------------


def test_cli_exit_1_on_a_regression_and_0_without(repo: Path, cli) -> None:
    commit(repo, {"prompts/greet.txt": GREET_BROKEN}, "break")
    broken = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--format", "json", "--no-github")
    assert broken.exit_code == 1, broken.output
    document = json.loads(broken.stdout)
    assert {c["case_id"] for c in document["changes"] if c["transition"] == "regressed"} == {"ada", "bob"}
    same = cli("diff", "HEAD", "HEAD", "--root", repo, "--no-github")
    assert same.exit_code == 0, same.output


@pytest.mark.parametrize(("args", "message"), [
    (("diff", "nope"), "unknown revision 'nope'"),
    (("diff", "HEAD", "--format", "junit"), "format 'junit' has no report of a diff"),
    (("diff", "HEAD", "--alpha", "1.5"), "--alpha 1.5"),
    (("diff", "HEAD", "--repeat", "0"), "--repeat 0"),
])
def test_cli_usage_errors_exit_2(repo: Path, cli, args: tuple[str, ...], message: str) -> None:
    result = cli(*args, "--root", repo)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_cli_diff_has_its_options_in_help(cli) -> None:
    result = cli("diff", "--help")
    assert result.exit_code == 0
    for option in ("REV_A", "[REV_B]", "--changed-since", "--alpha", "--repeat", "--format", "--no-github"):
        assert option in result.output


def test_provider_errors_at_b_are_exit_3(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "errs")
    golden = "cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n"
    commit(repo, {"promptci.yaml": "models: ['python:errapp:answer']\n", "prompts/greet.txt": "{{ name }}\n",
                  "goldens/greet.yaml": golden, "errapp.py": APP.format(reply="Hello ")}, "works")
    commit(repo, {"errapp.py": "def answer(messages, params):\n    raise RuntimeError('down')\n"}, "breaks")
    outcome = diff(repo, "HEAD~1", "HEAD")
    assert outcome.exit_code == ExitCode.NO_VERDICT
    assert [c.transition for c in outcome.comparison.changes] == ["error"]


FLAKY_APP = """\
import itertools
_calls = itertools.count()

def answer(messages, params):
    return "Hello Ada!" if next(_calls) % {period} else "nope"
"""


def test_with_repeat_the_family_wise_test_decides(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "flaky")
    golden = "cases:\n  - id: ada\n    input: {name: Ada}\n    expected: Hello Ada!\n"
    commit(repo, {"promptci.yaml": "models: ['python:flakyapp:answer']\nconcurrency: 1\n",
                  "prompts/greet.txt": "{{ name }}\n", "goldens/greet.yaml": golden,
                  "flakyapp.py": FLAKY_APP.format(period=4)}, "passes 3 of 4")
    commit(repo, {"prompts/greet.txt": "Name: {{ name }}\n"}, "a prompt edit that changes nothing for the app")
    same = diff(repo, "HEAD~1", "HEAD", repeat=8)
    assert same.comparison.repeated and same.comparison.verdict is not None
    assert same.exit_code == ExitCode.OK  # one failed sample at B is no evidence of a drop
    commit(repo, {"flakyapp.py": "def answer(messages, params):\n    return 'nope'\n"}, "never passes")
    worse = diff(repo, "HEAD~1", "HEAD", repeat=8)
    assert worse.exit_code == ExitCode.REGRESSION
    assert worse.comparison.verdict is not None and worse.comparison.verdict.is_drop


def test_a_project_in_a_subfolder_of_the_repository(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "mono")
    commit(repo, {f"suite/{name}": text for name, text in FILES.items()} | {"README.md": "mono\n"}, "base")
    commit(repo, {"suite/prompts/greet.txt": GREET_BROKEN}, "break")
    outcome = diff(repo / "suite", "HEAD~1", "HEAD", changed_since="HEAD~1")
    assert moved(outcome, "regressed") == {"ada", "bob"}
    assert outcome.exit_code == ExitCode.REGRESSION


def test_cli_under_github_actions_annotates_and_writes_the_step_summary(repo: Path, cli, tmp_path: Path) -> None:
    commit(repo, {"prompts/greet.txt": GREET_BROKEN}, "break")
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--format", "json", env=env)
    assert result.exit_code == 1
    json.loads(result.stdout)  # stdout stays the JSON document; annotations go to stderr
    assert "::error file=goldens/greet.yaml" in result.stderr
    assert "ada" in summary.read_text() and "bob" in summary.read_text()
    quiet = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--format", "json", "--no-github", env=env)
    assert "::error" not in quiet.stderr


def test_cli_writes_every_o_report(repo: Path, cli, tmp_path: Path) -> None:
    commit(repo, {"prompts/greet.txt": GREET_BROKEN}, "break")
    out = tmp_path / "out"
    result = cli("diff", "HEAD~1", "HEAD", "--root", repo, "--no-github", "-q", "-o", f"{out}/d.json",
                 "-o", f"markdown={out}/d.md", "-o", f"html={out}/d.html", "-o", f"github={out}/d.txt")
    assert result.exit_code == 1, result.output
    assert {c["case_id"] for c in json.loads((out / "d.json").read_text())["changes"]
            if c["transition"] == "regressed"} == {"ada", "bob"}
    assert "ada" in (out / "d.md").read_text() and "<html" in (out / "d.html").read_text().lower()
    assert "::error file=goldens/greet.yaml" in (out / "d.txt").read_text()
