"""JUnit XML: one testsuite per prompt x model, one testcase per case (per sample when repeated).

Shaped to the strict junit-10 structure CI consumers validate against (pytest's xunit2): testcases carry
only name, classname and time, so the golden's path:line and the numbers go into the failure text and
the suite's properties. So do the run's notes (drift, the upgrade verdict, budget and rate limits: every
suite carries them, as a CI page may show only one) and, under --repeat, the flaky cases."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import replace
from typing import TextIO

from promptci.reporting.stats import failing_reasons, rate_line, run_notes, score_name
from promptci.types import CaseResult, Run, Score
from promptci.verdict.gates import decision_of
from promptci.verdict.money import spent
from promptci.verdict.summary import CaseRate, case_rates, flaky_cases, has_repeats

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
    text = f"{score_name(score)}: {score.reason}" if score.reason else score_name(score)
    return f"{text}\n{score.diff}" if score.diff else text


def _where(result: CaseResult) -> str:
    return f"{result.file}:{result.line}" if result.line else result.file


def _failure_body(result: CaseResult) -> str:
    failing = [s for s in result.scores if not s.passed]
    return "\n\n".join([_where(result), *(_score_text(s) for s in failing)])


def _add_text(parent: ET.Element, tag: str, message: str, body: str | None) -> ET.Element:
    child = ET.SubElement(parent, tag, {"message": clean_xml_text(message)})
    if body:
        child.text = clean_xml_text(body)
    return child


def _add_properties(suite: ET.Element, results: list[CaseResult], notes: list[str], flaky: list[CaseRate],
                    verdict: str) -> None:
    first = results[0]
    resolved = sorted({r.resolved_model for r in results if r.resolved_model})
    values = {
        "prompt": first.prompt,
        "model": first.model,
        "resolved_model": ", ".join(resolved) or None,
        "input_tokens": sum(r.input_tokens or 0 for r in results),
        "output_tokens": sum(r.output_tokens or 0 for r in results),
        "cost_usd": f"{spent(results).known:.12g}",
        "cached": sum(r.cached for r in results),
    }
    props = ET.SubElement(suite, "properties")
    named = [("verdict", verdict), *values.items(), *(("note", note) for note in notes),
             *(("flaky", rate_line(rate)) for rate in flaky)]
    for name, value in named:
        if value is not None:
            ET.SubElement(props, "property", {"name": name, "value": clean_xml_text(str(value))})


def accepted_failures(run: Run) -> dict[tuple[str, str, str, str], str]:
    """Cases whose min_pass_rate accepts their failing samples, with the words that say why: those samples are
    written as passing testcases carrying the failure as output, so JUnit's counts agree with the verdict."""
    return {(rate.file, rate.prompt, rate.case_id, rate.model): rate.threshold() or ""
            for rate in case_rates(run) if rate.min_pass_rate is not None and rate.status == "passed"}


def _as_judged(result: CaseResult, accepted: Mapping[tuple[str, str, str, str], str]) -> CaseResult:
    key = (result.file, result.prompt, result.case_id, result.model)
    return replace(result, status="passed") if result.status == "failed" and key in accepted else result


def _testcase(result: CaseResult, with_repeat: bool, accepted: str | None = None) -> ET.Element:
    case = ET.Element("testcase", {
        "classname": clean_xml_text(f"{result.prompt}.{result.model}"),
        "name": clean_xml_text(_testcase_name(result, with_repeat)),
        "time": f"{_seconds(result):.3f}",
    })
    reasons = failing_reasons(result)
    if result.status == "failed":
        _add_text(case, "failure", "; ".join(reasons) or "failed", _failure_body(result))
    elif result.status == "error":
        _add_text(case, "error", reasons[0], f"{_where(result)}\n{result.error or ''}")
    elif result.status == "skipped":
        _add_text(case, "skipped", result.skip_reason or "skipped", None)
    if result.status in ("failed", "error") and result.output is not None:
        ET.SubElement(case, "system-out").text = clean_xml_text(result.output)
    if accepted is not None:  # a failed sample its case's min_pass_rate accepts (written as passing)
        ET.SubElement(case, "system-out").text = clean_xml_text(
            f"this sample failed ({'; '.join(reasons) or 'failed'}); its case passes by min_pass_rate: {accepted}")
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
    """The <testsuites> tree; suites by prompt, then model in the run's order; cases in the run's order."""
    model_rank = {m: i for i, m in enumerate(run.models)}
    groups: dict[tuple[str, str], list[CaseResult]] = {}
    for r in run.results:
        groups.setdefault((r.prompt, r.model), []).append(r)
    with_repeat = has_repeats(run)
    notes = [*run.notes, *run_notes(run)]
    verdict = decision_of(run).line()  # a `verdict` property on every suite: the same words as every report
    flaky = flaky_cases(run)
    accepted = accepted_failures(run)
    totals = _counts([_as_judged(r, accepted) for r in run.results])
    del totals["skipped"]  # the junit-10 root has no skipped count; each suite has one
    root = ET.Element("testsuites", {"name": "promptci", **totals})
    for prompt, model in sorted(groups, key=lambda key: (key[0], model_rank.get(key[1], len(model_rank)), key[1])):
        results = groups[(prompt, model)]
        suite = ET.SubElement(root, "testsuite", {
            "name": clean_xml_text(f"{prompt} [{model}]"), "timestamp": run.started_at,
            **_counts([_as_judged(r, accepted) for r in results]),
        })
        _add_properties(suite, results, notes,
                        [rate for rate in flaky if (rate.prompt, rate.model) == (prompt, model)], verdict)
        suite.extend(_testcase(_as_judged(r, accepted), with_repeat,
                               accepted.get((r.file, r.prompt, r.case_id, r.model)) if r.status == "failed" else None)
                     for r in results)
    return root


def junit_xml(run: Run) -> str:
    root = build_junit(run)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(run: Run, stream: TextIO) -> None:
    stream.write(junit_xml(run))
