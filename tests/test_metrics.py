"""Named metrics in every report and in the gate; prompts side by side; per-model params (issue 9: 2, 9, 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakeserver import FakeServer

from promptci.config import load_settings
from promptci.errors import ConfigError

# The echo model answers with the rendered prompt, so `out` is the output and `expected` decides the verdict.
ECHO_PROMPT = {"prompts/echo.txt": "{{ out }}\n"}
METRIC_GOLDEN = """\
    comparators:
      - {type: exact, metric: accuracy, weight: 3}
      - {type: contains, value: x, metric: accuracy}
      - {type: regex, pattern: "^[xy]$"}
    cases:
      - {id: a, input: {out: x}, expected: x}
      - {id: b, input: {out: y}, expected: x}
    """
# accuracy: case a passes both (weight 4 of 4), case b fails both (0 of 4): 4 / 8


def metric_project(project, gate: str = "") -> Path:
    return project({**ECHO_PROMPT, "goldens/echo.yaml": METRIC_GOLDEN,
                    "promptci.yaml": "models: [echo]\n" + gate})


def run_json(cli, root: Path, *args: str):
    result = cli("run", "--root", root, "--format", "json", *args)
    return result, json.loads(result.stdout)


# --- metrics in the reports ------------------------------------------------------------------------

def test_json_report_has_each_metric_per_prompt_and_model(cli, project) -> None:
    result, document = run_json(cli, metric_project(project))
    assert result.exit_code == 1  # case b fails
    assert document["metrics"] == [{"metric": "accuracy", "prompt": "echo", "model": "echo", "pass_rate": 0.5,
                                    "mean_score": 0.5, "scores": 4}]
    scores = document["results"][0]["scores"]
    assert [(s["metric"], s["weight"]) for s in scores] == [("accuracy", 3.0), ("accuracy", 1.0), (None, 1.0)]


def test_a_json_output_prompt_does_not_shift_scores_off_their_metric(cli, project) -> None:
    """`output: json` adds a score of its own before the comparators' when the output does not parse."""
    root = project({"prompts/echo.txt": "---\noutput: json\n---\n{{ out }}\n", "promptci.yaml": "models: [echo]\n",
                    "goldens/echo.yaml": "cases:\n  - {input: {out: 'not json'}, comparators: "
                                         "[{type: contains, value: json, metric: has_json}]}\n"})
    _, document = run_json(cli, root)
    assert [(m["metric"], m["mean_score"]) for m in document["metrics"]] == [("has_json", 1.0)]


def test_table_and_markdown_show_the_metrics(cli, project) -> None:
    root = metric_project(project)
    table = cli("run", "--root", root)
    lines = table.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Metrics")
    row = next(line for line in lines[start:] if line.strip().startswith("accuracy"))
    assert row.split() == ["accuracy", "echo", "echo", "0.50", "50%", "4"], table.stdout
    markdown = cli("show", "last", "--root", root, "--format", "markdown")
    assert "| `accuracy` | `echo` | `echo` | 0.50 | 50% | 4 |" in markdown.stdout, markdown.stdout


def test_a_stored_run_shown_again_keeps_its_metrics(cli, project) -> None:
    root = metric_project(project)
    cli("run", "--root", root)
    shown = json.loads(cli("show", "last", "--root", root, "--format", "json").stdout)
    assert [(m["metric"], m["mean_score"]) for m in shown["metrics"]] == [("accuracy", 0.5)]


def test_no_metric_no_section(cli, project) -> None:
    root = project({**ECHO_PROMPT, "promptci.yaml": "models: [echo]\n",
                    "goldens/echo.yaml": "cases:\n  - {input: {out: x}, expected: x}\n"})
    _, document = run_json(cli, root)
    assert document["metrics"] == [] and document["prompt_sides"] == []
    assert "Metrics" not in cli("run", "--root", root).stdout


# --- the gate on metrics ---------------------------------------------------------------------------

