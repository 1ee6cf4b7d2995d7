"""`promptci init`'s scaffold: the files it writes, the .gitignore line, refusal to overwrite, and a
starter golden that passes with `echo` (its expected equals the rendered prompt)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from promptci.errors import ExitCode, PromptCIError
from promptci.scaffold import scaffold_project

STARTER_FILES = ["promptci.yaml", "prompts/summarize.txt", "goldens/summarize.yaml",
                 ".github/workflows/promptci.yml"]
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.DOTALL)


REPO = Path(__file__).resolve().parent.parent


def render_user_message(prompt_file: Path, variables: dict[str, object]) -> str:
    match = FRONT_MATTER.match(prompt_file.read_text(encoding="utf-8"))
    assert match, "the starter prompt has front matter"
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return env.from_string(match.group(2)).render(variables)


def test_writes_the_starter_files_and_returns_their_paths(tmp_path: Path) -> None:
    written = scaffold_project(tmp_path)
    assert sorted(written) == sorted(tmp_path / name for name in [*STARTER_FILES, ".gitignore"])
    assert all(path.is_file() for path in written)
    assert yaml.safe_load((tmp_path / "promptci.yaml").read_text())["models"] == ["echo"]
    assert (tmp_path / ".gitignore").read_text() == ".promptci/\n"


def test_starter_prompt_front_matter_is_valid_yaml(tmp_path: Path) -> None:
    scaffold_project(tmp_path)
    match = FRONT_MATTER.match((tmp_path / "prompts/summarize.txt").read_text())
    assert match
    front = yaml.safe_load(match.group(1))
    assert set(front) == {"system", "params"}
    assert front["params"]["temperature"] == 0


def test_starter_golden_expects_exactly_what_echo_returns(tmp_path: Path) -> None:
    scaffold_project(tmp_path)
    golden = yaml.safe_load((tmp_path / "goldens/summarize.yaml").read_text())
    assert golden["prompt"] == "summarize"
    assert len(golden["cases"]) == 2
    for case in golden["cases"]:
        rendered = render_user_message(tmp_path / "prompts/summarize.txt", case["input"])
        # echo returns the rendered user message; the exact comparator strips both sides.
        assert rendered.strip() == case["expected"].strip(), case["id"]


def test_the_workflow_uses_the_action_as_the_pr_check_example_does(tmp_path: Path) -> None:
    scaffold_project(tmp_path)
    text = (tmp_path / ".github/workflows/promptci.yml").read_text()
    assert text == (REPO / "examples" / "github" / "pr-check.yml").read_text()  # one workflow, not two
    workflow = yaml.safe_load(text)
    steps = workflow["jobs"]["prompts"]["steps"]
    assert [step.get("uses", "").split("@")[0] for step in steps] == ["actions/checkout", "OWNER/promptci"]
    assert steps[0]["with"]["fetch-depth"] == 0 and steps[1]["with"]["missing-secrets"] == "fail"
    assert not any("run" in step for step in steps)  # the action installs promptci-cli and runs it


def test_gitignore_is_appended_to_once(tmp_path: Path) -> None:
    gitignore = tmp_path / ".gitignore"
    gitignore.write_text("node_modules/\n*.pyc")  # no final newline
    assert tmp_path / ".gitignore" in scaffold_project(tmp_path)
    assert gitignore.read_text() == "node_modules/\n*.pyc\n.promptci/\n"
    written_again = scaffold_project(tmp_path, force=True)
    assert tmp_path / ".gitignore" not in written_again
    assert gitignore.read_text().count(".promptci") == 1


def test_gitignore_that_already_ignores_the_state_dir_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("/.promptci\n")
    assert tmp_path / ".gitignore" not in scaffold_project(tmp_path)
    assert (tmp_path / ".gitignore").read_text() == "/.promptci\n"


def test_refuses_to_overwrite_and_names_the_files(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "promptci.yaml").write_text("models: [openai:gpt-4o]\n")
    (tmp_path / "prompts/summarize.txt").write_text("mine\n")
    with pytest.raises(PromptCIError) as raised:
        scaffold_project(tmp_path)
    message = str(raised.value)
    assert "promptci.yaml" in message and "prompts/summarize.txt" in message
    assert "--force" in message
    assert raised.value.exit_code == ExitCode.USAGE
    # Nothing was written: the user's files are intact and no other starter file appeared.
    assert (tmp_path / "promptci.yaml").read_text() == "models: [openai:gpt-4o]\n"
    assert not (tmp_path / "goldens").exists()
    assert not (tmp_path / ".gitignore").exists()


def test_force_replaces_existing_files(tmp_path: Path) -> None:
    (tmp_path / "promptci.yaml").write_text("models: [openai:gpt-4o]\n")
    written = scaffold_project(tmp_path, force=True)
    assert tmp_path / "promptci.yaml" in written
    assert yaml.safe_load((tmp_path / "promptci.yaml").read_text())["models"] == ["echo"]


def test_creates_a_missing_root(tmp_path: Path) -> None:
    root = tmp_path / "new" / "project"
    scaffold_project(root)
    assert (root / "goldens/summarize.yaml").is_file()
