"""Golden-file features real suites need: comparators built once at load, offline case checks, python
comparator options, comparators+, transforms, cases_from data files, several prompts, metrics/metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_project import make_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptci.comparator_specs import parse_comparators
from promptci.config import load_settings
from promptci.errors import ConfigError
from promptci.loading.goldens import read_golden_file
from promptci.loading.suite import load_suite
from promptci.types import ComparatorSpec, Location

DEFAULTS = (ComparatorSpec("exact", {}, Location("promptci.yaml")),)
ECHO = {"prompts/echo.txt": "{{ out }}\n"}  # the echo model answers with the rendered prompt: out


def golden(root: Path, relative: str = "goldens/echo.yaml"):
    return read_golden_file(root / relative, root.resolve(), DEFAULTS)


def problems_of(root: Path, relative: str = "goldens/echo.yaml") -> list[str]:
    return [str(p) for p in golden(root, relative).problems]


def run_json(cli, root: Path, *args: str):
    result = cli("run", "--root", root, "-m", "echo", "--format", "json", *args)
    return result, (json.loads(result.stdout) if result.stdout.strip().startswith("{") else None)


# --- 1. one place parses specs; built once; factory errors are load problems ------------------------

def test_specs_keep_the_built_comparator(tmp_path: Path) -> None:
    specs, problems = parse_comparators(["exact", {"type": "regex", "pattern": "a"}], "g.yaml", 3, tmp_path)
    assert problems == [] and all(callable(spec.instance) for spec in specs)
    assert specs[1] == ComparatorSpec("regex", {"pattern": "a"}, Location("g.yaml", 3))  # instance not compared


def test_config_no_longer_imports_the_golden_loader() -> None:
    source = (Path(__file__).parents[1] / "promptci" / "config.py").read_text()
    assert "loading.goldens" not in source and "promptci.comparator_specs" in source


def test_a_third_party_factory_raising_anything_is_a_load_problem(cli, tmp_path: Path) -> None:
    from promptci import registry

    def broken(*, size: int = 1):
        raise ValueError("size must be even")

    registry.comparators.register("broken_cmp", broken)
    root = make_project(tmp_path, {**ECHO, "goldens/echo.yaml": """\
        comparators:
          - {type: broken_cmp, size: 3}
        cases:
          - {id: a, input: {out: x}}
        """})
    assert problems_of(root) == ["goldens/echo.yaml:2: comparator 'broken_cmp' failed while being built: "
                                 "ValueError: size must be even"]
    result = cli("run", "--root", root, "-m", "echo")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "goldens/echo.yaml:2" in result.output


# --- 2. expected checked at load -------------------------------------------------------------------

BAD_JSON_EXPECTED = """\
    comparators: [json]
    cases:
      - id: good
        input: {out: '{"a": 1}'}
        expected: '{"a": 1}'
      - id: bad
        input: {out: '{"a": 1}'}
        expected: "{a: 1"
    """


def test_expected_that_is_not_json_under_json_is_a_load_error(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {**ECHO, "goldens/echo.yaml": BAD_JSON_EXPECTED})
    found = problems_of(root)
    assert len(found) == 1 and found[0].startswith("goldens/echo.yaml:8: `expected` is not valid JSON")
    result = cli("run", "--root", root, "-m", "echo")
    assert result.exit_code == 2 and "goldens/echo.yaml:8" in result.output
    linted = cli("lint", "--root", root)
    assert linted.exit_code != 0 and "goldens/echo.yaml:8" in linted.output


def test_a_third_party_check_case_hook_is_called_for_each_case(tmp_path: Path) -> None:
    from promptci import registry

    def even_ids():
        async def score(case, completion):  # pragma: no cover - never scored here
            raise AssertionError

        score.check_case = lambda case: None if len(case.id) % 2 == 0 else "id must have even length"
        return score

    registry.comparators.register("even_ids", even_ids)
    root = make_project(tmp_path, {**ECHO, "goldens/echo.yaml": "comparators: [even_ids]\ncases:\n"
                                   "  - {id: ab, input: {out: x}}\n  - {id: abc, input: {out: x}}\n"})
    assert problems_of(root) == ["goldens/echo.yaml:4: id must have even length "
                                 "(comparator 'even_ids' from goldens/echo.yaml:1)"]


# --- 3. python comparator with options ---------------------------------------------------------------

CHECKS = """\
def within(output, *, max):
    return len(output.split()) <= max

def no_options(output):
    return True
