"""llm_judge and embedding similarity end to end: `promptci run` with the real OpenAI/Anthropic SDKs talking
to the fake server, whose responder answers as the system under test or as the judge by model name."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeserver import FakeServer, running_fake_server, word_vector

from promptci.comparators.judge import JudgeVerdictError, parse_verdict
from promptci.errors import ComparatorError
from promptci.registry import build_comparator

KEY = "sk-test-JUDGE-1234567890"
PROMPT = "Answer about {{ topic }}\n"
GOLDEN = """\
comparators:
  - type: llm_judge
    rubric: The answer is polite and on topic.
    model: local:judge
cases:
  - id: tea
    input: {topic: tea}
    expected: Tea is a drink.
  - id: rude
    input: {topic: rude}
"""
PRICING = "pricing:\n  local:sut: {input: 1.0, output: 2.0}\n  local:judge: {input: 10.0, output: 20.0}\n" \
          "  local:embed: {input: 0.5, output: 0}\n"


def config(server: FakeServer) -> str:
    return (f"timeout_s: 5\nretries: 1\nproviders:\n"
            f"  local: {{type: openai, base_url: '{server.openai_base_url}', api_key_env: FAKE_KEY}}\n"
            f"  claude: {{type: anthropic, base_url: '{server.anthropic_base_url}', api_key_env: FAKE_KEY}}\n"
            + PRICING + "judges: {allow_uncalibrated: true}\n")  # these judges gate, as before calibration


JUDGE_ANSWERS = {
    "tea": '```json\n{"score": 0.9, "pass": true, "reason": "polite and about tea"}\n```',
    "rude": 'Here is my verdict: {"score": 0.1, "pass": false, "reason": "insulting"} Hope it helps.',
}


def responder(judge_answers: dict[str, str]):
    def answer(body: dict[str, Any]) -> str:
        user = body["messages"][-1]["content"]
        if body["model"] in ("judge", "claude-judge"):
            topic = "rude" if "go away" in user else "tea"
            return judge_answers[topic]
        return "go away" if "rude" in user else "Tea is a hot drink, thank you."
    return answer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("FAKE_KEY", KEY)
    with running_fake_server(responder=responder(JUDGE_ANSWERS)) as fake:
        yield fake


def run_json(cli, root: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    result = cli("run", "--root", root, "-m", "local:sut", "--format", "json", *args)
    assert "Traceback" not in result.output, result.output
    return result, json.loads(result.stdout)


def by_case(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["case_id"]: r for r in document["results"]}


def ledger(root: Path) -> list[tuple[str, str, float]]:
    with sqlite3.connect(root / ".promptci" / "promptci.db") as db:
        return db.execute("SELECT kind, model, cost_usd FROM ledger WHERE status = 'ok' ORDER BY id").fetchall()


def test_judge_grades_through_the_client_with_cost_in_result_and_ledger(cli, project, server: FakeServer) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": GOLDEN, "promptci.yaml": config(server)})
    result, document = run_json(cli, root)
    cases = by_case(document)
    assert result.exit_code == 1
    assert cases["tea"]["status"] == "passed"
    assert cases["rude"]["status"] == "failed"
    assert "score 0.10 < threshold 0.5" in cases["rude"]["scores"][0]["reason"]
    assert "insulting" in cases["rude"]["scores"][0]["reason"]
    judge_requests = [r for r in server.requests if r.body["model"] == "judge"]
    assert len(judge_requests) == 2
    assert judge_requests[0].body["response_format"] == {"type": "json_object"}
    assert "Expected answer" in judge_requests[0].body["messages"][1]["content"] or \
        "Expected answer" in judge_requests[1].body["messages"][1]["content"]
    rows = ledger(root)
    assert sorted(kind for kind, _, _ in rows) == ["case", "case", "judge", "judge"]
    by_model: dict[str, float] = {}
    for _, model, cost in rows:
        by_model[model] = by_model.get(model, 0.0) + cost
    assert document["summary"]["cost_usd"] == pytest.approx(by_model["local:sut"] + by_model["local:judge"])
    assert cases["tea"]["cost_usd"] > by_model["local:sut"] / 2  # the judge's share is in the result


def test_judge_answers_come_from_the_cache_the_second_time(cli, project, server: FakeServer) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": GOLDEN, "promptci.yaml": config(server)})
    run_json(cli, root)
    sent = server.total
    result, document = run_json(cli, root)
    assert server.total == sent
    assert document["summary"]["cost_usd"] == 0.0
    assert result.exit_code == 1


def test_repeat_samples_the_judge_too(cli, project, server: FakeServer) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": GOLDEN, "promptci.yaml": config(server)})
    run_json(cli, root, "--repeat", "2")
    assert sum(r.body["model"] == "judge" for r in server.requests) == 4


@pytest.mark.parametrize("answer", ["I cannot grade this output.", '{"score": "high", "pass": true}',
                                    '{"score": 1.7, "pass": true}', '{"verdict": "ok"}'])
def test_malformed_or_refusing_verdict_is_an_error_naming_the_raw_answer(cli, project, server: FakeServer,
                                                                         answer: str) -> None:
    server.config.responder = responder({"tea": answer, "rude": answer})
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": GOLDEN, "promptci.yaml": config(server)})
    result, document = run_json(cli, root)
    assert result.exit_code == 3
    for case in by_case(document).values():
        assert case["status"] == "error"
        assert "raw answer" in case["error"] and json.dumps(answer)[1:20] in case["error"]


def test_anthropic_judge_reads_json_from_text(cli, project, server: FakeServer) -> None:
    golden = GOLDEN.replace("model: local:judge", "model: claude:claude-judge")
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden, "promptci.yaml": config(server)})
    _, document = run_json(cli, root)
    assert {c: r["status"] for c, r in by_case(document).items()} == {"tea": "passed", "rude": "failed"}
    assert any(r.path == "/v1/messages" for r in server.requests)


def test_judge_template_from_prompts_overrides_the_built_in(cli, project, server: FakeServer) -> None:
    golden = GOLDEN.replace("model: local:judge", "model: local:judge\n    template: judges/strict")
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden, "promptci.yaml": config(server),
                    "prompts/judges/strict.txt": "STRICT rubric={{ rubric }} output={{ output }}\n",
                    "goldens/judges/strict.yaml": "cases: []\n"})
    run_json(cli, root, "goldens/ask.yaml")
    judge_bodies = [r.body for r in server.requests if r.body["model"] == "judge"]
    assert judge_bodies and all(b["messages"][-1]["content"].startswith("STRICT rubric=The answer is polite")
                                for b in judge_bodies)


def test_dry_run_estimates_judge_requests(cli, project, server: FakeServer) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": GOLDEN, "promptci.yaml": config(server)})
    result = cli("run", "--root", root, "-m", "local:sut", "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    models = {row["model"]: row for row in document["rows"]}
    assert models["local:judge"]["requests"] == 2
    assert server.total == 0


def test_parse_verdict_reads_fences_and_prose() -> None:
    assert parse_verdict('```json\n{"score": 1, "pass": true, "reason": "ok"}\n```').score == 1.0
    assert parse_verdict('Sure {not json} then {"score": 0.25, "reason": "meh"}').score == 0.25
    with pytest.raises(JudgeVerdictError, match="raw answer"):
        parse_verdict("As an AI I cannot")


@pytest.mark.parametrize(("options", "message"), [
    ({}, "needs a rubric"),
    ({"rubric": "x", "model": "gpt-4o"}, "PROVIDER:MODEL"),
    ({"rubric": "x", "threshold": 2}, "between 0 and 1"),
    ({"rubric": "x", "template": "nope"}, "not a prompt under prompts/"),
])
def test_judge_option_errors(options: dict[str, Any], message: str, tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    with pytest.raises(ComparatorError, match=message):
        build_comparator("llm_judge", options, tmp_path)


# --- similarity: method embedding ---------------------------------------------------------------------

EMBED_GOLDEN = """\
comparators:
  - {type: similarity, method: embedding, model: local:embed, threshold: 0.9}
