"""Team spend over a shared ledger: `cost --by branch,actor`, who spent recorded with each request, and
`cost --check`'s alert (exit 1, a GitHub annotation, a Slack-compatible webhook POST to the fake server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fakeserver import FakeServer, running_fake_server
from olddb import database_at_schema

from promptci.migrations import SCHEMA_VERSION
from promptci.pgstore import PostgresStore
from promptci.spender import spending_actor, spending_branch
from promptci.store import LedgerEntry, Store, now_iso
from promptci.types import GitInfo

TODAY = now_iso()
SPENT = LedgerEntry(at=TODAY, run_id="r1", git_commit="abc", prompt="route", case_id="c1", model="openai:m",
                    provider="openai", cost_usd=0.75, branch="main", actor="alice")
TEAM_LEDGER = [  # two runners' requests today: 1.375 USD in all, past a daily budget of 1.00
    SPENT,
    replace(SPENT, run_id="r2", prompt="summarize", cost_usd=0.5, branch="feature-x", actor="bob"),
    replace(SPENT, run_id="r2", prompt="route", cost_usd=0.125, branch="feature-x", actor="bob"),
    replace(SPENT, run_id="r2", prompt="route", status="cached", cost_usd=0.0, saved_usd=0.75, branch="feature-x",
            actor="bob"),
]


@pytest.fixture
def hooks() -> Iterator[FakeServer]:
    with running_fake_server() as fake:
        yield fake


def team_project(project, postgres_url: str, daily_usd: float = 1.0) -> Path:
    root = project({"promptci.yaml": f"models: [echo]\nbudgets:\n  daily_usd: {daily_usd}\n"}, with_greet=True)
    with PostgresStore.open(postgres_url) as store:
        for entry in TEAM_LEDGER:
            store.record_request(entry)
    return root


def test_cost_groups_the_shared_ledger_by_branch_and_actor(cli, project, postgres_url: str) -> None:
    root = team_project(project, postgres_url)
    result = cli("cost", "--root", root, "--by", "branch,actor", "--format", "json",
                 env={"PROMPTCI_STORE": postgres_url})
    assert result.exit_code == 0, result.output
    rows = {(r["branch"], r["actor"]): (r["requests"], r["cost_usd"], r["cache_hits"])
            for r in json.loads(result.stdout)["rows"]}
    assert rows == {("feature-x", "bob"): (3, 0.625, 1), ("main", "alice"): (1, 0.75, 0)}


def test_check_over_budget_annotates_and_posts_the_top_spenders(cli, project, postgres_url: str,
                                                                hooks: FakeServer) -> None:
    root = team_project(project, postgres_url)
    hook = f"{hooks.url}/hooks/T000/B000/secret-path"
    result = cli("cost", "--root", root, "--check", env={"PROMPTCI_STORE": postgres_url, "GITHUB_ACTIONS": "true",
                                                         "PROMPTCI_SPEND_WEBHOOK": hook})
    assert result.exit_code == 1, result.output
    day = TODAY[:10]
    assert len(hooks.webhooks) == 1 and set(hooks.webhooks[0]) == {"text"}
    text = hooks.webhooks[0]["text"]
    assert text.splitlines() == [
        f"promptci: {day} spent $1.38, over the daily budget of $1.00 by $0.375",
        "top by prompt: route $0.875, summarize $0.50",
        "top by branch: main $0.75, feature-x $0.625",
        "top by actor: alice $0.75, bob $0.625",
    ]
    annotation = next(line for line in result.stderr.splitlines() if line.startswith("::error"))
    assert annotation.startswith("::error title=promptci daily budget::promptci: ")
    assert "%0Atop by prompt: route $0.875" in annotation
    assert hooks.total == 0 and "secret-path" not in result.output


def test_a_webhook_that_refuses_is_a_warning_and_still_exit_1(cli, project, postgres_url: str) -> None:
    root = team_project(project, postgres_url)
    with running_fake_server(webhook_status=500) as hooks:
        result = cli("cost", "--root", root, "--check", env={
            "PROMPTCI_STORE": postgres_url, "PROMPTCI_SPEND_WEBHOOK": f"{hooks.url}/hooks/secret-path"})
    assert result.exit_code == 1
    assert "warning: the webhook in $PROMPTCI_SPEND_WEBHOOK answered HTTP 500" in result.stderr
    assert "secret-path" not in result.output


def test_within_budget_posts_nothing(cli, project, postgres_url: str, hooks: FakeServer) -> None:
    root = team_project(project, postgres_url, daily_usd=5.0)
    result = cli("cost", "--root", root, "--check", env={"PROMPTCI_STORE": postgres_url, "GITHUB_ACTIONS": "true",
                                                         "PROMPTCI_SPEND_WEBHOOK": f"{hooks.url}/hooks/x"})
    assert result.exit_code == 0, result.output
    assert hooks.webhooks == [] and "::error" not in result.output


def test_a_runs_ledger_rows_say_which_branch_and_actor_spent(cli, tmp_path: Path, monkeypatch) -> None:
    with running_fake_server() as server:
        root = tmp_path / "p"
        (root / "prompts").mkdir(parents=True)
        (root / "goldens").mkdir()
        (root / "prompts/greet.txt").write_text("Hello {{ name }}!\n")
        (root / "goldens/greet.yaml").write_text("cases:\n  - id: ada\n    input: {name: Ada}\n    expected: x\n")
        (root / "promptci.yaml").write_text(f"providers:\n  local: {{type: openai, base_url: '{server.openai_base_url}'"
                                            ", api_key_env: FAKE_OPENAI_KEY}\n")
        result = cli("run", "--root", root, "-m", "local:m", env={
            "FAKE_OPENAI_KEY": "sk-test-1234567890", "GITHUB_HEAD_REF": "feat/cheaper", "GITHUB_ACTOR": "carol"})
    assert result.exit_code in (0, 1), result.output
    with Store.open(root / ".promptci" / "promptci.db") as store:
        assert [(e.branch, e.actor) for e in store.ledger()] == [("feat/cheaper", "carol")]


def test_who_spends_prefers_ci_variables_to_the_checkout() -> None:
    git = GitInfo(commit="abc", dirty=False, branch="local-branch")
    assert spending_branch(git, {}) == "local-branch"
    assert spending_branch(git, {"GITHUB_HEAD_REF": "", "GITHUB_REF_NAME": "main"}) == "main"
    assert spending_branch(git, {"GITHUB_HEAD_REF": "pr-head", "GITHUB_REF_NAME": "12/merge"}) == "pr-head"
    assert spending_actor({"USER": "dev"}) == "dev"
    assert spending_actor({"GITHUB_ACTOR": "octocat", "USER": "runner"}) == "octocat"
    assert spending_actor({}) is None


def test_migration_7_adds_branch_and_actor_to_an_older_ledger(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    conn = database_at_schema(path, 6)
    conn.execute("INSERT INTO ledger (at, ts, model, status) VALUES ('2026-11-01T10:00:00Z', 1.0, 'm', 'ok')")
    conn.close()
    with Store.open(path) as store:
        old = store.ledger()
    assert [(e.model, e.branch, e.actor) for e in old] == [("m", None, None)]
    assert SCHEMA_VERSION >= 7
