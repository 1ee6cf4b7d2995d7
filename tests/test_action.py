"""action.yml: its shell steps run for real in a temporary repository with GITHUB_* variables set, against
a fake of the comments API on 127.0.0.1; and the PR-comment upsert on its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakegithub import BOT, FakeGitHub, running_fake_github
from helpers_project import make_project

from promptci.prcomment import DEFAULT_MARKER, MAX_COMMENT_CHARS, Target, main, upsert_comment

REPO = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((REPO / "action.yml").read_text())
STEPS = ACTION["runs"]["steps"]
GOLDEN = """\
cases:
  - id: fine
    input: {name: Ada}
    expected: Hello Ada!
  - id: broken
    input: {name: Bob}
    expected: Hello Robert!
"""


def installs_bare_name(text: str) -> bool:
    """True when a `pip install` line (comments aside) names the package `promptci` itself."""
    for line in text.splitlines():
        command = line.split("#", 1)[0]
        if "pip install" in command:
            words = command.split("pip install", 1)[1].split()
            if any(re.fullmatch(r"['\"]?promptci(\[[^\]]*\])?([<>=!~].*)?['\"]?", w) for w in words):
                return True
    return False


def test_installs_bare_name_sees_what_it_should() -> None:
    bare = "prompt" + "ci"  # spelled apart so the repository-wide packaging check does not flag this test
    assert installs_bare_name(f"run: pip install {bare}") and installs_bare_name(f"pip install -q '{bare}==1.0'")
    assert not installs_bare_name("pip install promptci-cli  # not `promptci`: another project")
    assert not installs_bare_name('python -m pip install "$GITHUB_ACTION_PATH"')


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with running_fake_github() as state:
        yield state


def target(github: FakeGitHub, number: int = 7) -> Target:
    return Target(github.url, "acme/bot", number, github.token)


# the upsert on its own ---------------------------------------------------------------------------------

def test_creates_then_updates_one_comment(github: FakeGitHub) -> None:
    assert upsert_comment(target(github), "first")[0] == "created"
    action, comment_id = upsert_comment(target(github), "second")
    assert action == "updated"
    assert [c["body"] for c in github.comments[7]] == [f"{DEFAULT_MARKER}\nsecond"]
    assert github.comments[7][0]["id"] == comment_id


def test_finds_the_marker_past_the_first_page_and_ignores_other_authors(github: FakeGitHub) -> None:
    for i in range(150):
        github.add(7, f"chatter {i}", login="someone")
    github.add(7, f"quoting {DEFAULT_MARKER}", login="someone")
    ours = github.add(7, f"{DEFAULT_MARKER}\nold")
    assert upsert_comment(target(github), "new") == ("updated", ours)
    assert ("GET", "/repos/acme/bot/issues/7/comments?per_page=100&page=2") in github.calls
    assert github.comments[7][150]["body"] == f"quoting {DEFAULT_MARKER}"  # someone else's comment untouched


def test_a_huge_body_is_cut_to_the_limit(github: FakeGitHub) -> None:
    upsert_comment(target(github), "x" * 100_000)
    assert len(github.comments[7][0]["body"]) <= MAX_COMMENT_CHARS


def event_file(tmp_path: Path, number: int = 7) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"pull_request": {"number": number}}))
    return path


def test_main_reads_the_event_and_never_prints_the_token(github: FakeGitHub, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "report.md"
    body.write_text("## report")
    env = {"GITHUB_TOKEN": github.token, "GITHUB_REPOSITORY": "acme/bot", "GITHUB_API_URL": github.url,
           "GITHUB_EVENT_PATH": str(event_file(tmp_path, 12))}
    assert main(["--body-file", str(body)], env) == 0
    assert github.comments[12][0]["body"].endswith("## report")
    wrong = {**env, "GITHUB_TOKEN": "not-the-token"}
    assert main(["--body-file", str(body)], wrong) == 0  # a fork's read-only token: a warning, not a failure
    assert main(["--body-file", str(body), "--strict"], wrong) == 1
    out = capsys.readouterr()
    assert "HTTP 401" in out.err and "::warning" in out.err
    assert github.token not in out.out + out.err and "not-the-token" not in out.out + out.err


def test_main_names_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "report.md"
    body.write_text("x")
    assert main(["--body-file", str(body), "--strict"], {}) == 1
    assert "GITHUB_TOKEN" in capsys.readouterr().err
    assert main(["--body-file", str(tmp_path / "none.md"), "--strict"], {"GITHUB_TOKEN": "x"}) == 1
    assert "did the promptci step write" in capsys.readouterr().err


# the action ------------------------------------------------------------------------------------------

def step(name_or_id: str) -> dict[str, Any]:
    return next(s for s in STEPS if s.get("id") == name_or_id or s.get("name") == name_or_id)


def test_the_action_installs_from_its_own_checkout_never_by_bare_name() -> None:
    install = step("install")["run"]
    assert '"$GITHUB_ACTION_PATH"' in install
    for s in STEPS:
        assert not installs_bare_name(s.get("run", "")), s


def test_the_cache_lets_a_pr_reuse_main_answers() -> None:
    restore, save = step("Restore the response cache"), step("Save the response cache")
    assert restore["uses"].startswith("actions/cache/restore@") and save["uses"].startswith("actions/cache/save@")
    assert restore["with"]["path"] == save["with"]["path"] == "${{ steps.paths.outputs.state }}"
    assert restore["with"]["key"] == save["with"]["key"]
    prefix = restore["with"]["restore-keys"].strip()
    assert restore["with"]["key"].startswith(prefix) and "github.ref" not in prefix  # any branch's, main's too
    assert save["if"] == "always()"
    upload = step("Upload the HTML report")
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["with"]["path"].endswith("report.html")


def test_the_default_command_is_the_pr_diff_on_a_pull_request_and_a_run_otherwise() -> None:
    assert ACTION["inputs"]["command"]["default"] == ""
    run = step("run")["run"]
    assert "pull_request|pull_request_target) PROMPTCI_COMMAND='promptci diff origin/$BASE HEAD --changed-since " \
           "origin/$BASE'" in run
    assert "*) PROMPTCI_COMMAND='promptci run'" in run


ARTIFACT_URL = "https://github.com/acme/bot/actions/runs/42/artifacts/9001"


class Runner:
    """Runs the action's shell steps the way the runner does: `bash -e`, step env, $GITHUB_OUTPUT, and the
    steps' simple `if:` conditions (always(), `==`, `!=`, `&&`)."""

    def __init__(self, env: Mapping[str, str], inputs: Mapping[str, str], github: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.github = dict(github)
        self.outputs: dict[str, dict[str, str]] = {}
        self.inputs: dict[str, str] = {}
        self.inputs = {name: self.expression(str(spec.get("default", ""))) for name, spec in ACTION["inputs"].items()}
        self.inputs.update(inputs)

    def value(self, alternatives: str) -> str:
        for alternative in alternatives.split("||"):
            path = alternative.strip().split(".")
            if path[0].startswith("'"):
                found = alternative.strip().strip("'")
            elif path[0] == "inputs":
                found = self.inputs.get(path[1], "")
            elif path[0] == "steps":
                found = self.outputs.get(path[1], {}).get(path[3], "")
            elif path[0] == "github":
                found = self.github.get(".".join(path[1:]), "")
            elif path[0] == "runner":
                found = {"os": "Linux", "temp": self.env["RUNNER_TEMP"]}.get(path[1], "")
            else:
                raise AssertionError(f"unknown expression {alternative}")
            if found:
                return found
        return ""

    def expression(self, text: str) -> str:
        return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", lambda match: self.value(match.group(1)), text)

    def condition(self, text: str) -> bool:
        for term in (t.strip() for t in text.split("&&")):
            if term == "always()":
                continue
            left, operator, right = re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", term).groups()  # type: ignore[union-attr]
            if (self.value(left) == self.value(right)) != (operator == "=="):
                return False
        return True

    def run(self, s: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
        output = tmp_path / f"output-{s.get('id', 'step')}"
        output.write_text("")
        env = {**self.env, **{k: self.expression(str(v)) for k, v in (s.get("env") or {}).items()},
               "GITHUB_OUTPUT": str(output)}
        cwd = Path(self.env["GITHUB_WORKSPACE"]) / self.expression(s.get("working-directory", "."))
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", s["run"]], cwd=cwd,
                              env=env, capture_output=True, text=True, timeout=300)
        if "id" in s:
            self.outputs[s["id"]] = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        return done


def temporary_repository(tmp_path: Path, golden: str = GOLDEN, config: str = "models: [echo]\n",
                         extra: Mapping[str, str] | None = None) -> Path:
    workspace = tmp_path / "workspace"
    make_project(workspace / "app", {"prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": golden,
                                     "promptci.yaml": config, **(extra or {})})
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=workspace, check=True)
    subprocess.run(["git", "add", "."], cwd=workspace, check=True)
    subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "init"], cwd=workspace,
                   check=True)
    return workspace