def test_a_metric_under_its_threshold_fails_the_run_naming_it(cli, project) -> None:
    root = project({**ECHO_PROMPT, "promptci.yaml": "models: [echo]\ngate:\n  metrics:\n    accuracy: 0.9\n",
                    "goldens/echo.yaml": """\
                        cases:
                          - {id: a, input: {out: x}, expected: x, comparators: [{type: exact, metric: accuracy}]}
                          - {id: b, input: {out: y}, expected: x, comparators: [{type: exact, metric: accuracy}]}
                          - {id: c, input: {out: y}, expected: x, comparators: [{type: contains, value: y}]}
                        """})
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 1
    assert ("promptci: metric: metric 'accuracy' is 0.500 for echo x echo, under its threshold 0.9 "
            "(gate.metrics.accuracy at promptci.yaml:4)") in result.stderr


def test_the_metric_gate_fails_a_run_whose_cases_all_pass(cli, project) -> None:
    """Scores with `value` below 1 can pass their comparator and still pull a metric under its threshold."""
    golden = """\
        cases:
          - id: a
            input: {out: hello world}
            expected: hello there
            comparators: [{type: similarity, threshold: 0.1, metric: closeness}]
        """
    root = project({**ECHO_PROMPT, "goldens/echo.yaml": golden,
                    "promptci.yaml": "models: [echo]\ngate: {metrics: {closeness: 0.95}}\n"})
    result, document = run_json(cli, root)
    assert document["summary"]["failed"] == 0 and document["summary"]["passed"] == 1
    assert 0 < document["metrics"][0]["mean_score"] < 0.95
    assert result.exit_code == 1 and "metric 'closeness'" in result.stderr


def test_a_metric_at_or_over_its_threshold_passes_the_gate(cli, project) -> None:
    root = project({**ECHO_PROMPT, "promptci.yaml": "models: [echo]\ngate:\n  min_pass_rate: 0.5\n  metrics:\n"
                                                    "    accuracy: 0.5\n",
                    "goldens/echo.yaml": METRIC_GOLDEN})
    result = cli("run", "--root", root)
    assert result.exit_code == 0, result.output
    assert "gate failed" not in result.stderr


def test_a_gated_metric_no_comparator_carries_is_a_note_and_a_lint_error(cli, project) -> None:
    root = metric_project(project, "gate:\n  min_pass_rate: 0\n  metrics:\n    acuracy: 0.9\n")
    result = cli("run", "--root", root)
    assert result.exit_code == 0, result.output
    assert "gate.metrics.acuracy (promptci.yaml:5): no comparator of this run has `metric: acuracy`" in result.stdout
    lint = cli("lint", "--root", root)
    assert lint.exit_code == 2, lint.output
    assert "promptci.yaml:5" in lint.output and "(did you mean 'accuracy'?)" in lint.output


def test_merged_shards_are_gated_on_their_metrics(cli, project, tmp_path: Path) -> None:
    root = metric_project(project, "gate:\n  min_pass_rate: 0\n  metrics: {accuracy: 0.6}\n")
    files = []
    for index in (1, 2):
        path = tmp_path / f"shard-{index}.json"
        shard = cli("run", "--root", root, "--no-github", "--shard", f"{index}/2", "-q", "-o", f"json={path}")
        assert shard.exit_code in (0, 1), shard.output
        files.append(path)
    merged = cli("merge", "--root", root, "--no-github", "--format", "json", *files)
    assert merged.exit_code == 1, merged.output
    assert json.loads(merged.stdout)["metrics"][0]["mean_score"] == 0.5
    assert "promptci: metric: metric 'accuracy' is 0.500 for echo x echo" in merged.stderr


@pytest.mark.parametrize(("gate", "message"), [
    ("gate:\n  metrics:\n    f1: 1.5\n",
     "promptci.yaml:4: `gate.metrics.f1` must be a number between 0 and 1, got 1.5"),
    ("gate:\n  metrics:\n    f1: high\n",
     "promptci.yaml:4: `gate.metrics.f1` must be a number between 0 and 1, got 'high'"),
    ("gate:\n  metrics: [f1]\n", "promptci.yaml:3: `metrics` must be a mapping"),
    ("gate:\n  metric: {f1: 0.5}\n", "promptci.yaml:3: unknown key 'metric' in `gate` (did you mean 'metrics'?)"),
])
def test_bad_metric_thresholds_name_the_line(tmp_path: Path, gate: str, message: str) -> None:
    (tmp_path / "promptci.yaml").write_text("models: [echo]\n" + gate)
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path)
    assert message in str(error.value), str(error.value)


