"""Hostile world, round two (issue 24), money and verdicts: the --max-cost guard bounds what is in flight when
answers are longer than any estimate, and one budget holds for a whole command."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fakeserver import FakeServer

KEY = "sk-test-money-0123456789"
LONG_ANSWER_WORDS = 4000  # the fake server counts a word as a token
INPUT_PRICE, OUTPUT_PRICE = 0.15, 0.60  # USD per million tokens
BUDGET = 0.1


def long_answers(request: dict) -> str:
    return "word " * LONG_ANSWER_WORDS


def money_project(project, server: FakeServer, cases: int, pricing_extra: str = "", prompt_params: str = "") -> Path:
    config = (
        "models: ['local:m']\n"
        f"providers:\n  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: MONEY_KEY}}\n"
        f"pricing:\n  'local:m': {{input: {INPUT_PRICE}, output: {OUTPUT_PRICE}{pricing_extra}}}\n"
    )
    prompt = (f"---\nparams: {{{prompt_params}}}\n---\n" if prompt_params else "") + "answer at length, case {{ n }}\n"
    body = "".join(f"  - id: c{n}\n    input: {{n: {n}}}\n    expected: x\n" for n in range(cases))
    return project({"promptci.yaml": config, "prompts/p.txt": prompt, "goldens/p.yaml": "cases:\n" + body})


def ledger_costs(root: Path) -> list[float]:
    with sqlite3.connect(root / ".promptci" / "promptci.db") as db:
        return [row[0] for row in db.execute("SELECT cost_usd FROM ledger WHERE status = 'ok'")]


def request_cost(output_tokens: int, input_tokens: int = 5) -> float:
    return (input_tokens * INPUT_PRICE + output_tokens * OUTPUT_PRICE) / 1_000_000


@pytest.mark.parametrize("jobs", [1, 8, 64])
def test_long_answers_cannot_carry_spend_past_the_budget(cli, project, fake_server: FakeServer, monkeypatch,
                                                         jobs: int) -> None:
    """No max_tokens and no known maximum output: the worst case of a request is unknown, so requests go one at
    a time and the spend passes the budget by one request at most (it was ~10x at -j 8 and -j 64)."""
    monkeypatch.setenv("MONEY_KEY", KEY)
    fake_server.config.responder = long_answers
    root = money_project(project, fake_server, cases=300)
    result = cli("run", "--root", root, "--max-cost", str(BUDGET), "-j", str(jobs), "--format", "json")
    assert result.exit_code == 1, result.output
    costs = ledger_costs(root)
    assert costs and sum(costs) <= BUDGET + max(costs)
    skipped = [r for r in json.loads(result.stdout)["results"] if r["status"] == "skipped"]
    assert len(skipped) == 300 - len(costs) and all(r["skip_reason"].startswith("budget") for r in skipped)


@pytest.mark.parametrize("jobs", [1, 8, 64])
@pytest.mark.parametrize("bound", ["model", "case"])
def test_a_known_worst_case_is_reserved_in_full(cli, project, fake_server: FakeServer, monkeypatch, jobs: int,
                                                bound: str) -> None:
    """The model's maximum output (pricing `max_output_tokens`) or the case's max_tokens is reserved while a
    request is in flight and settled on its usage: spend <= budget + one request's worst case."""
    monkeypatch.setenv("MONEY_KEY", KEY)
    fake_server.config.responder = long_answers
    worst_tokens = 16384
    if bound == "model":
        root = money_project(project, fake_server, cases=300, pricing_extra=f", max_output_tokens: {worst_tokens}")
    else:
        root = money_project(project, fake_server, cases=300, prompt_params=f"max_tokens: {worst_tokens}")
    result = cli("run", "--root", root, "--max-cost", str(BUDGET), "-j", str(jobs), "--format", "json")
    assert result.exit_code == 1, result.output
    costs = ledger_costs(root)
    assert len(costs) >= 10  # ~41 requests of ~$0.0024 fit in $0.1
    assert sum(costs) <= BUDGET + request_cost(worst_tokens)
    assert max(costs) == pytest.approx(request_cost(LONG_ANSWER_WORDS, input_tokens=5))


