"""promptci.yaml -> Settings: defaults, every section, --env, and every problem at promptci.yaml:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_project import make_project

from promptci.config import Budgets, Gate, Price, ProviderSettings, load_settings
from promptci.errors import ConfigError, ExitCode
from promptci.project import find_root


def write_config(root: Path, text: str) -> Path:
    return make_project(root, {"promptci.yaml": text})


def problems_of(root: Path, environment: str | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(root, environment)
    assert info.value.exit_code == ExitCode.USAGE
    return [str(p) for p in info.value.problems]


def test_find_root_walks_up_to_config_or_project_folders(tmp_path: Path) -> None:
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "promptci.yaml").write_text("")
    assert find_root(tmp_path / "a" / "b" / "c") == (tmp_path / "a").resolve()
    other = tmp_path / "x"
    (other / "prompts" / "sub").mkdir(parents=True)
    (other / "goldens").mkdir()
    assert find_root(other / "prompts" / "sub") == other.resolve()


def test_find_root_needs_both_folders_without_config(tmp_path: Path) -> None:
    (tmp_path / "only" / "prompts").mkdir(parents=True)
    found = find_root(tmp_path / "only")
    assert found != (tmp_path / "only").resolve()


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    settings = load_settings(make_project(tmp_path))
    assert settings.config_path is None
    assert settings.root == tmp_path.resolve()
    assert (settings.concurrency, settings.timeout_s, settings.retries) == (8, 60.0, 4)
    assert [c.type for c in settings.comparators] == ["exact"]
    assert set(settings.providers) == {"openai", "anthropic"}
    assert settings.gate == Gate(1.0)


FULL_CONFIG = """\
models: [openai:gpt-4o-mini, local:llama3.1:8b]
concurrency: 3
timeout_s: 12.5
retries: 0
comparators:
  - exact
  - {type: contains, value: ok}
providers:
  local:
    type: openai
    base_url: http://127.0.0.1:11434/v1
    api_key_env: LOCAL_KEY
    rpm: 600
    headers: {X-Team: evals}
  openai:
    rpm: 100