def test_bad_thresholds_stop_the_run_with_exit_2(cli, project) -> None:
    root = metric_project(project, "gate: {metrics: {accuracy: -1}}\n")
    result = cli("run", "--root", root)
    assert result.exit_code == 2 and "promptci.yaml:2" in result.output


# --- several prompts side by side -----------------------------------------------------------------

SIDES = {
    "prompts/short.txt": "{{ out }}\n",
    "prompts/loud.txt": "{{ out | upper }}\n",
    "promptci.yaml": "models: [echo]\n",
    "goldens/both.yaml": """\
        prompt: [short, loud]
        cases:
          - {id: a, input: {out: x}, expected: x}
          - {id: b, input: {out: y}, expected: y}
        """,
}


def test_prompts_of_one_golden_file_side_by_side_in_json(cli, project) -> None:
    result, document = run_json(cli, project(SIDES))
    assert result.exit_code == 1  # loud says X
    [sides] = document["prompt_sides"]
    assert (sides["file"], sides["prompts"], sides["models"], sides["cases"]) == (
        "goldens/both.yaml", ["short", "loud"], ["echo"], 2)
    assert [(r["prompt"], r["model"], r["passed"], r["total"]) for r in sides["rows"]] == [
        ("short", "echo", 2, 2), ("loud", "echo", 0, 2)]


def test_prompts_side_by_side_in_the_table_and_markdown(cli, project) -> None:
    root = project(SIDES)
    table = cli("run", "--root", root)
    lines = table.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "Prompts side by side: goldens/both.yaml (2 cases)" in line)
    header = next(line for line in lines[start + 1:] if "measure" in line)
    assert header.split() == ["model", "measure", "short", "loud"]
    passed = next(line for line in lines[start:] if " passed " in f" {line} ")
    assert passed.split() == ["echo", "passed", "2/2", "(100%)", "0/2", "(0%)"], table.stdout
    markdown = cli("show", "last", "--root", root, "--format", "markdown").stdout
    assert "| model | measure | `short` | `loud` |" in markdown
    assert "| `echo` | passed | 2/2 (100%) | 0/2 (0%) |" in markdown


def test_prompts_side_by_side_per_model_of_a_matrix(cli, project) -> None:
    files = {**SIDES, "app.py": "def answer(messages, params):\n    return messages[-1]['content'].strip().lower()\n"}
    _, document = run_json(cli, project(files), "-m", "echo", "-m", "python:app:answer")
    [sides] = document["prompt_sides"]
    assert sides["models"] == ["echo", "python:app:answer"]
    assert [(r["model"], r["prompt"], r["passed"]) for r in sides["rows"]] == [
        ("echo", "short", 2), ("echo", "loud", 0), ("python:app:answer", "short", 2),
        ("python:app:answer", "loud", 2)]


def test_a_narrow_terminal_gets_every_prompt_as_records(cli, project) -> None:
    root = project(SIDES)
    result = cli("run", "--root", root, env={"COLUMNS": "30"})
    text = result.stdout
    assert "echo  passed: short 2/2 (100%), loud 0/2 (0%)" in text, text


# --- per-model params ------------------------------------------------------------------------------

PARAMS_CONFIG = """\
models:
  - local:small
  - name: local:big
    params: {max_tokens: 900, seed: 7}
providers:
  local:
    type: openai
    base_url: {url}
    api_key_env: LOCAL_KEY
    params: {max_tokens: 200, temperature: 0.5}
"""


def params_project(project, server: FakeServer) -> Path:
    return project({
        "prompts/p.txt": "---\nparams: {max_tokens: 50, top_p: 0.9, temperature: 0}\n---\nSay {{ word }}\n",
        "goldens/p.yaml": "cases:\n  - {input: {word: hi}, comparators: [{type: contains, value: hi}]}\n",
        "promptci.yaml": PARAMS_CONFIG.replace("{url}", server.openai_base_url),
    })


def test_model_params_win_over_provider_params_over_the_prompts(cli, project, fake_server: FakeServer) -> None:
    root = params_project(project, fake_server)
    result = cli("run", "--root", root, env={"LOCAL_KEY": "sk-test-1234567890"})
    assert result.exit_code == 0, result.output
    sent = {r.body["model"]: r.body for r in fake_server.requests}
    pick = ("max_tokens", "temperature", "top_p", "seed")
    assert {k: sent["small"].get(k) for k in pick} == {"max_tokens": 200, "temperature": 0.5, "top_p": 0.9,
                                                      "seed": None}
    assert {k: sent["big"].get(k) for k in pick} == {"max_tokens": 900, "temperature": 0.5, "top_p": 0.9,
                                                    "seed": 7}