def test_diff_sides_share_one_budget(project, fake_server: FakeServer, monkeypatch) -> None:
    """--max-cost is the command's budget: a diff's two sides together spend it once, not once each."""
    from gitrepo import commit, git

    from promptci import api

    monkeypatch.setenv("MONEY_KEY", KEY)
    fake_server.config.responder = long_answers
    root = money_project(project, fake_server, cases=60, prompt_params="max_tokens: 4096")
    (root / ".gitignore").write_text(".promptci/\n")
    git(root, "init", "-q", "-b", "main")
    commit(root, {}, "base")
    changed = (root / "prompts/p.txt").read_text().replace("at length", "at length and well")
    commit(root, {"prompts/p.txt": changed}, "a changed prompt: B is sent")
    budget = 0.05  # ~20 answers of ~$0.0024: less than one side's 60
    outcome = api.diff(api.DiffOptions(run=api.RunOptions(root=root, max_cost=budget, concurrency=8),
                                       before="HEAD~1", after="HEAD"))
    costs = ledger_costs(root)
    assert sum(costs) <= budget + request_cost(4096)
    skipped = [r for run in (outcome.before, outcome.after) for r in run.results if r.status == "skipped"]
    assert len(skipped) == 120 - len(costs) and skipped[-1].case_id == "c59"


def test_a_bad_max_output_tokens_is_refused(cli, project, fake_server: FakeServer, monkeypatch) -> None:
    monkeypatch.setenv("MONEY_KEY", KEY)
    root = money_project(project, fake_server, cases=1, pricing_extra=", max_output_tokens: -3")
    result = cli("run", "--root", root, "--max-cost", "1")
    assert result.exit_code == 2
    assert "pricing.local:m.max_output_tokens" in result.stderr and "promptci.yaml" in result.stderr
    assert fake_server.total == 0


def test_the_guard_waits_for_room_rather_than_skipping() -> None:
    """A request that does not fit while others are in flight waits for them to settle; it is skipped only
    when nothing in flight can make room."""
    import asyncio

    from promptci.cost.budget import BudgetGuard

    async def scenario() -> list[str]:
        guard = BudgetGuard(1.0)
        first = await guard.reserve(0.1, 0.6)
        assert first is not None
        waiting = asyncio.ensure_future(guard.reserve(0.1, 0.6))
        await asyncio.sleep(0)
        assert not waiting.done()  # 0.6 held + 0.6 > 1.0
        guard.settle(first, 0.2)
        second = await waiting
        assert second is not None and guard.in_flight_usd == pytest.approx(0.6)
        alone_later = asyncio.ensure_future(guard.reserve(0.2, None))  # unknown worst case: goes alone only
        await asyncio.sleep(0)
        assert not alone_later.done()
        guard.settle(second, 0.5)
        alone = await alone_later
        assert alone is not None and guard.in_flight == 1
        guard.settle(alone, 5.0)  # an unbounded answer: the one request the budget may be passed by
        return ["skipped" if await guard.reserve(0.0, 0.0) is None else "sent"]

    assert asyncio.run(scenario()) == ["skipped"]


def test_worst_case_of_a_request() -> None:
    from promptci.config import Price
    from promptci.cost.estimate import worst_case_cost
    from promptci.cost.pricing import price_for

    price = Price(1.0, 10.0, max_output_tokens=1000)
    assert worst_case_cost(100, {"max_tokens": 50}, price) == pytest.approx((100 + 500) / 1e6)
    assert worst_case_cost(100, {}, price, provider_default=1024) == pytest.approx((100 + 10240) / 1e6)
    assert worst_case_cost(100, {}, price) == pytest.approx((100 + 10000) / 1e6)
    assert worst_case_cost(100, {}, Price(1.0, 10.0)) is None
    assert price_for("openai:gpt-4o-mini-2024-07-18", {}).max_output_tokens == 16_384
    assert price_for("openai:gpt-4o-mini", {"openai:gpt-4o-mini": Price(1, 2)}, "openai").max_output_tokens == 16_384
    assert price_for("local:gpt-4o-mini", {"local:gpt-4o-mini": Price(1, 2)}).max_output_tokens is None


def test_requests_sent_one_at_a_time_are_named_in_a_note(cli, project, fake_server: FakeServer, monkeypatch) -> None:
    monkeypatch.setenv("MONEY_KEY", KEY)
    root = money_project(project, fake_server, cases=3)
    result = cli("run", "--root", root, "--max-cost", "5", "-j", "4", "--format", "json")
    notes = json.dumps(json.loads(result.stdout))
    assert "local:m without max_tokens went one at a time" in notes and "max_output_tokens" in notes
    bounded = money_project(project, fake_server, cases=3, prompt_params="max_tokens: 50")
    assert "one at a time" not in cli("run", "--root", bounded, "--max-cost", "5", "--no-cache").output


def test_a_model_whose_answers_are_free_needs_no_bound() -> None:
    from promptci.config import Price
    from promptci.cost.estimate import worst_case_cost

    assert worst_case_cost(1_000_000, {}, Price(0.5, 0.0)) == pytest.approx(0.5)