environments:
  staging:
    providers:
      openai: {base_url: https://gw.staging/v1, api_key_env: STAGING_OPENAI_API_KEY}
pricing:
  openai:gpt-4o-mini: {input: 0.15, output: 0.60}
  local:llama3.1:8b: {input: 0, output: 0, cached_input: 0}
budgets:
  run_usd: 2.00
  daily_usd: 25
gate:
  min_pass_rate: 0.9
"""


def test_every_section_is_read(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, FULL_CONFIG))
    assert settings.config_path == tmp_path.resolve() / "promptci.yaml"
    assert settings.models == ("openai:gpt-4o-mini", "local:llama3.1:8b")
    assert (settings.concurrency, settings.timeout_s, settings.retries) == (3, 12.5, 0)
    assert [(c.type, dict(c.options)) for c in settings.comparators] == [("exact", {}), ("contains", {"value": "ok"})]
    assert str(settings.comparators[1].location) == "promptci.yaml:7"
    local = settings.providers["local"]
    assert local == ProviderSettings("local", "openai", "http://127.0.0.1:11434/v1", "LOCAL_KEY", 600.0,
                                     {"headers": {"X-Team": "evals"}})
    assert settings.providers["openai"].rpm == 100
    assert settings.providers["openai"].base_url is None
    assert settings.pricing["openai:gpt-4o-mini"] == Price(0.15, 0.60)
    assert settings.pricing["local:llama3.1:8b"] == Price(0, 0, 0)
    assert settings.budgets == Budgets(2.0, 25.0)
    assert settings.gate.min_pass_rate == 0.9


def test_environment_overlays_provider_fields(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, FULL_CONFIG), "staging")
    openai = settings.providers["openai"]
    assert (openai.base_url, openai.api_key_env, openai.rpm) == ("https://gw.staging/v1", "STAGING_OPENAI_API_KEY", 100)
    assert settings.environment == "staging"
    assert settings.providers["local"].base_url == "http://127.0.0.1:11434/v1"


def test_models_may_be_a_single_string(tmp_path: Path) -> None:
    assert load_settings(write_config(tmp_path, "models: echo\n")).models == ("echo",)


def test_unknown_environment_lists_known_ones(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path, FULL_CONFIG), "stagin")
    assert len(problems) == 1
    assert "unknown environment 'stagin'" in problems[0]
    assert "did you mean 'staging'" in problems[0]
    assert "known: staging" in problems[0]


def test_unknown_key_names_it_and_suggests(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path, "models: [echo]\nconcurency: 4\n"))
    assert len(problems) == 1
    assert problems[0].startswith("promptci.yaml:2: unknown key 'concurency'")
    assert "did you mean 'concurrency'" in problems[0]
    assert "known keys: models, concurrency" in problems[0]


def test_all_problems_are_collected(tmp_path: Path) -> None:
    text = "concurrency: 0\ntimeout_s: -1\ngate: {min_pass_rate: 1.5}\nbudgets: {run_usd: nope}\nretries: true\n"
    problems = problems_of(write_config(tmp_path, text))
    assert [p.split(":")[1] for p in problems] == ["1", "2", "3", "4", "5"]
    assert "`concurrency` must be an integer between 1 and 512, got 0" in problems[0]
    assert "`gate.min_pass_rate` must be a number between 0 and 1, got 1.5" in problems[2]


def test_literal_api_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    text = "providers:\n  local:\n    type: openai\n    api_key: sk-live-SECRET123\n"
    problems = problems_of(write_config(tmp_path, text))
    assert len(problems) == 1
    assert problems[0].startswith("promptci.yaml:4: `providers.local.api_key` looks like a literal API key")
    assert "api_key_env" in problems[0]
    assert "SECRET123" not in problems[0]


def test_key_pasted_into_api_key_env_is_refused(tmp_path: Path) -> None:
    text = "providers:\n  openai:\n    api_key_env: sk-proj-SECRET123\n"
    problems = problems_of(write_config(tmp_path, text))
    assert problems and all("SECRET123" not in p for p in problems)
    assert any(p.startswith("promptci.yaml:3:") and "api_key_env" in p for p in problems)


def test_named_provider_needs_a_known_type(tmp_path: Path) -> None:
    text = "providers:\n  local:\n    base_url: http://x\n  other:\n    type: opneai\n"
    problems = problems_of(write_config(tmp_path, text))
    assert problems[0].startswith("promptci.yaml:2: provider 'local' needs `type:`")
    assert problems[1].startswith("promptci.yaml:5: unknown provider type 'opneai'")
    assert "did you mean 'openai'" in problems[1]


def test_environment_overriding_an_unknown_provider(tmp_path: Path) -> None:
    text = "environments:\n  ci:\n    providers:\n      lokal: {base_url: http://x}\n"
    problems = problems_of(write_config(tmp_path, text))
    assert problems[0].startswith("promptci.yaml:4: environment 'ci' overrides unknown provider 'lokal'")


def test_unknown_comparator_in_config_lists_known_ones(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path, "comparators:\n  - exact\n  - exakt\n"))
    assert len(problems) == 1
    assert problems[0].startswith("promptci.yaml:3: unknown comparator 'exakt'")
    assert "exact" in problems[0] and "regex" in problems[0]


def test_malformed_config_yaml_names_the_line(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path, "models: [echo]\nconcurrency: 4\n  bad: [\n"))
    assert problems[0].startswith("promptci.yaml:3: invalid YAML")


def test_pricing_needs_input_and_output(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path, "pricing:\n  openai:gpt-4o: {input: 1}\n"))
    assert problems == ["promptci.yaml:2: pricing for 'openai:gpt-4o' needs output (USD per million tokens)"]