def git(workspace: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", *args], cwd=workspace, check=True,
                          capture_output=True, text=True).stdout.strip()


def run_action(github: FakeGitHub, tmp_path: Path, attempt: int, command: str | None = "promptci run",
               inputs: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None,
               head_repository: str = "acme/bot", event: str = "pull_request",
               ) -> tuple[Runner, dict[str, subprocess.CompletedProcess]]:
    """The action's shell steps, by step id; command None: the action's default (the pull request's diff).
    Installing (it would rebuild this checkout) and the pip cache are left out; the upload step's output is
    given."""
    workspace = tmp_path / "workspace"
    temp = tmp_path / f"runner-temp-{attempt}"
    temp.mkdir()
    head = git(workspace, "rev-parse", "HEAD")
    payload = tmp_path / "event.json"
    payload.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": head}}} if event == "pull_request"
                                  else {"ref": "refs/heads/main"}))
    base_env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
        "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace), "GITHUB_ACTION_PATH": str(REPO),
        "RUNNER_TEMP": str(temp), "GITHUB_STEP_SUMMARY": str(tmp_path / f"summary-{attempt}.md"),
        "GITHUB_REPOSITORY": "acme/bot", "GITHUB_API_URL": github.url, "GITHUB_EVENT_PATH": str(payload),
        "GITHUB_EVENT_NAME": event, "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "42",
        **(env or {}),
    }
    pull_request = {"event.pull_request.head.sha": head, "event.pull_request.number": "7",
                    "event.pull_request.head.repo.full_name": head_repository} if event == "pull_request" else {}
    runner = Runner(base_env, {"working-directory": "app", **({"command": command} if command is not None else {}),
                               **(inputs or {})},
                    {"token": github.token, "base_ref": "main", "event_name": event, "sha": head, **pull_request})
    runner.outputs["upload"] = {"artifact-url": ARTIFACT_URL}
    done = {}
    for s in STEPS:
        if "run" in s and s.get("id") not in ("install", "pip") and runner.condition(s.get("if", "always()")):
            done[s.get("id") or s["name"]] = runner.run(s, tmp_path)
    return runner, done


