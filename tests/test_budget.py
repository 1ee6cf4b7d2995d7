"""Run budgets: once spent + in-flight estimates would pass the budget, nothing more is sent."""

from __future__ import annotations

import json
from pathlib import Path

from fakeserver import FakeServer

KEY = "sk-test-budget-0123456789"
PROMPT = "---\nparams: {max_tokens: 10}\n---\nplease repeat these words for case {{ n }}\n"


def budget_project(project, server: FakeServer, cases: int, extra_config: str = "") -> Path:
    config = (
        "models: ['local:m']\nconcurrency: 1\n"
        f"providers:\n  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: BUDGET_KEY}}\n"
        "pricing:\n  'local:m': {input: 1000, output: 1000}\n" + extra_config
    )
    body = "".join(f"  - id: c{n}\n    input: {{n: {n}}}\n    expected: x\n" for n in range(cases))
    return project({"promptci.yaml": config, "prompts/p.txt": PROMPT, "goldens/p.yaml": "cases:\n" + body,
                    })


def test_max_cost_stops_sending_and_skips_the_rest(cli, project, fake_server: FakeServer, monkeypatch) -> None:
    monkeypatch.setenv("BUDGET_KEY", KEY)
    root = budget_project(project, fake_server, cases=20)
    result = cli("run", "--root", root, "--max-cost", "0.1", "--format", "json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    sent = [r for r in document["results"] if r["status"] != "skipped"]
    skipped = [r for r in document["results"] if r["status"] == "skipped"]
    assert fake_server.total == len(sent) > 0
    assert skipped and all(r["skip_reason"].startswith("budget") for r in skipped)
    # each request: 8 words in, 8 out at $1000/M tokens = $0.016; the guard reserves more than that up front
    assert document["summary"]["cost_usd"] <= 0.1
    assert abs(document["summary"]["cost_usd"] - sum(r["cost_usd"] for r in sent)) < 1e-9


def test_budget_from_config_and_a_budget_that_is_enough(cli, project, fake_server: FakeServer,
                                                        monkeypatch) -> None:
    monkeypatch.setenv("BUDGET_KEY", KEY)
    root = budget_project(project, fake_server, cases=3, extra_config="budgets: {run_usd: 0.03}\n")
    assert cli("run", "--root", root).exit_code == 1
    assert 0 < fake_server.total < 3
    fake_server.reset()
    enough = cli("run", "--root", root, "--max-cost", "5", "--no-cache", "--format", "json")
    assert enough.exit_code == 1  # the goldens expect "x": the cases run and fail, none is skipped
    statuses = {r["status"] for r in json.loads(enough.stdout)["results"]}
    assert statuses == {"failed"} and fake_server.total == 3


def test_a_budget_with_an_unknown_price_is_refused_before_sending(cli, project, fake_server: FakeServer,
                                                                  monkeypatch) -> None:
    monkeypatch.setenv("BUDGET_KEY", KEY)
    root = budget_project(project, fake_server, cases=2)
    config = root / "promptci.yaml"
    config.write_text(config.read_text().replace("  'local:m':", "  'local:other':"))
    result = cli("run", "--root", root, "--max-cost", "1")
    assert result.exit_code == 2
    assert "local:m" in result.stderr and "pricing" in result.stderr
    assert fake_server.total == 0


def test_list_prices_do_not_apply_behind_your_own_base_url(cli, project, fake_server: FakeServer,
                                                           monkeypatch) -> None:
    """gpt-4o-mini served by a local vLLM is not billed at OpenAI's list price: its cost is unknown."""
    monkeypatch.setenv("BUDGET_KEY", KEY)
    config = (f"models: ['local:gpt-4o-mini']\nproviders:\n  local: {{type: openai, base_url: "
              f"'{fake_server.openai_base_url}', api_key_env: BUDGET_KEY}}\n")
    root = project({"promptci.yaml": config, "prompts/p.txt": "hi there",
                    "goldens/p.yaml": "cases:\n  - input: {}\n    expected: hi there\n"})
    result = cli("run", "--root", root, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["results"][0]["cost_usd"] is None and document["summary"]["cost_unknown"] == 1
    (root / "promptci.yaml").write_text(config + "pricing:\n  'local:gpt-4o-mini': {input: 0, output: 0}\n")
    priced = json.loads(cli("run", "--root", root, "--no-cache", "--format", "json").stdout)
    assert priced["results"][0]["cost_usd"] == 0.0 and priced["summary"]["cost_unknown"] == 0