def test_params_are_part_of_the_cache_key(cli, project, fake_server: FakeServer) -> None:
    root = params_project(project, fake_server)
    env = {"LOCAL_KEY": "sk-test-1234567890"}
    assert cli("run", "--root", root, env=env).exit_code == 0
    assert cli("run", "--root", root, env=env).exit_code == 0
    assert fake_server.total == 2  # the second run came from the cache
    config = root / "promptci.yaml"
    config.write_text(config.read_text().replace("max_tokens: 900", "max_tokens: 901"))
    assert cli("run", "--root", root, env=env).exit_code == 0
    assert fake_server.total == 3  # only local:big changed


def test_model_params_apply_to_a_model_given_with_dash_m(cli, project, fake_server: FakeServer) -> None:
    root = params_project(project, fake_server)
    dry = cli("run", "--root", root, "-m", "local:big", "--dry-run", "--format", "json")
    assert dry.exit_code == 0, dry.output
    assert [(r["model"], r["max_tokens"]) for r in json.loads(dry.stdout)["rows"]] == [("local:big", 900)]


def test_dry_run_shows_the_effective_max_tokens(cli, project, fake_server: FakeServer) -> None:
    root = params_project(project, fake_server)
    dry = cli("run", "--root", root, "--dry-run")
    assert dry.exit_code == 0, dry.output
    header = next(line for line in dry.stdout.splitlines() if "max_tokens" in line)
    column = header.index("max_tokens") + len("max_tokens")
    rows = {line.split()[1]: line[:column].split()[-1] for line in dry.stdout.splitlines()
            if line.strip().startswith("p ")}
    assert rows == {"local:small": "200", "local:big": "900"}, dry.stdout


def test_an_environment_adds_to_a_providers_params(tmp_path: Path) -> None:
    (tmp_path / "promptci.yaml").write_text(
        "providers:\n  openai:\n    params: {max_tokens: 100, temperature: 0}\n"
        "environments:\n  staging:\n    providers:\n      openai: {params: {max_tokens: 10}}\n")
    settings = load_settings(tmp_path, "staging")
    assert dict(settings.providers["openai"].params) == {"max_tokens": 10, "temperature": 0}


@pytest.mark.parametrize(("config", "message"), [
    ("providers:\n  openai:\n    params: [max_tokens]\n",
     "promptci.yaml:3: `providers.openai.params` must be a mapping like {temperature: 0, max_tokens: 300}"),
    ("providers:\n  openai:\n    params: {max_tokens: 0}\n",
     "promptci.yaml:3: `providers.openai.params.max_tokens` must be an integer > 0, got 0"),
    ("models:\n  - name: openai:gpt-4o\n    params: {max_tokens: many}\n",
     "promptci.yaml:3: `models.openai:gpt-4o.params.max_tokens` must be an integer > 0"),
    ("models:\n  - params: {max_tokens: 5}\n",
     "promptci.yaml:2: a `models:` entry needs `name:`"),
    ("models:\n  - name: openai:gpt-4o\n    parms: {max_tokens: 5}\n",
     "promptci.yaml:3: unknown key 'parms' in a `models:` entry (did you mean 'params'?)"),
    ("models:\n  - 3\n", "`models[0]` must be a model name like openai:gpt-4o-mini"),
    ("providers:\n  openai:\n    params: {api_key: sk-abc}\n",
     "`providers.openai.params.api_key` looks like a literal API key"),
])
def test_bad_params_name_the_line(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "promptci.yaml").write_text(config)
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path)
    assert message in str(error.value), str(error.value)
    assert "sk-abc" not in str(error.value)


def test_models_entries_give_names_and_params(tmp_path: Path) -> None:
    (tmp_path / "promptci.yaml").write_text(
        "models:\n  - openai:gpt-4o-mini\n  - {name: anthropic:claude-x, params: {max_tokens: 64}}\n")
    settings = load_settings(tmp_path)
    assert settings.models == ("openai:gpt-4o-mini", "anthropic:claude-x")
    assert settings.model_params == {"anthropic:claude-x": {"max_tokens": 64}}