def test_the_shell_steps_run_report_comment_and_pass_the_verdict(github: FakeGitHub, tmp_path: Path) -> None:
    temporary_repository(tmp_path)
    runner, done = run_action(github, tmp_path, 1)
    assert done["paths"].returncode == 0, done["paths"].stderr
    assert runner.outputs["paths"]["state"] == str(tmp_path / "workspace" / "app" / ".promptci")
    run = done["run"]
    assert run.returncode == 0, run.stderr
    assert runner.outputs["run"]["exit-code"] == "1"  # one case fails: a regression
    assert "::error file=app/goldens/greet.yaml,line=5," in run.stderr
    reports = Path(runner.outputs["paths"]["reports"])
    assert (reports / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "broken" in (reports / "report.md").read_text()
    assert (tmp_path / "workspace" / "app" / ".promptci" / "promptci.db").is_file()  # what the cache saves
    comment = done["Comment on the pull request"]
    assert comment.returncode == 0, comment.stderr
    assert "created PR comment" in comment.stdout
    assert done["Pass promptci's verdict on"].returncode == 1
    assert github.token not in "".join(p.stdout + p.stderr for p in done.values())
    assert "promptci gc: removed 0 runs" in done["Prune the promptci state"].stdout  # before the cache is saved
    summary = (tmp_path / "summary-1.md").read_text()
    assert summary.startswith(":x: **promptci: regressions**") and summary.count("promptci: regressions") == 1

    _, again = run_action(github, tmp_path, 2)
    assert "updated PR comment" in again["Comment on the pull request"].stdout
    assert len(github.comments[7]) == 1 and github.comments[7][0]["body"].startswith("<!-- promptci-report:app -->")
    assert [method for method, _ in github.calls].count("POST") == 1


def test_the_default_command_diffs_the_pull_request_against_its_base(github: FakeGitHub, tmp_path: Path) -> None:
    workspace = temporary_repository(tmp_path)  # main: `fine` passes, `broken` fails
    git(workspace, "update-ref", "refs/remotes/origin/main", "HEAD")  # what actions/checkout fetches
    git(workspace, "checkout", "-q", "-b", "pr")
    (workspace / "app" / "prompts" / "greet.txt").write_text("Hi {{ name }}!")  # breaks `fine`
    git(workspace, "commit", "-qam", "friendlier greeting")
    runner, done = run_action(github, tmp_path, 1, command=None)
    run = done["run"]
    assert run.returncode == 0, run.stderr
    assert runner.outputs["run"]["exit-code"] == "1", run.stdout + run.stderr  # fine: passed -> failed
    assert "::error file=app/goldens/greet.yaml,line=2," in run.stderr  # only the case this PR broke
    assert "line=5" not in run.stderr.split("::error", 1)[1].split("\n", 1)[0]
    markdown = (Path(runner.outputs["paths"]["reports"]) / "report.md").read_text()
    assert "REGRESSED: 1 regressed, 1 still failing" in markdown and "fine" in markdown
    assert "created PR comment" in done["Comment on the pull request"].stdout
    assert done["Pass promptci's verdict on"].returncode == 1


def test_a_push_to_main_runs_the_suite_and_writes_the_job_summary_without_a_comment(
        github: FakeGitHub, tmp_path: Path) -> None:
    workspace = temporary_repository(tmp_path, golden=GOLDEN.replace("Hello Robert!", "Hello Bob!"))
    runner, done = run_action(github, tmp_path, 1, command=None, event="push")
    assert "Comment on the pull request" not in done and github.calls == []
    assert done["Pass promptci's verdict on"].returncode == 0
    summary = (tmp_path / "summary-1.md").read_text()
    assert summary.startswith(":white_check_mark: **promptci: all clear**")
    assert f"head `{git(workspace, 'rev-parse', 'HEAD')[:12]}`" in summary and "promptci run" in summary
    assert runner.outputs["keys"]["fork"] == "false"


def test_a_green_run_passes_the_check(github: FakeGitHub, tmp_path: Path) -> None:
    workspace = temporary_repository(tmp_path)
    golden = workspace / "app" / "goldens" / "greet.yaml"
    golden.write_text(GOLDEN.replace("Hello Robert!", "Hello Bob!"))
    _, done = run_action(github, tmp_path, 1)
    assert done["Pass promptci's verdict on"].returncode == 0
    assert github.comments[7][0]["user"]["login"] == BOT


# examples/github -------------------------------------------------------------------------------------

EXAMPLES = sorted((REPO / "examples" / "github").glob("*.yml"))


def promptci_commands(workflow: dict[str, Any]) -> list[str]:
    commands = []
    for job in workflow["jobs"].values():
        for s in job["steps"]:
            commands += [line for line in s.get("run", "").splitlines() if line.strip().startswith("promptci ")]
            command = (s.get("with") or {}).get("command")
            if command:
                commands.append(command)
    return commands


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_workflows_use_real_options_and_never_the_bare_name(cli, path: Path) -> None:
    text = path.read_text()
    workflow = yaml.safe_load(text)
    assert workflow["jobs"]
    assert not installs_bare_name(text)
    for command in promptci_commands(workflow):
        words = command.split()
        subcommand = words[1]
        usage = cli(subcommand, "--help").output
        for option in [w.split("=")[0] for w in words if w.startswith("-")]:
            assert option in usage, f"{path.name}: {command}: {option} is not an option of {subcommand}"


def test_examples_cover_the_pr_check_nightly_cost_sharded_merge_and_monorepo() -> None:
    texts = {p.name: p.read_text() for p in EXAMPLES}
    assert "OWNER/promptci@v1" in texts["pr-check.yml"] and "fetch-depth: 0" in texts["pr-check.yml"]
    monorepo = yaml.safe_load(texts["monorepo.yml"])["jobs"]["prompts"]
    assert monorepo["steps"][-1]["with"]["working-directory"] == "${{ matrix.project }}"
    assert len(monorepo["strategy"]["matrix"]["project"]) == 2
    assert "promptci cost --check" in texts["nightly.yml"] and "promptci run --batch" in texts["nightly.yml"]
    assert "--shard" in texts["sharded.yml"] and "promptci merge shards/*.json" in texts["sharded.yml"]


# one pull request's comment through every outcome ------------------------------------------------------

GREEN = GOLDEN.replace("Hello Robert!", "Hello Bob!")


def push(workspace: Path, files: Mapping[str, str], message: str) -> str:
    for name, text in files.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text)
    git(workspace, "add", ".")
    git(workspace, "commit", "-qm", message)
    return git(workspace, "rev-parse", "HEAD")


