"""pass@k and pass^k in a diff's reports: per case and per prompt x model, at A and at B, by reliability.py's
estimators (k = B's K), against hand values in every format."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from math import comb
from pathlib import Path

import pytest
from test_compare import MODEL, result, run
from test_html import CHROMIUM, dump_dom, needs_chromium

from promptci.compare import Comparison, compare_runs
from promptci.reporting import write_comparison
from promptci.reporting.diff_html import comparison_data, render_comparison_html
from promptci.types import CaseResult


def samples(case_id: str, passes: int, n: int, errors: int = 0) -> list[CaseResult]:
    return [result(case_id, "passed" if i < passes else "error" if i >= n - errors else "failed", repeat=i)
            for i in range(n)]


def comparison() -> Comparison:
    """A holds a pool of 10 samples a case, B K = 4: k = 4, so A's figures use the estimators over 10."""
    before = run(*samples("drop", 10, 10), *samples("noisy", 6, 10), *samples("steady", 9, 10),
                 *samples("errs", 10, 10))
    after = run(*samples("drop", 1, 4), *samples("noisy", 2, 4), *samples("steady", 4, 4),
                *samples("errs", 3, 4, errors=1))
    return compare_runs(before, after)


def hand_at(n: int, c: int, k: int = 4) -> Fraction:
    return 1 - Fraction(comb(n - c, k), comb(n, k))


def hand_hat(n: int, c: int, k: int = 4) -> Fraction:
    return Fraction(comb(c, k), comb(n, k))


# by hand: noisy at A is 6 of 10, so pass@4 = 1 - C(4,4)/C(10,4) = 209/210 and pass^4 = C(6,4)/C(10,4) = 1/14;
# steady at A 9 of 10: pass^4 = C(9,4)/C(10,4) = 3/5. errs at B has 3 scored samples (one error): below k.
CASES = {"drop": ((1, 1), (1, 0)), "noisy": ((Fraction(209, 210), 1), (Fraction(1, 14), 0)),
         "steady": ((1, 1), (Fraction(3, 5), 1)), "errs": ((1, None), (1, None))}
PROMPT_AT = (Fraction(839, 840), 1)  # A: the mean over 4 cases; B: over the 3 with 4 scored samples
PROMPT_HAT = (Fraction(561, 840), Fraction(1, 3))


def written(fmt: str, verbosity: int = 0) -> str:
    stream = io.StringIO()
    write_comparison(comparison(), fmt, stream, verbosity)
    return stream.getvalue()


def test_the_hand_values_are_the_estimators() -> None:
    assert CASES["noisy"] == ((hand_at(10, 6), hand_at(4, 2)), (hand_hat(10, 6), hand_hat(4, 2)))
    assert CASES["steady"][1] == (hand_hat(10, 9), hand_hat(4, 4))
    assert PROMPT_AT[0] == (1 + Fraction(209, 210) + 1 + 1) / 4
    assert ((1 + Fraction(1, 14) + Fraction(3, 5) + 1) / 4, (0 + 0 + 1) / Fraction(3)) == PROMPT_HAT


def test_json_gives_pass_k_per_case_and_prompt_at_both_sides() -> None:
    data = json.loads(written("json"))["reliability"]
    assert data["k"] == 4
    cases = {row["case_id"]: row for row in data["cases"]}
    assert set(cases) == set(CASES)
    for case_id, (at_k, hat_k) in CASES.items():
        row = cases[case_id]
        assert (row["file"], row["prompt"], row["model"], row["k"]) == ("goldens/greet.yaml", "greet", MODEL, 4)
        for name, expected in (("pass_at_k", at_k), ("pass_hat_k", hat_k)):
            got = (row[name]["before"], row[name]["after"])
            assert got == pytest.approx(tuple(None if v is None else float(v) for v in expected)), (case_id, name)
    (prompt,) = data["prompts"]
    assert (prompt["prompt"], prompt["model"], prompt["cases"]) == ("greet", MODEL, {"before": 4, "after": 3})
    assert (prompt["pass_at_k"]["before"], prompt["pass_at_k"]["after"]) == pytest.approx(tuple(map(float, PROMPT_AT)))
    assert (prompt["pass_hat_k"]["before"], prompt["pass_hat_k"]["after"]) == pytest.approx(
        tuple(map(float, PROMPT_HAT)))


def test_markdown_gives_the_prompt_table_and_every_case() -> None:
    text = written("markdown")
    assert "### Reliability at k = 4, A -> B" in text
    assert f"| `greet` | `{MODEL}` | 4 -> 3 | 0.999 -> 1.000 | 0.668 -> 0.333 |" in text
    assert f"| `goldens/greet.yaml::noisy` | `{MODEL}` | 0.995 -> 1.000 | 0.071 -> 0.000 |" in text
    assert f"| `goldens/greet.yaml::errs` | `{MODEL}` | 1.000 -> - | 1.000 -> - |" in text


def test_the_table_gives_prompts_and_with_v_every_case() -> None:
    plain, verbose = " ".join(written("table").split()), " ".join(written("table", 1).split())
    line = f"greet [{MODEL}]: pass@4 0.999 -> 1.000, pass^4 0.668 -> 0.333 (mean over 4 -> 3 cases with 4 scored"
    assert line in plain and line in verbose
    noisy = f"goldens/greet.yaml::noisy [{MODEL}]: pass@4 0.995 -> 1.000, pass^4 0.071 -> 0.000"
    assert noisy not in plain and noisy in verbose


def test_html_carries_the_prompt_lines_and_each_case() -> None:
    data = comparison_data(comparison())
    assert data["reliability"] == [f"greet [{MODEL}]: pass@4 0.999 -> 1.000, pass^4 0.668 -> 0.333 (mean over "
                                   "4 -> 3 cases with 4 scored samples)"]
    by_case = {c["c"]: c["pk"] for c in data["cases"]}
    assert by_case["steady"] == "pass@4 1.000 -> 1.000, pass^4 0.600 -> 1.000"


def test_without_repeats_there_is_no_reliability() -> None:
    one = compare_runs(run(result("a", "passed")), run(result("a", "failed")))
    stream = io.StringIO()
    write_comparison(one, "json", stream)
    assert json.loads(stream.getvalue())["reliability"] is None
    assert comparison_data(one)["reliability"] == []
    stream = io.StringIO()
    write_comparison(one, "markdown", stream)
    assert "Reliability" not in stream.getvalue()


@needs_chromium
def test_the_html_page_shows_them(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    page = tmp_path / "diff.html"
    page.write_text(render_comparison_html(comparison()), encoding="utf-8")
    body = dump_dom(page, "#expand=1", tmp_path).split('<script type="application/json"')[0]
    assert '<section id="reliability-section">' in body
    assert f"<li>greet [{MODEL}]: pass@4 0.999 -&gt; 1.000, pass^4 0.668 -&gt; 0.333 (mean over 4 -&gt; 3" in body
    assert "<div>pass@4 1.000 -&gt; 1.000, pass^4 0.600 -&gt; 1.000</div>" in body  # steady's detail
