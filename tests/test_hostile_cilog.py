"""A hostile world, round two (issue 24): what promptci writes into a CI log. A model's output, a prompt's line or
a commit subject starting with `::` must never reach the log as a workflow command, whichever entry point
prints it (the pytest plugin, `bisect`); and the plugin's bad options are one usage error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gitrepo import commit, new_repo
from hypothesis import given, settings
from hypothesis import strategies as st

pytest_plugins = ["pytester"]

WORKFLOW_LINE = re.compile(r"^\s*::", re.MULTILINE)  # what the Actions runner obeys after trimming the line


# ---------------------------------------------------------------- the pytest plugin

@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".txt", **{"prompts/greet": "{{ text }}\n"})
    pytester.makefile(".yaml", **{"goldens/greet": (
        "cases:\n  - id: loud\n    input: {text: \"fine\\n::error file=app.py::pwned\\n  ::add-mask::x\"}\n"
        "    expected: something else\n")})
    pytester.makefile(".yaml", promptci="models: [echo]\n")
    return pytester


def test_the_plugin_neutralises_workflow_commands_in_model_output(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--promptci", "goldens", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "pwned" in text  # the output is shown...
    assert not WORKFLOW_LINE.search(text), text  # ...but no line of it is a workflow command
    assert "\\::error file=app.py::pwned" in text


@pytest.mark.parametrize("repeat", ["100000", "0", "-3"])
def test_an_out_of_range_repeat_is_one_usage_error(suite: pytest.Pytester, repeat: str) -> None:
    result = suite.runpytest_subprocess("--promptci", "goldens", "--promptci-repeat", repeat)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--promptci-repeat {repeat}: give a number of samples from 1 to 1000" in result.stderr.str()


def test_an_unknown_model_is_one_usage_error_before_anything_runs(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--promptci", "goldens", "--promptci-model", "nope:x",
                                        "--promptci-model", "echo")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = result.stderr.str()
    assert errors.count("unknown provider 'nope'") == 1
    assert "Traceback" not in result.stdout.str() + errors
    assert "failed" not in result.stdout.str()


def test_a_run_that_cannot_start_is_one_message_not_a_traceback_per_test(suite: pytest.Pytester) -> None:
    suite.makefile(".yaml", promptci="models: ['openai:gpt-4o-mini']\n")
    result = suite.runpytest_subprocess("--promptci", "goldens", "-p", "no:cacheprovider")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 2, output
    assert output.count("OPENAI_API_KEY") == 1 and "Traceback" not in output


# ---------------------------------------------------------------- bisect

def test_bisect_neutralises_a_prompts_workflow_command_lines(tmp_path: Path, cli) -> None:
    repo = new_repo(tmp_path / "repo")
    prompt = "Hello {{ name }}!\n ::error::context line\n::warning::another\n"
    base = {".gitignore": ".promptci/\n", "promptci.yaml": "models: [echo]\n", "prompts/greet.txt": prompt,
            "goldens/greet.yaml": "cases:\n  - id: ada\n    input: {name: Ada}\n    comparators: [{type: contains, "
                                  "value: Hello}]\n"}
    good = commit(repo, base, "base")
    commit(repo, {"prompts/greet.txt": prompt.replace("Hello", "Bye")}, "::error::subject of the bad commit")
    result = cli("bisect", good, "HEAD", "--root", repo)
    assert result.exit_code == 0, result.output
    assert "context line" in result.stdout and "subject of the bad commit" in result.stdout
    assert not WORKFLOW_LINE.search(result.stdout), result.stdout
    assert not WORKFLOW_LINE.search(result.stderr), result.stderr


# ---------------------------------------------------------------- the one escape, fuzzed

@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=st.sampled_from([":", " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x85",
                                              "\u2028", "a", "\\", "\x1b"]), max_size=60))
def test_no_line_of_neutralised_text_is_a_workflow_command(text: str) -> None:
    """The runner reads lines as .NET's ReadLine does (\\n, \\r, \\r\\n end one) and trims Unicode blanks."""
    from promptci.reporting.stats import neutralised

    shown = neutralised(text)
    for line in re.split(r"\r\n|\r|\n", shown):
        assert not line.strip().startswith("::"), repr(line)
