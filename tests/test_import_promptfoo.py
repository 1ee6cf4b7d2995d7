"""`promptci import promptfoo`: the realistic suites in tests/data/promptfoo convert, name what they cannot,
and (once the goldens comparators are registered) run against the fake server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from promptci import registry

DATA = Path(__file__).parent / "data" / "promptfoo"
NEW_COMPARATORS = {"expr", "is_json", "starts_with", "not_regex", "levenshtein", "json_fields"}


def convert(cli, tmp_path: Path, suite: str, *args: str):
    source = tmp_path / suite
    shutil.copytree(DATA / suite, source)
    out = tmp_path / "out"
    result = cli("import", "promptfoo", source / "promptfooconfig.yaml", "--out", out, *args)
    return result, out


def test_support_suite_converts_every_assertion_into_checks(cli, tmp_path: Path) -> None:
    result, out = convert(cli, tmp_path, "support", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["converted"] == 22 and report["assertions"] == 22
    assert report["not_converted"] == []
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "checks.py", "data/regressions.csv", "goldens/triage-regressions.yaml", "goldens/triage.yaml",
        "promptci.yaml", "promptfoo_js.py", "prompts/triage.txt"]
    config = yaml.safe_load((out / "promptci.yaml").read_text())
    assert config == {"models": ["openai:gpt-4o-mini", "local-vllm:gpt-4o-mini"],
                      "judges": {"allow_uncalibrated": True},  # its llm-rubric gates, as in promptfoo
                      "providers": {"local-vllm": {"type": "openai", "base_url": "http://localhost:8000/v1",
                                                   "api_key_env": "VLLM_API_KEY"}}}
    assert (out / "prompts/triage.txt").read_text().startswith("---\nparams:\n  temperature: 0\n  max_tokens: 300\n")
    csv_golden = yaml.safe_load((out / "goldens/triage-regressions.yaml").read_text())
    assert csv_golden["cases_from"] == "data/regressions.csv"
    assert csv_golden["comparators"][-1] == {"type": "python", "function": "checks.py:check_declined_card"}
    rows = (out / "data/regressions.csv").read_text().splitlines()
    assert rows[0] == "id,description,product,ticket,expected_category" and len(rows) == 7
    golden = yaml.safe_load((out / "goldens/triage.yaml").read_text())
    assert [c["description"] for c in golden["cases"]] == [
        "Refund request is billing", "Outage is urgent", "How-to summary stays short", "Confidence is a probability"]
    assert golden["comparators"][0] == {"type": "is_json"}
    assert golden["comparators"][2] == {"type": "python", "function": "checks.py:check_default_2",
                                        "metric": "valid_priority"}
    first = golden["cases"][0]["comparators+"]
    assert first[0] == {"type": "python", "function": "checks.py:check_refund_request_is_billing",
                        "metric": "accuracy"}
    assert first[2] == {"type": "latency", "max_ms": 5000}
    assert golden["cases"][1]["input"]["ticket"].startswith("Since 09:40 UTC")  # a file:// var, inlined
    assert golden["cases"][2]["comparators+"][-1] == {"type": "llm_judge", "threshold": 0,
                                                      "rubric": "The summary is polite and does not promise a "
                                                                "timeline."}
    checks = (out / "checks.py").read_text()
    assert "#   return data.tags.every(t => typeof t === 'string');" in checks  # the source stays beside it


def test_chat_suite_names_every_item_and_keeps_no_key(cli, tmp_path: Path) -> None:
    result, out = convert(cli, tmp_path, "chat")
    assert result.exit_code == 0, result.output
    for line in ("promptfooconfig.yaml:5: template: prompt 'one_liner': Nunjucks filter `dump`",
                 "promptfooconfig.yaml:9: provider: `apiKey` is not copied",
                 "promptfooconfig.yaml:13: env:", "tests/basics.yaml:25: contains-json:",
                 "tests/basics.yaml:26: javascript: javascript that does not translate: checks/notes.js does not "
                 "exist"):
        assert line in result.stdout
    written = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert "do-not-copy" not in written + result.output
    chat = yaml.safe_load((out / "prompts/notes_chat.yaml").read_text())
    assert chat["messages"][0] == {"role": "system", "content": "You write terse release notes in {{ language }}."}
    golden = yaml.safe_load((out / "goldens/promptfoo.yaml").read_text())
    assert golden["prompt"] == ["notes_chat", "one_liner"]
    ids = [case["id"] for case in golden["cases"]]
    assert ids == ["dark-mode-note-1", "dark-mode-note-2", "exact-echo-of-the-changes-line", "case-4"]
    assert [c["input"]["language"] for c in golden["cases"][:2]] == ["English", "German"]
    echo = golden["cases"][2]
    assert echo["expected"] == "Feature: export\nChanges: CSV export"
    assert echo["comparators"][:2] == [{"type": "similarity", "method": "embedding", "threshold": 0.7,
                                        "model": "openai:text-embedding-3-large"},
                                       {"type": "levenshtein", "max_distance": 3}]
    edge = golden["cases"][3]
    assert edge["expected"] == "Feature: search\nChanges: faster"  # {{var}} filled from the case's vars
    assert edge["comparators"][2] == {"type": "contains", "value": "SEARCH", "ignore_case": True, "weight": 2}
    assert yaml.safe_load((out / "promptci.yaml").read_text())["models"] == [  # params per model
        "openai:gpt-4o-mini", {"name": "anthropic:claude-sonnet-4-5", "params": {"max_tokens": 200}}]


def test_refuses_to_overwrite_without_force(cli, tmp_path: Path) -> None:
    first, out = convert(cli, tmp_path, "support")
    assert first.exit_code == 0
    same = cli("import", "promptfoo", tmp_path / "support" / "promptfooconfig.yaml", "--out", out)
    assert same.exit_code == 0, same.output  # the same files again: nothing to overwrite
    (out / "goldens/triage.yaml").write_text("cases: []\n")
    again = cli("import", "promptfoo", tmp_path / "support" / "promptfooconfig.yaml", "--out", out)
    assert again.exit_code == 2 and "refusing to overwrite" in again.stderr and "--force" in again.stderr
    assert "triage.yaml" in again.stderr and "triage.txt" not in again.stderr
    assert (out / "goldens/triage.yaml").read_text() == "cases: []\n"
    forced = cli("import", "promptfoo", tmp_path / "support" / "promptfooconfig.yaml", "--out", out, "--force")
    assert forced.exit_code == 0, forced.output


@pytest.mark.parametrize(("text", "message"), [
    (None, "no promptfoo config"),
    ("prompts: [a\n", "promptfooconfig.yaml:2: invalid YAML"),
    ("providers: [openai:gpt-4o-mini]\n", "promptfooconfig.yaml:1: has no `prompts:`"),
    ("prompts: [file://missing.txt]\n", "promptfooconfig.yaml:1: prompt 'file://missing.txt' names no file"),
    ("prompts: [hi]\ntests: file://nope/*.yaml\n", "promptfooconfig.yaml:2: 'file://nope/*.yaml' names no file"),
])
def test_unreadable_input_exits_2_with_path_line(cli, tmp_path: Path, text: str | None, message: str) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    if text is not None:
        config.write_text(text)
    result = cli("import", "promptfoo", config, "--out", tmp_path / "out")
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not (tmp_path / "out").exists()


def triage_answer(request: dict) -> str:
    if "Rubric:" in request["messages"][-1]["content"]:  # the converted llm-rubric: a judge's verdict
        return json.dumps({"score": 1, "pass": True, "reason": "polite, promises no timeline"})
    ticket = request["messages"][-1]["content"].lower()
    category, priority = "how-to", "low"
    for words, found in ((("charged", "card", "refund"), "billing"), (("email", "2fa", "log in"), "account"),
                         (("502", "timing out"), "outage")):
        if any(word in ticket.split("ticket:")[-1] for word in words):
            category = found
    if category == "outage":
        priority = "urgent"
    summary = "Customer asks for a refund." if "refund" in ticket else "Service outage reported, team is down."
    return json.dumps({"category": category, "priority": priority, "tags": [category], "summary": summary,
                       "confidence": 0.9})


@pytest.mark.skipif(not set(registry.comparators.names()) >= NEW_COMPARATORS,
                    reason="needs the goldens branch's comparators (expr, is_json, ...) and cases_from")
def test_converted_support_suite_runs_against_the_fake_server(cli, tmp_path: Path, fake_server) -> None:
    result, out = convert(cli, tmp_path, "support")
    assert result.exit_code == 0, result.output
    fake_server.config.responder = triage_answer
    (out / "promptci.yaml").write_text(  # the judge (llm_judge's default openai model) asks the fake server too
        f"providers:\n  local: {{type: openai, base_url: '{fake_server.openai_base_url}', api_key_env: FAKE_KEY}}\n"
        f"  openai: {{base_url: '{fake_server.openai_base_url}', api_key_env: FAKE_KEY}}\n"
        "pricing:\n  local:gpt-4o-mini: {input: 0.15, output: 0.60}\n")
    lint = cli("lint", "--root", out)
    assert lint.exit_code == 0, lint.output
    run = cli("run", "--root", out, "-m", "local:gpt-4o-mini", "--format", "json", env={"FAKE_KEY": "k"})
    assert run.exit_code == 0, run.output
    document = json.loads(run.stdout)
    assert document["summary"]["total"] == 10 and document["summary"]["passed"] == 10
    fake_server.config.responder = lambda request: triage_answer(request).replace('"billing"', '"account"')
    worse = cli("run", "--root", out, "-m", "local:gpt-4o-mini", "--format", "json", "--no-cache",
                env={"FAKE_KEY": "k"})
    assert worse.exit_code == 1, worse.output
    failed = {r["case_id"] for r in json.loads(worse.stdout)["results"] if r["status"] == "failed"}
    assert failed == {"refund-request-is-billing", "declined-card", "refund-unused-months"}


@pytest.mark.parametrize(("assertion", "spec", "expected"), [
    ({"type": "equals", "value": "Paris"}, {"type": "exact", "strip": False}, "Paris"),
    ({"type": "equals", "value": {"a": 1}}, {"type": "json"}, {"a": 1}),
    ({"type": "equals", "value": "{{ city }}"}, {"type": "exact", "strip": False}, "Rome"),
    ({"type": "contains-all", "value": "a, b"}, {"type": "contains", "values": ["a", "b"]}, None),
    ({"type": "icontains-all", "value": ["A"]}, {"type": "contains", "values": ["A"], "ignore_case": True}, None),
    ({"type": "contains-any", "value": ["x", "y"]}, {"type": "expr", "expr": "'x' in output or 'y' in output"}, None),
    ({"type": "not-icontains", "value": "Sorry"}, {"type": "not_contains", "value": "Sorry", "ignore_case": True},
     None),
    ({"type": "not-contains-any", "value": ["x"]}, {"type": "not_contains", "values": ["x"]}, None),
    ({"type": "not-contains-all", "value": ["x", "y"]},
     {"type": "expr", "expr": "not ('x' in output and 'y' in output)"}, None),
    ({"type": "starts-with", "value": "{"}, {"type": "starts_with", "value": "{"}, None),
    ({"type": "not-equals", "value": "x "}, {"type": "expr", "expr": "output != 'x '"}, None),
    ({"type": "not-starts-with", "value": "I"}, {"type": "expr", "expr": "not output.startswith('I')"}, None),
    ({"type": "regex", "value": "^\\d+$"}, {"type": "regex", "pattern": "^\\d+$"}, None),
    ({"type": "not-regex", "value": "lorem"}, {"type": "not_regex", "pattern": "lorem"}, None),
    ({"type": "is-json"}, {"type": "is_json"}, None),
    ({"type": "is-json", "value": {"type": "object"}}, {"type": "json_schema", "schema": {"type": "object"}}, None),
    ({"type": "not-is-json"}, {"type": "expr", "expr": "json is None"}, None),
    ({"type": "similar", "value": "hi"}, {"type": "similarity", "method": "embedding", "threshold": 0.75,
                                          "model": "openai:text-embedding-3-large"}, "hi"),
    ({"type": "similar", "value": "hi", "provider": {"embedding": {"id": "openai:text-embedding-3-small"}}},
     {"type": "similarity", "method": "embedding", "threshold": 0.75, "model": "openai:text-embedding-3-small"},
     "hi"),
    ({"type": "llm-rubric", "value": "is polite"}, {"type": "llm_judge", "rubric": "is polite", "threshold": 0},
     None),
    ({"type": "llm-rubric", "value": "is polite", "provider": "openai:gpt-4o"},
     {"type": "llm_judge", "rubric": "is polite", "threshold": 0, "model": "openai:gpt-4o"}, None),
    ({"type": "llm-rubric", "value": "is polite", "threshold": 0.8},
     {"type": "llm_judge", "rubric": "is polite", "threshold": 0.8}, None),
    ({"type": "levenshtein", "value": "hi"}, {"type": "levenshtein", "max_distance": 5}, "hi"),
    ({"type": "latency", "threshold": 900}, {"type": "latency", "max_ms": 900}, None),
    ({"type": "cost", "threshold": 0.01, "metric": "spend"}, {"type": "cost", "max_usd": 0.01, "metric": "spend"},
     None),
    ({"type": "javascript", "value": "output.length", "threshold": 10},
     {"type": "python", "function": "checks.py:check_check"}, None),
    ({"type": "not-javascript", "value": "output.includes('x')"},
     {"type": "python", "function": "checks.py:check_check"}, None),
    ({"type": "python", "value": "context['vars']['city'] in output"},
     {"type": "python", "function": "checks.py:check_check"}, None),
])
def test_assertions_map_to_comparators(assertion: dict, spec: dict, expected: object) -> None:
    from promptci.importers.promptfoo_asserts import NO_EXPECTED, Mapped, map_assertion

    mapped = map_assertion(assertion, {"city": "Rome"})
    assert isinstance(mapped, Mapped), mapped
    assert mapped.spec == spec
    assert mapped.expected == (NO_EXPECTED if expected is None else expected)


@pytest.mark.parametrize(("assertion", "reason"), [
    ({"type": "factuality", "value": "x"}, "judge model"),
    ({"type": "contains-json"}, "no one-to-one comparator"),
    ({"type": "rouge-n", "value": "x"}, "no comparator for 'rouge-n'"),
    ({"type": "python", "value": "import os"}, "does not translate: invalid Python"),
    ({"type": "python", "value": "file://checks.py"}, "file assertion"),
    ({"type": "javascript", "value": "output.localeCompare('x')"}, "localeCompare"),
    ({"type": "equals", "value": "{{ missing }}"}, "template this converter cannot fill"),
    ({"type": "contains", "value": "x", "transform": "context.vars.x"}, "a transform that reads `context`"),
    ({"type": "latency"}, "no threshold"),
])
def test_assertions_that_do_not_map_say_why(assertion: dict, reason: str) -> None:
    from promptci.importers.promptfoo_asserts import Unmapped, map_assertion

    mapped = map_assertion(assertion, {})
    assert isinstance(mapped, Unmapped) and reason in mapped.reason


@pytest.mark.parametrize(("cell", "assertion"), [
    ("Paris", {"type": "equals", "value": "Paris"}),
    ("contains: refund", {"type": "contains", "value": "refund"}),
    ("icontains-any: a, b", {"type": "icontains-any", "value": ["a", "b"]}),
    ("not-contains:sorry", {"type": "not-contains", "value": "sorry"}),
    ("similar(0.9):hello there", {"type": "similar", "value": "hello there", "threshold": 0.9}),
    ("fn:output.length < 5", {"type": "javascript", "value": "output.length < 5"}),
    ("grade:is polite", {"type": "llm-rubric", "value": "is polite"}),
    ("is-json", {"type": "is-json"}),
    ("Time: 10:30", {"type": "equals", "value": "Time: 10:30"}),
])
def test_csv_expected_cells(cell: str, assertion: dict) -> None:
    from promptci.importers.promptfoo_asserts import parse_csv_expected

    assert parse_csv_expected(cell) == assertion


def write_suite(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "promptfooconfig.yaml"


def test_csv_that_does_not_map_cleanly_becomes_inline_cases(cli, tmp_path: Path) -> None:
    config = write_suite(tmp_path / "src", {
        "promptfooconfig.yaml": "prompts: ['Capital of {{country}}?']\nproviders: [openai:gpt-4o-mini]\n"
                                "tests: file://cases.csv\n",
        "cases.csv": "country,__expected,__prefix\nFrance,contains:Paris,\nItaly,grade:mentions Rome,Q: \n",
    })
    result = cli("import", "promptfoo", config, "--out", tmp_path / "out", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["converted"] == 2  # contains, and grade: as an llm_judge rubric
    assert [(i["file"], i["line"], i["type"]) for i in report["not_converted"]] == [("cases.csv", 3, "options")]
    golden = yaml.safe_load((tmp_path / "out/goldens/prompt-1.yaml").read_text())
    assert "cases_from" not in golden and not (tmp_path / "out/data").exists()
    assert golden["cases"][0] == {"id": "case-1", "input": {"country": "France"},
                                  "comparators": [{"type": "contains", "value": "Paris"}]}
    assert golden["cases"][1]["comparators"] == [{"type": "llm_judge", "rubric": "mentions Rome", "threshold": 0}]
    assert (tmp_path / "out/prompts/prompt-1.txt").read_text() == "Capital of {{country}}?\n"


def test_jsonl_tests_and_text_prompt_files_split_at_dashes(cli, tmp_path: Path) -> None:
    config = write_suite(tmp_path / "src", {
        "promptfooconfig.yaml": "prompts:\n  file://prompts/ask.txt: ask\nproviders:\n"
                                "  ollama:chat:llama3.1: {config: {temperature: 0.2}}\n  vertex:gemini-pro: {}\n"
                                "tests: [file://cases.jsonl]\n",
        "prompts/ask.txt": "Answer: {{q}}\n---\nAnswer briefly: {{q}}\n",
        "cases.jsonl": '{"vars": {"q": "2+2"}, "assert": [{"type": "equals", "value": "4"}]}\n'
                       '{"description": "bad", "vars": {"q": "x"}, "assert": [{"type": "webhook", "value": "u"}]}\n',
    })
    out = tmp_path / "out"
    result = cli("import", "promptfoo", config, "--out", out)
    assert result.exit_code == 0, result.output
    assert "cases.jsonl:2: webhook: promptci has no comparator for 'webhook'" in result.stdout
    assert "promptfooconfig.yaml:5: provider: provider 'vertex:gemini-pro' has no promptci equivalent" \
        in result.stdout
    assert (out / "prompts/ask-1.txt").read_text().startswith("---\nparams:\n  temperature: 0.2\n---\nAnswer: {{q}}")
    assert (out / "prompts/ask-2.txt").read_text().endswith("Answer briefly: {{q}}\n")
    config_written = yaml.safe_load((out / "promptci.yaml").read_text())
    assert config_written == {"models": ["ollama:llama3.1"],
                              "providers": {"ollama": {"type": "openai", "base_url": "http://127.0.0.1:11434/v1"}}}
    golden = yaml.safe_load((out / "goldens/promptfoo.yaml").read_text())
    assert golden["prompt"] == ["ask-1", "ask-2"]
    assert golden["cases"][0]["expected"] == "4"
    assert golden["cases"][0]["comparators"] == [{"type": "exact", "strip": False}]


def test_table_counts_each_assertion_type(cli, tmp_path: Path) -> None:
    result, _out = convert(cli, tmp_path, "support")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["assertion", "converted", "not", "converted"]
    assert "javascript 13 0" in [" ".join(line.split()) for line in lines]
    assert "total 22 0 (100%)" in [" ".join(line.split()) for line in lines]


def test_import_without_a_subcommand_shows_help(cli) -> None:
    result = cli("import")
    assert result.exit_code == 2 and "promptfoo" in result.output


@pytest.mark.parametrize(("files", "message"), [
    ({"v.json": '{"a": 1,\n}'}, "v.json:2: invalid JSON"),
    ({"p.json": '{"not": "a chat"}'}, "p.json:1: a .json prompt must be a chat"),
    ({"t.csv": "q\n"}, None),  # a CSV with no rows converts nothing, but is readable
])
def test_unreadable_referenced_files_exit_2(cli, tmp_path: Path, files: dict[str, str], message: str | None) -> None:
    prompt = "file://p.json" if "p.json" in files else "'{{a}} {{q}}'"
    tests = "file://t.csv" if "t.csv" in files else "[{vars: {a: file://v.json}}]"
    config = write_suite(tmp_path / "src", {"promptfooconfig.yaml": f"prompts: [{prompt}]\ntests: {tests}\n", **files})
    result = cli("import", "promptfoo", config, "--out", tmp_path / "out")
    if message is None:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert "Traceback" not in result.output


def test_inline_json_that_is_not_a_chat_stays_text_and_description_is_kept(cli, tmp_path: Path) -> None:
    config = write_suite(tmp_path / "src", {
        "promptfooconfig.yaml": "description: Lists\nprompts: ['[1, 2] then {{x}}']\ntests: [{vars: {x: 3}}]\n"})
    result = cli("import", "promptfoo", config, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out/prompts/prompt-1.txt").read_text() == "[1, 2] then {{x}}\n"
    golden = yaml.safe_load((tmp_path / "out/goldens/prompt-1.yaml").read_text())
    assert golden["description"] == "Lists" and golden["cases"][0]["input"] == {"x": 3}
    assert yaml.safe_load((tmp_path / "out/promptci.yaml").read_text()) == {"models": ["echo"]}


def test_converted_llm_rubric_judges_still_gate_as_in_promptfoo(cli, tmp_path: Path, fake_server) -> None:
    """promptfoo fails a test on its llm-rubric; an uncalibrated promptci judge only reports unless allowed, so
    the conversion allows it (and says so) rather than silently turning a gate into a remark."""
    result, out = convert(cli, tmp_path, "support")
    assert result.exit_code == 0, result.output
    settings = yaml.safe_load((out / "promptci.yaml").read_text())
    assert settings["judges"] == {"allow_uncalibrated": True}
    assert "judges.allow_uncalibrated" in result.stdout and "promptci calibrate" in result.stdout
    report = cli("import", "promptfoo", tmp_path / "support" / "promptfooconfig.yaml", "--out", out, "--force",
                 "--format", "json")
    assert any("allow_uncalibrated" in note for note in json.loads(report.stdout)["notes"])
    settings["providers"] = {  # the case model and the judge (llm_judge's default openai model) ask the fake server
        "local": {"type": "openai", "base_url": fake_server.openai_base_url, "api_key_env": "FAKE_KEY"},
        "openai": {"base_url": fake_server.openai_base_url, "api_key_env": "FAKE_KEY"}}
    settings["pricing"] = {"local:gpt-4o-mini": {"input": 0.15, "output": 0.60}}
    (out / "promptci.yaml").write_text(yaml.safe_dump(settings))

    def judge_says_fail(request: dict) -> str:
        if "Rubric:" in request["messages"][-1]["content"]:
            return json.dumps({"score": 0, "pass": False, "reason": "promises a timeline"})
        return triage_answer(request)

    fake_server.config.responder = judge_says_fail
    run = cli("run", "--root", out, "-m", "local:gpt-4o-mini", "--format", "json", env={"FAKE_KEY": "k"})
    assert run.exit_code == 1, run.output
    failed = [r for r in json.loads(run.stdout)["results"] if r["status"] == "failed"]
    failing = {(score["comparator"], score["gating"]) for r in failed for score in r["scores"] if not score["passed"]}
    assert failing == {("llm_judge", True)}, failing


def test_a_suite_without_rubrics_gets_no_judges_setting(cli, tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text("prompts: ['Say {{x}}']\ntests:\n  - vars: {x: hi}\n    assert: [{type: contains, value: hi}]\n")
    result = cli("import", "promptfoo", config, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "judges" not in yaml.safe_load((tmp_path / "out" / "promptci.yaml").read_text())
    assert "allow_uncalibrated" not in result.stdout
