"""A hostile world, round two (issue 24): `expr` comes from golden files, which are data. It is evaluated by a
restricted evaluator (simpleeval, with promptci's bounds), never by Python's eval: no escape to the runtime, no
exhausting the machine, and every expression the promptfoo importer writes still evaluates."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from helpers_project import make_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptci.comparators import expr as expr_module
from promptci.errors import ComparatorError
from promptci.registry import build_comparator
from promptci.types import Case, Completion, Location, Score


def score(expression: str, output: str, inputs: dict[str, Any] | None = None, **options: Any) -> Score:
    comparator = build_comparator("expr", {"expr": expression, **options})
    case = Case(id="c", prompt="p", location=Location("goldens/p.yaml", 3), input=inputs or {"city": "Oslo"},
                expected="x", has_expected=True)
    return asyncio.run(comparator(case, Completion(text=output)))


def refused_at_load(expression: str) -> str:
    with pytest.raises(ComparatorError) as info:
        build_comparator("expr", {"expr": expression})
    return info.value.message


# ---------------------------------------------------------------- no way out to the runtime

ESCAPES = [
    "().__class__.__base__.__subclasses__()",
    "[c for c in ().__class__.__mro__[1].__subclasses__() if c.__name__ == 'Popen'][0](['touch', 'pwned'])",
    "output.__class__",
    "case.__dict__",
    "re.__builtins__",
    "(lambda: 1)()",
    "output.format.__globals__",
    "'{0.__class__}'.format(output)",
    "re.sub.__globals__['os']",
    "case.comparators[0].instance",
    "re.compile('x')",
    "[x := 1]",
]


@pytest.mark.parametrize("expression", ESCAPES)
def test_expressions_that_reach_for_the_runtime_are_refused_at_load(expression: str) -> None:
    message = refused_at_load(expression)
    assert "is not available" in message and "type: python" in message


def test_a_golden_expr_cannot_run_code(tmp_path: Path, cli) -> None:
    """On the old evaluator this walked to subprocess.Popen and created a file."""
    marker = tmp_path / "pwned"
    walk = ("[c for c in ().__class__.__mro__[1].__subclasses__() if c.__name__ == 'Popen'][0]"
            f"(['touch', '{marker}']).wait() == 0")
    root = make_project(tmp_path / "p", {"prompts/p.txt": "hi", "goldens/p.yaml":
                                         f"cases:\n  - id: c1\n    comparators: [{{expr: {json.dumps(walk)}}}]\n"})
    result = cli("run", "--root", root, "-m", "echo")
    assert result.exit_code == 2, result.output
    assert "goldens/p.yaml:3" in result.output and "is not available" in result.output
    assert not marker.exists()


@pytest.mark.parametrize("expression", ["__import__('os').system('true')", "open('x').read()",
                                        "eval('1')", "getattr(output, 'upper')"])
def test_runtime_builtins_are_unknown_names(expression: str) -> None:
    assert "unknown name(s)" in refused_at_load(expression)


# ---------------------------------------------------------------- bounded in size and time

@pytest.mark.parametrize(("expression", "why"), [
    ("9**9**9 > 0", "bits"),
    ("10**100000 > 0", "bits"),
    ("(2**60000) * (2**60000) > 0", "bits"),
    ("1 << 10**9 > 0", "bits"),
    ("len('x' * 10**10) > 0", "longer than"),
    ("len(output * 10**9) > 0", "longer than"),
    ("len(output.replace('', 'x' * 100000)) > 0", "longer than"),
    ("len(('x' * 900000).join(output)) > 0", "longer than"),
    ("len('%999999999s' % 'a') > 0", "formatting"),
    ("len([[1] * 900000 + [2] * 900000]) > 0", "longer than"),
])
def test_an_expression_that_would_exhaust_the_machine_fails_quickly(expression: str, why: str) -> None:
    result = score(expression, "some output")
    assert not result.passed and result.value == 0.0
    assert why in result.reason


def test_an_f_string_format_spec_is_refused_at_load() -> None:
    assert "format spec" in refused_at_load("len(f'{output:>999999999}') > 0")


def test_steps_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The step bound, with the time bound out of the way: a loaded machine takes longer than 2 s for these steps."""
    monkeypatch.setattr(expr_module, "MAX_SECONDS", 3600.0)
    body = "+".join(["1"] * 40)
    result = score(f"sum({body} for c in output) > 0", "x" * 9000)
    assert not result.passed and "steps" in result.reason


def test_time_is_bounded_with_an_injected_clock() -> None:
    ticks = itertools.count(step=expr_module.MAX_SECONDS / 10)
    tree = expr_module.compile_expression("all(c for c in output)")
    with pytest.raises(ValueError, match="took longer than"):
        expr_module.evaluate(tree, {"output": "abcdefghijklmnopqrstuvwxyz", "expected": None, "json": None,
                                    "case": None, "vars": {}}, clock=lambda: next(ticks))


def test_a_huge_integer_result_is_a_number_not_a_crash() -> None:
    assert score("2**5000", "x").passed  # inf >= threshold
    assert not score("-(2**5000)", "x").passed


def test_a_function_as_the_value_is_a_failure_not_a_pass() -> None:
    result = score("output.upper", "x")
    assert not result.passed and "is a function" in result.reason


# ---------------------------------------------------------------- what expr did and still does