def comment_after_push(github: FakeGitHub, tmp_path: Path, attempt: int, head: str, code: int,
                       **kwargs: Any) -> str:
    """Run the action at this push; check the verdict and that the one comment was PATCHed (or created first)
    to name the head commit and the artifact; return its body."""
    before = [method for method, _ in github.calls]
    _, done = run_action(github, tmp_path, attempt, **kwargs)
    assert done["Pass promptci's verdict on"].returncode == code, done["run"].stderr + done["outcome"].stderr
    calls = [method for method, _ in github.calls][len(before):]
    assert calls[-1] == ("POST" if attempt == 1 else "PATCH"), calls
    assert len(github.comments[7]) == 1
    body = github.comments[7][0]["body"]
    assert f"head `{head[:12]}`" in body and f"[HTML report]({ARTIFACT_URL})" in body
    assert "[run](https://github.com/acme/bot/actions/runs/42)" in body
    assert (tmp_path / f"summary-{attempt}.md").read_text().strip() in body  # the job summary says the same
    return body


def test_one_comment_follows_the_pull_request_through_every_outcome(github: FakeGitHub, tmp_path: Path) -> None:
    workspace = temporary_repository(tmp_path, golden=GREEN)
    git(workspace, "update-ref", "refs/remotes/origin/main", "HEAD")
    base = git(workspace, "rev-parse", "HEAD")
    git(workspace, "checkout", "-q", "-b", "pr")

    head = push(workspace, {"app/prompts/greet.txt": "Hi {{ name }}!"}, "friendlier")
    body = comment_after_push(github, tmp_path, 1, head, 1, command=None)
    assert ":x: **promptci: regressions**" in body and "spent: 4 requests, $0.0000" in body  # echo: free

    head = push(workspace, {"app/prompts/greet.txt": "Hello {{ name | trim }}!"}, "back to hello")
    body = comment_after_push(github, tmp_path, 2, head, 0, command=None)
    assert ":white_check_mark: **promptci: all clear**" in body and "regressions" not in body

    head = push(workspace, {"app/prompts/greet.txt": "Hello {{ name }}!", "README.md": "docs only\n"}, "docs")
    body = comment_after_push(github, tmp_path, 3, head, 0, command=None)
    assert f"**promptci: nothing to run**: no prompt-affecting change since `main` at `{base[:12]}`" in body
    assert "all clear" not in body

    head = push(workspace, {"app/goldens/greet.yaml": "cases:\n  - id: [unclosed\n"}, "oops")
    body = comment_after_push(github, tmp_path, 4, head, 2, command=None)
    assert ":no_entry: **promptci: bad input** (exit 2)" in body and "greet.yaml" in body
    assert "nothing to run" not in body
    assert [method for method, _ in github.calls].count("POST") == 1


