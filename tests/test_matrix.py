"""Model against model: `run -m A -m B --baseline-model A` against the fake server answering differently per
model name (side-by-side report, upgrade verdict exit codes, gates), drift across two runs, and the verdict's
statistics checked by a seeded simulation (a noisy but equal candidate must not fail)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server

from promptci.matrix import compare_models, sign_test_p
from promptci.types import CaseResult, GitInfo, Run, Summary

KEY = "sk-test-MATRIX-1234567890"
CASES = 20
# Cases n < CORRECT[model] are answered right.
CORRECT = {"base": 12, "worse": 4, "better": 20, "same": 12, "pricey": 12}


def responder(body: dict[str, Any]) -> str:
    n = int(body["messages"][-1]["content"].split()[-1])
    return "A" if n < CORRECT[body["model"]] else "B"


def files(server: FakeServer) -> dict[str, str]:
    cases = "\n".join(f"  - id: c{n:02d}\n    input: {{n: {n}}}\n    expected: A" for n in range(CASES))
    return {
        "prompts/route.txt": "route case {{ n }}\n",
        "goldens/route.yaml": f"cases:\n{cases}\n",
        "promptci.yaml": (f"timeout_s: 5\nretries: 1\nproviders:\n"
                          f"  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: FAKE_KEY}}\n"
                          "pricing:\n" + "".join(f"  local:{m}: {{input: 1.0, output: 1.0}}\n" for m in CORRECT
                                                 if m != "pricey")
                          + "  local:pricey: {input: 5.0, output: 5.0}\n"),
    }


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FAKE_KEY", KEY)
    with running_fake_server(responder=responder) as fake:
        yield fake


@pytest.fixture
def root(project, server: FakeServer) -> Path:
    return project(files(server))


def matrix_run(cli, root: Path, *models: str, args: tuple[str, ...] = (), fmt: str = "json") -> Any:
    model_args = [a for m in models for a in ("-m", f"local:{m}")]
    return cli("run", "--root", root, *model_args, "--format", fmt, *args)


@pytest.mark.parametrize(("candidate", "exit_code", "words"), [
    ("worse", 1, "1 prompt worse (route -40 pts)"),
    ("same", 0, "1 prompt equal"),
    ("better", 0, "1 prompt better (route +40 pts)"),
])
def test_upgrade_verdict_exit_codes(cli, root: Path, candidate: str, exit_code: int, words: str) -> None:
    result = matrix_run(cli, root, "base", candidate, args=("--baseline-model", "local:base"))
    assert result.exit_code == exit_code, result.output
    document = json.loads(result.stdout)
    assert any(words in note for note in document["notes"]), document["notes"]
    verdict = document["matrix"]["verdict"]
    assert verdict["baseline"] == "local:base" and verdict["fails"] is (exit_code == 1)
    assert verdict["candidates"][0]["prompts"][0]["outcome"] == words.split()[2]


def test_without_baseline_a_failing_case_still_fails_the_run(cli, root: Path) -> None:
    assert matrix_run(cli, root, "base", "same").exit_code == 1  # base fails 8 cases: the usual gate


def test_side_by_side_table_and_disagreements(cli, root: Path) -> None:
    result = matrix_run(cli, root, "base", "better", args=("--baseline-model", "local:base"), fmt="table")
    out = result.stdout
    assert result.exit_code == 0, result.output
    assert out.index("note: local:better vs local:base: 1 prompt better") < out.index("Results")
    assert "Models side by side" in out and "pass rate [95% CI]" in out
    assert "60% [39-78] (12/20)" in out and "100% [84-100] (20/20)" in out
    assert "8 case(s) where the models disagree" in out
    assert "local:base failed: B" in out and "local:better passed: A" in out


def test_markdown_and_json_carry_the_matrix(cli, root: Path, tmp_path: Path) -> None:
    md, html = tmp_path / "report.md", tmp_path / "report.html"
    result = matrix_run(cli, root, "base", "worse", args=("--baseline-model", "local:base", "-o", f"markdown={md}",
                                                          "-o", f"html={html}"))
    assert "local:worse vs local:base: 1 prompt worse (route -40 pts)" in html.read_text()
    document = json.loads(result.stdout)
    shown = json.loads(cli("show", "--root", root, "last", "--format", "json").stdout)
    assert shown["notes"] == document["notes"] and shown["matrix"]["verdict"]["fails"] is True
    prompts = document["matrix"]["prompts"]
    assert [(c["model"], c["passed"], c["scored"]) for c in prompts[0]["models"]] == [
        ("local:base", 12, 20), ("local:worse", 4, 20)]
    assert len(document["matrix"]["disagreements"]) == 8
    text = md.read_text()
    assert text.index("**note:**") < text.index("### Models side by side")
    assert "| `route` | pass rate [95% CI] | 60% [39-78] (12/20) | 20% [8-42] (4/20) |" in text


def test_cost_gate_fails_a_pricier_candidate(cli, root: Path) -> None:
    args = ("--baseline-model", "local:base")
    assert matrix_run(cli, root, "base", "pricey", args=args).exit_code == 0
    result = matrix_run(cli, root, "base", "pricey", args=(*args, "--gate", "cost"))
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert any("gate cost x5.00" in note and "FAILS" in note for note in document["notes"])
    [finding] = document["verdict"]["findings"]
    assert finding["gate"] == "cost" and finding["subjects"] == ["local:pricey"] and "x5.00" in finding["message"]


@pytest.mark.parametrize(("args", "message"), [
    (("--baseline-model", "local:other"), "is not in the run's models"),
    (("--gate", "cost"), "add --baseline-model"),
    (("--baseline-model", "local:base", "--gate", "speed"), "--gate 'speed' is not known"),
])
def test_bad_matrix_options_are_usage_errors(cli, root: Path, args: tuple[str, ...], message: str,
                                             server: FakeServer) -> None:
    result = matrix_run(cli, root, "base", "same", args=args)
    assert result.exit_code == 2 and message in result.stderr
    assert server.total == 0


# --- drift ---------------------------------------------------------------------------------------------

def test_drift_is_noted_and_fails_with_fail_on_drift(cli, root: Path, server: FakeServer) -> None:
    first = matrix_run(cli, root, "better")
    assert first.exit_code == 0 and json.loads(first.stdout)["notes"] == []
    server.config.model_suffix = "-2025-01-01"
    second = matrix_run(cli, root, "better", args=("--no-cache",))
    notes = json.loads(second.stdout)["notes"]
    assert second.exit_code == 0
    assert notes == [next(n for n in notes if n.startswith("model drift: local:better now resolves to "
                                                          "better-2025-01-01"))]
    assert "better-2024-07-18" in notes[0]
    third = matrix_run(cli, root, "better", args=("--no-cache", "--fail-on-drift"))
    assert third.exit_code == 0  # same version as the run before: no drift
    server.config.model_suffix = "-2025-02-02"
    table = matrix_run(cli, root, "better", args=("--no-cache", "--fail-on-drift"), fmt="table")
    assert table.exit_code == 1
    assert table.stdout.startswith("note: model drift: local:better now resolves to better-2025-02-02")
    shown = cli("show", "--root", root, "last")
    assert shown.stdout.startswith("note: model drift: local:better now resolves to better-2025-02-02"), shown.output


# --- the statistics, by simulation -----------------------------------------------------------------------

def result(prompt: str, case: int, model: str, passed: bool, repeat: int = 0, latency: float = 100.0,
           cost: float = 0.001) -> CaseResult:
    return CaseResult(prompt=prompt, case_id=f"c{case}", file=f"goldens/{prompt}.yaml", line=case + 1, model=model,
                      status="passed" if passed else "failed", repeat=repeat, cost_usd=cost, latency_ms=latency)


def make_run(results: list[CaseResult], models: tuple[str, ...] = ("a", "b")) -> Run:
    return Run("r", "2026-01-01T00:00:00Z", None, GitInfo(), models, tuple(results), Summary())


def simulated_run(rng: random.Random, repeats: int, drop: float = 0.0, prompts: int = 3, cases: int = 12) -> Run:
    results = []
    for p in range(prompts):
        for c in range(cases):
            chance = rng.uniform(0.3, 1.0)  # noisy cases: each sample passes by chance
            for k in range(repeats):
                results.append(result(f"p{p}", c, "a", rng.random() < chance, k))
                results.append(result(f"p{p}", c, "b", rng.random() < max(0.0, chance - drop), k))
    return make_run(results)


@pytest.mark.parametrize("repeats", [1, 4])
def test_noisy_equal_candidate_rarely_fails(repeats: int) -> None:
    rng = random.Random(1234 + repeats)
    trials = 150
    alarms = sum(compare_models(simulated_run(rng, repeats), "a").fails for _ in range(trials))
    assert alarms <= trials * 0.05 + 4, f"{alarms} false alarms in {trials} equal runs"


@pytest.mark.parametrize("repeats", [1, 4])
def test_a_real_drop_is_caught(repeats: int) -> None:
    rng = random.Random(99 + repeats)
    caught = sum(compare_models(simulated_run(rng, repeats, drop=0.6), "a").fails for _ in range(20))
    assert caught >= 18


def test_sign_test_matches_the_binomial_tail() -> None:
    assert sign_test_p(0, 8) == pytest.approx(1 / 256)
    assert sign_test_p(8, 0) == 1.0
    assert sign_test_p(2, 2) == pytest.approx(11 / 16)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert sign_test_p(3, 11) == pytest.approx(scipy_stats.binomtest(11, 14, 0.5, alternative="greater").pvalue)


def test_latency_gate_needs_both_a_share_and_an_amount() -> None:
    def run_with(latency_b: float) -> Run:
        return make_run([r for c in range(10) for r in (result("p", c, "a", True, latency=400.0),
                                                        result("p", c, "b", True, latency=latency_b))])

    assert not compare_models(run_with(490.0), "a", gates=("latency",)).fails  # +22% but only +90 ms
    assert not compare_models(run_with(470.0), "a", gates=("latency",)).fails
    failing = compare_models(run_with(700.0), "a", gates=("latency",))
    assert failing.fails and "latency x1.75" in failing.candidates[0].line()
    assert "p95 +300 ms" in failing.candidates[0].line()
