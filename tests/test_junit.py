"""JUnit reports validated against the junit-10 schema CI consumers read (tests/data/junit-10.xsd)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from promptci.reporting.junit import clean_xml_text, junit_xml
from promptci.types import BrokenCase, CaseResult, GitInfo, Run, Score, summarize

xmlschema = pytest.importorskip("xmlschema", reason="the test extra installs xmlschema")
SCHEMA = Path(__file__).parent / "data" / "junit-10.xsd"
HOSTILE = "]]><testcase name='forged'/><!-- \x00\x1b[31m \ud800 \ufffe <script>alert(1)</script> & \"'"


def result(case_id: str, model: str, status: str, **kw: object) -> CaseResult:
    fields: dict[str, object] = {"prompt": "route", "file": "goldens/route.yaml", "line": 3, "latency_ms": 1234.5}
    fields.update(kw)
    return CaseResult(case_id=case_id, model=model, status=status, **fields)  # type: ignore[arg-type]


def make_run(*results: CaseResult) -> Run:
    models = tuple(dict.fromkeys(r.model for r in results))
    return Run(run_id="r1", started_at="2026-01-01T00:00:00Z", finished_at=None, git=GitInfo(), models=models,
               results=results, summary=summarize(results))


@pytest.fixture(scope="module")
def schema():
    return xmlschema.XMLSchema(SCHEMA)


def hostile_run() -> Run:
    bad = Score("exact", 0.0, False, HOSTILE, f"-a\n+{HOSTILE}")
    return make_run(
        result("ok", "m:a", "passed", output="fine", scores=(Score("exact", 1.0, True),)),
        result(HOSTILE, "m:a", "failed", output=HOSTILE, scores=(bad,), cost_usd=0.5, input_tokens=3),
        result("err", "m:b", "error", error=HOSTILE, resolved_model=HOSTILE),
        result("skip", "m:b", "skipped", skip_reason=HOSTILE, prompt=HOSTILE),
    )


def test_a_run_with_hostile_output_is_valid_junit(schema) -> None:
    xml = junit_xml(hostile_run())
    schema.validate(xml)
    root = ET.fromstring(xml)
    assert [c.get("name") for c in root.iter("testcase")].count("forged") == 0
    assert len(list(root.iter("testcase"))) == 4
    failure = root.find(".//failure")
    assert failure is not None and "<script>alert(1)</script>" in (failure.text or "")


def test_one_suite_per_prompt_and_model_one_case_per_sample(schema) -> None:
    a = result("c1", "m:a", "passed")
    run = make_run(a, replace(a, repeat=1), replace(a, model="m:b"), replace(a, prompt="other", case_id="c2"))
    xml = junit_xml(run)
    schema.validate(xml)
    root = ET.fromstring(xml)
    suites = [(s.get("name"), s.get("tests")) for s in root.findall("testsuite")]
    assert suites == [("other [m:a]", "1"), ("route [m:a]", "2"), ("route [m:b]", "1")]
    assert [c.get("name") for c in root.findall("testsuite")[1].iter("testcase")] == ["c1 (repeat 0)",
                                                                                     "c1 (repeat 1)"]


def test_an_empty_run_is_valid(schema) -> None:
    schema.validate(junit_xml(make_run()))


def test_the_schema_rejects_what_strict_consumers_reject(schema) -> None:
    """The schema is not a rubber stamp: attributes junit-10 lacks make a report invalid."""
    xml = junit_xml(make_run(result("c1", "m:a", "passed")))
    assert schema.is_valid(xml)
    assert not schema.is_valid(xml.replace('<testcase ', '<testcase line="3" ', 1))
    assert not schema.is_valid(xml.replace('time="1.234"', 'time="1.2345"', 1))
    assert not schema.is_valid(xml.replace('<testsuites ', '<testsuites skipped="0" ', 1))


def test_notes_and_flaky_cases_are_suite_properties(schema) -> None:
    a = result("c1", "m:a", "passed")
    flaky = replace(a, case_id="c2", line=9)
    run = replace(make_run(a, replace(a, repeat=1), flaky, replace(flaky, repeat=1, status="failed"),
                           replace(a, model="m:b"), replace(a, model="m:b", repeat=1)),
                  notes=(f"drift: m:a now resolves to m-a-2 {HOSTILE}",),
                  problems=("goldens/route.yaml:20: unknown comparator 'exakt'", "m:b: rate limited 3 times"),
                  broken=(BrokenCase("goldens/route.yaml:20", "unknown comparator 'exakt'"),))
    xml = junit_xml(run)
    schema.validate(xml)
    root = ET.fromstring(xml)
    for suite in root.findall("testsuite"):
        notes = [p.get("value") for p in suite.iter("property") if p.get("name") == "note"]
        assert notes == [clean_xml_text(f"drift: m:a now resolves to m-a-2 {HOSTILE}"),
                         "1 case skipped (broken): goldens/route.yaml:20", "m:b: rate limited 3 times"]
    flaky_by_suite = {s.get("name"): [p.get("value") for p in s.iter("property") if p.get("name") == "flaky"]
                      for s in root.findall("testsuite")}
    assert flaky_by_suite == {
        "route [m:a]": ["goldens/route.yaml:9 c2 [m:a]: flaky passed 1 of 2 (50%, 95% CI 9%-91%)"], "route [m:b]": []}