def test_exit_3_and_4_name_themselves_with_promptci_message(github: FakeGitHub, tmp_path: Path) -> None:
    config = ("retries: 0\nproviders:\n  dead: {type: openai, base_url: 'http://127.0.0.1:9/v1', "
              "api_key_env: DEAD_KEY}\nmodels: ['dead:gpt-x']\n")
    workspace = temporary_repository(tmp_path, golden=GREEN, config=config)
    head = git(workspace, "rev-parse", "HEAD")
    body = comment_after_push(github, tmp_path, 1, head, 3, env={"DEAD_KEY": "sk-dead"})
    assert ":warning: **promptci: no verdict** (exit 3)" in body and "spent: 2 requests" in body
    crash = "python -c 'import sys; print(\"promptci: internal error: boom (log at /tmp/x)\", file=sys.stderr); " \
            "sys.exit(4)' #"
    body = comment_after_push(github, tmp_path, 2, head, 4, command=crash)
    assert ":boom: **promptci: internal error** (exit 4)" in body and "boom (log at /tmp/x)" in body


# a fork's pull request: no secrets ---------------------------------------------------------------------

def fork_project(tmp_path: Path, server_url: str) -> Path:
    config = (f"providers:\n  local: {{type: openai, base_url: '{server_url}', api_key_env: FORK_TEST_KEY}}\n"
              "models: ['local:gpt-x']\n")
    return temporary_repository(tmp_path, golden=GREEN, config=config)


