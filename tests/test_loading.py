"""Prompt files, golden files and suites: shapes that load, and every bad input named at path:line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_project import make_project

from promptci.config import load_settings
from promptci.errors import ConfigError, ExitCode, TemplateError
from promptci.loading.goldens import load_golden_file
from promptci.loading.prompts import discover_prompts, load_prompt
from promptci.loading.render import Renderer
from promptci.loading.suite import load_suite, render_suite, resolve_inside
from promptci.loading.yamlfile import line_of, load_yaml
from promptci.types import ComparatorSpec, Location, MessageTemplate

DEFAULTS = (ComparatorSpec("exact", {}, Location("promptci.yaml")),)


def problem_lines(exc: ConfigError) -> list[str]:
    assert exc.exit_code == ExitCode.USAGE
    return [str(p) for p in exc.problems]


def suite_problems(root: Path, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_suite(load_settings(root), **kwargs)  # type: ignore[arg-type]
    return problem_lines(info.value)


def golden_problems(root: Path, relative: str) -> list[str]:
    _cases, problems = load_golden_file(root / relative, root.resolve(), DEFAULTS)
    return [str(p) for p in problems]


# --- YAML -------------------------------------------------------------------------------------------

def test_yaml_keeps_lines_and_refuses_duplicate_keys(tmp_path: Path) -> None:
    make_project(tmp_path, {"goldens/a.yaml": "prompt: x\ncases:\n  - id: one\n    input: {}\n",
                            "goldens/dup.yaml": "cases: []\nprompt: x\ncases: []\n"})
    data = load_yaml(tmp_path / "goldens/a.yaml", tmp_path)
    assert data == {"prompt": "x", "cases": [{"id": "one", "input": {}}]}
    assert line_of(data, "cases") == 2 and data["cases"][0].line == 3
    with pytest.raises(ConfigError) as info:
        load_yaml(tmp_path / "goldens/dup.yaml", tmp_path)
    assert str(info.value).startswith("goldens/dup.yaml:3: invalid YAML")
    assert "duplicate key 'cases' (first at line 1)" in str(info.value)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    make_project(tmp_path, {"goldens/greet.yaml": "cases:\n  - id: a\n    input: {name: Ada\n  - id: b\n"},
                 with_greet=False)
    problems = golden_problems(tmp_path, "goldens/greet.yaml")
    assert len(problems) == 1
    assert problems[0].startswith("goldens/greet.yaml:4: invalid YAML")
    assert "started at line 3" in problems[0]


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    make_project(tmp_path, {"goldens/x.yaml": "cases: !!python/object/apply:os.system [echo hi]\n"})
    assert golden_problems(tmp_path, "goldens/x.yaml")[0].startswith("goldens/x.yaml:1: invalid YAML")


@pytest.mark.parametrize("content", [b"cases:\n  - input: {name: \xff\xfe}\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00"])
def test_binary_or_non_utf8_golden(tmp_path: Path, content: bytes) -> None:
    make_project(tmp_path, {"goldens/x.yaml": content})
    problems = golden_problems(tmp_path, "goldens/x.yaml")
    assert len(problems) == 1
    assert "is not UTF-8 text" in problems[0]
    assert problems[0].startswith("goldens/x.yaml:")


# --- prompts ----------------------------------------------------------------------------------------

def test_text_prompt_with_front_matter(tmp_path: Path) -> None:
    make_project(tmp_path, {"prompts/clinical/summarize.md": """\
        ---
        system: You summarize notes.
        output: json
        params: {temperature: 0, max_tokens: 300}
        model: openai:gpt-4o-mini
        ---
        Summarize in {{ max_words | default(60) }} words:
        {{ note }}
        """})
    prompt = load_prompt(tmp_path / "prompts/clinical/summarize.md", tmp_path)
    assert prompt.name == "clinical/summarize"
    assert prompt.path == "prompts/clinical/summarize.md"
    assert prompt.messages == (
        MessageTemplate("system", "You summarize notes.", 2),
        MessageTemplate("user", "Summarize in {{ max_words | default(60) }} words:\n{{ note }}\n", 7),
    )
    assert (prompt.output, dict(prompt.params), prompt.model) == ("json", {"temperature": 0, "max_tokens": 300},
                                                                 "openai:gpt-4o-mini")
    assert len(prompt.source_hash) == 64


def test_plain_text_prompt_is_one_user_message(tmp_path: Path) -> None:
    make_project(tmp_path, with_greet=True)
    prompt = load_prompt(tmp_path / "prompts/greet.txt", tmp_path)
    assert prompt.messages == (MessageTemplate("user", "Hello {{ name }}!\n", 1),)
    assert (prompt.output, prompt.model) == ("text", None)


def test_chat_prompt(tmp_path: Path) -> None:
    make_project(tmp_path, {"prompts/route.yaml": """\
        system: Route tickets.
        params: {temperature: 0}
        messages:
          - role: user
            content: "Example: printer"
          - role: assistant
            content: hardware
          - role: user
            content: |
              {{ ticket }}
        """})
    prompt = load_prompt(tmp_path / "prompts/route.yaml", tmp_path)
    assert [(m.role, m.content, m.line) for m in prompt.messages] == [
        ("system", "Route tickets.", 1), ("user", "Example: printer", 5), ("assistant", "hardware", 7),
        ("user", "{{ ticket }}\n", 10)]


def test_unknown_front_matter_key_and_bad_output(tmp_path: Path) -> None:
    make_project(tmp_path, {"prompts/p.txt": "---\nsytem: hi\noutput: xml\n---\nbody\n"})
    with pytest.raises(ConfigError) as info:
        load_prompt(tmp_path / "prompts/p.txt", tmp_path)
    problems = problem_lines(info.value)
    assert problems[0].startswith("prompts/p.txt:2: unknown key 'sytem'")
    assert "did you mean 'system'" in problems[0]
    assert problems[1] == "prompts/p.txt:3: `output` must be text or json, got 'xml'"


def test_template_syntax_error_has_the_file_line(tmp_path: Path) -> None:
    make_project(tmp_path, {"prompts/p.txt": "---\nmodel: echo\n---\nline one\n{% if x %}\nno end\n"})
    with pytest.raises(TemplateError) as info:
        load_prompt(tmp_path / "prompts/p.txt", tmp_path)
    assert problem_lines(info.value)[0].startswith("prompts/p.txt:")
    assert "template syntax error" in str(info.value)
    line = int(str(info.value).split(":")[1])
    assert 5 <= line <= 7


def test_unclosed_front_matter(tmp_path: Path) -> None:
    make_project(tmp_path, {"prompts/p.txt": "---\nsystem: hi\nHello\n"})
    with pytest.raises(ConfigError, match=r"prompts/p.txt:1: front matter opened with `---` is never closed"):
        load_prompt(tmp_path / "prompts/p.txt", tmp_path)


def test_same_prompt_name_with_two_suffixes(tmp_path: Path) -> None:
    make_project(tmp_path, {"prompts/a.txt": "x\n", "prompts/a.md": "y\n", "prompts/_partial.j2": "z\n"})
    with pytest.raises(ConfigError) as info:
        discover_prompts(tmp_path)
    assert problem_lines(info.value) == [
        "prompts/a.txt:1: prompt 'a' is defined twice (prompts/a.md and prompts/a.txt); rename or remove one"]


def test_partials_are_not_prompts(tmp_path: Path) -> None:
    make_project(tmp_path, {"prompts/_footer.j2": "x\n", "prompts/sub/b.j2": "y\n", "prompts/README": "z"})
    assert list(discover_prompts(tmp_path)) == ["sub/b"]


def test_non_utf8_prompt(tmp_path: Path) -> None:
    make_project(tmp_path, {"prompts/p.txt": "caf\xe9\n".encode("latin-1")})
    with pytest.raises(ConfigError, match=r"prompts/p.txt:1: is not UTF-8 text"):
        discover_prompts(tmp_path)


def test_prompt_symlink_escaping_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret {{ x }}\n")
    root = make_project(tmp_path / "proj")
    os.symlink(outside, root / "prompts" / "leak.txt")
    with pytest.raises(ConfigError, match=r"^prompts/leak\.txt: path 'prompts/leak\.txt' points outside the project"):
        discover_prompts(root)


# --- goldens ----------------------------------------------------------------------------------------

def test_golden_cases_defaults_and_values(tmp_path: Path) -> None:
    make_project(tmp_path, {"goldens/triage/route.yaml": """\
        comparators: [{type: contains, value: ok}]
        cases:
          - input: {ticket: printer}
            expected: hardware
            tags: [smoke]
          - id: nulls
            expected: null
            comparators: [exact]
          - id: 7
            expected: {a: [1, 2]}
        """})
    cases, problems = load_golden_file(tmp_path / "goldens/triage/route.yaml", tmp_path, DEFAULTS)
    assert problems == []
    assert [c.id for c in cases] == ["0", "nulls", "7"]
    assert {c.prompt for c in cases} == {"triage/route"}
    assert [str(c.location) for c in cases] == ["goldens/triage/route.yaml:3", "goldens/triage/route.yaml:6",
                                                 "goldens/triage/route.yaml:9"]
    assert cases[0].key == "goldens/triage/route.yaml::0"
    assert (dict(cases[0].input), cases[0].expected, cases[0].tags) == ({"ticket": "printer"}, "hardware", ("smoke",))
    assert [c.type for c in cases[0].comparators] == ["contains"]
    assert str(cases[0].comparators[0].location) == "goldens/triage/route.yaml:1"
    assert [c.type for c in cases[1].comparators] == ["exact"]
    assert (cases[1].has_expected, cases[1].expected) == (True, None)
    assert type(cases[2].expected) is dict and type(cases[2].expected["a"]) is list


def test_settings_comparators_are_the_last_default(tmp_path: Path) -> None:
    make_project(tmp_path, {"goldens/g.yaml": "prompt: greet\ncases:\n  - {input: {name: A}, expected: x}\n"})
    cases, problems = load_golden_file(tmp_path / "goldens/g.yaml", tmp_path, DEFAULTS)
    assert (problems, cases[0].prompt, cases[0].comparators) == ([], "greet", DEFAULTS)


def test_duplicate_case_ids_name_both_lines(tmp_path: Path) -> None:
    make_project(tmp_path, {"goldens/g.yaml": "cases:\n  - id: a\n    expected: x\n  - id: b\n    expected: y\n"
                                              "  - id: a\n    expected: z\n"})
    cases, problems = load_golden_file(tmp_path / "goldens/g.yaml", tmp_path, DEFAULTS)
    assert [str(p) for p in problems] == [
        "goldens/g.yaml:6: duplicate case id 'a': first at line 2, again at line 6; ids must be unique within a file"]
    assert [c.id for c in cases] == ["a", "b"]


def test_unknown_comparator_lists_known_ones(tmp_path: Path) -> None:
    make_project(tmp_path, {"goldens/g.yaml": "cases:\n  - expected: x\n    comparators:\n      - exact\n"
                                              "      - {type: regexp, pattern: a}\n"})
    problems = golden_problems(tmp_path, "goldens/g.yaml")
    assert len(problems) == 1
    assert problems[0].startswith("goldens/g.yaml:5: unknown comparator 'regexp'")
    for known in ("exact", "regex", "json", "contains"):
        assert known in problems[0]


def test_comparator_option_error_names_the_option(tmp_path: Path) -> None:
    make_project(tmp_path, {"goldens/g.yaml": "cases:\n  - expected: x\n    comparators:\n"
                                              "      - {type: exact, strp: false}\n"})
    problems = golden_problems(tmp_path, "goldens/g.yaml")
    assert len(problems) == 1
    assert problems[0].startswith("goldens/g.yaml:4: unknown option(s) 'strp' for comparator 'exact'")
    assert "strip" in problems[0]


def test_invalid_regex_is_an_error_at_load(tmp_path: Path) -> None:
    make_project(tmp_path, {"goldens/g.yaml": "comparators:\n  - type: regex\n    pattern: '(unclosed'\n"
                                              "cases:\n  - input: {}\n"})
    cases, problems = load_golden_file(tmp_path / "goldens/g.yaml", tmp_path, DEFAULTS)
    assert cases == []
    assert len(problems) == 1
    assert str(problems[0]).startswith("goldens/g.yaml:2: ")
    assert "regex" in str(problems[0]) and "(unclosed" in str(problems[0])


def test_comparator_needing_expected(tmp_path: Path) -> None:
    make_project(tmp_path, {"goldens/g.yaml": "cases:\n  - id: a\n    input: {x: 1}\n"
                                              "  - id: b\n    comparators: [{type: regex, pattern: ok}]\n"})
    cases, problems = load_golden_file(tmp_path / "goldens/g.yaml", tmp_path, DEFAULTS)
    assert [c.id for c in cases] == ["b"]
    assert len(problems) == 1
    assert str(problems[0]).startswith("goldens/g.yaml:2: case 'a' has no `expected`, which comparator 'exact' "
                                       "(the default when no file names any) needs")
    cases, problems = load_golden_file(tmp_path / "goldens/g.yaml", tmp_path,
                                       (ComparatorSpec("json", {}, Location("promptci.yaml", 4)),))
    assert "comparator 'json' (from promptci.yaml:4) needs" in str(problems[0])


def test_unknown_keys_and_bad_shapes(tmp_path: Path) -> None:
    make_project(tmp_path, {"goldens/g.yaml": "promt: x\ncases:\n  - id: a\n    expect: x\n  - just a string\n"
                                              "  - id: c\n    input: [1]\n    expected: x\n    tags: 3\n"})
    problems = golden_problems(tmp_path, "goldens/g.yaml")
    assert problems[0].startswith("goldens/g.yaml:1: unknown key 'promt' in a golden file (did you mean 'prompt'?)")
    assert problems[1].startswith("goldens/g.yaml:4: unknown key 'expect' in a case (did you mean 'expected'?)")
    assert any(p.startswith("goldens/g.yaml:5: a case must be a mapping") for p in problems)
    assert any(p.startswith("goldens/g.yaml:7: case `input` must be a mapping") for p in problems)
    assert any(p.startswith("goldens/g.yaml:9: case `tags` must be a list of strings") for p in problems)


def test_schema_and_python_paths_must_stay_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text("{}")
    root = make_project(tmp_path / "proj", {"goldens/g.yaml": """\
        cases:
          - comparators:
              - {type: json_schema, schema: ../secret.json}
              - {type: python, function: "../../evil.py:check"}
        """})
    problems = golden_problems(root, "goldens/g.yaml")
    assert len(problems) == 2
    assert problems[0].startswith("goldens/g.yaml:3: path '../secret.json' points outside the project root")
    assert problems[1].startswith("goldens/g.yaml:4: path '../../evil.py' points outside the project root")


def test_resolve_inside(tmp_path: Path) -> None:
    assert resolve_inside(tmp_path, "schemas/a.json") == tmp_path.resolve() / "schemas/a.json"
    with pytest.raises(ConfigError, match=r"goldens/x.yaml:3: path '/etc/passwd' points outside"):
        resolve_inside(tmp_path, "/etc/passwd", Location("goldens/x.yaml", 3))


# --- suites -----------------------------------------------------------------------------------------

def test_load_suite(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/b.txt": "{{ x }}\n",
                                   "goldens/b.yml": "cases:\n  - {input: {x: 1}, expected: '1'}\n"}, with_greet=True)
    suite = load_suite(load_settings(root))
    assert sorted(suite.prompts) == ["b", "greet"]
    assert [c.key for c in suite.cases] == ["goldens/b.yml::0", "goldens/greet.yaml::ada"]
    assert suite.problems == ()


def test_golden_for_a_missing_prompt(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"goldens/gret.yaml": "cases:\n  - expected: x\n",
                                   "goldens/other.yaml": "\ncases: []\nprompt: zzz/none\n"}, with_greet=True)
    problems = suite_problems(root)
    assert problems[0].startswith("goldens/gret.yaml:1: prompt 'gret' does not exist")
    assert "did you mean 'greet'?" in problems[0]
    assert problems[1].startswith("goldens/other.yaml:3: prompt 'zzz/none' does not exist")
    assert "known prompts: greet" in problems[1]


def test_empty_suite_says_where_it_looked_and_how_to_add_one(tmp_path: Path) -> None:
    problems = suite_problems(make_project(tmp_path, {"prompts/greet.txt": "hi\n"}))
    assert len(problems) == 1
    assert "no golden cases found in goldens/" in problems[0]
    assert "cases:" in problems[0] and "promptci init" in problems[0]


def test_problems_from_all_files_are_collected(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"goldens/a.yaml": "prompt: greet\ncases:\n  - id: x\n    input: {}\n",
                                   "goldens/b.yaml": "prompt: greet\ncases: [\n"}, with_greet=True)
    problems = suite_problems(root)
    assert [p.split(":")[0] for p in problems] == ["goldens/a.yaml", "goldens/b.yaml"]


def test_keep_going_leaves_broken_cases_out(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"goldens/greet.yaml": "cases:\n  - {id: good, expected: x}\n"
                                                         "  - {id: bad, expected: x, comparators: [nope]}\n",
                                   "goldens/missing.yaml": "cases:\n  - {expected: x}\n",
                                   "prompts/greet.txt": "hi\n"})
    suite = load_suite(load_settings(root), keep_going=True)
    assert [c.id for c in suite.cases] == ["good"]
    assert len(suite.problems) == 2
    assert suite.problems[0].startswith("goldens/greet.yaml:3: unknown comparator 'nope'")
    assert suite.problems[1].startswith("goldens/missing.yaml:1: prompt 'missing' does not exist")


def test_keep_going_skips_cases_of_a_broken_prompt(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/bad.txt": "{% for %}\n", "goldens/bad.yaml": "cases:\n  - {expected: x}\n"},
                        with_greet=True)
    suite = load_suite(load_settings(root), keep_going=True)
    assert [c.id for c in suite.cases] == ["ada"]
    assert suite.problems[0].startswith("prompts/bad.txt:1: template syntax error")
    assert suite.problems[1] == "goldens/bad.yaml:1: 1 case(s) skipped: prompt 'bad' has errors"


def test_paths_restrict_the_goldens(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/t/a.txt": "a\n", "prompts/t/b.txt": "b\n",
                                   "goldens/t/a.yaml": "cases:\n  - {expected: a}\n",
                                   "goldens/t/b.yaml": "cases:\n  - {expected: b}\n",
                                   "goldens/broken.yaml": "cases: ["}, with_greet=True)
    settings = load_settings(root)
    assert [c.prompt for c in load_suite(settings, [root / "goldens/t"]).cases] == ["t/a", "t/b"]
    assert [c.prompt for c in load_suite(settings, [root / "goldens/t/b.yaml"]).cases] == ["t/b"]
    assert [c.prompt for c in load_suite(settings, [root / "prompts/t/a.txt"]).cases] == ["t/a"]
    problems = suite_problems(root, paths=[root / "prompts/greet.txt", root / "goldens/t/a.yaml", root / "goldens"])
    assert [p.split(":")[0] for p in problems] == ["goldens/broken.yaml"]


def test_paths_outside_the_root_or_missing(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", with_greet=True)
    with pytest.raises(ConfigError, match="is outside the project root"):
        load_suite(load_settings(root), [tmp_path])
    with pytest.raises(ConfigError, match=r"'.*goldens/nope\.yaml' does not exist"):
        load_suite(load_settings(root), [root / "goldens/nope.yaml"])
    with pytest.raises(ConfigError, match=r"no golden cases found in prompts/greet\.txt"):
        load_suite(load_settings(make_project(root, {"prompts/greet.txt": "x", "goldens/greet.yaml": "cases: []"})),
                   [root / "prompts/greet.txt"])


def test_render_suite_collects_every_template_error(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"goldens/greet.yaml": "cases:\n  - {id: ok, input: {name: A}, expected: x}\n"
                                                         "  - {id: no1, expected: x}\n  - {id: no2, expected: x}\n"},
                        with_greet=True)
    suite = load_suite(load_settings(root))
    renderer = Renderer(root)
    with pytest.raises(TemplateError) as info:
        render_suite(suite, renderer)
    problems = problem_lines(info.value)
    assert [p.split(": ")[0] for p in problems] == ["goldens/greet.yaml:3", "goldens/greet.yaml:4"]
    rendered, kept = render_suite(suite, renderer, keep_going=True)
    assert rendered == {"goldens/greet.yaml::ok": ({"role": "user", "content": "Hello A!\n"},)}
    assert len(kept) == 2