cases:
  - id: same
    input: {topic: same}
    expected: Tea is a hot drink, thank you.
  - id: other
    input: {topic: other}
    expected: Coffee beans grow on shrubs in the tropics.
"""


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_embedding_similarity_is_the_cosine_of_known_vectors(cli, project, server: FakeServer) -> None:
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": EMBED_GOLDEN, "promptci.yaml": config(server)})
    _, document = run_json(cli, root, "-j", "1")
    cases = by_case(document)
    output = "Tea is a hot drink, thank you."
    for case_id, expected in (("same", output), ("other", "Coffee beans grow on shrubs in the tropics.")):
        want = cosine(word_vector(expected), word_vector(output))
        assert cases[case_id]["scores"][0]["value"] == pytest.approx(want)
    assert cases["same"]["status"] == "passed"
    assert cases["other"]["status"] == ("passed" if cases["other"]["scores"][0]["value"] >= 0.9 else "failed")
    assert [r.path for r in server.requests].count("/v1/embeddings") == 2  # each distinct text once, then cached
    kinds = [kind for kind, _, _ in ledger(root)]
    assert kinds.count("embedding") == 2
    run_json(cli, root)
    assert [r.path for r in server.requests].count("/v1/embeddings") == 2


def test_dry_run_names_the_judge_models_missing_key(cli, project, server: FakeServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    golden = GOLDEN.replace("model: local:judge", "model: openai:gpt-4o-mini")
    root = project({"prompts/ask.txt": PROMPT, "goldens/ask.yaml": golden, "promptci.yaml": config(server)})
    result = cli("run", "--root", root, "-m", "local:sut", "--dry-run")
    assert result.exit_code == 0
    assert "OPENAI_API_KEY is not set: a real run on openai:gpt-4o-mini would stop" in result.output
    real = cli("run", "--root", root, "-m", "local:sut")
    assert real.exit_code == 2 and "OPENAI_API_KEY" in real.stderr
    assert server.total == 0
