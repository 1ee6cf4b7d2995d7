"""accept writes only what accepting fixes, says what it cannot fix and why, never writes an output that
answers a case as it no longer is, and keeps the golden file's style (flow stays flow, comments after tabs
and long lines stay comments)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptci.accept import set_expected
from promptci.errors import PromptCIError
from promptci.loading.yamlfile import parse_yaml, to_plain

PROMPT = "Hello {{ name }}!\n"
NOT_FIXED_BY_ACCEPT = """\
cases:
  - id: schema
    input: {name: Ada}
    comparators: [{type: json_schema, schema: {type: object}}]
  - id: fields
    input: {name: Bob}
    expected: Hello Bob!
    comparators: [{type: json_fields, fields: {name: Bob}}]
  - {id: expr, input: {name: Cy}, comparators: [{type: expr, expr: "len(output) > 100"}]}
  - id: exact
    input: {name: Dee}
    expected: Hi Dee
"""


def test_accept_writes_only_the_failures_accepting_fixes_and_names_the_rest(project: Any, cli: Any) -> None:
    root = project({"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": PROMPT,
                    "goldens/greet.yaml": NOT_FIXED_BY_ACCEPT})
    assert cli("run", "--root", root).exit_code == 1
    accepted = cli("accept", "--root", root)
    assert accepted.exit_code == 0, accepted.output
    assert "accepted 1 case in 1 file; 3 failing cases not accepted (the notes say why)" in accepted.stderr
    for where, comparator in (("2 schema", "json_schema"), ("5 fields", "json_fields"), ("9 expr", "expr")):
        assert (f"goldens/greet.yaml:{where}: not accepted: it fails {comparator} (it does not read `expected`); "
                "writing its output into `expected` would not make it pass") in accepted.stderr
    written = (root / "goldens/greet.yaml").read_text()
    assert written == NOT_FIXED_BY_ACCEPT.replace("expected: Hi Dee\n", "expected: |\n      Hello Dee!\n")
    rerun = cli("run", "--root", root, "--format", "json")
    assert rerun.exit_code == 1 and '"case_id": "exact",\n      "file": "goldens/greet.yaml",' in rerun.stdout


def test_an_expression_reading_expected_is_fixed_by_accepting(project: Any, cli: Any) -> None:
    golden = ("cases:\n  - id: a\n    input: {name: Ada}\n    expected: Hi\n"
              "    comparators: [{type: expr, expr: \"output.strip() == expected.strip()\"}]\n")
    root = project({"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": PROMPT, "goldens/greet.yaml": golden})
    assert cli("run", "--root", root).exit_code == 1
    assert "accepted 1 case" in cli("accept", "--root", root).stderr
    assert cli("run", "--root", root).exit_code == 0


def test_a_case_edited_since_the_run_is_not_accepted(project: Any, cli: Any) -> None:
    golden = "cases:\n  - id: a\n    input: {name: Ada}\n    expected: Hi Ada\n"
    root = project({"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": PROMPT, "goldens/greet.yaml": golden})
    assert cli("run", "--root", root).exit_code == 1
    edited = golden.replace("name: Ada", "name: Zed")
    (root / "goldens/greet.yaml").write_text(edited)
    accepted = cli("accept", "--root", root)
    assert accepted.exit_code == 0, accepted.output
    assert ("goldens/greet.yaml:2 a: not accepted: the case (its input, prompt or parameters) changed since run"
            in accepted.stderr)
    assert "run the suite again, then accept" in accepted.stderr
    assert (root / "goldens/greet.yaml").read_text() == edited  # "Hello Ada!" is not Zed's answer


def test_a_json_string_output_of_a_json_prompt_is_accepted_as_json_text(project: Any, cli: Any) -> None:
    root = project({"promptci.yaml": "models: ['python:app:answer']\n",
                    "prompts/say.txt": "---\noutput: json\n---\nSay {{ word }}\n",
                    "app.py": "def answer(messages, params):\n    return '\"hello\"'\n",
                    "goldens/say.yaml": "cases:\n  - id: a\n    input: {word: hi}\n    expected: '\"bye\"'\n"
                                        "    comparators: [json]\n"})
    assert cli("run", "--root", root).exit_code == 1
    accepted = cli("accept", "--root", root)
    assert accepted.exit_code == 0 and "accepted 1 case" in accepted.stderr, accepted.output
    assert "expected: '\"hello\"'" in (root / "goldens/say.yaml").read_text()
    again = cli("run", "--root", root)
    assert again.exit_code == 0, again.output


def test_a_flow_mapping_stays_a_flow_mapping() -> None:
    text = "cases:\n  - id: a\n    input: {n: 1}\n    expected: {a: 1, b: [1, 2]}  # shape\n    tags: [x]\n"
    out, _, _ = set_expected(text, "g.yaml", [("a", {"a": 2, "b": [1, 3]})])
    assert out == text.replace("{a: 1, b: [1, 2]}", '{"a": 2, "b": [1, 3]}')


def test_a_tab_before_a_trailing_comment(project: Any, cli: Any) -> None:
    golden = "cases:\n  - id: a\n    input: {name: Ada}\n    expected: Hi Ada\t# the greeting\n"
    root = project({"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": "Hello {{ name }}!",
                    "goldens/greet.yaml": golden})
    assert cli("run", "--root", root).exit_code == 1
    accepted = cli("accept", "--root", root)
    assert accepted.exit_code == 0, accepted.output
    assert (root / "goldens/greet.yaml").read_text() == golden.replace("Hi Ada\t", "Hello Ada!\t")
    assert cli("run", "--root", root).exit_code == 0


def test_a_long_line_with_a_trailing_comment_stays_one_line() -> None:
    text = "cases:\n  - id: a\n    input: {n: 1}\n    expected: old  # note\n"
    value = " ".join(["word"] * 2000)
    out, _, _ = set_expected(text, "g.yaml", [("a", value)])
    assert out == text.replace("old", value)
    assert to_plain(parse_yaml(out, "g.yaml"))["cases"][0]["expected"] == value


def test_a_multi_line_value_after_a_commented_line_keeps_the_comment_a_comment() -> None:
    text = "cases:\n  - id: a\n    input: {n: 1}\n    expected: old  # note\n    tags: [x]\n"
    out, _, _ = set_expected(text, "g.yaml", [("a", "one\ntwo")])
    assert out == ("cases:\n  - id: a\n    input: {n: 1}\n    expected: |-  # note\n      one\n      two\n"
                   "    tags: [x]\n")


def test_a_run_with_env_is_checked_against_the_requests_of_that_env(project: Any, cli: Any, fake_server: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-1234567890")
    config = ("models: ['fake:m']\nproviders:\n"
              f"  fake: {{type: openai, base_url: '{fake_server.openai_base_url}', api_key_env: FAKE_OPENAI_KEY}}\n"
              "environments:\n  warm:\n    providers:\n      fake: {params: {temperature: 0.5}}\n")
    golden = "cases:\n  - id: a\n    input: {name: Ada}\n    expected: Hi Ada\n"
    root = project({"promptci.yaml": config, "prompts/greet.txt": PROMPT, "goldens/greet.yaml": golden})
    assert cli("run", "--root", root, "--env", "warm").exit_code == 1
    assert fake_server.requests[0].body["temperature"] == 0.5
    accepted = cli("accept", "--root", root)
    assert accepted.exit_code == 0 and "accepted 1 case in 1 file" in accepted.stderr, accepted.output


_SEPARATORS = st.sampled_from(["  ", " ", "\t", " \t", "\t "])
_OLD_VALUES = st.sampled_from(["old", "'old'", '"old"', "{a: 1}", "[1, 2]", "~", "|\n      old"])
_NEW_VALUES = st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
                        st.text(alphabet="ab #:-'\"\t\n", max_size=6000),
                        st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=3))


@settings(max_examples=150, deadline=None)
@given(old=_OLD_VALUES, separator=_SEPARATORS, value=_NEW_VALUES)
def test_any_value_after_any_comment_separator_reads_back_with_the_comment_kept(old: str, separator: str,
                                                                                value: Any) -> None:
    comment = "" if old.startswith("|") else f"{separator}# keep me"
    text = f"cases:\n  - id: a\n    input: {{n: 1}}\n    expected: {old}{comment}\n    tags: [x]\n# end\n"
    try:
        out, done, _ = set_expected(text, "g.yaml", [("a", value)])  # reads its work back, raises otherwise
    except PromptCIError:  # a value YAML cannot hold (e.g. a control character) is refused, never written wrong
        return
    assert done == [("a", value)]
    assert out.endswith("    tags: [x]\n# end\n") and (not comment or "# keep me" in out)


def test_a_failure_beside_a_raising_comparator_is_not_accepted(project: Any, cli: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from promptci import registry

    def exploding():
        async def score(case, completion):
            raise ValueError("no idea")

        return score

    monkeypatch.setitem(registry.comparators._loaded, "exploding", exploding)
    golden = "cases:\n  - id: a\n    input: {name: Ada}\n    expected: Hi Ada\n    comparators: [exact, exploding]\n"
    root = project({"promptci.yaml": "models: [echo]\n", "prompts/greet.txt": PROMPT, "goldens/greet.yaml": golden})
    assert cli("run", "--root", root).exit_code == 1
    accepted = cli("accept", "--root", root)
    assert accepted.exit_code == 0, accepted.output
    assert "not accepted: a comparator of it raised" in accepted.stderr
    assert (root / "goldens/greet.yaml").read_text() == golden


def test_a_key_holding_a_yaml_line_break_is_written_escaped() -> None:
    for old in ("old", "{a: 1}"):
        text = f"cases:\n  - id: a\n    input: {{n: 1}}\n    expected: {old}\n"
        out, _, _ = set_expected(text, "g.yaml", [("a", {"\x85": ["\u2028"]})])  # NEL and LS break YAML lines
        assert out == text.replace(old, '{"\\u0085": ["\\u2028"]}')