@pytest.mark.parametrize(("expression", "output", "passed"), [
    ("len(output) < 10 and 'arr' in output.lower()", "ARRR", True),
    ("json['n'] > 2", '{"n": 3}', True),
    ("json.get('n', 0) == 0", '{"m": 3}', True),
    ("json is None", "plain", True),
    ("vars['city'] in output", "I live in Oslo", True),
    ("case.input['city'] == 'Oslo' and case.id == 'c'", "x", True),
    ("re.search(r'\\d{3}', output) is not None", "code 123", True),
    ("re.search(r'(\\d+)', output).group(1) == '123'", "code 123", True),
    ("len(re.findall('a', output, re.I | re.M)) == 3", "aAa", True),
    ("all(w.istitle() for w in output.split())", "Hello World", True),
    ("any(word in output for word in ['refund', 'credit'])", "a credit note", True),
    ("{k: v for k, v in json.items()}['a'] == 1", '{"a": 1}', True),
    ("sorted(set(output.split()))[0] == 'a'", "b a b", True),
    ("f'<{output}>' == '<x>'", "x", True),
    ("output[1:3] == 'bc' and output[-1] == 'd'", "abcd", True),
    ("round(len(output) / 3, 2) == 1.33", "abcd", True),
    ("'-'.join(output.split()) == 'a-b'", "a b", True),
    ("output.replace('a', 'b') == 'bb'", "ab", True),
    ("expected == output", "x", True),
    ("min([3, 1, 2]) == 1 and max(1, 2) == 2 and abs(-1) == 1 and sum([1, 2]) == 3", "x", True),
    ("int('7') + float('0.5') == 7.5 and str(1) == '1' and bool(1)", "x", True),
    ("3 % 2 == 1 and 7 // 2 == 3 and 2 ** 10 == 1024", "x", True),
    ("(True if len(output) > 1 else False)", "xy", True),
])
def test_the_features_expr_had_still_work(expression: str, output: str, passed: bool) -> None:
    assert score(expression, output).passed is passed, score(expression, output).reason


# The `expr` forms `promptci import promptfoo` writes (promptci/importers/promptfoo_asserts.py; JavaScript and
# Python assertions become functions in a generated checks.py, not expr), each evaluated by the restricted
# evaluator on one output.
IMPORTED = [
    (("equals", {"a": 1}, False), '{"a": 1}', True),
    (("equals", "I can refund now.", False), "I can refund now.", True),
    (("icontains-any", ["REFUND", "later"], False), "I can refund now.", True),
    (("contains-any", ["later", "never"], False), "I can refund now.", False),
    (("contains-all", ["refund", "now"], True), "I can refund now.", False),
    (("icontains-all", ["REFUND", "tomorrow"], True), "I can refund now.", True),
    (("equals", "no", True), "I can refund now.", True),
    (("starts-with", "I can", True), "I can refund now.", False),
    (("is-json", None, True), "I can refund now.", True),
]


@pytest.mark.parametrize(("assertion", "output", "want"), IMPORTED)
def test_every_expr_the_promptfoo_importer_writes_evaluates(assertion: tuple[str, Any, bool], output: str,
                                                            want: bool) -> None:
    from promptci.importers.promptfoo_asserts import Mapped, _map_negated, _map_plain

    kind, value, negated = assertion
    mapped = _map_negated(kind, value) if negated else _map_plain(kind, value, None)
    assert isinstance(mapped, Mapped)
    spec = mapped.spec if mapped.spec["type"] == "expr" else mapped.fallback
    assert spec is not None and spec["type"] == "expr", mapped
    result = score(spec["expr"], output)
    assert result.passed is want, (spec["expr"], result.reason)


# ---------------------------------------------------------------- fuzz

ATOMS = st.sampled_from(["output", "expected", "json", "vars", "case", "1", "0", "-1", "2**8", "'a'", "''",
                         "None", "True", "[1, 'a']", "{'k': 1}", "9**9", "re", "len", "x"])


def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<<", "|", "&", " and ",
                                                   " or ", " in ", "==", "<", " is "]), children)
    return st.one_of(
        binary.map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(children, st.sampled_from(["upper", "split", "lower", "get", "replace", "join", "count",
                                             "__class__", "format", "items", "search"]))
        .map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(children, children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(children, children).map(lambda t: f"[{t[0]} for x in {t[1]}]"),
        children.map(lambda c: f"not {c}"),
    )


EXPRESSIONS = st.recursive(ATOMS, combine, max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=EXPRESSIONS, output=st.text(max_size=50))
def test_any_expression_is_refused_at_load_or_scores_never_raises(expression: str, output: str) -> None:
    try:
        comparator = build_comparator("expr", {"expr": expression})
    except ComparatorError:
        return
    case = Case(id="c", prompt="p", location=Location("goldens/p.yaml", 3), input={"k": "v"})
    result = asyncio.run(comparator(case, Completion(text=output)))
    assert isinstance(result, Score) and 0.0 <= result.value <= 1.0


@settings(max_examples=300, deadline=None)
@given(source=st.text(max_size=80))
def test_any_text_is_an_expression_or_a_named_load_error(source: str) -> None:
    try:
        expr_module.compile_expression(source)
    except ComparatorError as exc:
        assert "comparator 'expr'" in exc.message