@pytest.mark.parametrize(("policy", "code"), [(None, 3), ("warn", 0)])
def test_a_fork_run_without_the_secret_runs_offline_and_names_the_cases_needing_a_live_model(
        github: FakeGitHub, fake_server, tmp_path: Path, policy: str | None, code: int) -> None:
    workspace = fork_project(tmp_path, fake_server.openai_base_url)
    recorded = subprocess.run([sys.executable, "-m", "promptci", "run", "--record"], cwd=workspace / "app",
                              env={**os.environ, "FORK_TEST_KEY": "sk-test"}, capture_output=True, text=True,
                              timeout=120)
    assert recorded.returncode == 0, recorded.stderr
    push(workspace, {}, "recordings") if git(workspace, "status", "--porcelain") else None
    git(workspace, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(workspace, "checkout", "-q", "-b", "pr")
    head = push(workspace, {"app/goldens/greet.yaml": GREEN + "  - id: cy\n    input: {name: Cy}\n"
                                                              "    expected: Hello Cy!\n"}, "a new case")
    fake_server.reset()
    inputs = {"missing-secrets": policy} if policy else {}
    runner, done = run_action(github, tmp_path, 1, command=None, inputs=inputs, head_repository="someone/fork")
    assert fake_server.total == 0  # not one request: the key check came first
    assert runner.outputs["keys"] == {"missing": "FORK_TEST_KEY", "fork": "true", "offline": "true"}
    assert "--replay" in done["run"].stderr or runner.outputs["run"]["exit-code"] == "3", done["run"].stderr
    assert done["Pass promptci's verdict on"].returncode == code
    body = github.comments[7][0]["body"]
    assert f"head `{head[:12]}`" in body and "comes from a fork" in body
    assert "These cases need a live model:" in body and "- `cy` (goldens/greet.yaml:8) on local:gpt-x" in body
    assert "`ada`" not in body  # answered from the recordings
    assert "`gh pr checkout 7 && promptci run --record -k 'cy'`" in body
    if policy == "warn":
        assert "passing with a warning" in body and "::warning" in done["outcome"].stdout
    else:
        assert "(exit 3)" in body


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    return workflow.get("on") or workflow.get(True) or {}  # YAML 1.1 reads the key `on` as True


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_no_example_filters_pull_requests_by_path(path: Path) -> None:
    """--changed-since decides what a change affects; a `paths:` filter misses cases_from data, schemas, checks.py
    and the python: system under test, and leaves a required check pending."""
    events = triggers(yaml.safe_load(path.read_text()))
    for event in ("pull_request", "push", "pull_request_target"):
        spec = events.get(event) or {} if isinstance(events, dict) else {}
        assert not {"paths", "paths-ignore"} & set(spec), f"{path.name}: {event} has a path filter"


@pytest.mark.parametrize("name", ["pr-check.yml", "monorepo.yml"])
def test_pull_request_examples_cancel_superseded_runs_and_run_on_main(name: str) -> None:
    workflow = yaml.safe_load((REPO / "examples" / "github" / name).read_text())
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert "github.event.pull_request.number" in workflow["concurrency"]["group"]
    assert triggers(workflow)["push"] == {"branches": ["main"]}  # the job summary, and main's cache
    assert "pull_request_target" not in triggers(workflow)


def test_the_action_runs_gc_before_saving_the_cache_and_caches_pip() -> None:
    names = [s.get("id") or s.get("name") for s in STEPS]
    assert names.index("Prune the promptci state") < names.index("Save the response cache")
    assert step("Prune the promptci state")["run"].startswith("promptci gc $GC_OPTIONS")
    assert ACTION["inputs"]["gc"]["default"] == "--days 14 --runs 5"
    assert step("Cache pip's downloads")["with"]["path"] == "${{ steps.pip.outputs.dir }}"
    assert names.index("Cache pip's downloads") < names.index("install")
    assert ACTION["inputs"]["missing-secrets"]["default"] == "fail"


def test_a_monorepo_keeps_one_comment_per_project(github: FakeGitHub, tmp_path: Path) -> None:
    workspace = temporary_repository(tmp_path, golden=GREEN)
    make_project(workspace / "services" / "other bot", {
        "prompts/greet.txt": "Hello {{ name }}!", "goldens/greet.yaml": GOLDEN, "promptci.yaml": "models: [echo]\n"})
    push(workspace, {}, "a second project")
    for attempt in (1, 2):
        _, app = run_action(github, tmp_path, attempt * 10, inputs={"working-directory": "app"})
        runner, other = run_action(github, tmp_path, attempt * 10 + 1,
                                   inputs={"working-directory": "services/other bot"})
        assert app["Pass promptci's verdict on"].returncode == 0 and other["Pass promptci's verdict on"].returncode == 1
    assert runner.outputs["paths"]["artifact"] == "promptci-report-services_other_bot"
    bodies = sorted(c["body"] for c in github.comments[7])
    assert len(bodies) == 2 and [method for method, _ in github.calls].count("POST") == 2
    assert bodies[0].startswith("<!-- promptci-report:app -->\n:white_check_mark:")
    assert bodies[1].startswith("<!-- promptci-report:services/other bot -->\n:x: **promptci: regressions** — "
                                "`services/other bot`")
