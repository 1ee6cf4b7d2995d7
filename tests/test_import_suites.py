"""Realistic promptfoo suites (tests/data/promptfoo/orders, tweets) converted, linted and run against the fake
server: each case passes or fails as promptfoo's documented semantics say, and a regression fails exactly
the cases it touches. Also: in-place import, the root check of test globs, counts per assertion."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).parent / "data" / "promptfoo"


def convert(cli, tmp_path: Path, suite: str) -> tuple[dict[str, Any], Path]:
    source = tmp_path / suite
    shutil.copytree(DATA / suite, source)
    out = tmp_path / "out"
    result = cli("import", "promptfoo", source / "promptfooconfig.yaml", "--out", out, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out


def point_at(out: Path, server: Any) -> None:
    """The converted promptci.yaml, with every provider (the judge's and embeddings' openai too) on the fake."""
    config = yaml.safe_load((out / "promptci.yaml").read_text())
    config["providers"] = {name: {"type": "openai", "base_url": server.openai_base_url, "api_key_env": "FAKE_KEY"}
                           for name in ("local", "openai")}
    (out / "promptci.yaml").write_text(yaml.safe_dump(config))


def run(cli, out: Path, *args: str) -> tuple[int, dict[str, str]]:
    result = cli("run", "--root", out, "-m", "local:sut", "--format", "json", "--no-cache", *args,
                 env={"FAKE_KEY": "k"})
    assert "Traceback" not in result.output, result.output
    document = json.loads(result.stdout)
    return result.exit_code, {r["case_id"]: r["status"] for r in document["results"]}


def judge_or(answer: Callable[[str], str]) -> Callable[[dict[str, Any]], str]:
    def respond(request: dict[str, Any]) -> str:
        content = request["messages"][-1]["content"]
        if "Rubric:" in content:
            return json.dumps({"score": 0.4, "pass": True, "reason": "meets the rubric"})
        return answer(content)
    return respond


ORDERS = {
    "MUG-BL) please, shipping": {"items": [{"sku": "MUG-BL", "qty": 2}], "currency": "EUR", "total": 25,
                                 "shipping": {"street": "", "city": "Berlin", "postcode": ""},
                                 "summary": "Two blue mugs shipped to Berlin.", "error": None},
    "teapot": {"items": [{"sku": "TEA-01", "qty": 1}], "currency": "EUR", "total": 30,
               "shipping": {"street": "5 Rue Cler", "city": "Paris", "postcode": "75007"},
               "summary": "One teapot to Paris.", "error": None},
    "notebooks": {"items": [{"sku": "NB-A5", "qty": 3}, {"sku": "PEN-BK", "qty": 12}], "currency": "EUR",
                  "total": 30, "shipping": None, "summary": "Three notebooks and twelve pens.", "error": None},
    "...": {"items": [], "currency": "EUR", "total": 0, "shipping": None, "summary": "", "error": "empty message"},
    "One mug": {"items": [{"sku": "MUG-BL", "qty": 1}], "currency": "EUR", "total": 12.5, "summary": "One mug."},
    "Two teapots": {"items": [{"sku": "TEA-01", "qty": 2}], "currency": "EUR", "total": 60, "summary": "Teapots."},
    "Five pens": {"items": [{"sku": "PEN-BK", "qty": 5}], "currency": "EUR", "total": 7.5, "summary": "Pens."},
}


def orders_answer(changes: dict[str, dict[str, Any]] | None = None) -> Callable[[str], str]:
    def answer(content: str) -> str:
        user = content.split("\n")[-1] if "\n" in content else content
        for key, order in sorted(ORDERS.items(), key=lambda item: -len(item[0])):
            if key in user or (key == "..." and user.strip() == "..."):
                order = {**order, **(changes or {}).get(key, {})}
                return "```json\n" + json.dumps(order) + "\n```"  # the suite's transform strips the fence
        return "{}"
    return answer


def test_orders_suite_converts_runs_and_keeps_promptfoos_verdicts(cli, tmp_path: Path, fake_server) -> None:
    report, out = convert(cli, tmp_path, "orders")
    assert (report["converted"], report["assertions"]) == (22, 22)  # IIFEs, blocks, .cjs, $ref, CSV rows
    config = yaml.safe_load((out / "promptci.yaml").read_text())
    assert config["concurrency"] == 4 and config["gate"] == {"min_pass_rate": 0.9}
    assert config["models"][1] == {"name": "openrouter:meta-llama/llama-3.1-8b-instruct",
                                   "params": {"temperature": 0.2}}
    assert config["providers"]["openrouter"]["base_url"] == "https://openrouter.ai/api/v1"
    assert config["models"][0] == {"name": "openai:gpt-4o-mini", "params": {
        "temperature": 0, "max_tokens": 400, "response_format": {"type": "json_object"}}}
    golden = yaml.safe_load((out / "goldens/extract.yaml").read_text())
    judge = golden["cases"][1]["comparators+"][-1]
    assert judge == {"type": "llm_judge", "rubric": "The summary mentions the teapot and Paris.", "threshold": 0,
                     "model": "openai:gpt-4o", "transform": {"python": "checks.py:transform_default"}}
    lint = cli("lint", "--root", out)
    assert lint.exit_code == 0 and "(0 warning(s))" in lint.output, lint.output
    point_at(out, fake_server)
    fake_server.config.responder = judge_or(orders_answer())
    code, statuses = run(cli, out)
    # Every case passes under promptfoo's rules: the fenced JSON is unfenced by defaultTest.options.transform;
    # fieldScore returns 3/4 = 0.75 >= its threshold 0.75; the reduce returns 15 >= 15; items.length (2) > 0
    # passes without a threshold; the judge passes with score 0.4 (no threshold: its own pass decides).
    assert statuses == dict.fromkeys(["two-mugs", "address-is-complete", "quantity-words-are-numbers",
                                      "refuses-an-empty-message", "single-mug", "two-teapots", "five-pens"],
                                     "passed")
    assert code == 0
    broken = orders_answer({"MUG-BL) please, shipping": {"total": 24},  # totalMatches: 2 x 12.5 is 25
                            "Two teapots": {"items": [{"sku": "TEA-01", "qty": "2"}]},  # '2' !== 2
                            "Five pens": {"items": [{"sku": "PEN-BK", "qty": "5"}]}})  # '5' > 0 still holds
    fake_server.config.responder = judge_or(broken)
    code, statuses = run(cli, out)
    assert {case for case, status in statuses.items() if status != "passed"} == {"two-mugs", "two-teapots"}
    assert code == 1


TWEETS = {
    "Rocket Skates": "Rocket Skates are here, faster than ever! Roll into spring with Acme. #skate",
    "Quiet Fan": "Meet the Quiet Fan from Acme: cool air, no noise. #calm",
    "Solar Lamp": "Solar Lamp by Acme, only $49. Sunshine all night. #solar",
    "Party Kit": "Party Kit is here, let's go #party",
}


def tweets_answer(changes: dict[str, str] | None = None) -> Callable[[str], str]:
    answers = {**TWEETS, **(changes or {})}
    return lambda content: next(text for product, text in answers.items() if product in content)


def test_tweets_suite_keeps_numeric_scores_and_names_what_it_drops(cli, tmp_path: Path, fake_server) -> None:
    report, out = convert(cli, tmp_path, "tweets")
    assert (report["converted"], report["assertions"]) == (12, 15)
    named = {(item["file"], item["line"], item["type"]) for item in report["not_converted"]}
    assert named == {("data/more.jsonl", 2, "javascript"), ("promptfooconfig.yaml", 4, "prompt"),
                     ("promptfooconfig.yaml", 50, "case"), ("promptfooconfig.yaml", 55, "factuality"),
                     ("promptfooconfig.yaml", 57, "webhook")}
    golden = yaml.safe_load((out / "goldens/tweet.yaml").read_text())
    assert [case["id"] for case in golden["cases"]] == [  # the judge-only case is not imported as passing
        "launch-tweet-mentions-the-product", "no-shouting", "price-is-stated", "emoji-budget"]
    assert "from_json" in (out / "prompts/tweet.txt").read_text()  # Nunjucks `| load`
    assert "# TODO promptfoo javascript (data/more.jsonl:2) not converted" in (out / "goldens/tweet.yaml").read_text()
    assert cli("lint", "--root", out).exit_code == 0
    point_at(out, fake_server)
    fake_server.config.responder = judge_or(tweets_answer())
    code, statuses = run(cli, out)
    assert set(statuses.values()) == {"passed"} and len(statuses) == 4 and code == 0
    long_tweet = "Rocket Skates are here, faster than ever! #skate " + "wheee " * 42  # 300 characters
    assert len(long_tweet.strip()) == 300
    fake_server.config.responder = judge_or(tweets_answer({
        "Rocket Skates": long_tweet.strip(),  # 280/300 = 0.93 >= 0.9: promptfoo still passes it
        "Quiet Fan": "MEET THE QUIET FAN FROM ACME, COOL AIR, ZERO NOISE #calm",  # shouting
        "Solar Lamp": "Solar Lamp by Acme, only $149. #solar",  # parseFloat('149') < 100 fails
    }))
    code, statuses = run(cli, out)
    assert {case for case, status in statuses.items() if status != "passed"} == {"no-shouting", "price-is-stated"}
    assert code == 1


def test_import_in_place_converts_promptfoo_prompt_files(cli, tmp_path: Path) -> None:
    source = tmp_path / "orders"
    shutil.copytree(DATA / "orders", source)
    (source / "prompts/legacy.yaml").write_text("- role: user\n  content: '{{ x }}'\n")  # promptfoo's shape
    result = cli("import", "promptfoo", source / "promptfooconfig.yaml", "--out", source)
    assert result.exit_code == 0, result.output
    assert "prompts/extract.yaml:1: prompt: converted in place" in result.stdout
    assert "prompts/legacy.yaml:1: prompt: not a promptci prompt" in result.stdout
    assert "messages" in yaml.safe_load((source / "prompts/extract.yaml").read_text())
    (source / "prompts/legacy.yaml").unlink()
    lint = cli("lint", "--root", source)
    assert lint.exit_code == 0, lint.output


def test_a_tests_glob_outside_the_config_folder_is_refused_before_globbing(cli, tmp_path: Path) -> None:
    config = tmp_path / "a" / "b" / "promptfooconfig.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("prompts: [hi]\ntests: file://../../../../**/*.csv\n")
    result = cli("import", "promptfoo", config, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "points outside the config's folder" in result.stderr, result.output


def test_counts_are_per_assertion_for_multi_assertion_rows(cli, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "promptfooconfig.yaml").write_text("prompts: ['Say {{ w }}']\ntests: file://rows.jsonl\n")
    rows = [{"vars": {"w": "hi"}, "assert": [{"type": "contains", "value": "hi"}, {"type": "contains", "value": "h"},
                                             {"type": "webhook", "value": "u"}]},
            {"vars": {"w": "yo"}, "assert": [{"type": "contains", "value": "yo"}, {"type": "icontains", "value": "Y"}]}]
    (source / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = cli("import", "promptfoo", source / "promptfooconfig.yaml", "--out", tmp_path / "out",
                 "--format", "json")
    report = json.loads(result.stdout)
    assert (report["converted"], report["assertions"]) == (4, 5)


@pytest.mark.parametrize(("prompts", "message"), [
    ("[file://prompts.mjs:build]", "no prompt could be converted (a prompt function (prompts.mjs:build)"),
])
def test_a_config_whose_only_prompt_is_a_function_is_refused_by_name(cli, tmp_path: Path, prompts: str,
                                                                     message: str) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(f"prompts: {prompts}\ntests: [{{vars: {{x: 1}}}}]\n")
    result = cli("import", "promptfoo", config, "--out", tmp_path / "out")
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not (tmp_path / "out").exists()
