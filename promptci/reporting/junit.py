"""JUnit XML: one testsuite per prompt, one testcase per case x model (x repeat)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TextIO

from promptci.reporting.stats import failing_reasons, has_repeats
from promptci.types import CaseResult, Run, Score

# Characters XML 1.0 cannot hold at all, even escaped; model output may contain them.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_xml_text(text: str) -> str:
    """Replace characters XML forbids with their \\x escape so the report still parses."""
    return _ILLEGAL_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _seconds(result: CaseResult) -> float:
    return (result.latency_ms or 0.0) / 1000


def _testcase_name(result: CaseResult, with_repeat: bool) -> str:
    return f"{result.case_id} (repeat {result.repeat})" if with_repeat else result.case_id


def _score_text(score: Score) -> str:
    text = f"{score.comparator}: {score.reason}" if score.reason else score.comparator
    return f"{text}\n{score.diff}" if score.diff else text


def _failure_body(result: CaseResult) -> str:
    failing = [s for s in result.scores if not s.passed]
    parts = [_score_text(s) for s in failing]
    return "\n\n".join(parts)


def _add_text(parent: ET.Element, tag: str, message: str, body: str | None) -> ET.Element:
    child = ET.SubElement(parent, tag, {"message": clean_xml_text(message)})
    if body:
        child.text = clean_xml_text(body)
    return child


def _add_properties(case: ET.Element, result: CaseResult) -> None:
    values = {
        "model": result.model,
        "resolved_model": result.resolved_model,
        "cached": str(result.cached).lower(),
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost_usd": result.cost_usd,
        "ttft_ms": result.ttft_ms,
    }
    props = ET.SubElement(case, "properties")
    for name, value in values.items():
        if value is not None:
            ET.SubElement(props, "property", {"name": name, "value": clean_xml_text(str(value))})


def _testcase(result: CaseResult, with_repeat: bool) -> ET.Element:
    case = ET.Element("testcase", {
        "classname": clean_xml_text(f"{result.prompt}.{result.model}"),
        "name": clean_xml_text(_testcase_name(result, with_repeat)),
        "file": clean_xml_text(result.file),
        "line": str(result.line),
        "time": f"{_seconds(result):.3f}",
    })
    _add_properties(case, result)
    reasons = failing_reasons(result)
    if result.status == "failed":
        _add_text(case, "failure", "; ".join(reasons) or "failed", _failure_body(result))
    elif result.status == "error":
        _add_text(case, "error", reasons[0], result.error)
    elif result.status == "skipped":
        _add_text(case, "skipped", result.skip_reason or "skipped", None)
    if result.status in ("failed", "error") and result.output is not None:
        ET.SubElement(case, "system-out").text = clean_xml_text(result.output)
    return case


def _counts(results: list[CaseResult]) -> dict[str, str]:
    def count(status: str) -> str:
        return str(sum(1 for r in results if r.status == status))

    return {
        "tests": str(len(results)),
        "failures": count("failed"),
        "errors": count("error"),
        "skipped": count("skipped"),
        "time": f"{sum(_seconds(r) for r in results):.3f}",
    }


def build_junit(run: Run) -> ET.Element:
    """The <testsuites> tree; suites in prompt order, cases in the run's order."""
    by_prompt: dict[str, list[CaseResult]] = {}
    for r in run.results:
        by_prompt.setdefault(r.prompt, []).append(r)
    with_repeat = has_repeats(run)
    root = ET.Element("testsuites", {"name": "promptci", **_counts(list(run.results))})
    for prompt in sorted(by_prompt):
        results = by_prompt[prompt]
        suite = ET.SubElement(root, "testsuite", {
            "name": prompt, "timestamp": run.started_at, **_counts(results),
        })
        suite.extend(_testcase(r, with_repeat) for r in results)
    return root


def junit_xml(run: Run) -> str:
    root = build_junit(run)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(run: Run, stream: TextIO) -> None:
    stream.write(junit_xml(run))