"""


def test_python_comparator_with_options(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {**ECHO, "checks.py": CHECKS, "goldens/echo.yaml": """\
        comparators:
          - {type: python, function: checks.py:within, with: {max: 3}}
        cases:
          - {id: short, input: {out: one two three}}
          - {id: long, input: {out: one two three four}}
        """})
    result, report = run_json(cli, root)
    assert result.exit_code == 1, result.output
    assert {r["case_id"]: r["status"] for r in report["results"]} == {"short": "passed", "long": "failed"}


@pytest.mark.parametrize(("entry", "message"), [
    ("{type: python, function: checks.py:no_options, with: {max: 3}}",
     "does not take option(s) max from `with:`"),
    ("{type: python, function: checks.py:within}", "required keyword-only parameter(s) max"),
    ("{type: python, function: checks.py:within, with: [3]}", "option 'with' must be a mapping"),
    ("{type: python, fn: checks.py:within}", "unknown option(s) 'fn' for comparator 'python' (known: function, "
                                             "threshold, with)"),
])
def test_python_comparator_signature_is_checked_at_load(tmp_path: Path, entry: str, message: str) -> None:
    text = f"comparators:\n  - {entry}\ncases:\n  - {{input: {{out: a}}}}\n"
    root = make_project(tmp_path, {**ECHO, "checks.py": CHECKS, "goldens/echo.yaml": text})
    found = problems_of(root)
    assert len(found) == 1 and found[0].startswith("goldens/echo.yaml:2: ") and message in found[0], found


# --- 7. comparators+ -----------------------------------------------------------------------------

def test_comparators_plus_adds_to_the_file_comparators(tmp_path: Path) -> None:
    root = make_project(tmp_path, {**ECHO, "goldens/echo.yaml": """\
        comparators: [{type: contains, value: a}]
        cases:
          - {id: one, input: {out: a}, comparators+: [{type: regex, pattern: a}]}
          - {id: two, input: {out: a}, comparators: [{type: regex, pattern: b}]}
        """})
    cases = {case.id: [spec.type for spec in case.comparators] for case in golden(root).cases}
    assert cases == {"one": ["contains", "regex"], "two": ["regex"]}


# --- 8. transforms ---------------------------------------------------------------------------------

def test_transforms_at_file_case_and_comparator_level(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {**ECHO, "fns.py": "def shout(text):\n    return text.upper()\n",
                                   "goldens/echo.yaml": """\
        transform: strip
        comparators: [exact]
        cases:
          - id: fenced
            input: {out: "```json\\n{\\"a\\": {\\"b\\": \\"Hi\\"}}\\n```"}
            transform: [strip_fence, "json:a.b", lower]
            expected: hi
          - id: own
            input: {out: "hello"}
            comparators: [{type: exact, transform: {python: fns.py:shout}}]
            expected: HELLO
          - id: untransformed
            input: {out: "Hello"}
            expected: hello
        """})
    result, report = run_json(cli, root)
    statuses = {r["case_id"]: r["status"] for r in report["results"]}
    assert statuses == {"fenced": "passed", "own": "passed", "untransformed": "failed"}, result.output


def test_a_bad_transform_is_a_load_problem(tmp_path: Path) -> None:
    root = make_project(tmp_path, {**ECHO, "goldens/echo.yaml": """\
        cases:
          - {id: a, input: {out: x}, expected: x, transform: upper}
          - {id: b, input: {out: x}, expected: x, transform: "json:a[["}
        """})
    found = problems_of(root)
    assert found[0].startswith("goldens/echo.yaml:2: unknown transform 'upper'")
    assert found[1].startswith("goldens/echo.yaml:3: transform 'json:a[[': invalid JMESPath")


def test_a_failing_transform_fails_the_score_and_says_why(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {**ECHO, "goldens/echo.yaml": """\
        cases:
          - {id: a, input: {out: not json}, expected: x, transform: "json:a"}
        """})
    result, report = run_json(cli, root)
    score = report["results"][0]["scores"][0]
    assert result.exit_code == 1 and score["passed"] is False
    assert score["reason"].startswith("transform json:a failed: JSONDecodeError")


# --- 9. cases_from -----------------------------------------------------------------------------------

def test_cases_from_csv_maps_columns(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "prompts/echo.txt": "{{ out }}{{ suffix }}\n",
        "data/cases.csv": 'id,out,input.suffix,expected,tags\nfirst,"a, b",!,"a, b!","x, y"\nsecond,c,,c,\n',
        "goldens/echo.yaml": "cases_from: data/cases.csv\n",
    })
    cases = golden(root).cases
    assert [(c.id, dict(c.input), c.expected, c.tags, str(c.location)) for c in cases] == [
        ("first", {"out": "a, b", "suffix": "!"}, "a, b!", ("x", "y"), "data/cases.csv:2"),
        ("second", {"out": "c", "suffix": ""}, "c", (), "data/cases.csv:3"),
    ]
    result, report = run_json(cli, root)
    assert result.exit_code == 0, result.output
    assert [r["file"] for r in report["results"]] == ["data/cases.csv", "data/cases.csv"]


def test_cases_from_jsonl_with_yaml_cases(tmp_path: Path) -> None:
    root = make_project(tmp_path, {**ECHO, "data/more.jsonl": '{"id": "j1", "out": "x", "expected": "x"}\n\n'
                                   '{"id": "j2", "input": {"out": "y"}, "expected": "y", "metadata": {"src": 1}}\n',
                                   "goldens/echo.yaml": "cases_from: data/more.jsonl\ncases:\n"
                                   "  - {id: y1, input: {out: z}, expected: z}\n"})
    cases = golden(root).cases
    assert [(c.id, dict(c.input), str(c.location)) for c in cases] == [
        ("y1", {"out": "z"}, "goldens/echo.yaml:3"), ("j1", {"out": "x"}, "data/more.jsonl:1"),
        ("j2", {"out": "y"}, "data/more.jsonl:3")]
    assert cases[2].metadata == {"src": 1}


@pytest.mark.parametrize(("files", "message"), [
    ({"data/c.csv": "id,out\na,1,2\n"}, "data/c.csv:2: row has 3 value(s) but the header names 2 column(s)"),
    ({"data/c.csv": "id,out,expected\na,1,x\na,2,y\n"}, "data/c.csv:3: duplicate case id 'a': first at line 2"),
    ({"data/c.jsonl": '{"id": "a"}\n{bad\n'}, "data/c.jsonl:2: invalid JSON"),
    ({"data/c.jsonl": '[1]\n'}, "data/c.jsonl:1: each line must be a JSON object"),
    ({"data/c.csv": "id,expected\n,x\n"}, "data/c.csv:2: case `id` must be a non-empty string"),
    ({}, "data/c.csv: data file named by `cases_from` does not exist"),
    ({"data/c.csv": 'id,out\na,"' + "y" * 200_000 + '"\n'}, "data/c.csv:2: invalid CSV: field larger than"),
    ({"data/c.txt": "id\n"}, "goldens/echo.yaml:1: `cases_from` must name a .csv or .jsonl file"),
])
def test_cases_from_errors_name_the_data_file_and_row(tmp_path: Path, files: dict[str, str], message: str) -> None:
    name = next(iter(files), "data/c.csv")
    root = make_project(tmp_path, {**ECHO, **files, "goldens/echo.yaml": f"cases_from: {name}\n"})
    found = problems_of(root)
    assert any(p.startswith(message) for p in found), found


def test_cases_from_must_stay_inside_the_project(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", {**ECHO, "goldens/echo.yaml": "cases_from: ../outside.csv\n"})
    found = problems_of(root)
    assert found[0].startswith("goldens/echo.yaml:1: path '../outside.csv' points outside the project root")


def test_a_json_expected_in_a_csv_row_is_checked_at_load(tmp_path: Path) -> None:
    root = make_project(tmp_path, {**ECHO, "data/c.csv": "id,out,expected\na,{},{}\nb,{},nope\n",
                                   "goldens/echo.yaml": "comparators: [json]\ncases_from: data/c.csv\n"})
    found = problems_of(root)
    assert len(found) == 1 and found[0].startswith("data/c.csv:3: `expected` is not valid JSON")


# --- 10. several prompts --------------------------------------------------------------------------------

def test_one_golden_file_for_several_prompts(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "prompts/v1.txt": "{{ out }}\n", "prompts/v2.txt": "{{ out }}!\n",
        "goldens/shared.yaml": "prompt: [v1, v2]\ncases:\n  - {id: a, input: {out: hi}, expected: hi}\n",
    })
    suite = load_suite(load_settings(root))
    assert sorted((c.prompt, c.key) for c in suite.cases) == [
        ("v1", "goldens/shared.yaml::v1::a"), ("v2", "goldens/shared.yaml::v2::a")]
    result, report = run_json(cli, root)
    assert result.exit_code == 1
    assert {r["prompt"]: r["status"] for r in report["results"]} == {"v1": "passed", "v2": "failed"}


def test_a_missing_prompt_in_the_list_is_named(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"prompts/v1.txt": "{{ out }}\n", "goldens/shared.yaml":
                                   "prompt: [v1, v3]\ncases:\n  - {id: a, input: {out: hi}, expected: hi}\n"})
    with pytest.raises(ConfigError) as info:
        load_suite(load_settings(root))
    assert str(info.value).startswith("goldens/shared.yaml:1: prompt 'v3' does not exist")


# --- 11. metric, weight, description, metadata ---------------------------------------------------------

def test_metric_weight_description_and_metadata_are_kept(tmp_path: Path) -> None:
    root = make_project(tmp_path, {**ECHO, "goldens/echo.yaml": """\
        comparators:
          - {type: exact, metric: accuracy, weight: 2, description: exact label, metadata: {owner: qa}}
        cases:
          - id: a
            input: {out: x}
            expected: x
            description: the easy one
            metadata: {source: ticket-12}
        """})
    case = golden(root).cases[0]
    spec = case.comparators[0]
    assert (spec.metric, spec.weight, spec.description, spec.metadata) == ("accuracy", 2.0, "exact label",
                                                                          {"owner": "qa"})
    assert (case.description, case.metadata) == ("the easy one", {"source": "ticket-12"})


@pytest.mark.parametrize(("entry", "message"), [
    ("{type: exact, weight: -1}", "comparator `weight` must be a number >= 0"),
    ("{type: exact, metric: [a]}", "comparator `metric` must be a name"),
    ("{type: exact, metadata: 3}", "comparator `metadata` must be a mapping"),
])
def test_bad_metric_fields_are_load_problems(tmp_path: Path, entry: str, message: str) -> None:
    root = make_project(tmp_path, {**ECHO, "goldens/echo.yaml":
                                   f"comparators:\n  - {entry}\ncases:\n  - {{input: {{out: a}}, expected: a}}\n"})
    found = problems_of(root)
    assert found and found[0].startswith(f"goldens/echo.yaml:2: {message}"), found


def test_unknown_case_key_still_named_with_the_new_keys_listed(tmp_path: Path) -> None:
    root = make_project(tmp_path, {**ECHO, "goldens/echo.yaml":
                                   "cases:\n  - {input: {out: a}, expected: a, comparator+: [exact]}\n"})
    found = problems_of(root)
    assert found and "comparator+" in found[0] and "comparators+" in found[0], found


def test_metric_table_aggregates_each_metric_per_prompt_and_model() -> None:
    from promptci.metrics import MetricValue, metric_table
    from promptci.types import CaseResult, Score

    metrics = (("exact", "accuracy", 3.0), ("contains", "accuracy", 1.0), ("regex", None, 1.0))

    def result(case_id: str, model: str, passes: tuple[bool, ...]) -> CaseResult:
        scores = tuple(Score(name, float(p), p, metric=metric, weight=weight)
                       for (name, metric, weight), p in zip(metrics, passes, strict=True))
        return CaseResult("echo", case_id, "goldens/echo.yaml", 0, model, "passed", scores=scores)

    results = [result("a", "m1", (True, True, True)), result("b", "m1", (False, True, False)),
               result("a", "m2", (True, False, True)),
               CaseResult("echo", "b", "goldens/echo.yaml", 0, "m2", "error")]
    assert metric_table(results) == [
        MetricValue("accuracy", "echo", "m1", pass_rate=5 / 8, mean_score=5 / 8, scores=4),
        MetricValue("accuracy", "echo", "m2", pass_rate=3 / 4, mean_score=3 / 4, scores=2),
    ]


FULL_GOLDEN = """\
    prompt: [v1, v2]
    description: every new key at once
    metadata: {team: support}
    cases_from: data/cases.jsonl
    transform: strip
    comparators:
      - {type: json_fields, fields: {label: {one_of: [billing, bug]}}, metric: accuracy, weight: 2}
      - {expr: "len(output) < 300", description: short, metadata: {why: ui}}
      - {type: python, function: checks.py:within, with: {max: 30}, transform: lower}
    cases:
      - id: refund
        input: {out: '{"label": "billing"}'}
        expected: '{"label": "billing"}'
        comparators+: [is_json, {type: starts_with, value: "{"}, {type: not_regex, pattern: sorry}]
        transform: ["json:@", strip_fence]
        description: duplicate charge
        metadata: {source: ticket-1182}
        tags: [smoke]
    """


def test_lint_knows_every_new_key_and_the_suite_runs(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {
        "prompts/v1.txt": "{{ out }}\n", "prompts/v2.txt": "{{ out }}\n", "checks.py": CHECKS,
        "data/cases.jsonl": '{"id": "bug", "out": "{\\"label\\": \\"bug\\"}"}\n', "goldens/shared.yaml": FULL_GOLDEN,
    })
    linted = cli("lint", "--root", root)
    assert linted.exit_code == 0, linted.output
    result, report = run_json(cli, root)
    assert result.exit_code == 0, result.output
    assert sorted((r["prompt"], r["case_id"]) for r in report["results"]) == [
        ("v1", "bug"), ("v1", "refund"), ("v2", "bug"), ("v2", "refund")]
    scores = {r["case_id"]: [s["comparator"] for s in r["scores"]] for r in report["results"]}
    assert scores == {"bug": ["json_fields", "expr", "python"],
                      "refund": ["json_fields", "expr", "python", "is_json", "starts_with", "not_regex"]}


def test_comparators_command_lists_the_new_comparators(cli) -> None:
    listed = cli("comparators").output
    for name in ("json_fields", "expr", "is_json", "starts_with", "not_regex", "one_of", "length", "fuzzy",
                 "levenshtein"):
        assert name in listed


def test_the_spec_example_loads_and_runs(cli, tmp_path: Path) -> None:
    spec = (Path(__file__).parents[1] / "docs" / "SPEC.md").read_text(encoding="utf-8")
    section = spec[spec.index("### 2.1 Goldens for real suites"):]
    start = section.index("```yaml\n") + 8
    example = section[start:section.index("\n```", start)]
    root = make_project(tmp_path, {
        "prompts/classify_v1.txt": "{{ ticket }}\n", "prompts/classify_v2.txt": "Ticket: {{ ticket }}\n",
        "data/tickets.csv": "id,ticket\nbug-1,The app crashes\n",
        "checks.py": "def within(output, *, max):\n    return len(output) <= max\n",
        "app.py": "def answer(messages, params):\n"
                  "    label = 'bug' if 'crash' in messages[-1]['content'] else 'billing'\n"
                  "    return '```json\\n{\"label\": \"%s\", \"confidence\": 0.9}\\n```' % label\n",
        "goldens/tickets.yaml": example,
    })
    result = cli("run", "--root", root, "-m", "python:app:answer", "--format", "json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["results"]) == 4


def test_config_comparators_go_through_the_same_parser(cli, tmp_path: Path) -> None:
    root = make_project(tmp_path, {**ECHO, "promptci.yaml": "models: [echo]\ncomparators:\n  - {expr: 'len(output'}\n",
                                   "goldens/echo.yaml": "cases:\n  - {input: {out: a}}\n"})
    result = cli("run", "--root", root)
    assert result.exit_code == 2 and "promptci.yaml:3: comparator 'expr': invalid Python expression" in result.output


TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=6))
def test_any_csv_the_csv_module_writes_loads_back_with_each_row_line(tmp_path: Path, rows) -> None:
    import csv
    import io
    import shutil

    root = tmp_path / "h"
    shutil.rmtree(root, ignore_errors=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["out", "expected"])
    expected_rows = []
    for row in rows:
        line = buffer.getvalue().count("\n") + 1  # a value may hold newlines: the row starts here
        writer.writerow(row)
        if any(value.strip() for value in row):
            expected_rows.append((row[0], row[1], f"data/c.csv:{line}"))
    make_project(root, {**ECHO, "data/c.csv": buffer.getvalue().encode("utf-8"),
                        "goldens/echo.yaml": "cases_from: data/c.csv\n"})
    loaded = golden(root)
    assert [(c.input["out"], c.expected, str(c.location)) for c in loaded.cases] == expected_rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(TEXT, min_size=1, max_size=5))
def test_any_jsonl_text_loads_back_at_its_line(tmp_path: Path, values) -> None:
    import shutil

    root = tmp_path / "h"
    shutil.rmtree(root, ignore_errors=True)
    text = "".join(json.dumps({"out": value, "expected": value}, ensure_ascii=False) + "\n" for value in values)
    make_project(root, {**ECHO, "data/c.jsonl": text.encode("utf-8"),
                        "goldens/echo.yaml": "cases_from: data/c.jsonl\n"})
    loaded = golden(root)
    assert [(c.input["out"], str(c.location)) for c in loaded.cases] == [
        (value, f"data/c.jsonl:{line}") for line, value in enumerate(values, start=1)]
